//! The merge operator (Badger's `GetMergeOperator`): values added to one key as versions of
//! their own, folded by a user function on read and, periodically, into one version.
//!
//! - [`MergeOperator::add`] writes the value as a new version of the key with the
//!   [`meta::MERGE`] bit: compaction keeps such versions whatever `num_versions_to_keep`
//!   says (an operand not folded yet must not be dropped as an old version).
//! - The *operands* of a read are the key's versions, newest first, down to (not including)
//!   a delete or expired version, or down to (including) a version that discards earlier
//!   versions. Their fold, oldest to newest, is `merge_fn(merge_fn(v1, v2), v3)...`.
//! - A merge reads the operands and writes their fold as a new version that discards earlier
//!   versions (without the MERGE bit: compaction may then drop everything older), in ONE
//!   read-write transaction. An add from elsewhere committing between the merge's read and
//!   its commit wrote a key the merge read: the merge conflicts and is retried, so the new
//!   version never hides an operand it did not fold. Adds through the same operator wait
//!   while a merge runs (`gate`), so they never make its merge conflict.
//! - The fold is a left fold, so folding a prefix first changes nothing:
//!   `fold(fold(v1..vk), vk+1..vn) = fold(v1..vn)` for any `merge_fn`, and [`MergeOperator::get`]
//!   returns the same bytes whether or not a merge ran (Badger folds newest first,
//!   `f(older, f(old, new))`, which agrees only for associative functions).
//!
//! Design notes: docs/design/sequence-and-merge.md.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use crate::db::Db;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::into_bytes::IntoBytes;
use crate::key::validate_key;
use crate::read::IteratorOptions;
use crate::transaction::Txn;
use crate::value::meta;

/// Merge transactions tried per merge before the merge gives up until the next one: each
/// conflict means an add from another handle committed meanwhile.
const MAX_ATTEMPTS: usize = 8;

/// The function that folds two values: `merge_fn(existing, new)`.
type MergeFn = dyn Fn(&[u8], &[u8]) -> Vec<u8> + Send + Sync + 'static;

/// What the operator and its thread share.
struct Shared {
    db: Db,
    key: Bytes,
    merge_fn: Box<MergeFn>,
    /// Adds through this operator hold it shared, a merge exclusively.
    gate: RwLock<()>,
    /// GUARDED by itself: set to ask the thread to stop (after one final merge).
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Folds values added to one key ([`Db::get_merge_operator`]; module doc).
///
/// `Send + Sync`: add from many threads through `&MergeOperator` or an `Arc`. Dropping it
/// stops its thread after one final merge, as [`MergeOperator::stop`] does. It holds a clone
/// of the [`Db`], so the database stays open until it is dropped too (an explicit
/// [`Db::close`] still closes it).
pub struct MergeOperator {
    shared: Arc<Shared>,
    /// The merging thread; `None` once stopped.
    thread: Mutex<Option<JoinHandle<Result<()>>>>,
}

impl std::fmt::Debug for MergeOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeOperator")
            .field("key", &self.shared.key)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// A merge operator on `key` (Badger's `GetMergeOperator`): [`MergeOperator::add`]
    /// records values, [`MergeOperator::get`] returns every value added so far folded with
    /// `merge_fn(existing, new)`, oldest first, and a thread merges them into one stored
    /// version every `interval`, until [`MergeOperator::stop`] or drop. A value already stored
    /// under `key` is the first operand.
    ///
    /// Errors: invalid keys as [`crate::Txn::set`]; [`Error::InvalidRequest`] in managed mode,
    /// read-only, or with `detect_conflicts` off (a merge could then hide a concurrent add);
    /// [`Error::Closed`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use settdb::{Db, Options};
    /// # let db = Db::open(Options::new("").with_in_memory(true))?;
    /// let add = |a: &[u8], b: &[u8]| {
    ///     let n = |v: &[u8]| u64::from_be_bytes(v.try_into().unwrap_or([0; 8]));
    ///     (n(a) + n(b)).to_be_bytes().to_vec()
    /// };
    /// let counter = db.get_merge_operator("hits", add, Duration::from_millis(100))?;
    /// for n in [1u64, 2, 3] {
    ///     counter.add(n.to_be_bytes().to_vec())?;
    /// }
    /// assert_eq!(counter.get()?, Some(6u64.to_be_bytes().to_vec()));
    /// counter.stop()?;
    /// # Ok::<(), settdb::Error>(())
    /// ```
    pub fn get_merge_operator(
        &self,
        key: impl IntoBytes,
        merge_fn: impl Fn(&[u8], &[u8]) -> Vec<u8> + Send + Sync + 'static,
        interval: Duration,
    ) -> Result<MergeOperator> {
        let key = key.into_bytes();
        validate_key(&key)?;
        self.check_merge_allowed()?;
        let shared = Arc::new(Shared {
            db: self.clone(),
            key,
            merge_fn: Box::new(merge_fn),
            gate: RwLock::new(()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("settdb-merge".to_string())
            .spawn(move || worker.run(interval))
            .map_err(|e| Error::io("spawn thread", "settdb-merge", e))?;
        Ok(MergeOperator {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Refuses the modes in which a merge cannot be a transaction that conflicts.
    fn check_merge_allowed(&self) -> Result<()> {
        if self.is_managed() {
            return Err(Error::InvalidRequest(
                "the merge operator needs a normal database: managed mode has no commit timestamps to merge with",
            ));
        }
        if self.options().read_only {
            return Err(Error::InvalidRequest(
                "the merge operator needs a writable database: an add is a write",
            ));
        }
        if !self.options().detect_conflicts {
            return Err(Error::InvalidRequest(
                "the merge operator needs detect_conflicts: without it a merge could hide a concurrent add",
            ));
        }
        // Err(Closed) now rather than from the first add.
        self.new_transaction(false)?.discard();
        Ok(())
    }
}

impl MergeOperator {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.shared.key
    }

    /// Records `value` as a new operand: a new version of the key, committed (durable per
    /// `sync_writes`) when this returns. Errors: those of a transaction commit.
    pub fn add(&self, value: impl IntoBytes) -> Result<()> {
        let _shared = self.shared.gate.read().unwrap_or_else(|e| e.into_inner());
        let mut entry = Entry::new(self.shared.key.clone(), value);
        entry.meta |= meta::MERGE;
        let mut txn = self.shared.db.new_transaction(true)?;
        txn.set_entry(entry)?;
        txn.commit()
    }

    /// Every operand added so far folded, oldest first, as of now (a merge that ran
    /// meanwhile changes nothing); `None` if there is none (Badger: `ErrKeyNotFound`).
    pub fn get(&self) -> Result<Option<Vec<u8>>> {
        let txn = self.shared.db.new_transaction(false)?;
        Ok(self.shared.fold(self.shared.operands(&txn)?))
    }

    /// Merges now, on the calling thread: writes the fold of the operands as one version that
    /// discards the older ones. Returns `true` if it wrote one, `false` if there was at most one
    /// operand, or if adds from other handles of the key made each try conflict.
    pub fn merge_now(&self) -> Result<bool> {
        self.shared.merge()
    }

    /// Stops the merging thread after one final merge and waits for it; returns the outcome
    /// of that merge ([`Error::Closed`] if the database was closed first). Later calls return
    /// `Ok`. `add` and `get` keep working.
    pub fn stop(&self) -> Result<()> {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(thread) = thread else {
            return Ok(());
        };
        *self.shared.lock_stop() = true;
        self.shared.wake.notify_all();
        thread.join().unwrap_or(Err(Error::InvalidRequest(
            "the merge function panicked on the merge thread",
        )))
    }
}

impl Drop for MergeOperator {
    fn drop(&mut self) {
        // Errors have no caller to go to; the operands stay stored, `get` folds them.
        let _ = self.stop();
    }
}

impl Shared {
    fn lock_stop(&self) -> MutexGuard<'_, bool> {
        self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The thread: a merge every `interval`, and a final one when asked to stop. Ends early
    /// (with `Err(Closed)`) once the database is closed.
    fn run(&self, interval: Duration) -> Result<()> {
        loop {
            let stopping = self.wait(interval);
            match self.merge() {
                Err(Error::Closed) => return Err(Error::Closed),
                outcome if stopping => return outcome.map(|_| ()),
                // A failed merge leaves the operands in place; the next one tries again, and
                // the final one reports to `stop`.
                _ => {}
            }
        }
    }

    /// Waits `interval` or until asked to stop; true if asked.
    fn wait(&self, interval: Duration) -> bool {
        let stop = self.lock_stop();
        let (stop, _) = self
            .wake
            .wait_timeout_while(stop, interval, |stop| !*stop)
            .unwrap_or_else(|e| e.into_inner());
        *stop
    }

    /// One merge (see [`MergeOperator::merge_now`]).
    fn merge(&self) -> Result<bool> {
        let _exclusive = self.gate.write().unwrap_or_else(|e| e.into_inner());
        for _ in 0..MAX_ATTEMPTS {
            match self.try_merge() {
                Err(Error::Conflict) => continue,
                outcome => return outcome,
            }
        }
        Ok(false)
    }

    /// One merge transaction: reads the operands and writes their fold, or conflicts.
    fn try_merge(&self) -> Result<bool> {
        let mut txn = self.db.new_transaction(true)?;
        let operands = self.operands(&txn)?;
        if operands.len() < 2 {
            return Ok(false);
        }
        let Some(merged) = self.fold(operands) else {
            return Ok(false);
        };
        txn.set_entry(Entry::new(self.key.clone(), merged).with_discard())?;
        txn.commit()?;
        Ok(true)
    }

    /// The operands `txn` sees, newest first (module doc). In a read-write `txn`, each one is
    /// recorded as a read of the key, so a commit that adds one meanwhile conflicts with it.
    fn operands(&self, txn: &Txn) -> Result<Vec<Vec<u8>>> {
        let mut operands = Vec::new();
        for item in txn.key_iter(&self.key, IteratorOptions::default())? {
            let item = item?;
            if item.is_deleted_or_expired() {
                break;
            }
            let last = item.discard_earlier_versions();
            operands.push(item.into_value()?);
            if last {
                break;
            }
        }
        Ok(operands)
    }

    /// The left fold of `newest_first`, oldest first; `None` for no operand.
    fn fold(&self, newest_first: Vec<Vec<u8>>) -> Option<Vec<u8>> {
        let mut oldest_first = newest_first.into_iter().rev();
        let first = oldest_first.next()?;
        Some(oldest_first.fold(first, |acc, v| (self.merge_fn)(&acc, &v)))
    }
}

//! `WriteBatch`: many writes at high throughput, not atomic as a whole.
//!
//! Writes accumulate in a transaction; when it reaches the batch limits (`TxnTooBig`), or its
//! value-log values would no longer fit one value-log file (one write must fit one: commit
//! would fail with `ValueLogWriteTooBig`), it is committed asynchronously and a new one
//! started, with at most `max_pending_txns` (16) commits in flight (further writes wait:
//! backpressure). `flush` commits the rest and waits
//! for every commit; the first error of any commit is reported by later calls and by `flush`.
//! Each sub-commit is atomic; the batch as a whole is not. Its transactions never read, so they
//! never conflict.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::commit::Committer;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::into_bytes::IntoBytes;
use crate::key::validate_key;
use crate::read::Reader;
use crate::transaction::Txn;
use crate::value::meta;
use crate::write::WriteEntry;

/// Commits in flight at most, by default (Badger's default).
pub const DEFAULT_MAX_PENDING_TXNS: usize = 16;

#[derive(Debug, Default)]
struct ThrottleState {
    in_flight: usize,
    first_error: Option<String>,
}

/// Entries of a managed write batch at their own versions, not yet sent.
#[derive(Debug, Default)]
struct Versioned {
    entries: Vec<WriteEntry>,
    /// Their charge against the batch limits.
    size: u64,
}

/// Counts commits in flight and keeps the first error.
#[derive(Debug, Default)]
struct Throttle {
    state: Mutex<ThrottleState>,
    cond: Condvar,
}

impl Throttle {
    fn lock(&self) -> MutexGuard<'_, ThrottleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until fewer than `max` commits are in flight, then counts one more.
    fn acquire(&self, max: usize) {
        let mut st = self.lock();
        while st.in_flight >= max.max(1) {
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.in_flight += 1;
    }

    fn release(&self, outcome: Result<()>) {
        let mut st = self.lock();
        st.in_flight -= 1;
        if let Err(e) = outcome {
            st.first_error.get_or_insert_with(|| e.to_string());
        }
        drop(st);
        self.cond.notify_all();
    }

    fn wait_all(&self) {
        let mut st = self.lock();
        while st.in_flight > 0 {
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn check(&self) -> Result<()> {
        match &self.lock().first_error {
            Some(msg) => Err(Error::Poisoned(format!(
                "an earlier commit of this write batch failed: {msg}"
            ))),
            None => Ok(()),
        }
    }
}

/// Many writes at high throughput, committed in sub-batches in the background (not atomic
/// as a whole); `flush` waits for all of them and reports the first error.
///
/// ```
/// # fn main() -> settdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = settdb::Db::open(settdb::Options::new(dir.path()))?;
/// let mut batch = db.new_write_batch()?;
/// for i in 0..10_000u32 {
///     batch.set(format!("key{i:05}"), i.to_be_bytes())?;
/// }
/// batch.delete("key00000")?;
/// batch.flush()?;
/// assert!(db.get("key00000")?.is_none());
/// assert_eq!(db.get("key09999")?.as_deref(), Some(&9999u32.to_be_bytes()[..]));
/// # Ok(()) }
/// ```
pub struct WriteBatch {
    committer: Arc<Committer>,
    reader: Arc<Reader>,
    txn: Option<Txn>,
    /// A managed batch whose entries carry their own versions
    /// ([`WriteBatch::set_entry_at`]); `txn` is then unused.
    versioned: Option<Versioned>,
    commit_ts: Option<u64>,
    throttle: Arc<Throttle>,
    max_pending: usize,
    /// Bytes of value-log values written to the current sub-batch (an upper bound: a key
    /// written twice counts twice).
    value_log_bytes: u64,
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("commit_ts", &self.commit_ts)
            .field("throttle", &self.throttle)
            .finish_non_exhaustive()
    }
}

impl WriteBatch {
    /// A batch committing at fresh timestamps (normal mode) or at `commit_ts` (managed).
    pub(crate) fn new(
        committer: Arc<Committer>,
        reader: Arc<Reader>,
        commit_ts: Option<u64>,
    ) -> Self {
        let mut wb = WriteBatch {
            committer,
            reader,
            txn: None,
            versioned: None,
            commit_ts,
            throttle: Arc::new(Throttle::default()),
            max_pending: DEFAULT_MAX_PENDING_TXNS,
            value_log_bytes: 0,
        };
        wb.txn = Some(wb.new_txn());
        wb
    }

    /// A managed batch whose entries carry their own versions.
    pub(crate) fn new_versioned(committer: Arc<Committer>, reader: Arc<Reader>) -> Self {
        WriteBatch {
            committer,
            reader,
            txn: None,
            versioned: Some(Versioned::default()),
            commit_ts: None,
            throttle: Arc::new(Throttle::default()),
            max_pending: DEFAULT_MAX_PENDING_TXNS,
            value_log_bytes: 0,
        }
    }

    fn new_txn(&self) -> Txn {
        match self.commit_ts {
            Some(ts) => Txn::begin_at(
                self.committer.clone(),
                self.reader.clone(),
                ts.saturating_sub(1),
                true,
            ),
            None => Txn::begin(self.committer.clone(), self.reader.clone(), true),
        }
    }

    /// Sets how many commits may be in flight (at least 1).
    pub fn set_max_pending_txns(&mut self, n: usize) {
        self.max_pending = n.max(1);
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl IntoBytes, value: impl IntoBytes) -> Result<()> {
        self.set_entry(Entry::new(key, value))
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl IntoBytes) -> Result<()> {
        self.set_entry(Entry::delete(key))
    }

    /// Writes `entry`, committing the current sub-batch first when it is full.
    pub fn set_entry(&mut self, entry: Entry) -> Result<()> {
        self.throttle.check()?;
        if self.versioned.is_some() {
            return Err(Error::InvalidRequest(
                "a managed write batch writes at given versions: use set_entry_at or delete_at",
            ));
        }
        let value_log_len = value_log_len(&self.committer.opts, &entry);
        if self.value_log_bytes > 0
            && self.value_log_bytes + value_log_len > self.committer.opts.value_log_file_size
        {
            self.commit_current()?;
        }
        let txn = self.txn.as_mut().ok_or(Error::DiscardedTxn)?;
        match txn.set_entry(entry.clone()) {
            Err(Error::TxnTooBig { .. }) => {
                self.commit_current()?;
                self.txn
                    .as_mut()
                    .ok_or(Error::DiscardedTxn)?
                    .set_entry(entry)?;
            }
            other => other?,
        }
        self.value_log_bytes += value_log_len;
        Ok(())
    }

    /// Managed write batch ([`crate::Db::new_managed_write_batch`]): writes `entry` at
    /// `version` (Badger's `SetEntryAt`). Versions of one key may differ within a batch; the
    /// same key at the same version twice keeps the later write.
    pub fn set_entry_at(&mut self, entry: Entry, version: u64) -> Result<()> {
        self.throttle.check()?;
        if self.versioned.is_none() {
            return Err(Error::InvalidRequest(
                "set_entry_at and delete_at need a batch from Db::new_managed_write_batch",
            ));
        }
        if version == 0 {
            return Err(Error::InvalidRequest(
                "version 0 is not a version: start at 1",
            ));
        }
        validate_key(&entry.key)?;
        self.committer.check_value_size(entry.value.len())?;
        let charge = entry.charge(&self.committer.opts);
        let value_log_len = value_log_len(&self.committer.opts, &entry);
        let full = {
            let v = self.versioned.as_ref().expect("checked above");
            self.committer
                .check_batch_limits(v.entries.len() as u64 + 1, v.size + charge)
                .is_err()
                || (self.value_log_bytes > 0
                    && self.value_log_bytes + value_log_len
                        > self.committer.opts.value_log_file_size)
        };
        if full {
            self.commit_current()?;
        }
        self.value_log_bytes += value_log_len;
        let v = self.versioned.as_mut().expect("checked above");
        v.size += charge;
        v.entries.push(WriteEntry::from_entry(entry, version));
        Ok(())
    }

    /// Managed write batch: deletes `key` at `version` (Badger's `DeleteAt`).
    pub fn delete_at(&mut self, key: impl IntoBytes, version: u64) -> Result<()> {
        self.set_entry_at(Entry::delete(key), version)
    }

    /// Sends the managed batch's entries (later writes of a key at one version win).
    fn commit_versioned(&mut self) -> Result<()> {
        self.value_log_bytes = 0;
        let Some(v) = self.versioned.as_mut() else {
            return Ok(());
        };
        let mut entries = std::mem::take(&mut v.entries);
        v.size = 0;
        if entries.is_empty() {
            return Ok(());
        }
        entries.reverse();
        entries.sort_by(|a, b| a.key.cmp(&b.key).then(b.version.cmp(&a.version)));
        entries.dedup_by(|a, b| a.key == b.key && a.version == b.version);
        self.throttle.acquire(self.max_pending);
        let throttle = self.throttle.clone();
        match self.committer.queue_versioned(entries, true) {
            Ok(completion) => self
                .committer
                .callbacks
                .run_after(completion, Box::new(move |r| throttle.release(r))),
            Err(e) => {
                throttle.release(Err(Error::Poisoned(e.to_string())));
                return Err(e);
            }
        }
        Ok(())
    }

    /// Commits the current sub-batch asynchronously and starts a new one.
    fn commit_current(&mut self) -> Result<()> {
        if self.versioned.is_some() {
            return self.commit_versioned();
        }
        let Some(mut txn) = self.txn.take() else {
            return Err(Error::DiscardedTxn);
        };
        self.throttle.acquire(self.max_pending);
        let throttle = self.throttle.clone();
        match txn.send(self.commit_ts) {
            Ok(Some(completion)) => self
                .committer
                .callbacks
                .run_after(completion, Box::new(move |r| throttle.release(r))),
            Ok(None) => throttle.release(Ok(())),
            Err(e) => {
                throttle.release(Err(Error::Poisoned(e.to_string())));
                return Err(e);
            }
        }
        self.txn = Some(self.new_txn());
        self.value_log_bytes = 0;
        Ok(())
    }

    /// Commits what is left and waits for every commit; the first error of any of them.
    pub fn flush(mut self) -> Result<()> {
        let result = self.commit_current();
        if let Some(mut t) = self.txn.take() {
            t.discard();
        }
        self.throttle.wait_all();
        result.and(self.throttle.check())
    }

    /// Drops the writes not yet committed and waits for the commits in flight.
    pub fn cancel(mut self) {
        self.cancel_inner();
    }

    fn cancel_inner(&mut self) {
        if let Some(mut t) = self.txn.take() {
            t.discard();
        }
        if let Some(v) = self.versioned.as_mut() {
            v.entries.clear();
        }
        self.throttle.wait_all();
    }
}

/// Bytes of `entry`'s value the value log will hold (0 for an inline value or a delete), as
/// the commit's fit check counts them.
fn value_log_len(opts: &crate::options::Options, entry: &Entry) -> u64 {
    if entry.meta & meta::DELETE == 0 && opts.goes_to_value_log(entry.value.len()) {
        entry.value.len() as u64
    } else {
        0
    }
}

impl Drop for WriteBatch {
    /// Without `flush`, writes not yet committed are dropped (as `cancel`).
    fn drop(&mut self) {
        self.cancel_inner();
    }
}

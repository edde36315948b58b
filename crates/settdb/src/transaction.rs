//! Transactions: snapshot reads at `read_ts`, buffered writes, serializable commit.
//!
//! A transaction reads the database as of its `read_ts` (plus its own pending writes), and
//! buffers writes. Commit checks for conflicts (a key it read was written by a transaction
//! that committed after `read_ts`: SSI, see `txn::Oracle`), then sends all writes as ONE
//! request, so they become durable and visible atomically at one commit timestamp.
//!
//! A `Txn` is used from one thread at a time (`&mut self`); it is `Send`. Dropping it
//! discards it. Errors, never panics, for misuse: writing in a read-only transaction
//! (`ReadOnlyTxn`), using it after commit or discard (`DiscardedTxn`), bad keys, values over
//! the value-log file size, more than `max_batch_count` entries or `max_batch_size` bytes
//! (`TxnTooBig`: commit and start another, or use a `WriteBatch`).

use std::collections::{BTreeMap, HashSet};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;

use crate::clock::now_secs;
use crate::commit::Committer;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::into_bytes::IntoBytes;
use crate::key::key_with_version;
use crate::key::validate_key;
use crate::range_iter::{MakeCursor, RangeIter};
use crate::read::{Item, IteratorOptions, Reader};
use crate::table::VecIterator;
use crate::txn::{fingerprint, ReadSet, ReadSlot};
use crate::txn_iterator::TxnIterator;
use crate::value::{is_expired, meta, ValueRef, ValueStruct};
use crate::write::{Completion, WriteEntry, WriteRequest};

/// A pending write of a transaction.
#[derive(Clone, Debug)]
pub(crate) struct PendingWrite {
    pub(crate) value: Bytes,
    pub(crate) meta: u8,
    pub(crate) user_meta: u8,
    pub(crate) expires_at: u64,
}

/// A transaction: reads see one snapshot (plus its own writes), writes commit atomically at
/// one version, and a commit fails with [`Error::Conflict`] if a key it read was changed by a
/// commit after its snapshot (serializable snapshot isolation). Used from one thread at a
/// time; dropping it discards it. [`Db::update`](crate::Db::update) and
/// [`Db::view`](crate::Db::view) run a closure in one; here by hand, with the retry a
/// conflict asks for:
///
/// ```
/// use settdb::{Db, Error, Options};
/// # fn main() -> settdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(Options::new(dir.path()))?;
/// fn add(db: &Db, key: &str, n: u64) -> settdb::Result<u64> {
///     loop {
///         let mut txn = db.new_transaction(true)?;
///         let old = match txn.get(key)? {
///             Some(item) => u64::from_be_bytes(item.value()?.try_into().unwrap()),
///             None => 0,
///         };
///         txn.set(key, (old + n).to_be_bytes())?;
///         match txn.commit() {
///             Err(Error::Conflict) => continue, // someone changed `key`: read it again
///             other => return other.map(|()| old + n),
///         }
///     }
/// }
/// assert_eq!(add(&db, "hits", 2)?, 2);
/// assert_eq!(add(&db, "hits", 3)?, 5);
/// # Ok(()) }
/// ```
pub struct Txn {
    committer: Arc<Committer>,
    reader: Arc<Reader>,
    pub(crate) read_ts: u64,
    update: bool,
    /// Pending writes by user key (the last write of a key wins).
    pub(crate) pending: BTreeMap<Bytes, PendingWrite>,
    /// Fingerprints of keys read (update transactions with conflict detection only); shared
    /// with this transaction's iterators.
    reads: Arc<ReadSet>,
    /// Fingerprints of keys written.
    writes: HashSet<u64>,
    size_bytes: u64,
    /// False once committed or discarded.
    open: bool,
    /// Where `read_ts` is registered in the oracle's read registry, until it is removed.
    read_slot: Option<ReadSlot>,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn")
            .field("read_ts", &self.read_ts)
            .field("update", &self.update)
            .field("pending", &self.pending.len())
            .field("open", &self.open)
            .finish()
    }
}

impl Txn {
    /// A transaction reading at the latest commit (normal mode).
    pub(crate) fn begin(committer: Arc<Committer>, reader: Arc<Reader>, update: bool) -> Txn {
        let (read_ts, slot) = committer.oracle.begin_read();
        Txn::with_read_ts(committer, reader, read_ts, slot, update)
    }

    /// A transaction reading at `read_ts` (managed mode).
    pub(crate) fn begin_at(
        committer: Arc<Committer>,
        reader: Arc<Reader>,
        read_ts: u64,
        update: bool,
    ) -> Txn {
        let slot = committer.oracle.begin_read_at(read_ts);
        Txn::with_read_ts(committer, reader, read_ts, slot, update)
    }

    fn with_read_ts(
        committer: Arc<Committer>,
        reader: Arc<Reader>,
        read_ts: u64,
        slot: ReadSlot,
        update: bool,
    ) -> Txn {
        Txn {
            committer,
            reader,
            read_ts,
            update,
            pending: BTreeMap::new(),
            reads: Arc::new(ReadSet::default()),
            writes: HashSet::new(),
            size_bytes: 0,
            open: true,
            read_slot: Some(slot),
        }
    }

    /// The read timestamp: the transaction sees every commit at or below it.
    pub fn read_ts(&self) -> u64 {
        self.read_ts
    }

    /// True for a read-write transaction.
    pub fn is_update(&self) -> bool {
        self.update
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(Error::DiscardedTxn)
        }
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl IntoBytes, value: impl IntoBytes) -> Result<()> {
        self.set_entry(Entry::new(key, value))
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: impl IntoBytes) -> Result<()> {
        self.set_entry(Entry::delete(key))
    }

    /// Writes `entry` (with its TTL, user meta and discard flag).
    pub fn set_entry(&mut self, entry: Entry) -> Result<()> {
        self.check_open()?;
        if !self.update {
            return Err(Error::ReadOnlyTxn);
        }
        validate_key(&entry.key)?;
        self.committer.namespaces.check(&entry.key)?;
        self.committer.check_value_size(entry.value.len())?;
        let (count, size) = self.size_after(&entry);
        self.committer.check_batch_limits(count, size)?;
        self.size_bytes = size;
        if self.committer.oracle.detects_conflicts() {
            self.writes.insert(fingerprint(&entry.key));
        }
        self.pending.insert(
            entry.key,
            PendingWrite {
                value: entry.value,
                meta: entry.meta,
                user_meta: entry.user_meta,
                expires_at: entry.expires_at,
            },
        );
        Ok(())
    }

    /// Entry count and bytes after adding `entry` (a rewrite of a pending key replaces it).
    fn size_after(&self, entry: &Entry) -> (u64, u64) {
        let replaced = self.pending.get(&entry.key).map(|p| {
            Entry {
                key: entry.key.clone(),
                value: p.value.clone(),
                user_meta: p.user_meta,
                expires_at: p.expires_at,
                meta: p.meta,
            }
            .charge(&self.committer.opts)
        });
        let count = self.pending.len() as u64 + u64::from(replaced.is_none());
        (
            count,
            self.size_bytes - replaced.unwrap_or(0) + entry.charge(&self.committer.opts),
        )
    }

    /// True if this transaction's reads are tracked for conflict detection.
    fn tracks_reads(&self) -> bool {
        self.update && self.committer.oracle.detects_conflicts()
    }

    /// Records a read of `key` for conflict detection.
    fn record_read(&mut self, key: &[u8]) {
        if self.tracks_reads() {
            self.reads.record(key);
        }
    }

    /// The newest version of `key` this transaction sees: its own pending write, else the
    /// newest committed version at `read_ts`; `None` if there is none or it is deleted or
    /// expired; `Err(BannedKey)` for a key of a banned namespace. Records the read for
    /// conflict detection (a read of the transaction's own write is not a read of the
    /// database and is not recorded).
    ///
    /// ```
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = settdb::Db::open(settdb::Options::new(dir.path()))?;
    /// db.update(|txn| txn.set("answer", "42"))?;
    /// db.view(|txn| {
    ///     let item = txn.get("answer")?.expect("was set");
    ///     assert_eq!(item.value()?, b"42");
    ///     assert!(txn.get("question")?.is_none());
    ///     Ok(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        let key = key.as_ref();
        self.check_open()?;
        validate_key(key)?;
        self.committer.namespaces.check(key)?;
        if let Some(p) = self.pending.get(key) {
            if p.meta & meta::DELETE != 0 || is_expired(p.expires_at, now_secs()) {
                return Ok(None);
            }
            let value = ValueRef {
                meta: p.meta,
                user_meta: p.user_meta,
                expires_at: p.expires_at,
                value: &p.value,
            };
            return Ok(Some(Item::from_entry(
                key,
                self.read_ts,
                value,
                None,
                now_secs(),
            )));
        }
        self.record_read(key);
        self.committer.check_open()?;
        self.reader.get_item(key, self.read_ts)
    }

    /// A cursor over this transaction's snapshot and its pending writes (Badger's iterator);
    /// it is also a Rust `Iterator`. [`Txn::range`] and [`Txn::prefix`] are simpler for
    /// most scans.
    ///
    /// ```
    /// use settdb::IteratorOptions;
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = settdb::Db::open(settdb::Options::new(dir.path()))?;
    /// db.update(|txn| {
    ///     txn.set("a", "1")?;
    ///     txn.set("b", "2")
    /// })?;
    /// db.view(|txn| {
    ///     // Keys only: values in the value log are not read until asked for.
    ///     let mut it = txn.iter(IteratorOptions::default().with_prefetch_values(false))?;
    ///     it.seek(b"b")?;
    ///     while it.valid() {
    ///         assert_eq!(it.item().key(), b"b");
    ///         assert_eq!(it.item().value()?, b"2");
    ///         it.next()?;
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn iter(&self, opts: IteratorOptions) -> Result<TxnIterator> {
        self.check_open()?;
        self.committer.check_open()?;
        let inner = self.reader.iter(self.read_ts, opts, self.pending_source());
        let reads = self.tracks_reads().then(|| self.reads.clone());
        Ok(TxnIterator::new(inner, reads, None))
    }

    /// An iterator over every version of one key, newest first (`opts.reverse`: oldest
    /// first). `opts.prefix` must be empty; `all_versions` is implied.
    pub fn key_iter(&self, key: impl AsRef<[u8]>, opts: IteratorOptions) -> Result<TxnIterator> {
        let key = key.as_ref();
        self.check_open()?;
        validate_key(key)?;
        if !opts.prefix.is_empty() {
            return Err(Error::InvalidRequest(
                "key_iter takes no prefix: the key is the prefix",
            ));
        }
        let opts = opts.with_prefix(key.to_vec()).with_all_versions(true);
        self.committer.check_open()?;
        let inner = self.reader.iter(self.read_ts, opts, self.pending_source());
        let reads = self.tracks_reads().then(|| self.reads.clone());
        Ok(TxnIterator::new(inner, reads, Some(key.to_vec())))
    }

    /// The newest visible version of each key in `range`, in key order, as a double-ended
    /// iterator (`.rev()` walks down). Bounds are any byte strings (`Vec<u8>`, `&[u8]`,
    /// `&str`, ...); pending writes of this transaction are included.
    ///
    /// ```
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = settdb::Db::open(settdb::Options::new(dir.path()))?;
    /// db.update(|txn| {
    ///     for k in ["a", "b", "c", "d"] {
    ///         txn.set(k, "v")?;
    ///     }
    ///     Ok(())
    /// })?;
    /// db.view(|txn| {
    ///     let keys = |it: &mut dyn Iterator<Item = settdb::Result<settdb::Item>>| {
    ///         it.map(|item| item.map(|i| i.key().to_vec())).collect::<settdb::Result<Vec<_>>>()
    ///     };
    ///     assert_eq!(keys(&mut txn.range("b".."d")?)?, [b"b", b"c"]);
    ///     assert_eq!(keys(&mut txn.range(b"b".to_vec()..)?.rev())?, [b"d", b"c", b"b"]);
    ///     Ok(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<RangeIter> {
        let own = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (start, end) = (own(range.start_bound()), own(range.end_bound()));
        Ok(RangeIter::new(
            self.cursor_maker()?,
            self.tracks_reads().then(|| self.reads.clone()),
            IteratorOptions::default(),
            start,
            end,
        ))
    }

    /// The newest visible version of each key starting with `prefix`, in key order, as a
    /// double-ended iterator; tables that cannot hold such keys are not read.
    ///
    /// ```
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = settdb::Db::open(settdb::Options::new(dir.path()))?;
    /// db.update(|txn| {
    ///     txn.set("user:1", "ann")?;
    ///     txn.set("user:2", "bob")?;
    ///     txn.set("group:1", "admins")
    /// })?;
    /// let newest_user = db.view(|txn| txn.prefix("user:")?.next_back().transpose())?;
    /// assert_eq!(newest_user.unwrap().value()?, b"bob");
    /// # Ok(()) }
    /// ```
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<RangeIter> {
        Ok(RangeIter::new(
            self.cursor_maker()?,
            self.tracks_reads().then(|| self.reads.clone()),
            IteratorOptions::default().with_prefix(prefix.as_ref()),
            Bound::Unbounded,
            Bound::Unbounded,
        ))
    }

    /// What a [`RangeIter`] makes its cursors with: this transaction's snapshot and its
    /// pending writes as of now.
    fn cursor_maker(&self) -> Result<MakeCursor> {
        self.check_open()?;
        self.committer.check_open()?;
        let (reader, read_ts) = (self.reader.clone(), self.read_ts);
        let committer = self.committer.clone();
        let pending = self.pending_source();
        Ok(Box::new(move |opts| {
            committer.check_open()?;
            Ok(reader.iter(read_ts, opts, pending.clone()))
        }))
    }

    /// The pending writes as a sorted source (update transactions only).
    fn pending_source(&self) -> Option<VecIterator> {
        if !self.update || self.pending.is_empty() {
            return None;
        }
        let entries = self
            .pending
            .iter()
            .map(|(k, p)| {
                let vs = ValueStruct {
                    meta: p.meta,
                    user_meta: p.user_meta,
                    expires_at: p.expires_at,
                    value: p.value.to_vec(),
                };
                (key_with_version(k, self.read_ts), vs)
            })
            .collect();
        Some(VecIterator::from_sorted(entries))
    }

    /// Commits: the writes become durable (per `sync_writes`) and visible at one new commit
    /// timestamp, or none of them do. `Err(Conflict)`: a key this transaction read was
    /// written after `read_ts`; retry the whole transaction.
    pub fn commit(&mut self) -> Result<()> {
        match self.send(None)? {
            Some(completion) => completion.wait(),
            None => Ok(()),
        }
    }

    /// Commits asynchronously: returns at once; `callback` runs exactly once, on a SettDB
    /// thread, with the outcome. Errors found before sending (misuse, conflict) are passed to
    /// the callback too.
    pub fn commit_with(&mut self, callback: impl FnOnce(Result<()>) + Send + 'static) {
        self.send_with(None, Box::new(callback));
    }

    /// Managed mode: commits at `commit_ts` asynchronously, as [`Txn::commit_with`] (Badger's
    /// `CommitAt` with a callback).
    pub fn commit_at_with(
        &mut self,
        commit_ts: u64,
        callback: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        self.send_with(Some(commit_ts), Box::new(callback));
    }

    fn send_with(
        &mut self,
        managed_commit_ts: Option<u64>,
        callback: Box<dyn FnOnce(Result<()>) + Send>,
    ) {
        match self.send(managed_commit_ts) {
            Ok(Some(completion)) => self.committer.callbacks.run_after(completion, callback),
            Ok(None) => callback(Ok(())),
            Err(e) => callback(Err(e)),
        }
    }

    /// Managed mode: commits at the caller's `commit_ts`.
    pub fn commit_at(&mut self, commit_ts: u64) -> Result<()> {
        match self.send(Some(commit_ts))? {
            Some(completion) => completion.wait(),
            None => Ok(()),
        }
    }

    /// Sends the pending writes as one request; `None` when there was nothing to write. The
    /// transaction is finished afterwards whatever the outcome.
    pub(crate) fn send(
        &mut self,
        managed_commit_ts: Option<u64>,
    ) -> Result<Option<Arc<Completion>>> {
        self.check_open()?;
        // A commit call of the wrong mode is refused before anything is discarded, so the
        // caller's correct commit that follows still works (Badger's `commitPrecheck`).
        match (managed_commit_ts, self.committer.oracle.is_managed()) {
            (Some(_), false) => {
                return Err(Error::InvalidRequest(
                    "commit_at needs a database opened with open_managed: use commit",
                ))
            }
            (None, true) => {
                return Err(Error::InvalidRequest(
                    "managed mode: commit with commit_at(commit_ts)",
                ))
            }
            _ => {}
        }
        let outcome = self.send_inner(managed_commit_ts);
        self.discard();
        outcome
    }

    fn send_inner(&mut self, managed_commit_ts: Option<u64>) -> Result<Option<Arc<Completion>>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        self.committer.check_writable()?;
        let mut entries: Vec<WriteEntry> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(key, p)| WriteEntry {
                key,
                version: 0,
                meta: p.meta,
                user_meta: p.user_meta,
                expires_at: p.expires_at,
                value: p.value,
            })
            .collect();
        self.committer.check_value_log_fit(&entries)?;
        let (oracle, read_ts) = (&self.committer.oracle, self.read_ts);
        let reads = self.reads.take();
        let writes = &self.writes;
        let completion = self.committer.submit(|| {
            let ts = oracle.new_commit_ts(read_ts, &reads, writes, managed_commit_ts)?;
            for e in &mut entries {
                e.version = ts;
            }
            Ok(WriteRequest::new(std::mem::take(&mut entries)))
        })?;
        Ok(Some(completion))
    }

    /// Ends the transaction without writing; idempotent (also done on drop).
    pub fn discard(&mut self) {
        self.open = false;
        self.pending.clear();
        if let Some(slot) = self.read_slot.take() {
            self.committer.oracle.done_read(self.read_ts, slot);
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.discard();
    }
}

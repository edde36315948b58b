//! Wiring: open (recover in order), start and stop the background threads, close. No
//! algorithms live here; each step calls a component or a path.
//!
//! Open, in order (docs/design/engine.md), writing nothing until everything validated
//! (rule 7): options → directories and `LOCK` → MANIFEST replay → inventory of the files
//! against it (missing or unknown files refuse the open) → tables → value log → WAL replay →
//! (read-write only) the MANIFEST made writable, proven garbage removed, the value log started,
//! the replayed memtables flushed, a fresh memtable → timestamps → threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::bulk_drop::DropContext;
use crate::commit::Committer;
use crate::compaction::Compactor;
use crate::crypto::KeyRegistry;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::flush::{flush_memtable, Flusher};
use crate::into_bytes::IntoBytes;
use crate::inventory::{take_inventory, Dirs};
use crate::io::{MemStorage, Storage, StorageLock};
use crate::key::validate_key;
use crate::levels::{Levels, LevelsSnapshot};
use crate::manifest::{
    ManifestChange, ManifestFile, ManifestOptions, SharedManifest, MANIFEST_FILE_NAME,
};
use crate::memtable::{Memtable, Memtables};
use crate::namespace::Namespaces;
use crate::options::Options;
use crate::publish::{Match, Publisher, SubscribeOptions, Subscription};
use crate::read::{DbIterator, IteratorOptions, PrefixRange, Reader};
use crate::stats::{EngineStats, LevelStats, Stats};
use crate::stream_writer::{BulkLoadSummary, StreamWriter, StreamWriterContext};
use crate::table::CacheMetrics;
use crate::table::{Table, TableBuilderOptions, VecIterator};
use crate::txn::{Oracle, WaterMark};
use crate::value::ValuePointer;
use crate::verify::VerifyReport;
use crate::vlog::{DiscardTracker, ValueLog, ValueLogOptions};
use crate::vlog_gc::{GcOutcome, GcPlan, ValueLogGc};
use crate::write::{CallbackRunner, Completion, Signal};
use crate::write::{
    GroupLimits, Poison, ValueThreshold, WriteEntry, WriteQueue, WriteRequest, Writer,
    WriterContext,
};
use crate::{batch::WriteBatch, transaction::Txn};

/// Requests the write queue holds before committers wait.
const WRITE_QUEUE_CAPACITY: usize = 1000;
/// Directory of an in-memory database inside its private simulated storage.
const IN_MEMORY_DIR: &str = "/settdb-in-memory";
/// How long background threads wait before re-checking for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// An open database. Cheap to clone; all clones share one database, which closes when
/// [`Db::close`] is called or the last clone is dropped. `Send` and `Sync`: share it between
/// threads by cloning or by reference.
///
/// ```
/// use settdb::{Db, Options};
/// # fn main() -> settdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(Options::new(dir.path()))?;
/// let writers: Vec<_> = (0..4)
///     .map(|t| {
///         let db = db.clone();
///         std::thread::spawn(move || db.update(|txn| txn.set(format!("t{t}"), "done")))
///     })
///     .collect();
/// for w in writers {
///     w.join().unwrap()?;
/// }
/// assert_eq!(db.view(|txn| Ok(txn.prefix("t")?.count()))?, 4);
/// db.close()?; // flushes nothing it does not need to; the WAL makes commits durable
/// assert!(db.is_closed());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Db {
    inner: Arc<DbInner>,
}

/// One data key of an encrypted database ([`Db::encryption_keys`]); its bytes stay inside
/// the key registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataKeyInfo {
    /// The id every file sealed under it records.
    pub id: u64,
    /// When it was created, in unix seconds.
    pub created_at: u64,
}

/// The shared state of an open database.
pub(crate) struct DbInner {
    pub(crate) opts: Options,
    /// The key registry of an encrypted database.
    pub(crate) keys: Option<Arc<KeyRegistry>>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) levels: Arc<Levels>,
    pub(crate) memtables: Arc<Memtables>,
    pub(crate) vlog: Option<Arc<ValueLog>>,
    pub(crate) queue: Arc<WriteQueue>,
    pub(crate) poison: Arc<Poison>,
    /// Commit watermark: every version at or below `done_until` is applied.
    pub(crate) applied: Arc<WaterMark>,
    /// Timestamps and conflict detection; commit timestamps are assigned under the write
    /// queue's lock.
    pub(crate) oracle: Arc<Oracle>,
    pub(crate) compactor: Arc<Compactor>,
    /// The read side: snapshots, point reads, iterators.
    pub(crate) reader: Arc<Reader>,
    /// Dead value-log bytes per file, shared by compaction and GC.
    discards: Arc<DiscardTracker>,
    /// Value-log GC (`None` without a value log or when read-only).
    gc: Option<Arc<ValueLogGc>>,
    /// One `drop_all` or `drop_prefix` at a time.
    dropping: Mutex<()>,
    /// Automatic GC runs on a background thread.
    auto_gc: bool,
    /// The MANIFEST, shared with the levels, the value log and the writer.
    manifest: Arc<SharedManifest>,
    /// The commit side, shared with transactions and write batches.
    pub(crate) committer: Arc<Committer>,
    writeback: Arc<Signal>,
    next_mem_id: Arc<AtomicU64>,
    closing: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Subscriptions, published to by the writer; closed after the writer stopped.
    publisher: Arc<Publisher>,
    /// Directory locks, released by close.
    locks: Mutex<Vec<Box<dyn StorageLock>>>,
}

impl std::fmt::Debug for DbInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.opts.dir)
            .field("committer", &self.committer)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) the database described by `opts`.
    pub fn open(opts: Options) -> Result<Db> {
        Db::open_with_mode(opts, false)
    }

    /// Opens a database in managed mode: the caller supplies every read and commit timestamp
    /// ([`Db::new_transaction_at`], [`crate::Txn::commit_at`]) and the discard timestamp
    /// ([`Db::set_discard_ts`]). Mixing in calls that assign timestamps is an error.
    pub fn open_managed(opts: Options) -> Result<Db> {
        Db::open_with_mode(opts, true)
    }

    fn open_with_mode(opts: Options, managed: bool) -> Result<Db> {
        opts.validate()?;
        let opts = effective_options(opts);
        let storage = opts.storage.clone();
        crate::inventory::check_keys(&storage, &opts)?;
        let locks = crate::inventory::lock_dirs(storage.as_ref(), &opts)?;
        let keys = crate::inventory::open_keys(&storage, &opts, opts.read_only)?;
        let dirs = Dirs {
            dir: &opts.dir,
            value_dir: &opts.value_dir,
            keys: keys.as_deref(),
        };
        if opts.read_only && !storage.exists(&opts.dir.join(MANIFEST_FILE_NAME))? {
            // A lost MANIFEST is corruption whatever the mode; only a directory without
            // database files is the "nothing to open" a read-only open reports below.
            let empty = crate::manifest::Manifest::new(opts.max_levels);
            take_inventory(storage.as_ref(), dirs, &empty, false)?.check()?;
        }
        let (manifest_file, state) = ManifestFile::open(
            storage.clone(),
            &opts.dir,
            ManifestOptions::from_options(&opts),
        )?;
        let mut inventory =
            take_inventory(storage.as_ref(), dirs, &state, manifest_file.existed())?;
        inventory.check()?;
        tracing::debug!(
            dir = %opts.dir.display(),
            tables = state.tables().len(),
            wals = ?inventory.wals,
            vlog_files = inventory.vlogs.len(),
            garbage = inventory.garbage.len(),
            abandoned_ops = inventory.abandoned_ops.len(),
            "open: inventory taken"
        );
        let stats = Arc::new(EngineStats::new(opts.metrics_enabled));
        let manifest = Arc::new(SharedManifest::new(manifest_file));
        let levels = Arc::new(Levels::open(
            storage.clone(),
            &opts,
            manifest.clone(),
            &state,
            keys.clone(),
            stats.clone(),
        )?);
        let vlog = recover_value_log(&storage, &opts, &inventory.vlogs, &manifest, &keys)?;
        let replayed = replay_wals(
            storage.as_ref(),
            &opts,
            &inventory.wals,
            vlog.as_deref(),
            keys.as_deref(),
        )?;
        let max_version = max_version(&levels.snapshot(), &replayed);
        let mut next_mem_id = replayed
            .iter()
            .map(|m| m.id() + 1)
            .fold(state.next_wal_id(), u64::max);
        let memtables = if opts.read_only {
            let mutable = Arc::new(Memtable::in_memory(next_mem_id));
            next_mem_id += 1;
            Memtables::new(mutable, replayed, usize::MAX)
        } else {
            // Everything validated: now (and only now) write.
            manifest.start_writing()?;
            inventory.remove_garbage(storage.as_ref(), &manifest)?;
            if let Some(v) = &vlog {
                v.start_writing()?;
            }
            flush_replayed(&levels, vlog.as_deref(), &opts, &replayed)?;
            let mutable = Arc::new(new_memtable(
                storage.as_ref(),
                &opts,
                next_mem_id,
                &manifest,
                keys.as_deref(),
            )?);
            next_mem_id += 1;
            Memtables::new(mutable, Vec::new(), opts.num_memtables)
        };
        let applied = Arc::new(WaterMark::new(max_version));
        let oracle = Arc::new(Oracle::new(
            max_version,
            managed,
            opts.detect_conflicts,
            applied.clone(),
        ));
        let memtables = Arc::new(memtables);
        let namespaces = Arc::new(Namespaces::new(opts.namespace_offset));
        let reader = Arc::new(Reader::new(
            memtables.clone(),
            levels.clone(),
            vlog.clone(),
            applied.clone(),
            &opts.dir,
            namespaces.clone(),
        ));
        if namespaces.enabled() {
            namespaces.publish(reader.stored_bans()?);
        }
        let discards = Arc::new(match &vlog {
            Some(_) => DiscardTracker::load(storage.clone(), opts.value_dir.clone())?,
            None => DiscardTracker::in_memory(storage.clone()),
        });
        let queue = Arc::new(WriteQueue::new(WRITE_QUEUE_CAPACITY));
        let poison = Arc::new(Poison::default());
        let gc = match &vlog {
            Some(v) if !opts.read_only => Some(Arc::new(ValueLogGc::new(
                reader.clone(),
                queue.clone(),
                v.clone(),
                discards.clone(),
                oracle.clone(),
                poison.clone(),
                opts.clone(),
            ))),
            _ => None,
        };
        let closing = Arc::new(AtomicBool::new(false));
        let committer = Arc::new(Committer {
            opts: opts.clone(),
            queue: queue.clone(),
            oracle: oracle.clone(),
            applied: applied.clone(),
            poison: poison.clone(),
            callbacks: CallbackRunner::start()?,
            closing: closing.clone(),
            closed: AtomicBool::new(false),
            namespaces,
            writer: std::sync::OnceLock::new(),
        });
        let inner = Arc::new(DbInner {
            auto_gc: gc.is_some() && opts.runs_auto_value_log_gc(managed),
            gc,
            dropping: Mutex::new(()),
            compactor: Arc::new(Compactor::new(&opts, levels.clone(), discards.clone())),
            discards,
            queue,
            reader,
            poison,
            writeback: Arc::new(Signal::default()),
            committer,
            applied,
            oracle,
            memtables,
            next_mem_id: Arc::new(AtomicU64::new(next_mem_id)),
            closing,
            threads: Mutex::new(Vec::new()),
            publisher: Arc::new(Publisher::default()),
            locks: Mutex::new(locks),
            storage,
            levels,
            vlog,
            manifest,
            keys,
            opts,
        });
        if !inner.opts.read_only {
            inner.start_threads()?;
        }
        let levels = inner.levels.snapshot();
        tracing::info!(
            dir = %inner.opts.dir.display(),
            read_only = inner.opts.read_only,
            managed,
            tables = (0..levels.level_count()).map(|l| levels.tables(l).len()).sum::<usize>(),
            wals_replayed = inventory.wals.len(),
            vlog_files = inventory.vlogs.len(),
            max_version,
            "opened the database"
        );
        Ok(Db { inner })
    }

    /// The options in effect.
    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// True once [`Db::close`] began; reads, writes and new transactions then fail with
    /// [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        self.inner.check_open().is_err()
    }

    /// True if opened with [`Db::open_managed`].
    pub fn is_managed(&self) -> bool {
        self.inner.oracle.is_managed()
    }

    fn refuse_managed(&self, what: &'static str) -> Result<()> {
        if self.is_managed() {
            Err(Error::InvalidRequest(what))
        } else {
            Ok(())
        }
    }

    fn require_managed(&self, what: &'static str) -> Result<()> {
        if self.is_managed() {
            Ok(())
        } else {
            Err(Error::InvalidRequest(what))
        }
    }

    /// Runs `f` in a read-write transaction and commits it. `Err(Conflict)` means a key `f`
    /// read was changed by another commit meanwhile: run it again.
    pub fn update<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        let mut txn = self.new_transaction(true)?;
        let out = f(&mut txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// Runs `f` in a read-only transaction (a consistent snapshot).
    pub fn view<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        self.inner.check_open()?;
        let mut txn = if self.is_managed() {
            Txn::begin_at(self.committer(), self.inner.reader.clone(), u64::MAX, false)
        } else {
            Txn::begin(self.committer(), self.inner.reader.clone(), false)
        };
        f(&mut txn)
    }

    /// A new transaction at the latest commit; `update` for read-write. Not in managed mode.
    /// On a database opened read-only the transaction is read-only whatever `update` says
    /// (as Badger's): its writes fail with [`Error::ReadOnlyTxn`].
    pub fn new_transaction(&self, update: bool) -> Result<Txn> {
        self.inner.check_open()?;
        self.refuse_managed("managed mode: use new_transaction_at(read_ts, update)")?;
        Ok(Txn::begin(
            self.committer(),
            self.inner.reader.clone(),
            update && !self.inner.opts.read_only,
        ))
    }

    /// Managed mode: a transaction reading at `read_ts`, committed with `commit_at`.
    pub fn new_transaction_at(&self, read_ts: u64, update: bool) -> Result<Txn> {
        self.inner.check_open()?;
        self.require_managed("new_transaction_at needs a database opened with open_managed")?;
        Ok(Txn::begin_at(
            self.committer(),
            self.inner.reader.clone(),
            read_ts,
            update && !self.inner.opts.read_only,
        ))
    }

    /// Managed mode: versions at or below `ts` may be discarded by compaction.
    pub fn set_discard_ts(&self, ts: u64) -> Result<()> {
        self.inner.check_open()?;
        self.require_managed("set_discard_ts needs a database opened with open_managed")?;
        self.inner.oracle.set_discard_ts(ts);
        Ok(())
    }

    /// A batch for many writes at high throughput (not atomic as a whole). Not in managed
    /// mode.
    pub fn new_write_batch(&self) -> Result<WriteBatch> {
        self.inner.check_open()?;
        self.refuse_managed("managed mode: use new_write_batch_at(commit_ts)")?;
        Ok(WriteBatch::new(
            self.committer(),
            self.inner.reader.clone(),
            None,
        ))
    }

    /// Managed mode: a write batch whose writes each carry their own version
    /// ([`WriteBatch::set_entry_at`], [`WriteBatch::delete_at`]; Badger's
    /// `NewManagedWriteBatch`).
    ///
    /// ```
    /// use settdb::{Db, Entry, Options};
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open_managed(Options::new(dir.path()))?;
    /// let mut batch = db.new_managed_write_batch()?;
    /// batch.set_entry_at(Entry::new("k", "old"), 10)?;
    /// batch.set_entry_at(Entry::new("k", "new"), 20)?;
    /// batch.delete_at("gone", 15)?;
    /// batch.flush()?;
    /// assert_eq!(db.get_at("k", 15)?.as_deref(), Some(&b"old"[..]));
    /// assert_eq!(db.get_at("k", 20)?.as_deref(), Some(&b"new"[..]));
    /// # Ok(()) }
    /// ```
    pub fn new_managed_write_batch(&self) -> Result<WriteBatch> {
        self.inner.check_open()?;
        self.require_managed("new_managed_write_batch needs a database opened with open_managed")?;
        Ok(WriteBatch::new_versioned(
            self.committer(),
            self.inner.reader.clone(),
        ))
    }

    /// Managed mode: a write batch committing every write at `commit_ts`.
    pub fn new_write_batch_at(&self, commit_ts: u64) -> Result<WriteBatch> {
        self.inner.check_open()?;
        self.require_managed("new_write_batch_at needs a database opened with open_managed")?;
        Ok(WriteBatch::new(
            self.committer(),
            self.inner.reader.clone(),
            Some(commit_ts),
        ))
    }

    /// Writes `entries` atomically at one new version and returns that version: the writes
    /// of a transaction without its reads (no conflict check). Build entries with
    /// [`Entry::new`] (with TTL, user meta or discard) and [`Entry::delete`]. Not in managed
    /// mode.
    ///
    /// ```
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use settdb::{Db, Entry, Options};
    /// let db = Db::open(Options::new(dir.path()))?;
    /// let version = db.write(vec![
    ///     Entry::new("a", "1").with_user_meta(7),
    ///     Entry::new("b", "2"),
    ///     Entry::delete("c"),
    /// ])?;
    /// assert_eq!(db.get("a")?.as_deref(), Some(&b"1"[..]));
    /// assert_eq!(db.max_version(), version);
    /// # Ok(()) }
    /// ```
    pub fn write(&self, entries: impl IntoIterator<Item = Entry>) -> Result<u64> {
        let entries = entries
            .into_iter()
            .map(|e| WriteEntry::from_entry(e, 0))
            .collect();
        self.inner.committer.write(entries)
    }

    /// Writes `entries` at the versions they carry, as one atomic group. Managed mode only:
    /// `settdb repair` rebuilds a database this way. Keys are not checked (a rebuilt
    /// database may hold SettDB's own keys).
    pub(crate) fn write_versioned(&self, entries: Vec<WriteEntry>) -> Result<()> {
        self.inner.committer.queue_versioned(entries, false)?.wait()
    }

    fn committer(&self) -> Arc<Committer> {
        self.inner.committer.clone()
    }

    /// The read side (repair looks up what it rebuilt).
    pub(crate) fn reader(&self) -> &Arc<Reader> {
        &self.inner.reader
    }

    /// True if `entries` fit the limits of one write (entries, bytes, value-log bytes).
    pub(crate) fn fits_one_batch(&self, entries: &[WriteEntry]) -> bool {
        let size = entries
            .iter()
            .map(|e| self.inner.opts.entry_charge(e.key.len(), e.value.len()))
            .sum();
        let committer = &self.inner.committer;
        committer
            .check_batch_limits(entries.len() as u64, size)
            .and_then(|()| committer.check_value_log_fit(entries))
            .is_ok()
    }

    /// Sets `key` to `value` at a new version, which it returns.
    pub fn set(&self, key: impl IntoBytes, value: impl IntoBytes) -> Result<u64> {
        self.write([Entry::new(key, value)])
    }

    /// Deletes `key` (writes a tombstone) at a new version, which it returns.
    pub fn delete(&self, key: impl IntoBytes) -> Result<u64> {
        self.write([Entry::delete(key)])
    }

    /// The value of `key` at the latest applied version; `None` if it has none, or it is
    /// deleted or expired.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.get_at(key, self.inner.applied.done_until())
    }

    /// The value of `key` as of `read_ts`.
    pub fn get_at(&self, key: impl AsRef<[u8]>, read_ts: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .get_versioned(key.as_ref(), read_ts)?
            .map(|(_, v)| v))
    }

    /// The latest applied version.
    pub fn max_version(&self) -> u64 {
        self.inner.applied.done_until()
    }

    /// Makes the mutable memtable immutable (ordered after every write queued before this
    /// call) and waits until every immutable memtable is flushed to L0.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Runs compaction steps until no level needs one (tests, tools and `flatten`).
    pub fn compact_until_settled(&self) -> Result<()> {
        self.inner.check_open()?;
        while self.inner.compactor.run_once(self.inner.discard_ts())? {}
        Ok(())
    }

    /// Compacts every level down to the last one, whatever the scores (Badger's `Flatten`):
    /// afterwards all data sits in one level and dropped versions and tombstones are gone.
    /// Flushes the memtable first.
    pub fn flatten(&self) -> Result<()> {
        self.flush()?;
        self.inner.compactor.flatten(self.inner.discard_ts())
    }

    /// The current tables per level.
    pub fn levels(&self) -> Arc<LevelsSnapshot> {
        self.inner.levels.snapshot()
    }

    /// Bytes on disk: the LSM tree's tables and the value log's files, apart (Badger's
    /// `Size`). Files retired by value-log GC but still pinned by a snapshot are not counted.
    pub fn size(&self) -> DbSize {
        DbSize {
            lsm_bytes: self.inner.levels.snapshot().total_size_bytes(),
            vlog_bytes: self.inner.vlog.as_ref().map_or(0, |v| v.total_size_bytes()),
        }
    }

    /// Each value-log file with its size and the bytes compaction found dead in it, by id
    /// (`settdb info --discard`). Empty without a value log.
    pub fn value_log_files(&self) -> Vec<ValueLogFileInfo> {
        let Some(vlog) = &self.inner.vlog else {
            return Vec::new();
        };
        let stats = self.inner.discards.snapshot();
        let active = vlog.active_file_id();
        vlog.file_ids()
            .into_iter()
            .filter_map(|id| {
                let size_bytes = vlog.file_size_bytes(id)?;
                Some(ValueLogFileInfo {
                    file_id: id,
                    size_bytes,
                    discard_bytes: stats.get(id).min(size_bytes),
                    active: active == Some(id),
                })
            })
            .collect()
    }

    /// Rewrites every sealed value-log file whose discard ratio (dead bytes over its bytes)
    /// is at least `discard_ratio`, best first, moving its live values to the newest file and
    /// retiring it (Badger's `RunValueLogGC`, which rewrites one file per call). A file whose
    /// sample is less dead than its statistics, or that still holds a value an open
    /// transaction may read, is left for a later call. Safe while reads and writes run.
    ///
    /// Errors: [`Error::InvalidRequest`] for a ratio outside (0, 1), a read-only or
    /// in-memory database; [`Error::Closed`]; [`Error::Poisoned`]; a damaged value-log file.
    pub fn run_value_log_gc(&self, discard_ratio: f64) -> Result<GcOutcome> {
        self.run_value_log_gc_limited(discard_ratio, usize::MAX)
    }

    /// [`Db::run_value_log_gc`] that stops once it retired `max_files` files (1: Badger's
    /// one file per call), so a caller can pace the work or report progress between calls.
    /// Call again until it returns [`GcOutcome::NothingToRewrite`].
    ///
    /// Errors: those of [`Db::run_value_log_gc`], and [`Error::InvalidRequest`] for a
    /// `max_files` of 0.
    pub fn run_value_log_gc_limited(
        &self,
        discard_ratio: f64,
        max_files: usize,
    ) -> Result<GcOutcome> {
        let inner = &self.inner;
        inner.check_writable()?;
        if max_files == 0 {
            return Err(Error::InvalidRequest(
                "value-log GC: max_files must be at least 1",
            ));
        }
        let gc = inner.gc.as_ref().ok_or(Error::InvalidRequest(
            "value-log GC needs an on-disk database opened read-write",
        ))?;
        let plan = GcPlan {
            discard_ratio,
            max_files,
            rate: None,
            from_statistics: true,
            probes: usize::MAX,
            yield_below: None,
        };
        gc.run(plan, &inner.closing)
    }

    /// Removes every key and value (Badger's `DropAll`): every table goes in one MANIFEST
    /// edit and every value-log file is retired, so the space comes back without writing a
    /// tombstone per key. Writes queued meanwhile wait and are applied after. Iterators and
    /// items created before keep reading what they saw (their files go when they are
    /// dropped); a drop is not versioned, so a transaction begun before it no longer finds
    /// the dropped keys, as in Badger. Data written just before is dropped too. Banned
    /// namespaces stay banned (their records are written again; Badger loses them at reopen).
    ///
    /// Errors: [`Error::InvalidRequest`] read-only; [`Error::Closed`]; [`Error::Poisoned`];
    /// the I/O errors of the flushes and the MANIFEST edit.
    pub fn drop_all(&self) -> Result<()> {
        let inner = &self.inner;
        inner.check_writable()?;
        let namespaces = inner.reader.namespaces();
        let _no_ban = namespaces.lock_banning();
        let _one = inner.dropping.lock().unwrap_or_else(|e| e.into_inner());
        crate::bulk_drop::drop_all(&inner.drop_context(&|| inner.discard_ts()))?;
        // The ban records went with everything else; the bans stand.
        let bans = namespaces.banned();
        if bans.is_empty() {
            return Ok(());
        }
        inner.committer.write_ban_records(&bans)
    }

    /// Removes every version of every key that starts with one of `prefixes` (Badger's
    /// `DropPrefix`): the tables that may hold such keys are rewritten without them in one
    /// MANIFEST operation (all or nothing across a crash), and their values are counted for
    /// value-log GC. Writes queued meanwhile wait and are applied after (a key written under a
    /// prefix after this call began is kept). Iterators created before keep reading what they
    /// saw; transactions begun before do not (the drop is not versioned). An empty list does
    /// nothing.
    ///
    /// Errors: [`Error::InvalidRequest`] read-only or for an empty prefix (it matches every
    /// key: use [`Db::drop_all`]); [`Error::Closed`]; [`Error::Poisoned`]; I/O errors.
    pub fn drop_prefix<P: AsRef<[u8]>>(&self, prefixes: &[P]) -> Result<()> {
        let inner = &self.inner;
        inner.check_writable()?;
        let prefixes: Vec<Vec<u8>> = prefixes.iter().map(|p| p.as_ref().to_vec()).collect();
        let _one = inner.dropping.lock().unwrap_or_else(|e| e.into_inner());
        crate::bulk_drop::drop_prefix(&inner.drop_context(&|| inner.discard_ts()), &prefixes)
    }

    /// Checks the open database's bytes (Badger's `VerifyChecksum`): every block checksum of
    /// every live table, every record of every sealed value-log file (the one being appended
    /// to is checked as it is read), and that the newest version
    /// of each key points at value-log bytes that are there; over one read snapshot, while
    /// reads and writes go on. Damage is listed in [`VerifyReport::problems`], not returned
    /// as the first error. `settdb verify` runs [`crate::verify`] instead, which also checks
    /// the MANIFEST and the WALs and works on a database that no longer opens.
    ///
    /// Errors: [`Error::Closed`]; an iterator error that stops the walk.
    pub fn verify_checksum(&self) -> Result<VerifyReport> {
        self.inner.check_open()?;
        let snap = self.inner.reader.snapshot();
        let tables: Vec<Arc<Table>> = (0..snap.levels.level_count())
            .flat_map(|l| snap.levels.tables(l).iter().map(|t| t.table().clone()))
            .collect();
        // A pass over the whole tree: it must not flush the block cache (fill_cache off).
        let sources = snap.sources(None, &PrefixRange::new(&[]), 0, false);
        crate::verify::verify_open(&tables, sources, self.inner.vlog.as_deref())
    }

    /// The data keys of an encrypted database, oldest first (empty for a plaintext one). New
    /// files are sealed under the newest, which is replaced once it is older than
    /// `encryption_key_rotation_duration`; a file keeps the key it was sealed with.
    pub fn encryption_keys(&self) -> Vec<DataKeyInfo> {
        self.inner.keys.as_ref().map_or_else(Vec::new, |k| {
            k.key_ids()
                .into_iter()
                .map(|(id, created_at)| DataKeyInfo { id, created_at })
                .collect()
        })
    }

    /// The block and index caches' statistics: hits, misses, inserts, evictions, entries,
    /// bytes held and capacity of each (all zero for a cache that is off).
    pub fn cache_metrics(&self) -> CacheMetrics {
        self.inner.levels.cache_metrics()
    }

    /// What the engine has done since it was opened, and the levels, caches and write queue as
    /// they are now. Kept whatever [`Options::metrics_enabled`] says; cheap (a few atomic loads
    /// and the current levels snapshot).
    ///
    /// ```
    /// # fn main() -> settdb::Result<()> {
    /// let db = settdb::Db::open(settdb::Options::new("").with_in_memory(true))?;
    /// db.set(&b"answer"[..], &b"42"[..])?;
    /// assert_eq!(db.get(b"answer")?.as_deref(), Some(&b"42"[..]));
    /// db.flush()?;
    /// let stats = db.stats();
    /// assert_eq!(stats.puts, 1);
    /// assert_eq!((stats.gets, stats.memtable_hits), (1, 1));
    /// assert_eq!(stats.flushes, 1);
    /// assert_eq!(stats.levels[0].tables, 1);
    /// # db.close()
    /// # }
    /// ```
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let mut stats = inner.levels.stats().snapshot();
        let levels = inner.levels.snapshot();
        stats.levels = (0..levels.level_count())
            .map(|l| LevelStats::new(l, levels.tables(l).len(), levels.level_size_bytes(l)))
            .collect();
        stats.cache = self.cache_metrics();
        stats.pending_writes = inner.queue.len();
        stats
    }

    /// Makes every write acknowledged so far durable (value log, then WAL), whatever
    /// `sync_writes` says (Badger's `Sync`).
    pub fn sync(&self) -> Result<()> {
        self.inner.check_writable()?;
        self.inner
            .queue
            .push_with(|| Ok(WriteRequest::sync_barrier()))?
            .wait()
    }

    /// Subscribes to the committed updates of the keys any of `matches` takes (Badger's
    /// `Subscribe`); [`Db::subscribe_with`] with the default [`SubscribeOptions`].
    ///
    /// What is delivered: every write applied after this returns whose user key matches —
    /// commits of transactions, write batches, [`Db::set`] / [`Db::delete`] / [`Db::write`],
    /// and versions restored by [`Db::load`] (as Badger publishes its `Load`; they carry the
    /// backup's versions) — as [`crate::Update`]s with the key, the whole value (taken from
    /// the write itself, even when it went to the value log), the version, the expiry, the
    /// user meta and whether it is a delete. Never delivered: a write that failed (a conflict,
    /// an I/O error), value-log GC rewrites (the same versions moved, not updates), bulk
    /// loads through [`Db::bulk_load`], [`Db::drop_all`] / [`Db::drop_prefix`] (no per-key
    /// writes), and keys under SettDB's internal prefix.
    ///
    /// When and in which order: after the writer applied the write (WAL and memtable, synced
    /// if `sync_writes`) and before its commit returns, in the order writes were applied,
    /// which is commit-timestamp order (in managed mode: the order of the `commit_at` calls'
    /// queueing, whatever timestamps they carry). One batch holds the matching updates of
    /// one group commit, so a transaction is never split across batches; entries of one
    /// transaction share its version.
    ///
    /// Lag policy: writes never wait for a subscriber. Each subscription buffers at most
    /// [`SubscribeOptions::max_buffered_batches`] batches and
    /// [`SubscribeOptions::max_buffered_bytes`] bytes; a batch that does not fit ends the
    /// subscription: it still yields what it buffered, then
    /// [`Error::SubscriberLagged`] with the first version it missed, then ends. Nothing is
    /// skipped silently.
    ///
    /// End: dropping or cancelling the [`Subscription`] ends it at once; closing the
    /// database ends it after it yielded every batch applied before the close (the
    /// iterator then returns `None`, no error).
    ///
    /// Errors: [`Error::Closed`]; [`Error::InvalidRequest`] for an empty `matches`.
    ///
    /// ```
    /// use settdb::{Db, Match, Options};
    ///
    /// let db = Db::open(Options::in_memory())?;
    /// let mut sub = db.subscribe([Match::prefix("user/")])?;
    /// db.set("user/1", "ann")?;
    /// db.set("other", "x")?;
    /// db.delete("user/1")?;
    /// db.close()?;
    /// let updates: Vec<_> = sub.by_ref().collect::<settdb::Result<Vec<_>>>()?.concat();
    /// assert_eq!(updates.len(), 2);
    /// assert_eq!((&updates[0].key[..], &updates[0].value[..]), (&b"user/1"[..], &b"ann"[..]));
    /// assert!(updates[1].is_delete && updates[1].version > updates[0].version);
    /// # Ok::<(), settdb::Error>(())
    /// ```
    pub fn subscribe(&self, matches: impl IntoIterator<Item = Match>) -> Result<Subscription> {
        self.subscribe_with(matches, SubscribeOptions::default())
    }

    /// [`Db::subscribe`] with the buffer limits of `limits` (the lag policy).
    ///
    /// Errors: those of [`Db::subscribe`].
    pub fn subscribe_with(
        &self,
        matches: impl IntoIterator<Item = Match>,
        limits: SubscribeOptions,
    ) -> Result<Subscription> {
        self.inner.check_open()?;
        self.inner
            .publisher
            .subscribe(matches.into_iter().collect(), limits)
    }

    /// Stops writes, flushes the memtable, stops background work, syncs and releases the
    /// directory lock. Idempotent.
    pub fn close(&self) -> Result<()> {
        self.inner.close()
    }

    /// Bulk-loads an empty database (Badger's `StreamWriter`): `f` writes sorted streams of
    /// KVs through the [`StreamWriter`] it is given, straight into tables at the last level
    /// (large values through the value log), bypassing memtables, WAL and compaction; when `f`
    /// returns `Ok`, every table is added in one MANIFEST edit and the next commit timestamp
    /// goes above the largest version written. All or nothing: if `f` or the load fails,
    /// nothing it wrote is kept, and a crash before the end leaves the database as it was.
    /// Writes queued meanwhile wait; compactions and value-log GC pause.
    ///
    /// Errors: [`Error::InvalidRequest`] if the database holds any table when the load starts
    /// (use [`Db::load`], or [`Db::drop_all`] first), if a stream's KVs are out of order or
    /// two streams overlap; read-only, closed, poisoned; I/O errors; `f`'s error.
    pub fn bulk_load<T>(
        &self,
        f: impl FnOnce(&mut StreamWriter<'_>) -> Result<T>,
    ) -> Result<(T, BulkLoadSummary)> {
        let inner = &self.inner;
        inner.check_writable()?;
        let _one = inner.dropping.lock().unwrap_or_else(|e| e.into_inner());
        let ctx = StreamWriterContext {
            opts: &inner.opts,
            levels: &inner.levels,
            vlog: inner.vlog.as_ref(),
            writeback: &inner.writeback,
        };
        let raise = |v| inner.committer.loaded_up_to(v);
        crate::stream_writer::run(&inner.drop_context(&|| inner.discard_ts()), ctx, &raise, f)
    }

    /// Writes the ban records of `namespaces`; durable when it returns.
    pub(crate) fn write_ban_records(&self, namespaces: &[u64]) -> Result<()> {
        self.inner.committer.write_ban_records(namespaces)
    }

    /// Key namespaces and the banned ones.
    pub(crate) fn namespaces(&self) -> &Arc<Namespaces> {
        self.inner.reader.namespaces()
    }

    /// Queues loaded versions ([`Db::load`]).
    pub(crate) fn load_batch(&self, entries: Vec<WriteEntry>) -> Result<Arc<Completion>> {
        self.inner.committer.queue_loaded(entries)
    }

    /// Loaded versions up to `version` are applied ([`Db::load`]).
    pub(crate) fn loaded_up_to(&self, version: u64) {
        self.inner.committer.loaded_up_to(version);
    }

    /// An iterator at `read_ts`, which the caller keeps registered (a stream's transaction).
    pub(crate) fn iter_at(&self, read_ts: u64, opts: IteratorOptions) -> Result<DbIterator> {
        self.inner.new_iterator(read_ts, opts, None)
    }

    /// An iterator over the keys at the latest applied version; see [`IteratorOptions`].
    /// Call [`DbIterator::rewind`] or [`DbIterator::seek`] first (or iterate it with `for`).
    /// Errors: [`Error::Closed`] after [`Db::close`].
    pub fn iter(&self, opts: IteratorOptions) -> Result<DbIterator> {
        self.inner
            .new_iterator(self.inner.applied.done_until(), opts, None)
    }
}

/// Bytes a database takes on disk ([`Db::size`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbSize {
    /// Bytes of the LSM tree's tables.
    pub lsm_bytes: u64,
    /// Bytes of the value log's files.
    pub vlog_bytes: u64,
}

/// One value-log file ([`Db::value_log_files`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueLogFileInfo {
    /// The file id (`NNNNNN.vlog`).
    pub file_id: u32,
    /// Its valid bytes.
    pub size_bytes: u64,
    /// Bytes of its records that a compaction or a flush dropped (what GC would give back).
    pub discard_bytes: u64,
    /// True for the file being appended to (never collected).
    pub active: bool,
}

impl ValueLogFileInfo {
    /// Dead bytes over the file's bytes.
    pub fn discard_ratio(&self) -> f64 {
        if self.size_bytes == 0 {
            0.0
        } else {
            self.discard_bytes as f64 / self.size_bytes as f64
        }
    }
}

impl DbInner {
    /// `Err(Closed)` once [`Db::close`] began: every call after it fails so.
    pub(crate) fn check_open(&self) -> Result<()> {
        self.committer.check_open()
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.committer.check_writable()
    }

    /// The newest live version of `key` at or below `read_ts`, with its value.
    pub(crate) fn get_versioned(&self, key: &[u8], read_ts: u64) -> Result<Option<(u64, Vec<u8>)>> {
        self.check_open()?;
        validate_key(key)?;
        self.reader.namespaces().check(key)?;
        self.reader.get(key, read_ts)
    }

    /// What `drop_all`, `drop_prefix` and `bulk_load` work with.
    fn drop_context<'a>(&'a self, discard_ts: &'a dyn Fn() -> u64) -> DropContext<'a> {
        DropContext {
            queue: &self.queue,
            memtables: &self.memtables,
            compactor: &self.compactor,
            levels: &self.levels,
            vlog: self.vlog.as_ref(),
            discards: &self.discards,
            gc: self.gc.as_deref(),
            poison: &self.poison,
            discard_ts,
        }
    }

    /// Versions at or below this may be discarded by compaction: no reader can see them.
    pub(crate) fn discard_ts(&self) -> u64 {
        self.oracle.discard_ts()
    }

    fn flush(&self) -> Result<()> {
        self.check_writable()?;
        let completion = self
            .queue
            .push_with(|| Ok(WriteRequest::rotate_memtable()))?;
        completion.wait()?;
        self.wait_flushed()
    }

    /// Waits until no immutable memtable is left, or the database is poisoned.
    fn wait_flushed(&self) -> Result<()> {
        while self.memtables.immutable_count() > 0 {
            self.poison.check()?;
            self.memtables.wait_flushed_for(POLL);
        }
        self.poison.check()
    }

    fn start_threads(self: &Arc<Self>) -> Result<()> {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let writer = Arc::new(Writer::new(self.writer_context()));
        // Committers apply a lone request themselves when the writer is idle.
        let _ = self.committer.writer.set(writer.clone());
        threads.push(spawn("settdb-writer", move || writer.run())?);
        let flusher = Flusher {
            memtables: self.memtables.clone(),
            levels: self.levels.clone(),
            vlog: self.vlog.clone(),
            poison: self.poison.clone(),
            closing: self.closing.clone(),
            builder_opts: TableBuilderOptions::from_options(&self.opts, self.opts.mem_table_size),
            // Without compactors nothing would ever shrink L0: no stall then.
            l0_stall: (self.opts.num_compactors > 0)
                .then_some(self.opts.num_level_zero_tables_stall),
            discard_ts: {
                let oracle = self.oracle.clone();
                Box::new(move || oracle.discard_ts())
            },
            num_versions_to_keep: self.opts.num_versions_to_keep,
            discards: self.discards.clone(),
        };
        threads.push(spawn("settdb-flusher", move || flusher.run())?);
        if let Some(vlog) = self.vlog.clone() {
            let (signal, closing, poison) = (
                self.writeback.clone(),
                self.closing.clone(),
                self.poison.clone(),
            );
            threads.push(spawn("settdb-vlog-writeback", move || {
                if let Err(e) = vlog.run_writeback(&|| signal.wait(POLL), &closing) {
                    tracing::error!(error = %e, "value-log writeback failed");
                    poison.set(&e);
                }
            })?);
        }
        if let (true, Some(gc)) = (self.auto_gc, self.gc.clone()) {
            let (closing, poison, opts) =
                (self.closing.clone(), self.poison.clone(), self.opts.clone());
            let nice = opts.background_nice;
            threads.push(spawn_background("settdb-vlog-gc", nice, move || {
                gc.run_automatic(&opts, &closing, &poison);
            })?);
        }
        for i in 0..self.opts.num_compactors {
            let compactor = self.compactor.clone();
            let (closing, oracle, poison) = (
                self.closing.clone(),
                self.oracle.clone(),
                self.poison.clone(),
            );
            // The discard timestamp comes from the oracle (oldest live read timestamp), never
            // from the commit watermark alone, or open snapshots would lose versions.
            let (name, nice) = (format!("settdb-compactor-{i}"), self.opts.background_nice);
            threads.push(spawn_background(&name, nice, move || {
                compactor.run_loop(&closing, &|| oracle.discard_ts(), &poison);
            })?);
        }
        Ok(())
    }

    fn writer_context(&self) -> WriterContext {
        WriterContext {
            value_threshold: Arc::new(ValueThreshold::new(
                self.opts.value_threshold,
                self.opts.max_value_threshold(),
                self.opts.vlog_percentile,
            )),
            mem_table_size: self.opts.mem_table_size,
            sync_writes: self.opts.sync_writes,
            // Raw bytes, values included: a group's value-log values then fit one file too.
            limits: GroupLimits {
                max_entries: self.opts.max_batch_count(),
                max_bytes: self
                    .opts
                    .max_batch_size()
                    .min(self.opts.value_log_file_size),
            },
            wal_dir: (!self.opts.in_memory).then(|| self.opts.dir.clone()),
            manifest: self.manifest.clone(),
            storage: self.storage.clone(),
            queue: self.queue.clone(),
            memtables: self.memtables.clone(),
            vlog: self.vlog.clone(),
            next_memtable_id: self.next_mem_id.clone(),
            applied: self.applied.clone(),
            poison: self.poison.clone(),
            writeback: self.writeback.clone(),
            keys: self.keys.clone(),
            publisher: self.publisher.clone(),
            stats: self.levels.stats().clone(),
        }
    }

    fn close(&self) -> Result<()> {
        if self.committer.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if self.opts.read_only {
            self.publisher.close();
            self.release_locks();
            tracing::info!(dir = %self.opts.dir.display(), "closed the database");
            return Ok(());
        }
        // Writes already queued are applied; the barrier then rotates the last memtable.
        let flushed = self
            .queue
            .push_with(|| Ok(WriteRequest::rotate_memtable()))
            .and_then(|c| c.wait())
            .and_then(|()| self.wait_flushed());
        self.closing.store(true, Ordering::Release);
        self.writeback.raise();
        self.queue.close();
        let compacted = if flushed.is_ok() && self.opts.compact_l0_on_close {
            self.compactor.compact_l0_fully(self.discard_ts())
        } else {
            Ok(())
        };
        self.memtables.close();
        self.levels.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        // Every request is completed now, so no callback waits forever.
        self.committer.callbacks.shutdown();
        // The writer stopped: every applied group was published; subscriptions drain and end.
        self.publisher.close();
        let synced = match &self.vlog {
            Some(v) => v.close(),
            None => Ok(()),
        };
        self.release_locks();
        let result = flushed.and(compacted).and(synced);
        match &result {
            Ok(()) => tracing::info!(dir = %self.opts.dir.display(), "closed the database"),
            Err(e) => tracing::error!(dir = %self.opts.dir.display(), error = %e, "close failed"),
        }
        result
    }

    fn release_locks(&self) {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// An iterator at `read_ts` (see [`Reader::iter`]).
    pub(crate) fn new_iterator(
        &self,
        read_ts: u64,
        opts: IteratorOptions,
        pending: Option<VecIterator>,
    ) -> Result<DbIterator> {
        self.check_open()?;
        Ok(self.reader.iter(read_ts, opts, pending))
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        // Dropping without close still flushes and stops the threads; errors have no caller
        // to go to, and the next open recovers from the WAL whatever did not reach a table.
        let _ = self.close();
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| Error::io("spawn thread", PathBuf::from(name), e))
}

/// [`spawn`] for a background thread that first lowers its CPU priority to `nice`
/// ([`Options::background_nice`]). If the system refuses, the thread runs at normal priority
/// and says so in a warning: only scheduling changes, never what the thread does.
fn spawn_background(
    name: &str,
    nice: i32,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let owned = name.to_string();
    spawn(name, move || {
        if let Err(e) = crate::io::cpu_priority::lower_current_thread(nice) {
            tracing::warn!(thread = %owned, nice, error = %e, "could not lower the thread's CPU priority");
        }
        f()
    })
}

/// In-memory mode runs on a private in-memory storage (no files, one copy of every byte); the
/// value log is not used (every value stays inline).
fn effective_options(mut opts: Options) -> Options {
    if opts.in_memory {
        opts.storage = Arc::new(MemStorage::new());
        opts.dir = PathBuf::from(IN_MEMORY_DIR);
        opts.value_dir = opts.dir.clone();
    }
    opts
}

/// Recovers the value log's `listed` files without writing (the engine starts writing after
/// WAL replay).
fn recover_value_log(
    storage: &Arc<dyn Storage>,
    opts: &Options,
    listed: &[u32],
    manifest: &Arc<SharedManifest>,
    keys: &Option<Arc<KeyRegistry>>,
) -> Result<Option<Arc<ValueLog>>> {
    if opts.in_memory {
        return Ok(None);
    }
    let (vlog, recovery) = ValueLog::recover_listed(
        storage.clone(),
        &opts.value_dir,
        ValueLogOptions::from_options(opts).with_keys(keys.clone()),
        listed,
        manifest.clone(),
    )?;
    for f in &recovery.files {
        tracing::debug!(
            file_id = f.id,
            file_len = f.file_len,
            valid_end = f.valid_end,
            check = ?f.check,
            "open: value-log file checked"
        );
        if f.tail_bytes() > 0 {
            tracing::warn!(
                file_id = f.id,
                tail_bytes = f.tail_bytes(),
                "open: value-log file ends in a torn tail (not synced before a crash); ignored"
            );
        }
    }
    Ok(Some(Arc::new(vlog)))
}

/// Replays the live WALs (`wals`, ascending) into memtables (oldest first). Every WAL but the
/// newest was sealed when its memtable became immutable; one that does not end in its seal was
/// cut or damaged at its end (rule 12).
fn replay_wals(
    storage: &dyn Storage,
    opts: &Options,
    wals: &[u64],
    vlog: Option<&ValueLog>,
    keys: Option<&KeyRegistry>,
) -> Result<Vec<Arc<Memtable>>> {
    if opts.in_memory {
        return Ok(Vec::new());
    }
    let valid = |vp: &ValuePointer| vlog.is_some_and(|v| v.pointer_is_valid(vp));
    let mut out = Vec::new();
    for (i, &id) in wals.iter().enumerate() {
        let newer = wals.get(i + 1).copied();
        let mem = Memtable::replay_live(storage, &opts.dir, id, newer, keys, &valid)?;
        tracing::debug!(
            wal_id = id,
            entries = mem.list().len(),
            max_version = mem.list().max_version(),
            "open: WAL replayed"
        );
        out.push(Arc::new(mem));
    }
    Ok(out)
}

fn flush_replayed(
    levels: &Levels,
    vlog: Option<&ValueLog>,
    opts: &Options,
    replayed: &[Arc<Memtable>],
) -> Result<()> {
    let builder_opts = TableBuilderOptions::from_options(opts, opts.mem_table_size);
    // Every version is kept: in managed mode the discard timestamp is not known yet.
    for mem in replayed {
        flush_memtable(mem, levels, vlog, builder_opts, None)?;
    }
    Ok(())
}

/// A fresh memtable with id `id`; its WAL is created durably, then recorded in the MANIFEST.
fn new_memtable(
    storage: &dyn Storage,
    opts: &Options,
    id: u64,
    manifest: &SharedManifest,
    keys: Option<&KeyRegistry>,
) -> Result<Memtable> {
    if opts.in_memory {
        return Ok(Memtable::in_memory(id));
    }
    let mem = Memtable::create(storage, &opts.dir, id, keys)?;
    manifest.edit(&[ManifestChange::CreateWal { wal_id: id }])?;
    Ok(mem)
}

fn max_version(levels: &LevelsSnapshot, memtables: &[Arc<Memtable>]) -> u64 {
    let tables = (0..levels.level_count())
        .flat_map(|l| levels.tables(l).iter().map(|t| t.table().max_version()))
        .max()
        .unwrap_or(0);
    let mems = memtables
        .iter()
        .map(|m| m.list().max_version())
        .max()
        .unwrap_or(0);
    tables.max(mems)
}

//! [`ValueLog`]: the value-log files of a database, with one writer and any number of readers.
//!
//! ```text
//! value_dir := NNNNNN.vlog*     each one log file of kind ValueLog (log.md); pointers name
//!                               records by (file id, offset, length)
//! ```
//!
//! Normative page: docs/format/vlog.md.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::file_name::{vlog_file_name, FIRST_VLOG_FILE_ID};
use super::recovery::{recover_dir, Recovered, VlogRecovery};
use super::vlog_file::VlogFile;
use super::vlog_writer::{Placement, RotationLimits, VlogWriter};
use crate::error::{Error, Result};
use crate::io::Storage;
use crate::log::FIRST_BATCH_OFFSET;
use crate::log::{replay, LogKind, LogWriter, OwnedRecord, RecordRef, ReplayEnd};
use crate::options::Options;
use crate::value::ValuePointer;

/// How a [`ValueLog`] is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueLogOptions {
    /// The active file is rotated before a write group once its end reaches this many bytes
    /// ([`Options::value_log_file_size`]). A group is never split, so a file may pass it by
    /// one group.
    pub max_file_size_bytes: u64,
    /// The active file is rotated before a write group that would take it past this many
    /// records ([`Options::value_log_max_entries`]).
    pub max_entries: u32,
    /// Never write: no file is created, sealed or removed, and appends are refused.
    pub read_only: bool,
}

impl ValueLogOptions {
    /// The value-log options of a database's options.
    pub fn from_options(opts: &Options) -> Self {
        ValueLogOptions {
            max_file_size_bytes: opts.value_log_file_size,
            max_entries: opts.value_log_max_entries,
            read_only: opts.read_only,
        }
    }
}

/// What the writer side can do now.
enum WriteState {
    /// Opened read-only: never writes.
    ReadOnly,
    /// Recovered; [`ValueLog::start_writing`] has not run yet.
    Recovered(PendingStart),
    /// The active file takes appends.
    Writing(VlogWriter),
    /// [`ValueLog::start_writing`] failed part way: nothing more is written.
    Broken(String),
    /// Closed: appends are refused, reads still work.
    Closed,
}

/// What [`ValueLog::start_writing`] does, decided by recovery.
struct PendingStart {
    /// The newest file's id and replay end, if it holds a batch: it is sealed there.
    seal: Option<(u32, ReplayEnd)>,
    /// Files holding no batch (and an unborn newest file): removed.
    remove: Vec<u32>,
    /// Id of the new active file: one past every id found.
    next_id: Option<u32>,
}

/// The value log: files `NNNNNN.vlog` in one directory holding the values of at least
/// `value_threshold` bytes, which the LSM tree stores as [`ValuePointer`]s.
///
/// Threads:
/// - the engine's single writer thread calls [`ValueLog::append`] (one write group, one batch);
/// - any thread calls [`ValueLog::sync`] (the writer before a WAL sync, flush before writing a
///   table: DESIGN.md rule 5) and [`ValueLog::close`]; they share the writer mutex, which is
///   held across the append's write and the sync's fsync;
/// - any number of threads call [`ValueLog::read`], [`ValueLog::pointer_is_valid`] and the
///   accessors; they never wait for the writer mutex, and hold the file map's read lock only
///   to clone one `Arc` out, never across I/O;
/// - value-log GC (not built yet) calls [`ValueLog::iterate_file`] and
///   [`ValueLog::delete_file`] on files other than the active one.
///
/// Invariants: every file but the active one (the highest id) is complete and durable; a
/// file's readable end only grows, and only the active file's grows; `active_id` only grows.
/// Lock order: `state` before `files`.
pub struct ValueLog {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    limits: RotationLimits,
    /// Every open file by id. Written only by rotation and start (adding) and by removal.
    files: RwLock<BTreeMap<u32, Arc<VlogFile>>>,
    /// Id of the active file; 0 (never a file id) when there is none.
    active_id: AtomicU32,
    state: Mutex<WriteState>,
}

impl fmt::Debug for ValueLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueLog")
            .field("dir", &self.dir)
            .field("limits", &self.limits)
            .field("file_ids", &self.file_ids())
            .field("active_file_id", &self.active_file_id())
            .finish()
    }
}

impl ValueLog {
    /// Recovers the value log in `dir` ([`ValueLog::recover`]) and, unless read-only, makes it
    /// ready for appends ([`ValueLog::start_writing`]). Nothing is written before every file
    /// has been checked; a read-only open never writes.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ValueLogOptions,
    ) -> Result<(ValueLog, VlogRecovery)> {
        let (vlog, recovery) = ValueLog::recover(storage, dir, opts)?;
        if !opts.read_only {
            vlog.start_writing()?;
        }
        Ok((vlog, recovery))
    }

    /// Checks every value-log file in `dir` and opens them for reading, writing nothing (in
    /// any mode): the newest file is replayed to find its valid end, older ones have their
    /// header checked (docs/format/vlog.md, "Recovery"). Reads and
    /// [`ValueLog::pointer_is_valid`] work at once; appends wait for
    /// [`ValueLog::start_writing`], so the engine can validate its WALs against the
    /// recovery before anything is written (engine.md, "Open").
    ///
    /// Errors: [`Error::Corruption`], [`Error::ChecksumMismatch`], [`Error::UnsupportedVersion`]
    /// for a damaged file or directory entry; I/O errors.
    pub fn recover(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ValueLogOptions,
    ) -> Result<(ValueLog, VlogRecovery)> {
        let Recovered {
            report,
            open,
            newest_end,
        } = recover_dir(storage.as_ref(), dir)?;
        let state = if opts.read_only {
            WriteState::ReadOnly
        } else {
            WriteState::Recovered(PendingStart {
                seal: newest_end.filter(|(_, e)| e.valid_end > FIRST_BATCH_OFFSET),
                remove: report
                    .files
                    .iter()
                    .filter(|f| f.is_empty())
                    .map(|f| f.id)
                    .collect(),
                next_id: match report.newest() {
                    Some(f) => f.id.checked_add(1),
                    None => Some(FIRST_VLOG_FILE_ID),
                },
            })
        };
        let vlog = ValueLog {
            storage,
            dir: dir.to_path_buf(),
            limits: RotationLimits {
                max_file_size_bytes: opts.max_file_size_bytes,
                max_entries: opts.max_entries,
            },
            files: RwLock::new(open),
            active_id: AtomicU32::new(0),
            state: Mutex::new(state),
        };
        Ok((vlog, report))
    }

    /// After [`ValueLog::recover`]: seals the newest recovered file (truncates its torn tail
    /// and syncs it, so it is complete before a newer file exists), removes files that hold
    /// no batch, and creates a new active file, one past the highest id found, durably.
    /// Returns the active file's id.
    ///
    /// Errors: [`Error::InvalidRequest`] when read-only or already started, [`Error::Closed`],
    /// I/O errors (after which the value log refuses writes with [`Error::Poisoned`]).
    pub fn start_writing(&self) -> Result<u32> {
        let mut state = self.lock_state();
        let pending = match std::mem::replace(&mut *state, WriteState::Closed) {
            WriteState::Recovered(p) => p,
            other => {
                let err = state_error(&other, "the value log is already writing");
                *state = other;
                return Err(err);
            }
        };
        match self.start(pending) {
            Ok(writer) => {
                let id = writer.active().id();
                self.publish(Arc::clone(writer.active()));
                *state = WriteState::Writing(writer);
                Ok(id)
            }
            Err(e) => {
                *state = WriteState::Broken(format!("value log start failed: {e}"));
                Err(e)
            }
        }
    }

    fn start(&self, p: PendingStart) -> Result<VlogWriter> {
        let next_id = p
            .next_id
            .ok_or(Error::InvalidRequest("value-log file ids are exhausted"))?;
        if let Some((id, end)) = p.seal {
            // Truncates to the valid end and syncs; the writer is dropped unused.
            let path = self.path_of(id);
            LogWriter::open_append(self.storage.as_ref(), &path, LogKind::ValueLog, &end)?;
        }
        for id in &p.remove {
            self.lock_files_mut().remove(id);
            self.storage.remove_file(&self.path_of(*id))?;
        }
        if p.remove.is_empty() {
            self.storage.create_dir_all(&self.dir)?;
        } else {
            self.storage.sync_dir(&self.dir)?;
        }
        VlogWriter::create(Arc::clone(&self.storage), &self.dir, next_id, self.limits)
    }

    /// Appends `records` (internal keys and their values) as ONE batch, with one write, to
    /// the active file, and fills `out` (cleared first) with their value pointers in order.
    /// Before the group, rotates to a new file if the active one is full (never splitting a
    /// group). Not durable until [`ValueLog::sync`]. An empty `records` writes nothing.
    ///
    /// REQUIRES: the engine's single writer thread (concurrent calls are serialised, but the
    /// pointers' order across groups is then the lock's).
    ///
    /// Errors, before anything is written: [`Error::ValueTooLarge`] for a group that cannot
    /// end within `u32::MAX` bytes of a file, record validation errors (as
    /// [`LogWriter::append_batch`]), [`Error::InvalidRequest`] when read-only or not started,
    /// [`Error::Closed`]. A failed write, sync or file creation returns its error and poisons
    /// the value log: every later append and sync fails with [`Error::Poisoned`] (rule 8).
    pub fn append(&self, records: &[RecordRef<'_>], out: &mut Vec<ValuePointer>) -> Result<()> {
        out.clear();
        let mut state = self.lock_state();
        let writer = writer_of(&mut state)?;
        if records.is_empty() {
            return Ok(());
        }
        if writer.place(records)? == Placement::NewFile {
            let next = writer.rotate(&self.dir)?;
            self.publish(next);
        }
        writer.append(records, out)
    }

    /// Makes everything appended so far durable; cheap (no syscall) when nothing is unsynced,
    /// and a no-op when the value log is not writing. Any thread.
    ///
    /// Errors: the sync's error, which poisons the value log; [`Error::Poisoned`] after any
    /// earlier failure.
    pub fn sync(&self) -> Result<()> {
        match &mut *self.lock_state() {
            WriteState::Writing(w) => w.sync(),
            WriteState::Broken(why) => Err(Error::Poisoned(why.clone())),
            WriteState::ReadOnly | WriteState::Recovered(_) | WriteState::Closed => Ok(()),
        }
    }

    /// Syncs the active file and refuses appends from now on; reads keep working.
    pub fn close(&self) -> Result<()> {
        let mut state = self.lock_state();
        if let WriteState::Writing(w) = &mut *state {
            w.sync()?;
        }
        if !matches!(*state, WriteState::Broken(_)) {
            *state = WriteState::Closed;
        }
        Ok(())
    }

    /// True if `vp` names bytes that exist and were validated (or written): its file is open,
    /// `offset >= FIRST_RECORD_OFFSET`, `len` is at least a record and `offset + len` is at
    /// most the file's valid end. What the engine's WAL replay checks each pointer with (a
    /// WAL batch pointing past it was written after value-log bytes that did not survive).
    pub fn pointer_is_valid(&self, vp: &ValuePointer) -> bool {
        self.lock_files()
            .get(&vp.file_id)
            .is_some_and(|f| f.contains(vp))
    }

    /// Reads the record `vp` names, from any thread, and checks that its key is
    /// `expected_key` (the internal key the pointer was stored under).
    ///
    /// Errors, naming the file and `vp.offset`: [`Error::Corruption`] for a file that does not
    /// exist (deleted, or never written), a position outside its valid bytes, bytes that are
    /// not one record of `vp.len` bytes, or another key (a misdirected pointer);
    /// [`Error::ChecksumMismatch`] for a damaged record; I/O errors.
    pub fn read(&self, vp: ValuePointer, expected_key: &[u8]) -> Result<OwnedRecord> {
        self.file_or_missing(vp.file_id, u64::from(vp.offset))?
            .read(vp, expected_key)
    }

    /// Calls `f` with every record of file `id` and its pointer, in file order, from a full
    /// replay of the file (for value-log GC). The file must not be the active one.
    ///
    /// Errors: [`Error::InvalidRequest`] for the active file; [`Error::Corruption`] for a
    /// missing file, and when the replay does not end exactly at the file's valid end (a
    /// sealed file is complete; `f` may then have seen the records before the damage); any
    /// error of `f`, which stops the iteration; I/O errors.
    pub fn iterate_file(
        &self,
        id: u32,
        mut f: impl FnMut(ValuePointer, RecordRef<'_>) -> Result<()>,
    ) -> Result<()> {
        if id == self.active_id.load(Ordering::Acquire) {
            return Err(Error::InvalidRequest(
                "the active value-log file cannot be iterated: it is being appended to",
            ));
        }
        let file = self.file_or_missing(id, 0)?;
        let valid_end = file.readable_end();
        let bad = |at: u64, why: String| Error::corruption(file.path(), at, why);
        let end = replay(file.file().as_ref(), LogKind::ValueLog, |batch| {
            if batch.end() > valid_end {
                return Err(bad(
                    batch.offset(),
                    format!("batch runs past the valid end {valid_end}"),
                ));
            }
            for (pos, rec) in batch.iter() {
                let vp = pos
                    .value_pointer(id)
                    .ok_or_else(|| bad(pos.offset, "record offset past u32".into()))?;
                f(vp, rec)?;
            }
            Ok(())
        })?;
        if end.valid_end != valid_end {
            let why = format!(
                "a sealed value-log file's batches end at {} but the file is valid to {valid_end} ({:?})",
                end.valid_end, end.stop
            );
            return Err(bad(end.valid_end, why));
        }
        Ok(())
    }

    /// Deletes file `id` (value-log GC, after the moved values and the manifest edit are
    /// durable: rule 5): forgets it, removes it, and syncs the directory. Readers that already
    /// hold the open file finish their reads (an open file stays readable after its name is
    /// removed, on Unix and in `SimStorage`); later reads of pointers into it are
    /// `Corruption`. A failure is returned but does not poison the value log (appends do not
    /// depend on it; a removal that did not become durable is redone by the next GC).
    ///
    /// Errors: [`Error::InvalidRequest`] when not writing, for the active file, or for an id
    /// that is not open; I/O errors.
    pub fn delete_file(&self, id: u32) -> Result<()> {
        let active = self.active_id.load(Ordering::Acquire);
        if active == 0 {
            return Err(Error::InvalidRequest(
                "value-log files are deleted only by a writing value log",
            ));
        }
        if id >= active {
            return Err(Error::InvalidRequest(
                "the active value-log file cannot be deleted",
            ));
        }
        let Some(file) = self.lock_files_mut().remove(&id) else {
            return Err(Error::InvalidRequest("no such value-log file"));
        };
        if let Err(e) = self.storage.remove_file(file.path()) {
            self.lock_files_mut().insert(id, file);
            return Err(e);
        }
        self.storage.sync_dir(&self.dir)
    }

    /// Ids of the open files, ascending.
    pub fn file_ids(&self) -> Vec<u32> {
        self.lock_files().keys().copied().collect()
    }

    /// Id of the file appends go to; `None` when read-only or not started.
    pub fn active_file_id(&self) -> Option<u32> {
        Some(self.active_id.load(Ordering::Acquire)).filter(|&id| id != 0)
    }

    /// Valid bytes of every open file together (headers included).
    pub fn total_size_bytes(&self) -> u64 {
        self.lock_files().values().map(|f| f.readable_end()).sum()
    }

    /// Valid bytes of file `id` (the active file's end so far), if it is open.
    pub fn file_size_bytes(&self, id: u32) -> Option<u64> {
        self.lock_files().get(&id).map(|f| f.readable_end())
    }

    /// Path of file `id` in the value directory (whether or not it exists).
    pub fn path_of(&self, id: u32) -> PathBuf {
        self.dir.join(vlog_file_name(id))
    }

    /// The first write failure, if the value log is poisoned.
    pub fn poisoned(&self) -> Option<String> {
        match &*self.lock_state() {
            WriteState::Writing(w) => w.poisoned().map(str::to_owned),
            WriteState::Broken(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// Adds a new active file for readers. REQUIRES: the state lock (writer side).
    fn publish(&self, file: Arc<VlogFile>) {
        let id = file.id();
        debug_assert!(id > self.active_id.load(Ordering::Acquire));
        self.lock_files_mut().insert(id, file);
        self.active_id.store(id, Ordering::Release);
    }

    /// The open file `id`, or the Corruption of a pointer to a file that does not exist.
    fn file_or_missing(&self, id: u32, offset: u64) -> Result<Arc<VlogFile>> {
        let found = self.lock_files().get(&id).cloned();
        found.ok_or_else(|| {
            let why = format!("value pointer names value-log file {id}, which does not exist");
            Error::corruption(self.path_of(id), offset, why)
        })
    }

    fn lock_state(&self) -> MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_files(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<VlogFile>>> {
        self.files.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_files_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, Arc<VlogFile>>> {
        self.files.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer, or why the value log cannot append now.
fn writer_of<'a>(state: &'a mut MutexGuard<'_, WriteState>) -> Result<&'a mut VlogWriter> {
    match &mut **state {
        WriteState::Writing(w) => Ok(w),
        other => Err(state_error(other, "unreachable")),
    }
}

/// The error of an operation that needs a writing value log, in `state`.
fn state_error(state: &WriteState, writing: &'static str) -> Error {
    match state {
        WriteState::ReadOnly => Error::InvalidRequest("the value log is open read-only"),
        WriteState::Recovered(_) => {
            Error::InvalidRequest("the value log is recovered but start_writing has not run")
        }
        WriteState::Writing(_) => Error::InvalidRequest(writing),
        WriteState::Broken(why) => Error::Poisoned(why.clone()),
        WriteState::Closed => Error::Closed,
    }
}

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
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::{ArcSwap, Guard};

use super::file_name::{vlog_file_name, FIRST_VLOG_FILE_ID};
use super::recovery::{recover_dir, Files, Recovered, VlogRecovery};
use super::vlog_file::VlogFile;
use super::vlog_writer::{Placement, RotationLimits, VlogWriter};
use crate::crypto::KeyRegistry;
use crate::error::{Error, Result};
use crate::io::Storage;
use crate::log::FIRST_BATCH_OFFSET;
use crate::log::{
    replay_until, seal_batch_len, FreshVec, LogKind, LogWriter, OwnedRecord, RecordAlloc,
    RecordRef, ReplayEnd,
};
use crate::manifest::{ManifestChange, SharedManifest};
use crate::options::Options;
use crate::value::ValuePointer;

/// How a [`ValueLog`] is opened.
#[derive(Clone, Debug, Default)]
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
    /// The key registry of an encrypted database: new files are sealed with its current data
    /// key, existing ones are read with the key their header names.
    pub keys: Option<Arc<KeyRegistry>>,
    /// Read sealed files through a memory mapping ([`Options::value_log_mmap`]).
    pub mmap: bool,
}

impl ValueLogOptions {
    /// The value-log options of a database's options.
    pub fn from_options(opts: &Options) -> Self {
        ValueLogOptions {
            max_file_size_bytes: opts.value_log_file_size,
            max_entries: opts.value_log_max_entries,
            read_only: opts.read_only,
            keys: None,
            mmap: opts.maps_value_log(),
        }
    }

    /// These options with the key registry `keys`.
    pub fn with_keys(mut self, keys: Option<Arc<KeyRegistry>>) -> Self {
        self.keys = keys;
        self
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
    /// The newest file's id and replay end, if it holds a batch and is not sealed yet: it is
    /// truncated to its valid end and sealed.
    seal: Option<(u32, ReplayEnd)>,
    /// Files holding no batch (and an unborn newest file): removed.
    remove: Vec<u32>,
    /// Id of the new active file: one past every id found (and every id the MANIFEST
    /// handed out).
    next_id: Option<u32>,
}

/// The open files by id. Shared copy-on-write: a [`VlogPin`] holds one version of the map.
type FileMap = BTreeMap<u32, Arc<VlogFile>>;

/// The value-log files one read snapshot may read: those open when it was taken
/// ([`ValueLog::pinned`]). Holding it keeps every one of them on disk, even after value-log GC
/// retired it; cheap to clone (three `Arc`s).
///
/// A snapshot shares the mutable memtable, which keeps receiving entries after the snapshot
/// was taken. New commits are above its read timestamp and stay unseen, but a GC rewrite
/// keeps its version: the snapshot may see it, pointing into a file created after the pin
/// (the active file GC appended to, or one it sealed). Such a file is read through the live
/// map (`live`).
#[derive(Clone)]
pub(crate) struct VlogPin {
    files: Arc<FileMap>,
    live: Arc<ArcSwap<FileMap>>,
    dir: Arc<Path>,
    /// The database is encrypted: every record carries a tag.
    sealed: bool,
}

impl fmt::Debug for VlogPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VlogPin")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl VlogPin {
    /// Bytes a record carries beyond its fields (the tag of an encrypted database).
    pub(crate) fn record_overhead(&self) -> u64 {
        if self.sealed {
            crate::crypto::TAG_LEN as u64
        } else {
            0
        }
    }

    /// Reads the record `vp` names, as [`ValueLog::read`] does, from the pinned files.
    pub(crate) fn read(&self, vp: ValuePointer, expected_key: &[u8]) -> Result<OwnedRecord> {
        self.read_in(vp, expected_key, FreshVec)
    }

    /// [`VlogPin::read`] into a buffer from `alloc`.
    pub(crate) fn read_in<A: RecordAlloc>(
        &self,
        vp: ValuePointer,
        expected_key: &[u8],
        alloc: A,
    ) -> Result<OwnedRecord<A::Buf>> {
        read_from(&self.files, &self.live, &self.dir, vp, expected_key, alloc)
    }

    /// True if `vp` names a file GC retired before this pin was taken: one that is not
    /// pinned although a newer file is. (Every file the value log ever opened below its
    /// newest one is either open or retired; recovery refuses a missing listed file.)
    pub(crate) fn names_retired_file(&self, vp: &ValuePointer) -> bool {
        !self.files.contains_key(&vp.file_id)
            && self
                .files
                .last_key_value()
                .is_some_and(|(&newest, _)| vp.file_id < newest)
    }

    /// True if both pins hold the same files.
    pub(crate) fn same_as(&self, other: &VlogPin) -> bool {
        Arc::ptr_eq(&self.files, &other.files)
    }
}

/// The open files loaded by [`ValueLog::files_now`].
pub(crate) struct FilesNow<'a> {
    files: Guard<Arc<FileMap>>,
    vlog: &'a ValueLog,
}

impl FilesNow<'_> {
    /// Reads the record `vp` names from these files, as [`VlogPin::read`] does from a pin
    /// (no reference count taken: for a read that ends before the files may go).
    pub(crate) fn read(&self, vp: ValuePointer, expected_key: &[u8]) -> Result<OwnedRecord> {
        read_from(
            &self.files,
            &self.vlog.files,
            &self.vlog.shared_dir,
            vp,
            expected_key,
            FreshVec,
        )
    }

    /// A pin on these files.
    pub(crate) fn pin(&self) -> VlogPin {
        VlogPin {
            files: Arc::clone(&self.files),
            live: Arc::clone(&self.vlog.files),
            dir: Arc::clone(&self.vlog.shared_dir),
            sealed: self.vlog.keys.is_some(),
        }
    }
}

/// Reads the record `vp` names from `files`, the files open when a read began, and checks
/// its key; a file created since (a GC rewrite the read may see) is looked up in `live`.
fn read_from<A: RecordAlloc>(
    files: &FileMap,
    live: &ArcSwap<FileMap>,
    dir: &Path,
    vp: ValuePointer,
    expected_key: &[u8],
    alloc: A,
) -> Result<OwnedRecord<A::Buf>> {
    if let Some(f) = files.get(&vp.file_id) {
        return f.read_in(vp, expected_key, alloc);
    }
    let newer = files
        .last_key_value()
        .is_none_or(|(&newest, _)| vp.file_id > newest);
    let file = newer
        .then(|| live.load().get(&vp.file_id).cloned())
        .flatten();
    match file {
        Some(f) => f.read_in(vp, expected_key, alloc),
        None => Err(missing_file(dir, vp.file_id, u64::from(vp.offset))),
    }
}

/// The Corruption of a pointer to file `id`, which does not exist.
fn missing_file(dir: &Path, id: u32, offset: u64) -> Error {
    let why = format!("value pointer names value-log file {id}, which does not exist");
    Error::corruption(dir.join(vlog_file_name(id)), offset, why)
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
///   accessors; they never wait for the writer mutex or any lock (the file map is an
///   `ArcSwap`);
/// - value-log GC calls [`ValueLog::iterate_file`] and [`ValueLog::retire_file`] on files
///   other than the active one.
///
/// Invariants: every file but the newest (highest id) is complete (valid batches up to its
/// length) and durable; once writing, the newest is the active file, and files are
/// complete up to their readable end; a file's readable end only grows, and only the active
/// file's grows; `active_id` only grows. Lock order: `state` before `files_changing`.
pub struct ValueLog {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    /// `dir` again, shared with every [`VlogPin`] for its error messages.
    shared_dir: Arc<Path>,
    limits: RotationLimits,
    /// Every open file by id, copy-on-write. Written only by rotation and start (adding) and
    /// by retirement, one at a time (`files_changing`). A reader loads it before it takes its
    /// LSM view ([`ValueLog::pinned`]), which is what makes the pin consistent with
    /// [`ValueLog::retire_file`].
    files: Arc<ArcSwap<FileMap>>,
    /// Serialises the changes to `files` (a publish by the writer and a retirement by GC).
    files_changing: Mutex<()>,
    /// Id of the active file; 0 (never a file id) when there is none.
    active_id: AtomicU32,
    /// The writer side: taken by `start_writing`, `append`, `sync`, `close` and `poisoned`,
    /// never by readers.
    state: Mutex<WriteState>,
    /// (file id, offset) up to which the last background writeback synced.
    written_back: Mutex<(u32, u64)>,
    /// Where file creations and removals are recorded (the engine's MANIFEST); `None` for a
    /// value log used on its own (tests, tools), which finds its files by listing.
    manifest: Option<Arc<SharedManifest>>,
    /// The key registry of an encrypted database.
    keys: Option<Arc<KeyRegistry>>,
    /// Sealed files are read through a memory mapping ([`ValueLogOptions::mmap`]).
    mmap: bool,
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
    #[cfg(test)]
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ValueLogOptions,
    ) -> Result<(ValueLog, VlogRecovery)> {
        let read_only = opts.read_only;
        let (vlog, recovery) = ValueLog::recover(storage, dir, opts)?;
        if !read_only {
            vlog.start_writing()?;
        }
        Ok((vlog, recovery))
    }

    /// Checks every value-log file in `dir` and opens them for reading, writing nothing (in
    /// any mode): the newest file is replayed to find its valid end, older ones have their
    /// header and seal checked (docs/format/vlog.md, "Recovery"). Reads and
    /// [`ValueLog::pointer_is_valid`] work at once; appends wait for
    /// [`ValueLog::start_writing`], so the engine can validate its WALs against the
    /// recovery before anything is written (engine.md, "Open"). The files are found by
    /// listing `dir`; the engine uses [`ValueLog::recover_listed`].
    ///
    /// Errors: [`Error::Corruption`], [`Error::ChecksumMismatch`], [`Error::UnsupportedVersion`]
    /// for a damaged file or directory entry; I/O errors.
    pub fn recover(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ValueLogOptions,
    ) -> Result<(ValueLog, VlogRecovery)> {
        ValueLog::recover_with(storage, dir, opts, Files::InDirectory, None)
    }

    /// [`ValueLog::recover`] for the engine: opens exactly the files `listed` in `manifest`
    /// (each must exist and have a durable header), and records in `manifest` every file it
    /// later creates or removes (before the file is used, after it is gone).
    pub fn recover_listed(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ValueLogOptions,
        listed: &[u32],
        manifest: Arc<SharedManifest>,
    ) -> Result<(ValueLog, VlogRecovery)> {
        ValueLog::recover_with(storage, dir, opts, Files::Listed(listed), Some(manifest))
    }

    fn recover_with(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ValueLogOptions,
        files: Files<'_>,
        manifest: Option<Arc<SharedManifest>>,
    ) -> Result<(ValueLog, VlogRecovery)> {
        let Recovered {
            report,
            open,
            newest_end,
        } = recover_dir(storage.as_ref(), dir, files, opts.keys.as_deref())?;
        let handed_out = manifest.as_ref().map_or(0, |m| {
            m.state().next_vlog_id().min(u64::from(u32::MAX)) as u32
        });
        let state = if opts.read_only {
            WriteState::ReadOnly
        } else {
            WriteState::Recovered(PendingStart {
                seal: newest_end.filter(|(_, e)| e.valid_end > FIRST_BATCH_OFFSET && !e.sealed),
                remove: report
                    .files
                    .iter()
                    .filter(|f| f.is_empty())
                    .map(|f| f.id)
                    .collect(),
                next_id: match report.newest() {
                    Some(f) => f.id.checked_add(1).map(|n| n.max(handed_out)),
                    None => Some(FIRST_VLOG_FILE_ID.max(handed_out)),
                },
            })
        };
        let vlog = ValueLog {
            storage,
            dir: dir.to_path_buf(),
            shared_dir: Arc::from(dir),
            limits: RotationLimits {
                max_file_size_bytes: opts.max_file_size_bytes,
                max_entries: opts.max_entries,
            },
            files: Arc::new(ArcSwap::from_pointee(open)),
            files_changing: Mutex::new(()),
            active_id: AtomicU32::new(0),
            state: Mutex::new(state),
            written_back: Mutex::new((0, 0)),
            manifest,
            keys: opts.keys,
            mmap: opts.mmap,
        };
        // Every file but the newest is sealed; so is the newest when nothing will write
        // (read-only) or its seal is already on disk. The one `start` seals is mapped there.
        let newest = vlog.files.load().keys().next_back().copied();
        let pending_seal = match &*vlog.lock_state() {
            WriteState::Recovered(p) => p.seal.as_ref().map(|(id, _)| *id),
            _ => None,
        };
        for (id, f) in vlog.files.load().iter() {
            if Some(*id) != newest || (opts.read_only || pending_seal.is_none()) {
                vlog.map_sealed(f);
            }
        }
        Ok((vlog, report))
    }

    /// Records a file creation or removal in the MANIFEST, if there is one.
    fn record(&self, change: ManifestChange) -> Result<()> {
        match &self.manifest {
            Some(m) => m.edit(&[change]),
            None => Ok(()),
        }
    }

    /// After [`ValueLog::recover`]: seals the newest recovered file (truncates its torn tail,
    /// syncs it and appends its seal, so it is complete before a newer file exists), removes
    /// files that hold no batch (recorded in the MANIFEST first), and creates a new active
    /// file, one past the highest id found or handed out, durably (then records it).
    /// Returns the active file's id.
    ///
    /// Errors: [`Error::InvalidRequest`] when read-only or already started, [`Error::Closed`],
    /// I/O errors (after which the value log refuses writes with [`Error::Poisoned`]).
    pub fn start_writing(&self) -> Result<u32> {
        let mut state = self.lock_state();
        let pending = match std::mem::replace(&mut *state, WriteState::Closed) {
            WriteState::Recovered(p) => p,
            other => {
                let err = other.refusal();
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
            // Truncates to the valid end and syncs, then seals (rule 12).
            let path = self.path_of(id);
            LogWriter::open_append(self.storage.as_ref(), &path, LogKind::ValueLog, &end)?
                .seal()?;
            if let Some(f) = self.files.load().get(&id) {
                self.map_sealed(f);
            }
        }
        for id in &p.remove {
            self.record(ManifestChange::DeleteVlog {
                file_id: u64::from(*id),
            })?;
            self.change_files(|m| m.remove(id));
            self.storage.remove_file(&self.path_of(*id))?;
        }
        // The removals are made durable before the new file can be: else a crash could keep
        // the new file's entry but not the removal of an unborn one, which would then be an
        // unborn file older than the newest (corruption).
        if p.remove.is_empty() {
            self.storage.create_dir_all(&self.dir)?;
        } else {
            self.storage.sync_dir(&self.dir)?;
        }
        let writer = VlogWriter::create(
            Arc::clone(&self.storage),
            &self.dir,
            next_id,
            self.limits,
            self.keys.clone(),
        )?;
        self.record(ManifestChange::CreateVlog {
            file_id: u64::from(next_id),
        })?;
        Ok(writer)
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
        let writer = state.writer()?;
        if records.is_empty() {
            return Ok(());
        }
        if writer.place(records)? == Placement::NewFile {
            let sealed = Arc::clone(writer.active());
            let next = writer.rotate(&self.dir)?;
            self.map_sealed(&sealed);
            // Recorded before any pointer into it can exist (rule 5): a crash before the record
            // leaves an unlisted file holding no batch, which the next open proves garbage.
            let file_id = u64::from(next.id());
            if let Err(e) = self.record(ManifestChange::CreateVlog { file_id }) {
                return Err(writer.poison("recording a new file", e));
            }
            self.publish(next);
        }
        let (wb_id, wb_end) = *self
            .written_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if wb_id == writer.active().id() {
            writer.note_synced(wb_end);
        }
        writer.append(records, out)
    }

    /// The writeback thread's loop: whenever `raised` says the writer asked (it waits a
    /// while and returns `false` if not), writes back what was appended ([`ValueLog::writeback`]);
    /// returns at close, or with the first error (the caller poisons the database with it).
    pub fn run_writeback(&self, raised: &dyn Fn() -> bool, closing: &AtomicBool) -> Result<()> {
        while !closing.load(Ordering::Acquire) {
            if raised() {
                self.writeback()?;
            }
        }
        Ok(())
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

    /// Bytes appended to the active file beyond the last background writeback (a hint for
    /// when to call [`ValueLog::writeback`]).
    pub fn unwritten_back_bytes(&self) -> u64 {
        let id = self.active_id.load(Ordering::Acquire);
        let Some(end) = self.lock_files().get(&id).map(|f| f.readable_end()) else {
            return 0;
        };
        let (wb_id, wb_end) = *self
            .written_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if wb_id == id {
            end.saturating_sub(wb_end)
        } else {
            end
        }
    }

    /// Background writeback (RocksDB's `bytes_per_sync`): an `fdatasync` of the active file
    /// made on its handle *outside* the writer lock, so appends continue while the disk writes
    /// what they appended, and a later [`ValueLog::sync`] or close has little left to do. The
    /// writer's synced offset is not advanced by it (recovery stays conservative). Any thread.
    ///
    /// Errors: the sync's error, which poisons the value log like a failed [`ValueLog::sync`].
    pub fn writeback(&self) -> Result<()> {
        let id = self.active_id.load(Ordering::Acquire);
        let Some(file) = self.lock_files().get(&id).cloned() else {
            return Ok(());
        };
        let end = file.readable_end();
        if let Err(e) = file.file().sync_data() {
            return Err(match &mut *self.lock_state() {
                WriteState::Writing(w) => w.poison("writeback", e),
                _ => e,
            });
        }
        *self
            .written_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (id, end);
        Ok(())
    }

    /// Syncs the active file and refuses appends from now on; reads keep working.
    pub fn close(&self) -> Result<()> {
        let mut state = self.lock_state();
        match &mut *state {
            WriteState::Writing(w) => w.seal()?,
            WriteState::Broken(why) => return Err(Error::Poisoned(why.clone())),
            WriteState::ReadOnly | WriteState::Recovered(_) | WriteState::Closed => {}
        }
        *state = WriteState::Closed;
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
    #[cfg(test)]
    pub fn read(&self, vp: ValuePointer, expected_key: &[u8]) -> Result<OwnedRecord> {
        self.file_or_missing(vp.file_id, u64::from(vp.offset))?
            .read(vp, expected_key)
    }

    /// Calls `f` with every record of file `id` and its pointer, in file order, from a full
    /// replay of the file (for value-log GC), until `f` breaks. The file must not be the
    /// active one. The check that the batches end at the file's valid end is made only when
    /// `f` never breaks.
    ///
    /// Errors: [`Error::InvalidRequest`] for the active file (or a later id);
    /// [`Error::Corruption`] for a missing file, and when the replay does not end exactly at the file's valid end (a
    /// sealed file is complete; `f` may then have seen the records before the damage); any
    /// error of `f`, which stops the iteration; I/O errors.
    pub fn iterate_file(
        &self,
        id: u32,
        mut f: impl FnMut(ValuePointer, RecordRef<'_>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        // Ids at or past the active one may be (or become, by a rotation racing this call)
        // the file being appended to; ids below it are sealed for good.
        let active = self.active_id.load(Ordering::Acquire);
        if active != 0 && id >= active {
            return Err(Error::InvalidRequest(
                "the active value-log file cannot be iterated: it is being appended to",
            ));
        }
        let file = self.file_or_missing(id, 0)?;
        let valid_end = file.readable_end();
        let bad = |at: u64, why: String| Error::corruption(file.path(), at, why);
        let keys = self.keys.as_deref();
        // Stopping ends the replay: no later batch is read, checked or decrypted (a GC
        // sample of a 1 GiB file reads its first batches, not the file).
        let end = replay_until(file.file().as_ref(), LogKind::ValueLog, keys, |batch| {
            if batch.end() > valid_end {
                return Err(bad(
                    batch.offset(),
                    format!("batch runs past the valid end {valid_end}"),
                ));
            }
            for (pos, rec) in batch.iter() {
                // SettDB's own records (the seal of a cleanly closed file) hold no user value.
                if rec.key.starts_with(crate::key::INTERNAL_KEY_PREFIX) {
                    continue;
                }
                let vp = pos
                    .value_pointer(id)
                    .ok_or_else(|| bad(pos.offset, "record offset past u32".into()))?;
                if f(vp, rec)?.is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        let Some(end) = end else {
            return Ok(());
        };
        let data_end = end.valid_end - if end.sealed { seal_batch_len() } else { 0 };
        if data_end != valid_end {
            let why = format!(
                "the value-log file's batches end at {data_end} but it is valid to \
                 {valid_end} ({})",
                end.stop
            );
            return Err(bad(data_end, why));
        }
        Ok(())
    }

    /// Pins the open files, then runs `f` (which takes the engine's LSM view). A file retired
    /// before the pin was taken had its live values rewritten, and the rewrite applied, before
    /// `f` ran, so `f`'s view reads them in their new place; a file retired after stays
    /// readable through the pin.
    pub(crate) fn pinned<T>(&self, f: impl FnOnce() -> T) -> (T, VlogPin) {
        let files = self.files_now();
        let out = f();
        (out, files.pin())
    }

    /// The open files now, for a short read: taken before the LSM view, as
    /// [`ValueLog::pinned`] does, and made a [`VlogPin`] only if the read needs one (a point
    /// read that found a value pointer). Holds no reference count until then.
    pub(crate) fn files_now(&self) -> FilesNow<'_> {
        FilesNow {
            files: self.files.load(),
            vlog: self,
        }
    }

    /// Seals the active file and starts a new one now, even if the active one has room
    /// (`Db::drop_all`: every older file can then be retired). Returns the new file's id, or
    /// the active one's if it holds no batch yet (nothing to seal off).
    ///
    /// Errors: as [`ValueLog::append`]'s rotation: a failure poisons the value log.
    pub(crate) fn rotate(&self) -> Result<u32> {
        let mut state = self.lock_state();
        let writer = state.writer()?;
        if writer.active().readable_end() <= crate::log::FIRST_BATCH_OFFSET {
            return Ok(writer.active().id());
        }
        let sealed = Arc::clone(writer.active());
        let next = writer.rotate(&self.dir)?;
        self.map_sealed(&sealed);
        let file_id = next.id();
        // Recorded before any pointer into it can exist (rule 5), as in `append`.
        if let Err(e) = self.record(ManifestChange::CreateVlog {
            file_id: u64::from(file_id),
        }) {
            return Err(writer.poison("recording a new file", e));
        }
        self.publish(next);
        Ok(file_id)
    }

    /// Retires file `id` (value-log GC, once the values it moved are durable: rule 5): records
    /// its removal in the MANIFEST, forgets it, and leaves its removal from disk to the last
    /// holder ([`VlogPin`], item or read in progress). Later reads of pointers into it through
    /// the value log or a newer pin are `Corruption`. A failure to record does not poison the
    /// value log (appends do not depend on it); the file then stays, and stays readable.
    ///
    /// Errors: [`Error::InvalidRequest`] when not writing, for the active file (or a later
    /// id), or for an id that is not open; the MANIFEST's errors.
    pub(crate) fn retire_file(&self, id: u32) -> Result<()> {
        let active = self.active_id.load(Ordering::Acquire);
        if active == 0 {
            return Err(Error::InvalidRequest(
                "value-log files are retired only by a writing value log",
            ));
        }
        if id >= active {
            return Err(Error::InvalidRequest(
                "the active value-log file cannot be retired",
            ));
        }
        if !self.lock_files().contains_key(&id) {
            return Err(Error::InvalidRequest("no such value-log file"));
        }
        // Durable before the file can go (a crash after the removal must not leave a listed
        // file missing). Only GC retires files, one at a time, so the file is still open here.
        self.record(ManifestChange::DeleteVlog {
            file_id: u64::from(id),
        })?;
        let removed = self.change_files(|m| m.remove(&id));
        if let Some(file) = removed {
            file.retire(Arc::clone(&self.storage));
        }
        Ok(())
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
    #[cfg(test)]
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
        self.change_files(|m| m.insert(id, file));
        self.active_id.store(id, Ordering::Release);
    }

    /// The open file `id`, or the Corruption of a pointer to a file that does not exist.
    fn file_or_missing(&self, id: u32, offset: u64) -> Result<Arc<VlogFile>> {
        let found = self.lock_files().get(&id).cloned();
        found.ok_or_else(|| missing_file(&self.dir, id, offset))
    }

    fn lock_state(&self) -> MutexGuard<'_, WriteState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_files(&self) -> Guard<Arc<FileMap>> {
        self.files.load()
    }

    /// Maps a sealed file for reads when the value log maps its files. A file that cannot be
    /// mapped (no address space, a map count limit) is read with `read_at`, as without the
    /// option: the mapping only saves the system call, so reads stay right either way.
    fn map_sealed(&self, file: &VlogFile) {
        if self.mmap {
            let _ = file.map_sealed();
        }
    }

    /// Publishes a changed copy of the file map (readers holding the old one keep it).
    fn change_files<T>(&self, change: impl FnOnce(&mut FileMap) -> T) -> T {
        let _one_at_a_time = self
            .files_changing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut map = FileMap::clone(&self.files.load());
        let out = change(&mut map);
        self.files.store(Arc::new(map));
        out
    }
}

impl WriteState {
    /// The writer, or why the value log cannot append now.
    fn writer(&mut self) -> Result<&mut VlogWriter> {
        match self {
            WriteState::Writing(w) => Ok(w),
            other => Err(other.refusal()),
        }
    }

    /// The error of an operation this state does not allow (appending when not `Writing`,
    /// starting when not `Recovered`).
    fn refusal(&self) -> Error {
        match self {
            WriteState::ReadOnly => Error::InvalidRequest("the value log is open read-only"),
            WriteState::Recovered(_) => {
                Error::InvalidRequest("the value log is recovered but start_writing has not run")
            }
            WriteState::Writing(_) => Error::InvalidRequest("the value log is already writing"),
            WriteState::Broken(why) => Error::Poisoned(why.clone()),
            WriteState::Closed => Error::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Fault, FaultKind, FaultOp, FsStorage, SimStorage};
    use crate::log::{StopReason, BATCH_HEADER_LEN, FIRST_RECORD_OFFSET};
    use crate::vlog::testing::{
        append, assert_reads, gen_group, open_sim, opts, read_only, rng, test_seed, Entry, Written,
        DIR,
    };
    use crate::vlog::FileCheck;
    use rand::Rng;

    const KIB: usize = 1 << 10;

    /// Where the batch of `w` ends (its last record's end).
    fn group_end(w: &Written) -> u64 {
        let last = w.ptrs.last().unwrap();
        u64::from(last.offset) + u64::from(last.len)
    }

    /// Appends `n` random groups, checking each against the rotation rule.
    fn append_checked(vlog: &ValueLog, seed: u64, n: u64, o: ValueLogOptions) -> Vec<Written> {
        let mut r = rng(seed);
        let mut out: Vec<Written> = Vec::new();
        let mut entries_in_file = 0u64;
        for g in 0..n {
            let max_value = if r.random_ratio(1, 8) {
                100 * KIB
            } else {
                3 * KIB
            };
            let w = append(vlog, gen_group(&mut r, g, 8, max_value)).unwrap();
            let file = w.ptrs[0].file_id;
            assert!(w.ptrs.iter().all(|p| p.file_id == file), "group {g} split");
            assert!(w
                .ptrs
                .windows(2)
                .all(|p| p[0].offset + p[0].len == p[1].offset));
            if let Some(prev) = out.last() {
                let end = group_end(prev);
                let n_recs = w.ptrs.len() as u64;
                let full = end >= o.max_file_size_bytes
                    || entries_in_file + n_recs > u64::from(o.max_entries);
                assert_eq!(file, prev.ptrs[0].file_id + u32::from(full), "group {g}");
                if full {
                    entries_in_file = 0;
                    assert_eq!(u64::from(w.ptrs[0].offset), FIRST_RECORD_OFFSET);
                } else {
                    assert_eq!(u64::from(w.ptrs[0].offset), end + BATCH_HEADER_LEN as u64);
                }
            }
            entries_in_file += w.ptrs.len() as u64;
            assert_eq!(vlog.active_file_id(), Some(file));
            assert_eq!(vlog.file_size_bytes(file), Some(group_end(&w)));
            out.push(w);
        }
        out
    }

    #[test]
    fn groups_read_back_across_rotations_and_reopens() {
        // Proves groups of random sizes (0 to 100 KiB values) go to one file each, rotation
        // follows the size and entry limits exactly, every pointer reads back before and after
        // a reopen, a reopen starts file max + 1, and an empty file is removed on reopen.
        let seed = test_seed("groups_read_back_across_rotations_and_reopens");
        let sim = SimStorage::with_seed(seed);
        let o = opts(64 * KIB as u64, 20);
        let (vlog, rec) = open_sim(&sim, o.clone()).unwrap();
        assert!(rec.files.is_empty());
        assert_eq!(vlog.active_file_id(), Some(FIRST_VLOG_FILE_ID));
        let groups = append_checked(&vlog, seed, 60, o.clone());
        let ids = vlog.file_ids();
        assert!(ids.len() >= 4, "only {ids:?}");
        groups.iter().for_each(|w| assert_reads(&vlog, w));
        let total: u64 = ids.iter().map(|&i| vlog.file_size_bytes(i).unwrap()).sum();
        assert_eq!(vlog.total_size_bytes(), total);
        vlog.close().unwrap();
        drop(vlog);

        let (vlog, rec) = open_sim(&sim, o.clone()).unwrap();
        let max = *ids.last().unwrap();
        assert_eq!(rec.files.iter().map(|f| f.id).collect::<Vec<_>>(), ids);
        assert_eq!(
            rec.newest().unwrap().check,
            FileCheck::Replayed(StopReason::CleanEnd)
        );
        assert_eq!(vlog.active_file_id(), Some(max + 1));
        groups
            .iter()
            .for_each(|w| assert!(w.ptrs.iter().all(|p| vlog.pointer_is_valid(p))));
        groups.iter().for_each(|w| assert_reads(&vlog, w));
        vlog.close().unwrap();
        drop(vlog);

        let (vlog, rec) = open_sim(&sim, o.clone()).unwrap();
        assert!(rec.get(max + 1).unwrap().is_empty());
        assert!(!vlog.file_ids().contains(&(max + 1)));
        assert!(sim.durable_bytes(&vlog.path_of(max + 1)).is_none());
        assert_eq!(vlog.active_file_id(), Some(max + 2));
        groups.iter().for_each(|w| assert_reads(&vlog, w));
    }

    #[test]
    fn real_files_round_trip() {
        // Proves the same on the real file system: appends across a rotation, close, reopen
        // and reads, with the files named NNNNNN.vlog.
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        let o = opts(8 * KIB as u64, 1000);
        let (vlog, _) = ValueLog::open(Arc::clone(&storage), dir.path(), o.clone()).unwrap();
        let groups = append_checked(&vlog, 7, 12, o.clone());
        vlog.sync().unwrap();
        vlog.close().unwrap();
        let ids = vlog.file_ids();
        assert!(ids.len() >= 2);
        drop(vlog);
        assert!(dir.path().join("000001.vlog").exists());
        let (vlog, rec) = ValueLog::open(storage, dir.path(), o).unwrap();
        assert_eq!(rec.files.len(), ids.len());
        groups.iter().for_each(|w| assert_reads(&vlog, w));
        assert_eq!(vlog.active_file_id(), Some(ids.last().unwrap() + 1));
    }

    /// Ids of the open files that are read through a mapping.
    fn mapped_ids(vlog: &ValueLog) -> Vec<u32> {
        let files = vlog.files.load();
        files
            .iter()
            .filter(|(_, f)| f.is_mapped())
            .map(|(id, _)| *id)
            .collect()
    }

    #[test]
    fn mapped_sealed_files_read_as_pread_does_and_damage_stays_typed() {
        // Proves, on the real file system with `mmap`: every sealed file (and only sealed ones)
        // is mapped while writing, after a reopen, and read-only (then the newest too);
        // every record reads back the same through the mapping; a flipped byte in a mapped
        // record is ChecksumMismatch at its offset and a pointer past a mapped file's end is
        // Corruption; without the option nothing is mapped.
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage);
        let o = ValueLogOptions {
            mmap: true,
            ..opts(8 * KIB as u64, 1000)
        };
        let (vlog, _) = ValueLog::open(Arc::clone(&storage), dir.path(), o.clone()).unwrap();
        let groups = append_checked(&vlog, 11, 12, o.clone());
        let active = vlog.active_file_id().unwrap();
        let sealed: Vec<u32> = vlog
            .file_ids()
            .into_iter()
            .filter(|&id| id != active)
            .collect();
        assert!(sealed.len() >= 2, "{sealed:?}");
        assert_eq!(mapped_ids(&vlog), sealed);
        groups.iter().for_each(|w| assert_reads(&vlog, w));
        vlog.sync().unwrap();
        vlog.close().unwrap();
        let all = vlog.file_ids();
        drop(vlog);

        let (vlog, _) = ValueLog::open(Arc::clone(&storage), dir.path(), o.clone()).unwrap();
        assert_eq!(
            mapped_ids(&vlog),
            all,
            "every recovered file is sealed at start"
        );
        assert_eq!(vlog.active_file_id(), Some(all.len() as u32 + 1));
        groups.iter().for_each(|w| assert_reads(&vlog, w));
        vlog.close().unwrap();
        let all = vlog.file_ids();
        drop(vlog);

        let (vlog, _) =
            ValueLog::open(Arc::clone(&storage), dir.path(), read_only(o.clone())).unwrap();
        assert_eq!(mapped_ids(&vlog), all, "read-only: the newest file too");
        groups.iter().for_each(|w| assert_reads(&vlog, w));
        drop(vlog);

        let w = &groups[0];
        let vp = w.ptrs[0];
        let path = dir.path().join(vlog_file_name(vp.file_id));
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (vp.offset + vp.len) as usize - 6;
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let (vlog, _) =
            ValueLog::open(Arc::clone(&storage), dir.path(), read_only(o.clone())).unwrap();
        assert!(mapped_ids(&vlog).contains(&vp.file_id));
        match vlog.read(vp, &w.entries[0].key) {
            Err(Error::ChecksumMismatch { offset, .. }) => assert_eq!(offset, u64::from(vp.offset)),
            other => panic!("expected ChecksumMismatch, got {other:?}"),
        }
        let end = vlog.file_size_bytes(vp.file_id).unwrap() as u32;
        let past = ValuePointer {
            offset: end - vp.len + 1,
            ..vp
        };
        assert!(matches!(
            vlog.read(past, &w.entries[0].key),
            Err(Error::Corruption { .. })
        ));
        drop(vlog);

        let plain = read_only(opts(8 * KIB as u64, 1000));
        let (vlog, _) = ValueLog::open(Arc::clone(&storage), dir.path(), plain).unwrap();
        assert!(mapped_ids(&vlog).is_empty());
        groups[1..].iter().for_each(|w| assert_reads(&vlog, w));
        drop(vlog);

        // A crash leaves the newest file unsealed: it is mapped only once `start` sealed it.
        let dir = tempfile::tempdir().unwrap();
        let (vlog, _) = ValueLog::open(Arc::clone(&storage), dir.path(), o.clone()).unwrap();
        let groups = append_checked(&vlog, 12, 12, o.clone());
        vlog.sync().unwrap();
        let ids = vlog.file_ids();
        drop(vlog);
        let (vlog, _) = ValueLog::recover(Arc::clone(&storage), dir.path(), o.clone()).unwrap();
        assert_eq!(mapped_ids(&vlog), ids[..ids.len() - 1]);
        vlog.start_writing().unwrap();
        assert_eq!(mapped_ids(&vlog), ids);
        groups.iter().for_each(|w| assert_reads(&vlog, w));
    }

    #[test]
    fn a_group_bigger_than_a_file_is_written_whole() {
        // Proves a group past max_file_size and max_entries goes into one file, and the next
        // group rotates.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(4 * KIB as u64, 2)).unwrap();
        let mut r = rng(3);
        let big: Vec<Entry> = (0..5)
            .flat_map(|g| gen_group(&mut r, g, 1, 0))
            .map(|mut e| {
                e.value = vec![7; 6 * KIB];
                e
            })
            .collect();
        let w = append(&vlog, big).unwrap();
        assert!(w.ptrs.iter().all(|p| p.file_id == 1));
        let next = append(&vlog, gen_group(&mut r, 9, 1, 10)).unwrap();
        assert_eq!(next.ptrs[0].file_id, 2);
        assert_reads(&vlog, &w);
        assert_reads(&vlog, &next);
    }

    #[test]
    fn a_group_past_the_batch_limit_goes_in_several_batches_of_one_file() {
        // Proves a group of 11 MiB of values is written as consecutive batches of at most
        // BATCH_RECORD_BYTES (gaps of one batch header between them), all in file 1, taking
        // exactly the bytes `place` counted; every pointer reads back, before and after a
        // reopen (which replays the batches as a clean end), and GC's iteration sees every
        // record once, in order.
        let sim = SimStorage::new();
        let o = opts(64 << 20, 1000);
        let (vlog, _) = open_sim(&sim, o.clone()).unwrap();
        let mut r = rng(11);
        let big: Vec<Entry> = gen_group(&mut r, 1, 1, 0)
            .into_iter()
            .cycle()
            .take(11)
            .enumerate()
            .map(|(i, mut e)| {
                e.key = crate::key::key_with_version(format!("k{i:02}").as_bytes(), 5);
                e.value = vec![i as u8; (1 << 20) - 100 + i];
                e
            })
            .collect();
        let start = vlog.file_size_bytes(1).unwrap();
        let w = append(&vlog, big.clone()).unwrap();
        let end = vlog.file_size_bytes(1).unwrap();
        let recs: Vec<RecordRef<'_>> = big.iter().map(Entry::as_record).collect();
        let expected = super::super::vlog_writer::batch_len_for_tests(&recs);
        assert_eq!(end - start, expected);
        assert!(w.ptrs.iter().all(|p| p.file_id == 1));
        let gaps: Vec<u32> = w
            .ptrs
            .windows(2)
            .map(|p| p[1].offset - (p[0].offset + p[0].len))
            .collect();
        // Records just under 1 MiB: batches of 4, 4 and 3.
        let headers = gaps
            .iter()
            .filter(|&&g| g == BATCH_HEADER_LEN as u32)
            .count();
        assert!(gaps.iter().all(|&g| g == 0 || g == BATCH_HEADER_LEN as u32));
        assert_eq!(headers, 2, "{gaps:?}");
        assert_reads(&vlog, &w);
        let next = append(&vlog, gen_group(&mut r, 2, 2, 10)).unwrap();
        vlog.close().unwrap();
        drop(vlog);
        let (vlog, rec) = open_sim(&sim, o).unwrap();
        assert_eq!(
            rec.get(1).unwrap().check,
            FileCheck::Replayed(StopReason::CleanEnd)
        );
        assert_reads(&vlog, &w);
        assert_reads(&vlog, &next);
        let mut seen = Vec::new();
        vlog.iterate_file(1, |vp, rec| {
            seen.push((vp, rec.key.to_vec()));
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        let written: Vec<(ValuePointer, Vec<u8>)> = [&w, &next]
            .iter()
            .flat_map(|g| {
                g.ptrs
                    .iter()
                    .copied()
                    .zip(g.entries.iter().map(|e| e.key.clone()))
            })
            .collect();
        assert_eq!(seen, written);
    }

    #[test]
    fn value_log_batches_count_the_tags_of_an_encrypted_log() {
        // Proves the batch cut counts each record's tag in an encrypted value log (and only
        // there): four records whose plaintext encodings fill a batch to 8 bytes short of the
        // limit go as one batch in a plaintext log and as two in an encrypted one, and the file
        // grows by the records, their tags and one header per batch.
        use crate::crypto::{KeyRegistry, RegistryOptions};
        let key_storage: Arc<dyn Storage> = Arc::new(crate::io::MemStorage::new());
        let reg = RegistryOptions {
            rotation: std::time::Duration::from_secs(3600),
            read_only: false,
            clock: Arc::new(|| 1),
        };
        let keys = KeyRegistry::open(key_storage, Path::new("/k"), &[3; 32], false, reg)
            .unwrap()
            .unwrap();
        let record = |i: usize, len: usize| Entry {
            key: crate::key::key_with_version(format!("k{i}").as_bytes(), 5),
            value: vec![i as u8; len],
        };
        let probe = record(0, 1 << 20);
        let overhead = probe.as_record().encoded_len() - probe.value.len();
        let len = (super::super::vlog_writer::BATCH_RECORD_BYTES - 8) / 4 - overhead;
        for encrypted in [false, true] {
            let sim = SimStorage::new();
            let o = ValueLogOptions {
                keys: encrypted.then(|| Arc::clone(&keys)),
                ..opts(64 << 20, 1000)
            };
            let (vlog, _) = open_sim(&sim, o).unwrap();
            let group: Vec<Entry> = (0..4).map(|i| record(i, len)).collect();
            let start = vlog.file_size_bytes(1).unwrap();
            let w = append(&vlog, group.clone()).unwrap();
            let grown = vlog.file_size_bytes(1).unwrap() - start;
            let gaps = w
                .ptrs
                .windows(2)
                .filter(|p| p[1].offset != p[0].offset + p[0].len)
                .count();
            assert_eq!(gaps, usize::from(encrypted), "encrypted {encrypted}");
            let tags = if encrypted {
                4 * crate::crypto::TAG_LEN
            } else {
                0
            };
            let records: usize = group.iter().map(|e| e.as_record().encoded_len()).sum();
            let headers = BATCH_HEADER_LEN * (1 + usize::from(encrypted));
            assert_eq!(grown, (records + tags + headers) as u64);
            assert_reads(&vlog, &w);
        }
    }

    #[test]
    fn a_flipped_bit_in_a_synced_record_is_a_checksum_mismatch() {
        // Proves bit rot inside a record's value is ChecksumMismatch at the pointer's offset,
        // and the neighbouring records still read.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 100)).unwrap();
        let w = append(&vlog, gen_group(&mut rng(1), 0, 1, 0)).unwrap();
        let mut r = rng(2);
        let entries = (1..4).flat_map(|g| gen_group(&mut r, g, 1, 50)).collect();
        let w2 = append(&vlog, entries).unwrap();
        vlog.sync().unwrap();
        let vp = w2.ptrs[1];
        sim.corrupt(&vlog.path_of(1), u64::from(vp.offset + vp.len) - 6, 0x10)
            .unwrap();
        // The active file's newest small batches are read from the copy the writer kept
        // (recent.rs), which the damage on disk does not reach; once the file rotates, reads
        // go to the file and find it.
        assert_reads(&vlog, &w2);
        vlog.rotate().unwrap();
        match vlog.read(vp, &w2.entries[1].key) {
            Err(Error::ChecksumMismatch { offset, .. }) => assert_eq!(offset, u64::from(vp.offset)),
            other => panic!("expected ChecksumMismatch, got {other:?}"),
        }
        assert_reads(&vlog, &w);
        assert!(vlog.read(w2.ptrs[2], &w2.entries[2].key).is_ok());
    }

    #[test]
    fn the_newest_small_batches_are_read_from_memory_until_rotation() {
        // Proves reads of the active file's recent small batches come from the writer's kept
        // copy (the file's bytes are overwritten under them and the reads still see the values
        // written), a batch over the copy's limit is read from the file, and a rotation drops
        // the copy.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(8 << 20, 100)).unwrap();
        let small = append(&vlog, gen_group(&mut rng(1), 0, 3, 50)).unwrap();
        let big_group = (0..40)
            .map(|i| Entry {
                key: crate::key::key_with_version(format!("big{i}").as_bytes(), 500 + i),
                value: vec![b'v'; 2000],
            })
            .collect();
        let big = append(&vlog, big_group).unwrap();
        vlog.sync().unwrap();
        for vp in small.ptrs.iter().chain(&big.ptrs) {
            let last = u64::from(vp.offset + vp.len) - 1;
            sim.corrupt(&vlog.path_of(1), last, 0x10).unwrap();
        }
        assert_reads(&vlog, &small);
        assert!(
            matches!(
                vlog.read(big.ptrs[0], &big.entries[0].key),
                Err(Error::Corruption { .. } | Error::ChecksumMismatch { .. })
            ),
            "a batch of {} bytes was not kept",
            big.ptrs.iter().map(|p| p.len).sum::<u32>()
        );
        vlog.rotate().unwrap();
        assert!(vlog.read(small.ptrs[0], &small.entries[0].key).is_err());
    }

    #[test]
    fn misdirected_and_dangling_pointers_are_corruption() {
        // Proves a pointer read under another key, a pointer into a missing file, past the
        // end, or below the first record is Corruption naming the file and the offset, and
        // that pointer_is_valid agrees for the positional cases.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 100)).unwrap();
        let w = append(&vlog, gen_group(&mut rng(4), 0, 3, 100)).unwrap();
        let vp = w.ptrs[0];
        let wrong_key = &w.entries[1].key;
        let corrupt_at = |r: Result<OwnedRecord>, file: u32, off: u32| match r {
            Err(Error::Corruption {
                file: f, offset, ..
            }) => {
                assert_eq!((f, offset), (vlog.path_of(file), u64::from(off)))
            }
            other => panic!("expected Corruption, got {other:?}"),
        };
        corrupt_at(vlog.read(vp, wrong_key), 1, vp.offset);
        let missing = ValuePointer { file_id: 99, ..vp };
        assert!(!vlog.pointer_is_valid(&missing));
        corrupt_at(vlog.read(missing, &w.entries[0].key), 99, vp.offset);
        let last = *w.ptrs.last().unwrap();
        let past = ValuePointer {
            offset: last.offset + last.len,
            ..last
        };
        assert!(!vlog.pointer_is_valid(&past));
        corrupt_at(vlog.read(past, &w.entries[0].key), 1, past.offset);
        let below = ValuePointer { offset: 10, ..vp };
        assert!(!vlog.pointer_is_valid(&below));
        corrupt_at(vlog.read(below, &w.entries[0].key), 1, 10);
        assert!(!vlog.pointer_is_valid(&ValuePointer::default()));
    }

    #[test]
    fn a_failed_write_poisons_every_later_append_and_sync() {
        // Proves rule 8 for writes: an injected EIO is returned, then every append and sync
        // is Poisoned even with the fault gone, while reads keep working.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 100)).unwrap();
        let mut r = rng(5);
        let w = append(&vlog, gen_group(&mut r, 0, 2, 10)).unwrap();
        sim.inject(
            Fault::new(FaultOp::Write, FaultKind::Eio)
                .path_contains(".vlog")
                .times(1),
        );
        let e = append(&vlog, gen_group(&mut r, 1, 2, 10)).unwrap_err();
        assert!(matches!(e, Error::Io { op: "write", .. }), "{e:?}");
        assert!(matches!(
            append(&vlog, gen_group(&mut r, 2, 1, 1)),
            Err(Error::Poisoned(_))
        ));
        assert!(matches!(vlog.sync(), Err(Error::Poisoned(_))));
        assert!(matches!(vlog.close(), Err(Error::Poisoned(_))));
        assert!(vlog.poisoned().unwrap().contains("write"));
        assert_reads(&vlog, &w);
    }

    #[test]
    fn a_failed_sync_poisons_including_the_sync_of_a_rotation() {
        // Proves rule 8 for fsync: a failed sync (direct, or the one rotation does before
        // creating the next file) poisons; no next file is created after a failed rotation.
        for via_rotation in [false, true] {
            let sim = SimStorage::new();
            let (vlog, _) = open_sim(&sim, opts(1 << 20, 2)).unwrap();
            let mut r = rng(6);
            append(&vlog, gen_group(&mut r, 0, 1, 10)).unwrap();
            sim.inject(Fault::new(FaultOp::Sync, FaultKind::Eio).times(1));
            let first = if via_rotation {
                append(
                    &vlog,
                    (1..4).flat_map(|g| gen_group(&mut r, g, 1, 1)).collect(),
                )
                .map(|_| ())
            } else {
                vlog.sync()
            };
            assert!(
                matches!(first, Err(Error::Io { op: "sync", .. })),
                "{first:?}"
            );
            assert!(matches!(vlog.sync(), Err(Error::Poisoned(_))));
            assert!(matches!(
                append(&vlog, gen_group(&mut r, 9, 1, 1)),
                Err(Error::Poisoned(_))
            ));
            assert_eq!(vlog.file_ids(), vec![1]);
            assert!(sim.live_bytes(&vlog.path_of(2)).is_none());
        }
    }

    #[test]
    fn a_failed_file_creation_poisons() {
        // Proves rotation that cannot make the next file durable (its directory sync fails)
        // poisons the value log, and a reopen after it still succeeds.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 1)).unwrap();
        let mut r = rng(7);
        let w = append(&vlog, gen_group(&mut r, 0, 1, 10)).unwrap();
        sim.inject(Fault::new(FaultOp::SyncDir, FaultKind::Eio).times(1));
        let e = append(&vlog, gen_group(&mut r, 1, 1, 10)).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
        assert!(matches!(vlog.sync(), Err(Error::Poisoned(_))));
        drop(vlog);
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 1)).unwrap();
        assert_reads(&vlog, &w);
    }

    #[test]
    fn invalid_groups_are_refused_without_rotation_or_poison() {
        // Proves a record with a bad key is refused before anything is written or rotated,
        // and an empty group writes nothing.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 1)).unwrap();
        let mut r = rng(8);
        append(&vlog, gen_group(&mut r, 0, 1, 10)).unwrap();
        let bad = vec![Entry {
            key: b"short".to_vec(),
            value: vec![],
        }];
        assert!(matches!(append(&vlog, bad), Err(Error::InvalidKey { .. })));
        assert_eq!(vlog.file_ids(), vec![1]);
        let size = vlog.file_size_bytes(1);
        let mut out = vec![ValuePointer::default()];
        vlog.append(&[], &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(vlog.file_size_bytes(1), size);
        assert!(vlog.poisoned().is_none());
        append(&vlog, gen_group(&mut r, 1, 1, 10)).unwrap();
        assert_eq!(vlog.file_ids(), vec![1, 2]);
    }

    #[test]
    fn write_states_refuse_appends_with_typed_errors() {
        // Proves appends are refused read-only, before start_writing, and after close
        // (Closed), start_writing runs once, and sync is a no-op when not writing.
        let sim = SimStorage::new();
        let storage: Arc<dyn Storage> = Arc::new(sim.clone());
        let dir = Path::new(DIR);
        let (vlog, _) = ValueLog::recover(Arc::clone(&storage), dir, opts(1 << 20, 9)).unwrap();
        let g = || gen_group(&mut rng(9), 0, 1, 1);
        assert!(matches!(append(&vlog, g()), Err(Error::InvalidRequest(_))));
        assert_eq!(vlog.active_file_id(), None);
        vlog.sync().unwrap();
        assert_eq!(vlog.start_writing().unwrap(), 1);
        assert!(matches!(
            vlog.start_writing(),
            Err(Error::InvalidRequest(_))
        ));
        append(&vlog, g()).unwrap();
        vlog.close().unwrap();
        assert!(matches!(append(&vlog, g()), Err(Error::Closed)));
        vlog.sync().unwrap();
        let (ro, _) = ValueLog::open(storage, dir, read_only(opts(1 << 20, 9))).unwrap();
        assert!(matches!(append(&ro, g()), Err(Error::InvalidRequest(_))));
        assert!(matches!(ro.start_writing(), Err(Error::InvalidRequest(_))));
        assert!(matches!(ro.retire_file(1), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn iterate_and_retire_are_the_gc_hooks() {
        // Proves iterate_file yields a sealed file's records with the pointers append gave,
        // refuses the active file, and retire_file refuses the active file, forgets a sealed
        // one (its pointers are then Corruption through the value log and newer pins) while a
        // pin taken before still reads it and keeps it on disk until the pin drops.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 4)).unwrap();
        let mut r = rng(10);
        let groups: Vec<Written> = (0..6)
            .map(|g| append(&vlog, gen_group(&mut r, g, 3, 200)).unwrap())
            .collect();
        let in_file_1: Vec<(ValuePointer, Entry)> = groups
            .iter()
            .flat_map(|w| w.ptrs.iter().copied().zip(w.entries.iter().cloned()))
            .filter(|(p, _)| p.file_id == 1)
            .collect();
        let mut seen = Vec::new();
        vlog.iterate_file(1, |vp, rec| {
            seen.push((
                vp,
                Entry {
                    key: rec.key.to_vec(),
                    value: rec.value.to_vec(),
                },
            ));
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        assert_eq!(seen, in_file_1);
        let active = vlog.active_file_id().unwrap();
        assert!(active > 1);
        assert!(matches!(
            vlog.iterate_file(active, |_, _| Ok(ControlFlow::Continue(()))),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            vlog.retire_file(active),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            vlog.retire_file(active + 1),
            Err(Error::InvalidRequest(_))
        ));
        let ((), held) = vlog.pinned(|| ());
        vlog.retire_file(1).unwrap();
        assert!(matches!(vlog.retire_file(1), Err(Error::InvalidRequest(_))));
        assert!(!vlog.file_ids().contains(&1));
        assert!(
            sim.exists(&vlog.path_of(1)).unwrap(),
            "pinned: still on disk"
        );
        let ((), after) = vlog.pinned(|| ());
        assert!(!after.same_as(&held));
        let (vp, e) = &in_file_1[0];
        assert!(!vlog.pointer_is_valid(vp));
        assert!(matches!(
            vlog.read(*vp, &e.key),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            vlog.iterate_file(1, |_, _| Ok(ControlFlow::Continue(()))),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            after.read(*vp, &e.key),
            Err(Error::Corruption { .. })
        ));
        assert_eq!(held.read(*vp, &e.key).unwrap().value(), &e.value[..]);
        drop(held);
        assert!(
            !sim.exists(&vlog.path_of(1)).unwrap(),
            "last pin dropped: removed"
        );
    }

    #[test]
    fn an_older_file_that_is_not_sealed_or_damaged_inside_is_reported() {
        // Proves the seal of an older file: bytes appended after it, or the file cut, refuse
        // the open (Corruption at the file's length); damage inside a sealed file is found by
        // iterate_file as Corruption at the damaged batch, after the records before it.
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 1)).unwrap();
        let mut r = rng(11);
        let w = append(&vlog, gen_group(&mut r, 0, 1, 30)).unwrap();
        let w2 = append(&vlog, gen_group(&mut r, 1, 1, 30)).unwrap();
        append(&vlog, gen_group(&mut r, 2, 1, 30)).unwrap();
        vlog.close().unwrap();
        drop(vlog);
        let path = Path::new(DIR).join("000001.vlog");
        let good = sim.durable_bytes(&path).unwrap();
        for damaged in [
            [good.clone(), vec![0xab; 100]].concat(),
            good[..good.len() - 1].to_vec(),
        ] {
            sim.set_bytes(&path, &damaged).unwrap();
            match open_sim(&sim, read_only(opts(1 << 20, 1))) {
                Err(Error::Corruption { offset, .. }) => assert_eq!(offset, damaged.len() as u64),
                other => panic!("expected Corruption, got {other:?}"),
            }
        }
        let path2 = Path::new(DIR).join("000002.vlog");
        let mut bytes = sim.durable_bytes(&path2).unwrap();
        bytes[w2.ptrs[0].offset as usize + 5] ^= 1;
        sim.set_bytes(&path2, &bytes).unwrap();
        sim.set_bytes(&path, &good).unwrap();
        let (vlog, _) = open_sim(&sim, read_only(opts(1 << 20, 1))).unwrap();
        let mut n = 0;
        vlog.iterate_file(1, |_, _| {
            n += 1;
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        assert_eq!(n, w.ptrs.len());
        match vlog.iterate_file(2, |_, _| Ok(ControlFlow::Continue(()))) {
            Err(e) => assert!(e.is_corruption(), "{e}"),
            Ok(()) => panic!("damage in a sealed file iterated cleanly"),
        }
    }

    #[test]
    fn an_iteration_that_stops_reads_no_later_batch() {
        // Proves a stopped iteration ends the replay: with the file's last batch damaged, an
        // iteration that stops in the first batch returns Ok having seen only its records,
        // while one that goes on reaches the damage (Corruption). (Value-log GC's sample of
        // a large file once read, checked and decrypted all of it.)
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 1000)).unwrap();
        let mut r = rng(12);
        let group = |r: &mut rand::rngs::StdRng, g: u64| {
            let mut e = gen_group(r, g, 1, 30);
            e.extend(gen_group(r, g + 100, 1, 30));
            e
        };
        let first = append(&vlog, group(&mut r, 0)).unwrap();
        append(&vlog, group(&mut r, 1)).unwrap();
        let last = append(&vlog, group(&mut r, 2)).unwrap();
        vlog.rotate().unwrap(); // file 1 is now an older, sealed file: opens check its seal only
        vlog.close().unwrap();
        drop(vlog);
        let path = Path::new(DIR).join("000001.vlog");
        let mut bytes = sim.durable_bytes(&path).unwrap();
        bytes[last.ptrs[1].offset as usize + 5] ^= 1;
        sim.set_bytes(&path, &bytes).unwrap();
        let (vlog, _) = open_sim(&sim, read_only(opts(1 << 20, 1000))).unwrap();
        let mut seen = Vec::new();
        vlog.iterate_file(1, |vp, _| {
            seen.push(vp);
            Ok(if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .unwrap();
        assert_eq!(seen, first.ptrs[..2]);
        let all = vlog.iterate_file(1, |_, _| Ok(ControlFlow::Continue(())));
        assert!(all.is_err_and(|e| e.is_corruption()));
    }

    #[test]
    fn readers_on_two_threads_see_every_published_group() {
        // Proves concurrent reads while the writer appends and rotates: every pointer a
        // reader picks from the published set reads back its own value, with no panic.
        let seed = test_seed("readers_on_two_threads_see_every_published_group");
        let sim = SimStorage::with_seed(seed);
        let (vlog, _) = open_sim(&sim, opts(16 * KIB as u64, 10)).unwrap();
        let vlog = Arc::new(vlog);
        let published: Arc<std::sync::RwLock<Vec<Written>>> = Arc::default();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2u64)
            .map(|t| {
                let (vlog, published, done) = (vlog.clone(), published.clone(), done.clone());
                std::thread::spawn(move || {
                    let mut r = rng(seed ^ t);
                    let mut reads = 0u64;
                    while !done.load(Ordering::Acquire) || reads == 0 {
                        let pick = {
                            let p = published.read().unwrap();
                            if p.is_empty() {
                                continue;
                            }
                            p[r.random_range(0..p.len())].clone()
                        };
                        assert_reads(&vlog, &pick);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let mut r = rng(seed);
        for g in 0..150 {
            let w = append(&vlog, gen_group(&mut r, g, 4, 2 * KIB)).unwrap();
            published.write().unwrap().push(w);
        }
        done.store(true, Ordering::Release);
        for h in readers {
            assert!(h.join().unwrap() > 0);
        }
        assert!(vlog.file_ids().len() > 3);
    }
}

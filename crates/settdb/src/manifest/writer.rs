//! [`ManifestFile`]: the open MANIFEST, which appends durable edits and rewrites itself.
//!
//! Durability (DESIGN.md rules 1, 2, 6, 7, 8; details in docs/format/manifest.md, "Writing"):
//! a new or rewritten MANIFEST is written under a temporary name, synced, renamed, and the
//! directory synced; each edit is synced before it is applied in memory; any failed write or
//! sync poisons the handle.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::change::{change_set_encoded_len, encode_change_set, ManifestChange};
use super::format::{
    encode_file_header, encode_record, FILE_HEADER_LEN, MANIFEST_FILE_NAME,
    MANIFEST_REWRITE_FILE_NAME, MAX_RECORD_BODY_LEN, RECORD_HEADER_LEN,
};
use super::reader::replay_file;
use super::state::Manifest;
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage, StorageFile};
use crate::options::Options;

/// Default of [`ManifestOptions::deletions_rewrite_threshold`] (Badger's).
pub const DEFAULT_DELETIONS_REWRITE_THRESHOLD: u64 = 10_000;
/// Default of [`ManifestOptions::deletions_ratio`] (Badger's `manifestDeletionsRatio`).
pub const DEFAULT_DELETIONS_RATIO: u64 = 10;
/// A rewrite's snapshot is split into records of about this many body bytes, far below
/// [`MAX_RECORD_BODY_LEN`] however many tables are live.
pub const SNAPSHOT_RECORD_BODY_BYTES: usize = 1 << 20;

const _: () = assert!(2 * SNAPSHOT_RECORD_BODY_BYTES <= MAX_RECORD_BODY_LEN);

/// How a MANIFEST is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestOptions {
    /// Levels of the database (L0 included); creates at a level `>=` this are refused.
    pub max_levels: usize,
    /// Stamped into a new file's header; an existing file must carry the same value.
    pub external_magic: u16,
    /// Write nothing: no create, no cleanup, no truncation, no edits.
    pub read_only: bool,
    /// A rewrite needs more deletions than this...
    pub deletions_rewrite_threshold: u64,
    /// ...and more than this many times the live tables.
    pub deletions_ratio: u64,
}

impl ManifestOptions {
    /// Options for `max_levels` levels with the default rewrite thresholds, external magic 0,
    /// read-write.
    pub fn new(max_levels: usize) -> Self {
        ManifestOptions {
            max_levels,
            external_magic: 0,
            read_only: false,
            deletions_rewrite_threshold: DEFAULT_DELETIONS_REWRITE_THRESHOLD,
            deletions_ratio: DEFAULT_DELETIONS_RATIO,
        }
    }

    /// The manifest options of a database's options.
    pub fn from_options(opts: &Options) -> Self {
        ManifestOptions {
            external_magic: opts.external_magic_version,
            read_only: opts.read_only,
            ..ManifestOptions::new(opts.max_levels)
        }
    }

    fn validate(&self) -> Result<()> {
        // Levels are stored in a u8.
        if !(1..=usize::from(u8::MAX) + 1).contains(&self.max_levels) {
            return Err(Error::InvalidOptions(format!(
                "max_levels {} must be in [1, 256] for the manifest",
                self.max_levels
            )));
        }
        Ok(())
    }
}

/// The open MANIFEST of a database directory and the state it holds.
///
/// Concurrency: methods take `&mut self`; the engine keeps the one `ManifestFile` of a
/// directory behind a mutex held across append and sync (DESIGN rule 10).
/// Invariant: `append_offset` is the end of the valid log in the file, and `manifest` is the
/// state of exactly the records before it.
#[derive(Debug)]
pub struct ManifestFile {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    opts: ManifestOptions,
    /// Whether a MANIFEST existed when opened (a missing one is created by `start_writing`).
    existed: bool,
    /// Bytes of a torn or zero tail to cut before the first append (`start_writing`).
    tail_dropped: bool,
    /// `None` until [`ManifestFile::start_writing`], and always when read-only.
    file: Option<Arc<dyn StorageFile>>,
    append_offset: u64,
    manifest: Manifest,
    /// Set by the first failed write or sync (rule 8); every later edit fails with it.
    poisoned: Option<String>,
}

impl ManifestFile {
    /// Opens and replays the MANIFEST in `dir`, writing nothing (DESIGN rule 7): a missing
    /// MANIFEST gives the empty state ([`ManifestFile::existed`] says which), a torn or zero
    /// tail is dropped from the state but left in the file. [`ManifestFile::start_writing`]
    /// then makes the file ready for edits, once the caller has validated everything else.
    /// Read-only: a missing MANIFEST is an [`Error::Io`] (not found).
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ManifestOptions,
    ) -> Result<(ManifestFile, Manifest)> {
        opts.validate()?;
        let path = dir.join(MANIFEST_FILE_NAME);
        let existed = storage.exists(&path)?;
        let mut mf = ManifestFile {
            storage,
            dir: dir.to_path_buf(),
            opts,
            existed,
            tail_dropped: false,
            file: None,
            append_offset: FILE_HEADER_LEN as u64,
            manifest: Manifest::new(opts.max_levels),
            poisoned: None,
        };
        if existed {
            let file = mf.storage.open(&path, OpenMode::Read)?;
            let replayed = replay_file(&*file, opts.max_levels, opts.external_magic)?;
            mf.tail_dropped = replayed.tail_dropped();
            mf.append_offset = replayed.valid_len;
            mf.manifest = replayed.manifest;
        } else if opts.read_only {
            return Err(missing_read_only(&path));
        }
        let state = mf.manifest.clone();
        Ok((mf, state))
    }

    /// True if a MANIFEST existed when [`ManifestFile::open`] ran.
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// Makes the file ready for edits (read-write only, once): creates a missing MANIFEST
    /// durably (replacing any leftover `MANIFEST-REWRITE` of a crashed create); for an existing
    /// one, removes a leftover `MANIFEST-REWRITE` and truncates a dropped torn or zero tail
    /// (synced) so appends follow the valid log.
    ///
    /// Errors: [`Error::InvalidRequest`] when read-only or already started; I/O errors, which
    /// poison the handle.
    pub fn start_writing(&mut self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::InvalidRequest(READ_ONLY));
        }
        if self.file.is_some() {
            return Err(Error::InvalidRequest("the manifest is already writing"));
        }
        let result = self.start();
        self.poison_on_err(result)
    }

    fn start(&mut self) -> Result<()> {
        if !self.existed {
            return self.write_from_scratch();
        }
        self.remove_leftover_rewrite()?;
        let file = self
            .storage
            .open(&self.dir.join(MANIFEST_FILE_NAME), OpenMode::ReadWrite)?;
        if self.tail_dropped {
            // Appends must follow the valid log, not the dropped bytes.
            file.set_len(self.append_offset)?;
            file.sync_data()?;
        }
        self.file = Some(file);
        Ok(())
    }

    /// A `MANIFEST-REWRITE` beside a MANIFEST is from a rewrite whose rename did not happen or
    /// did not become durable: the MANIFEST is complete and the leftover is garbage.
    fn remove_leftover_rewrite(&self) -> Result<()> {
        let tmp = self.dir.join(MANIFEST_REWRITE_FILE_NAME);
        if self.storage.exists(&tmp)? {
            self.storage.remove_file(&tmp)?;
            self.storage.sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The current state (every edit in it is durable).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The directory of the MANIFEST.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Validates `changes` against the state, appends them as one record, syncs, and only then
    /// applies them in memory: the edit is durable when this returns `Ok`. Rewrites the file
    /// afterwards if deletions have piled up.
    ///
    /// Errors: [`Error::InvalidRequest`] for an invalid change set or a read-only manifest
    /// (nothing written, the handle stays usable); [`Error::Poisoned`] after an earlier
    /// failure; an I/O error poisons the handle, and the edit may or may not be durable.
    pub fn add_changes(&mut self, changes: &[ManifestChange]) -> Result<()> {
        self.check_writable()?;
        if changes.is_empty() {
            return Ok(());
        }
        self.manifest.validate(changes)?;
        if change_set_encoded_len(changes) > MAX_RECORD_BODY_LEN {
            return Err(Error::InvalidRequest("manifest change set over 64 MiB"));
        }
        let mut body = Vec::with_capacity(change_set_encoded_len(changes));
        encode_change_set(&mut body, changes);
        let mut record = Vec::with_capacity(RECORD_HEADER_LEN + body.len());
        encode_record(&mut record, &body, self.append_offset);
        let result = self.append(&record);
        self.poison_on_err(result)?;
        let applied = self.manifest.apply(changes);
        debug_assert!(applied.is_ok(), "validated above: {applied:?}");
        applied?;
        if self.needs_rewrite() {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Rewrites the file as a snapshot of the live tables (also called by
    /// [`ManifestFile::add_changes`] when deletions pile up). Poisons the handle on failure.
    pub fn rewrite(&mut self) -> Result<()> {
        self.check_writable()?;
        let result = self.write_from_scratch();
        self.poison_on_err(result)
    }

    fn append(&mut self, record: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_ref()
            .ok_or(Error::InvalidRequest("the manifest is not writing"))?;
        file.write_at(self.append_offset, record)?;
        file.sync_data()?;
        self.append_offset += record.len() as u64;
        Ok(())
    }

    fn needs_rewrite(&self) -> bool {
        let m = &self.manifest;
        m.deletions() > self.opts.deletions_rewrite_threshold
            && m.deletions() > self.opts.deletions_ratio.saturating_mul(m.live_tables())
    }

    /// Writes header and snapshot to `MANIFEST-REWRITE`, syncs, renames it over `MANIFEST`,
    /// syncs the directory (rules 1 and 2), and continues appending to the new file.
    fn write_from_scratch(&mut self) -> Result<()> {
        let bytes = snapshot_bytes(&self.manifest, self.opts.external_magic);
        let tmp = self.dir.join(MANIFEST_REWRITE_FILE_NAME);
        let path = self.dir.join(MANIFEST_FILE_NAME);
        if self.storage.exists(&tmp)? {
            self.storage.remove_file(&tmp)?;
        }
        {
            let f = self.storage.open(&tmp, OpenMode::CreateNew)?;
            f.write_at(0, &bytes)?;
            f.sync_data()?;
        }
        self.storage.rename(&tmp, &path)?;
        self.storage.sync_dir(&self.dir)?;
        // Reopened under its final name so that later errors name the right file.
        self.file = Some(self.storage.open(&path, OpenMode::ReadWrite)?);
        self.append_offset = bytes.len() as u64;
        self.manifest.reset_counters();
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if let Some(msg) = &self.poisoned {
            return Err(Error::Poisoned(msg.clone()));
        }
        if self.opts.read_only {
            return Err(Error::InvalidRequest(READ_ONLY));
        }
        if self.file.is_none() {
            return Err(Error::InvalidRequest(
                "the manifest is not writing: start_writing has not run",
            ));
        }
        Ok(())
    }

    fn poison_on_err(&mut self, result: Result<()>) -> Result<()> {
        if let Err(e) = &result {
            self.poisoned = Some(format!("manifest write failed: {e}"));
        }
        result
    }
}

const READ_ONLY: &str = "the manifest is open read-only";

/// The whole content of a freshly written MANIFEST holding `manifest`'s state: its snapshot,
/// in records of about [`SNAPSHOT_RECORD_BODY_BYTES`].
fn snapshot_bytes(manifest: &Manifest, external_magic: u16) -> Vec<u8> {
    let mut out = encode_file_header(external_magic).to_vec();
    let snapshot = manifest.snapshot();
    let mut rest = &snapshot[..];
    let mut body = Vec::new();
    while !rest.is_empty() {
        let mut n = 0;
        let mut len = 0;
        while n < rest.len()
            && (n == 0 || len + rest[n].encoded_len() <= SNAPSHOT_RECORD_BODY_BYTES)
        {
            len += rest[n].encoded_len();
            n += 1;
        }
        body.clear();
        encode_change_set(&mut body, &rest[..n]);
        let at = out.len() as u64;
        encode_record(&mut out, &body, at);
        rest = &rest[n..];
    }
    out
}

fn missing_read_only(path: &Path) -> Error {
    Error::io(
        "open",
        path,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no MANIFEST, and a read-only open cannot create one",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;
    use crate::manifest::test_support::{
        build_history, dir_snapshot, manifest_after, manifest_bytes, raw_history_strategy,
        FaultStorage, LEVELS,
    };
    use crate::options::Compression;
    use proptest::prelude::*;

    fn fs() -> Arc<dyn Storage> {
        Arc::new(FsStorage::new())
    }

    fn opts() -> ManifestOptions {
        ManifestOptions::new(LEVELS)
    }

    fn create(id: u64, level: u8) -> ManifestChange {
        ManifestChange::create(id, level, Compression::Snappy, 0)
    }

    /// Opens, and unless read-only makes the file writable, as the engine does.
    fn open(dir: &Path, o: ManifestOptions) -> Result<(ManifestFile, Manifest)> {
        open_on(fs(), dir, o)
    }

    fn open_on(
        storage: Arc<dyn Storage>,
        dir: &Path,
        o: ManifestOptions,
    ) -> Result<(ManifestFile, Manifest)> {
        let (mut mf, m) = ManifestFile::open(storage, dir, o)?;
        if !o.read_only {
            mf.start_writing()?;
        }
        Ok((mf, m))
    }

    fn manifest_path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE_NAME)
    }

    #[test]
    fn fresh_open_creates_a_header_only_manifest() {
        // Proves a missing MANIFEST is created (its header and the empty state's snapshot, no
        // temp file left) and reopens empty with the external magic it was stamped with.
        let dir = tempfile::tempdir().unwrap();
        let o = ManifestOptions {
            external_magic: 77,
            ..opts()
        };
        let (mf, m) = open(dir.path(), o).unwrap();
        assert_eq!(m, Manifest::new(LEVELS));
        assert_eq!(mf.manifest(), &m);
        drop(mf);
        let names: Vec<_> = dir_snapshot(dir.path()).into_iter().map(|e| e.0).collect();
        assert_eq!(names, vec![MANIFEST_FILE_NAME.to_string()]);
        let bytes = std::fs::read(manifest_path(dir.path())).unwrap();
        assert_eq!(bytes[..FILE_HEADER_LEN], encode_file_header(77));
        assert!(matches!(
            open(dir.path(), opts()),
            Err(Error::InvalidOptions(_))
        ));
        assert_eq!(open(dir.path(), o).unwrap().1, m);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn appended_history_reopens_to_the_model(raw in raw_history_strategy(10),
                                                 threshold in 0u64..4, ratio in 0u64..3) {
            // Proves edits appended through ManifestFile (with small rewrite thresholds, so some
            // cases rewrite) reopen to the model's live tables, as the handle's state does.
            let dir = tempfile::tempdir().unwrap();
            let (sets, states) = build_history(&raw);
            let o = ManifestOptions { deletions_rewrite_threshold: threshold,
                                      deletions_ratio: ratio, ..opts() };
            let (mut mf, _) = open(dir.path(), o).unwrap();
            for (set, state) in sets.iter().zip(&states) {
                mf.add_changes(set).unwrap();
                prop_assert_eq!(mf.manifest().tables(), state);
            }
            let want = mf.manifest().clone();
            drop(mf);
            let (_, m) = open(dir.path(), o).unwrap();
            prop_assert_eq!(m.tables(), want.tables());
            prop_assert_eq!(m.live_tables(), m.creations() - m.deletions());
        }
    }

    #[test]
    fn torn_tail_is_truncated_then_appends_replay() {
        // Proves, for a MANIFEST cut at every byte of its last record: open drops the record
        // without error, truncates the file, and a later append replays with the earlier state.
        let sets = vec![vec![create(1, 0), create(2, 1)], vec![create(3, 2)]];
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        let last = offsets[1];
        for cut in last..bytes.len() {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(manifest_path(dir.path()), &bytes[..cut]).unwrap();
            let (mut mf, m) = open(dir.path(), opts()).unwrap();
            assert_eq!(m, manifest_after(&sets[..1]), "cut {cut}");
            let len = std::fs::metadata(manifest_path(dir.path())).unwrap().len();
            assert_eq!(
                len, last as u64,
                "cut {cut}: file not truncated to the valid end"
            );
            mf.add_changes(&[create(9, 3)]).unwrap();
            drop(mf);
            let (_, m) = open(dir.path(), opts()).unwrap();
            let want: Vec<u64> = vec![1, 2, 9];
            assert_eq!(
                m.tables().keys().copied().collect::<Vec<_>>(),
                want,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn zero_tail_is_truncated_then_appends_replay() {
        // Proves a zero-filled tail opens cleanly, is truncated, and appends after it replay.
        let sets = vec![vec![create(1, 0)]];
        let (mut bytes, _) = manifest_bytes(&sets, 0);
        let end = bytes.len() as u64;
        bytes.resize(bytes.len() + 4096, 0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(manifest_path(dir.path()), &bytes).unwrap();
        let (mut mf, m) = open(dir.path(), opts()).unwrap();
        assert_eq!(m, manifest_after(&sets));
        assert_eq!(
            std::fs::metadata(manifest_path(dir.path())).unwrap().len(),
            end
        );
        mf.add_changes(&[ManifestChange::delete(1), create(2, 1)])
            .unwrap();
        drop(mf);
        let (_, m) = open(dir.path(), opts()).unwrap();
        assert_eq!(m.tables().keys().copied().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn invalid_edit_writes_nothing_and_keeps_the_handle() {
        // Proves a refused change set is InvalidRequest, leaves file and state untouched, and
        // does not poison the handle.
        let dir = tempfile::tempdir().unwrap();
        let (mut mf, _) = open(dir.path(), opts()).unwrap();
        mf.add_changes(&[create(1, 0)]).unwrap();
        let before = (
            std::fs::read(manifest_path(dir.path())).unwrap(),
            mf.manifest().clone(),
        );
        for bad in [
            vec![create(2, 0), create(1, 0)],
            vec![ManifestChange::delete(5)],
            vec![create(3, LEVELS as u8)],
        ] {
            assert!(matches!(
                mf.add_changes(&bad),
                Err(Error::InvalidRequest(_))
            ));
        }
        let after = (
            std::fs::read(manifest_path(dir.path())).unwrap(),
            mf.manifest().clone(),
        );
        assert_eq!(before, after);
        mf.add_changes(&[create(2, 0)]).unwrap();
        mf.add_changes(&[]).unwrap();
        assert_eq!(mf.manifest().live_tables(), 2);
    }

    #[test]
    fn rewrite_triggers_and_keeps_the_state() {
        // Proves that when deletions pass both thresholds the file is rewritten to a snapshot
        // (smaller, counters reset), the state is unchanged, and appends after it replay.
        let dir = tempfile::tempdir().unwrap();
        let o = ManifestOptions {
            deletions_rewrite_threshold: 5,
            deletions_ratio: 2,
            ..opts()
        };
        let (mut mf, _) = open(dir.path(), o).unwrap();
        mf.add_changes(&[create(100, 1), create(101, 2)]).unwrap();
        for id in 0..5 {
            mf.add_changes(&[create(id, 0)]).unwrap();
            mf.add_changes(&[ManifestChange::delete(id)]).unwrap();
            assert_eq!(
                mf.manifest().deletions(),
                id + 1,
                "no rewrite before the threshold"
            );
        }
        let size_before = std::fs::metadata(manifest_path(dir.path())).unwrap().len();
        mf.add_changes(&[create(5, 0), ManifestChange::delete(5)])
            .unwrap();
        assert_eq!(
            (mf.manifest().deletions(), mf.manifest().creations()),
            (0, 2)
        );
        let size_after = std::fs::metadata(manifest_path(dir.path())).unwrap().len();
        assert!(size_after < size_before, "{size_after} >= {size_before}");
        assert!(!dir.path().join(MANIFEST_REWRITE_FILE_NAME).exists());
        mf.add_changes(&[create(7, 3)]).unwrap();
        let want = mf.manifest().tables().clone();
        drop(mf);
        let (_, m) = open(dir.path(), o).unwrap();
        assert_eq!(m.tables(), &want);
        assert_eq!(
            m.tables().keys().copied().collect::<Vec<_>>(),
            vec![7, 100, 101]
        );
    }

    #[test]
    fn snapshot_is_split_into_bounded_records() {
        // Proves a rewrite of more live tables than fit one snapshot record writes several
        // records that replay to the same tables.
        let dir = tempfile::tempdir().unwrap();
        let (mut mf, _) = open(dir.path(), opts()).unwrap();
        // Each create is about 7 bytes: this needs two snapshot records at least.
        let n = (SNAPSHOT_RECORD_BODY_BYTES / 6) as u64 + 3;
        let set: Vec<_> = (0..n).map(|id| create(id, (id % 4) as u8)).collect();
        mf.add_changes(&set).unwrap();
        mf.rewrite().unwrap();
        let want = mf.manifest().tables().clone();
        drop(mf);
        let (_, m) = open(dir.path(), opts()).unwrap();
        assert_eq!(m.tables(), &want);
        assert_eq!(m.creations(), n);
    }

    #[test]
    fn failure_at_every_step_of_an_edit_and_rewrite_loses_nothing() {
        // Proves crash safety of append + rewrite: failing each mutating operation in turn
        // poisons the handle, and a reopen sees either the state before the edit (only if the
        // append's own write failed) or after it, with no MANIFEST-REWRITE left behind.
        let o = ManifestOptions {
            deletions_rewrite_threshold: 1,
            deletions_ratio: 0,
            ..opts()
        };
        for step in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let storage = FaultStorage::new();
            let (mut mf, _) = open_on(Arc::new(storage.clone()), dir.path(), o).unwrap();
            mf.add_changes(&[create(1, 0), create(2, 0), create(3, 1)])
                .unwrap();
            mf.add_changes(&[ManifestChange::delete(1)]).unwrap();
            let before = mf.manifest().tables().clone();
            // The next edit brings deletions to 2 > 1: append (write, sync), then rewrite.
            storage.fail_in(step);
            let result = mf.add_changes(&[ManifestChange::delete(2), create(4, 2)]);
            let after_edit = {
                let mut m = manifest_after(&[vec![create(1, 0), create(2, 0), create(3, 1)]]);
                m.apply(&[ManifestChange::delete(1)]).unwrap();
                m.apply(&[ManifestChange::delete(2), create(4, 2)]).unwrap();
                m.tables().clone()
            };
            if result.is_ok() {
                assert!(
                    step >= 7,
                    "every step of append + rewrite must have been failed once"
                );
                assert_eq!(mf.manifest().deletions(), 0, "the rewrite ran");
                break;
            }
            assert!(matches!(
                mf.add_changes(&[create(8, 0)]),
                Err(Error::Poisoned(_))
            ));
            assert!(matches!(mf.rewrite(), Err(Error::Poisoned(_))));
            drop(mf);
            let (_, m) = open(dir.path(), o).unwrap();
            let want = if step == 0 { &before } else { &after_edit };
            assert_eq!(m.tables(), want, "failed step {step}");
            assert!(
                !dir.path().join(MANIFEST_REWRITE_FILE_NAME).exists(),
                "step {step}"
            );
        }
    }

    #[test]
    fn leftover_rewrite_file_is_removed() {
        // Proves a MANIFEST-REWRITE from a crash is discarded: beside a MANIFEST (whose state
        // wins) and alone (a crashed create: a fresh MANIFEST is made).
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(MANIFEST_REWRITE_FILE_NAME);
        std::fs::write(&tmp, b"garbage of a cut rewrite").unwrap();
        let (mut mf, m) = open(dir.path(), opts()).unwrap();
        assert_eq!(m, Manifest::new(LEVELS));
        assert!(!tmp.exists());
        mf.add_changes(&[create(1, 0)]).unwrap();
        drop(mf);
        let (complete_other, _) = manifest_bytes(&[vec![create(5, 0)]], 0);
        std::fs::write(&tmp, complete_other).unwrap();
        let (_, m) = open(dir.path(), opts()).unwrap();
        assert_eq!(m.tables().keys().copied().collect::<Vec<_>>(), vec![1]);
        assert!(!tmp.exists());
    }

    #[test]
    fn read_only_writes_nothing() {
        // Proves a read-only open of a MANIFEST with a torn tail and a leftover temp file
        // replays it but changes no byte and no directory entry, performs no mutating storage
        // call, and refuses edits; a missing MANIFEST is an error that creates nothing.
        let dir = tempfile::tempdir().unwrap();
        let sets = vec![vec![create(1, 0)], vec![create(2, 0)]];
        let (bytes, _) = manifest_bytes(&sets, 0);
        std::fs::write(manifest_path(dir.path()), &bytes[..bytes.len() - 2]).unwrap();
        std::fs::write(dir.path().join(MANIFEST_REWRITE_FILE_NAME), b"x").unwrap();
        let before = dir_snapshot(dir.path());
        let storage = FaultStorage::new();
        let ro = ManifestOptions {
            read_only: true,
            ..opts()
        };
        let (mut mf, m) = ManifestFile::open(Arc::new(storage.clone()), dir.path(), ro).unwrap();
        assert_eq!(m, manifest_after(&sets[..1]));
        assert!(matches!(
            mf.add_changes(&[create(3, 0)]),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(mf.rewrite(), Err(Error::InvalidRequest(_))));
        drop(mf);
        assert_eq!(storage.ops(), 0);
        assert_eq!(dir_snapshot(dir.path()), before);

        let empty = tempfile::tempdir().unwrap();
        match open(empty.path(), ro) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
            }
            r => panic!("expected a not-found error, got {r:?}"),
        }
        assert!(dir_snapshot(empty.path()).is_empty());
    }

    #[test]
    fn failed_sync_poisons_the_handle() {
        // Proves rule 8: after a failed sync of an append every later edit and rewrite fails
        // with Poisoned (even though the storage works again) and the state lacks the edit.
        let dir = tempfile::tempdir().unwrap();
        let storage = FaultStorage::new();
        let (mut mf, _) = open_on(Arc::new(storage.clone()), dir.path(), opts()).unwrap();
        mf.add_changes(&[create(1, 0)]).unwrap();
        storage.fail_in(1); // 0 = the write, 1 = its sync
        assert!(matches!(
            mf.add_changes(&[create(2, 0)]),
            Err(Error::Io { op: "sync", .. })
        ));
        assert_eq!(
            mf.manifest().tables().keys().copied().collect::<Vec<_>>(),
            vec![1]
        );
        for _ in 0..2 {
            assert!(matches!(
                mf.add_changes(&[create(3, 0)]),
                Err(Error::Poisoned(_))
            ));
            assert!(matches!(mf.rewrite(), Err(Error::Poisoned(_))));
        }
    }

    #[test]
    fn bad_options_and_foreign_files_are_refused() {
        // Proves max_levels outside [1, 256] is refused and a corrupt MANIFEST is not
        // "repaired" by a read-write open.
        let dir = tempfile::tempdir().unwrap();
        for levels in [0, 257] {
            let o = ManifestOptions {
                max_levels: levels,
                ..opts()
            };
            assert!(matches!(open(dir.path(), o), Err(Error::InvalidOptions(_))));
        }
        std::fs::write(manifest_path(dir.path()), b"not a manifest at all").unwrap();
        assert!(open(dir.path(), opts()).unwrap_err().is_corruption());
        assert_eq!(
            std::fs::read(manifest_path(dir.path())).unwrap(),
            b"not a manifest at all"
        );
    }
}

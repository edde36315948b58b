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
    encode_file_header, encode_record, MANIFEST_FILE_NAME, MANIFEST_REWRITE_FILE_NAME,
    MAX_RECORD_BODY_LEN, RECORD_HEADER_LEN,
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
/// Most changes in one record of a rewrite snapshot: keeps each record far below
/// [`MAX_RECORD_BODY_LEN`] however many tables are live.
pub const SNAPSHOT_CHANGES_PER_RECORD: usize = 100_000;

const _: () = assert!(
    SNAPSHOT_CHANGES_PER_RECORD * super::change::MAX_CHANGE_LEN + crate::coding::MAX_VARINT64_LEN
        <= MAX_RECORD_BODY_LEN
);

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
    /// `None` when read-only: nothing is ever written.
    file: Option<Arc<dyn StorageFile>>,
    append_offset: u64,
    manifest: Manifest,
    /// Set by the first failed write or sync (rule 8); every later edit fails with it.
    poisoned: Option<String>,
}

impl ManifestFile {
    /// Opens (or, unless read-only, creates) the MANIFEST in `dir` and replays it.
    ///
    /// Read-write: a missing MANIFEST is created durably; after a successful replay a leftover
    /// `MANIFEST-REWRITE` is removed and a torn or zero tail is truncated (and synced) before
    /// anything is appended (rule 7: nothing is written before the file validated).
    /// Read-only: no byte is written, and a missing MANIFEST is an [`Error::Io`] (not found).
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        opts: ManifestOptions,
    ) -> Result<(ManifestFile, Manifest)> {
        opts.validate()?;
        let path = dir.join(MANIFEST_FILE_NAME);
        let exists = storage.exists(&path)?;
        let mut mf = ManifestFile {
            storage,
            dir: dir.to_path_buf(),
            opts,
            file: None,
            append_offset: 0,
            manifest: Manifest::new(opts.max_levels),
            poisoned: None,
        };
        match (exists, opts.read_only) {
            (false, true) => return Err(missing_read_only(&path)),
            // Replaces any leftover MANIFEST-REWRITE of a crashed create.
            (false, false) => mf.write_from_scratch()?,
            (true, _) => mf.replay_existing(&path)?,
        }
        let state = mf.manifest.clone();
        Ok((mf, state))
    }

    fn replay_existing(&mut self, path: &Path) -> Result<()> {
        let mode = if self.opts.read_only {
            OpenMode::Read
        } else {
            OpenMode::ReadWrite
        };
        let file = self.storage.open(path, mode)?;
        let replayed = replay_file(&*file, self.opts.max_levels, self.opts.external_magic)?;
        if !self.opts.read_only {
            self.remove_leftover_rewrite()?;
            if replayed.tail_dropped() {
                // Appends must follow the valid log, not the dropped bytes.
                file.set_len(replayed.valid_len)?;
                file.sync_data()?;
            }
            self.file = Some(file);
        }
        self.manifest = replayed.manifest;
        self.append_offset = replayed.valid_len;
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
        encode_record(&mut record, &body);
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
        let file = self.file.as_ref().ok_or(Error::InvalidRequest(READ_ONLY))?;
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

/// The whole content of a freshly written MANIFEST holding `manifest`'s live tables.
fn snapshot_bytes(manifest: &Manifest, external_magic: u16) -> Vec<u8> {
    let mut out = encode_file_header(external_magic).to_vec();
    let snapshot = manifest.snapshot();
    let mut body = Vec::new();
    for chunk in snapshot.chunks(SNAPSHOT_CHANGES_PER_RECORD) {
        body.clear();
        encode_change_set(&mut body, chunk);
        encode_record(&mut out, &body);
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

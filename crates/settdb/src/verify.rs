//! [`verify`]: checks every byte of a database that can be checked, without opening it, and
//! reports every problem rather than the first one an open meets.
//!
//! What is checked (docs/design/recovery.md):
//! - the MANIFEST (replayed by the rules an open uses) and the directory against it: the
//!   inventory of an open ([`crate::inventory`]): missing files, files the MANIFEST lost;
//! - every live table: opened (footer, meta, index, filter) and every block's checksum;
//! - the value log, recovered read-only as an open does (every older file must end in its
//!   seal), then every record of every file;
//! - the value pointer of the newest version of each key in each table: it must name
//!   value-log bytes that recovery found valid;
//! - every live WAL, replayed as an open does (a rotated WAL must end in its seal; its value
//!   pointers must name surviving value-log bytes);
//! - the DISCARD statistics.
//!
//! Read-only: it takes the shared lock and writes nothing, so it works on read-only media and
//! beside read-only opens. With no readable MANIFEST it still checks every file it finds.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::inventory::{list, take_inventory, Dirs};
use crate::io::{OpenMode, Storage};
use crate::key::user_key;
use crate::levels::table_file_name;
use crate::manifest::{ManifestFile, ManifestOptions, SharedManifest, MANIFEST_FILE_NAME};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::table::{KvIterator, Table, TableIterator, TableOpenOptions};
use crate::value::{meta, ValuePointer};
use crate::vlog::{DiscardStats, ValueLog, ValueLogOptions};

/// What [`verify`] checked and found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Tables whose every checksum passed, and their bytes and blocks.
    pub tables: u64,
    /// Bytes of those tables.
    pub table_bytes: u64,
    /// Blocks of those tables.
    pub blocks: u64,
    /// Value-log files whose every record passed, their bytes and records.
    pub vlog_files: u64,
    /// Bytes of those value-log files up to their valid end (their seals not counted).
    pub vlog_bytes: u64,
    /// Records of those value-log files.
    pub vlog_records: u64,
    /// WALs that replayed as an open replays them, and their bytes.
    pub wals: u64,
    /// Bytes of those WALs.
    pub wal_bytes: u64,
    /// What is not damage: files an open removes as provably garbage, torn tails a crash
    /// left. One line each.
    pub notes: Vec<String>,
    /// Everything that means data is damaged or lost, each a typed error naming its file.
    pub problems: Vec<Error>,
}

impl VerifyReport {
    /// True if no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the database `opts` names (see the module docs). `Err` only when verification
/// cannot run at all: the directory is missing or locked by a writer, or it is not a SettDB
/// database ([`Error::NotADatabase`]). Damage is reported in [`VerifyReport::problems`].
pub fn verify(opts: &Options) -> Result<VerifyReport> {
    verify_with_progress(opts, &|_| {})
}

/// [`verify`], calling `progress` with the bytes of each table and value-log record checked.
pub fn verify_with_progress(opts: &Options, progress: &dyn Fn(u64)) -> Result<VerifyReport> {
    let mut opts = opts.clone();
    opts.read_only = true;
    opts.validate()?;
    let _locks = crate::db::lock_dirs(opts.storage.as_ref(), &opts)?;
    verify_locked(&opts, progress)
}

/// [`verify_with_progress`] for a caller that holds a lock on the directories already.
pub(crate) fn verify_locked(opts: &Options, progress: &dyn Fn(u64)) -> Result<VerifyReport> {
    let mut opts = opts.clone();
    opts.read_only = true;
    let storage = opts.storage.clone();
    let dirs = Dirs {
        dir: &opts.dir,
        value_dir: &opts.value_dir,
    };
    let mut report = VerifyReport::default();
    let (files, _) = list(storage.as_ref(), dirs)?;
    let manifest_path = opts.dir.join(MANIFEST_FILE_NAME);
    if !storage.exists(&manifest_path)? && files.is_empty() {
        return Err(Error::NotADatabase {
            dir: opts.dir.clone(),
        });
    }
    let manifest_opts = ManifestOptions::from_options(&opts);
    let opened = if storage.exists(&manifest_path)? {
        ManifestFile::open(storage.clone(), &opts.dir, manifest_opts)
    } else {
        // The inventory's words: a MANIFEST lost from a directory of database files.
        let empty = crate::manifest::Manifest::new(opts.max_levels);
        let mut inv = take_inventory(storage.as_ref(), dirs, &empty, false)?;
        Err(inv.problems.remove(0))
    };
    let (live, vlog) = match opened {
        Ok((file, state)) => {
            let mut inv = take_inventory(storage.as_ref(), dirs, &state, file.existed())?;
            report.problems.append(&mut inv.problems);
            report.notes.extend(
                inv.garbage
                    .iter()
                    .map(|g| format!("{}: {} (an open removes it)", g.path.display(), g.why)),
            );
            let tables = state
                .tables()
                .keys()
                .copied()
                .filter(|id| files.tables.contains(id))
                .collect();
            let vlog = ValueLog::recover_listed(
                storage.clone(),
                &opts.value_dir,
                ValueLogOptions::from_options(&opts),
                &inv.vlogs,
                Arc::new(SharedManifest::new(file)),
            );
            (
                Live {
                    tables,
                    wals: inv.wals,
                },
                vlog,
            )
        }
        Err(e) => {
            report.problems.push(e);
            let vlog = ValueLog::recover(
                storage.clone(),
                &opts.value_dir,
                ValueLogOptions::from_options(&opts),
            );
            (
                Live {
                    tables: files.tables.iter().copied().collect(),
                    wals: files.wals.iter().copied().collect(),
                },
                vlog,
            )
        }
    };
    let vlog = match vlog {
        Ok((v, recovery)) => {
            for f in recovery.files.iter().filter(|f| f.tail_bytes() > 0) {
                report.notes.push(format!(
                    "value-log file {}: {} bytes after its valid end (offset {}) are a torn \
                     tail a crash left (an open cuts them off)",
                    f.id,
                    f.tail_bytes(),
                    f.valid_end
                ));
            }
            Some(v)
        }
        Err(e) => {
            report.problems.push(e);
            None
        }
    };
    for &id in &live.tables {
        verify_table(
            storage.as_ref(),
            &opts.dir,
            id,
            vlog.as_ref(),
            progress,
            &mut report,
        );
    }
    if let Some(v) = &vlog {
        verify_value_log(v, progress, &mut report);
    }
    verify_wals(
        storage.as_ref(),
        &opts.dir,
        &live.wals,
        vlog.as_ref(),
        &mut report,
    );
    if let Err(e) = DiscardStats::load(storage.as_ref(), &opts.value_dir) {
        report.problems.push(e);
    }
    Ok(report)
}

/// The files verification reads: live ones by the MANIFEST, or every one found without it.
struct Live {
    tables: Vec<u64>,
    wals: Vec<u64>,
}

/// Opens table `id`, checks every checksum and the value pointer of each key's newest version.
fn verify_table(
    storage: &dyn Storage,
    dir: &Path,
    id: u64,
    vlog: Option<&ValueLog>,
    progress: &dyn Fn(u64),
    report: &mut VerifyReport,
) {
    let path = dir.join(table_file_name(id));
    let verified = storage
        .open(&path, OpenMode::Read)
        .and_then(|file| Table::open(file, id, TableOpenOptions::default()))
        .and_then(|t| t.verify_checksums().map(|()| t));
    let table = match verified {
        Ok(t) => t,
        Err(e) => {
            report.problems.push(e);
            return;
        }
    };
    report.tables += 1;
    report.table_bytes += table.size_bytes();
    report.blocks += table.block_count() as u64;
    if let Some(vlog) = vlog {
        match dangling_pointers(&table, vlog) {
            Ok(None) => {}
            Ok(Some((count, first))) => report.problems.push(Error::corruption(
                &path,
                0,
                format!(
                    "{count} value pointers name value-log bytes that are not there (first: \
                     file {} offset {} length {}): the value log lost those records",
                    first.file_id, first.offset, first.len
                ),
            )),
            Err(e) => report.problems.push(e),
        }
    }
    progress(table.size_bytes());
}

/// How many newest versions in `table` point at value-log bytes that do not exist, and the
/// first such pointer. Versions of a key are in descending order, so the first entry of each
/// user key is its newest version.
fn dangling_pointers(table: &Arc<Table>, vlog: &ValueLog) -> Result<Option<(u64, ValuePointer)>> {
    let mut it = TableIterator::new(table.clone());
    it.seek_to_first()?;
    let mut last_key: Vec<u8> = Vec::new();
    let mut dangling: Option<(u64, ValuePointer)> = None;
    while it.valid() {
        let key = user_key(it.key());
        // User keys are never empty, so the first entry always counts as a new key.
        if it.value().meta & meta::VALUE_POINTER != 0 && key != last_key.as_slice() {
            let vp = it
                .value()
                .value_pointer()
                .ok_or_else(|| Error::corruption(table.path(), 0, "malformed value pointer"))?;
            if !vlog.pointer_is_valid(&vp) {
                dangling.get_or_insert((0, vp)).0 += 1;
            }
        }
        last_key.clear();
        last_key.extend_from_slice(key);
        it.next()?;
    }
    Ok(dangling)
}

fn verify_value_log(vlog: &ValueLog, progress: &dyn Fn(u64), report: &mut VerifyReport) {
    for id in vlog.file_ids() {
        let mut records = 0u64;
        let outcome = vlog.iterate_file(id, |vp, _record| {
            records += 1;
            progress(u64::from(vp.len));
            Ok(std::ops::ControlFlow::Continue(()))
        });
        match outcome {
            Ok(()) => {
                report.vlog_files += 1;
                report.vlog_bytes += vlog.file_size_bytes(id).unwrap_or(0);
                report.vlog_records += records;
            }
            Err(e) => report.problems.push(e),
        }
    }
}

/// Replays every live WAL as an open does; value pointers must name surviving value-log
/// bytes (all are accepted when the value log itself did not recover: that is reported).
fn verify_wals(
    storage: &dyn Storage,
    dir: &Path,
    wals: &[u64],
    vlog: Option<&ValueLog>,
    report: &mut VerifyReport,
) {
    let valid = |vp: &ValuePointer| vlog.is_none_or(|v| v.pointer_is_valid(vp));
    for (i, &id) in wals.iter().enumerate() {
        let newer = wals.get(i + 1).copied();
        match Memtable::replay_live(storage, dir, id, newer, &valid) {
            Ok(_) => {
                report.wals += 1;
                let path = dir.join(crate::memtable::wal_file_name(id));
                report.wal_bytes += storage
                    .open(&path, OpenMode::Read)
                    .and_then(|f| f.len())
                    .unwrap_or(0);
            }
            Err(e) => report.problems.push(e),
        }
    }
}

//! [`verify`]: checks every byte of a database that can be checked, without opening it, and
//! reports every problem rather than the first one an open meets.
//!
//! What is checked (docs/design/recovery.md):
//! - the MANIFEST (replayed by the rules an open uses) and the directory against it: the
//!   inventory of an open ([`crate::inventory`]): missing files, files the MANIFEST lost;
//! - every live table: opened (footer, meta, index, filter) and every block's checksum;
//! - the value log, recovered read-only as an open does (every older file must end in its
//!   seal), then every record of every file;
//! - the value pointer of the newest version of each key, over the whole tree (the WALs'
//!   memtables, then L0 newest first, then each level, merged as a reader sees them), unless
//!   that version has expired: it must name value-log bytes that recovery found valid. Older
//!   versions are not checked: no reader at the latest version sees them, and value-log GC
//!   retires files whose values only such versions still point at;
//! - every live WAL, replayed as an open does (a rotated WAL must end in its seal; its value
//!   pointers must name surviving value-log bytes);
//! - the DISCARD statistics.
//!
//! Read-only: it takes the shared lock and writes nothing, so it works on read-only media and
//! beside read-only opens. With no readable MANIFEST it still checks every file it finds.

use std::path::Path;
use std::sync::Arc;

use crate::clock::now_secs;
use crate::crypto::KeyRegistry;
use crate::error::{Error, Result};
use crate::inventory::{list, take_inventory, Dirs};
use crate::io::{OpenMode, Storage};
use crate::key::user_key;
use crate::levels::{check_table_key, table_file_name};
use crate::manifest::{ManifestFile, ManifestOptions, SharedManifest, MANIFEST_FILE_NAME};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::table::{KvIterator, MergeIterator, Table, TableIterator, TableOpenOptions};
use crate::value::{is_expired, meta, ValuePointer};
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
    let _locks = crate::inventory::lock_dirs(opts.storage.as_ref(), &opts)?;
    verify_locked(&opts, progress)
}

/// [`verify_with_progress`] for a caller that holds a lock on the directories already.
pub(crate) fn verify_locked(opts: &Options, progress: &dyn Fn(u64)) -> Result<VerifyReport> {
    let mut opts = opts.clone();
    opts.read_only = true;
    let storage = opts.storage.clone();
    let keys = crate::inventory::open_keys(&storage, &opts, true)?;
    let dirs = Dirs {
        dir: &opts.dir,
        value_dir: &opts.value_dir,
        keys: keys.as_deref(),
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
                .iter()
                .filter(|(id, _)| files.tables.contains(id))
                .map(|(&id, tm)| (id, usize::from(tm.level), Some(tm.key_id)))
                .collect();
            let vlog = ValueLog::recover_listed(
                storage.clone(),
                &opts.value_dir,
                ValueLogOptions::from_options(&opts).with_keys(keys.clone()),
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
                ValueLogOptions::from_options(&opts).with_keys(keys.clone()),
            );
            (
                Live {
                    // Levels unknown without a MANIFEST: every table counts as L0.
                    tables: files.tables.iter().map(|&id| (id, 0, None)).collect(),
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
    let mut tree = Tree::default();
    for &(id, level, key_id) in &live.tables {
        let at = (opts.dir.as_path(), id, keys.clone());
        if let Some(t) = verify_table(storage.as_ref(), at, progress, &mut report) {
            if let Some(Err(e)) = key_id.map(|k| check_table_key(&t, k)) {
                report.problems.push(e);
            }
            tree.tables.push((level, t));
        }
    }
    if let Some(v) = &vlog {
        verify_value_log(v, progress, &mut report);
    }
    tree.memtables = verify_wals(
        storage.as_ref(),
        &opts.dir,
        (&live.wals, keys.as_deref()),
        vlog.as_ref(),
        &mut report,
    );
    if let Some(v) = &vlog {
        if let Err(e) = check_newest_pointers(tree.sources(), v, &mut report) {
            report.problems.push(e);
        }
    }
    if let Err(e) = DiscardStats::load(storage.as_ref(), &opts.value_dir) {
        // Advisory statistics: an open starts them afresh (vlog::DiscardTracker).
        report.notes.push(format!(
            "{e} (an open starts the discard statistics afresh)"
        ));
    }
    Ok(report)
}

/// The files verification reads: live ones by the MANIFEST, or every one found without it.
struct Live {
    /// Table ids with their level and the data key id the MANIFEST records (none without a
    /// MANIFEST).
    tables: Vec<(u64, usize, Option<u64>)>,
    wals: Vec<u64>,
}

/// Opens table `id` and checks every checksum; the table, if it passed.
/// The checks of [`verify`] that apply to an open database ([`crate::Db::verify_checksum`]),
/// over one read snapshot: every block of each of `tables`, every record of every sealed
/// value-log file, and the value pointer of the newest version of each key of `sources` (the
/// snapshot's memtables and tables, newest first). Damage goes to the report's problems;
/// `Err` only for an iterator error that stops the walk.
pub(crate) fn verify_open(
    tables: &[Arc<Table>],
    sources: Vec<Box<dyn KvIterator>>,
    vlog: Option<&ValueLog>,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    for table in tables {
        match table.verify_checksums() {
            Ok(()) => {
                report.tables += 1;
                report.table_bytes += table.size_bytes();
                report.blocks += table.block_count() as u64;
            }
            Err(e) => report.problems.push(e),
        }
    }
    if let Some(vlog) = vlog {
        verify_value_log(vlog, &|_| {}, &mut report);
        check_newest_pointers(sources, vlog, &mut report)?;
    }
    Ok(report)
}

fn verify_table(
    storage: &dyn Storage,
    (dir, id, keys): (&Path, u64, Option<Arc<KeyRegistry>>),
    progress: &dyn Fn(u64),
    report: &mut VerifyReport,
) -> Option<Arc<Table>> {
    let path = dir.join(table_file_name(id));
    let verified = storage
        .open(&path, OpenMode::Read)
        .and_then(|file| {
            let open = TableOpenOptions {
                keys,
                ..TableOpenOptions::default()
            };
            Table::open(file, id, open)
        })
        .and_then(|t| t.verify_checksums().map(|()| t));
    match verified {
        Ok(table) => {
            report.tables += 1;
            report.table_bytes += table.size_bytes();
            report.blocks += table.block_count() as u64;
            progress(table.size_bytes());
            Some(table)
        }
        Err(e) => {
            report.problems.push(e);
            None
        }
    }
}

/// The tree as a reader merges it: replayed WALs oldest first, tables with their levels.
#[derive(Default)]
struct Tree {
    memtables: Vec<Arc<Memtable>>,
    tables: Vec<(usize, Arc<Table>)>,
}

impl Tree {
    /// The sources, newest first: memtables (newest first), L0 tables (highest id first),
    /// then the deeper levels in order.
    fn sources(&self) -> Vec<Box<dyn KvIterator>> {
        let mut out: Vec<Box<dyn KvIterator>> = Vec::new();
        for m in self.memtables.iter().rev() {
            out.push(Box::new(m.iter()));
        }
        let mut tables: Vec<&(usize, Arc<Table>)> = self.tables.iter().collect();
        tables.sort_by_key(|(level, t)| (*level, std::cmp::Reverse(t.id())));
        for (_, t) in tables {
            out.push(Box::new(TableIterator::without_filling(t.clone())));
        }
        out
    }
}

/// Reports the newest versions (over the whole tree) whose value pointer names value-log
/// bytes that are not there: how many, and the first.
fn check_newest_pointers(
    sources: Vec<Box<dyn KvIterator>>,
    vlog: &ValueLog,
    report: &mut VerifyReport,
) -> Result<()> {
    let mut it = MergeIterator::new(sources);
    it.seek_to_first()?;
    let now = now_secs();
    let mut last_key: Vec<u8> = Vec::new();
    let mut dangling: Option<(u64, ValuePointer, Vec<u8>)> = None;
    while it.valid() {
        let key = user_key(it.key());
        let value = it.value();
        // User keys are never empty, so the first entry always counts as a new key.
        if key != last_key.as_slice()
            && value.meta & meta::VALUE_POINTER != 0
            && !is_expired(value.expires_at, now)
        {
            let vp = value.value_pointer().ok_or_else(|| {
                Error::corruption(
                    vlog.path_of(0),
                    0,
                    "malformed value pointer in the LSM tree",
                )
            })?;
            if !vlog.pointer_is_valid(&vp) {
                dangling.get_or_insert((0, vp, key.to_vec())).0 += 1;
            }
        }
        last_key.clear();
        last_key.extend_from_slice(key);
        it.next()?;
    }
    if let Some((count, first, key)) = dangling {
        report.problems.push(Error::corruption(
            vlog.path_of(first.file_id),
            u64::from(first.offset),
            format!(
                "{count} newest versions point at value-log bytes that are not there (first: \
                 key \"{}\", file {} offset {} length {}): the value log lost those records",
                key.escape_ascii(),
                first.file_id,
                first.offset,
                first.len
            ),
        ));
    }
    Ok(())
}

fn verify_value_log(vlog: &ValueLog, progress: &dyn Fn(u64), report: &mut VerifyReport) {
    // An open value log's active file is being appended to: its records are checked as
    // they are read, not here.
    let active = vlog.active_file_id().unwrap_or(u32::MAX);
    for id in vlog.file_ids().into_iter().filter(|&id| id < active) {
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
    (wals, keys): (&[u64], Option<&KeyRegistry>),
    vlog: Option<&ValueLog>,
    report: &mut VerifyReport,
) -> Vec<Arc<Memtable>> {
    let valid = |vp: &ValuePointer| vlog.is_none_or(|v| v.pointer_is_valid(vp));
    let mut out = Vec::new();
    for (i, &id) in wals.iter().enumerate() {
        let newer = wals.get(i + 1).copied();
        match Memtable::replay_live(storage, dir, id, newer, keys, &valid) {
            Ok(mem) => {
                out.push(Arc::new(mem));
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
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::io::{FsStorage, Storage};
    use crate::manifest::{ManifestChange, ManifestFile, ManifestOptions};
    use crate::{Db, Error, Options};

    #[test]
    fn a_table_sealed_under_another_key_than_the_manifest_says_fails_open_and_verify() {
        // Proves an open and verify agree on a MANIFEST whose data key id for a table is not
        // the one the table's sealing block names: both report it (verify never passes what an
        // open refuses).
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
        let opts = Options::new(dir.path())
            .with_storage(storage.clone())
            .with_encryption_key(vec![4; 32]);
        let db = Db::open(opts.clone()).unwrap();
        db.set(b"k".to_vec(), b"v".to_vec()).unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        assert!(crate::verify(&opts).unwrap().is_ok());
        let mopts = ManifestOptions::from_options(&opts);
        let (mut file, state) = ManifestFile::open(storage, dir.path(), mopts).unwrap();
        let (&id, tm) = state.tables().iter().next().unwrap();
        assert!(tm.key_id >= 1);
        file.start_writing().unwrap();
        let wrong = ManifestChange::create(id, tm.level, tm.compression, tm.key_id + 1);
        file.add_changes(&[ManifestChange::delete(id), wrong])
            .unwrap();
        drop(file);
        let refused = Db::open(opts.clone()).unwrap_err();
        assert!(matches!(refused, Error::Corruption { .. }), "{refused}");
        let report = crate::verify(&opts).unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|e| e.to_string().contains("sealed under data key")),
            "{:?}",
            report.problems
        );
    }
}

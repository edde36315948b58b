//! `settdb verify`: checks every checksum of the database's files, reading them directly (not
//! through an open `Db`), so that it reports every damaged file of a damaged directory rather
//! than the first error an open meets:
//! - the MANIFEST (replayed) and its tables' files (present);
//! - every table the MANIFEST lists: opened (`Table::open`: footer, meta, index, filter) and
//!   every block checked (`Table::verify_checksums`);
//! - the value log, recovered read-only, and every record of every file (`iterate_file`);
//! - every value pointer of the newest version of each key in each table: it must name
//!   value-log bytes that recovery found valid. Damage in the middle of the newest value-log
//!   file looks like a torn tail to recovery (the record checksums cannot tell a crash from a
//!   bit flip there), so this cross-check is what finds it. Once value-log GC exists, pointers
//!   of shadowed versions may dangle legitimately; then only visible versions are checked;
//! - every memtable WAL (`Memtable::replay`, value pointers checked against the value log);
//! - the DISCARD statistics.
//!
//! Prints a summary; exits 1 if anything is damaged. Takes a shared lock (no writer can run).

use std::path::Path;
use std::sync::Arc;

use settdb::io::{FsStorage, OpenMode, Storage};
use settdb::key::user_key;
use settdb::levels::table_file_name;
use settdb::memtable::{parse_wal_file_name, wal_file_name, Memtable};
use settdb::table::{KvIterator, Table, TableIterator, TableOpenOptions};
use settdb::value::{meta, ValuePointer};
use settdb::vlog::{DiscardStats, ValueLog, ValueLogOptions};

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::manifest_check::ManifestCheck;
use crate::progress::{Goal, Progress, BYTES};
use crate::units::{fmt_bytes, plural};

/// Flags of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
}

/// What was checked and what was found.
#[derive(Debug, Default)]
struct Findings {
    tables: u64,
    table_bytes: u64,
    blocks: u64,
    vlog_files: u64,
    vlog_bytes: u64,
    vlog_records: u64,
    wals: u64,
    wal_bytes: u64,
    /// Not damage by themselves (a crash leaves them too).
    notes: Vec<String>,
    problems: Vec<String>,
}

/// Runs `verify`.
pub fn run(args: VerifyArgs) -> CliResult {
    let dirs = &args.dirs;
    dirs.require_existing()?;
    let _locks = dirs.lock_shared()?;
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
    let mut found = Findings::default();
    let check = ManifestCheck::run(&dirs.dir)
        .map_err(|e| CliError::new(format!("cannot list {}: {e}", dirs.dir.display())))?;
    found.problems.extend(check.problems());
    let tables: Vec<u64> = match &check.replayed {
        Ok(r) => r
            .manifest
            .tables()
            .keys()
            .copied()
            .filter(|id| !check.missing.iter().any(|(m, _)| m == id))
            .collect(),
        Err(_) => Vec::new(),
    };
    let opts = dirs.options();
    let vlog = ValueLog::recover(
        storage.clone(),
        dirs.value_dir(),
        ValueLogOptions {
            read_only: true,
            ..ValueLogOptions::from_options(&opts)
        },
    )
    .map(|(v, recovery)| {
        for f in recovery.files.iter().filter(|f| f.tail_bytes() > 0) {
            found.notes.push(format!(
                "value-log file {}: {} after its valid end (offset {}) ignored: the torn tail \
                 of a crash, or damage if a table points there",
                f.id,
                fmt_bytes(f.tail_bytes()),
                f.valid_end
            ));
        }
        v
    });
    let total = table_bytes(&dirs.dir, &tables) + vlog.as_ref().map_or(0, |v| v.total_size_bytes());
    let progress = Progress::start("verify", Goal::Items(total), BYTES);
    let ctx = TableCheck {
        storage: storage.as_ref(),
        dir: &dirs.dir,
        vlog: vlog.as_ref().ok(),
        progress: &progress,
    };
    for &id in &tables {
        ctx.verify_table(id, &mut found);
    }
    match &vlog {
        Ok(v) => verify_value_log(v, &progress, &mut found),
        Err(e) => found.problems.push(format!("value log: {e}")),
    }
    progress.finish();
    verify_wals(storage.as_ref(), &dirs.dir, vlog.as_ref().ok(), &mut found);
    if let Err(e) = DiscardStats::load(storage.as_ref(), dirs.value_dir()) {
        found.problems.push(format!("DISCARD: {e}"));
    }
    print_summary(&found);
    if found.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "{} found in {} (listed above)",
            plural(found.problems.len() as u64, "problem"),
            dirs.dir.display()
        )))
    }
}

/// Bytes of the table files (for the progress bar; unreadable ones count 0).
fn table_bytes(dir: &Path, tables: &[u64]) -> u64 {
    tables
        .iter()
        .filter_map(|&id| std::fs::metadata(dir.join(table_file_name(id))).ok())
        .map(|m| m.len())
        .sum()
}

/// What checking one table needs.
struct TableCheck<'a> {
    storage: &'a dyn Storage,
    dir: &'a Path,
    /// The recovered value log (pointers are not checked without one).
    vlog: Option<&'a ValueLog>,
    progress: &'a Progress,
}

impl TableCheck<'_> {
    /// Opens table `id`, checks every checksum and every value pointer.
    fn verify_table(&self, id: u64, found: &mut Findings) {
        let path = self.dir.join(table_file_name(id));
        let verified = self
            .storage
            .open(&path, OpenMode::Read)
            .and_then(|file| Table::open(file, id, TableOpenOptions::default()))
            .and_then(|t| t.verify_checksums().map(|()| t));
        let table = match verified {
            Ok(t) => t,
            Err(e) => {
                found.problems.push(format!("table {id}: {e}"));
                return;
            }
        };
        found.tables += 1;
        found.table_bytes += table.size_bytes();
        found.blocks += table.block_count() as u64;
        if let Some(vlog) = self.vlog {
            match dangling_pointers(&table, vlog) {
                Ok(None) => {}
                Ok(Some(d)) => found.problems.push(format!(
                    "table {id}: {} name value-log bytes that are not there (first: file \
                     {} offset {} length {}); the value log lost those records, and a \
                     read-write open would cut them off for good",
                    plural(d.count, "value pointer"),
                    d.first.file_id,
                    d.first.offset,
                    d.first.len
                )),
                Err(e) => found.problems.push(format!("table {id}: {e}")),
            }
        }
        self.progress.add(table.size_bytes());
    }
}

/// Value pointers of a table that name no valid value-log record.
struct Dangling {
    count: u64,
    first: ValuePointer,
}

/// Checks the value pointer of the newest version of each key in `table` (the first entry of
/// each user key: versions are in descending order).
fn dangling_pointers(table: &Arc<Table>, vlog: &ValueLog) -> settdb::Result<Option<Dangling>> {
    let mut it = TableIterator::new(table.clone());
    it.seek_to_first()?;
    let mut last_key: Vec<u8> = Vec::new();
    let mut dangling: Option<Dangling> = None;
    while it.valid() {
        let key = user_key(it.key());
        // User keys are never empty, so the first entry always counts as a new key.
        if it.value().meta & meta::VALUE_POINTER != 0 && key != last_key.as_slice() {
            let vp = it.value().value_pointer().ok_or_else(|| {
                settdb::Error::corruption(table.path(), 0, "malformed value pointer")
            })?;
            if !vlog.pointer_is_valid(&vp) {
                dangling
                    .get_or_insert(Dangling {
                        count: 0,
                        first: vp,
                    })
                    .count += 1;
            }
        }
        last_key.clear();
        last_key.extend_from_slice(key);
        it.next()?;
    }
    Ok(dangling)
}

fn verify_value_log(vlog: &ValueLog, progress: &Progress, found: &mut Findings) {
    for id in vlog.file_ids() {
        let mut records = 0u64;
        let outcome = vlog.iterate_file(id, |vp, _record| {
            records += 1;
            progress.add(u64::from(vp.len));
            Ok(())
        });
        match outcome {
            Ok(()) => {
                found.vlog_files += 1;
                found.vlog_bytes += vlog.file_size_bytes(id).unwrap_or(0);
                found.vlog_records += records;
            }
            Err(e) => found.problems.push(format!("value-log file {id}: {e}")),
        }
    }
}

/// Replays every WAL as an open would; value pointers must point at value-log records that
/// survived (all are accepted when the value log itself did not recover).
fn verify_wals(storage: &dyn Storage, dir: &Path, vlog: Option<&ValueLog>, found: &mut Findings) {
    let mut ids: Vec<u64> = match storage.list_dir(dir) {
        Ok(names) => names
            .iter()
            .filter_map(|n| parse_wal_file_name(n))
            .collect(),
        Err(e) => {
            found.problems.push(format!("cannot list WALs: {e}"));
            return;
        }
    };
    ids.sort_unstable();
    let valid = |vp: &ValuePointer| vlog.is_none_or(|v| v.pointer_is_valid(vp));
    for id in ids {
        let path = dir.join(wal_file_name(id));
        match Memtable::replay(storage, &path, id, &valid) {
            Ok(_) => {
                found.wals += 1;
                found.wal_bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
            }
            Err(e) => found.problems.push(format!("WAL {id}: {e}")),
        }
    }
}

fn print_summary(f: &Findings) {
    println!(
        "verified {} ({}, {})",
        plural(f.tables, "table"),
        fmt_bytes(f.table_bytes),
        plural(f.blocks, "block")
    );
    println!(
        "verified {} ({}, {})",
        plural(f.vlog_files, "value-log file"),
        fmt_bytes(f.vlog_bytes),
        plural(f.vlog_records, "record")
    );
    println!(
        "replayed {} ({})",
        plural(f.wals, "WAL"),
        fmt_bytes(f.wal_bytes)
    );
    for n in &f.notes {
        println!("note: {n}");
    }
    if f.problems.is_empty() {
        println!("OK: no corruption found");
    } else {
        for p in &f.problems {
            println!("CORRUPT: {p}");
        }
    }
}

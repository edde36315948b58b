//! [`repair`]: rebuilds a damaged database from everything in it that can still be read
//! (LevelDB's and RocksDB's `RepairDB`; Badger has none). Normative page:
//! docs/design/recovery.md, "Repair".
//!
//! 1. [`crate::verify`] runs first; a database it finds nothing wrong with is left alone.
//! 2. Salvage ([`salvage`]): every entry (every version) of every table block that passes its
//!    checksum, of every intact WAL batch wherever it lies, and every value a value pointer
//!    names whose value-log record is intact. Files the MANIFEST proves garbage are skipped
//!    when the MANIFEST is readable.
//! 3. The entries are written, with their versions, into a new database built by the engine
//!    itself in a staging directory (`repair.tmp`) and closed cleanly.
//! 4. Swap ([`swap`]): every old database file is moved (renamed, never deleted) into
//!    `lost/N/`, then the staging files take their place. A `REPAIR` marker names the phase,
//!    so a crash in between is finished by running repair again, and an open refuses the
//!    directory until then.
//!
//! A version whose value cannot be read is written as a tombstone at its version, so an older
//! value never reappears in its place; its key is listed in `lost/N/lost-keys.txt`. Entries
//! of a damaged table block or WAL batch cannot be named; their bytes are counted.

mod salvage;
mod swap;

use std::path::{Path, PathBuf};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::inventory::list;
use crate::inventory::Dirs;
use crate::io::Storage;
use crate::manifest::MANIFEST_FILE_NAME;
use crate::options::Options;
use crate::read::IteratorOptions;
use crate::verify::verify_locked;

pub(crate) use swap::REPAIR_MARKER_FILE_NAME;

/// What [`repair`] did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// False if verification found nothing to repair (nothing was changed).
    pub repaired: bool,
    /// True if this run finished a repair that a crash interrupted.
    pub resumed: bool,
    /// What verification found (why repair ran), one line each.
    pub problems: Vec<String>,
    /// The directory the old files were moved into (`lost/N` in the database directory; the
    /// value-log files go to `lost/N` of the value-log directory).
    pub lost_dir: Option<PathBuf>,
    /// Old files moved aside, with their new paths.
    pub moved_files: Vec<PathBuf>,
    /// Files with damage, and what of each could not be read, one line each.
    pub damaged: Vec<String>,
    /// Versions written into the rebuilt database.
    pub versions_kept: u64,
    /// Live keys of the rebuilt database (not deleted, not expired).
    pub keys_kept: u64,
    /// Key and value bytes of those live keys.
    pub bytes_kept: u64,
    /// Bytes of damaged files that belong to no readable block, batch or record.
    pub bytes_lost: u64,
    /// Versions whose value could not be read: written as tombstones, keys listed in
    /// `lost-keys.txt`.
    pub values_lost: u64,
}

/// Repairs the database `opts` names (see the module docs). Needs the exclusive lock (no
/// process may have it open). `Err` when repair cannot run: the directory is missing, locked,
/// not a SettDB database ([`Error::NotADatabase`]), or an I/O error stopped it (run it again:
/// each step either completes or leaves the old files where they were).
pub fn repair(opts: &Options) -> Result<RepairReport> {
    let opts = opts.clone();
    if opts.read_only || opts.in_memory {
        return Err(Error::InvalidOptions(
            "repair writes the database: read_only and in_memory must be off".into(),
        ));
    }
    opts.validate()?;
    let storage = opts.storage.clone();
    for dir in [&opts.dir, &opts.value_dir] {
        if !storage.exists(dir)? {
            let not_found = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(Error::io("repair", dir, not_found));
        }
    }
    let dirs = Dirs {
        dir: &opts.dir,
        value_dir: &opts.value_dir,
        keys: None,
    };
    // Checked before the lock, which would create a LOCK file among someone else's files.
    let (files, _) = list(storage.as_ref(), dirs)?;
    let marked = storage.exists(&opts.dir.join(REPAIR_MARKER_FILE_NAME))?;
    if !marked && !storage.exists(&opts.dir.join(MANIFEST_FILE_NAME))? && files.is_empty() {
        return Err(Error::NotADatabase {
            dir: opts.dir.clone(),
        });
    }
    let _locks = crate::inventory::lock_dirs(storage.as_ref(), &opts)?;
    let mut report = RepairReport::default();
    if let Some(marker) = swap::Marker::read(storage.as_ref(), &opts.dir)? {
        report.resumed = true;
        report.repaired = true;
        swap::finish(storage.as_ref(), &opts, &marker, &mut report)?;
        return Ok(report);
    }
    let verified = verify_locked(&opts, &|_| {})?;
    if verified.is_ok() {
        return Ok(report);
    }
    report.repaired = true;
    report.problems = verified.problems.iter().map(|e| e.to_string()).collect();
    let staging = swap::Staging::prepare(storage.as_ref(), &opts)?;
    let mut lost_keys = Vec::new();
    {
        let db = Db::open_managed(staging.options(&opts))?;
        salvage::salvage_into(&db, storage.as_ref(), &opts, &mut report, &mut lost_keys)?;
        count_live(&db, &mut report)?;
        db.close()?;
    }
    swap::swap(storage.as_ref(), &opts, &lost_keys, &mut report)?;
    Ok(report)
}

/// Counts the live keys of the rebuilt database and their bytes.
fn count_live(db: &Db, report: &mut RepairReport) -> Result<()> {
    let txn = db.new_transaction_at(u64::MAX, false)?;
    let mut it = txn.iter(IteratorOptions::default())?;
    it.rewind()?;
    while it.valid() {
        let item = it.item();
        report.keys_kept += 1;
        report.bytes_kept += item.key().len() as u64 + item.value_size();
        it.next()?;
    }
    Ok(())
}

/// `path` shown relative to `base` when it lies inside it (for report lines).
fn shown(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Lists a directory's names, or none if it does not exist.
fn names_in(storage: &dyn Storage, dir: &Path) -> Result<Vec<String>> {
    if storage.exists(dir)? {
        storage.list_dir(dir)
    } else {
        Ok(Vec::new())
    }
}

//! [`Inventory`]: the files of a database directory against what its MANIFEST says, at open.
//!
//! Recovery removes only what it can prove is garbage (DESIGN.md rule 11) and reports the rest:
//!
//! | file on disk | MANIFEST says | verdict |
//! |---|---|---|
//! | table | live | live |
//! | table | reserved by an operation that did not end, whose source (a WAL it lists, or input tables it lists) is still there | garbage: an unfinished output, its data is in the source |
//! | table | reserved by such an operation whose source is gone | problem: the MANIFEST lost the record that ended it |
//! | table | below the next table id, not live, not reserved | garbage: deleted, or abandoned by an operation that ended |
//! | table | at or above the next table id | problem: the MANIFEST lost records |
//! | WAL / value-log file | live | live |
//! | WAL / value-log file | below the next id, not live | garbage: deleted by a durable edit |
//! | WAL / value-log file | at or above the next id, holding no batch | garbage: created by a crash before its record |
//! | WAL / value-log file | at or above the next id, holding data | problem: the MANIFEST lost records |
//! | nothing | a live table, WAL or value-log file | problem: missing |
//! | tables, WALs or value-log files | no MANIFEST at all | problem: the MANIFEST is lost |
//! | `REPAIR` | (any) | problem: an interrupted `settdb repair`; running it again finishes it |
//!
//! Pure inspection: nothing here writes but [`Inventory::remove_garbage`], which recovery calls
//! only after everything validated (rule 7). Normative page: docs/design/recovery.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crypto::{KeyRegistry, RegistryOptions, KEY_REGISTRY_FILE_NAME};
use crate::error::{Error, Result};
use crate::io::{LockKind, OpenMode, Storage, StorageLock};
use crate::levels::{parse_table_file_name, table_file_name};
use crate::log::{replay_with, LogKind};
use crate::manifest::{
    Manifest, ManifestChange, OpSource, SharedManifest, TableFate, MANIFEST_FILE_NAME,
};
use crate::memtable::{parse_wal_file_name, wal_file_name};
use crate::options::Options;
use crate::vlog::{parse_vlog_file_name, vlog_file_name, DISCARD_FILE_NAME};

/// A file recovery may remove, and why it is garbage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Garbage {
    /// The file.
    pub path: PathBuf,
    /// Why it is provably garbage (for logs and `settdb verify`'s notes).
    pub why: String,
}

/// What [`take_inventory`] found.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Files that are provably garbage.
    pub garbage: Vec<Garbage>,
    /// Operations that began and did not end, all of whose outputs are garbage: ended in the
    /// MANIFEST once their files are removed.
    pub abandoned_ops: Vec<u64>,
    /// Everything that means data may be lost (each a typed `Corruption` naming a file).
    pub problems: Vec<Error>,
    /// Ids of the live WALs, ascending (the newest is the active one's).
    pub wals: Vec<u64>,
    /// Ids of the live value-log files, ascending.
    pub vlogs: Vec<u32>,
}

/// The directories and names an inventory looks at.
#[derive(Clone, Copy, Debug)]
pub struct Dirs<'a> {
    /// Tables, WALs, MANIFEST.
    pub dir: &'a Path,
    /// Value-log files.
    pub value_dir: &'a Path,
    /// The key registry of an encrypted database (to read its logs).
    pub keys: Option<&'a KeyRegistry>,
}

impl Inventory {
    /// `Ok` if nothing is wrong, else the first problem (the open's error), taken out, with
    /// how many more there are.
    pub fn check(&mut self) -> Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let more = self.problems.len() - 1;
        match self.problems.remove(0) {
            Error::Corruption {
                file,
                offset,
                reason,
            } if more > 0 => Err(Error::Corruption {
                file,
                offset,
                reason: format!("{reason}; and {more} more problems (`settdb verify` lists them)"),
            }),
            e => Err(e),
        }
    }

    /// Removes every garbage file, syncs the directories, then ends the abandoned operations
    /// in the MANIFEST. REQUIRES: read-write, the MANIFEST writing, no problems.
    pub fn remove_garbage(&self, storage: &dyn Storage, manifest: &SharedManifest) -> Result<()> {
        let mut dirs = BTreeSet::new();
        for g in &self.garbage {
            tracing::warn!(path = %g.path.display(), why = %g.why, "open: removing garbage");
            storage.remove_file(&g.path)?;
            dirs.insert(crate::io::parent_dir(&g.path));
        }
        for d in dirs {
            storage.sync_dir(&d)?;
        }
        let ends: Vec<ManifestChange> = self
            .abandoned_ops
            .iter()
            .map(|&op_id| ManifestChange::EndOp { op_id })
            .collect();
        manifest.edit(&ends)
    }
}

/// The database files found in the directories (by id).
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) tables: BTreeSet<u64>,
    pub(crate) wals: BTreeSet<u64>,
    pub(crate) vlogs: BTreeSet<u32>,
    discard: bool,
    /// A `settdb repair` stopped in its swap.
    repair_marker: bool,
}

impl Listing {
    /// True if there is no table, WAL or value-log file.
    pub(crate) fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.wals.is_empty() && self.vlogs.is_empty()
    }
}

/// Lists the database files of `dirs`, with a problem for each malformed value-log name.
pub(crate) fn list(storage: &dyn Storage, dirs: Dirs<'_>) -> Result<(Listing, Vec<Error>)> {
    let mut found = Listing::default();
    let mut problems = Vec::new();
    if storage.exists(dirs.dir)? {
        for name in storage.list_dir(dirs.dir)? {
            if let Some(id) = parse_table_file_name(&name).filter(|&i| table_file_name(i) == name) {
                found.tables.insert(id);
            } else if let Some(id) =
                parse_wal_file_name(&name).filter(|&i| wal_file_name(i) == name)
            {
                found.wals.insert(id);
            } else if name == REPAIR_MARKER_FILE_NAME {
                found.repair_marker = true;
            }
        }
    }
    if storage.exists(dirs.value_dir)? {
        for name in storage.list_dir(dirs.value_dir)? {
            match parse_vlog_file_name(dirs.value_dir, &name) {
                Ok(Some(id)) => {
                    found.vlogs.insert(id);
                }
                Ok(None) => found.discard |= name == DISCARD_FILE_NAME,
                Err(e) => problems.push(e),
            }
        }
    }
    Ok((found, problems))
}

/// Compares the directories with `manifest` (the replayed state; `existed` says whether a
/// MANIFEST file was there at all). Reads only: a WAL or value-log file the MANIFEST does not
/// know is replayed to see whether it holds data.
pub fn take_inventory(
    storage: &dyn Storage,
    dirs: Dirs<'_>,
    manifest: &Manifest,
    existed: bool,
) -> Result<Inventory> {
    let (found, problems) = list(storage, dirs)?;
    let mut inv = Inventory {
        problems,
        ..Inventory::default()
    };
    if found.repair_marker {
        inv.problems.push(Error::corruption(
            dirs.dir.join(REPAIR_MARKER_FILE_NAME),
            0,
            "a `settdb repair` was interrupted while it swapped the rebuilt files in: run \
             `settdb repair` again to finish it",
        ));
    }
    if !existed {
        if !found.is_empty() || found.discard {
            inv.problems.push(Error::corruption(
                dirs.dir.join(MANIFEST_FILE_NAME),
                0,
                format!(
                    "the MANIFEST is missing but the directory holds {} tables, {} WALs and {} \
                     value-log files: it is not a new database (run `settdb repair`)",
                    found.tables.len(),
                    found.wals.len(),
                    found.vlogs.len()
                ),
            ));
        }
        return Ok(inv);
    }
    check_tables(&found, dirs.dir, manifest, &mut inv);
    check_logs(storage, &found, dirs, manifest, &mut inv)?;
    Ok(inv)
}

fn check_tables(found: &Listing, dir: &Path, m: &Manifest, inv: &mut Inventory) {
    for &id in m.tables().keys() {
        if !found.tables.contains(&id) {
            inv.problems
                .push(missing(dir.join(table_file_name(id)), "table"));
        }
    }
    let mut unfinished: BTreeSet<u64> = BTreeSet::new();
    for &id in &found.tables {
        let path = dir.join(table_file_name(id));
        match m.table_fate(id) {
            TableFate::Live => {}
            TableFate::Dead => inv.garbage.push(Garbage {
                path,
                why: format!("table {id} was deleted (or abandoned) by a durable edit"),
            }),
            TableFate::Unfinished { op_id } => match source_intact(m, op_id, found) {
                Ok(()) => {
                    unfinished.insert(op_id);
                    inv.garbage.push(Garbage {
                        path,
                        why: format!(
                            "table {id} is an unfinished output of operation {op_id}, whose \
                             source still holds its data"
                        ),
                    });
                }
                Err(why) => inv.problems.push(Error::corruption(
                    path,
                    0,
                    format!(
                        "table {id} was written by operation {op_id}, which the MANIFEST never \
                         saw finish, but {why}: the MANIFEST lost the record that finished it \
                         (run `settdb repair`)"
                    ),
                )),
            },
            TableFate::Unknown => inv.problems.push(Error::corruption(
                path,
                0,
                format!(
                    "table {id} is not in the MANIFEST, which never handed out its id (next \
                     {}): the MANIFEST lost records (run `settdb repair`)",
                    m.next_table_id()
                ),
            )),
        }
    }
    // Operations with no output on disk are abandoned too, once their source is intact.
    for &op_id in m.open_ops().keys() {
        if source_intact(m, op_id, found).is_ok() {
            unfinished.insert(op_id);
        }
    }
    inv.abandoned_ops = unfinished.into_iter().collect();
}

/// `Ok` if the source of open operation `op_id` still holds the data its outputs were written
/// from; else what is gone.
fn source_intact(m: &Manifest, op_id: u64, found: &Listing) -> Result<(), String> {
    let op = m
        .open_ops()
        .get(&op_id)
        .ok_or_else(|| format!("operation {op_id} is not open"))?;
    match &op.source {
        OpSource::None => Err("it recorded no source".into()),
        OpSource::Wal(w) => {
            if m.wals().contains(w) && found.wals.contains(w) {
                Ok(())
            } else {
                Err(format!("its source, WAL {w}, is gone"))
            }
        }
        OpSource::Tables(ids) => match ids
            .iter()
            .find(|&&t| m.table(t).is_none() || !found.tables.contains(&t))
        {
            None => Ok(()),
            Some(t) => Err(format!("its input table {t} is gone")),
        },
    }
}

fn check_logs(
    storage: &dyn Storage,
    found: &Listing,
    dirs: Dirs<'_>,
    m: &Manifest,
    inv: &mut Inventory,
) -> Result<()> {
    for &w in m.wals() {
        if found.wals.contains(&w) {
            inv.wals.push(w);
        } else {
            inv.problems
                .push(missing(dirs.dir.join(wal_file_name(w)), "WAL"));
        }
    }
    for &v in m.vlogs() {
        let id = u32::try_from(v).unwrap_or(u32::MAX);
        if found.vlogs.contains(&id) {
            inv.vlogs.push(id);
        } else {
            inv.problems.push(missing(
                dirs.value_dir.join(vlog_file_name(id)),
                "value-log file",
            ));
        }
    }
    for &w in found.wals.iter().filter(|w| !m.wals().contains(w)) {
        let path = dirs.dir.join(wal_file_name(w));
        let id = (LogKind::Wal, w, m.next_wal_id());
        classify_unlisted(storage, &path, id, dirs.keys, inv)?;
    }
    for &v in found
        .vlogs
        .iter()
        .filter(|&&v| !m.vlogs().contains(&u64::from(v)))
    {
        let path = dirs.value_dir.join(vlog_file_name(v));
        let next = m.next_vlog_id();
        let id = (LogKind::ValueLog, u64::from(v), next);
        classify_unlisted(storage, &path, id, dirs.keys, inv)?;
    }
    Ok(())
}

/// A WAL or value-log file the MANIFEST does not list: garbage if its id was handed out (it
/// was deleted) or if it holds no batch (a crash between its creation and its record);
/// otherwise a problem.
fn classify_unlisted(
    storage: &dyn Storage,
    path: &Path,
    (kind, id, next): (LogKind, u64, u64),
    keys: Option<&KeyRegistry>,
    inv: &mut Inventory,
) -> Result<()> {
    let what = kind.name();
    if id < next {
        inv.garbage.push(Garbage {
            path: path.to_path_buf(),
            why: format!("{what} {id} was deleted by a durable edit"),
        });
        return Ok(());
    }
    let file = storage.open(path, OpenMode::Read)?;
    let holds_data = match replay_with(file.as_ref(), kind, keys, |_| Ok(())) {
        Ok(end) => end.batches > 0 || end.sealed,
        Err(e) if e.is_corruption() => true,
        Err(e) => return Err(e),
    };
    if holds_data {
        inv.problems.push(Error::corruption(
            path,
            0,
            format!(
                "{what} {id} holds data but is not in the MANIFEST, which never handed out its \
                 id (next {next}): the MANIFEST lost records (run `settdb repair`)"
            ),
        ));
    } else {
        inv.garbage.push(Garbage {
            path: path.to_path_buf(),
            why: format!(
                "{what} {id} holds no batch: a crash came before its creation was recorded"
            ),
        });
    }
    Ok(())
}

fn missing(path: PathBuf, what: &str) -> Error {
    let why = format!("the MANIFEST lists this {what}, but the file is missing");
    Error::corruption(path, 0, why)
}

/// Name of the lock file in each database directory.
pub const LOCK_FILE_NAME: &str = "LOCK";

/// The marker `settdb repair` leaves in the database directory while it swaps files in.
pub(crate) const REPAIR_MARKER_FILE_NAME: &str = "REPAIR";

/// Opens the key registry of the database `opts` describes ([`KeyRegistry::open`]): `None`
/// for a plaintext database; created (with its first data key, durably) for a new encrypted
/// one unless `read_only`. Reads nothing else, and writes nothing for an existing database.
pub(crate) fn open_keys(
    storage: &Arc<dyn Storage>,
    opts: &Options,
    read_only: bool,
) -> Result<Option<Arc<KeyRegistry>>> {
    let exists = storage.exists(&opts.dir.join(MANIFEST_FILE_NAME))?;
    let reg_opts = RegistryOptions {
        rotation: opts.encryption_key_rotation_duration,
        read_only,
        clock: Arc::new(crate::clock::now_secs),
    };
    KeyRegistry::open(
        storage.clone(),
        &opts.dir,
        &opts.encryption_key,
        exists,
        reg_opts,
    )
}

/// Before the directory lock: checks the key against an existing registry (and a key given
/// for a plaintext database), reading nothing else and writing nothing, so a wrong key fails
/// fast and leaves every byte as it was.
pub(crate) fn check_keys(storage: &Arc<dyn Storage>, opts: &Options) -> Result<()> {
    let registry = storage.exists(&opts.dir.join(KEY_REGISTRY_FILE_NAME))?;
    let manifest = storage.exists(&opts.dir.join(MANIFEST_FILE_NAME))?;
    if registry || manifest {
        open_keys(storage, opts, true)?;
    }
    Ok(())
}

/// Re-seals the key registry of the database `opts` names (opened with its current key,
/// `opts.encryption_key`) under `new_key`, as Badger's `rotate` does: only `KEYREGISTRY`
/// changes, replaced atomically; every other file keeps its data key. Takes the directory
/// lock (the database must not be open). Returns the number of data keys re-sealed.
///
/// Errors: [`Error::WrongEncryptionKey`] for a wrong current key, [`Error::NotEncrypted`] for
/// a plaintext database, [`Error::InvalidOptions`] for a key of the wrong length,
/// [`Error::Locked`], I/O errors.
pub fn rotate_encryption_key(opts: &Options, new_key: &[u8]) -> Result<usize> {
    let mut opts = opts.clone();
    opts.read_only = false;
    opts.validate()?;
    crate::crypto::check_key_len(new_key.len())?;
    let storage = opts.storage.clone();
    if !storage.exists(&opts.dir.join(KEY_REGISTRY_FILE_NAME))? {
        return Err(Error::NotEncrypted {
            dir: opts.dir.clone(),
        });
    }
    check_keys(&storage, &opts)?;
    let _locks = lock_dirs(storage.as_ref(), &opts)?;
    crate::crypto::rotate_master_key(storage.as_ref(), &opts.dir, &opts.encryption_key, new_key)
}

/// Locks the database directories (value directory too): exclusive for a read-write open,
/// shared for a read-only one; a read-only open of a directory without a lock file (never
/// opened read-write) takes none. Missing directories are created read-write, refused
/// read-only.
pub(crate) fn lock_dirs(
    storage: &dyn Storage,
    opts: &Options,
) -> Result<Vec<Box<dyn StorageLock>>> {
    let mut dirs = vec![opts.dir.clone()];
    if opts.value_dir != opts.dir {
        dirs.push(opts.value_dir.clone());
    }
    let mut locks = Vec::new();
    for dir in dirs {
        if opts.read_only {
            if !storage.exists(&dir)? {
                return Err(Error::io(
                    "open",
                    &dir,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
        } else {
            storage.create_dir_all(&dir)?;
        }
        let lock_path = dir.join(LOCK_FILE_NAME);
        if opts.bypass_lock_guard || (opts.read_only && !storage.exists(&lock_path)?) {
            // A read-only open never writes, so it cannot create the lock file; a directory
            // without one was never opened read-write, and the MANIFEST check refuses it.
            continue;
        }
        let kind = if opts.read_only {
            LockKind::Shared
        } else {
            LockKind::Exclusive
        };
        locks.push(storage.lock(&lock_path, kind)?);
    }
    Ok(locks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_the_first_problem_and_counts_the_others() {
        // Proves the open's error: the first problem, and how many more verify will list.
        assert!(Inventory::default().check().is_ok());
        let problem = |what: &str| Error::corruption("/db/x", 0, what);
        let mut one = Inventory {
            problems: vec![problem("first")],
            ..Inventory::default()
        };
        let e = one.check().unwrap_err().to_string();
        assert!(e.ends_with(": first"), "{e}");
        let mut three = Inventory {
            problems: vec![problem("first"), problem("second"), problem("third")],
            ..Inventory::default()
        };
        let e = three.check().unwrap_err().to_string();
        assert!(
            e.ends_with(": first; and 2 more problems (`settdb verify` lists them)"),
            "{e}"
        );
    }

    /// The inventory of a directory holding exactly `files` (empty ones) and no MANIFEST.
    fn without_manifest(files: &[&str]) -> Inventory {
        let sim = crate::io::SimStorage::new();
        let dir = Path::new("/db");
        sim.create_dir_all(dir).unwrap();
        for f in files {
            sim.set_bytes(&dir.join(f), b"").unwrap();
        }
        let dirs = Dirs {
            dir,
            value_dir: dir,
            keys: None,
        };
        take_inventory(&sim, dirs, &Manifest::new(7), false).unwrap()
    }

    #[test]
    fn any_database_file_without_a_manifest_is_a_problem() {
        // Proves a lost MANIFEST is found whichever single kind of database file is left
        // (a table, a WAL, a value-log file, the DISCARD statistics), and an empty directory
        // (or one of other files) is a new database.
        for file in ["000003.sst", "000002.mem", "000001.vlog", "DISCARD"] {
            let inv = without_manifest(&[file]);
            assert_eq!(inv.problems.len(), 1, "{file}");
            assert!(inv.problems[0].to_string().contains("MANIFEST is missing"));
        }
        assert!(without_manifest(&[]).problems.is_empty());
        assert!(without_manifest(&["notes.txt"]).problems.is_empty());
    }

    #[test]
    fn a_malformed_value_log_name_is_a_problem() {
        // Proves a `.vlog` name that is no file id's (another program's file, or damage) is
        // reported by the inventory, not ignored.
        let inv = without_manifest(&["12x.vlog"]);
        assert!(inv.problems[0].to_string().contains("12x.vlog"));
    }

    /// The inventory of a directory holding exactly `files` (empty ones) against the state
    /// `changes` build.
    fn inventory_with(changes: &[ManifestChange], files: &[&str]) -> Inventory {
        let sim = crate::io::SimStorage::new();
        let dir = Path::new("/db");
        sim.create_dir_all(dir).unwrap();
        for f in files {
            sim.set_bytes(&dir.join(f), b"").unwrap();
        }
        let mut m = Manifest::new(7);
        m.apply(changes).unwrap();
        let dirs = Dirs {
            dir,
            value_dir: dir,
            keys: None,
        };
        take_inventory(&sim, dirs, &m, true).unwrap()
    }

    fn says(inv: &Inventory, what: &str) -> bool {
        inv.problems.iter().any(|p| p.to_string().contains(what))
    }

    #[test]
    fn an_unfinished_output_is_garbage_only_while_its_source_is_intact() {
        // Proves the orphan rule's condition: the output of an operation that never ended is
        // garbage while its source (the flushed WAL, the compacted tables) is listed and
        // present, and a problem once it is not (the record that ended the operation is lost,
        // so the output may hold the only copy of the data).
        use crate::options::Compression;
        use ManifestChange::{BeginOp, CreateWal, Delete, DeleteWal};
        let flush = [
            CreateWal { wal_id: 1 },
            BeginOp {
                op_id: 5,
                count: 1,
                source: OpSource::Wal(1),
            },
        ];
        let inv = inventory_with(&flush, &["000001.mem", "000005.sst"]);
        assert!(inv.problems.is_empty(), "{:?}", inv.problems);
        assert_eq!(inv.garbage.len(), 1);
        assert_eq!(inv.abandoned_ops, vec![5]);
        let mut wal_deleted = flush.to_vec();
        wal_deleted.push(DeleteWal { wal_id: 1 });
        let inv = inventory_with(&wal_deleted, &["000005.sst"]);
        assert!(says(&inv, "lost the record that finished it"));
        assert!(inv.garbage.is_empty() && inv.abandoned_ops.is_empty());
        let inv = inventory_with(&flush, &["000005.sst"]);
        assert!(says(&inv, "lost the record that finished it") && says(&inv, "missing"));
        assert!(inv.garbage.is_empty());

        let none = Compression::None;
        let compaction = [
            ManifestChange::create(2, 1, none, 0),
            ManifestChange::create(3, 1, none, 0),
            BeginOp {
                op_id: 9,
                count: 2,
                source: OpSource::Tables(vec![2, 3]),
            },
        ];
        let tables = ["000002.sst", "000003.sst", "000009.sst", "000010.sst"];
        let inv = inventory_with(&compaction, &tables);
        assert!(inv.problems.is_empty(), "{:?}", inv.problems);
        assert_eq!(inv.garbage.len(), 2);
        let mut input_deleted = compaction.to_vec();
        input_deleted.push(Delete { table_id: 3 });
        let inv = inventory_with(&input_deleted, &["000002.sst", "000009.sst"]);
        assert!(says(&inv, "input table 3 is gone"));
        assert!(inv.garbage.is_empty());
        let inv = inventory_with(&compaction, &["000002.sst", "000009.sst"]);
        assert!(says(&inv, "input table 3 is gone") && says(&inv, "missing"));
        let none_source = [BeginOp {
            op_id: 4,
            count: 1,
            source: OpSource::None,
        }];
        let inv = inventory_with(&none_source, &["000004.sst"]);
        assert!(says(&inv, "recorded no source"));
    }
}

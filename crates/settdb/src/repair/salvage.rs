//! Salvage: reads every readable entry of a damaged database and writes it, with its version,
//! into the staging database.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::{shown, RepairReport};
use crate::crypto::{FileCipher, KeyRegistry};
use crate::db::Db;
use crate::error::Result;
use crate::inventory::{list, take_inventory, Dirs};
use crate::io::{OpenMode, Storage, StorageFile};
use crate::key::{user_key, version};
use crate::levels::table_file_name;
use crate::log::{read_header, read_record_at, LogKind, RecordPos};
use crate::manifest::{ManifestFile, ManifestOptions};
use crate::memtable::{wal_file_name, Memtable};
use crate::options::Options;
use crate::table::{KvIterator, Table, TableOpenOptions};
use crate::value::{meta, ValuePointer, ValueRef};
use crate::vlog::vlog_file_name;
use crate::write::WriteEntry;
use crate::ChecksumVerificationMode;

/// Entries per write to the staging database.
const BATCH_ENTRIES: usize = 1024;

/// Salvages every source of the database `opts` names into `db`; versions whose value is
/// lost are written as tombstones and their keys appended to `lost_keys`.
pub(super) fn salvage_into(
    db: &Db,
    storage: &dyn Storage,
    opts: &Options,
    report: &mut RepairReport,
    lost_keys: &mut Vec<Vec<u8>>,
) -> Result<()> {
    let keys = crate::inventory::open_keys(&opts.storage, opts, true)?;
    let dirs = Dirs {
        dir: &opts.dir,
        value_dir: &opts.value_dir,
        keys: keys.as_deref(),
    };
    let (files, _) = list(storage, dirs)?;
    let garbage = proven_garbage(storage, opts, dirs)?;
    let mut out = Salvager {
        db,
        values: ValueReader {
            keys: keys.clone(),
            storage,
            dir: &opts.value_dir,
            files: HashMap::new(),
            lost: BTreeMap::new(),
            lost_bytes: 0,
        },
        batch: Vec::new(),
        unreadable: Vec::new(),
        report,
        lost_keys,
    };
    for &id in &files.tables {
        let path = opts.dir.join(table_file_name(id));
        if !garbage.contains(&path) {
            out.table(&path, id, &opts.dir)?;
        }
    }
    for &id in &files.wals {
        let path = opts.dir.join(wal_file_name(id));
        if !garbage.contains(&path) {
            out.wal(&path, id, &opts.dir)?;
        }
    }
    out.flush()?;
    out.resolve_lost()?;
    out.report.bytes_lost += out.values.lost_bytes;
    for (id, n) in std::mem::take(&mut out.values.lost) {
        out.report.damaged.push(format!(
            "{}: {n} values unreadable (missing or damaged records)",
            shown(&opts.value_dir.join(vlog_file_name(id)), &opts.value_dir)
        ));
    }
    Ok(())
}

/// Files the MANIFEST proves garbage (when it can be read): their data is elsewhere or was
/// deleted, and salvaging them could bring back versions a compaction dropped.
fn proven_garbage(
    storage: &dyn Storage,
    opts: &Options,
    dirs: Dirs<'_>,
) -> Result<BTreeSet<PathBuf>> {
    let mut ro = ManifestOptions::from_options(opts);
    ro.read_only = true;
    let Ok((file, state)) = ManifestFile::open(opts.storage.clone(), &opts.dir, ro) else {
        return Ok(BTreeSet::new());
    };
    let inv = take_inventory(storage, dirs, &state, file.existed())?;
    Ok(inv.garbage.into_iter().map(|g| g.path).collect())
}

struct Salvager<'a> {
    db: &'a Db,
    values: ValueReader<'a>,
    batch: Vec<WriteEntry>,
    /// Versions whose value could not be read, with their pointers, decided once every
    /// source is salvaged ([`Salvager::resolve_lost`]).
    unreadable: Vec<(WriteEntry, Option<ValuePointer>)>,
    report: &'a mut RepairReport,
    lost_keys: &'a mut Vec<Vec<u8>>,
}

impl Salvager<'_> {
    /// Every entry of every readable block of table `id`.
    fn table(&mut self, path: &Path, id: u64, base: &Path) -> Result<()> {
        let open = TableOpenOptions {
            checksum_verification_mode: ChecksumVerificationMode::OnBlockRead,
            keys: self.values.keys.clone(),
            caches: None,
        };
        let file = storage_open(self.values.storage, path)?;
        let len = file.len()?;
        let table = match Table::open(file, id, open) {
            Ok(t) => t,
            Err(e) if e.is_corruption() => {
                self.report.bytes_lost += len;
                self.report.damaged.push(format!(
                    "{}: unreadable, all {len} bytes lost ({e})",
                    shown(path, base)
                ));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut lost_blocks = 0u64;
        let mut key = Vec::new();
        for idx in 0..table.block_count() {
            let block = match table.read_block(idx) {
                Ok(b) => b,
                Err(e) if e.is_corruption() => {
                    lost_blocks += 1;
                    self.report.bytes_lost += table
                        .block_handle(idx)
                        .ok()
                        .flatten()
                        .map_or(0, |h| u64::from(h.stored_len));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for i in 0..block.len() {
                block.key_at(i, &mut key);
                self.add(&key, block.value_at(i))?;
            }
        }
        if lost_blocks > 0 {
            self.report.damaged.push(format!(
                "{}: {lost_blocks} of {} blocks unreadable",
                shown(path, base),
                table.block_count()
            ));
        }
        Ok(())
    }

    /// Every intact batch of WAL `id`.
    fn wal(&mut self, path: &Path, id: u64, base: &Path) -> Result<()> {
        let keys = self.values.keys.as_deref();
        let (mem, found) = Memtable::salvage(self.values.storage, path, id, keys)?;
        let mut it = mem.iter();
        it.seek_to_first()?;
        while it.valid() {
            let key = it.key().to_vec();
            self.add(&key, it.value())?;
            it.next()?;
        }
        if found.lost_bytes > 0 {
            self.report.bytes_lost += found.lost_bytes;
            self.report.damaged.push(format!(
                "{}: {} bytes belong to no intact batch ({} batches kept)",
                shown(path, base),
                found.lost_bytes,
                found.batches
            ));
        }
        Ok(())
    }

    /// Queues one version (`key` is an internal key), resolving a value pointer.
    fn add(&mut self, key: &[u8], v: ValueRef<'_>) -> Result<()> {
        if key.len() < crate::key::VERSION_LEN {
            return Ok(()); // not an internal key: nothing to salvage
        }
        let mut entry = WriteEntry {
            key: Bytes::copy_from_slice(user_key(key)),
            version: version(key),
            meta: v.meta & !(meta::VALUE_POINTER | meta::TXN | meta::FIN_TXN),
            user_meta: v.user_meta,
            expires_at: v.expires_at,
            value: Bytes::new(),
        };
        if v.meta & meta::VALUE_POINTER == 0 {
            entry.value = Bytes::copy_from_slice(v.value);
        } else {
            let vp = ValuePointer::decode(v.value);
            match vp.and_then(|vp| self.values.read(vp, key)) {
                Some(value) => entry.value = value,
                None => {
                    self.unreadable.push((entry, vp));
                    return Ok(());
                }
            }
        }
        self.report.versions_kept += 1;
        self.batch.push(entry);
        if self.batch.len() >= BATCH_ENTRIES {
            self.flush()?;
        }
        Ok(())
    }

    /// Decides the versions whose value could not be read, once every source is salvaged:
    /// one the rebuilt database holds at that version or a newer one was moved by value-log
    /// GC (its copy was salvaged) or is shadowed (GC retired its file once no reader could
    /// see it), and is dropped; every other is lost: written as a tombstone, counted, and its
    /// key listed.
    fn resolve_lost(&mut self) -> Result<()> {
        let reader = self.db.reader();
        let snap = reader.snapshot();
        for (mut entry, vp) in std::mem::take(&mut self.unreadable) {
            let newest =
                crate::read::get_newest(&snap.memtables, &snap.levels, &entry.key, u64::MAX)?;
            if newest.is_some_and(|f| f.version >= entry.version) {
                continue;
            }
            if let Some(vp) = vp {
                self.values.count_lost(vp);
            }
            entry.meta |= meta::DELETE;
            self.report.values_lost += 1;
            self.report.versions_kept += 1;
            self.lost_keys.push(entry.key.to_vec());
            self.batch.push(entry);
            if self.batch.len() >= BATCH_ENTRIES {
                self.flush()?;
            }
        }
        self.flush()
    }

    /// Writes the queued entries, in as few groups as the batch limits allow.
    fn flush(&mut self) -> Result<()> {
        let mut rest = std::mem::take(&mut self.batch);
        while !rest.is_empty() {
            let mut n = rest.len();
            while n > 1 && !self.db.fits_one_batch(&rest[..n]) {
                n /= 2;
            }
            let tail = rest.split_off(n);
            self.db.write_versioned(rest)?;
            rest = tail;
        }
        Ok(())
    }
}

fn storage_open(storage: &dyn Storage, path: &Path) -> Result<Arc<dyn StorageFile>> {
    storage.open(path, OpenMode::Read)
}

/// An open value-log file and its length.
type OpenLog = (Arc<dyn StorageFile>, u64, Option<FileCipher>);

/// Reads values by pointer straight from the value-log files, checking each record's checksum
/// and key: a file may be damaged elsewhere, or missing.
struct ValueReader<'a> {
    /// The key registry of an encrypted database.
    keys: Option<Arc<KeyRegistry>>,
    storage: &'a dyn Storage,
    dir: &'a Path,
    /// Open files and their lengths; `None` for a file that cannot be opened.
    files: HashMap<u32, Option<OpenLog>>,
    /// Values that could not be read, by file.
    lost: BTreeMap<u32, u64>,
    /// Bytes of those values' records.
    lost_bytes: u64,
}

impl ValueReader<'_> {
    fn read(&mut self, vp: ValuePointer, internal_key: &[u8]) -> Option<Bytes> {
        let (storage, dir, keys) = (self.storage, self.dir, self.keys.as_deref());
        let file = self.files.entry(vp.file_id).or_insert_with(|| {
            let path = dir.join(vlog_file_name(vp.file_id));
            let f = storage.open(&path, OpenMode::Read).ok()?;
            let len = f.len().ok()?;
            // A file whose header cannot be read or whose key is unknown has no readable value.
            let header = read_header(f.as_ref(), LogKind::ValueLog).ok()??;
            let cipher = header.cipher(keys, &path).ok()?;
            Some((f, len, cipher))
        });
        let value = file.as_ref().and_then(|(f, len, cipher)| {
            let rec =
                read_record_at(f.as_ref(), *len, RecordPos::from(vp), cipher.as_ref()).ok()?;
            (rec.key() == internal_key).then(|| Bytes::copy_from_slice(rec.value()))
        });
        value
    }

    /// Counts a value that could not be read and that no other source holds.
    fn count_lost(&mut self, vp: ValuePointer) {
        *self.lost.entry(vp.file_id).or_insert(0) += 1;
        self.lost_bytes += u64::from(vp.len);
    }
}

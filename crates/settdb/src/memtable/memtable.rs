//! A memtable: a [`MemMap`] and the write-ahead log (`NNNNNN.mem`) that makes it durable.
//!
//! Every write group is appended to the WAL as one log batch (atomic on replay) and then
//! inserted into the map. The map's keys and values are slices of one buffer per
//! group, so applying a group allocates once, not per entry.
//!
//! On open, a WAL is replayed into a memtable that is immediately flushed and deleted; WALs
//! are never reopened for append, so a torn tail never needs truncating. A memtable's WAL is
//! sealed when the memtable becomes immutable (rotation), so damage anywhere in an older WAL is
//! corruption, and one that does not end in its seal was cut.
//!
//! Concurrency: `apply` and `sync_wal` are called only by the writer thread (the WAL is behind
//! a mutex for that thread's exclusive use, never contended); reads go to the map.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;

use super::mem_map::{MemMap, MemValue};
use super::mem_map_iterator::MemMapIterator;
use crate::crypto::KeyRegistry;
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage};
use crate::log::{self, LogHeader, LogKind, LogWriter, RecordPos, RecordRef, ReplayEnd};
use crate::value::{meta, ValuePointer};

/// File name of memtable `id`'s WAL.
pub fn wal_file_name(id: u64) -> String {
    format!("{id:06}.mem")
}

/// The memtable id of a WAL file name (`None` for other names).
pub fn parse_wal_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".mem")?.parse().ok()
}

/// A memtable and its WAL.
pub struct Memtable {
    id: u64,
    list: Arc<MemMap>,
    /// The lowest value-log file id a value pointer in this memtable names (`u32::MAX`:
    /// none). Value-log GC does not retire a file a live WAL points into: the WAL's replay
    /// checks every pointer.
    min_vlog_file: AtomicU32,
    /// The WAL (`None` in in-memory mode, and for replayed memtables, which are only
    /// flushed). Used by the writer thread only, so the mutex is never contended.
    wal: Option<Mutex<Wal>>,
    wal_path: Option<PathBuf>,
}

impl std::fmt::Debug for Memtable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable")
            .field("id", &self.id)
            .field("list", &self.list)
            .field("wal_path", &self.wal_path)
            .finish()
    }
}

/// A WAL writer and the scratch vector its appends fill (reused across groups).
#[derive(Debug)]
struct Wal {
    writer: LogWriter,
    positions: Vec<RecordPos>,
}

impl Memtable {
    /// A new memtable with a new, durable, empty WAL in `dir`, encrypted with a fresh file
    /// cipher of `keys` when the database is encrypted.
    pub fn create(
        storage: &dyn Storage,
        dir: &Path,
        id: u64,
        keys: Option<&KeyRegistry>,
    ) -> Result<Self> {
        let path = dir.join(wal_file_name(id));
        let writer = match keys {
            None => LogWriter::create(storage, &path, LogHeader::new(LogKind::Wal, id))?,
            Some(k) => {
                let c = k.cipher_for_new_file()?;
                let header = LogHeader::encrypted(LogKind::Wal, id, &c);
                LogWriter::create_in(storage, &path, header, Some(c))?
            }
        };
        Ok(Memtable {
            id,
            min_vlog_file: AtomicU32::new(u32::MAX),
            list: Arc::new(MemMap::new()),
            wal: Some(Mutex::new(Wal {
                writer,
                positions: Vec::new(),
            })),
            wal_path: Some(path),
        })
    }

    /// A memtable with no WAL (in-memory mode).
    pub fn in_memory(id: u64) -> Self {
        Memtable {
            id,
            min_vlog_file: AtomicU32::new(u32::MAX),
            list: Arc::new(MemMap::new()),
            wal: None,
            wal_path: None,
        }
    }

    /// Memtable id (also its WAL's file id).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The sorted map.
    pub fn list(&self) -> &Arc<MemMap> {
        &self.list
    }

    /// A cursor over the memtable.
    pub fn iter(&self) -> MemMapIterator {
        MemMapIterator::new(self.list.clone())
    }

    /// The WAL's path (`None` in memory).
    pub fn wal_path(&self) -> Option<&Path> {
        self.wal_path.as_deref()
    }

    /// Accounted bytes of the map.
    pub fn size_bytes(&self) -> u64 {
        self.list.size_bytes()
    }

    /// Bytes written to the WAL.
    pub fn wal_size_bytes(&self) -> u64 {
        self.wal.as_ref().map_or(0, |w| lock(w).writer.offset())
    }

    /// True if the memtable holds something and adding `charge` more bytes would pass
    /// `limit` (in the map or the WAL).
    pub fn would_exceed(&self, charge: u64, limit: u64) -> bool {
        let used = self.size_bytes().max(self.wal_size_bytes());
        !self.list.is_empty() && used + charge > limit
    }

    /// Appends `records` to the WAL as one batch, then inserts them into the map.
    /// Each record is an internal key and a value struct's parts (the value inline, or an
    /// encoded value pointer with `meta::VALUE_POINTER`). REQUIRES: the writer thread.
    pub fn apply(&self, records: &[RecordRef<'_>]) -> Result<()> {
        if let Some(wal) = &self.wal {
            let mut wal = lock(wal);
            let Wal { writer, positions } = &mut *wal;
            positions.clear();
            writer.append_batch(records, positions)?;
        }
        insert_batch(&self.list, records);
        Ok(())
    }

    /// Records that a group applied to this memtable points into value-log file `id`.
    /// REQUIRES: the writer thread, before the group is applied.
    pub fn note_vlog_file(&self, id: u32) {
        self.min_vlog_file.fetch_min(id, Ordering::AcqRel);
    }

    /// The lowest value-log file id a pointer applied to this memtable names, if any. A
    /// replayed memtable reports none (it is flushed before the engine runs).
    pub fn min_vlog_file(&self) -> Option<u32> {
        Some(self.min_vlog_file.load(Ordering::Acquire)).filter(|&id| id != u32::MAX)
    }

    /// Makes the WAL durable up to its end.
    pub fn sync_wal(&self) -> Result<()> {
        match &self.wal {
            Some(w) => lock(w).writer.sync(),
            None => Ok(()),
        }
    }

    /// Seals the WAL (DESIGN.md rule 12): syncs it and appends its seal, after which nothing
    /// more is appended. Called when the memtable becomes immutable. REQUIRES: the writer.
    pub fn seal_wal(&self) -> Result<()> {
        match &self.wal {
            Some(w) => lock(w).writer.seal(),
            None => Ok(()),
        }
    }

    /// Replays the WAL at `path` into a memtable (with no writer: it will be flushed, not
    /// appended to). `vptr_ok` says whether a value pointer refers to value-log bytes that
    /// survived; the first batch with a pointer that did not ends the WAL there, which is
    /// corruption if a later batch proves that batch had been synced (rule 5: the value log
    /// is synced before the WAL).
    pub fn replay(
        storage: &dyn Storage,
        path: &Path,
        id: u64,
        keys: Option<&KeyRegistry>,
        vptr_ok: &dyn Fn(&ValuePointer) -> bool,
    ) -> Result<(Self, ReplayEnd)> {
        let file = storage.open(path, OpenMode::Read)?;
        let list = Arc::new(MemMap::new());
        let mut cut: Option<u64> = None;
        let mut end = log::replay_with(file.as_ref(), LogKind::Wal, keys, |batch| {
            if let Some(cut_at) = cut {
                if batch.synced_offset() > cut_at {
                    return Err(Error::corruption(
                        path,
                        cut_at,
                        "a synced WAL batch points at value-log bytes that did not survive",
                    ));
                }
                return Ok(());
            }
            if batch.iter().any(|(_, r)| !record_vptr_ok(&r, vptr_ok)) {
                cut = Some(batch.offset());
                return Ok(());
            }
            let records: Vec<RecordRef<'_>> = batch.iter().map(|(_, r)| r).collect();
            insert_batch(&list, &records);
            Ok(())
        })?;
        if let Some(cut_at) = cut {
            end.valid_end = cut_at;
            end.stop = log::StopReason::TornTail { offset: cut_at };
        }
        let mem = Memtable {
            id,
            min_vlog_file: AtomicU32::new(u32::MAX),
            list,
            wal: None,
            wal_path: Some(path.to_path_buf()),
        };
        Ok((mem, end))
    }

    /// Every intact batch of the WAL at `path` (id `id`), wherever it lies, for repair: a
    /// memtable of what could be read, and what was lost ([`log::salvage`]).
    /// An encrypted WAL whose header is damaged cannot be decrypted: all of it is lost.
    pub(crate) fn salvage(
        storage: &dyn Storage,
        path: &Path,
        id: u64,
        keys: Option<&KeyRegistry>,
    ) -> Result<(Self, log::Salvaged)> {
        let file = storage.open(path, OpenMode::Read)?;
        let list = Arc::new(MemMap::new());
        let header = log::read_header(file.as_ref(), LogKind::Wal).ok().flatten();
        let cipher = match &header {
            Some(h) => h.cipher(keys, path)?,
            None => None,
        };
        let sealing = header.zip(cipher.as_ref());
        let sealing = sealing.map(|(h, c)| log::LogCipher::of(&h, c));
        let found = log::salvage(file.as_ref(), LogKind::Wal, id, sealing, |batch| {
            let records: Vec<RecordRef<'_>> = batch.iter().map(|(_, r)| r).collect();
            insert_batch(&list, &records);
            Ok(())
        })?;
        let mem = Memtable {
            id,
            min_vlog_file: AtomicU32::new(u32::MAX),
            list,
            wal: None,
            wal_path: Some(path.to_path_buf()),
        };
        Ok((mem, found))
    }

    /// Replays live WAL `id` of `dir` as recovery does: `newer` is the id of the next live WAL,
    /// if any. A WAL that was rotated (one with a newer WAL) was sealed first, so one that does
    /// not end in its seal was cut or damaged at its end: corruption (DESIGN rule 12). So is a
    /// live WAL without a header (unborn), which the MANIFEST lists only once it is durable.
    pub(crate) fn replay_live(
        storage: &dyn Storage,
        dir: &Path,
        id: u64,
        newer: Option<u64>,
        keys: Option<&KeyRegistry>,
        vptr_ok: &dyn Fn(&ValuePointer) -> bool,
    ) -> Result<Memtable> {
        let path = dir.join(wal_file_name(id));
        let (mem, end) = Memtable::replay(storage, &path, id, keys, vptr_ok)?;
        if end.header.is_none() {
            let why = "a live WAL has no header: it was created with a durable header before the \
                       MANIFEST listed it, so it was cut or zeroed since";
            return Err(Error::corruption(&path, 0, why));
        }
        match newer {
            Some(newer) if !end.sealed => {
                let why = format!(
                    "WAL {id} was rotated (WAL {newer} is newer) but does not end in its seal: \
                     it was cut or damaged at its end ({})",
                    end.stop
                );
                Err(Error::corruption(&path, end.valid_end, why))
            }
            _ => Ok(mem),
        }
    }

    /// Deletes the WAL file (after the memtable's table is durable in the manifest).
    pub fn delete_wal(&self, storage: &dyn Storage) -> Result<()> {
        match &self.wal_path {
            Some(p) if storage.exists(p)? => storage.remove_file(p),
            _ => Ok(()),
        }
    }
}

fn record_vptr_ok(r: &RecordRef<'_>, vptr_ok: &dyn Fn(&ValuePointer) -> bool) -> bool {
    if r.meta & meta::VALUE_POINTER == 0 {
        return true;
    }
    ValuePointer::decode(r.value).is_some_and(|vp| vptr_ok(&vp))
}

/// Inserts records into `list`, copying their keys and values into one shared buffer (one
/// allocation per batch, not per entry).
fn insert_batch(list: &MemMap, records: &[RecordRef<'_>]) {
    let total: usize = records.iter().map(|r| r.key.len() + r.value.len()).sum();
    let mut arena = BytesMut::with_capacity(total);
    for r in records {
        arena.extend_from_slice(r.key);
        arena.extend_from_slice(r.value);
    }
    let arena = arena.freeze();
    let mut at = 0;
    list.insert_many(records.iter().map(|r| {
        let key = arena.slice(at..at + r.key.len());
        at += r.key.len();
        let value = arena.slice(at..at + r.value.len());
        at += r.value.len();
        let value = MemValue {
            meta: r.meta,
            user_meta: r.user_meta,
            expires_at: r.expires_at,
            value,
        };
        (key, value)
    }));
}

fn lock(w: &Mutex<Wal>) -> MutexGuard<'_, Wal> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;
    use crate::key::key_with_version;
    use crate::table::KvIterator;

    fn rec<'a>(key: &'a [u8], value: &'a [u8], meta_bits: u8) -> RecordRef<'a> {
        RecordRef {
            meta: meta_bits,
            user_meta: 7,
            expires_at: 0,
            key,
            value,
        }
    }

    fn keys_of(m: &Memtable) -> Vec<Vec<u8>> {
        let mut it = m.iter();
        let mut out = Vec::new();
        it.seek_to_first().unwrap();
        while it.valid() {
            out.push(it.key().to_vec());
            it.next().unwrap();
        }
        out
    }

    #[test]
    fn wal_replay_restores_every_applied_group() {
        // Proves apply() makes groups replayable: the replayed map equals the live one.
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::new();
        let m = Memtable::create(&s, dir.path(), 3, None).unwrap();
        for g in 0..5u64 {
            let keys: Vec<Vec<u8>> = (0..10)
                .map(|i| key_with_version(format!("k{i}").as_bytes(), g + 1))
                .collect();
            let recs: Vec<RecordRef<'_>> = keys.iter().map(|k| rec(k, b"value", 0)).collect();
            m.apply(&recs).unwrap();
        }
        m.sync_wal().unwrap();
        let path = dir.path().join(wal_file_name(3));
        let (r, end) = Memtable::replay(&s, &path, 3, None, &|_| true).unwrap();
        assert_eq!(end.batches, 5);
        assert_eq!(keys_of(&r), keys_of(&m));
        assert_eq!(r.list().len(), 50);
        let (_, v) = r.list().get(&key_with_version(b"k3", 9)).unwrap();
        assert_eq!((&v.value[..], v.user_meta), (&b"value"[..], 7));
    }

    #[test]
    fn dangling_value_pointer_ends_an_unsynced_wal() {
        // Proves a batch whose value pointer did not survive ends replay (torn), and the same
        // layout is corruption once a later batch proves that batch was synced.
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::new();
        let path = dir.path().join(wal_file_name(1));
        let m = Memtable::create(&s, dir.path(), 1, None).unwrap();
        let good = ValuePointer {
            file_id: 1,
            offset: 100,
            len: 50,
        }
        .encode();
        let bad = ValuePointer {
            file_id: 1,
            offset: 9_000,
            len: 50,
        }
        .encode();
        let (k1, k2, k3) = (
            key_with_version(b"a", 1),
            key_with_version(b"b", 2),
            key_with_version(b"c", 3),
        );
        m.apply(&[rec(&k1, &good, meta::VALUE_POINTER)]).unwrap();
        m.apply(&[rec(&k2, &bad, meta::VALUE_POINTER)]).unwrap();
        m.apply(&[rec(&k3, b"inline", 0)]).unwrap();
        let ok = |vp: &ValuePointer| vp.offset < 1000;
        let (r, end) = Memtable::replay(&s, &path, 1, None, &ok).unwrap();
        assert_eq!(keys_of(&r), vec![k1.clone()]);
        assert!(matches!(end.stop, log::StopReason::TornTail { .. }));
        // Now sync after the bad batch and append one more: the bad batch is proven synced.
        m.sync_wal().unwrap();
        m.apply(&[rec(&k3, b"again", 0)]).unwrap();
        let err = Memtable::replay(&s, &path, 1, None, &ok).unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }

    #[test]
    fn would_exceed_counts_map_and_wal() {
        // Proves the full test uses the larger of map and WAL size, and never refuses
        // the first group of an empty memtable.
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::new();
        let m = Memtable::create(&s, dir.path(), 2, None).unwrap();
        assert!(!m.would_exceed(u64::MAX / 2, 10));
        let k = key_with_version(b"key", 1);
        m.apply(&[rec(&k, &[0u8; 1000], 0)]).unwrap();
        assert!(m.would_exceed(1, 1000));
        assert!(!m.would_exceed(1, 10_000));
    }
}

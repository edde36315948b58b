//! Test helpers of the manifest module: valid random histories, in-memory MANIFEST bytes, and
//! a storage wrapper that injects one failure at a chosen mutating operation.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;

use super::change::{encode_change_set, ManifestChange};
use super::format::{encode_file_header, encode_record};
use super::state::{Manifest, TableManifest};
use crate::error::{Error, Result};
use crate::io::{FsStorage, LockKind, OpenMode, Storage, StorageFile, StorageLock};
use crate::options::Compression;

/// Levels used by the tests.
pub const LEVELS: usize = 4;

/// Compressions as a decoder returns them (the zstd level is not stored).
pub fn compression_strategy() -> impl Strategy<Value = Compression> {
    (0u8..4).prop_map(|b| Compression::from_byte(b).unwrap_or(Compression::None))
}

/// Raw choices from which [`build_history`] makes a valid history.
pub type RawHistory = Vec<Vec<(u8, u64, u8, Compression, u64)>>;

/// Up to `sets` change sets of up to 6 raw changes each.
pub fn raw_history_strategy(sets: usize) -> impl Strategy<Value = RawHistory> {
    let change = (
        any::<u8>(),
        any::<u64>(),
        any::<u8>(),
        compression_strategy(),
        prop_oneof![Just(0u64), any::<u64>()],
    );
    proptest::collection::vec(proptest::collection::vec(change, 0..6), 0..sets)
}

/// Turns raw choices into change sets that are valid in sequence (creates with fresh or
/// re-used ids, deletes of live ids, level moves within one set), and the model state after
/// each set (an independent `BTreeMap`, not [`Manifest`]).
pub fn build_history(raw: &RawHistory) -> (Vec<Vec<ManifestChange>>, Vec<ModelState>) {
    let mut live: ModelState = BTreeMap::new();
    let mut next_id = 0u64;
    let (mut sets, mut states) = (Vec::new(), Vec::new());
    for raw_set in raw {
        let mut set = Vec::new();
        for &(kind, pick, level, compression, key_id) in raw_set {
            let t = TableManifest {
                level: level % LEVELS as u8,
                compression,
                key_id,
            };
            let victim = (!live.is_empty()).then(|| {
                *live
                    .keys()
                    .nth((pick % live.len() as u64) as usize)
                    .unwrap()
            });
            match (kind % 4, victim) {
                (2, Some(id)) => {
                    live.remove(&id);
                    set.push(ManifestChange::delete(id));
                }
                (3, Some(id)) => {
                    live.insert(id, t);
                    set.push(ManifestChange::delete(id));
                    set.push(ManifestChange::create(id, t.level, compression, key_id));
                }
                _ => {
                    // Large gaps sometimes, to exercise multi-byte varints.
                    let id = next_id + pick % 3 + if kind > 250 { 1 << 40 } else { 0 };
                    next_id = id + 1;
                    live.insert(id, t);
                    set.push(ManifestChange::create(id, t.level, compression, key_id));
                }
            }
        }
        if !set.is_empty() {
            sets.push(set);
            states.push(live.clone());
        }
    }
    (sets, states)
}

/// The model of a manifest's live tables.
pub type ModelState = BTreeMap<u64, TableManifest>;

/// Applies every set to a fresh [`Manifest`], panicking on an invalid one.
pub fn manifest_after(sets: &[Vec<ManifestChange>]) -> Manifest {
    let mut m = Manifest::new(LEVELS);
    for s in sets {
        m.apply(s).unwrap();
    }
    m
}

/// A MANIFEST holding `sets` as records, and the offset where each record starts.
pub fn manifest_bytes(sets: &[Vec<ManifestChange>], external_magic: u16) -> (Vec<u8>, Vec<usize>) {
    let mut out = encode_file_header(external_magic).to_vec();
    let mut offsets = Vec::new();
    for s in sets {
        offsets.push(out.len());
        let mut body = Vec::new();
        encode_change_set(&mut body, s);
        let at = out.len() as u64;
        encode_record(&mut out, &body, at);
    }
    (out, offsets)
}

/// A sorted listing of a directory with each file's bytes.
pub fn dir_snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

/// Counts mutating operations and fails the one numbered `fail_at` (0-based; `u64::MAX` never).
#[derive(Debug, Default)]
pub struct FaultState {
    /// Mutating operations seen so far.
    pub ops: AtomicU64,
    /// The operation to fail.
    pub fail_at: AtomicU64,
}

impl FaultState {
    fn check(&self, op: &'static str, path: &Path) -> Result<()> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(Error::io(op, path, std::io::Error::other("injected fault")));
        }
        Ok(())
    }
}

/// [`FsStorage`] with one injected failure (see [`FaultState`]).
#[derive(Debug, Clone)]
pub struct FaultStorage {
    /// Shared counters.
    pub state: Arc<FaultState>,
}

impl FaultStorage {
    /// A wrapper that fails nothing until `state.fail_at` is set.
    pub fn new() -> Self {
        let state = FaultState::default();
        state.fail_at.store(u64::MAX, Ordering::SeqCst);
        FaultStorage {
            state: Arc::new(state),
        }
    }

    /// Mutating operations so far.
    pub fn ops(&self) -> u64 {
        self.state.ops.load(Ordering::SeqCst)
    }

    /// Fails the mutating operation numbered `n` from now on (0 = the next one).
    pub fn fail_in(&self, n: u64) {
        self.state.fail_at.store(self.ops() + n, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct FaultFile {
    inner: Arc<dyn StorageFile>,
    state: Arc<FaultState>,
}

impl StorageFile for FaultFile {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.state.check("write", self.path())?;
        self.inner.write_at(offset, buf)
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.state.check("truncate", self.path())?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<()> {
        self.state.check("sync", self.path())?;
        self.inner.sync_data()
    }
}

impl Storage for FaultStorage {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.state.check("mkdir", dir)?;
        FsStorage.create_dir_all(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn StorageFile>> {
        if matches!(mode, OpenMode::CreateNew | OpenMode::CreateOrOpen) {
            self.state.check("create", path)?;
        }
        let inner = FsStorage.open(path, mode)?;
        Ok(Arc::new(FaultFile {
            inner,
            state: self.state.clone(),
        }))
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        FsStorage.exists(path)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        FsStorage.list_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.state.check("rename", from)?;
        FsStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.state.check("remove", path)?;
        FsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.state.check("sync dir", dir)?;
        FsStorage.sync_dir(dir)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> Result<Box<dyn StorageLock>> {
        FsStorage.lock(path, kind)
    }
}

//! Test helpers of the log module: an in-memory file (fast replays of mutated bytes, and a
//! record of the largest read) and a storage wrapper that injects write and sync failures.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{replay, LogHeader, LogKind, LogWriter, RecordPos, RecordRef, ReplayEnd};
use crate::error::{Error, Result};
use crate::io::{FsStorage, LockKind, OpenMode, Storage, StorageFile, StorageLock};

/// A file held in memory; remembers the largest single read, to prove reads are bounded.
#[derive(Debug)]
pub(crate) struct MemFile {
    path: PathBuf,
    data: Mutex<Vec<u8>>,
    max_read: AtomicUsize,
    reads: AtomicUsize,
}

impl MemFile {
    pub fn new(data: Vec<u8>) -> Self {
        MemFile {
            path: PathBuf::from("mem.log"),
            data: Mutex::new(data),
            max_read: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
        }
    }

    /// Largest `read_at` so far, in bytes.
    pub fn max_read(&self) -> usize {
        self.max_read.load(Ordering::Relaxed)
    }

    /// Number of `read_at` calls so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn short(path: &Path) -> Error {
    Error::io("read", path, std::io::ErrorKind::UnexpectedEof.into())
}

impl StorageFile for MemFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.max_read.fetch_max(buf.len(), Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
        let data = self.data();
        let from = usize::try_from(offset).map_err(|_| short(&self.path))?;
        let src = from
            .checked_add(buf.len())
            .and_then(|end| data.get(from..end))
            .ok_or_else(|| short(&self.path))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let mut data = self.data();
        let from = offset as usize;
        if data.len() < from + buf.len() {
            data.resize(from + buf.len(), 0);
        }
        data[from..from + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        Ok(self.data().len() as u64)
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.data().resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<()> {
        Ok(())
    }
}

/// Which operations of a [`FaultyStorage`]'s files fail.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Writes that still succeed before every later write fails (`usize::MAX`: never fail).
    pub writes_left: AtomicUsize,
    /// When set, every `sync_data` fails.
    pub fail_sync: AtomicBool,
}

/// The real file system with injectable write and sync failures on the files it opens.
#[derive(Debug)]
pub(crate) struct FaultyStorage {
    pub faults: Arc<Faults>,
}

impl FaultyStorage {
    pub fn new() -> Self {
        let faults = Faults {
            writes_left: AtomicUsize::new(usize::MAX),
            fail_sync: AtomicBool::new(false),
        };
        FaultyStorage {
            faults: Arc::new(faults),
        }
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    faults: Arc<Faults>,
}

fn injected(op: &'static str, path: &Path) -> Error {
    Error::io(op, path, std::io::Error::other("injected fault"))
}

impl StorageFile for FaultyFile {
    fn path(&self) -> &Path {
        self.inner.path()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let left = self.faults.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            // A failed write may still land part of its bytes: land half of them.
            let _ = self.inner.write_at(offset, &buf[..buf.len() / 2]);
            return Err(injected("write", self.path()));
        }
        if left != usize::MAX {
            self.faults.writes_left.store(left - 1, Ordering::SeqCst);
        }
        self.inner.write_at(offset, buf)
    }
    fn len(&self) -> Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<()> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(injected("sync", self.path()));
        }
        self.inner.sync_data()
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        FsStorage.create_dir_all(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn StorageFile>> {
        let inner = FsStorage.open(path, mode)?;
        let faults = Arc::clone(&self.faults);
        Ok(Arc::new(FaultyFile { inner, faults }))
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        FsStorage.exists(path)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        FsStorage.list_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        FsStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        FsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        FsStorage.sync_dir(dir)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> Result<Box<dyn StorageLock>> {
        FsStorage.lock(path, kind)
    }
}

/// An owned record for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TestRec {
    pub meta: u8,
    pub user_meta: u8,
    pub expires_at: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl TestRec {
    /// Record `i` with a value of `value_len` bytes.
    pub fn new(i: u64, value_len: usize) -> Self {
        TestRec {
            meta: 0,
            user_meta: i as u8,
            expires_at: i * 3,
            key: crate::key::key_with_version(format!("key{i}").as_bytes(), i),
            value: (0..value_len).map(|j| (i as usize + j) as u8).collect(),
        }
    }

    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            key: &self.key,
            value: &self.value,
        }
    }

    pub fn from_ref(r: &RecordRef<'_>) -> Self {
        TestRec {
            meta: r.meta,
            user_meta: r.user_meta,
            expires_at: r.expires_at,
            key: r.key.to_vec(),
            value: r.value.to_vec(),
        }
    }
}

/// `n` small records numbered from `first`.
pub(crate) fn recs(first: u64, n: u64) -> Vec<TestRec> {
    (first..first + n)
        .map(|i| TestRec::new(i, (i % 7 * 5) as usize))
        .collect()
}

/// A log written by [`LogWriter`] on the real file system.
pub(crate) struct Built {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    /// Offset of each batch, then the end of the log.
    pub offsets: Vec<u64>,
    pub positions: Vec<Vec<RecordPos>>,
}

impl Built {
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

/// Writes `batches` (records, sync after the batch?) to a new log of `kind`.
pub(crate) fn build(kind: LogKind, batches: &[(Vec<TestRec>, bool)]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000001.log");
    let mut w = LogWriter::create(&FsStorage, &path, LogHeader::new(kind, 1)).unwrap();
    let mut offsets = Vec::new();
    let mut positions = Vec::new();
    for (records, sync) in batches {
        offsets.push(w.offset());
        let refs: Vec<RecordRef<'_>> = records.iter().map(TestRec::as_ref).collect();
        let mut pos = Vec::new();
        w.append_batch(&refs, &mut pos).unwrap();
        positions.push(pos);
        if *sync {
            w.sync().unwrap();
        }
    }
    offsets.push(w.offset());
    Built {
        _dir: dir,
        path,
        offsets,
        positions,
    }
}

/// What a replay handed out: per batch, its offset and its records with positions.
pub(crate) type Seen = Vec<(u64, Vec<(RecordPos, TestRec)>)>;

/// Replays `file`, collecting every batch.
pub(crate) fn replay_all(file: &dyn StorageFile, kind: LogKind) -> (Result<ReplayEnd>, Seen) {
    let mut seen = Seen::new();
    let end = replay(file, kind, |b| {
        let recs = b.iter().map(|(p, r)| (p, TestRec::from_ref(&r))).collect();
        seen.push((b.offset(), recs));
        Ok(())
    });
    (end, seen)
}

/// Replays `bytes` held in memory.
pub(crate) fn replay_bytes(bytes: Vec<u8>, kind: LogKind) -> (Result<ReplayEnd>, Seen) {
    replay_all(&MemFile::new(bytes), kind)
}

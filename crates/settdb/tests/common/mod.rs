//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use settdb::io::Storage;
use settdb::Options;

/// Small sizes so that a few thousand writes exercise rotation, flush, compaction and the
/// value log.
pub fn small_options(dir: &Path, storage: Arc<dyn Storage>) -> Options {
    Options::new(dir)
        .with_storage(storage)
        .with_mem_table_size(1 << 20)
        .with_base_table_size(64 << 10)
        .with_base_level_size(256 << 10)
        .with_num_level_zero_tables(2)
        .with_num_level_zero_tables_stall(4)
        .with_value_threshold(64)
        .with_value_log_file_size(1 << 20)
        .with_block_size(1024)
        .with_num_memtables(3)
}

/// The seed for a randomized test: `SETTDB_SEED` if set, else `default`. Printed, so a
/// failure can be replayed.
pub fn seed(default: u64) -> u64 {
    let s = std::env::var("SETTDB_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    eprintln!("seed = {s} (rerun with SETTDB_SEED={s})");
    s
}

/// A value of `len` bytes derived from `key` and `tag`, so a read can be checked exactly.
pub fn value_for(key: &[u8], tag: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ key
            .iter()
            .fold(0u64, |a, &b| a.rotate_left(5) ^ u64::from(b));
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// What a model of single-key writes holds: each key's latest value (`None`: deleted).
pub type Model = std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Write `i` of a workload over 1,500 keys: a delete every 11th, otherwise a set with a
/// value-log value (300 B, with `small_options`) every 3rd and an inline one (24 B) else.
pub fn workload_step(db: &settdb::Db, i: u64, model: &mut Model) {
    let key = format!("key{:05}", (i * 7919) % 1500).into_bytes();
    if i % 11 == 5 {
        db.delete(key.clone()).unwrap();
        model.insert(key, None);
    } else {
        let v = value_for(&key, i, if i.is_multiple_of(3) { 300 } else { 24 });
        db.set(key.clone(), v.clone()).unwrap();
        model.insert(key, Some(v));
    }
}

/// A storage that delays the creation of table files, so flushes lag behind writes and a
/// crash often finds immutable memtables not yet flushed (the window where WAL order matters).
#[derive(Debug)]
pub struct SlowTableStorage {
    /// The storage underneath.
    pub inner: Arc<dyn Storage>,
    /// Delay per table file created.
    pub delay: std::time::Duration,
    /// If set, table-file creations also wait until it opens.
    pub gate: Option<Arc<Gate>>,
}

/// A gate threads wait at until it is opened (once, for good).
#[derive(Debug, Default)]
pub struct Gate {
    open: std::sync::Mutex<bool>,
    cond: std::sync::Condvar,
}

impl Gate {
    /// Lets every waiter through, now and later.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }
}

impl Storage for SlowTableStorage {
    fn create_dir_all(&self, dir: &Path) -> settdb::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn open(
        &self,
        path: &Path,
        mode: settdb::io::OpenMode,
    ) -> settdb::Result<Arc<dyn settdb::io::StorageFile>> {
        if mode == settdb::io::OpenMode::CreateNew && path.extension().is_some_and(|e| e == "sst") {
            std::thread::sleep(self.delay);
            if let Some(g) = &self.gate {
                g.wait();
            }
        }
        self.inner.open(path, mode)
    }
    fn exists(&self, path: &Path) -> settdb::Result<bool> {
        self.inner.exists(path)
    }
    fn list_dir(&self, dir: &Path) -> settdb::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> settdb::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> settdb::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir(&self, dir: &Path) -> settdb::Result<()> {
        self.inner.remove_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> settdb::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(
        &self,
        path: &Path,
        kind: settdb::io::LockKind,
    ) -> settdb::Result<Box<dyn settdb::io::StorageLock>> {
        self.inner.lock(path, kind)
    }
}

//! The in-process stores the harness drives: SettDB and its Rust peers fjall, redb and sled,
//! behind one small trait so every workload does the same calls on each.
//!
//! Each peer is configured as its documentation advises, with every store given the same
//! 256 MiB cache (SettDB's and Badger's default block cache) and no sync on commit:
//! - SettDB: `Options::new(dir)`, its defaults (256 MiB block cache, snappy, value threshold
//!   1 KiB); batches through `Db::write`, reads through `Db::get` / one `Txn` per thread.
//! - fjall 3: `Database::builder(dir).cache_size(256 MiB)`, one keyspace with default options
//!   (LZ4); key-value separation (its "large blob use cases" option, default 1 KiB threshold)
//!   for values of 4 KiB and more; write batches without persist (the journal reaches OS
//!   buffers, as its docs describe RocksDB's default); `persist(SyncAll)` at close.
//! - redb 4: `Builder::set_cache_size(256 MiB)`; each batch a write transaction with
//!   `Durability::None` (its docs' non-durable commit), and an `Immediate` commit at close so
//!   the database is durable at the end as the others are; `compact()` to reclaim space.
//! - sled 0.34: `Config::cache_capacity(256 MiB)`, `apply_batch` per batch, `flush` at close.

use std::path::Path;

use bytes::Bytes;
use redb::ReadableDatabase;

use crate::proto::KEY_LEN;

pub type BoxErr = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxErr>;

/// One batch of records to write atomically.
pub type Batch = Vec<([u8; KEY_LEN], Bytes)>;

/// Cache given to every store.
pub const CACHE_BYTES: u64 = 256 << 20;

/// A store as the workloads use it.
pub trait Store: Send + Sync {
    /// Writes `batch` atomically, without syncing.
    fn write(&self, batch: Batch) -> Res<()>;
    /// One consistent read in its own read transaction or snapshot: the value's length.
    fn get(&self, key: &[u8]) -> Res<Option<usize>>;
    /// A reader holding one read transaction or snapshot for its whole life.
    fn reader(&self) -> Res<Box<dyn Reader + '_>>;
    /// Visits up to `limit` entries with their values from `start` (`None`: the first key);
    /// returns (entries, key and value bytes).
    fn scan(&self, start: Option<&[u8]>, limit: u64) -> Res<(u64, u64)>;
    /// Reclaims space the way the store's docs advise, until it makes no more progress.
    fn reclaim(&mut self) -> Res<()>;
    /// Closes the store, leaving everything written durable.
    fn close(self: Box<Self>) -> Res<()>;
}

/// A long-lived reader (one per thread).
pub trait Reader {
    fn get(&mut self, key: &[u8]) -> Res<Option<usize>>;
}

/// The `--engine` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Settdb,
    Fjall,
    Redb,
    Sled,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Settdb => "settdb",
            Engine::Fjall => "fjall",
            Engine::Redb => "redb",
            Engine::Sled => "sled",
        }
    }
}

/// SettDB options that differ from its defaults, for experiments (`None`: the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct SettdbTweaks {
    /// `Options::value_threshold`.
    pub value_threshold: Option<u64>,
    /// `Options::auto_value_log_gc`.
    pub auto_gc: Option<bool>,
    /// `Options::background_nice`.
    pub background_nice: Option<i32>,
    /// `Options::value_log_gc_rate_bytes`.
    pub gc_rate_bytes: Option<u64>,
}

impl SettdbTweaks {
    /// The flag name (after `--settdb-`) of the first tweak set, if any.
    pub fn first_set(&self) -> Option<&'static str> {
        [
            ("value-threshold", self.value_threshold.is_some()),
            ("auto-gc", self.auto_gc.is_some()),
            ("background-nice", self.background_nice.is_some()),
            ("gc-rate-bytes", self.gc_rate_bytes.is_some()),
        ]
        .into_iter()
        .find_map(|(name, set)| set.then_some(name))
    }
}

/// Opens (or creates) `engine`'s store in `dir` for values of `value_size` bytes; SettDB with
/// `tweaks` applied.
pub fn open(
    engine: Engine,
    dir: &Path,
    value_size: usize,
    tweaks: SettdbTweaks,
) -> Res<Box<dyn Store>> {
    Ok(match engine {
        Engine::Settdb => {
            let mut opts = settdb::Options::new(dir);
            if let Some(t) = tweaks.value_threshold {
                opts = opts.with_value_threshold(t);
            }
            if let Some(on) = tweaks.auto_gc {
                opts = opts.with_auto_value_log_gc(on);
            }
            if let Some(n) = tweaks.background_nice {
                opts = opts.with_background_nice(n);
            }
            if let Some(r) = tweaks.gc_rate_bytes {
                opts = opts.with_value_log_gc_rate_bytes(r);
            }
            Box::new(SettStore(settdb::Db::open(opts)?))
        }
        Engine::Fjall => {
            let db = fjall::Database::builder(dir)
                .cache_size(CACHE_BYTES)
                .open()?;
            let ks = db.keyspace("bench", || {
                let opts = fjall::KeyspaceCreateOptions::default();
                if value_size >= 4096 {
                    opts.with_kv_separation(Some(fjall::KvSeparationOptions::default()))
                } else {
                    opts
                }
            })?;
            Box::new(FjallStore { db, ks })
        }
        Engine::Redb => {
            std::fs::create_dir_all(dir)?;
            let db = redb::Database::builder()
                .set_cache_size(CACHE_BYTES as usize)
                .create(dir.join("bench.redb"))?;
            // Make sure the table exists, so readers of an empty store find it.
            let tx = db.begin_write()?;
            tx.open_table(REDB_TABLE)?;
            tx.commit()?;
            Box::new(RedbStore(db))
        }
        Engine::Sled => Box::new(SledStore(
            sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_BYTES)
                .open()?,
        )),
    })
}

struct SettStore(settdb::Db);

impl Store for SettStore {
    fn write(&self, batch: Batch) -> Res<()> {
        self.0
            .write(batch.into_iter().map(|(k, v)| settdb::Entry::new(k, v)))?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.0.get(key)?.map(|v| v.len()))
    }

    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        Ok(Box::new(SettReader(self.0.new_transaction(false)?)))
    }

    fn scan(&self, start: Option<&[u8]>, limit: u64) -> Res<(u64, u64)> {
        let mut it = self.0.iter(settdb::IteratorOptions::default())?;
        match start {
            Some(k) => it.seek(k)?,
            None => it.rewind()?,
        }
        let (mut n, mut bytes) = (0, 0);
        while n < limit && it.valid() {
            let item = it.item();
            bytes += item.key().len() as u64 + item.value_with(|v| v.len() as u64)?;
            n += 1;
            it.next()?;
        }
        Ok((n, bytes))
    }

    fn reclaim(&mut self) -> Res<()> {
        // The docs' loop: run GC until a run rewrites nothing.
        while let settdb::GcOutcome::Rewrote(_) = self.0.run_value_log_gc(0.5)? {}
        Ok(())
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.0.close()?;
        Ok(())
    }
}

struct SettReader(settdb::Txn);

impl Reader for SettReader {
    fn get(&mut self, key: &[u8]) -> Res<Option<usize>> {
        match self.0.get(key)? {
            Some(item) => Ok(Some(item.value_with(|v| v.len())?)),
            None => Ok(None),
        }
    }
}

struct FjallStore {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl Store for FjallStore {
    fn write(&self, batch: Batch) -> Res<()> {
        let mut b = self.db.batch();
        for (k, v) in batch {
            b.insert(&self.ks, k.as_slice(), v.as_ref());
        }
        b.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.ks.get(key)?.map(|v| v.len()))
    }

    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        Ok(Box::new(FjallReader {
            snap: self.db.snapshot(),
            ks: &self.ks,
        }))
    }

    fn scan(&self, start: Option<&[u8]>, limit: u64) -> Res<(u64, u64)> {
        let it = match start {
            Some(k) => self.ks.range(k..),
            None => self.ks.iter(),
        };
        let (mut n, mut bytes) = (0, 0);
        for guard in it {
            if n >= limit {
                break;
            }
            let (k, v) = guard.into_inner()?;
            bytes += (k.len() + v.len()) as u64;
            n += 1;
        }
        Ok((n, bytes))
    }

    fn reclaim(&mut self) -> Res<()> {
        // fjall compacts (and collects stale blobs) in the background: wait for it to settle.
        wait_until(|| self.db.active_compactions() == 0 && self.db.outstanding_flushes() == 0);
        Ok(())
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
}

struct FjallReader<'a> {
    snap: fjall::Snapshot,
    ks: &'a fjall::Keyspace,
}

impl Reader for FjallReader<'_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<usize>> {
        use fjall::Readable;
        Ok(self.snap.get(self.ks, key)?.map(|v| v.len()))
    }
}

/// Polls `done` every 100 ms until it holds twice in a row (at most 10 minutes).
fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let mut quiet = 0;
    while quiet < 2 && std::time::Instant::now() < deadline {
        quiet = if done() { quiet + 1 } else { 0 };
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

struct RedbStore(redb::Database);

impl Store for RedbStore {
    fn write(&self, batch: Batch) -> Res<()> {
        let mut tx = self.0.begin_write()?;
        tx.set_durability(redb::Durability::None)?;
        {
            let mut t = tx.open_table(REDB_TABLE)?;
            for (k, v) in &batch {
                t.insert(k.as_slice(), v.as_ref())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        let tx = self.0.begin_read()?;
        let t = tx.open_table(REDB_TABLE)?;
        Ok(t.get(key)?.map(|v| v.value().len()))
    }

    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        let tx = self.0.begin_read()?;
        Ok(Box::new(RedbReader(tx.open_table(REDB_TABLE)?)))
    }

    fn scan(&self, start: Option<&[u8]>, limit: u64) -> Res<(u64, u64)> {
        let tx = self.0.begin_read()?;
        let t = tx.open_table(REDB_TABLE)?;
        let it = match start {
            Some(k) => t.range(k..)?,
            None => t.range::<&[u8]>(..)?,
        };
        let (mut n, mut bytes) = (0, 0);
        for kv in it {
            if n >= limit {
                break;
            }
            let (k, v) = kv?;
            bytes += (k.value().len() + v.value().len()) as u64;
            n += 1;
        }
        Ok((n, bytes))
    }

    fn reclaim(&mut self) -> Res<()> {
        durable_commit(&self.0)?;
        while self.0.compact()? {}
        Ok(())
    }

    fn close(self: Box<Self>) -> Res<()> {
        durable_commit(&self.0)
    }
}

/// An empty `Immediate` commit: makes every earlier non-durable commit durable.
fn durable_commit(db: &redb::Database) -> Res<()> {
    let mut tx = db.begin_write()?;
    tx.set_durability(redb::Durability::Immediate)?;
    tx.commit()?;
    Ok(())
}

struct RedbReader(redb::ReadOnlyTable<&'static [u8], &'static [u8]>);

impl Reader for RedbReader {
    fn get(&mut self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.0.get(key)?.map(|v| v.value().len()))
    }
}

struct SledStore(sled::Db);

impl Store for SledStore {
    fn write(&self, batch: Batch) -> Res<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            b.insert(k.as_slice(), v.as_ref());
        }
        self.0.apply_batch(b)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.0.get(key)?.map(|v| v.len()))
    }

    fn reader(&self) -> Res<Box<dyn Reader + '_>> {
        // sled has no read snapshots: its reads are always of the latest state.
        Ok(Box::new(SledReader(&self.0)))
    }

    fn scan(&self, start: Option<&[u8]>, limit: u64) -> Res<(u64, u64)> {
        let it = match start {
            Some(k) => self.0.range(k..),
            None => self.0.iter(),
        };
        let (mut n, mut bytes) = (0, 0);
        for kv in it {
            if n >= limit {
                break;
            }
            let (k, v) = kv?;
            bytes += (k.len() + v.len()) as u64;
            n += 1;
        }
        Ok((n, bytes))
    }

    fn reclaim(&mut self) -> Res<()> {
        // sled reclaims space in its own background segment cleaner; there is no call.
        Ok(())
    }

    fn close(self: Box<Self>) -> Res<()> {
        self.0.flush()?;
        Ok(())
    }
}

struct SledReader<'a>(&'a sled::Db);

impl Reader for SledReader<'_> {
    fn get(&mut self, key: &[u8]) -> Res<Option<usize>> {
        Ok(self.0.get(key)?.map(|v| v.len()))
    }
}

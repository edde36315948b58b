//! [`Reader`]: the read side of the engine as one value (memtables, levels, value log and the
//! commit watermark), so transactions, value-log GC, backup and streams read without `Db`.
//!
//! Its snapshot constructor is the one place the order of a consistent view is written:
//! the memtables before the levels (a flush in between is seen twice, never missed), both
//! taken while the value log pins its files ([`crate::vlog::ValueLog::pinned`]), so a
//! value-log file GC retires stays on disk for every view that may read it.

use std::path::Path;
use std::sync::Arc;

use super::db_iterator::DbIterator;
use super::get::{get_newest_tallied, Found};
use super::item::Item;
use super::iterator_options::IteratorOptions;
use super::sources::ReadSnapshot;
use crate::clock::now_secs;
use crate::error::{Error, Result};
use crate::key::key_with_version;
use crate::levels::Levels;
use crate::memtable::Memtables;
use crate::namespace::{banned_by_record, Namespaces, BANNED_PREFIX};
use crate::stats::{BloomTally, EngineStats, GetSource};
use crate::table::VecIterator;
use crate::txn::WaterMark;
use crate::value::{is_expired, meta, ValuePointer};
use crate::vlog::{FilesNow, ValueLog};

/// The engine's read side. Cheap to share (`Arc`); holds no reference to `Db`.
#[derive(Debug)]
pub(crate) struct Reader {
    memtables: Arc<Memtables>,
    levels: Arc<Levels>,
    vlog: Option<Arc<ValueLog>>,
    /// Commit watermark: a read at `read_ts` waits until every version up to it that has
    /// begun is applied.
    applied: Arc<WaterMark>,
    /// The database directory, named by errors that have no file of their own.
    dir: Arc<Path>,
    /// Key namespaces and the banned ones: iterators skip their keys.
    namespaces: Arc<Namespaces>,
}

impl Reader {
    pub(crate) fn new(
        memtables: Arc<Memtables>,
        levels: Arc<Levels>,
        vlog: Option<Arc<ValueLog>>,
        applied: Arc<WaterMark>,
        dir: &Path,
        namespaces: Arc<Namespaces>,
    ) -> Self {
        Reader {
            memtables,
            levels,
            vlog,
            applied,
            dir: Arc::from(dir),
            namespaces,
        }
    }

    /// Key namespaces and the banned ones.
    pub(crate) fn namespaces(&self) -> &Arc<Namespaces> {
        &self.namespaces
    }

    /// The namespaces the stored ban records name (read at open).
    pub(crate) fn stored_bans(&self) -> Result<Vec<u64>> {
        let opts = IteratorOptions::default()
            .with_prefix(BANNED_PREFIX.to_vec())
            .with_prefetch_values(false);
        let it = DbIterator::new(self.snapshot(), u64::MAX, now_secs(), opts, None)
            .with_internal_access();
        let mut bans = Vec::new();
        for item in it {
            let item = item?;
            // Only SettDB writes keys under its prefix: one that does not name a namespace is
            // damage, and skipping it would lift a ban silently.
            let ns = banned_by_record(item.key()).ok_or_else(|| {
                Error::corruption(
                    self.dir.to_path_buf(),
                    0,
                    format!(
                        "a ban record's key is {} bytes, not the prefix and an 8-byte namespace",
                        item.key().len()
                    ),
                )
            })?;
            bans.push(ns);
        }
        Ok(bans)
    }

    /// The memtables (value-log GC waits on their flushes).
    pub(crate) fn memtables(&self) -> &Arc<Memtables> {
        &self.memtables
    }

    /// One consistent view of the engine now (module doc for the order).
    pub(crate) fn snapshot(&self) -> ReadSnapshot {
        let take = || (self.memtables.view(), self.levels.snapshot());
        let ((memtables, levels), vlog) = match &self.vlog {
            Some(v) => {
                let (view, pin) = v.pinned(take);
                (view, Some(pin))
            }
            None => (take(), None),
        };
        ReadSnapshot {
            memtables,
            levels,
            vlog,
            dir: self.dir.clone(),
        }
    }

    /// A view for reads at `read_ts`, taken once every version up to it that has begun is
    /// applied.
    pub(crate) fn snapshot_at(&self, read_ts: u64) -> ReadSnapshot {
        self.wait_applied(read_ts);
        self.snapshot()
    }

    /// Waits until every version up to `read_ts` that has begun is applied.
    fn wait_applied(&self, read_ts: u64) {
        self.applied
            .wait_for(read_ts.min(self.applied.last_begun()));
    }

    /// Finds the newest live (not deleted, not expired at `now`) version of `key` at or below
    /// `read_ts` and hands it to `f` in place, with its value pointer and a pin on the
    /// value-log files when it holds one. The view is the one [`Reader::snapshot`] takes, in
    /// the same order (value-log files, memtables, levels), but borrowed for the read: no
    /// reference count is taken unless `f` needs a pin.
    fn lookup<T>(
        &self,
        key: &[u8],
        read_ts: u64,
        now: u64,
        f: impl FnOnce(&Found, Option<(ValuePointer, &FilesNow<'_>)>) -> Result<T>,
    ) -> Result<Option<T>> {
        self.wait_applied(read_ts);
        let started = self.stats().timer();
        let files = self.vlog.as_ref().map(|v| v.files_now());
        let memtables = self.memtables.current();
        let levels = self.levels.current();
        let mut bloom = BloomTally::default();
        let found = get_newest_tallied(&memtables, &levels, key, read_ts, &mut bloom)?;
        let source = found.as_ref().map_or(GetSource::Miss, Found::source);
        self.stats().record_get(source, bloom, started);
        let Some(found) = found else {
            return Ok(None);
        };
        let vs = found.value();
        if vs.meta & meta::DELETE != 0 || is_expired(vs.expires_at, now) {
            return Ok(None);
        }
        if vs.meta & meta::VALUE_POINTER == 0 {
            return f(&found, None).map(Some);
        }
        let vp = decode_pointer(vs.value, &self.dir)?;
        let files = files.as_ref().ok_or_else(|| no_value_log(&self.dir))?;
        f(&found, Some((vp, files))).map(Some)
    }

    /// The newest live version of `key` at or below `read_ts`, with its value.
    pub(crate) fn get(&self, key: &[u8], read_ts: u64) -> Result<Option<(u64, Vec<u8>)>> {
        self.lookup(key, read_ts, now_secs(), |found, pointer| {
            let value = match pointer {
                None => found.value().value.to_vec(),
                Some((vp, files)) => {
                    self.stats().record_vlog_read(u64::from(vp.len));
                    files
                        .read(vp, &key_with_version(key, found.version))?
                        .into_value()
                }
            };
            Ok((found.version, value))
        })
    }

    /// The newest live version of `key` at or below `read_ts` as an [`Item`] (a value-log value
    /// is read when the item's value is asked for; the item pins the files it may read).
    pub(crate) fn get_item(&self, key: &[u8], read_ts: u64) -> Result<Option<Item>> {
        let now = now_secs();
        self.lookup(key, read_ts, now, |found, pointer| {
            Ok(Item::from_entry(
                key,
                found.version,
                found.value(),
                pointer.map(|(vp, files)| (vp, files.pin())),
                now,
            ))
        })
    }

    /// The engine's counters.
    pub(crate) fn stats(&self) -> &Arc<EngineStats> {
        self.levels.stats()
    }

    /// An iterator at `read_ts` over one view of the engine, with a transaction's `pending`
    /// writes merged in (see `read::sources`). Waits as point reads do.
    pub(crate) fn iter(
        &self,
        read_ts: u64,
        opts: IteratorOptions,
        pending: Option<VecIterator>,
    ) -> DbIterator {
        let snapshot = self.snapshot_at(read_ts);
        DbIterator::new(snapshot, read_ts, now_secs(), opts, pending)
            .with_namespaces(self.namespaces.clone())
    }
}

/// The value pointer a value struct holds, or the Corruption of a malformed one.
fn decode_pointer(value: &[u8], dir: &Path) -> Result<ValuePointer> {
    ValuePointer::decode(value)
        .ok_or_else(|| Error::corruption(dir, 0, "malformed value pointer in the LSM tree"))
}

/// The Corruption of a value pointer in a database without a value log.
fn no_value_log(dir: &Path) -> Error {
    Error::corruption(dir, 0, "value pointer in a database without a value log")
}

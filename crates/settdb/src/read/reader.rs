//! [`Reader`]: the read side of the engine as one value (memtables, levels, value log and the
//! commit watermark), so transactions, value-log GC, backup and streams read without `Db`.
//!
//! Its snapshot constructor is the one place the order of a consistent view is written:
//! the memtables before the levels (a flush in between is seen twice, never missed), both
//! taken while the value log pins its files ([`crate::vlog::ValueLog::pinned`]), so a
//! value-log file GC retires stays on disk for every view that may read it.

use std::path::PathBuf;
use std::sync::Arc;

use super::db_iterator::DbIterator;
use super::get::get_newest;
use super::item::Item;
use super::iterator_options::IteratorOptions;
use super::sources::ReadSnapshot;
use crate::clock::now_secs;
use crate::error::{Error, Result};
use crate::key::key_with_version;
use crate::levels::Levels;
use crate::memtable::Memtables;
use crate::table::VecIterator;
use crate::txn::WaterMark;
use crate::value::{is_expired, meta, ValuePointer, ValueStruct};
use crate::vlog::{ValueLog, VlogPin};

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
    dir: PathBuf,
}

impl Reader {
    pub(crate) fn new(
        memtables: Arc<Memtables>,
        levels: Arc<Levels>,
        vlog: Option<Arc<ValueLog>>,
        applied: Arc<WaterMark>,
        dir: PathBuf,
    ) -> Self {
        Reader {
            memtables,
            levels,
            vlog,
            applied,
            dir,
        }
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
        self.applied
            .wait_for(read_ts.min(self.applied.last_begun()));
        self.snapshot()
    }

    /// The newest live (not deleted, not expired) version of `key` at or below `read_ts`, and
    /// the view it was found in.
    fn lookup(&self, key: &[u8], read_ts: u64) -> Result<Option<(u64, ValueStruct, ReadSnapshot)>> {
        let snap = self.snapshot_at(read_ts);
        let found = get_newest(&snap.memtables, &snap.levels, key, read_ts)?
            .filter(|(_, vs)| !vs.is_delete() && !is_expired(vs.expires_at, now_secs()));
        Ok(found.map(|(ver, vs)| (ver, vs, snap)))
    }

    /// The newest live version of `key` at or below `read_ts`, with its value.
    pub(crate) fn get(&self, key: &[u8], read_ts: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let Some((ver, vs, snap)) = self.lookup(key, read_ts)? else {
            return Ok(None);
        };
        match snap.pointer_of(&vs)? {
            None => Ok(Some((ver, vs.value))),
            Some((vp, vlog)) => Ok(Some((
                ver,
                vlog.read(vp, &key_with_version(key, ver))?.into_value(),
            ))),
        }
    }

    /// The newest live version of `key` at or below `read_ts` as an [`Item`] (a value-log value
    /// is read when the item's value is asked for; the item pins the files it may read).
    pub(crate) fn get_item(&self, key: &[u8], read_ts: u64) -> Result<Option<Item>> {
        let Some((ver, vs, snap)) = self.lookup(key, read_ts)? else {
            return Ok(None);
        };
        let pointer = snap.pointer_of(&vs)?;
        Ok(Some(Item::from_entry(
            key,
            ver,
            vs.as_value_ref(),
            pointer,
            now_secs(),
        )))
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
    }
}

impl ReadSnapshot {
    /// The value pointer of `vs` and the pinned files it points into, if it holds one.
    pub(crate) fn pointer_of(&self, vs: &ValueStruct) -> Result<Option<(ValuePointer, &VlogPin)>> {
        if vs.meta & meta::VALUE_POINTER == 0 {
            return Ok(None);
        }
        let vp = ValuePointer::decode(&vs.value).ok_or_else(|| {
            Error::corruption(&self.dir, 0, "malformed value pointer in the LSM tree")
        })?;
        let vlog = self.vlog.as_ref().ok_or_else(|| {
            Error::corruption(
                &self.dir,
                0,
                "value pointer in a database without a value log",
            )
        })?;
        Ok(Some((vp, vlog)))
    }
}

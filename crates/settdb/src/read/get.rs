//! Point reads: the newest version of a key at or below a read timestamp.
//!
//! Sources are searched newest first: memtables, L0 tables, then at most one table per deeper
//! level. Every source may hold a version, and the highest wins: value-log GC rewrites old
//! versions into the memtable and managed mode writes versions out of order, so the first hit
//! is not always the newest (docs/design/engine.md). A source whose max version is not above
//! the best found is skipped, and a version equal to `read_ts` ends the search.
//!
//! What is found stays where it lies (the memtable's shared bytes, or the table block, which
//! the block cache usually holds too): a point read copies the value once, into what it
//! returns.

use crate::error::Result;
use crate::key::{key_with_version, version};
use crate::levels::LevelsSnapshot;
use crate::memtable::{MemValue, MemtablesView};
use crate::stats::{BloomTally, GetSource};
use crate::table::{BlockEntry, Probe};
use crate::value::ValueRef;

/// The newest version of a key that [`get_newest`] found, in place.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// Its version.
    pub version: u64,
    value: FoundValue,
}

#[derive(Clone, Debug)]
enum FoundValue {
    Memtable(MemValue),
    /// A table's entry, and the table's level.
    Table(BlockEntry, usize),
}

impl Found {
    /// The value struct (which may be a tombstone, expired, or a value pointer: the caller
    /// interprets it).
    pub fn value(&self) -> ValueRef<'_> {
        match &self.value {
            FoundValue::Memtable(v) => v.as_value_ref(),
            FoundValue::Table(e, _) => e.value(),
        }
    }

    /// Where it was found (for the engine's statistics).
    pub fn source(&self) -> GetSource {
        match &self.value {
            FoundValue::Memtable(_) => GetSource::Memtable,
            FoundValue::Table(_, level) => GetSource::Level(*level),
        }
    }
}

/// The newest version of `user_key` at or below `read_ts`.
pub(crate) fn get_newest(
    memtables: &MemtablesView,
    levels: &LevelsSnapshot,
    user_key: &[u8],
    read_ts: u64,
) -> Result<Option<Found>> {
    get_newest_tallied(
        memtables,
        levels,
        user_key,
        read_ts,
        &mut BloomTally::default(),
    )
}

/// [`get_newest`], counting into `bloom` what each table's bloom filter said.
pub(crate) fn get_newest_tallied(
    memtables: &MemtablesView,
    levels: &LevelsSnapshot,
    user_key: &[u8],
    read_ts: u64,
    bloom: &mut BloomTally,
) -> Result<Option<Found>> {
    let seek = key_with_version(user_key, read_ts);
    let mut best: Option<Found> = None;
    let beats = |best: &Option<Found>, max_version: u64| {
        best.as_ref().is_none_or(|f| max_version > f.version)
    };
    for mem in &memtables.newest_first {
        if !beats(&best, mem.list().max_version()) {
            continue;
        }
        if let Some((k, v)) = mem.list().get(&seek) {
            let ver = version(&k);
            if beats(&best, ver) {
                best = Some(Found {
                    version: ver,
                    value: FoundValue::Memtable(v),
                });
                if ver == read_ts {
                    return Ok(best);
                }
            }
        }
    }
    let l0 = levels.tables(0).iter().map(|t| (0, t));
    let deeper =
        (1..levels.level_count()).filter_map(|l| levels.table_for_key(l, user_key).map(|t| (l, t)));
    for (level, t) in l0.chain(deeper) {
        if !beats(&best, t.table().max_version()) {
            continue;
        }
        // `Table::probe` asks the bloom filter first.
        let e = match t.table().probe(&seek)? {
            Probe::FilteredOut => {
                bloom.filtered += 1;
                continue;
            }
            Probe::Absent => {
                bloom.passed += 1;
                None
            }
            Probe::Found(e) => {
                bloom.passed += 1;
                bloom.found += 1;
                Some(e)
            }
        };
        if let Some(e) = e {
            let ver = e.version();
            if beats(&best, ver) {
                best = Some(Found {
                    version: ver,
                    value: FoundValue::Table(e, level),
                });
                if ver == read_ts {
                    return Ok(best);
                }
            }
        }
    }
    Ok(best)
}

//! Point reads: the newest version of a key at or below a read timestamp.
//!
//! Sources are searched newest first: memtables, L0 tables, then at most one table per deeper
//! level. Every source may hold a version, and the highest wins: value-log GC rewrites old
//! versions into the memtable and managed mode writes versions out of order, so the first hit
//! is not always the newest (docs/design/engine.md). A source whose max version is not above
//! the best found is skipped, and a version equal to `read_ts` ends the search.

use crate::error::Result;
use crate::key::{key_with_version, version};
use crate::levels::LevelsSnapshot;
use crate::memtable::MemtablesView;
use crate::value::ValueStruct;

/// The newest version of `user_key` at or below `read_ts`, with its value struct (which may be
/// a tombstone, expired, or a value pointer: the caller interprets it).
pub fn get_newest(
    memtables: &MemtablesView,
    levels: &LevelsSnapshot,
    user_key: &[u8],
    read_ts: u64,
) -> Result<Option<(u64, ValueStruct)>> {
    let seek = key_with_version(user_key, read_ts);
    let mut best: Option<(u64, ValueStruct)> = None;
    let beats = |best: &Option<(u64, ValueStruct)>, max_version: u64| {
        best.as_ref().is_none_or(|(v, _)| max_version > *v)
    };
    for mem in &memtables.newest_first {
        if !beats(&best, mem.list().max_version()) {
            continue;
        }
        if let Some((k, v)) = mem.list().get(&seek) {
            let ver = version(&k);
            if beats(&best, ver) {
                best = Some((ver, v.as_value_ref().to_owned()));
                if ver == read_ts {
                    return Ok(best);
                }
            }
        }
    }
    let l0 = levels.tables(0).iter();
    let deeper = (1..levels.level_count()).filter_map(|l| levels.table_for_key(l, user_key));
    for t in l0.chain(deeper) {
        if !beats(&best, t.table().max_version()) || !t.table().may_contain(user_key) {
            continue;
        }
        if let Some((k, v)) = t.table().get(&seek)? {
            let ver = version(&k);
            if beats(&best, ver) {
                best = Some((ver, v));
                if ver == read_ts {
                    return Ok(best);
                }
            }
        }
    }
    Ok(best)
}

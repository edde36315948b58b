//! Choosing the tables of one compaction, and the key ranges compactions hold while they run.
//!
//! - L0 → base level: the oldest L0 table, then each next-newer one whose key range overlaps
//!   what was taken so far, stopping at the first that does not (L0 is stored newest first, so
//!   this walks it from the back). Taking a contiguous run from the oldest end keeps the rule that a shallower
//!   source never holds an older version than a deeper one. Plus every base-level table that
//!   overlaps. One L0 compaction at a time.
//! - Li → Li+1: the table with the oldest data (smallest max version) whose range is free, plus
//!   the overlapping tables of Li+1.
//! - Last level → last level ([`pick_lmax`], with `lmax_compaction`): one table with enough
//!   stale data, rewritten in place.
//! - [`InFlight`] records, per level, the user-key ranges and tables being compacted; a task is
//!   only started if its ranges on both levels are free, so parallel compactions never touch
//!   the same keys.

use std::collections::HashSet;
use std::sync::Arc;

use crate::levels::{LevelTable, LevelsSnapshot};

/// An inclusive user-key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    /// Smallest user key.
    pub lo: Vec<u8>,
    /// Biggest user key.
    pub hi: Vec<u8>,
}

impl KeyRange {
    /// The range covering `tables`.
    pub fn of(tables: &[Arc<LevelTable>]) -> Option<KeyRange> {
        let lo = tables.iter().map(|t| t.smallest_user_key()).min()?;
        let hi = tables.iter().map(|t| t.biggest_user_key()).max()?;
        Some(KeyRange {
            lo: lo.to_vec(),
            hi: hi.to_vec(),
        })
    }

    /// True if the two ranges share a key.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        self.lo <= other.hi && other.lo <= self.hi
    }
}

/// One compaction: `top` tables of `from_level` merged with `bottom` tables of `to_level`.
#[derive(Clone, Debug)]
pub struct CompactionTask {
    /// Level the top tables come from.
    pub from_level: usize,
    /// Level the output goes to.
    pub to_level: usize,
    /// Tables taken from `from_level` (L0: newest first).
    pub top: Vec<Arc<LevelTable>>,
    /// Overlapping tables of `to_level`, sorted by key.
    pub bottom: Vec<Arc<LevelTable>>,
    /// User-key range of all inputs.
    pub range: KeyRange,
    /// Target size of output tables.
    pub target_table_bytes: u64,
}

impl CompactionTask {}

/// Ranges and tables currently being compacted.
#[derive(Debug, Default)]
pub struct InFlight {
    ranges: Vec<(usize, KeyRange)>,
    tables: HashSet<u64>,
    bytes_by_level: Vec<u64>,
}

impl InFlight {
    /// Nothing in flight.
    pub fn new(max_levels: usize) -> Self {
        InFlight {
            ranges: Vec::new(),
            tables: HashSet::new(),
            bytes_by_level: vec![0; max_levels],
        }
    }

    fn range_free(&self, level: usize, range: &KeyRange) -> bool {
        !self
            .ranges
            .iter()
            .any(|(l, r)| *l == level && r.overlaps(range))
    }

    fn level_busy(&self, level: usize) -> bool {
        self.ranges.iter().any(|(l, _)| *l == level)
    }

    /// True if no compaction is running.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.tables.is_empty()
    }

    /// True if none of `tables` is being compacted.
    pub fn tables_free(&self, tables: &[Arc<LevelTable>]) -> bool {
        tables.iter().all(|t| !self.tables.contains(&t.id()))
    }

    /// Reserves the task's ranges and tables; `false` (nothing reserved) if any is taken.
    pub fn try_reserve(&mut self, task: &CompactionTask) -> bool {
        if !self.range_free(task.from_level, &task.range)
            || !self.range_free(task.to_level, &task.range)
            || !self.tables_free(&task.top)
            || !self.tables_free(&task.bottom)
        {
            return false;
        }
        self.ranges.push((task.from_level, task.range.clone()));
        self.ranges.push((task.to_level, task.range.clone()));
        for t in task.top.iter().chain(&task.bottom) {
            self.tables.insert(t.id());
        }
        self.bytes_by_level[task.from_level] +=
            task.top.iter().map(|t| t.size_bytes()).sum::<u64>();
        true
    }

    /// Releases what [`InFlight::try_reserve`] took for `task`.
    pub fn release(&mut self, task: &CompactionTask) {
        for level in [task.from_level, task.to_level] {
            if let Some(pos) = self
                .ranges
                .iter()
                .position(|(l, r)| *l == level && *r == task.range)
            {
                self.ranges.remove(pos);
            }
        }
        for t in task.top.iter().chain(&task.bottom) {
            self.tables.remove(&t.id());
        }
        let top: u64 = task.top.iter().map(|t| t.size_bytes()).sum();
        self.bytes_by_level[task.from_level] =
            self.bytes_by_level[task.from_level].saturating_sub(top);
    }

    /// Bytes per level being compacted away (not counted in scores).
    pub fn bytes_by_level(&self) -> &[u64] {
        &self.bytes_by_level
    }
}

/// The L0 → base task, if L0 is free.
pub fn pick_l0(
    snapshot: &LevelsSnapshot,
    base_level: usize,
    target_table_bytes: u64,
    in_flight: &InFlight,
) -> Option<CompactionTask> {
    if in_flight.level_busy(0) {
        return None;
    }
    let l0 = snapshot.tables(0);
    let mut top: Vec<Arc<LevelTable>> = Vec::new();
    let mut range: Option<KeyRange> = None;
    for t in l0.iter().rev() {
        let r = KeyRange::of(std::slice::from_ref(t))?;
        match &mut range {
            None => range = Some(r),
            Some(acc) if acc.overlaps(&r) => {
                if r.lo < acc.lo {
                    acc.lo = r.lo;
                }
                if r.hi > acc.hi {
                    acc.hi = r.hi;
                }
            }
            Some(_) => break,
        }
        top.push(t.clone());
    }
    top.reverse(); // back to newest first
    let range = range?;
    let bottom = snapshot.tables(base_level)
        [snapshot.overlapping_range(base_level, &range.lo, &range.hi)]
    .to_vec();
    let task = task_with_bottom(0, base_level, top, bottom, target_table_bytes);
    in_flight.tables_free(&task.bottom).then_some(task)
}

/// An Li → Li+1 task (`level >= 1`) for the oldest table whose ranges are free.
pub fn pick_level(
    snapshot: &LevelsSnapshot,
    level: usize,
    target_table_bytes: u64,
    in_flight: &InFlight,
) -> Option<CompactionTask> {
    let next = level + 1;
    if next >= snapshot.level_count() {
        return None;
    }
    let mut candidates: Vec<&Arc<LevelTable>> = snapshot.tables(level).iter().collect();
    candidates.sort_by_key(|t| t.table().max_version());
    for t in candidates {
        let top = vec![t.clone()];
        let Some(range) = KeyRange::of(&top) else {
            continue;
        };
        let bottom =
            snapshot.tables(next)[snapshot.overlapping_range(next, &range.lo, &range.hi)].to_vec();
        let task = task_with_bottom(level, next, top, bottom, target_table_bytes);
        if in_flight.range_free(level, &task.range)
            && in_flight.range_free(next, &task.range)
            && in_flight.tables_free(&task.top)
            && in_flight.tables_free(&task.bottom)
        {
            return Some(task);
        }
    }
    None
}

/// Stale bytes at least this fraction (1/n) of a last-level table make it worth rewriting.
const LMAX_STALE_DIVISOR: u64 = 10;

/// A last level → last level task (`lmax_compaction`, Badger's Lmax → Lmax): the table with
/// the most stale bytes (at least a tenth of it) among those whose every version is at or
/// below `discard_ts`, so that rewriting it drops what made it stale (tombstones and
/// expired values nothing deeper can hold, versions no snapshot reads). It is rewritten alone;
/// its outputs stay inside its key range.
pub fn pick_lmax(
    snapshot: &LevelsSnapshot,
    discard_ts: u64,
    target_table_bytes: u64,
    in_flight: &InFlight,
) -> Option<CompactionTask> {
    let last = snapshot.level_count().checked_sub(1)?;
    let mut candidates: Vec<&Arc<LevelTable>> = snapshot
        .tables(last)
        .iter()
        .filter(|t| {
            let stale = t.table().stale_data_bytes();
            stale > 0
                && stale.saturating_mul(LMAX_STALE_DIVISOR) >= t.size_bytes()
                && t.table().max_version() <= discard_ts
        })
        .collect();
    candidates.sort_by_key(|t| std::cmp::Reverse(t.table().stale_data_bytes()));
    candidates.into_iter().find_map(|t| {
        let task = task_with_bottom(last, last, vec![t.clone()], Vec::new(), target_table_bytes);
        (in_flight.range_free(last, &task.range) && in_flight.tables_free(&task.top))
            .then_some(task)
    })
}

fn task_with_bottom(
    from_level: usize,
    to_level: usize,
    top: Vec<Arc<LevelTable>>,
    bottom: Vec<Arc<LevelTable>>,
    target_table_bytes: u64,
) -> CompactionTask {
    let all: Vec<Arc<LevelTable>> = top.iter().chain(&bottom).cloned().collect();
    let range = KeyRange::of(&all).unwrap_or(KeyRange {
        lo: Vec::new(),
        hi: Vec::new(),
    });
    CompactionTask {
        from_level,
        to_level,
        top,
        bottom,
        range,
        target_table_bytes,
    }
}

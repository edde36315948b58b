//! The sorted sources a range read merges, taken from one snapshot of the engine.
//!
//! [`ReadSnapshot`] is what keeps a range read's view alive: the memtables (their `Arc`s),
//! the levels snapshot (whose `LevelTable`s keep table files from being deleted), and the
//! value log. [`ReadSnapshot::sources`] turns it into cursors, newest first, as
//! [`crate::table::MergeIterator`] requires: a transaction's pending writes, the memtables
//! (mutable, then immutables newest first), the L0 tables newest first, then one
//! [`ConcatIterator`] per deeper level. Tables (and memtables) that cannot hold a visible
//! entry are left out: no key of theirs starts with the prefix, or no version of theirs is
//! above `since_ts`.
//!
//! Pending writes: whatever version the transaction layer put in their keys, they are re-keyed
//! at [`PENDING_VERSION`] (`u64::MAX`), which sorts before every committed version of the same
//! user key, so the merge always sees a pending write as the newest version and it shadows
//! committed ones, with no tie to break against a committed version at the read timestamp.
//! The iterator treats an entry at `PENDING_VERSION` as always visible (it would otherwise be
//! above the read timestamp) when a pending source was given; committed versions never reach
//! `u64::MAX` (timestamps count up from 1).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::prefix_range::PrefixRange;
use crate::key::{append_version, user_key, VERSION_LEN};
use crate::levels::{LevelTable, LevelsSnapshot};
use crate::memtable::MemtablesView;
use crate::table::{ConcatIterator, KvIterator, Table, TableIterator, TableRun, VecIterator};
use crate::value::meta;
use crate::vlog::VlogPin;

/// The version pending writes are merged at: above every committed version.
pub(crate) const PENDING_VERSION: u64 = u64::MAX;

/// One consistent view of the engine for a range read, kept alive as long as the read.
///
/// Consistency: take the memtables view BEFORE the levels snapshot. A flush adds its table to
/// the levels before it removes the memtable, so a view taken first either still holds the
/// memtable or the later snapshot holds its table (both at once is harmless: the merge drops
/// equal internal keys). The opposite order could miss a memtable flushed in between.
#[derive(Debug)]
pub(crate) struct ReadSnapshot {
    /// The memtables, newest first.
    pub memtables: Arc<MemtablesView>,
    /// The tables of every level.
    pub levels: Arc<LevelsSnapshot>,
    /// The value-log files this view may read (`None` in memory), pinned with the view.
    pub vlog: Option<VlogPin>,
    /// The database directory, named by errors that have no file of their own.
    pub dir: Arc<Path>,
}

impl ReadSnapshot {
    /// The cursors to merge, newest first, pruned by `prefix` and `since_ts` (0: no bound).
    /// With `fill_cache` (user iterators) the table cursors cache the blocks they read;
    /// without it (a verification pass over the whole tree) they use cached blocks but cache
    /// none, so the pass does not evict what point reads use.
    pub(crate) fn sources(
        &self,
        pending: Option<VecIterator>,
        prefix: &PrefixRange,
        since_ts: u64,
        fill_cache: bool,
    ) -> Vec<Box<dyn KvIterator>> {
        let has_newer = |max_version: u64| since_ts == 0 || max_version > since_ts;
        let mut out: Vec<Box<dyn KvIterator>> = Vec::new();
        if let Some(p) = pending {
            out.push(Box::new(pending_source(p, prefix)));
        }
        for mem in &self.memtables.newest_first {
            if has_newer(mem.list().max_version()) {
                out.push(Box::new(mem.iter()));
            }
        }
        let keep = |t: &&Arc<LevelTable>| {
            has_newer(t.table().max_version())
                && prefix.overlaps(t.smallest_user_key(), t.biggest_user_key())
        };
        for t in self.levels.tables(0).iter().filter(keep) {
            let table = t.table().clone();
            out.push(Box::new(TableIterator::filling(table, fill_cache)));
        }
        for level in 1..self.levels.level_count() {
            let window = level_candidates(&self.levels, level, prefix);
            if window.is_empty() {
                continue;
            }
            if since_ts == 0 {
                // Every table of the window overlaps the prefix: the level is shared, not
                // copied (TableRun).
                let run = Arc::new(LevelRun {
                    levels: self.levels.clone(),
                    level,
                });
                out.push(Box::new(ConcatIterator::over(run, window, fill_cache)));
                continue;
            }
            let tables: Vec<Arc<Table>> = (self.levels.tables(level).get(window))
                .unwrap_or_default()
                .iter()
                .filter(keep)
                .map(|t| t.table().clone())
                .collect();
            if !tables.is_empty() {
                out.push(Box::new(ConcatIterator::filling(tables, fill_cache)));
            }
        }
        out
    }
}

/// One sorted level of a levels snapshot, as the run of tables a [`ConcatIterator`] walks.
struct LevelRun {
    levels: Arc<LevelsSnapshot>,
    level: usize,
}

impl TableRun for LevelRun {
    fn len(&self) -> usize {
        self.levels.tables(self.level).len()
    }

    fn table(&self, i: usize) -> &Arc<Table> {
        self.levels.tables(self.level)[i].table()
    }
}

/// The indexes of the tables of a sorted level whose user-key range overlaps `prefix`.
fn level_candidates(levels: &LevelsSnapshot, level: usize, prefix: &PrefixRange) -> Range<usize> {
    let tables = levels.tables(level);
    if prefix.prefix().is_empty() {
        // Every table overlaps: no search, which would read each probed table's boundary
        // keys (cold memory: 3.5% of a 50-key scan).
        return 0..tables.len();
    }
    let start = tables.partition_point(|t| t.biggest_user_key() < prefix.prefix());
    let end = match prefix.end() {
        Some(end) => tables.partition_point(|t| t.smallest_user_key() < end),
        None => tables.len(),
    };
    start..end.max(start)
}

/// Pending writes re-keyed at [`PENDING_VERSION`] (module doc), only those in `prefix`, one
/// per user key (the newest given).
fn pending_source(pending: VecIterator, prefix: &PrefixRange) -> VecIterator {
    let mut entries = pending.into_entries();
    entries.retain(|(k, _)| prefix.contains(user_key(k)));
    for (k, v) in &mut entries {
        debug_assert_eq!(
            v.meta & meta::VALUE_POINTER,
            0,
            "pending writes hold their values inline"
        );
        k.truncate(k.len().saturating_sub(VERSION_LEN));
        append_version(k, PENDING_VERSION);
    }
    // The input is in key order, so versions of one user key are adjacent, newest first; now
    // that they share one version, keep the first of each run.
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    VecIterator::from_sorted(entries)
}

//! An immutable picture of the tables in every level.
//!
//! Invariants (checked by [`LevelsSnapshot::check`] in debug builds after every edit):
//! - L0 is ordered newest first (flushes push to the front); its tables may overlap.
//! - Every deeper level is sorted by key and its tables do not overlap by user key, so at most
//!   one table of a level can hold a given user key.
//! - For any user key, versions in a shallower level are newer than those in a deeper level
//!   (compaction moves data down in whole key ranges; see `compaction::priority`), so a point
//!   read may stop at the first level that has the key.

use std::sync::Arc;

use super::level_table::LevelTable;

/// Tables of every level at one moment.
#[derive(Clone, Debug, Default)]
pub struct LevelsSnapshot {
    levels: Vec<Vec<Arc<LevelTable>>>,
}

/// A change to the levels: tables added at levels and tables removed (by id), recorded in
/// the MANIFEST together with the end of the operation that wrote the added tables and, for a
/// flush, the deletion of the flushed memtable's WAL.
#[derive(Clone, Debug, Default)]
pub struct LevelsEdit {
    /// Tables to add, with their level. L0 additions go to the front (newest).
    pub added: Vec<(usize, Arc<LevelTable>)>,
    /// Ids of tables to remove, with their level.
    pub removed: Vec<(usize, u64)>,
    /// The operation ([`crate::manifest::SharedManifest::begin_op`]) this edit ends.
    pub end_op: Option<u64>,
    /// The WAL this edit makes unneeded (a flush's).
    pub delete_wal: Option<u64>,
}

impl LevelsSnapshot {
    /// An empty snapshot with `max_levels` levels.
    pub fn new(max_levels: usize) -> Self {
        LevelsSnapshot {
            levels: vec![Vec::new(); max_levels],
        }
    }

    /// Builds a snapshot from tables per level as replayed from the manifest: L0 is ordered by
    /// descending table id (ids grow with time), deeper levels by key.
    pub fn from_levels(mut levels: Vec<Vec<Arc<LevelTable>>>) -> Self {
        for (level, tables) in levels.iter_mut().enumerate() {
            if level == 0 {
                tables.sort_by_key(|t| std::cmp::Reverse(t.id()));
            } else {
                tables.sort_by(|a, b| a.smallest_user_key().cmp(b.smallest_user_key()));
            }
        }
        LevelsSnapshot { levels }
    }

    /// Number of levels.
    pub fn level_count(&self) -> usize {
        self.levels.len()
    }

    /// Tables of `level` (L0 newest first, others by key). Empty for a level out of range.
    pub fn tables(&self, level: usize) -> &[Arc<LevelTable>] {
        self.levels.get(level).map_or(&[], |v| v.as_slice())
    }

    /// Bytes in `level`.
    pub fn level_size_bytes(&self, level: usize) -> u64 {
        self.tables(level).iter().map(|t| t.size_bytes()).sum()
    }

    /// Bytes per level.
    pub fn level_sizes_bytes(&self) -> Vec<u64> {
        (0..self.levels.len())
            .map(|l| self.level_size_bytes(l))
            .collect()
    }

    /// Total bytes of all tables.
    pub fn total_size_bytes(&self) -> u64 {
        self.level_sizes_bytes().iter().sum()
    }

    /// In a sorted level, the table that may hold `user_key`.
    pub fn table_for_key(&self, level: usize, user_key: &[u8]) -> Option<&Arc<LevelTable>> {
        debug_assert!(level > 0);
        let tables = self.tables(level);
        let idx = tables.partition_point(|t| t.biggest_user_key() < user_key);
        tables
            .get(idx)
            .filter(|t| t.smallest_user_key() <= user_key)
    }

    /// In a sorted level, the index range of tables overlapping the user-key range `[lo, hi]`.
    pub fn overlapping_range(&self, level: usize, lo: &[u8], hi: &[u8]) -> std::ops::Range<usize> {
        let tables = self.tables(level);
        let start = tables.partition_point(|t| t.biggest_user_key() < lo);
        let end = tables.partition_point(|t| t.smallest_user_key() <= hi);
        start..end.max(start)
    }

    /// A new snapshot with `edit` applied. Returns `None` if the edit removes a table that is
    /// not there (a caller bug, reported as an error by the caller).
    pub fn apply(&self, edit: &LevelsEdit) -> Option<LevelsSnapshot> {
        let mut levels = self.levels.clone();
        for &(level, id) in &edit.removed {
            let tables = levels.get_mut(level)?;
            let pos = tables.iter().position(|t| t.id() == id)?;
            tables.remove(pos);
        }
        let mut new_l0 = Vec::new();
        for (level, table) in &edit.added {
            if *level == 0 {
                new_l0.push(table.clone());
            } else {
                levels.get_mut(*level)?.push(table.clone());
            }
        }
        if !new_l0.is_empty() {
            new_l0.sort_by_key(|t| std::cmp::Reverse(t.id()));
            new_l0.append(&mut levels[0]);
            levels[0] = new_l0;
        }
        for tables in levels.iter_mut().skip(1) {
            tables.sort_by(|a, b| a.smallest_user_key().cmp(b.smallest_user_key()));
        }
        let snap = LevelsSnapshot { levels };
        debug_assert!(snap.check().is_ok(), "{:?}", snap.check());
        Some(snap)
    }

    /// Checks the invariants of the module doc; `Err` names the first broken one.
    pub fn check(&self) -> Result<(), String> {
        for (level, tables) in self.levels.iter().enumerate().skip(1) {
            for w in tables.windows(2) {
                if w[0].biggest_user_key() >= w[1].smallest_user_key() {
                    return Err(format!(
                        "L{level}: tables {} and {} overlap",
                        w[0].id(),
                        w[1].id()
                    ));
                }
            }
        }
        Ok(())
    }
}

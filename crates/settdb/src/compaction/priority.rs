//! Which level to compact next: level targets, the base level, and scores. Pure functions of
//! the level sizes and options, so they are tested without an engine.
//!
//! The scheme is Badger's (after Pebble): the last level's size fixes the targets of the levels
//! above it (each `level_size_multiplier` smaller, never below `base_level_size`); L0 flushes
//! into the *base level*, the shallowest level whose target is at most `base_level_size`. A
//! level's score is its size over its target (L0: table count over `num_level_zero_tables`);
//! the adjusted score divides a level's score by the next level's, so a level that is over its
//! target because the level below is even more over target waits for that one first.
//!
//! One rule Badger lacks (its PR #2278 and regression #2327): the base level is never below a
//! non-empty level. Data flushed from L0 must land above every older version of its keys, or a
//! tombstone could be compacted away at the bottom while an older value still sits higher up,
//! and the deleted key would come back; it also keeps "the first version found, searching
//! levels top-down, is the newest", which the read path relies on.

/// Sizes of the levels and the options that shape targets.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelShape {
    /// Bytes in each level, L0 included (index = level).
    pub level_sizes_bytes: Vec<u64>,
    /// Bytes of each level already being compacted away (not counted in its score).
    pub compacting_bytes: Vec<u64>,
    /// Tables in L0.
    pub l0_tables: usize,
}

/// The options that shape targets (a copy of the relevant [`crate::Options`] fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetOptions {
    /// `base_level_size`.
    pub base_level_size: u64,
    /// `level_size_multiplier`.
    pub level_size_multiplier: u64,
    /// `base_table_size`.
    pub base_table_size: u64,
    /// `table_size_multiplier`.
    pub table_size_multiplier: u64,
    /// `mem_table_size`.
    pub mem_table_size: u64,
    /// `num_level_zero_tables`.
    pub num_level_zero_tables: usize,
}

impl TargetOptions {
    /// The relevant fields of `opt`.
    pub fn from_options(opt: &crate::Options) -> Self {
        TargetOptions {
            base_level_size: opt.base_level_size,
            level_size_multiplier: opt.level_size_multiplier,
            base_table_size: opt.base_table_size,
            table_size_multiplier: opt.table_size_multiplier,
            mem_table_size: opt.mem_table_size,
            num_level_zero_tables: opt.num_level_zero_tables,
        }
    }
}

/// Target sizes per level and the base level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// The level L0 compacts into (>= 1).
    pub base_level: usize,
    /// Target bytes per level (index 0 unused, 0).
    pub level_bytes: Vec<u64>,
    /// Target table size per level (L0: the memtable size).
    pub table_bytes: Vec<u64>,
}

/// A level that may be compacted, with its scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompactionPriority {
    /// The level to compact from.
    pub level: usize,
    /// Size over target (L0: tables over `num_level_zero_tables`).
    pub score: f64,
    /// Score divided by the next level's score (see the module doc).
    pub adjusted: f64,
}

/// Level targets and the base level for the current shape.
pub fn level_targets(shape: &LevelShape, opt: &TargetOptions) -> Targets {
    let n = shape.level_sizes_bytes.len();
    debug_assert!(n >= 2);
    let mut level_bytes = vec![0u64; n];
    let mut base_level = 0;
    let mut size = shape.level_sizes_bytes[n - 1];
    for level in (1..n).rev() {
        let target = size.max(opt.base_level_size);
        level_bytes[level] = target;
        if base_level == 0 && target <= opt.base_level_size {
            base_level = level;
        }
        size /= opt.level_size_multiplier.max(2);
    }
    // With a huge last level no target is small enough: L1 is the base.
    if base_level == 0 {
        base_level = 1;
    }
    // Move the base level down past empty levels (fewer rewrites while the tree is small),
    // and one more if the next level is empty enough to take L0 directly.
    while base_level + 1 < n - 1 && shape.level_sizes_bytes[base_level + 1] == 0 {
        base_level += 1;
    }
    if base_level + 1 < n
        && shape.level_sizes_bytes[base_level] == 0
        && shape.level_sizes_bytes[base_level + 1] < level_bytes[base_level + 1]
    {
        base_level += 1;
    }
    // Never below a non-empty level (see the module doc).
    if let Some(shallowest) = (1..n).find(|&l| shape.level_sizes_bytes[l] > 0) {
        base_level = base_level.min(shallowest);
    }
    let table_bytes = table_sizes(n, base_level, opt);
    Targets {
        base_level,
        level_bytes,
        table_bytes,
    }
}

fn table_sizes(n: usize, base_level: usize, opt: &TargetOptions) -> Vec<u64> {
    let mut out = vec![0u64; n];
    let mut size = opt.base_table_size;
    out[0] = opt.mem_table_size;
    for (level, slot) in out.iter_mut().enumerate().skip(1) {
        if level > base_level {
            size = size.saturating_mul(opt.table_size_multiplier);
        }
        *slot = size;
    }
    out
}

/// Levels worth compacting, most urgent first: every level but the last whose score is at
/// least 1, sorted by adjusted score descending.
pub fn pick_levels(
    shape: &LevelShape,
    targets: &Targets,
    opt: &TargetOptions,
) -> Vec<CompactionPriority> {
    let n = shape.level_sizes_bytes.len();
    let mut prios: Vec<CompactionPriority> = (0..n)
        .map(|level| {
            let score = if level == 0 {
                shape.l0_tables as f64 / opt.num_level_zero_tables.max(1) as f64
            } else {
                let live = shape.level_sizes_bytes[level]
                    .saturating_sub(shape.compacting_bytes.get(level).copied().unwrap_or(0));
                live as f64 / targets.level_bytes[level].max(1) as f64
            };
            CompactionPriority {
                level,
                score,
                adjusted: score,
            }
        })
        .collect();
    // Divide each level's score by the next one's, walking L0, base, base+1, ...
    const MIN_SCORE: f64 = 0.01;
    let mut prev = 0;
    for level in targets.base_level..n {
        if prios[prev].adjusted >= 1.0 {
            let divisor = if prios[level].score >= MIN_SCORE {
                prios[level].adjusted
            } else {
                MIN_SCORE
            };
            prios[prev].adjusted /= divisor;
        }
        prev = level;
    }
    let mut out: Vec<CompactionPriority> = prios[..n - 1]
        .iter()
        .copied()
        .filter(|p| p.score >= 1.0)
        .collect();
    out.sort_by(|a, b| b.adjusted.total_cmp(&a.adjusted));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn opt() -> TargetOptions {
        TargetOptions {
            base_level_size: 10 * MIB,
            level_size_multiplier: 10,
            base_table_size: 2 * MIB,
            table_size_multiplier: 2,
            mem_table_size: 64 * MIB,
            num_level_zero_tables: 5,
        }
    }

    fn shape(sizes: &[u64], l0_tables: usize) -> LevelShape {
        LevelShape {
            level_sizes_bytes: sizes.to_vec(),
            compacting_bytes: vec![0; sizes.len()],
            l0_tables,
        }
    }

    #[test]
    fn empty_tree_flushes_into_the_last_level() {
        // Proves that with no data the base level is the last level (fewest rewrites).
        let t = level_targets(&shape(&[0; 7], 0), &opt());
        assert_eq!(t.base_level, 6);
        assert_eq!(t.level_bytes[6], 10 * MIB);
        assert_eq!(t.table_bytes[0], 64 * MIB);
        assert_eq!(t.table_bytes[6], 2 * MIB);
    }

    #[test]
    fn targets_shrink_by_the_multiplier_up_the_tree() {
        // Proves targets = last level / 10^k floored at base_level_size; the base level is
        // where the target first reaches the floor (L3), moved to L4 because L3 is empty and L4
        // is under its target; table sizes double below the base level.
        let sizes = [0, 0, 0, 0, 12 * MIB, 150 * MIB, 10_000 * MIB];
        let t = level_targets(&shape(&sizes, 0), &opt());
        assert_eq!(t.level_bytes[6], 10_000 * MIB);
        assert_eq!(t.level_bytes[5], 1_000 * MIB);
        assert_eq!(t.level_bytes[4], 100 * MIB);
        assert_eq!(t.level_bytes[3], 10 * MIB);
        assert_eq!(t.base_level, 4);
        assert_eq!(t.table_bytes[3], 2 * MIB);
        assert_eq!(t.table_bytes[4], 2 * MIB);
        assert_eq!(t.table_bytes[5], 4 * MIB);
        assert_eq!(t.table_bytes[6], 8 * MIB);
    }

    #[test]
    fn base_level_never_below_a_non_empty_level() {
        // Regression for Badger #2278/#2327: data in L2 with a small last level must keep the
        // base level at or above L2, or L0 data would land below older versions.
        let sizes = [0, 0, 5 * MIB, 0, 0, 0, 3 * MIB];
        let t = level_targets(&shape(&sizes, 0), &opt());
        assert!(
            t.base_level <= 2,
            "base level {} is below non-empty L2",
            t.base_level
        );
    }

    #[test]
    fn base_skips_empty_levels_but_not_full_ones() {
        // Proves the base moves down past an empty level (L4 -> L5 here), but stops at the
        // level where the target reaches the floor when the level below holds data.
        let t = level_targets(&shape(&[0, 0, 0, 0, 0, 0, 200 * MIB], 0), &opt());
        assert_eq!(t.base_level, 5);
        let t = level_targets(&shape(&[0, 0, 0, 0, 0, 40 * MIB, 400 * MIB], 0), &opt());
        assert_eq!(t.base_level, 4);
    }

    #[test]
    fn l0_scores_by_table_count_and_last_level_never_picked() {
        // Proves L0's score is tables / num_level_zero_tables and the last level is excluded.
        let sizes = [0, 0, 0, 0, 0, 0, 500 * MIB];
        let s = shape(&sizes, 10);
        let t = level_targets(&s, &opt());
        let picks = pick_levels(&s, &t, &opt());
        assert_eq!(picks[0].level, 0);
        assert!((picks[0].score - 2.0).abs() < 1e-9);
        assert!(picks.iter().all(|p| p.level != 6));
    }

    #[test]
    fn adjusted_score_defers_to_a_more_urgent_lower_level() {
        // Proves a level over target waits when the level below is even more over target:
        // L5 at 2x, L6 ... L5's adjusted score drops below its raw score and L4 (at 3x, over a
        // 2x L5) ranks after a level whose ratio is larger.
        let sizes = [0, 0, 0, 0, 30 * MIB, 200 * MIB, 1_000 * MIB];
        let s = shape(&sizes, 0);
        let t = level_targets(&s, &opt());
        assert_eq!(t.base_level, 4);
        let picks = pick_levels(&s, &t, &opt());
        let l4 = picks.iter().find(|p| p.level == 4).unwrap();
        let l5 = picks.iter().find(|p| p.level == 5).unwrap();
        assert!((l4.score - 3.0).abs() < 1e-9 && (l5.score - 2.0).abs() < 1e-9);
        assert!(
            (l4.adjusted - 1.5).abs() < 1e-9,
            "L4 adjusted {}",
            l4.adjusted
        );
        assert_eq!(
            picks[0].level, 5,
            "L5 (adjusted 2) before L4 (adjusted 1.5)"
        );
    }

    #[test]
    fn bytes_being_compacted_do_not_count() {
        // Proves the score ignores bytes already being compacted away.
        let sizes = [0, 0, 0, 0, 0, 30 * MIB, 1_000 * MIB];
        let mut s = shape(&sizes, 0);
        s.compacting_bytes[5] = 25 * MIB;
        let t = level_targets(&s, &opt());
        let picks = pick_levels(&s, &t, &opt());
        assert!(picks.iter().all(|p| p.level != 5));
    }
}

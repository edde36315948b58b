//! Executing one compaction: merge the inputs, apply version retention, write output tables
//! split at the level's table size (all versions of a key in one table), then one manifest
//! edit that adds the outputs and removes the inputs.
//!
//! Durability (rules 5 and 11): the compaction begins in the MANIFEST (table ids reserved, its
//! inputs named) before any output exists; outputs are synced and their directory entries
//! synced before the manifest edit that adds them and ends the compaction; inputs are deleted
//! only after it (when the last snapshot drops them). A crash in between leaves outputs the
//! next open proves garbage (their inputs are all still listed) and removes.
//! Value-log records of dropped versions are counted in the discard statistics.
//!
//! Each output table records its *stale* bytes (keys and table values of entries a later
//! compaction will drop once the discard timestamp passes them: tombstones and expired values
//! kept, and old versions kept only because a snapshot may read them). Last-level
//! self-compaction ([`super::task::pick_lmax`]) picks tables by it.

use std::sync::Arc;

use super::retention::{Decision, Retention, RetentionPolicy};
use super::task::CompactionTask;
use crate::error::Result;
use crate::io::OpenMode;
use crate::key::user_key;
use crate::levels::{LevelTable, Levels, LevelsEdit, LevelsSnapshot};
use crate::manifest::{OpIds, OpSource};
use crate::table::{
    ConcatIterator, KvIterator, MergeIterator, TableBuilder, TableBuilderOptions, TableIterator,
};
use crate::value::{is_expired, meta, ValueRef};
use crate::vlog::DiscardStats;

/// What a compaction did.
#[derive(Debug, Default)]
pub struct CompactionOutcome {
    /// Entries read.
    pub entries_in: u64,
    /// Entries written.
    pub entries_out: u64,
    /// Tables written.
    pub tables_out: usize,
    /// Bytes of the tables written.
    pub bytes_out: u64,
    /// Dead value-log bytes per file found while dropping versions.
    pub discard: DiscardStats,
}

/// Runs `task` against `snapshot` (taken when it was picked) and installs the result.
pub fn run_compaction(
    task: &CompactionTask,
    snapshot: &LevelsSnapshot,
    levels: &Levels,
    policy: RetentionPolicy,
    builder_opts: TableBuilderOptions,
) -> Result<CompactionOutcome> {
    let mut ids = levels.begin_op(expected_outputs(task), OpSource::Tables(input_ids(task)))?;
    let mut merge = merge_inputs(task);
    merge.seek_to_first()?;
    let mut retention = Retention::new(policy);
    let mut deeper = |uk: &[u8]| deeper_may_hold(snapshot, task.to_level, uk);
    let mut outcome = CompactionOutcome::default();
    let mut outputs: Vec<Arc<LevelTable>> = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let mut stale = StaleCounter::new(policy);
    let opts = TableBuilderOptions {
        target_table_size_bytes: task.target_table_bytes,
        ..builder_opts
    };
    while merge.valid() {
        outcome.entries_in += 1;
        let (key, value) = (merge.key(), merge.value());
        match retention.decide(key, value, &mut deeper) {
            Decision::Keep => {
                if builder
                    .as_ref()
                    .is_some_and(|(_, b)| b.should_split_before(key))
                {
                    if let Some((id, b)) = builder.take() {
                        outputs.push(finish_table(levels, id, b, stale.take())?);
                    }
                }
                if builder.is_none() {
                    builder = Some(new_builder(levels, &mut ids, opts)?);
                }
                if let Some((_, b)) = builder.as_mut() {
                    b.add(key, value)?;
                }
                stale.kept(key, value);
                outcome.entries_out += 1;
            }
            Decision::Drop => {
                if let Some(vp) = value.value_pointer() {
                    outcome.discard.add(vp.file_id, u64::from(vp.len));
                }
            }
        }
        merge.next()?;
    }
    if let Some((id, b)) = builder.take() {
        outputs.push(finish_table(levels, id, b, stale.take())?);
    }
    if !outputs.is_empty() {
        levels.storage().sync_dir(levels.dir())?;
    }
    outcome.tables_out = outputs.len();
    outcome.bytes_out = outputs.iter().map(|t| t.size_bytes()).sum();
    levels.apply_edit(&edit_for(task, outputs, ids.op_id()))?;
    Ok(outcome)
}

/// Rewrites `tables` (each at its level) without the entries whose user key `drop`
/// matches, in one MANIFEST operation (`Db::drop_prefix`): each table's outputs go to its
/// level, inside its key range, so level order holds; a table left with nothing is removed.
/// Every other version is kept as it is. Returns the value-log bytes of the dropped entries.
/// REQUIRES: no compaction runs and L0 is empty (a rewritten L0 table would take a newer
/// place among the L0 tables than its data has).
pub fn rewrite_without(
    tables: &[(usize, Arc<LevelTable>)],
    drop: &dyn Fn(&[u8]) -> bool,
    levels: &Levels,
    policy: RetentionPolicy,
    builder_opts: TableBuilderOptions,
) -> Result<DiscardStats> {
    let inputs: Vec<u64> = tables.iter().map(|(_, t)| t.id()).collect();
    let mut ids = levels.begin_op(inputs.len() as u64, OpSource::Tables(inputs))?;
    let mut discard = DiscardStats::new();
    let mut added: Vec<(usize, Arc<LevelTable>)> = Vec::new();
    for (level, table) in tables {
        let mut it = TableIterator::without_filling(table.table().clone());
        it.seek_to_first()?;
        let mut builder: Option<(u64, TableBuilder)> = None;
        let mut stale = StaleCounter::new(policy);
        while it.valid() {
            let (key, value) = (it.key(), it.value());
            if drop(user_key(key)) {
                if let Some(vp) = value.value_pointer() {
                    discard.add(vp.file_id, u64::from(vp.len));
                }
            } else {
                if builder
                    .as_ref()
                    .is_some_and(|(_, b)| b.should_split_before(key))
                {
                    if let Some((id, b)) = builder.take() {
                        added.push((*level, finish_table(levels, id, b, stale.take())?));
                    }
                }
                if builder.is_none() {
                    builder = Some(new_builder(levels, &mut ids, builder_opts)?);
                }
                if let Some((_, b)) = builder.as_mut() {
                    b.add(key, value)?;
                }
                stale.kept(key, value);
            }
            it.next()?;
        }
        if let Some((id, b)) = builder.take() {
            added.push((*level, finish_table(levels, id, b, stale.take())?));
        }
    }
    if !added.is_empty() {
        levels.storage().sync_dir(levels.dir())?;
    }
    levels.apply_edit(&LevelsEdit {
        added,
        removed: tables.iter().map(|(l, t)| (*l, t.id())).collect(),
        end_op: Some(ids.op_id()),
        delete_wal: None,
    })?;
    Ok(discard)
}

/// Sums the stale bytes of the entries written to the current output table (module doc).
#[derive(Debug)]
struct StaleCounter {
    policy: RetentionPolicy,
    /// User key of the previous entry kept (its newer versions came before it).
    prev_user_key: Vec<u8>,
    /// Newer versions of that key kept, and whether one of them ends the key.
    newer_kept: u32,
    newer_ends: bool,
    bytes: u64,
}

impl StaleCounter {
    fn new(policy: RetentionPolicy) -> Self {
        StaleCounter {
            policy,
            prev_user_key: Vec::new(),
            newer_kept: 0,
            newer_ends: false,
            bytes: 0,
        }
    }

    /// Counts `key`, just written, if a compaction once the discard timestamp has passed
    /// every version will drop it: a tombstone or an expired value (nothing deeper holds the
    /// key by then, or it is compacted again), or a version below a newer tombstone, or
    /// below `num_versions_to_keep` newer versions. The versions that will remain (the
    /// newest `num_versions_to_keep` live ones) are not stale.
    fn kept(&mut self, key: &[u8], value: ValueRef<'_>) {
        let uk = user_key(key);
        if self.prev_user_key != uk {
            self.prev_user_key.clear();
            self.prev_user_key.extend_from_slice(uk);
            self.newer_kept = 0;
            self.newer_ends = false;
        }
        let ends_key =
            value.meta & meta::DELETE != 0 || is_expired(value.expires_at, self.policy.now_secs);
        let shadowed_out =
            self.newer_ends || self.newer_kept >= self.policy.num_versions_to_keep.max(1);
        if ends_key || shadowed_out {
            self.bytes += (key.len() + value.encoded_len()) as u64;
        }
        self.newer_kept = self.newer_kept.saturating_add(1);
        self.newer_ends |= ends_key;
    }

    /// The bytes counted since the last call (the table just finished).
    fn take(&mut self) -> u64 {
        std::mem::take(&mut self.bytes)
    }
}

fn input_ids(task: &CompactionTask) -> Vec<u64> {
    task.top
        .iter()
        .chain(&task.bottom)
        .map(|t| t.id())
        .collect()
}

/// Table ids to reserve up front: the inputs' bytes over the target table size, plus one (more
/// are reserved if the outputs need them).
fn expected_outputs(task: &CompactionTask) -> u64 {
    let bytes: u64 = task
        .top
        .iter()
        .chain(&task.bottom)
        .map(|t| t.table().size_bytes())
        .sum();
    bytes / task.target_table_bytes.max(1) + 1
}

fn merge_inputs(task: &CompactionTask) -> MergeIterator {
    let mut sources: Vec<Box<dyn KvIterator>> = Vec::new();
    if task.from_level == 0 {
        // Newest first, so equal internal keys resolve to the newest table.
        for t in &task.top {
            sources.push(Box::new(TableIterator::without_filling(t.table().clone())));
        }
    } else {
        sources.push(Box::new(ConcatIterator::without_filling(
            task.top.iter().map(|t| t.table().clone()).collect(),
        )));
    }
    if !task.bottom.is_empty() {
        sources.push(Box::new(ConcatIterator::without_filling(
            task.bottom.iter().map(|t| t.table().clone()).collect(),
        )));
    }
    MergeIterator::new(sources)
}

/// Whether a level below `to_level` may hold a version of `uk` (range, then bloom filter).
fn deeper_may_hold(snapshot: &LevelsSnapshot, to_level: usize, uk: &[u8]) -> bool {
    (to_level + 1..snapshot.level_count()).any(|l| {
        snapshot
            .table_for_key(l, uk)
            .is_some_and(|t| t.table().may_contain(uk))
    })
}

fn new_builder(
    levels: &Levels,
    ids: &mut OpIds,
    opts: TableBuilderOptions,
) -> Result<(u64, TableBuilder)> {
    let id = levels.new_table_id(ids)?;
    let file = levels
        .storage()
        .open(&levels.table_path(id), OpenMode::CreateNew)?;
    let cipher = levels.new_table_cipher()?;
    Ok((id, TableBuilder::new(file, opts)?.with_cipher(cipher)))
}

fn finish_table(
    levels: &Levels,
    id: u64,
    mut builder: TableBuilder,
    stale_bytes: u64,
) -> Result<Arc<LevelTable>> {
    builder.set_stale_data_bytes(stale_bytes);
    builder.finish()?;
    levels.open_new_table(id)
}

fn edit_for(task: &CompactionTask, outputs: Vec<Arc<LevelTable>>, op_id: u64) -> LevelsEdit {
    let mut removed: Vec<(usize, u64)> =
        task.top.iter().map(|t| (task.from_level, t.id())).collect();
    removed.extend(task.bottom.iter().map(|t| (task.to_level, t.id())));
    LevelsEdit {
        added: outputs.into_iter().map(|t| (task.to_level, t)).collect(),
        removed,
        end_op: Some(op_id),
        delete_wal: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::key_with_version;

    fn value(meta_bits: u8, expires_at: u64) -> ValueRef<'static> {
        ValueRef {
            meta: meta_bits,
            user_meta: 0,
            expires_at,
            value: b"vvvv",
        }
    }

    #[test]
    fn stale_bytes_are_what_a_later_compaction_drops() {
        // Proves the stale rule entry by entry (num_versions_to_keep 2): versions within the
        // newest two live ones are not stale, the third is; a tombstone, the versions below
        // it and an expired value are; a lone live version is not; take() resets per table.
        let policy = RetentionPolicy {
            discard_ts: 10,
            num_versions_to_keep: 2,
            now_secs: 100,
        };
        let mut c = StaleCounter::new(policy);
        let entry_len = |k: &[u8], v: ValueRef<'_>| (k.len() + v.encoded_len()) as u64;
        let mut want = 0;
        for (uk, ver, v, stale) in [
            (&b"a"[..], 15, value(0, 0), false),
            (b"a", 12, value(0, 0), false),
            (b"a", 5, value(0, 0), true),
            (b"b", 20, value(meta::DELETE, 0), true),
            (b"b", 8, value(0, 0), true),
            (b"c", 9, value(0, 50), true),
            (b"d", 3, value(0, 0), false),
            (b"e", 4, value(0, 500), false),
        ] {
            let key = key_with_version(uk, ver);
            c.kept(&key, v);
            if stale {
                want += entry_len(&key, v);
            }
        }
        assert_eq!(c.take(), want);
        assert_eq!(c.take(), 0);
    }
}

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

use std::sync::Arc;

use super::retention::{Decision, Retention, RetentionPolicy};
use super::task::CompactionTask;
use crate::error::Result;
use crate::io::OpenMode;
use crate::levels::{LevelTable, Levels, LevelsEdit, LevelsSnapshot};
use crate::manifest::{OpIds, OpSource};
use crate::table::{
    ConcatIterator, KvIterator, MergeIterator, TableBuilder, TableBuilderOptions, TableIterator,
};
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
                        outputs.push(finish_table(levels, id, b)?);
                    }
                }
                if builder.is_none() {
                    builder = Some(new_builder(levels, &mut ids, opts)?);
                }
                if let Some((_, b)) = builder.as_mut() {
                    b.add(key, value)?;
                }
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
        outputs.push(finish_table(levels, id, b)?);
    }
    if !outputs.is_empty() {
        levels.storage().sync_dir(levels.dir())?;
    }
    outcome.tables_out = outputs.len();
    levels.apply_edit(&edit_for(task, outputs, ids.op_id()))?;
    Ok(outcome)
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
            sources.push(Box::new(TableIterator::new(t.table().clone())));
        }
    } else {
        sources.push(Box::new(ConcatIterator::new(
            task.top.iter().map(|t| t.table().clone()).collect(),
        )));
    }
    if !task.bottom.is_empty() {
        sources.push(Box::new(ConcatIterator::new(
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
    Ok((id, TableBuilder::new(file, opts)?))
}

fn finish_table(levels: &Levels, id: u64, builder: TableBuilder) -> Result<Arc<LevelTable>> {
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

//! The compactor: picks the most urgent compaction, runs it, and loops on background threads.
//!
//! Every step is also callable directly ([`Compactor::run_once`]) so tests drive compaction
//! deterministically. `num_compactors` threads run [`Compactor::run_loop`]; the in-flight
//! reservations keep their key ranges apart.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::priority::{level_targets, pick_levels, LevelShape, TargetOptions, Targets};
use super::retention::RetentionPolicy;
use super::runner::{rewrite_without, run_compaction, CompactionOutcome};
use super::task::{pick_l0, pick_level, pick_lmax, CompactionTask, InFlight};
use crate::error::Result;
use crate::levels::{LevelTable, Levels, LevelsSnapshot};
use crate::options::Options;
use crate::table::TableBuilderOptions;
use crate::vlog::DiscardTracker;
use crate::write::Poison;

/// How long an idle compactor sleeps before looking again (it also wakes on every edit).
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// Runs compactions for one database.
pub struct Compactor {
    levels: Arc<Levels>,
    target_opts: TargetOptions,
    builder_opts: TableBuilderOptions,
    num_versions_to_keep: u32,
    /// Rewrite last-level tables with stale data when nothing is more urgent.
    lmax_compaction: bool,
    /// GUARDED: ranges and tables of running compactions.
    in_flight: Mutex<InFlight>,
    /// Dead value-log bytes per file, added after each compaction that drops some.
    discards: Arc<DiscardTracker>,
    /// Holders of a [`CompactionPause`]: no compaction starts while above zero.
    paused: AtomicUsize,
}

/// While held, no compaction starts ([`Compactor::pause`]).
#[derive(Debug)]
pub struct CompactionPause<'a> {
    compactor: &'a Compactor,
}

impl Drop for CompactionPause<'_> {
    fn drop(&mut self) {
        self.compactor.paused.fetch_sub(1, Ordering::AcqRel);
        self.compactor.levels.notify_all();
    }
}

impl std::fmt::Debug for Compactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compactor")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

/// The shape scores are computed from. REQUIRES: the in-flight lock (passed in).
fn shape_of(snapshot: &LevelsSnapshot, in_flight: &InFlight) -> LevelShape {
    LevelShape {
        level_sizes_bytes: snapshot.level_sizes_bytes(),
        compacting_bytes: in_flight.bytes_by_level().to_vec(),
        l0_tables: snapshot.tables(0).len(),
    }
}

impl Compactor {
    /// A compactor for `levels`, adding the value-log bytes it drops to `discards`.
    pub fn new(opts: &Options, levels: Arc<Levels>, discards: Arc<DiscardTracker>) -> Self {
        Compactor {
            target_opts: TargetOptions::from_options(opts),
            builder_opts: TableBuilderOptions::from_options(opts, opts.base_table_size),
            num_versions_to_keep: opts.num_versions_to_keep,
            lmax_compaction: opts.lmax_compaction,
            in_flight: Mutex::new(InFlight::new(opts.max_levels)),
            discards,
            levels,
            paused: AtomicUsize::new(0),
        }
    }

    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire) > 0
    }

    /// Stops compactions from starting and waits until the running ones have ended; they
    /// start again when the returned guard drops (`Db::drop_all`, `Db::drop_prefix`).
    pub fn pause(&self) -> CompactionPause<'_> {
        // Raised under the in-flight lock, so no pick that began before it reserves after.
        {
            let _in_flight = self.lock_in_flight();
            self.paused.fetch_add(1, Ordering::AcqRel);
        }
        while !self.lock_in_flight().is_empty() {
            self.levels.wait_for_change(Duration::from_millis(5));
        }
        CompactionPause { compactor: self }
    }

    /// Rewrites `tables` without the entries whose user key `drop` matches, in one MANIFEST
    /// operation, and counts the value-log bytes dropped (`Db::drop_prefix`). REQUIRES: a
    /// [`CompactionPause`] held by the caller and L0 empty.
    pub fn drop_keys(
        &self,
        _pause: &CompactionPause<'_>,
        tables: &[(usize, Arc<LevelTable>)],
        drop: &dyn Fn(&[u8]) -> bool,
        discard_ts: u64,
    ) -> Result<()> {
        let policy = RetentionPolicy {
            discard_ts,
            num_versions_to_keep: self.num_versions_to_keep,
            now_secs: crate::clock::now_secs(),
        };
        let dropped = rewrite_without(tables, drop, &self.levels, policy, self.builder_opts)?;
        self.discards.add(&dropped)
    }

    fn lock_in_flight(&self) -> MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks and reserves the most urgent compaction, if any level needs one.
    ///
    /// The snapshot is loaded while holding the in-flight lock: a compaction applies its edit
    /// before it releases its tables, so under the lock every table of the snapshot is either
    /// still live or still reserved (never picked twice, never picked after removal).
    fn pick(&self) -> Option<(CompactionTask, Arc<LevelsSnapshot>)> {
        let mut in_flight = self.lock_in_flight();
        if self.is_paused() {
            return None;
        }
        let snapshot = self.levels.snapshot();
        let shape = shape_of(&snapshot, &in_flight);
        let targets = level_targets(&shape, &self.target_opts);
        for p in pick_levels(&shape, &targets, &self.target_opts) {
            if p.level != 0 && p.adjusted < 1.0 {
                continue;
            }
            let task = if p.level == 0 {
                pick_l0(
                    &snapshot,
                    targets.base_level,
                    targets.table_bytes[targets.base_level],
                    &in_flight,
                )
            } else {
                pick_level(
                    &snapshot,
                    p.level,
                    targets.table_bytes[p.level + 1],
                    &in_flight,
                )
            };
            if let Some(task) = task {
                if in_flight.try_reserve(&task) {
                    return Some((task, snapshot));
                }
            }
        }
        None
    }

    /// Reserves a task made by `make` from the current snapshot (under the in-flight lock,
    /// as in [`Compactor::pick`]).
    fn reserve_with(
        &self,
        make: impl FnOnce(&LevelsSnapshot, &Targets, &InFlight) -> Option<CompactionTask>,
    ) -> Option<(CompactionTask, Arc<LevelsSnapshot>)> {
        let mut in_flight = self.lock_in_flight();
        if self.is_paused() {
            return None;
        }
        let snapshot = self.levels.snapshot();
        let targets = level_targets(&shape_of(&snapshot, &in_flight), &self.target_opts);
        let task = make(&snapshot, &targets, &in_flight)?;
        in_flight.try_reserve(&task).then_some((task, snapshot))
    }

    /// Runs one compaction if one is needed. `Ok(false)`: nothing to do. With
    /// `lmax_compaction`, a last-level table with stale data is rewritten when no level
    /// needs compacting.
    pub fn run_once(&self, discard_ts: u64) -> Result<bool> {
        let picked = self.pick().or_else(|| {
            if !self.lmax_compaction {
                return None;
            }
            self.reserve_with(|s, t, f| {
                let last = s.level_count().checked_sub(1)?;
                pick_lmax(s, discard_ts, t.table_bytes[last], f)
            })
        });
        match picked {
            Some((task, snapshot)) => self.run_task(&task, &snapshot, discard_ts).map(|_| true),
            None => Ok(false),
        }
    }

    fn run_task(
        &self,
        task: &CompactionTask,
        snapshot: &LevelsSnapshot,
        discard_ts: u64,
    ) -> Result<CompactionOutcome> {
        let policy = RetentionPolicy {
            discard_ts,
            num_versions_to_keep: self.num_versions_to_keep,
            now_secs: crate::clock::now_secs(),
        };
        let started = std::time::Instant::now();
        let result = run_compaction(task, snapshot, &self.levels, policy, self.builder_opts);
        self.lock_in_flight().release(task);
        let outcome = result?;
        self.discards.add(&outcome.discard)?;
        record_compaction(&self.levels, task, &outcome, started.elapsed());
        Ok(outcome)
    }

    /// Compacts L0 into the base level until L0 is empty (for `compact_l0_on_close`).
    pub fn compact_l0_fully(&self, discard_ts: u64) -> Result<()> {
        while !self.levels.snapshot().tables(0).is_empty() {
            let picked = self
                .reserve_with(|s, t, f| pick_l0(s, t.base_level, t.table_bytes[t.base_level], f));
            match picked {
                Some((task, snapshot)) => {
                    self.run_task(&task, &snapshot, discard_ts)?;
                }
                None => self.levels.wait_for_change(IDLE_WAIT),
            }
        }
        Ok(())
    }

    /// Moves every table down to the last level, regardless of scores (Badger's `Flatten`):
    /// L0 first, then each level into the next. Tombstones are dropped on the way as soon as
    /// nothing below can hold their keys. Background compactors may run alongside: the
    /// in-flight reservations keep their key ranges apart.
    pub fn flatten(&self, discard_ts: u64) -> Result<()> {
        self.compact_l0_fully(discard_ts)?;
        let last = self.levels.snapshot().level_count() - 1;
        for level in 1..last {
            while !self.levels.snapshot().tables(level).is_empty() {
                match self.reserve_with(|s, t, f| pick_level(s, level, t.table_bytes[level + 1], f))
                {
                    Some((task, snapshot)) => {
                        self.run_task(&task, &snapshot, discard_ts)?;
                    }
                    None => self.levels.wait_for_change(IDLE_WAIT),
                }
            }
        }
        Ok(())
    }

    /// A compactor thread's loop: run compactions until `closing`; an error poisons the
    /// database (rule 8) and ends the loop.
    pub fn run_loop(&self, closing: &AtomicBool, discard_ts: &dyn Fn() -> u64, poison: &Poison) {
        while !closing.load(Ordering::Acquire) && poison.check().is_ok() {
            match self.run_once(discard_ts()) {
                Ok(true) => {}
                Ok(false) => self.levels.wait_for_change(IDLE_WAIT),
                Err(e) => {
                    tracing::error!(error = %e, "compaction failed");
                    poison.set(&e);
                    return;
                }
            }
        }
    }
}

/// Counts a finished compaction and logs its summary.
fn record_compaction(
    levels: &Levels,
    task: &CompactionTask,
    outcome: &CompactionOutcome,
    elapsed: Duration,
) {
    let tables_in = task.top.len() + task.bottom.len();
    let bytes_in: u64 = task
        .top
        .iter()
        .chain(&task.bottom)
        .map(|t| t.size_bytes())
        .sum();
    let stats = levels.stats();
    stats.record_compaction(task.from_level, bytes_in, outcome.bytes_out, elapsed);
    tracing::info!(
        from_level = task.from_level,
        to_level = task.to_level,
        tables_in,
        tables_out = outcome.tables_out,
        bytes_in,
        bytes_out = outcome.bytes_out,
        entries_in = outcome.entries_in,
        entries_out = outcome.entries_out,
        duration_ms = elapsed.as_millis() as u64,
        "compaction done"
    );
}

//! Leveled compaction: what to compact (`priority`, `task`), which versions survive
//! (`retention`), running one (`runner`) and the background compactor (`compactor`).

mod compactor;
pub mod priority;
pub mod retention;
mod runner;
mod task;

pub use compactor::{CompactionPause, Compactor};
pub use priority::{
    level_targets, pick_levels, CompactionPriority, LevelShape, TargetOptions, Targets,
};
pub use retention::{Decision, Retention, RetentionPolicy};
pub use runner::{run_compaction, CompactionOutcome};
pub use task::{pick_l0, pick_level, CompactionTask, InFlight, KeyRange};

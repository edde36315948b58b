//! Leveled compaction: what to compact (`priority`), which versions survive (`retention`),
//! and (with the engine) how it runs.

pub mod priority;
pub mod retention;

pub use priority::{
    level_targets, pick_levels, CompactionPriority, LevelShape, TargetOptions, Targets,
};
pub use retention::{Decision, Retention, RetentionPolicy};

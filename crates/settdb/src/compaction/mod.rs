//! Leveled compaction: what to compact (`priority`), and (with the engine) how.

pub mod priority;

pub use priority::{
    level_targets, pick_levels, CompactionPriority, LevelShape, TargetOptions, Targets,
};

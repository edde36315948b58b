//! The value log: large values kept apart from the LSM tree (the WiscKey idea).

mod discard_stats;

pub use discard_stats::{DiscardStats, DISCARD_FILE_NAME};

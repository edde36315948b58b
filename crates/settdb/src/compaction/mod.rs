//! Leveled compaction: what to compact (`priority`, `task`), which versions survive
//! (`retention`), running one (`runner`) and the background compactor (`compactor`).

mod compactor;
pub mod priority;
pub mod retention;
mod runner;
mod task;

#[cfg_attr(not(test), allow(unused_imports))]
pub use compactor::{CompactionPause, Compactor};
#[cfg_attr(not(test), allow(unused_imports))]
pub use retention::{Decision, Retention, RetentionPolicy};

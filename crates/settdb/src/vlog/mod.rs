//! The value log: large values kept apart from the LSM tree (the WiscKey idea).
//!
//! Values of `value_threshold` bytes or more are appended to value-log files `NNNNNN.vlog`
//! (log files of kind `ValueLog`, docs/format/log.md) and the LSM tree stores a 12-byte
//! [`crate::value::ValuePointer`] in their place. Directory rules: docs/format/vlog.md.
//!
//! - [`ValueLog`]: recovery, appends (one batch per write group, rotation between groups),
//!   sync, reads by pointer, and the hooks of value-log GC (`iterate_file`, `retire_file`), and [`VlogPin`]: the files one read snapshot keeps.
//! - [`VlogRecovery`]: what recovery found, per file its valid end.
//! - [`DiscardStats`]: dead bytes per file, persisted in `DISCARD`; [`DiscardTracker`]: the
//!   component compaction and GC share.

#[cfg(test)]
mod crash_tests;
mod discard_stats;
mod discard_tracker;
mod file_name;
mod recent;
mod recovery;
#[cfg(test)]
mod testing;
mod value_log;
mod vlog_file;
mod vlog_writer;

#[cfg_attr(not(test), allow(unused_imports))]
pub use discard_stats::{DiscardStats, DISCARD_FILE_NAME};
#[cfg_attr(not(test), allow(unused_imports))]
pub use discard_tracker::DiscardTracker;
#[cfg_attr(not(test), allow(unused_imports))]
pub use file_name::{parse_vlog_file_name, vlog_file_name};
#[cfg_attr(not(test), allow(unused_imports))]
pub use recovery::{FileCheck, VlogRecovery};
pub(crate) use value_log::{FilesNow, VlogPin};
#[cfg_attr(not(test), allow(unused_imports))]
pub use value_log::{ValueLog, ValueLogOptions};

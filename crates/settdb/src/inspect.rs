//! Read-only access to SettDB's files and in-memory structure, for tools (`settdb info`,
//! `verify`, tests) rather than for applications: the levels and tables of a
//! [`crate::Db::levels`] snapshot, file names, and the MANIFEST's replay. Everything else of
//! the engine is private to the crate; this module is the one window into it, kept small and
//! documented. Formats are in `docs/format/`.

/// Table file names: `NNNNNN.sst`.
pub use crate::levels::{parse_table_file_name, table_file_name};
/// The tables of every level ([`crate::Db::levels`]) and one table as a level holds it.
pub use crate::levels::{LevelTable, LevelsSnapshot};
/// The log format of WALs and value-log files: file kinds, the header length, replay, and
/// the length of the seal batch a rotated or closed file ends in.
pub use crate::log::{replay as replay_log, seal_batch_len, LogKind, FILE_HEADER_LEN};
/// The MANIFEST: its file names, its replay (state, valid length, dropped tail), and opening
/// it as the engine does.
pub use crate::manifest::{
    replay_file, ManifestFile, ManifestOptions, Replayed, MANIFEST_FILE_NAME,
    MANIFEST_REWRITE_FILE_NAME,
};
/// An opened table: sizes, counts, key range, versions, stale bytes, checksums.
pub use crate::table::Table;
/// Value-log file names (`NNNNNN.vlog`) and the discard statistics file.
pub use crate::vlog::{vlog_file_name, DiscardStats, DISCARD_FILE_NAME};

/// Engine internals the crate's benchmarks measure directly (memtable and table). Not an API:
/// only with the `testing` feature.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod internals {
    pub use crate::memtable::{MemMap, MemValue};
    pub use crate::table::{TableBuilder, TableBuilderOptions, TableOpenOptions};
}

//! The levels of the LSM tree: tables per level, snapshots of them, and the controller that
//! edits them through the MANIFEST.

mod level_table;
#[allow(clippy::module_inception)]
mod levels;
mod levels_snapshot;

pub use level_table::LevelTable;
pub use levels::{check_table_key, parse_table_file_name, table_file_name, Levels};
pub use levels_snapshot::{LevelsEdit, LevelsSnapshot};

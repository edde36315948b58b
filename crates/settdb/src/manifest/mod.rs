//! The MANIFEST: the durable log of the database's files (which tables exist, at which level;
//! which flushes and compactions are under way; which WALs and value-log files exist; the next
//! ids), and the state replaying it gives.
//!
//! - [`ManifestChange`]: one edit; a change set (a slice of them) is atomic.
//! - [`Manifest`]: the replayed state (live tables, ids per level, open operations, live
//!   WALs and value-log files, next ids, edit counters), and each table id's [`TableFate`].
//! - [`replay`]: bytes to state, with torn-tail rules (DESIGN rule 4).
//! - [`ManifestFile`]: the open file: durable appends, rewrites, poisoning (rules 1, 2, 7, 8).
//! - [`SharedManifest`]: the file behind a mutex, shared by every component that creates or
//!   deletes files; reserves table ids for flushes and compactions.
//!
//! Format page: docs/format/manifest.md.

mod change;
mod format;
mod reader;
mod shared;
mod state;
#[cfg(test)]
mod test_support;
mod writer;

#[cfg_attr(not(test), allow(unused_imports))]
pub use change::{ManifestChange, OpSource};
#[cfg_attr(not(test), allow(unused_imports))]
pub use format::{MANIFEST_FILE_NAME, MANIFEST_REWRITE_FILE_NAME};
#[cfg_attr(not(test), allow(unused_imports))]
pub use reader::{replay, replay_file, Replayed};
#[cfg_attr(not(test), allow(unused_imports))]
pub use shared::{OpIds, SharedManifest};
#[cfg_attr(not(test), allow(unused_imports))]
pub use state::{Manifest, TableFate};
#[cfg_attr(not(test), allow(unused_imports))]
pub use writer::{ManifestFile, ManifestOptions};

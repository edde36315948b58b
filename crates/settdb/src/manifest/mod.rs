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

pub use change::{
    change_set_encoded_len, decode_change_set, encode_change_set, ManifestChange, OpSource,
    MIN_CHANGE_LEN,
};
pub use format::{
    decode_file_header, decode_record_header, encode_file_header, encode_record, FileHeader,
    FileHeaderError, RecordHeader, FILE_HEADER_LEN, MANIFEST_FILE_NAME, MANIFEST_FORMAT_VERSION,
    MANIFEST_MAGIC, MANIFEST_REWRITE_FILE_NAME, MAX_RECORD_BODY_LEN, MIN_RECORD_BODY_LEN,
    RECORD_HEADER_LEN,
};
pub use reader::{replay, replay_file, Replayed};
pub use shared::{OpIds, SharedManifest};
pub use state::{InvalidChange, Manifest, OpenOp, TableFate, TableManifest};
pub use writer::{
    ManifestFile, ManifestOptions, DEFAULT_DELETIONS_RATIO, DEFAULT_DELETIONS_REWRITE_THRESHOLD,
    SNAPSHOT_RECORD_BODY_BYTES,
};

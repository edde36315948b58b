//! The MANIFEST: the durable log of table edits (which tables exist, at which level), and the
//! state replaying it gives.
//!
//! - [`ManifestChange`]: one create or delete; a change set (a slice of them) is atomic.
//! - [`Manifest`]: the replayed state (live tables, ids per level, edit counters).
//! - [`replay`]: bytes to state, with torn-tail rules (DESIGN rule 4).
//! - [`ManifestFile`]: the open file: durable appends, rewrites, poisoning (rules 1, 2, 7, 8).
//!
//! Format page: docs/format/manifest.md.

mod change;
mod format;
mod reader;
mod state;
#[cfg(test)]
mod test_support;
mod writer;

pub use change::{
    change_set_encoded_len, decode_change_set, encode_change_set, ManifestChange, MAX_CHANGE_LEN,
    MIN_CHANGE_LEN,
};
pub use format::{
    decode_file_header, decode_record_header, encode_file_header, encode_record, FileHeader,
    FileHeaderError, RecordHeader, FILE_HEADER_LEN, MANIFEST_FILE_NAME, MANIFEST_FORMAT_VERSION,
    MANIFEST_MAGIC, MANIFEST_REWRITE_FILE_NAME, MAX_RECORD_BODY_LEN, MIN_RECORD_BODY_LEN,
    RECORD_HEADER_LEN,
};
pub use reader::{replay, replay_file, Replayed};
pub use state::{InvalidChange, Manifest, TableManifest};
pub use writer::{
    ManifestFile, ManifestOptions, DEFAULT_DELETIONS_RATIO, DEFAULT_DELETIONS_REWRITE_THRESHOLD,
    SNAPSHOT_CHANGES_PER_RECORD,
};

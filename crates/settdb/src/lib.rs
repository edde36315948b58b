//! SettDB: an embeddable, persistent, transactional key-value store implementing Badger's
//! design (an LSM tree with a separate value log, MVCC with serializable snapshot isolation,
//! leveled compaction) in Rust.
//!
//! Layers (see ARCHITECTURE.md); a module imports only from its own layer or lower:
//! - 0 vocabulary and I/O: [`error`], [`options`], [`key`], [`value`], [`coding`], [`checksum`],
//!   [`io`];
//! - 1 on-disk structures: [`log`], [`table`], [`manifest`], each with its page in
//!   docs/format/.

#![deny(unsafe_code)]
#![warn(missing_docs)]

/// Generates a builder method `$name(self, v) -> Self` setting `self.$field`, for the option
/// structs (`Options`, `IteratorOptions`). Declared before the modules so they all see it.
macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $field:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, v: $ty) -> Self {
            self.$field = v;
            self
        }
    };
}

pub mod backup;
mod batch;
mod bulk_drop;
pub(crate) mod checksum;
mod clock;
pub(crate) mod coding;
mod commit;
pub(crate) mod compaction;
pub(crate) mod crypto;
mod db;
mod entry;
pub mod error;
pub(crate) mod export;
mod flush;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod inspect;
pub(crate) mod inventory;
pub mod io;
pub mod key;
pub(crate) mod levels;
pub(crate) mod log;
pub(crate) mod manifest;
pub(crate) mod memtable;
pub mod options;
mod read;
mod repair;
mod stats;
pub mod stream;
mod stream_writer;
pub(crate) mod table;
mod transaction;
pub(crate) mod txn;
mod txn_iterator;
mod unbuilt;
pub mod value;
mod verify;
pub(crate) mod vlog;
mod vlog_gc;
pub(crate) mod write;

pub use batch::{WriteBatch, DEFAULT_MAX_PENDING_TXNS};
pub use db::{DataKeyInfo, Db, DbSize, ValueLogFileInfo};
pub use entry::Entry;
pub use error::{Error, Result};
pub use export::{BackupProgress, LoadSummary};
pub use inventory::{rotate_encryption_key, LOCK_FILE_NAME};
pub use key::{validate_key, MAX_KEY_SIZE};
pub use options::{ChecksumVerificationMode, Compression, Options};
pub use read::{DbIterator, Item, IteratorOptions};
pub use repair::{repair, RepairReport};
pub use stats::{LevelStats, Stats};
pub use stream::{backup_key_to_list, live_versions, KeyVersions, Stream, StreamSummary};
pub use stream_writer::{BulkLoadSummary, StreamWriter};
pub use table::{CacheMetrics, CacheStats};
pub use transaction::Txn;
pub use txn_iterator::TxnIterator;
pub use verify::{verify, verify_with_progress, VerifyReport};
pub use vlog_gc::{GcOutcome, GcReport};
pub use write::WriteEntry;

//! SettDB: an embedded, persistent, transactional key-value store for Rust programs, built on
//! Badger's design (an LSM tree with large values kept apart in a value log, MVCC
//! transactions with serializable snapshot isolation, leveled compaction).
//!
//! # Use it
//!
//! ```
//! use settdb::{Db, Entry, Options};
//! # fn main() -> settdb::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path();
//! let db = Db::open(Options::new(path))?;
//!
//! // A read-write transaction: every write lands at one commit, or none does. On
//! // Err(Error::Conflict) (a key it read changed meanwhile), run it again.
//! db.update(|txn| {
//!     txn.set("user:1", "ann")?;
//!     txn.set("user:2", "bob")?;
//!     txn.set_entry(Entry::new("session:9", "token").with_ttl(std::time::Duration::from_secs(60)))
//! })?;
//!
//! // A read-only transaction sees one snapshot. Not found is Ok(None).
//! db.view(|txn| {
//!     assert_eq!(txn.get("user:1")?.unwrap().value()?, b"ann");
//!     assert!(txn.get("user:3")?.is_none());
//!     // Prefixes and ranges are double-ended iterators.
//!     let users: Vec<Vec<u8>> = txn
//!         .prefix("user:")?
//!         .rev()
//!         .map(|item| Ok(item?.key().to_vec()))
//!         .collect::<settdb::Result<_>>()?;
//!     assert_eq!(users, [b"user:2", b"user:1"]);
//!     Ok(())
//! })?;
//!
//! // Shortcuts for single writes and reads, and a batch for bulk writes.
//! db.set("counter", 7u64.to_be_bytes())?;
//! assert_eq!(db.get("counter")?.as_deref(), Some(&7u64.to_be_bytes()[..]));
//! let mut batch = db.new_write_batch()?;
//! for i in 0..1000u32 {
//!     batch.set(format!("item:{i:04}"), i.to_le_bytes())?;
//! }
//! batch.flush()?;
//! db.close()?;
//! # Ok(()) }
//! ```
//!
//! Keys and values are bytes: anything [`IntoBytes`] (`&[u8]`, `&str`, arrays, `Vec<u8>`,
//! `String`, [`Bytes`]) goes in; reads give `Vec<u8>` or an [`Item`]. Every error is a typed
//! [`Error`]; SettDB never panics on data from disk and never exits the process.
//!
//! # Where to go next
//!
//! - [`Options`]: durability (`sync_writes`), sizes, compression, encryption at rest, caches,
//!   in-memory mode, read-only mode.
//! - [`Db`]: transactions ([`Db::update`], [`Db::view`], [`Txn`]), [`WriteBatch`], iterators
//!   ([`Txn::range`], [`Txn::prefix`], and the cursor [`Txn::iter`] with
//!   [`IteratorOptions`]), managed mode ([`Db::open_managed`]: the caller picks versions),
//!   backup and restore in Badger's format ([`Db::backup`], [`Db::load`]), parallel streams
//!   ([`Db::stream`]), bulk loading ([`Db::bulk_load`]), value-log garbage collection
//!   ([`Db::run_value_log_gc`]), [`verify`] and [`repair`].
//!
//! The engine's layers and invariants are described in ARCHITECTURE.md and docs/ in the
//! repository.

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
mod ban;
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
mod info;
pub mod inspect;
mod into_bytes;
pub(crate) mod inventory;
pub mod io;
pub mod key;
pub(crate) mod levels;
pub(crate) mod log;
pub(crate) mod manifest;
pub(crate) mod memtable;
mod merge_operator;
pub(crate) mod namespace;
pub mod options;
pub(crate) mod publish;
mod range_iter;
mod read;
mod repair;
mod sequence;
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
pub use bytes::{self, Bytes};
pub use db::{DataKeyInfo, Db, DbSize, ValueLogFileInfo};
pub use entry::Entry;
pub use error::{Error, Result};
pub use export::{BackupProgress, LoadSummary};
pub use info::{LevelInfo, SizeEstimate, TableInfo};
pub use into_bytes::IntoBytes;
pub use inventory::{rotate_encryption_key, LOCK_FILE_NAME};
pub use key::{validate_key, MAX_KEY_SIZE};
pub use merge_operator::MergeOperator;
pub use options::{ChecksumVerificationMode, Compression, Options};
pub use publish::{
    Match, SubscribeOptions, SubscriberThread, Subscription, SubscriptionCancel, Update,
};
pub use range_iter::RangeIter;
pub use read::{DbIterator, Item, IteratorOptions};
pub use repair::{repair, RepairReport};
pub use sequence::Sequence;
pub use stats::{LevelStats, Stats};
pub use stream::{backup_key_to_list, live_versions, KeyVersions, Stream, StreamSummary};
pub use stream_writer::{BulkLoadSummary, StreamWriter};
pub use table::{CacheMetrics, CacheStats};
pub use transaction::Txn;
pub use txn_iterator::TxnIterator;
pub use verify::{verify, verify_with_progress, VerifyReport};
pub use vlog_gc::{GcOutcome, GcReport};

//! The log format shared by memtable WALs (`.mem`) and value-log files (`.vlog`).
//!
//! A log is a checksummed file header followed by batches; a batch is a checksummed batch
//! header and one or more checksummed records, written with one write and replayed whole or
//! not at all. Each batch header carries the offset up to which the writer had synced, which
//! is how recovery tells a torn tail (the log ends there) from damage to synced bytes
//! (corruption, reported). Normative page: docs/format/log.md.
//!
//! - [`LogWriter`]: create, append batches, sync, seal, reopen after recovery (truncating the
//!   tail).
//! - [`ends_sealed`]: whether a complete log ends in its seal (read from its end only).
//! - [`replay`]: recovery, batch by batch, ending in a [`ReplayEnd`].
//! - [`salvage`]: every intact batch of a damaged log, wherever it lies (`settdb repair`).
//! - [`read_record`]: one record by its [`RecordPos`] (a value pointer's target).
//! - [`decode_record`]: the pure record decoder both use.

mod batch;
pub use batch::LogCipher;
#[cfg(test)]
mod crypt_tests;
mod format;
mod reader;
mod record;
mod replay;
mod salvage;
mod seal;
#[cfg(test)]
mod testing;
mod window;
mod writer;

#[cfg_attr(not(test), allow(unused_imports))]
pub use format::{
    LogHeader, LogKind, BATCH_HEADER_LEN, FILE_HEADER_LEN, FIRST_BATCH_OFFSET, FIRST_RECORD_OFFSET,
};
#[cfg_attr(not(test), allow(unused_imports))]
#[cfg(any(test, feature = "testing"))]
pub use reader::read_record;
pub use reader::{read_copied_record_at, read_header, read_mapped_record_at, read_record_at};
#[cfg_attr(not(test), allow(unused_imports))]
pub use record::{
    decode_record, Arena, FreshVec, OwnedRecord, RecordAlloc, RecordPos, RecordRef, MIN_RECORD_LEN,
};
#[cfg_attr(not(test), allow(unused_imports))]
pub use replay::{replay, replay_until, replay_with, ReplayEnd, StopReason};
#[cfg_attr(not(test), allow(unused_imports))]
pub use salvage::{salvage, Salvaged};
#[cfg_attr(not(test), allow(unused_imports))]
pub use seal::{ends_sealed, seal_batch_len};
#[cfg_attr(not(test), allow(unused_imports))]
pub use writer::LogWriter;

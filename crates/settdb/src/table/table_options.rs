//! The knobs of writing and opening one table, taken from [`Options`].

use std::sync::Arc;

use super::cache::TableCaches;
use crate::crypto::KeyRegistry;
use crate::error::{Error, Result};
use crate::options::{ChecksumVerificationMode, Compression, Options};

use super::compression::MAX_BLOCK_BYTES;

/// Largest target block size accepted (a quarter of the decompression cap, so that a full block
/// plus one large entry still fits under it).
pub const MAX_TARGET_BLOCK_BYTES: usize = MAX_BLOCK_BYTES / 4;

/// How a [`super::TableBuilder`] lays out a table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableBuilderOptions {
    /// Target raw size of a data block; a block is closed before an entry would take it over.
    pub block_size: usize,
    /// Bloom filter false-positive rate in [0, 1); 0 writes no filter.
    pub bloom_false_positive: f64,
    /// Data block compression.
    pub compression: Compression,
    /// Size at which [`super::TableBuilder::should_split_before`] starts answering true.
    pub target_table_size_bytes: u64,
}

impl TableBuilderOptions {
    /// The table options of `opts` for a table of `target_size` bytes.
    pub fn from_options(opts: &Options, target_size: u64) -> Self {
        TableBuilderOptions {
            block_size: opts.block_size,
            bloom_false_positive: opts.bloom_false_positive,
            compression: opts.effective_compression(),
            target_table_size_bytes: target_size,
        }
    }

    /// Checks the ranges a builder relies on.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_TARGET_BLOCK_BYTES).contains(&self.block_size) {
            return Err(Error::InvalidOptions(format!(
                "block_size {} must be in [1, {MAX_TARGET_BLOCK_BYTES}]",
                self.block_size
            )));
        }
        if !(0.0..1.0).contains(&self.bloom_false_positive) {
            return Err(Error::InvalidOptions(
                "bloom_false_positive must be in [0, 1)".into(),
            ));
        }
        Ok(())
    }
}

impl Default for TableBuilderOptions {
    fn default() -> Self {
        TableBuilderOptions::from_options(&Options::new(""), 2 << 20)
    }
}

/// How [`super::Table::open`] treats a table.
#[derive(Clone, Debug, Default)]
pub struct TableOpenOptions {
    /// When data-block checksums are verified (metadata regions are always verified).
    pub checksum_verification_mode: ChecksumVerificationMode,
    /// The key registry of an encrypted database (an encrypted table needs it).
    pub keys: Option<Arc<KeyRegistry>>,
    /// The database's block and index caches (`None`: no caching; indexes resident).
    pub caches: Option<Arc<TableCaches>>,
}

impl TableOpenOptions {
    /// The open options of `opts`.
    pub fn from_options(opts: &Options) -> Self {
        TableOpenOptions {
            checksum_verification_mode: opts.checksum_verification_mode,
            keys: None,
            caches: None,
        }
    }

    /// True if every data block is read and verified at open.
    pub fn verify_at_open(&self) -> bool {
        matches!(
            self.checksum_verification_mode,
            ChecksumVerificationMode::OnTableRead | ChecksumVerificationMode::OnTableAndBlockRead
        )
    }

    /// True if each data block's checksum is verified when it is read.
    pub fn verify_on_block_read(&self) -> bool {
        matches!(
            self.checksum_verification_mode,
            ChecksumVerificationMode::OnBlockRead | ChecksumVerificationMode::OnTableAndBlockRead
        )
    }
}

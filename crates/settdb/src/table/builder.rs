//! Writes a table front to back: data blocks as they fill, then filter, index, meta, footer.
//!
//! ```text
//! table := data_block{1..} ‖ filter_region? ‖ index_region ‖ meta_region ‖ footer (64 bytes)
//! ```
//!
//! Memory is bounded by one write chunk, one block, the index, and 8 bytes per distinct user
//! key for the filter, not by the table size. Format page: docs/format/table.md.

use std::sync::Arc;

use super::block_builder::{entry_len, BlockBuilder, COUNT_LEN, OFFSET_LEN};
use super::block_frame::append_stored_block;
use super::bloom::{bloom_hash, BloomFilter};
use super::chunk_writer::ChunkWriter;
use super::compression::{Compressor, MAX_BLOCK_BYTES};
use super::footer::{Footer, Region, FOOTER_LEN};
use super::index::BlockHandle;
use super::index_builder::IndexBuilder;
use super::meta::TableMeta;
use super::table_options::TableBuilderOptions;
use crate::error::{Error, Result};
use crate::io::StorageFile;
use crate::key::{compare_keys, is_valid_internal_key, same_user_key, user_key, version};
use crate::value::{meta, ValuePointer, ValueRef};

/// Rough size of the meta region beyond its two keys (for size estimates).
const META_FIXED_ESTIMATE: usize = 64;

/// What [`TableBuilder::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    /// Bytes of the file.
    pub size_bytes: u64,
    /// First internal key.
    pub smallest: Vec<u8>,
    /// Last internal key.
    pub biggest: Vec<u8>,
    /// Largest version of any entry.
    pub max_version: u64,
    /// Entries written.
    pub entry_count: u64,
    /// Distinct user keys written.
    pub user_key_count: u64,
    /// Raw (uncompressed) bytes of the data blocks.
    pub data_bytes: u64,
    /// Data blocks written.
    pub block_count: u32,
    /// Stored bytes of the index region.
    pub index_bytes: u64,
    /// Stored bytes of the filter region (0: no filter).
    pub filter_bytes: u64,
    /// The stale-data count recorded in the meta block.
    pub stale_data_bytes: u64,
}

/// Streams sorted entries into a new table file.
///
/// Not thread-safe by design: one builder per output file, driven by one flush or compaction.
/// Invariant: entries added so far are valid internal keys in strictly ascending order.
#[derive(Debug)]
pub struct TableBuilder {
    opts: TableBuilderOptions,
    writer: ChunkWriter,
    compressor: Compressor,
    block: BlockBuilder,
    index: IndexBuilder,
    /// Filter hashes of the distinct user keys (only when a filter is configured).
    key_hashes: Vec<u64>,
    smallest: Vec<u8>,
    last_key: Vec<u8>,
    max_version: u64,
    entry_count: u64,
    user_key_count: u64,
    data_bytes: u64,
    stale_data_bytes: u64,
}

impl TableBuilder {
    /// A builder writing into `file`, which must be empty.
    pub fn new(file: Arc<dyn StorageFile>, opts: TableBuilderOptions) -> Result<Self> {
        opts.validate()?;
        if file.len()? != 0 {
            return Err(Error::InvalidRequest(
                "a table must be built into an empty file",
            ));
        }
        Ok(TableBuilder {
            opts,
            writer: ChunkWriter::new(file),
            compressor: Compressor::new(opts.compression)?,
            block: BlockBuilder::new(),
            index: IndexBuilder::new(),
            key_hashes: Vec::new(),
            smallest: Vec::new(),
            last_key: Vec::new(),
            max_version: 0,
            entry_count: 0,
            user_key_count: 0,
            data_bytes: 0,
            stale_data_bytes: 0,
        })
    }

    /// Adds an entry. Keys must be valid internal keys in strictly ascending `compare_keys`
    /// order; a violation (or a malformed value) is `InvalidRequest` and a debug assertion.
    pub fn add(&mut self, key: &[u8], value: ValueRef<'_>) -> Result<()> {
        self.writer.check()?;
        if let Err(e) = self.check_entry(key, &value) {
            debug_assert!(false, "TableBuilder::add misuse: {e}");
            return Err(e);
        }
        if !self.block.is_empty() && self.block.size_after(key, &value) > self.opts.block_size {
            self.finish_block()?;
        }
        let new_user_key = self.last_key.is_empty() || !same_user_key(&self.last_key, key);
        if new_user_key {
            self.user_key_count += 1;
            if self.opts.bloom_false_positive > 0.0 {
                self.key_hashes.push(bloom_hash(user_key(key)));
            }
        }
        if self.entry_count == 0 {
            self.smallest.extend_from_slice(key);
        }
        self.block.add(key, &value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.max_version = self.max_version.max(version(key));
        self.entry_count += 1;
        Ok(())
    }

    /// Bytes the table would have if finished now (the open block counted uncompressed).
    pub fn estimated_size(&self) -> u64 {
        let filter = match self.opts.bloom_false_positive > 0.0 {
            true => BloomFilter::estimated_size_bytes(
                self.key_hashes.len(),
                self.opts.bloom_false_positive,
            ),
            false => 0,
        };
        let rest = self.block.size_bytes()
            + self.index.size_bytes()
            + filter
            + 2 * self.last_key.len()
            + META_FIXED_ESTIMATE
            + FOOTER_LEN;
        self.writer.offset() + rest as u64
    }

    /// True if no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// True once the table reached its target size and `next_key` starts a new user key: all
    /// versions of one user key stay in one table (reads and compaction rely on it).
    pub fn should_split_before(&self, next_key: &[u8]) -> bool {
        !self.last_key.is_empty()
            && self.estimated_size() >= self.opts.target_table_size_bytes
            && !same_user_key(&self.last_key, next_key)
    }

    /// Sets the stale-data count recorded in the meta block.
    pub fn set_stale_data_bytes(&mut self, bytes: u64) {
        self.stale_data_bytes = bytes;
    }

    /// Writes the last block, the filter, index, meta and footer, and syncs the file. The
    /// caller then syncs the directory before anything refers to the table (rule 1).
    pub fn finish(mut self) -> Result<TableSummary> {
        self.writer.check()?;
        if self.entry_count == 0 {
            return Err(Error::InvalidRequest(
                "cannot finish a table with no entries",
            ));
        }
        if !self.block.is_empty() {
            self.finish_block()?;
        }
        let filter = match self.opts.bloom_false_positive > 0.0 {
            true => self.write_region(&BloomFilter::build(
                &self.key_hashes,
                self.opts.bloom_false_positive,
            ))?,
            false => Region::default(),
        };
        let index = self.write_region(&self.index.finish())?;
        let meta = self.meta();
        let mut raw = Vec::new();
        meta.encode(&mut raw);
        let meta_region = self.write_region(&raw)?;
        let footer = Footer {
            filter,
            index,
            meta: meta_region,
        };
        self.writer.buf_mut().extend_from_slice(&footer.encode());
        let size_bytes = self.writer.offset();
        self.writer.sync()?;
        Ok(TableSummary {
            size_bytes,
            smallest: meta.smallest,
            biggest: meta.biggest,
            max_version: meta.max_version,
            entry_count: meta.entry_count,
            user_key_count: meta.user_key_count,
            data_bytes: meta.data_bytes,
            block_count: self.index.block_count(),
            index_bytes: index.len,
            filter_bytes: filter.len,
            stale_data_bytes: meta.stale_data_bytes,
        })
    }

    /// Refuses invalid keys, out-of-order keys, malformed values and oversized entries.
    fn check_entry(&self, key: &[u8], value: &ValueRef<'_>) -> Result<()> {
        if !is_valid_internal_key(key) {
            return Err(Error::InvalidRequest(
                "table key is not a valid internal key",
            ));
        }
        if !self.last_key.is_empty() && compare_keys(&self.last_key, key).is_ge() {
            return Err(Error::InvalidRequest(
                "table keys must be added in strictly ascending order",
            ));
        }
        if value.meta & !meta::ALL != 0 {
            return Err(Error::InvalidRequest("value has unknown meta bits"));
        }
        if value.meta & meta::VALUE_POINTER != 0 && value.value.len() != ValuePointer::ENCODED_LEN {
            return Err(Error::InvalidRequest(
                "value-pointer entry is not a 12-byte pointer",
            ));
        }
        if entry_len(0, key, value) + OFFSET_LEN + COUNT_LEN > MAX_BLOCK_BYTES {
            return Err(Error::InvalidRequest("entry too large for a table block"));
        }
        Ok(())
    }

    /// Compresses and frames the open block into the write buffer and indexes it.
    fn finish_block(&mut self) -> Result<()> {
        debug_assert!(!self.block.is_empty());
        let offset = self.writer.offset();
        let raw = self.block.finish();
        debug_assert!(raw.len() <= MAX_BLOCK_BYTES);
        self.data_bytes += raw.len() as u64;
        let stored = append_stored_block(self.writer.buf_mut(), raw, Some(&mut self.compressor))?;
        let stored_len =
            u32::try_from(stored).map_err(|_| Error::InvalidRequest("stored block over 4 GiB"))?;
        self.index
            .add(self.block.last_key(), BlockHandle { offset, stored_len });
        self.block.reset();
        self.writer.maybe_flush()
    }

    /// Appends an uncompressed metadata region.
    fn write_region(&mut self, raw: &[u8]) -> Result<Region> {
        let offset = self.writer.offset();
        let len = append_stored_block(self.writer.buf_mut(), raw, None)?;
        self.writer.maybe_flush()?;
        Ok(Region {
            offset,
            len: len as u64,
        })
    }

    fn meta(&self) -> TableMeta {
        TableMeta {
            smallest: self.smallest.clone(),
            biggest: self.last_key.clone(),
            max_version: self.max_version,
            entry_count: self.entry_count,
            user_key_count: self.user_key_count,
            data_bytes: self.data_bytes,
            stale_data_bytes: self.stale_data_bytes,
            compression: self.opts.compression,
            has_bloom: self.opts.bloom_false_positive > 0.0,
        }
    }
}

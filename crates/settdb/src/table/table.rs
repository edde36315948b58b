//! An open, immutable table: footer, meta, index and filter in memory; data blocks read on
//! demand through [`Table::read_block`].
//!
//! ```text
//! table := data_block{1..} ‖ filter_region? ‖ index_region ‖ meta_region ‖ footer (64 bytes)
//! ```
//!
//! Format page: docs/format/table.md.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use super::block::Block;
use super::block_frame::decode_stored_block;
use super::bloom::BloomFilter;
use super::footer::{Footer, Region, FOOTER_LEN};
use super::index::{BlockHandle, BlockIndex};
use super::meta::TableMeta;
use super::table_options::TableOpenOptions;
use crate::error::{Error, Result};
use crate::io::StorageFile;
use crate::key::{compare_keys, is_valid_internal_key, same_user_key, user_key};
use crate::value::ValueStruct;

/// An open table. Immutable after [`Table::open`]; shared as `Arc<Table>` by readers and
/// iterators on any thread (reads are positional, there is no cursor state).
pub struct Table {
    id: u64,
    file: Arc<dyn StorageFile>,
    size_bytes: u64,
    footer: Footer,
    meta: TableMeta,
    index: BlockIndex,
    filter: Option<BloomFilter>,
    opts: TableOpenOptions,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("id", &self.id)
            .field("path", &self.file.path())
            .field("size_bytes", &self.size_bytes)
            .field("blocks", &self.index.len())
            .field("entries", &self.meta.entry_count)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Opens and validates the table in `file`: footer, meta, index and filter are read, their
    /// checksums verified and their consistency checked; with `OnTableRead` or
    /// `OnTableAndBlockRead` every data block is verified too.
    pub fn open(file: Arc<dyn StorageFile>, id: u64, opts: TableOpenOptions) -> Result<Arc<Table>> {
        let path = file.path().to_path_buf();
        let size_bytes = file.len()?;
        let footer_offset = size_bytes.checked_sub(FOOTER_LEN as u64).ok_or_else(|| {
            Error::corruption(
                &path,
                0,
                format!("table of {size_bytes} bytes is shorter than its {FOOTER_LEN}-byte footer"),
            )
        })?;
        let footer_bytes = file.read_vec_at(footer_offset, FOOTER_LEN)?;
        let footer = Footer::decode(&footer_bytes, &path, footer_offset)?;
        let meta_raw = read_region(file.as_ref(), footer.meta)?;
        let meta = TableMeta::decode(&meta_raw, &path, footer.meta.offset)?;
        let index_raw = read_region(file.as_ref(), footer.index)?;
        let index = BlockIndex::decode(&index_raw, &path, footer.index.offset, footer.data_end())?;
        let filter = match footer.filter.len {
            0 => None,
            _ => {
                let raw = read_region(file.as_ref(), footer.filter)?;
                Some(BloomFilter::decode(raw, &path, footer.filter.offset)?)
            }
        };
        let table = Table {
            id,
            file,
            size_bytes,
            footer,
            meta,
            index,
            filter,
            opts,
        };
        table.check_meta_against_index()?;
        if opts.verify_at_open() {
            table.verify_data_blocks()?;
        }
        Ok(Arc::new(table))
    }

    /// The table's id (its file number).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// First internal key.
    pub fn smallest(&self) -> &[u8] {
        &self.meta.smallest
    }

    /// Last internal key.
    pub fn biggest(&self) -> &[u8] {
        &self.meta.biggest
    }

    /// Largest version of any entry.
    pub fn max_version(&self) -> u64 {
        self.meta.max_version
    }

    /// Number of entries.
    pub fn entry_count(&self) -> u64 {
        self.meta.entry_count
    }

    /// Number of distinct user keys.
    pub fn user_key_count(&self) -> u64 {
        self.meta.user_key_count
    }

    /// Size of the file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Raw (uncompressed) bytes of the data blocks.
    pub fn data_bytes(&self) -> u64 {
        self.meta.data_bytes
    }

    /// Bytes of kept-but-shadowed entries recorded by the writer.
    pub fn stale_data_bytes(&self) -> u64 {
        self.meta.stale_data_bytes
    }

    /// The full metadata record.
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    /// True if the table has a bloom filter.
    pub fn has_bloom(&self) -> bool {
        self.filter.is_some()
    }

    /// False if `user_key` is certainly not in the table (always true without a filter).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(user_key))
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// The block index (last key and handle of every data block).
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// Bytes of memory held by the index and filter.
    pub fn memory_bytes(&self) -> usize {
        self.index.size_bytes() + self.filter.as_ref().map_or(0, BloomFilter::size_bytes)
    }

    /// Reads, checks and decodes data block `idx`: the one place a block cache slots in. The
    /// checksum is verified unless the verification mode says not to; decoding always
    /// validates the block.
    pub fn read_block(&self, idx: usize) -> Result<Arc<Block>> {
        self.load_block(idx, self.opts.verify_on_block_read())
            .map(Arc::new)
    }

    /// Verifies every checksum of the file: metadata regions and every data block.
    pub fn verify_checksums(&self) -> Result<()> {
        for r in [self.footer.filter, self.footer.index, self.footer.meta] {
            if r.len > 0 {
                read_region(self.file.as_ref(), r)?;
            }
        }
        self.verify_data_blocks()
    }

    /// The newest entry of `key`'s user key at or below `key`'s version: the first entry
    /// `>= key` if it has the same user key. `key` is an internal key (user key @ read version).
    pub fn get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, ValueStruct)>> {
        if !is_valid_internal_key(key) {
            return Err(Error::InvalidRequest("Table::get needs an internal key"));
        }
        if !self.may_contain(user_key(key)) {
            return Ok(None);
        }
        let idx = self.index.find(key);
        if idx >= self.index.len() {
            return Ok(None);
        }
        let block = self.read_block(idx)?;
        let mut found = Vec::new();
        let pos = block.seek(key, &mut found);
        if pos >= block.len() {
            debug_assert!(false, "block {idx}'s last key is >= the probe");
            return Ok(None);
        }
        block.key_at(pos, &mut found);
        if !same_user_key(&found, key) {
            return Ok(None);
        }
        let value = block.value_at(pos).to_owned();
        Ok(Some((found, value)))
    }

    /// Reads and decodes block `idx`, verifying its checksum if `verify`.
    fn load_block(&self, idx: usize, verify: bool) -> Result<Block> {
        let BlockHandle { offset, stored_len } = self
            .index
            .handle(idx)
            .ok_or(Error::InvalidRequest("block index out of range"))?;
        // The index was validated to lie inside the data region, so this read is bounded.
        let stored = self.file.read_vec_at(offset, stored_len as usize)?;
        let raw = decode_stored_block(self.path(), offset, stored, verify, true)?;
        let block = Block::decode(raw, self.path(), offset)?;
        let mut last = Vec::new();
        block.key_at(block.len().saturating_sub(1), &mut last);
        if last != self.index.last_key(idx) {
            return Err(Error::corruption(
                self.path(),
                offset,
                format!("block {idx}'s last key differs from its index entry"),
            ));
        }
        Ok(block)
    }

    /// Cross-checks the meta record with the index and the filter region.
    fn check_meta_against_index(&self) -> Result<()> {
        let bad = |r: &str| {
            Err(Error::corruption(
                self.path(),
                self.footer.meta.offset,
                format!("table meta: {r}"),
            ))
        };
        if self.meta.biggest != self.index.last_key(self.index.len().saturating_sub(1)) {
            return bad("biggest key differs from the last index key");
        }
        if self.meta.entry_count < self.index.len() as u64 {
            return bad("fewer entries than data blocks");
        }
        if self.meta.has_bloom != (self.footer.filter.len > 0) {
            return bad("has_bloom disagrees with the filter region");
        }
        Ok(())
    }

    /// Reads and verifies every data block; checks entry count and smallest key against meta.
    fn verify_data_blocks(&self) -> Result<()> {
        let mut entries = 0u64;
        for i in 0..self.index.len() {
            let block = self.load_block(i, true)?;
            if i == 0 {
                let mut first = Vec::new();
                block.key_at(0, &mut first);
                if compare_keys(&first, &self.meta.smallest) != Ordering::Equal {
                    return Err(Error::corruption(
                        self.path(),
                        0,
                        "first key differs from the meta's smallest key",
                    ));
                }
            }
            entries += block.len() as u64;
        }
        if entries != self.meta.entry_count {
            return Err(Error::corruption(
                self.path(),
                self.footer.meta.offset,
                format!(
                    "blocks hold {entries} entries, meta says {}",
                    self.meta.entry_count
                ),
            ));
        }
        Ok(())
    }
}

/// Reads a metadata region (always checksum-verified, never compressed). The footer check
/// bounded `region` by the file size, so the allocation is justified by the file.
fn read_region(file: &dyn StorageFile, region: Region) -> Result<Vec<u8>> {
    let len = usize::try_from(region.len)
        .map_err(|_| Error::corruption(file.path(), region.offset, "region larger than memory"))?;
    let stored = file.read_vec_at(region.offset, len)?;
    decode_stored_block(file.path(), region.offset, stored, true, false)
}

//! Encodes the block index.
//!
//! ```text
//! index       := block_count u32 LE ‖ index_entry{block_count}
//! index_entry := block_offset u64 LE ‖ stored_len u32 LE ‖ key_len u16 LE ‖ last_key
//! ```
//!
//! Format page: docs/format/table.md (index region).

use super::index::BlockHandle;
use crate::coding;
use crate::key::compare_keys;

/// Accumulates index entries while a table is written (memory: one entry per block).
#[derive(Debug, Default)]
pub struct IndexBuilder {
    entries: Vec<u8>,
    count: u32,
    last_key: Vec<u8>,
}

impl IndexBuilder {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the entry of the next data block. REQUIRES: blocks added in file order with
    /// ascending last keys; the key is an internal key (at most `MAX_INTERNAL_KEY_SIZE` bytes).
    pub fn add(&mut self, last_key: &[u8], handle: BlockHandle) {
        debug_assert!(self.count == 0 || compare_keys(&self.last_key, last_key).is_lt());
        coding::put_u64(&mut self.entries, handle.offset);
        coding::put_u32(&mut self.entries, handle.stored_len);
        coding::put_u16(&mut self.entries, last_key.len() as u16);
        self.entries.extend_from_slice(last_key);
        self.count += 1;
        self.last_key.clear();
        self.last_key.extend_from_slice(last_key);
    }

    /// Blocks indexed so far.
    pub fn block_count(&self) -> u32 {
        self.count
    }

    /// Encoded size so far.
    pub fn size_bytes(&self) -> usize {
        4 + self.entries.len()
    }

    /// The encoded index.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_bytes());
        coding::put_u32(&mut out, self.count);
        out.extend_from_slice(&self.entries);
        out
    }
}

//! A cursor over one decoded [`Block`]. Positioning cannot fail: the block was validated when
//! it was decoded.

use std::sync::Arc;

use super::block::Block;
use super::iterator::KvIterator;
use crate::error::Result;
use crate::value::ValueRef;

/// A bidirectional cursor over the entries of one block.
///
/// Invariant: when `pos < block.len()` the cursor is valid and `key` holds entry `pos`'s key.
#[derive(Debug)]
pub struct BlockIterator {
    block: Arc<Block>,
    /// Current entry; `block.len()` means invalid.
    pos: usize,
    key: Vec<u8>,
}

impl BlockIterator {
    /// An unpositioned cursor over `block`.
    pub fn new(block: Arc<Block>) -> Self {
        let pos = block.len();
        BlockIterator {
            block,
            pos,
            key: Vec::new(),
        }
    }

    /// Switches to another block (unpositioned), keeping the key buffer.
    pub fn reset(&mut self, block: Arc<Block>) {
        self.pos = block.len();
        self.block = block;
    }

    /// Positions at entry `i`, or invalid if `i` is out of range.
    pub fn set_pos(&mut self, i: usize) {
        self.pos = i.min(self.block.len());
        if self.pos < self.block.len() {
            self.block.key_at(self.pos, &mut self.key);
        }
    }
}

impl KvIterator for BlockIterator {
    fn valid(&self) -> bool {
        self.pos < self.block.len()
    }

    fn key(&self) -> &[u8] {
        debug_assert!(self.valid());
        &self.key
    }

    fn value(&self) -> ValueRef<'_> {
        debug_assert!(self.valid());
        self.block.value_at(self.pos)
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.set_pos(0);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let last = self.block.len().saturating_sub(1);
        self.set_pos(last);
        Ok(())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        let i = self.block.seek(key);
        self.set_pos(i);
        Ok(())
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        let i = self.block.seek_for_prev(key);
        self.set_pos(i.unwrap_or(usize::MAX));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        self.set_pos(self.pos.saturating_add(1));
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        self.set_pos(self.pos.checked_sub(1).unwrap_or(usize::MAX));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::block_builder::BlockBuilder;
    use super::*;
    use crate::key::key_with_version;
    use std::path::Path;

    #[test]
    fn walks_both_ways_and_seeks_past_the_ends() {
        // Proves next/prev visit every entry in order and seeks beyond either end are invalid.
        let keys: Vec<Vec<u8>> = (0..10u8).map(|i| key_with_version(&[b'k', i], 1)).collect();
        let mut b = BlockBuilder::new();
        let v = ValueRef {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: b"v",
        };
        keys.iter().for_each(|k| b.add(k, &v));
        let block = Arc::new(Block::decode(b.finish().to_vec(), Path::new("b"), 0).unwrap());
        let mut it = BlockIterator::new(block);
        assert!(!it.valid());
        it.seek_to_first().unwrap();
        let mut seen = Vec::new();
        while it.valid() {
            seen.push(it.key().to_vec());
            it.next().unwrap();
        }
        assert_eq!(seen, keys);
        it.seek_to_last().unwrap();
        seen.clear();
        while it.valid() {
            seen.push(it.key().to_vec());
            it.prev().unwrap();
        }
        seen.reverse();
        assert_eq!(seen, keys);
        it.seek(&key_with_version(b"l", 1)).unwrap();
        assert!(!it.valid());
        it.seek_for_prev(&key_with_version(b"a", 1)).unwrap();
        assert!(!it.valid());
        it.seek_for_prev(&key_with_version(b"l", 1)).unwrap();
        assert_eq!(it.key(), &keys[9][..]);
        assert_eq!(it.value().value, b"v");
    }
}

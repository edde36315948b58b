//! A cursor over one table, crossing block boundaries in both directions.

use std::sync::Arc;

use super::block_iterator::BlockIterator;
use super::iterator::KvIterator;
use super::reader::Table;
use crate::error::Result;
use crate::value::ValueRef;

/// The value returned by `value()` on an invalid cursor (a REQUIRES violation).
pub(crate) const EMPTY_VALUE: ValueRef<'static> = ValueRef {
    meta: 0,
    user_meta: 0,
    expires_at: 0,
    value: &[],
};

/// A bidirectional cursor over the entries of one table. Reads one block at a time through
/// [`Table::read_block`].
///
/// Invariant: when valid, `block` iterates data block `block_idx` of `table`. After an error
/// the cursor is invalid until the next successful positioning call.
#[derive(Debug)]
pub struct TableIterator {
    table: Arc<Table>,
    block_idx: usize,
    block: Option<BlockIterator>,
    /// Whether blocks read from the file go into the block cache.
    fill_cache: bool,
}

impl TableIterator {
    /// An unpositioned cursor over `table`; the blocks it reads are cached.
    pub fn new(table: Arc<Table>) -> Self {
        TableIterator {
            table,
            block_idx: 0,
            block: None,
            fill_cache: true,
        }
    }

    /// An unpositioned cursor that uses cached blocks but caches none it reads (compaction,
    /// verification: a pass over whole tables would evict what readers use).
    pub fn without_filling(table: Arc<Table>) -> Self {
        TableIterator::filling(table, false)
    }

    /// [`TableIterator::new`] (`fill_cache`) or [`TableIterator::without_filling`].
    pub fn filling(table: Arc<Table>, fill_cache: bool) -> Self {
        TableIterator {
            fill_cache,
            ..TableIterator::new(table)
        }
    }

    /// Makes `idx` the current block (unpositioned within it).
    fn load(&mut self, idx: usize) -> Result<&mut BlockIterator> {
        let block = match self.table.read_block_with(idx, self.fill_cache) {
            Ok(b) => b,
            Err(e) => {
                self.block = None;
                return Err(e);
            }
        };
        self.block_idx = idx;
        Ok(match &mut self.block {
            Some(it) => {
                it.reset(block);
                it
            }
            slot @ None => slot.insert(BlockIterator::new(block)),
        })
    }

    fn invalidate(&mut self) {
        if let Some(it) = &mut self.block {
            it.set_pos(usize::MAX);
        }
    }

    /// While invalid, moves to the first entry of the following block (blocks are never empty,
    /// so this loops at most once on a valid table).
    fn skip_forward(&mut self) -> Result<()> {
        while !self.valid() && self.block.is_some() && self.block_idx + 1 < self.table.block_count()
        {
            self.load(self.block_idx + 1)?.seek_to_first()?;
        }
        Ok(())
    }

    /// While invalid, moves to the last entry of the preceding block.
    fn skip_backward(&mut self) -> Result<()> {
        while !self.valid() && self.block.is_some() && self.block_idx > 0 {
            self.load(self.block_idx - 1)?.seek_to_last()?;
        }
        Ok(())
    }
}

impl KvIterator for TableIterator {
    fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(|b| b.valid())
    }

    fn key(&self) -> &[u8] {
        debug_assert!(self.valid());
        self.block.as_ref().map_or(&[], |b| b.key())
    }

    fn value(&self) -> ValueRef<'_> {
        debug_assert!(self.valid());
        self.block.as_ref().map_or(EMPTY_VALUE, |b| b.value())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.load(0)?.seek_to_first()?;
        self.skip_forward()
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let last = self.table.block_count().saturating_sub(1);
        self.load(last)?.seek_to_last()?;
        self.skip_backward()
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        let idx = self.table.find_block(key)?;
        if idx >= self.table.block_count() {
            self.invalidate();
            return Ok(());
        }
        self.load(idx)?.seek(key)?;
        self.skip_forward()
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        let idx = self.table.find_block(key)?;
        if idx >= self.table.block_count() {
            return self.seek_to_last();
        }
        self.load(idx)?.seek_for_prev(key)?;
        self.skip_backward()
    }

    fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        if let Some(b) = &mut self.block {
            b.next()?;
        }
        self.skip_forward()
    }

    fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        if let Some(b) = &mut self.block {
            b.prev()?;
        }
        self.skip_backward()
    }
}

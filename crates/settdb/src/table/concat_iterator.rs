//! A cursor over the sorted, non-overlapping tables of one level, opening one table cursor at
//! a time.

use std::sync::Arc;

use super::iterator::KvIterator;
use super::table::Table;
use super::table_iterator::{TableIterator, EMPTY_VALUE};
use crate::error::Result;
use crate::key::compare_keys;
use crate::value::ValueRef;

/// A bidirectional cursor over tables sorted by key with disjoint key ranges (a level >= 1).
///
/// Invariant: when valid, `cur` iterates `tables[cur_idx]`. Table cursors are created lazily,
/// only for the table the cursor is in.
#[derive(Debug)]
pub struct ConcatIterator {
    tables: Vec<Arc<Table>>,
    cur_idx: usize,
    cur: Option<TableIterator>,
}

impl ConcatIterator {
    /// A cursor over `tables`. REQUIRES: sorted by key, each table's biggest key below the
    /// next one's smallest (checked with a debug assertion).
    pub fn new(tables: Vec<Arc<Table>>) -> Self {
        debug_assert!(
            tables
                .windows(2)
                .all(|w| compare_keys(w[0].biggest(), w[1].smallest()).is_lt()),
            "ConcatIterator tables must be sorted and disjoint"
        );
        ConcatIterator {
            tables,
            cur_idx: 0,
            cur: None,
        }
    }

    /// The table cursor of `tables[i]`, reusing the current one when it is that table's.
    fn at(&mut self, i: usize) -> &mut TableIterator {
        if self.cur_idx != i {
            self.cur = None;
        }
        self.cur_idx = i;
        let table = &self.tables[i];
        self.cur
            .get_or_insert_with(|| TableIterator::new(Arc::clone(table)))
    }

    fn skip_forward(&mut self) -> Result<()> {
        while !self.valid() && self.cur.is_some() && self.cur_idx + 1 < self.tables.len() {
            self.at(self.cur_idx + 1).seek_to_first()?;
        }
        Ok(())
    }

    fn skip_backward(&mut self) -> Result<()> {
        while !self.valid() && self.cur.is_some() && self.cur_idx > 0 {
            self.at(self.cur_idx - 1).seek_to_last()?;
        }
        Ok(())
    }
}

impl KvIterator for ConcatIterator {
    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.valid())
    }

    fn key(&self) -> &[u8] {
        debug_assert!(self.valid());
        self.cur.as_ref().map_or(&[], |c| c.key())
    }

    fn value(&self) -> ValueRef<'_> {
        debug_assert!(self.valid());
        self.cur.as_ref().map_or(EMPTY_VALUE, |c| c.value())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        if self.tables.is_empty() {
            self.cur = None;
            return Ok(());
        }
        self.at(0).seek_to_first()?;
        self.skip_forward()
    }

    fn seek_to_last(&mut self) -> Result<()> {
        let Some(last) = self.tables.len().checked_sub(1) else {
            self.cur = None;
            return Ok(());
        };
        self.at(last).seek_to_last()?;
        self.skip_backward()
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        // The first table whose biggest key is >= key holds the first entry >= key.
        let i = self
            .tables
            .partition_point(|t| compare_keys(t.biggest(), key).is_lt());
        if i == self.tables.len() {
            self.cur = None;
            return Ok(());
        }
        self.at(i).seek(key)?;
        self.skip_forward()
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        // The last table whose smallest key is <= key holds the last entry <= key.
        let n = self
            .tables
            .partition_point(|t| compare_keys(t.smallest(), key).is_le());
        let Some(i) = n.checked_sub(1) else {
            self.cur = None;
            return Ok(());
        };
        self.at(i).seek_for_prev(key)?;
        self.skip_backward()
    }

    fn next(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        if let Some(c) = &mut self.cur {
            c.next()?;
        }
        self.skip_forward()
    }

    fn prev(&mut self) -> Result<()> {
        debug_assert!(self.valid());
        if let Some(c) = &mut self.cur {
            c.prev()?;
        }
        self.skip_backward()
    }
}

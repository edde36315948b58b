//! A cursor over the sorted, non-overlapping tables of one level, opening one table cursor at
//! a time.

use std::sync::Arc;

use super::iterator::KvIterator;
use super::reader::Table;
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
    /// Whether blocks read from the files go into the block cache.
    fill_cache: bool,
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
            fill_cache: true,
        }
    }

    /// [`ConcatIterator::new`] whose table cursors cache no block they read
    /// ([`TableIterator::without_filling`]).
    pub fn without_filling(tables: Vec<Arc<Table>>) -> Self {
        ConcatIterator::filling(tables, false)
    }

    /// [`ConcatIterator::new`] (`fill_cache`) or [`ConcatIterator::without_filling`].
    pub fn filling(tables: Vec<Arc<Table>>, fill_cache: bool) -> Self {
        ConcatIterator {
            fill_cache,
            ..ConcatIterator::new(tables)
        }
    }

    /// The table cursor of `tables[i]`, reusing the current one when it is that table's.
    fn at(&mut self, i: usize) -> &mut TableIterator {
        if self.cur_idx != i {
            self.cur = None;
        }
        self.cur_idx = i;
        let (table, fill) = (&self.tables[i], self.fill_cache);
        self.cur
            .get_or_insert_with(|| TableIterator::filling(Arc::clone(table), fill))
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{TableBuilder, TableBuilderOptions, TableOpenOptions};
    use super::*;
    use crate::key::{key_with_version, same_user_key};
    use crate::options::Compression;
    use proptest::prelude::*;

    /// Opens one table per chunk of `entries`, cutting only between user keys.
    fn tables_of(entries: &[Entry], cuts: &[prop::sample::Index]) -> Vec<Arc<Table>> {
        let mut bounds: Vec<usize> = cuts
            .iter()
            .map(|c| c.index(entries.len()))
            .filter(|&i| i > 0 && !same_user_key(&entries[i - 1].0, &entries[i].0))
            .collect();
        bounds.sort();
        bounds.dedup();
        bounds.push(entries.len());
        let mut start = 0;
        let mut tables = Vec::new();
        for end in bounds {
            let file = MemFile::new(Vec::new());
            let opts = TableBuilderOptions {
                ..small_blocks(Compression::Lz4)
            };
            let mut b = TableBuilder::new(file.clone(), opts).unwrap();
            for (k, v) in &entries[start..end] {
                b.add(k, vref(v)).unwrap();
            }
            b.finish().unwrap();
            tables
                .push(Table::open(file, tables.len() as u64, TableOpenOptions::default()).unwrap());
            start = end;
        }
        tables
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn concat_equals_the_model(entries in entries(300),
                                   cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
                                   probes in proptest::collection::vec((user_key(), 0u64..7), 1..20)) {
            // Proves iteration both ways over a level's tables equals the input, and seeks plus
            // a step either way equal the model across table boundaries.
            let tables = tables_of(&entries, &cuts);
            let mut it = ConcatIterator::new(tables);
            prop_assert_eq!(&collect_forward(&mut it).unwrap(), &entries);
            prop_assert_eq!(&collect_backward(&mut it).unwrap(), &entries);
            for (u, v) in probes {
                let probe = key_with_version(&u, v);
                let i = entries.partition_point(|e| compare_keys(&e.0, &probe).is_lt());
                it.seek(&probe).unwrap();
                prop_assert_eq!(it.valid(), i < entries.len());
                if i < entries.len() {
                    prop_assert_eq!(it.key(), &entries[i].0[..]);
                    it.prev().unwrap();
                    prop_assert_eq!(it.valid(), i > 0);
                    if i > 0 { prop_assert_eq!(it.key(), &entries[i - 1].0[..]); }
                }
                let j = entries.partition_point(|e| compare_keys(&e.0, &probe).is_le()).checked_sub(1);
                it.seek_for_prev(&probe).unwrap();
                prop_assert_eq!(it.valid(), j.is_some());
                if let Some(j) = j {
                    prop_assert_eq!(it.key(), &entries[j].0[..]);
                    prop_assert_eq!(it.value().to_owned(), entries[j].1.clone());
                    it.next().unwrap();
                    prop_assert_eq!(it.valid(), j + 1 < entries.len());
                    if j + 1 < entries.len() { prop_assert_eq!(it.key(), &entries[j + 1].0[..]); }
                }
            }
        }
    }

    #[test]
    fn empty_level_is_never_valid() {
        // Proves every positioning call on no tables leaves the cursor invalid.
        let mut it = ConcatIterator::new(Vec::new());
        let k = key_with_version(b"k", 1);
        it.seek_to_first().unwrap();
        assert!(!it.valid());
        it.seek_to_last().unwrap();
        it.seek(&k).unwrap();
        it.seek_for_prev(&k).unwrap();
        assert!(!it.valid());
    }
}

//! [`VecIterator`]: a [`KvIterator`] over entries held in memory (a transaction's pending
//! writes, test sources).

use std::cmp::Ordering;

use super::iterator::KvIterator;
use crate::error::{Error, Result};
use crate::key::compare_keys;
use crate::value::{ValueRef, ValueStruct};

/// An in-memory cursor over `(internal key, value struct)` entries in
/// [`compare_keys`] order.
///
/// [`VecIterator::new`] sorts its input (stable, so entries with the same internal key keep
/// their input order); [`VecIterator::from_sorted`] takes input that is already sorted and only
/// `debug_assert!`s it. Positioning is a binary search, stepping is O(1), nothing allocates
/// after construction.
#[derive(Debug, Clone, Default)]
pub struct VecIterator {
    entries: Vec<(Vec<u8>, ValueStruct)>,
    /// Index of the current entry; `None` when not positioned.
    pos: Option<usize>,
}

impl VecIterator {
    /// Sorts `entries` by [`compare_keys`] (stable) and returns an unpositioned cursor.
    #[cfg(test)]
    pub fn new(mut entries: Vec<(Vec<u8>, ValueStruct)>) -> Self {
        entries.sort_by(|a, b| compare_keys(&a.0, &b.0));
        Self::from_sorted(entries)
    }

    /// A cursor over entries already in [`compare_keys`] order (checked in debug builds).
    pub fn from_sorted(entries: Vec<(Vec<u8>, ValueStruct)>) -> Self {
        debug_assert!(
            entries
                .windows(2)
                .all(|w| compare_keys(&w[0].0, &w[1].0) != Ordering::Greater),
            "VecIterator::from_sorted given unsorted entries"
        );
        VecIterator { entries, pos: None }
    }

    /// True if there are no entries.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Gives the entries back.
    pub fn into_entries(self) -> Vec<(Vec<u8>, ValueStruct)> {
        self.entries
    }

    fn current(&self) -> Option<&(Vec<u8>, ValueStruct)> {
        self.entries.get(self.pos?)
    }
}

impl KvIterator for VecIterator {
    fn valid(&self) -> bool {
        self.current().is_some()
    }

    /// The current key; empty when not positioned (a contract violation, not a panic).
    fn key(&self) -> &[u8] {
        self.current().map_or(&[], |e| &e.0)
    }

    fn value(&self) -> ValueRef<'_> {
        match self.current() {
            Some((_, v)) => ValueRef {
                meta: v.meta,
                user_meta: v.user_meta,
                expires_at: v.expires_at,
                value: &v.value,
            },
            None => ValueRef {
                meta: 0,
                user_meta: 0,
                expires_at: 0,
                value: &[],
            },
        }
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.pos = (!self.entries.is_empty()).then_some(0);
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.pos = self.entries.len().checked_sub(1);
        Ok(())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        let at = self
            .entries
            .partition_point(|e| compare_keys(&e.0, key) == Ordering::Less);
        self.pos = (at < self.entries.len()).then_some(at);
        Ok(())
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        let at = self
            .entries
            .partition_point(|e| compare_keys(&e.0, key) != Ordering::Greater);
        self.pos = at.checked_sub(1);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let pos = self.pos.ok_or(Error::InvalidRequest(NOT_POSITIONED))?;
        self.pos = (pos + 1 < self.entries.len()).then_some(pos + 1);
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        let pos = self.pos.ok_or(Error::InvalidRequest(NOT_POSITIONED))?;
        self.pos = pos.checked_sub(1);
        Ok(())
    }
}

const NOT_POSITIONED: &str = "next or prev on an iterator that is not positioned";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::key_with_version;

    fn entry(user_key: &[u8], version: u64) -> (Vec<u8>, ValueStruct) {
        let value = ValueStruct {
            value: [user_key, &version.to_le_bytes()].concat(),
            ..ValueStruct::default()
        };
        (key_with_version(user_key, version), value)
    }

    #[test]
    fn new_sorts_by_internal_key_order() {
        // Proves `new` orders by user key then version descending (not memcmp: "a" < "ab"),
        // and that walking forward and back visits every entry once.
        let it = VecIterator::new(vec![
            entry(b"ab", 1),
            entry(b"a", 1),
            entry(b"a", 9),
            entry(b"b", 0),
        ]);
        let want: Vec<Vec<u8>> = vec![
            key_with_version(b"a", 9),
            key_with_version(b"a", 1),
            key_with_version(b"ab", 1),
            key_with_version(b"b", 0),
        ];
        let mut it = it;
        let mut got = Vec::new();
        it.seek_to_first().unwrap();
        while it.valid() {
            got.push(it.key().to_vec());
            assert_eq!(
                &it.value().value[..it.value().value.len() - 8],
                crate::key::user_key(it.key())
            );
            it.next().unwrap();
        }
        assert_eq!(got, want);
        it.seek_to_last().unwrap();
        for k in want.iter().rev() {
            assert_eq!(it.key(), &k[..]);
            it.prev().unwrap();
        }
        assert!(!it.valid());
    }

    #[test]
    fn seeks_land_on_bounds() {
        // Proves seek finds the first key >= target and seek_for_prev the last key <= target,
        // including exact hits, targets between versions, and targets beyond either end.
        let mut it = VecIterator::new(vec![entry(b"k", 5), entry(b"k", 3), entry(b"m", 1)]);
        it.seek(&key_with_version(b"k", 4)).unwrap();
        assert_eq!(it.key(), key_with_version(b"k", 3));
        it.seek(&key_with_version(b"k", 5)).unwrap();
        assert_eq!(it.key(), key_with_version(b"k", 5));
        it.seek(&key_with_version(b"z", 0)).unwrap();
        assert!(!it.valid());
        it.seek_for_prev(&key_with_version(b"k", 4)).unwrap();
        assert_eq!(it.key(), key_with_version(b"k", 5));
        it.seek_for_prev(&key_with_version(b"m", 1)).unwrap();
        assert_eq!(it.key(), key_with_version(b"m", 1));
        it.seek_for_prev(&key_with_version(b"a", 0)).unwrap();
        assert!(!it.valid());
        assert_eq!(it.key(), b"");
        assert!(matches!(it.next(), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn empty_is_never_valid() {
        // Proves every positioning call on no entries leaves the cursor invalid.
        let mut it = VecIterator::new(Vec::new());
        assert!(it.is_empty());
        it.seek_to_first().unwrap();
        assert!(!it.valid());
        it.seek_to_last().unwrap();
        assert!(!it.valid());
        it.seek(b"xxxxxxxxx").unwrap();
        assert!(!it.valid());
        it.seek_for_prev(b"xxxxxxxxx").unwrap();
        assert!(!it.valid());
    }
}

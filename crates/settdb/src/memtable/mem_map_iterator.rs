//! A [`KvIterator`] over a [`MemMap`], safe to use while the writer inserts.
//!
//! It holds the current entry by value (`Bytes` handles, no copy) and steps with a bound
//! search from it, so it holds no lock between steps (the writer is never blocked by an idle
//! iterator). Each step is O(log n) instead of O(1); memtables are small next to
//! the tables below them, so range reads are dominated by table iteration.
//! Entries inserted after the iterator was created may or may not be seen; callers filter by
//! version (a snapshot read never sees versions above its read timestamp).

use std::sync::Arc;

use bytes::Bytes;

use super::mem_map::{MemMap, MemValue};
use crate::error::Result;
use crate::table::KvIterator;
use crate::value::ValueRef;

/// Cursor over a memtable's map.
#[derive(Debug)]
pub struct MemMapIterator {
    list: Arc<MemMap>,
    current: Option<(Bytes, MemValue)>,
}

impl MemMapIterator {
    /// An unpositioned cursor over `list`.
    pub fn new(list: Arc<MemMap>) -> Self {
        MemMapIterator {
            list,
            current: None,
        }
    }
}

impl KvIterator for MemMapIterator {
    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        match &self.current {
            Some((k, _)) => k,
            None => {
                debug_assert!(false, "key() on an invalid iterator");
                &[]
            }
        }
    }

    fn value(&self) -> ValueRef<'_> {
        match &self.current {
            Some((_, v)) => v.as_value_ref(),
            None => {
                debug_assert!(false, "value() on an invalid iterator");
                ValueRef {
                    meta: 0,
                    user_meta: 0,
                    expires_at: 0,
                    value: &[],
                }
            }
        }
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.current = self.list.first();
        Ok(())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.current = self.list.last();
        Ok(())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.current = self.list.lower_bound(key, true);
        Ok(())
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        self.current = self.list.upper_bound(key, true);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        if let Some((k, _)) = self.current.take() {
            self.current = self.list.lower_bound(&k, false);
        }
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        if let Some((k, _)) = self.current.take() {
            self.current = self.list.upper_bound(&k, false);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{compare_keys, key_with_version};
    use proptest::prelude::*;

    fn mv(v: &[u8]) -> MemValue {
        MemValue {
            value: Bytes::copy_from_slice(v),
            ..MemValue::default()
        }
    }

    /// User keys short and long: a tail of 1-3 bytes after a head of 0, 6, 8 or 9 bytes, so
    /// many keys share their 8-byte prefix (the map compares prefixes first) and zero bytes
    /// meet zero padding.
    fn user_key() -> impl Strategy<Value = Vec<u8>> {
        let head = prop_oneof![
            Just(vec![]),
            Just(vec![1u8; 6]),
            Just(vec![1u8; 8]),
            Just(vec![0u8; 9])
        ];
        (head, proptest::collection::vec(0u8..3, 1..4)).prop_map(|(mut h, t)| {
            h.extend(t);
            h
        })
    }

    proptest! {
        #[test]
        fn iterates_in_comparator_order_both_ways(
            entries in proptest::collection::vec((user_key(), 0u64..5), 0..60),
            probe in user_key(), probe_v in 0u64..6,
        ) {
            // Proves forward/backward iteration, seeks and get equal a sorted, deduplicated
            // model.
            let list = Arc::new(MemMap::new());
            let mut model: Vec<Vec<u8>> = Vec::new();
            for (uk, v) in &entries {
                let k = key_with_version(uk, *v);
                list.insert(Bytes::from(k.clone()), mv(uk));
                model.push(k);
            }
            model.sort_by(|a, b| compare_keys(a, b));
            model.dedup();
            let mut it = MemMapIterator::new(list.clone());
            let mut seen = Vec::new();
            it.seek_to_first().unwrap();
            while it.valid() { seen.push(it.key().to_vec()); it.next().unwrap(); }
            prop_assert_eq!(&seen, &model);
            let mut back = Vec::new();
            it.seek_to_last().unwrap();
            while it.valid() { back.push(it.key().to_vec()); it.prev().unwrap(); }
            back.reverse();
            prop_assert_eq!(&back, &model);
            let target = key_with_version(&probe, probe_v);
            it.seek(&target).unwrap();
            let want = model.iter().find(|k| compare_keys(k, &target).is_ge()).cloned();
            prop_assert_eq!(it.valid().then(|| it.key().to_vec()), want);
            it.seek_for_prev(&target).unwrap();
            let want = model.iter().rev().find(|k| compare_keys(k, &target).is_le()).cloned();
            prop_assert_eq!(it.valid().then(|| it.key().to_vec()), want);
            // get() = newest version <= probe_v of the probe's user key.
            let got = list.get(&target).map(|(k, _)| k.to_vec());
            let want = model.iter().find(|k| compare_keys(k, &target).is_ge()
                && crate::key::user_key(k) == &probe[..]).cloned();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn accounting_counts_every_insert() {
        // Proves size = key + value + node overhead per insert, and max_version tracks inserts.
        let list = MemMap::new();
        list.insert(Bytes::from(key_with_version(b"a", 7)), mv(b"xyz"));
        list.insert(Bytes::from(key_with_version(b"b", 3)), mv(b""));
        assert_eq!(list.len(), 2);
        let overhead = crate::memtable::mem_map::NODE_OVERHEAD_BYTES;
        assert_eq!(MemMap::entry_charge(9, 3), 9 + 3 + overhead);
        assert_eq!(list.size_bytes(), (9 + 3 + overhead) + (9 + overhead));
        assert_eq!(list.max_version(), 7);
    }
}

//! The in-memory sorted map of a memtable: internal key → value, with exact size accounting.
//!
//! Built on `crossbeam_skiplist::SkipMap` rather than a hand-rolled arena skiplist: lock-free
//! reads concurrent with the single writer, and no `unsafe` of ours to prove under Miri.
//! Inserting costs one node allocation; keys and values are `Bytes` slices of one buffer per
//! write group, so there is no per-entry copy or allocation beyond the node. Size accounting
//! charges key + value + [`NODE_OVERHEAD_BYTES`] per entry so that `mem_table_size` bounds real
//! memory, not just payload bytes. Insert throughput is measured by `benches/memtable.rs`.
//!
//! Concurrency: `insert` is called by one writer at a time (the write path's writer thread or
//! WAL replay); reads may run from any thread at any time.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use ref_cast::RefCast;

use crate::key::{compare_keys, same_user_key, version};
use crate::value::ValueRef;

/// Bytes one entry costs beyond its key and value: the skiplist node (tower of pointers,
/// reference count, the two `Bytes` handles) and the allocator's rounding; errs high so that
/// the memtable size bounds real memory.
pub const NODE_OVERHEAD_BYTES: u64 = 128;

/// An internal key held by the skiplist, ordered by [`compare_keys`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct MemKey(pub(crate) Bytes);

/// The borrowed form of [`MemKey`], so lookups by `&[u8]` need no allocation.
#[derive(RefCast, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct KeyRef(pub(crate) [u8]);

impl Ord for KeyRef {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_keys(&self.0, &other.0)
    }
}

impl PartialOrd for KeyRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_keys(&self.0, &other.0)
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Borrow<KeyRef> for MemKey {
    fn borrow(&self) -> &KeyRef {
        KeyRef::ref_cast(&self.0)
    }
}

/// A value as the memtable holds it: the value struct's fields with the value bytes shared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemValue {
    /// Meta bits (`value::meta`).
    pub meta: u8,
    /// User meta byte.
    pub user_meta: u8,
    /// Expiry in unix seconds, 0 never.
    pub expires_at: u64,
    /// The value, or an encoded value pointer.
    pub value: Bytes,
}

impl MemValue {
    /// A borrowed view in the shape every iterator hands out.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        ValueRef {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            value: &self.value,
        }
    }
}

/// A concurrent sorted map of internal keys with size accounting.
#[derive(Default)]
pub struct SkipList {
    map: SkipMap<MemKey, MemValue>,
    size_bytes: AtomicU64,
    entries: AtomicUsize,
    max_version: AtomicU64,
}

impl std::fmt::Debug for SkipList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipList")
            .field("entries", &self.len())
            .field("size_bytes", &self.size_bytes())
            .field("max_version", &self.max_version())
            .finish()
    }
}

impl SkipList {
    /// An empty map.
    pub fn new() -> Self {
        SkipList::default()
    }

    /// Bytes an entry of these sizes is charged.
    pub fn entry_charge(key_len: usize, value_len: usize) -> u64 {
        key_len as u64 + value_len as u64 + NODE_OVERHEAD_BYTES
    }

    /// Inserts (or replaces) an entry. REQUIRES: one inserting thread at a time; `key` is a
    /// valid internal key.
    pub fn insert(&self, key: Bytes, value: MemValue) {
        debug_assert!(crate::key::is_valid_internal_key(&key));
        let charge = Self::entry_charge(key.len(), value.value.len());
        self.max_version
            .fetch_max(version(&key), AtomicOrdering::Relaxed);
        self.map.insert(MemKey(key), value);
        self.size_bytes.fetch_add(charge, AtomicOrdering::Relaxed);
        self.entries.fetch_add(1, AtomicOrdering::Relaxed);
    }

    /// The newest version of `key`'s user key at or below `key`'s version: the first entry
    /// `>= key` if it has the same user key.
    pub fn get(&self, key: &[u8]) -> Option<(Bytes, MemValue)> {
        let e = self
            .map
            .lower_bound(Bound::Included(KeyRef::ref_cast(key)))?;
        if !same_user_key(&e.key().0, key) {
            return None;
        }
        Some((e.key().0.clone(), e.value().clone()))
    }

    /// The first entry `>= key` (or `> key` when `inclusive` is false).
    pub(crate) fn lower_bound(&self, key: &[u8], inclusive: bool) -> Option<(Bytes, MemValue)> {
        let k = KeyRef::ref_cast(key);
        let b = if inclusive {
            Bound::Included(k)
        } else {
            Bound::Excluded(k)
        };
        self.map
            .lower_bound(b)
            .map(|e| (e.key().0.clone(), e.value().clone()))
    }

    /// The last entry `<= key` (or `< key` when `inclusive` is false).
    pub(crate) fn upper_bound(&self, key: &[u8], inclusive: bool) -> Option<(Bytes, MemValue)> {
        let k = KeyRef::ref_cast(key);
        let b = if inclusive {
            Bound::Included(k)
        } else {
            Bound::Excluded(k)
        };
        self.map
            .upper_bound(b)
            .map(|e| (e.key().0.clone(), e.value().clone()))
    }

    /// The first entry.
    pub(crate) fn first(&self) -> Option<(Bytes, MemValue)> {
        self.map
            .front()
            .map(|e| (e.key().0.clone(), e.value().clone()))
    }

    /// The last entry.
    pub(crate) fn last(&self) -> Option<(Bytes, MemValue)> {
        self.map
            .back()
            .map(|e| (e.key().0.clone(), e.value().clone()))
    }

    /// Accounted size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes.load(AtomicOrdering::Relaxed)
    }

    /// Number of inserts.
    pub fn len(&self) -> usize {
        self.entries.load(AtomicOrdering::Relaxed)
    }

    /// True if nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Largest version inserted (0 if empty).
    pub fn max_version(&self) -> u64 {
        self.max_version.load(AtomicOrdering::Relaxed)
    }
}

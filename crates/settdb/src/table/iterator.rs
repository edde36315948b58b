//! The cursor trait shared by every sorted source of entries: block, table, concatenated
//! level, k-way merge, memtable and pending writes.
//!
//! Entries are internal keys in [`crate::key::compare_keys`] order with their value structs.
//! Positioning methods return `Err` when bytes read from disk are bad; after an error the
//! iterator is invalid until the next successful positioning call.

use crate::error::Result;
use crate::value::ValueRef;

/// A bidirectional cursor over internal keys in ascending [`crate::key::compare_keys`] order.
pub trait KvIterator: Send {
    /// True if positioned at an entry.
    fn valid(&self) -> bool;

    /// The internal key at the cursor. REQUIRES: `valid()`.
    fn key(&self) -> &[u8];

    /// The value struct at the cursor. REQUIRES: `valid()`.
    fn value(&self) -> ValueRef<'_>;

    /// Positions at the first entry (invalid if empty).
    fn seek_to_first(&mut self) -> Result<()>;

    /// Positions at the last entry (invalid if empty).
    fn seek_to_last(&mut self) -> Result<()>;

    /// Positions at the first entry whose key is `>= key` (invalid if none).
    fn seek(&mut self, key: &[u8]) -> Result<()>;

    /// Positions at the last entry whose key is `<= key` (invalid if none).
    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()>;

    /// Moves to the next entry (invalid past the last). REQUIRES: `valid()`.
    fn next(&mut self) -> Result<()>;

    /// Moves to the previous entry (invalid before the first). REQUIRES: `valid()`.
    fn prev(&mut self) -> Result<()>;
}

impl<I: KvIterator + ?Sized> KvIterator for Box<I> {
    fn valid(&self) -> bool {
        (**self).valid()
    }
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn value(&self) -> ValueRef<'_> {
        (**self).value()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        (**self).seek_to_first()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        (**self).seek_to_last()
    }
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        (**self).seek(key)
    }
    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        (**self).seek_for_prev(key)
    }
    fn next(&mut self) -> Result<()> {
        (**self).next()
    }
    fn prev(&mut self) -> Result<()> {
        (**self).prev()
    }
}

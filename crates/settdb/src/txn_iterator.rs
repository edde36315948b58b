//! `TxnIterator`: a transaction's view of the database in key order (Badger's iterator as a
//! transaction hands it out): the snapshot at the transaction's `read_ts` plus its own pending
//! writes, with every item it returns recorded as a read for conflict detection.
//!
//! The iterator does not borrow the transaction: it shares the transaction's read set, so the
//! transaction can still be written to while an iterator is open (the iterator keeps the
//! pending writes it was created with, as Badger does).

use std::sync::Arc;

use crate::error::Result;
use crate::read::{DbIterator, Item};
use crate::txn::ReadSet;

/// Cursor and Rust `Iterator` over a transaction's snapshot.
#[derive(Debug)]
pub struct TxnIterator {
    inner: DbIterator,
    /// The transaction's read set (`None`: reads are not tracked).
    reads: Option<Arc<ReadSet>>,
    /// Only this user key (a key iterator).
    exact_key: Option<Vec<u8>>,
    started: bool,
}

impl TxnIterator {
    pub(crate) fn new(
        inner: DbIterator,
        reads: Option<Arc<ReadSet>>,
        exact_key: Option<Vec<u8>>,
    ) -> Self {
        TxnIterator {
            inner,
            reads,
            exact_key,
            started: false,
        }
    }

    fn record(&self, key: &[u8]) {
        if let Some(reads) = &self.reads {
            reads.record(key);
        }
    }

    /// The transaction's read timestamp.
    pub fn read_ts(&self) -> u64 {
        self.inner.read_ts()
    }

    /// Positions at the first item (the last, in reverse).
    pub fn rewind(&mut self) -> Result<()> {
        self.started = true;
        match self.exact_key.clone() {
            // Seeking the key itself works both ways: forward lands on its newest version,
            // reverse on its oldest, and the prefix bound ends the walk after it.
            Some(k) => self.inner.seek(&k),
            None => self.inner.rewind(),
        }
    }

    /// Positions at the first key `>= key` (reverse: the last `<= key`). Records `key` as
    /// read (as Badger's `Seek` does): what the transaction learned includes that `key` held
    /// nothing newer, so a commit that writes `key` meanwhile is a conflict.
    pub fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.started = true;
        if !key.is_empty() {
            self.record(key);
        }
        self.inner.seek(key)
    }

    /// True if positioned at an item.
    pub fn valid(&self) -> bool {
        self.inner.valid()
            && self
                .exact_key
                .as_ref()
                .is_none_or(|k| self.inner.item().key() == k.as_slice())
    }

    /// True if positioned at an item whose key starts with `prefix`.
    pub fn valid_for_prefix(&self, prefix: &[u8]) -> bool {
        self.valid() && self.inner.item().key().starts_with(prefix)
    }

    /// The current item; records its key as read. REQUIRES: `valid()`.
    pub fn item(&self) -> &Item {
        let item = self.inner.item();
        self.record(item.key());
        item
    }

    /// Moves to the next item.
    #[allow(clippy::should_implement_trait)] // the cursor step; the trait is implemented too
    pub fn next(&mut self) -> Result<()> {
        self.inner.next()
    }
}

impl Iterator for TxnIterator {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Result<Item>> {
        if !self.started {
            if let Err(e) = self.rewind() {
                return Some(Err(e));
            }
        }
        let item = match Iterator::next(&mut self.inner)? {
            Ok(item) => item,
            Err(e) => return Some(Err(e)),
        };
        if self
            .exact_key
            .as_ref()
            .is_some_and(|k| item.key() != k.as_slice())
        {
            return None;
        }
        self.record(item.key());
        Some(Ok(item))
    }
}

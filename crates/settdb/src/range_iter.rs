//! [`RangeIter`]: the keys of a Rust range or a prefix as a double-ended iterator, built on
//! two [`DbIterator`] cursors of a transaction's snapshot, one walking up from the start and
//! one walking down from the end, each made when first needed. The two stop where they meet,
//! so a key is yielded once whichever ends are pulled. The keys yielded count as read by the
//! transaction, and so does an included bound once its cursor is made (as Badger's `Seek`
//! records its key): a range that finds its start key absent learned that, so a concurrent
//! commit of that key is a conflict. The key past a bound a cursor looked at to find the end
//! is not a read.

use std::ops::Bound;
use std::sync::Arc;

use crate::error::Result;
use crate::read::{DbIterator, Item, IteratorOptions};
use crate::txn::ReadSet;

/// Makes a cursor of the transaction with the given options (`reverse` set for the back one).
pub(crate) type MakeCursor = Box<dyn FnMut(IteratorOptions) -> Result<DbIterator> + Send>;

/// The newest visible version of each key in a range, in key order; double-ended (`.rev()`
/// walks down from the end). Made by [`crate::Txn::range`] and [`crate::Txn::prefix`]; every
/// key it yields counts as read by the transaction, as with any transaction iterator, and so
/// does an included bound (see the module doc). An error is yielded once, then the iteration
/// ends.
pub struct RangeIter {
    make: MakeCursor,
    /// The transaction's read set (`None`: reads are not tracked).
    reads: Option<Arc<ReadSet>>,
    opts: IteratorOptions,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    front: Option<DbIterator>,
    back: Option<DbIterator>,
    /// The last key yielded from the front (the back must stay above it), and from the back.
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for RangeIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeIter")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl RangeIter {
    /// The keys in `(start, end)` (and starting with `opts.prefix`), through cursors from
    /// `make`. Table pruning: when both bounds are keys, their common prefix is a prefix every
    /// key between them has, so it joins `opts.prefix` (whichever is longer; both hold).
    pub(crate) fn new(
        make: MakeCursor,
        reads: Option<Arc<ReadSet>>,
        mut opts: IteratorOptions,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
    ) -> Self {
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
            (&start, &end)
        {
            let common = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
            if common > opts.prefix.len() {
                opts.prefix = a[..common].to_vec();
            }
        }
        let empty = match (&start, &end) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        };
        RangeIter {
            make,
            reads,
            opts,
            start,
            end,
            front: None,
            back: None,
            front_last: None,
            back_last: None,
            done: empty,
        }
    }

    /// Records `key` as read by the transaction (when it tracks reads).
    fn record(&self, key: &[u8]) {
        if let Some(reads) = &self.reads {
            reads.record(key);
        }
    }

    fn below_end(&self, key: &[u8]) -> bool {
        let in_range = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        in_range && self.back_last.as_deref().is_none_or(|b| key < b)
    }

    fn above_start(&self, key: &[u8]) -> bool {
        let in_range = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        in_range && self.front_last.as_deref().is_none_or(|f| key > f)
    }

    /// The cursor of one end (`back`: the reverse one from the end), made and positioned at
    /// its bound on first use; an included bound counts as read then.
    fn cursor(&mut self, back: bool) -> Result<&mut DbIterator> {
        let (slot, bound) = if back {
            (&mut self.back, &self.end)
        } else {
            (&mut self.front, &self.start)
        };
        if slot.is_none() {
            let mut it = (self.make)(self.opts.clone().with_reverse(back))?;
            match bound {
                Bound::Included(k) | Bound::Excluded(k) => it.seek(k)?,
                Bound::Unbounded => it.rewind()?,
            }
            if let (Bound::Included(k), Some(reads)) = (bound, &self.reads) {
                reads.record(k);
            }
            *slot = Some(it);
        }
        Ok(slot.as_mut().expect("made above"))
    }

    fn step(&mut self, from_back: bool) -> Option<Result<Item>> {
        loop {
            if self.done {
                return None;
            }
            let cursor = self.cursor(from_back);
            let item = match cursor.map(Iterator::next) {
                Ok(Some(Ok(item))) => item,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(Err(e))) | Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let key = item.key();
            if from_back {
                // Seeking an excluded end lands on it when it exists: step over it.
                if matches!(&self.end, Bound::Excluded(e) if e.as_slice() == key) {
                    continue;
                }
                if !self.above_start(key) {
                    self.done = true;
                    return None;
                }
                self.back_last = Some(key.to_vec());
            } else {
                if matches!(&self.start, Bound::Excluded(s) if s.as_slice() == key) {
                    continue;
                }
                if !self.below_end(key) {
                    self.done = true;
                    return None;
                }
                self.front_last = Some(key.to_vec());
            }
            self.record(item.key());
            return Some(Ok(item));
        }
    }
}

impl Iterator for RangeIter {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Result<Item>> {
        self.step(false)
    }
}

impl DoubleEndedIterator for RangeIter {
    fn next_back(&mut self) -> Option<Result<Item>> {
        self.step(true)
    }
}

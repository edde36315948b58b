//! Sorted string tables and the iterators over sorted sources.
//!
//! Format page: docs/format/table.md.

mod iterator;
mod merge_iterator;
mod vec_iterator;

pub use iterator::KvIterator;
pub use merge_iterator::MergeIterator;
pub use vec_iterator::VecIterator;

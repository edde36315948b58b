//! Sorted string tables and the iterators over sorted sources.
//!
//! Format page: docs/format/table.md.

mod iterator;

pub use iterator::KvIterator;

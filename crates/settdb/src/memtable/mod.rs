//! Memtables: a concurrent skiplist per memtable, backed by its own write-ahead log.

mod skiplist;
mod skiplist_iterator;

pub use skiplist::{MemValue, SkipList, NODE_OVERHEAD_BYTES};
pub use skiplist_iterator::SkipListIterator;

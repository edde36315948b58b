//! Memtables: a concurrent skiplist per memtable, backed by its own write-ahead log.

#[allow(clippy::module_inception)]
mod memtable;
mod memtables;
mod skiplist;
mod skiplist_iterator;

pub use memtable::{parse_wal_file_name, wal_file_name, Memtable};
pub use memtables::{Memtables, MemtablesView};
pub use skiplist::{MemValue, SkipList, NODE_OVERHEAD_BYTES};
pub use skiplist_iterator::SkipListIterator;

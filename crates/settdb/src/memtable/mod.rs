//! Memtables: a sorted map per memtable (`MemMap`), backed by its own write-ahead log.

mod mem_map;
mod mem_map_iterator;
#[allow(clippy::module_inception)]
mod memtable;
mod memtables;

pub use mem_map::{MemMap, MemValue, NODE_OVERHEAD_BYTES};
pub use mem_map_iterator::MemMapIterator;
pub use memtable::{parse_wal_file_name, wal_file_name, Memtable};
pub use memtables::{Memtables, MemtablesView};

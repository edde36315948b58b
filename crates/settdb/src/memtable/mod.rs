//! Memtables: a sorted map per memtable (`MemMap`), backed by its own write-ahead log.

mod mem_map;
mod mem_map_iterator;
#[allow(clippy::module_inception)]
mod memtable;
mod memtables;

#[cfg_attr(not(test), allow(unused_imports))]
pub use mem_map::{MemMap, MemValue};
#[cfg_attr(not(test), allow(unused_imports))]
pub use memtable::{parse_wal_file_name, wal_file_name, Memtable};
#[cfg_attr(not(test), allow(unused_imports))]
pub use memtables::{Memtables, MemtablesView};

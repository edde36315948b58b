//! Sorted string tables and the iterators over sorted sources.
//!
//! A table is written once by [`TableBuilder`] (data blocks of prefix-compressed entries, a
//! bloom filter over user keys, a block index, a meta record and a fixed footer) and read by
//! [`Table`], which keeps the index and filter in memory and reads data blocks on demand.
//! [`TableIterator`] walks one table, [`ConcatIterator`] the disjoint tables of one level.
//!
//! Format page: docs/format/table.md.

mod block;
mod block_builder;
mod block_frame;
mod block_iterator;
mod bloom;
mod builder;
mod cache;
#[cfg(test)]
mod cache_tests;
mod chunk_writer;
mod compression;
mod concat_iterator;
mod footer;
mod index;
mod index_builder;
mod iterator;
mod merge_iterator;
mod meta;
mod reader;
mod table_iterator;
mod table_options;
#[cfg(test)]
mod test_support;
mod vec_iterator;

#[cfg_attr(not(test), allow(unused_imports))]
pub use block::Block;
#[cfg_attr(not(test), allow(unused_imports))]
pub use block_frame::decode_stored_block;
#[cfg_attr(not(test), allow(unused_imports))]
pub use block_iterator::BlockIterator;
#[cfg_attr(not(test), allow(unused_imports))]
pub use builder::{TableBuilder, TableSummary};
#[cfg_attr(not(test), allow(unused_imports))]
pub use cache::{CacheMetrics, CacheStats, TableCaches};
#[cfg_attr(not(test), allow(unused_imports))]
pub use concat_iterator::{ConcatIterator, TableRun};
#[cfg_attr(not(test), allow(unused_imports))]
pub use iterator::KvIterator;
#[cfg_attr(not(test), allow(unused_imports))]
pub use merge_iterator::MergeIterator;
#[cfg_attr(not(test), allow(unused_imports))]
pub use reader::{BlockEntry, Probe, Table};
#[cfg_attr(not(test), allow(unused_imports))]
pub use table_iterator::TableIterator;
#[cfg_attr(not(test), allow(unused_imports))]
pub use table_options::{TableBuilderOptions, TableOpenOptions};
#[cfg_attr(not(test), allow(unused_imports))]
pub use vec_iterator::VecIterator;

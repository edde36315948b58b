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

pub use block::Block;
pub use block_builder::BlockBuilder;
pub use block_frame::{append_stored_block, decode_stored_block, BLOCK_TRAILER_LEN};
pub use block_iterator::BlockIterator;
pub use bloom::{bloom_hash, BloomFilter};
pub use builder::{TableBuilder, TableSummary};
pub use compression::{Compressor, MAX_BLOCK_BYTES};
pub use concat_iterator::ConcatIterator;
pub use footer::{Footer, Region, FOOTER_LEN, FORMAT_VERSION, TABLE_MAGIC};
pub use index::{BlockHandle, BlockIndex};
pub use iterator::KvIterator;
pub use merge_iterator::MergeIterator;
pub use meta::TableMeta;
pub use reader::Table;
pub use table_iterator::TableIterator;
pub use table_options::{TableBuilderOptions, TableOpenOptions, MAX_TARGET_BLOCK_BYTES};
pub use vec_iterator::VecIterator;

//! The read path: point reads ([`get_newest`]) and range reads ([`DbIterator`] over the
//! merged sources of one snapshot, yielding [`Item`]s), all through [`Reader`].

mod db_iterator;
mod get;
mod item;
mod iterator_options;
#[cfg(test)]
mod iterator_tests;
mod prefix_range;
mod reader;
mod sources;

pub use db_iterator::DbIterator;
pub(crate) use get::get_newest;
pub use item::Item;
pub use iterator_options::IteratorOptions;
pub(crate) use prefix_range::PrefixRange;
pub(crate) use reader::Reader;
pub(crate) use sources::ReadSnapshot;

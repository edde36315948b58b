//! The read path.

mod get;

pub use get::get_newest;

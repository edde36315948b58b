//! MVCC timestamps: the oracle (read and commit timestamps, conflict detection) and its
//! watermarks.

mod oracle;
mod read_mark;
mod read_set;
mod watermark;

pub use oracle::{fingerprint, Oracle};
pub use read_mark::ReadSlot;
pub use read_set::ReadSet;
pub use watermark::WaterMark;

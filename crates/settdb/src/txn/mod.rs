//! MVCC timestamps: the oracle (read and commit timestamps, conflict detection) and its
//! watermarks.

mod oracle;
mod watermark;

pub use oracle::{fingerprint, Oracle};
pub use watermark::WaterMark;

//! MVCC timestamps: watermarks (and, with the transaction API, the oracle).

mod watermark;

pub use watermark::WaterMark;

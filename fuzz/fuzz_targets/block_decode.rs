//! Any bytes, as a raw data block or as a stored block (checksum not checked, so the
//! decompressors see the bytes), decode to a block that iterates both ways, or fail with
//! `Corruption`; never a panic. The body is `settdb::fuzzing::block_decode`, which the
//! library's proptests run too (crates/settdb/src/table/block.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| settdb::fuzzing::block_decode(data));

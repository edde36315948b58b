//! Any bytes open as a table and iterate both ways with every verification mode, or fail with
//! a typed error (`Corruption`, `ChecksumMismatch`, `UnsupportedVersion`); never a panic and
//! never a read outside the file. The body is `settdb::fuzzing::table_open`, which the
//! library's proptests run too (crates/settdb/src/table/reader.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| settdb::fuzzing::table_open(data));

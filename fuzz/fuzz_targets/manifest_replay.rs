//! Any bytes given to MANIFEST replay yield a state or a typed error, never a panic. The body
//! is `settdb::fuzzing::manifest_replay`, which the library's tests run too
//! (crates/settdb/src/manifest/reader.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| settdb::fuzzing::manifest_replay(data));

//! Replays arbitrary bytes as a log (memtable WAL or value log), reads every replayed record
//! back by its position, decodes the bytes as one record, and follows a value pointer taken
//! from the input. Any input must give a value or a typed error, never a panic. Format page:
//! docs/format/log.md. The body is `settdb::fuzzing::log_replay`, which the library's tests
//! and proptests run too (crates/settdb/src/log/replay.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| settdb::fuzzing::log_replay(data));

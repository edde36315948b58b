//! Any bytes given to MANIFEST replay yield a state or a typed error, never a panic.
//! (Its body is mirrored by the unit test `manifest::reader::tests::fuzz_target_body_runs`.)

#![no_main]

use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(r) = settdb::manifest::replay(data, Path::new("MANIFEST"), 7, 0) {
        assert!(r.valid_len <= r.file_len);
        assert!(r.manifest.tables().len() as u64 == r.manifest.live_tables());
    }
});

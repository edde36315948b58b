//! Any bytes, as a raw data block or as a stored block (checksum not checked, so the
//! decompressors see the bytes), decode to a block that iterates both ways, or fail with
//! `Corruption`; never a panic. Mirrors `fuzz_block_decode` in
//! crates/settdb/src/table/test_support.rs (run there as a proptest).
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use settdb::table::{decode_stored_block, Block, BlockIterator, KvIterator};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz");
    let mut candidates = vec![data.to_vec()];
    match decode_stored_block(path, 0, data.to_vec(), false, true) {
        Ok(raw) => candidates.push(raw),
        Err(e) => assert!(e.is_corruption(), "{e}"),
    }
    for bytes in candidates {
        match Block::decode(bytes, path, 0) {
            Ok(block) => walk(Arc::new(block)),
            Err(e) => assert!(e.is_corruption(), "{e}"),
        }
    }
});

fn walk(block: Arc<Block>) {
    let mut it = BlockIterator::new(block);
    let mut forward = Vec::new();
    it.seek_to_first().unwrap();
    while it.valid() {
        forward.push(it.key().to_vec());
        let _ = it.value();
        it.next().unwrap();
    }
    let mut backward = Vec::new();
    it.seek_to_last().unwrap();
    while it.valid() {
        backward.push(it.key().to_vec());
        it.prev().unwrap();
    }
    backward.reverse();
    assert_eq!(forward, backward);
    for k in &forward {
        it.seek(k).unwrap();
        assert_eq!(it.key(), &k[..]);
    }
}

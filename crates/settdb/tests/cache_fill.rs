//! Which reads fill the block cache: point reads and user iterators do; compaction and
//! `Db::verify_checksum` (a pass over every table) do not, so a background or maintenance pass
//! never evicts the blocks point reads keep hitting (RocksDB's `fill_cache = false`).

mod common;

use std::sync::Arc;

use common::{small_options, value_for};
use settdb::io::FsStorage;
use settdb::{Db, IteratorOptions};

#[test]
fn verify_checksum_fills_no_block_cache() {
    // Regression: `Db::verify_checksum` walked the tree's newest versions (to check their
    // value pointers) with filling cursors, so one verification inserted every block of every
    // table. Proves verify inserts nothing, then that a user scan of the same tables does
    // (the contrast shows the walk reads blocks the cache could have taken).
    let dir = tempfile::tempdir().unwrap();
    let opts = small_options(dir.path(), Arc::new(FsStorage::new()))
        .with_block_cache_size(4 << 20)
        .with_index_cache_size(0);
    let db = Db::open(opts).unwrap();
    for i in 0..3000u64 {
        let k = format!("k{i:05}");
        // Every fourth value goes to the value log, so the walk has pointers to check.
        let len = if i % 4 == 0 { 100 } else { 20 };
        db.set(k.clone().into_bytes(), value_for(k.as_bytes(), 0, len))
            .unwrap();
    }
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    let before = db.cache_metrics().block;
    assert_eq!((before.inserts, before.entries), (0, 0), "{before:?}");

    let report = db.verify_checksum().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.blocks > 10, "{report:?}");
    let after = db.cache_metrics().block;
    assert_eq!(
        (after.inserts, after.entries),
        (0, 0),
        "verify_checksum filled the block cache: {after:?}"
    );
    assert_eq!(
        (after.hits, after.misses),
        (before.hits, before.misses),
        "verification's lookups are not the readers': they are not counted"
    );

    let txn = db.new_transaction(false).unwrap();
    let mut it = txn.iter(IteratorOptions::default()).unwrap();
    it.rewind().unwrap();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next().unwrap();
    }
    drop(it);
    drop(txn);
    assert_eq!(n, 3000);
    let scanned = db.cache_metrics().block;
    assert!(
        scanned.inserts as usize >= report.blocks as usize / 2,
        "{scanned:?}"
    );
    db.close().unwrap();
}

//! The block and index caches through the public API (issue 10): hits and misses counted,
//! reads right against a model with caches small enough to evict all the time, compaction
//! that does not fill the block cache, a damaged block never cached, memory within capacity.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{seed, small_options, value_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::FsStorage;
use settdb::{ChecksumVerificationMode, Db, IteratorOptions, Options};

fn opts(dir: &std::path::Path, block: u64, index: u64) -> Options {
    small_options(dir, Arc::new(FsStorage::new()))
        .with_block_cache_size(block)
        .with_index_cache_size(index)
}

#[test]
fn a_second_read_of_a_block_is_a_hit_and_compaction_fills_nothing() {
    // Proves a point read of a flushed key misses once then hits; flushes, compactions and
    // flatten insert no block; metrics report capacity and bytes within it; a cache of 0 is
    // off (all zero).
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), 1 << 20, 0)).unwrap();
    for i in 0..3000u64 {
        let k = format!("k{i:05}");
        db.set(k.clone().into_bytes(), value_for(k.as_bytes(), 0, 40))
            .unwrap();
    }
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    db.flatten().unwrap();
    let m = db.cache_metrics().block;
    assert_eq!(
        (m.inserts, m.entries),
        (0, 0),
        "compaction filled the cache: {m:?}"
    );
    assert_eq!(m.capacity, 1 << 20);
    assert_eq!(
        db.get(b"k01234").unwrap(),
        Some(value_for(b"k01234", 0, 40))
    );
    let m1 = db.cache_metrics().block;
    assert!(m1.misses >= 1 && m1.inserts >= 1, "{m1:?}");
    assert_eq!(
        db.get(b"k01234").unwrap(),
        Some(value_for(b"k01234", 0, 40))
    );
    let m2 = db.cache_metrics().block;
    assert_eq!(m2.hits, m1.hits + 1, "{m2:?}");
    assert_eq!(m2.misses, m1.misses);
    assert!(m2.bytes > 0 && m2.bytes <= m2.capacity);
    assert_eq!(db.cache_metrics().index, settdb::CacheStats::default());
    db.close().unwrap();

    let db = Db::open(opts(dir.path(), 0, 0)).unwrap();
    assert_eq!(
        db.get(b"k00007").unwrap(),
        Some(value_for(b"k00007", 0, 40))
    );
    assert_eq!(db.cache_metrics(), settdb::CacheMetrics::default());
    db.close().unwrap();
}

#[test]
fn tiny_caches_evict_all_the_time_and_reads_stay_right() {
    // Proves, against a BTreeMap model, that gets and full scans are right with a 16 KiB
    // block cache and an 8 KiB index cache (far smaller than the data: every read may evict),
    // across overwrites, deletes, flushes, compactions and a reopen; both caches stay within
    // their capacity and both evict.
    let dir = tempfile::tempdir().unwrap();
    let s = seed(4242);
    let mut rng = StdRng::seed_from_u64(s);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for round in 0..3u64 {
        let db = Db::open(opts(dir.path(), 16 << 10, 8 << 10)).unwrap();
        for i in 0..4000u64 {
            let k = format!("key{:05}", rng.random_range(0..2500u32)).into_bytes();
            if rng.random_ratio(1, 9) {
                db.delete(k.clone()).unwrap();
                model.remove(&k);
            } else {
                let len = if rng.random_ratio(1, 4) { 300 } else { 30 };
                let v = value_for(&k, round * 10_000 + i, len);
                db.set(k.clone(), v.clone()).unwrap();
                model.insert(k, v);
            }
            if i % 1000 == 999 {
                db.flush().unwrap();
            }
        }
        for _ in 0..3000 {
            let k = format!("key{:05}", rng.random_range(0..2600u32)).into_bytes();
            assert_eq!(db.get(&k).unwrap(), model.get(&k).cloned(), "seed {s}");
        }
        let txn = db.new_transaction(false).unwrap();
        let mut it = txn.iter(IteratorOptions::default()).unwrap();
        it.rewind().unwrap();
        let mut seen = BTreeMap::new();
        while it.valid() {
            seen.insert(it.item().key().to_vec(), it.item().value().unwrap());
            it.next().unwrap();
        }
        drop(it);
        drop(txn);
        assert!(seen == model, "scan differs from the model (seed {s})");
        let m = db.cache_metrics();
        for c in [m.block, m.index] {
            assert!(c.bytes <= c.capacity, "{c:?}");
            assert!(c.hits > 0 && c.misses > 0, "{c:?}");
        }
        assert!(m.block.evictions > 0, "{m:?}");
        db.close().unwrap();
    }
}

#[test]
fn a_damaged_block_is_an_error_every_time_and_never_cached() {
    // Proves a block whose checksum fails is reported on every read (a cache must not keep a
    // failed read, nor a half-decoded block), and the cache holds nothing from it.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), 1 << 20, 0)).unwrap();
    for i in 0..200u64 {
        let k = format!("k{i:04}");
        db.set(k.clone().into_bytes(), value_for(k.as_bytes(), 1, 30))
            .unwrap();
    }
    db.close().unwrap();
    let sst = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    bytes[20] ^= 0x55; // inside the first data block
    std::fs::write(&sst, &bytes).unwrap();
    let o = opts(dir.path(), 1 << 20, 0)
        .with_checksum_verification_mode(ChecksumVerificationMode::OnBlockRead);
    let db = Db::open(o).unwrap();
    for _ in 0..3 {
        assert!(db.get(b"k0000").unwrap_err().is_corruption());
    }
    let m = db.cache_metrics().block;
    assert_eq!((m.inserts, m.entries, m.hits), (0, 0, 0), "{m:?}");
    db.close().unwrap();
}

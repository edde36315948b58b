//! Readers on several threads sharing tiny block and index caches with a writer whose flushes
//! and compactions replace tables under them: every read returns the right value, so no
//! cached block or index of one table is served for another, and both caches stay within
//! their capacity.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{seed, small_options, value_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::FsStorage;
use settdb::{Db, IteratorOptions};

const STABLE_KEYS: u32 = 1500;

fn stable_key(i: u32) -> Vec<u8> {
    format!("s{i:05}").into_bytes()
}

/// Random gets and one short scan of the stable keys, checked exactly; returns reads done.
fn read_round(db: &Db, rng: &mut StdRng, s: u64) -> u64 {
    for _ in 0..200 {
        let i = rng.random_range(0..STABLE_KEYS);
        let k = stable_key(i);
        assert_eq!(
            db.get(&k).unwrap(),
            Some(value_for(&k, 1, 40 + (i as usize % 3) * 100)),
            "seed {s}"
        );
    }
    let start = rng.random_range(0..STABLE_KEYS - 50);
    let txn = db.new_transaction(false).unwrap();
    let mut it = txn.iter(IteratorOptions::default()).unwrap();
    it.seek(&stable_key(start)).unwrap();
    for i in start..start + 50 {
        assert!(it.valid(), "seed {s}");
        let k = stable_key(i);
        assert_eq!(it.item().key(), &k[..], "seed {s}");
        let want = value_for(&k, 1, 40 + (i as usize % 3) * 100);
        assert_eq!(it.item().value().unwrap(), want, "seed {s}");
        it.next().unwrap();
    }
    250
}

#[test]
fn readers_share_tiny_caches_while_compaction_replaces_tables() {
    // Proves, with a 16 KiB block cache and a 4 KiB index cache, that two reader threads'
    // gets and scans of a stable key set stay exact while the main thread overwrites another
    // key range, flushing and compacting so that the tables holding the stable keys are
    // rewritten and deleted under the readers.
    let dir = tempfile::tempdir().unwrap();
    let s = seed(77);
    let opts = small_options(dir.path(), Arc::new(FsStorage::new()))
        .with_block_cache_size(16 << 10)
        .with_index_cache_size(4 << 10);
    let db = Db::open(opts).unwrap();
    for i in 0..STABLE_KEYS {
        let k = stable_key(i);
        db.set(k.clone(), value_for(&k, 1, 40 + (i as usize % 3) * 100))
            .unwrap();
    }
    db.flush().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|t| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(s + t);
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) || reads < 2000 {
                    reads += read_round(&db, &mut rng, s);
                }
            })
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(s ^ 0xabcd);
    for round in 0..6u64 {
        for _ in 0..1500 {
            // Keys on both sides of the stable range, so compactions rewrite its tables.
            let side = if rng.random_bool(0.5) { "a" } else { "t" };
            let k = format!("{side}{:05}", rng.random_range(0..3000u32)).into_bytes();
            db.set(k.clone(), value_for(&k, round, 60)).unwrap();
        }
        db.flush().unwrap();
        db.compact_until_settled().unwrap();
    }
    db.flatten().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let m = db.cache_metrics();
    for c in [m.block, m.index] {
        assert!(c.bytes <= c.capacity, "{c:?}");
        assert!(c.hits > 0 && c.misses > 0 && c.evictions > 0, "{c:?}");
    }
    db.close().unwrap();
}

//! A database whose tables keep no index or bloom filter in memory (`index_cache_size > 0`),
//! with an index cache and a block cache far smaller than the data: gets, forward and reverse
//! scans and seeks stay right against a model through flushes, compactions, `flatten`, a
//! verification and a read-only reopen.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{seed, small_options, value_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::FsStorage;
use settdb::{Db, IteratorOptions, Options};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn opts(dir: &std::path::Path) -> Options {
    small_options(dir, Arc::new(FsStorage::new()))
        .with_block_cache_size(64 << 10)
        .with_index_cache_size(4 << 10)
}

/// Every key and value in `reverse` order or not, as the database iterates them.
fn scan(db: &Db, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let txn = db.new_transaction(false).unwrap();
    let o = IteratorOptions {
        reverse,
        ..IteratorOptions::default()
    };
    let mut it = txn.iter(o).unwrap();
    it.rewind().unwrap();
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.item().key().to_vec(), it.item().value().unwrap()));
        it.next().unwrap();
    }
    out
}

/// The first key at or after `probe` (at or before it in reverse), as the database seeks it.
fn seek(db: &Db, probe: &[u8], reverse: bool) -> Option<Vec<u8>> {
    let txn = db.new_transaction(false).unwrap();
    let o = IteratorOptions {
        reverse,
        ..IteratorOptions::default()
    };
    let mut it = txn.iter(o).unwrap();
    it.seek(probe).unwrap();
    it.valid().then(|| it.item().key().to_vec())
}

fn check(db: &Db, model: &Model, rng: &mut StdRng, s: u64) {
    for _ in 0..600 {
        let k = format!("key{:05}", rng.random_range(0..2100u32)).into_bytes();
        assert_eq!(db.get(&k).unwrap(), model.get(&k).cloned(), "seed {s}");
        let forward = model.range(k.clone()..).next().map(|e| e.0.clone());
        assert_eq!(seek(db, &k, false), forward, "seed {s}");
        let backward = model.range(..=k.clone()).next_back().map(|e| e.0.clone());
        assert_eq!(seek(db, &k, true), backward, "seed {s}");
    }
    let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(scan(db, false) == want, "forward scan differs (seed {s})");
    let mut rev = want;
    rev.reverse();
    assert!(scan(db, true) == rev, "reverse scan differs (seed {s})");
    let snap = db.levels();
    for level in 0..snap.level_count() {
        for t in snap.tables(level) {
            assert_eq!(
                t.table().memory_bytes(),
                0,
                "table {} holds its index",
                t.id()
            );
        }
    }
    let m = db.cache_metrics();
    for c in [m.block, m.index] {
        assert!(c.bytes <= c.capacity, "{c:?}");
    }
    assert!(m.index.hits + m.index.misses > 0, "{m:?}");
}

#[test]
fn index_cache_tables_read_right_through_compaction_flatten_and_reopen() {
    // Proves the reads above against a BTreeMap model after a seeded load of overwrites and
    // deletes with flushes, after compacting until settled, after flatten, with a clean
    // verification, and after a read-only reopen; every table holds no index in memory, the
    // 4 KiB index cache (about one table's index) hits, misses and evicts, and both caches
    // stay within their capacity.
    let dir = tempfile::tempdir().unwrap();
    let s = seed(1010);
    let mut rng = StdRng::seed_from_u64(s);
    let mut model = Model::new();
    let db = Db::open(opts(dir.path())).unwrap();
    for i in 0..8000u64 {
        let k = format!("key{:05}", rng.random_range(0..2000u32)).into_bytes();
        if rng.random_ratio(1, 8) {
            db.delete(k.clone()).unwrap();
            model.remove(&k);
        } else {
            let len = if rng.random_ratio(1, 5) { 200 } else { 24 };
            let v = value_for(&k, i, len);
            db.set(k.clone(), v.clone()).unwrap();
            model.insert(k, v);
        }
        if i % 1500 == 1499 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    check(&db, &model, &mut rng, s);
    db.compact_until_settled().unwrap();
    check(&db, &model, &mut rng, s);
    db.flatten().unwrap();
    check(&db, &model, &mut rng, s);
    let report = db.verify_checksum().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let m = db.cache_metrics().index;
    assert!(m.hits > 0 && m.misses > 0 && m.evictions > 0, "{m:?}");
    db.close().unwrap();

    let db = Db::open(opts(dir.path()).with_read_only(true)).unwrap();
    check(&db, &model, &mut rng, s);
    db.close().unwrap();
}

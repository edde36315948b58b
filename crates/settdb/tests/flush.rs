//! Flush applies version retention: versions at or below the discard timestamp that a newer
//! one shadows never reach L0, versions an open snapshot may read stay, a tombstone that ends a
//! key stays, and the value-log bytes of what was dropped are counted for GC.

mod common;

use std::sync::Arc;

use common::small_options;
use settdb::io::SimStorage;
use settdb::{Db, IteratorOptions, Options};

fn opts() -> Options {
    // No compactor: every version a table holds was written there by a flush.
    small_options(std::path::Path::new("/db"), Arc::new(SimStorage::new())).with_num_compactors(0)
}

/// Every stored version of `key` (newest first) and whether it is a tombstone.
fn versions(db: &Db, key: &[u8]) -> Vec<(u64, bool)> {
    let o = IteratorOptions::default()
        .with_all_versions(true)
        .with_prefix(key.to_vec());
    let mut it = db.iter(o).unwrap();
    it.rewind().unwrap();
    let mut out = Vec::new();
    while it.valid() {
        let item = it.item();
        if item.key() == key {
            out.push((item.version(), item.is_deleted_or_expired()));
        }
        it.next().unwrap();
    }
    out
}

fn discarded(db: &Db) -> u64 {
    db.value_log_files().iter().map(|f| f.discard_bytes).sum()
}

#[test]
fn a_flush_keeps_the_newest_version_and_what_a_snapshot_reads() {
    // Proves the flush drops versions shadowed below the discard timestamp, keeps every
    // version above it (an open read transaction holds it down), keeps the version that
    // transaction reads, and keeps a key's ending tombstone while dropping what it shadows.
    let db = Db::open(opts()).unwrap();
    let value = |i: u32| vec![i as u8; 100]; // over the threshold: in the value log
    let mut hot = Vec::new();
    for i in 0..30 {
        hot.push(db.set("hot", value(i)).unwrap());
    }
    for i in 0..5 {
        db.set("del", value(i)).unwrap();
    }
    let gone = db.delete("del").unwrap();
    let mut reader = db.new_transaction(false).unwrap();
    let mut after = Vec::new();
    for i in 30..40 {
        after.push(db.set("hot", value(i)).unwrap());
    }
    assert_eq!(db.levels().tables(0).len(), 0);
    db.flush().unwrap();
    assert_eq!(db.levels().tables(0).len(), 1);
    // The memtable is gone: what remains was written to the table.
    let mut want: Vec<(u64, bool)> = after.iter().rev().map(|&v| (v, false)).collect();
    want.push((hot[29], false));
    assert_eq!(versions(&db, b"hot"), want);
    assert_eq!(versions(&db, b"del"), vec![(gone, true)]);
    let seen = reader.get("hot").unwrap().unwrap();
    assert_eq!(
        (seen.version(), seen.value().unwrap()),
        (hot[29], value(29))
    );
    assert!(reader.get("del").unwrap().is_none());
    // 29 shadowed versions of "hot" and the 5 under the tombstone, records of equal size.
    let dead = discarded(&db);
    assert!(
        dead >= 34 * 100 && dead.is_multiple_of(34),
        "discarded {dead} bytes"
    );
    reader.discard();
    db.close().unwrap();
}

#[test]
fn with_no_reader_a_flush_keeps_one_version_per_key() {
    // Proves the discard timestamp follows the commits when nothing reads: one version of
    // each key reaches L0, and after a reopen reads still see the newest values.
    let sim = SimStorage::new();
    let o =
        small_options(std::path::Path::new("/db"), Arc::new(sim.clone())).with_num_compactors(0);
    let db = Db::open(o.clone()).unwrap();
    for round in 0..10u8 {
        for k in 0..50u32 {
            db.set(format!("k{k:03}"), vec![round; 20]).unwrap(); // inline values
        }
    }
    db.flush().unwrap();
    for k in 0..50u32 {
        let key = format!("k{k:03}").into_bytes();
        assert_eq!(versions(&db, &key).len(), 1, "{key:?}");
    }
    assert_eq!(discarded(&db), 0, "inline values have no value-log bytes");
    db.close().unwrap();
    let db = Db::open(o).unwrap();
    for k in 0..50u32 {
        let got = db.get(format!("k{k:03}")).unwrap().unwrap();
        assert_eq!(got, vec![9u8; 20]);
    }
    db.close().unwrap();
}

#[test]
fn num_versions_to_keep_is_honoured_at_flush() {
    // Proves a flush keeps `num_versions_to_keep` versions of a key at or below the discard
    // timestamp, as compaction does.
    let db = Db::open(opts().with_num_versions_to_keep(3)).unwrap();
    let mut written = Vec::new();
    for i in 0..10u8 {
        written.push(db.set("k", vec![i; 10]).unwrap());
    }
    db.flush().unwrap();
    let want: Vec<(u64, bool)> = written.iter().rev().take(3).map(|&v| (v, false)).collect();
    assert_eq!(versions(&db, b"k"), want);
    db.close().unwrap();
}

#[test]
fn a_managed_store_keeps_every_version_until_its_discard_timestamp_is_set() {
    // Proves a flush in managed mode uses the discard timestamp the user set (none: keep all).
    let db = Db::open_managed(opts()).unwrap();
    for ts in 1..=10u64 {
        let mut txn = db.new_transaction_at(ts - 1, true).unwrap();
        txn.set("k", vec![ts as u8; 10]).unwrap();
        txn.commit_at(ts).unwrap();
    }
    db.flush().unwrap();
    let all: Vec<(u64, bool)> = (1..=10).rev().map(|v| (v, false)).collect();
    assert_eq!(versions(&db, b"k"), all);
    db.set_discard_ts(15).unwrap();
    for ts in 11..=20u64 {
        let mut txn = db.new_transaction_at(ts - 1, true).unwrap();
        txn.set("k", vec![ts as u8; 10]).unwrap();
        txn.commit_at(ts).unwrap();
    }
    db.flush().unwrap();
    // The second flush held 11..=20: above 15 all kept, 15 the newest at or below it; the
    // first flush's table is not rewritten by a flush.
    let mut want: Vec<(u64, bool)> = (15..=20).rev().map(|v| (v, false)).collect();
    want.extend(all);
    assert_eq!(versions(&db, b"k"), want);
    db.close().unwrap();
}

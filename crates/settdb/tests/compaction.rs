//! Compaction under load: L0 stays below the stall count, space amplification after three
//! overwrites of every key settles under 2x, and tombstones are reclaimed at the last level.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::small_options;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use settdb::io::SimStorage;
use settdb::{Compression, Db};

const KEYS: u64 = 20_000;
const VALUE_LEN: usize = 100;

fn opts() -> settdb::Options {
    // Values stay inline (below the threshold): this measures the LSM tree alone; value-log
    // space is reclaimed by value-log GC, a later milestone.
    small_options(std::path::Path::new("/db"), Arc::new(SimStorage::new()))
        .with_value_threshold(1024)
        .with_compression(Compression::None)
}

#[test]
fn overwrites_settle_under_2x_and_l0_stays_below_stall() {
    // Proves space amplification < 2x after 3 full overwrites once compaction settles, and
    // that sampled L0 table counts stay below the stall count nearly always under load.
    let db = Db::open(opts()).unwrap();
    let stall = db.options().num_level_zero_tables_stall;
    let stop = Arc::new(AtomicBool::new(false));
    let (samples, below) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (db, stop, samples, below) = (db.clone(), stop.clone(), samples.clone(), below.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                samples.fetch_add(1, Ordering::Relaxed);
                if db.levels().tables(0).len() < stall {
                    below.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let mut rng = StdRng::seed_from_u64(7);
    let mut value = vec![0u8; VALUE_LEN];
    for _round in 0..3 {
        for i in 0..KEYS {
            rng.fill_bytes(&mut value);
            db.set(format!("key{i:08}"), value.clone()).unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    let lsm = db.size().lsm_bytes;
    let live = KEYS * (11 + VALUE_LEN as u64);
    let amp = lsm as f64 / live as f64;
    let below_frac =
        below.load(Ordering::Relaxed) as f64 / samples.load(Ordering::Relaxed).max(1) as f64;
    eprintln!("space amplification {amp:.2} ({lsm} table bytes for {live} live bytes); L0 below stall in {:.1}% of samples", below_frac * 100.0);
    assert!(amp < 2.0, "space amplification {amp:.2}");
    assert!(
        below_frac > 0.9,
        "L0 at or above the stall count in {:.1}% of samples",
        (1.0 - below_frac) * 100.0
    );
    for i in (0..KEYS).step_by(997) {
        assert!(db.get(format!("key{i:08}").as_bytes()).unwrap().is_some());
    }
}

#[test]
fn tombstones_are_reclaimed_at_the_last_level() {
    // Regression for Badger #2329: deleting every key and flattening leaves no tombstones
    // behind, because nothing below the last level can hold the keys.
    let db = Db::open(opts()).unwrap();
    for i in 0..KEYS {
        db.set(format!("key{i:08}"), vec![7u8; VALUE_LEN]).unwrap();
    }
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    for i in 0..KEYS {
        db.delete(format!("key{i:08}")).unwrap();
    }
    db.flatten().unwrap();
    let levels = db.levels();
    let entries: u64 = (0..levels.level_count())
        .flat_map(|l| levels.tables(l).iter().map(|t| t.table().entry_count()))
        .sum();
    assert_eq!(db.get(b"key00000005").unwrap(), None);
    assert!(
        entries < KEYS / 10,
        "{entries} entries (tombstones) left after compaction"
    );
}

/// Entries in the tables of the last level, and their stale bytes.
fn last_level(db: &Db) -> (u64, u64) {
    let levels = db.levels();
    let tables = levels.tables(levels.level_count() - 1);
    (
        tables.iter().map(|t| t.table().entry_count()).sum(),
        tables.iter().map(|t| t.table().stale_data_bytes()).sum(),
    )
}

#[test]
fn lmax_compaction_reclaims_what_a_snapshot_kept_at_the_last_level() {
    // Proves stale data is recorded and reclaimed: deletes flattened while a read
    // transaction is open stay at the last level with the values below them (the
    // transaction may read those) and are counted as stale; once it ends, compaction
    // rewrites the last-level tables into themselves and drops both. With
    // lmax_compaction off they stay; nothing stale is counted when nothing is kept for a
    // snapshot; and a second settle finds nothing more to do (no churn).
    for lmax in [true, false] {
        let db = Db::open(opts().with_lmax_compaction(lmax).with_num_compactors(0)).unwrap();
        for i in 0..KEYS {
            db.set(format!("key{i:08}"), vec![7u8; VALUE_LEN]).unwrap();
        }
        db.flatten().unwrap();
        assert_eq!(
            last_level(&db),
            (KEYS, 0),
            "lmax {lmax}: stale without snapshots"
        );
        let mut txn = db.new_transaction(false).unwrap();
        for i in 0..KEYS {
            db.delete(format!("key{i:08}")).unwrap();
        }
        db.flatten().unwrap();
        let (entries, stale) = last_level(&db);
        assert_eq!(entries, 2 * KEYS, "lmax {lmax}: tombstones and values kept");
        assert!(stale > 0, "lmax {lmax}: no stale bytes recorded");
        db.compact_until_settled().unwrap();
        assert_eq!(
            last_level(&db).0,
            2 * KEYS,
            "lmax {lmax}: rewritten while the snapshot may read it"
        );
        assert!(txn.get(b"key00000005").is_ok(), "the snapshot still reads");
        drop(txn);
        db.compact_until_settled().unwrap();
        let (entries, stale) = last_level(&db);
        if lmax {
            assert_eq!(
                (entries, stale),
                (0, 0),
                "tombstones left by lmax compaction"
            );
        } else {
            assert_eq!(entries, 2 * KEYS, "lmax off rewrote the last level");
        }
        assert_eq!(db.get(b"key00000005").unwrap(), None);
        let tables: Vec<u64> = db
            .levels()
            .tables(db.levels().level_count() - 1)
            .iter()
            .map(|t| t.id())
            .collect();
        db.compact_until_settled().unwrap();
        let again: Vec<u64> = db
            .levels()
            .tables(db.levels().level_count() - 1)
            .iter()
            .map(|t| t.id())
            .collect();
        assert_eq!(
            tables, again,
            "lmax {lmax}: a settled level was rewritten again"
        );
    }
}

#[test]
fn dropped_value_log_records_are_counted_and_persisted() {
    // Proves compaction records the value-log bytes of versions it drops (discard stats),
    // and that they reach the DISCARD file for value-log GC.
    let sim = SimStorage::new();
    let dir = std::path::Path::new("/db");
    let db = Db::open(small_options(dir, Arc::new(sim.clone()))).unwrap();
    for round in 0..2u8 {
        for i in 0..2_000u32 {
            db.set(format!("key{i:06}"), vec![round; 500]).unwrap();
        }
    }
    db.flatten().unwrap();
    db.close().unwrap();
    let stats = settdb::inspect::DiscardStats::load(&sim, dir).unwrap();
    let total: u64 = stats.by_discard_desc().iter().map(|(_, b)| b).sum();
    assert!(
        total >= 2_000 * 500,
        "discarded {total} bytes, expected at least one overwritten round"
    );
}

#[test]
fn compact_l0_on_close_leaves_l0_empty() {
    // Proves compact_l0_on_close: after close, the memtable's data is below L0.
    let sim = SimStorage::new();
    let dir = std::path::Path::new("/db");
    let opts = small_options(dir, Arc::new(sim.clone())).with_compact_l0_on_close(true);
    let db = Db::open(opts.clone()).unwrap();
    for i in 0..3_000u32 {
        db.set(format!("key{i:06}"), vec![1u8; 50]).unwrap();
    }
    db.close().unwrap();
    drop(db);
    let db = Db::open(opts.with_read_only(true)).unwrap();
    assert!(
        db.levels().tables(0).is_empty(),
        "L0 still has {} tables",
        db.levels().tables(0).len()
    );
    assert_eq!(db.get(b"key002999").unwrap(), Some(vec![1u8; 50]));
}

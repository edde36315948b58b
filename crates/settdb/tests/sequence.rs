//! Sequences (`Db::get_sequence`): numbers never handed out twice (threads, handles, release,
//! drop, reopen, crash, backup and restore), the stored lease in Badger's layout, Badger's
//! `TestSequence*` cases, and the typed errors.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use common::small_options;
use settdb::io::{CrashMode, SimStorage};
use settdb::{Db, Error, Options};

fn opts(storage: &Arc<SimStorage>) -> Options {
    small_options(Path::new("/db"), storage.clone())
}

fn db() -> Db {
    Db::open(opts(&Arc::new(SimStorage::new()))).unwrap()
}

/// The lease end stored under `key`, decoded as Badger does (8 bytes, big-endian).
fn stored(db: &Db, key: &[u8]) -> u64 {
    let v = db.get(key).unwrap().expect("the sequence key is stored");
    u64::from_be_bytes(v.as_slice().try_into().expect("8 bytes"))
}

/// Asserts `numbers` holds no number twice.
fn assert_unique(numbers: &[u64]) {
    let set: HashSet<u64> = numbers.iter().copied().collect();
    assert_eq!(set.len(), numbers.len(), "a number was handed out twice");
}

#[test]
fn badger_test_sequence() {
    // Proves Badger's TestSequence: two keys count from 0 independently, and each stores the
    // end of its current lease (105 numbers by 10 -> 110, by 100 -> 200).
    let db = db();
    let seq0 = db.get_sequence("seq0", 10).unwrap();
    let seq1 = db.get_sequence("seq1", 100).unwrap();
    for i in 0..105 {
        assert_eq!(seq0.next().unwrap(), i);
        assert_eq!(seq1.next().unwrap(), i);
    }
    assert_eq!(stored(&db, b"seq0"), 110);
    assert_eq!(stored(&db, b"seq1"), 200);
}

#[test]
fn badger_test_sequence_release() {
    // Proves Badger's TestSequence_Release: release stores the next number, and a sequence
    // used after release leases again from there.
    let db = db();
    let seq = db.get_sequence("key", 1000).unwrap();
    assert_eq!(seq.next().unwrap(), 0);
    seq.release().unwrap();
    assert_eq!(stored(&db, b"key"), 1);
    assert_eq!(seq.next().unwrap(), 1);
    assert_eq!(stored(&db, b"key"), 1001);
}

#[test]
fn badger_test_sequence2() {
    // Proves Badger's TestTestSequence2: a second handle leases after the first; the release
    // of the older lease does not rewind the key past the newer handle's numbers.
    let db = db();
    let seq1 = db.get_sequence("key", 2).unwrap();
    let seq2 = db.get_sequence("key", 2).unwrap();
    assert_eq!(seq2.next().unwrap(), 2);
    seq2.release().unwrap();
    seq1.release().unwrap();
    let seq3 = db.get_sequence("key", 2).unwrap();
    for i in 0..5 {
        assert_eq!(seq3.next().unwrap(), i + 3);
    }
    seq3.release().unwrap();
}

#[test]
fn numbers_are_unique_and_increasing_across_threads() {
    // Proves one handle (Send + Sync) shared by 8 threads hands out every number once (small
    // bandwidth: many leases under contention) and each thread sees its numbers increase.
    fn send_sync<T: Send + Sync>() {}
    send_sync::<settdb::Sequence>();
    let db = db();
    let seq = db.get_sequence("ids", 7).unwrap();
    let per_thread: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| (0..1500).map(|_| seq.next().unwrap()).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for nums in &per_thread {
        assert!(nums.windows(2).all(|w| w[0] < w[1]));
    }
    let all: Vec<u64> = per_thread.concat();
    assert_unique(&all);
    assert_eq!(all.len(), 8 * 1500);
    assert!(stored(&db, b"ids") >= 8 * 1500);
}

#[test]
fn numbers_are_unique_across_handles_of_one_key() {
    // Proves four handles of one key, each on its own thread, leasing (conflicting leases
    // retried) and releasing as they go, never hand out a number twice.
    let db = db();
    let all: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let db = db.clone();
                s.spawn(move || {
                    let seq = db.get_sequence("shared", 3 + t).unwrap();
                    let mut nums = Vec::new();
                    for i in 0..1200 {
                        nums.push(seq.next().unwrap());
                        if i % (50 + t * 13) == 0 {
                            seq.release().unwrap();
                        }
                    }
                    seq.release().unwrap();
                    nums
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(all.len(), 4 * 1200);
    assert_unique(&all);
    let next = db.get_sequence("shared", 1).unwrap().next().unwrap();
    assert!(next > *all.iter().max().unwrap());
}

#[test]
fn release_and_drop_survive_reopen() {
    // Proves a released sequence continues after close and reopen at its next number, and a
    // sequence dropped without release continues at its lease end (the rest is skipped).
    let storage = Arc::new(SimStorage::new());
    let mut seen = Vec::new();
    let db = Db::open(opts(&storage)).unwrap();
    let seq = db.get_sequence("ids", 10).unwrap();
    seen.extend((0..3).map(|_| seq.next().unwrap()));
    seq.release().unwrap();
    drop(seq);
    db.close().unwrap();
    drop(db);

    let db = Db::open(opts(&storage)).unwrap();
    let seq = db.get_sequence("ids", 10).unwrap();
    assert_eq!(
        seq.next().unwrap(),
        3,
        "released: continues at the next number"
    );
    seen.push(3);
    seen.push(seq.next().unwrap());
    drop(seq); // no release: 5..13 are skipped
    db.close().unwrap();
    drop(db);

    let db = Db::open(opts(&storage)).unwrap();
    let seq = db.get_sequence("ids", 10).unwrap();
    let next = seq.next().unwrap();
    assert_eq!(next, 13, "dropped: continues at the lease end");
    seen.push(next);
    assert_eq!(seen, [0, 1, 2, 3, 4, 13]);
}

#[test]
fn a_crash_never_brings_back_a_handed_out_number() {
    // Proves a lease is durable before its numbers are handed out, with sync_writes off: for
    // every crash mode and several seeds, the copy reopens with a lease end above every number
    // handed out before the crash.
    for seed in 0..6u64 {
        for mode in [CrashMode::Prefix, CrashMode::Subset] {
            let sim = Arc::new(SimStorage::new());
            let db = Db::open(opts(&sim).with_sync_writes(false)).unwrap();
            let seq = db.get_sequence("ids", 4).unwrap();
            let last = (0..10).map(|_| seq.next().unwrap()).last().unwrap();
            db.set("unsynced", "x").unwrap();
            let crashed = Arc::new(sim.crash(mode, seed));
            let db = Db::open(opts(&crashed)).unwrap();
            let next = db.get_sequence("ids", 4).unwrap().next().unwrap();
            assert!(next > last, "seed {seed} {mode:?}: {next} after {last}");
        }
    }
}

#[test]
fn stored_value_is_the_big_endian_lease_end() {
    // Proves Badger's layout: the key holds 8 bytes, big-endian, the first number no lease
    // reserved; a value written there by hand (as Badger would) is where a sequence starts.
    let db = db();
    db.set("ids", 41u64.to_be_bytes().to_vec()).unwrap();
    let seq = db.get_sequence("ids", 1000).unwrap();
    let raw = db.get(b"ids").unwrap().unwrap();
    assert_eq!(raw, 1041u64.to_be_bytes());
    assert_eq!(raw, [0, 0, 0, 0, 0, 0, 0x04, 0x11]);
    assert_eq!(seq.next().unwrap(), 41);
    assert_eq!(seq.next().unwrap(), 42);
    seq.release().unwrap();
    assert_eq!(db.get(b"ids").unwrap().unwrap(), 43u64.to_be_bytes());
}

#[test]
fn a_restored_backup_continues_the_sequence() {
    // Proves the lease travels in a backup: loaded into a fresh database, the key continues
    // after every number handed out (the lease end, or the next number after a release).
    let src = db();
    let seq = src.get_sequence("ids", 50).unwrap();
    let handed: Vec<u64> = (0..120).map(|_| seq.next().unwrap()).collect();
    let mut bytes = Vec::new();
    src.backup(&mut bytes, 0).unwrap();
    let dst = db();
    dst.load(&mut bytes.as_slice(), 2).unwrap();
    assert_eq!(dst.get_sequence("ids", 50).unwrap().next().unwrap(), 150);

    seq.release().unwrap();
    let mut bytes = Vec::new();
    src.backup(&mut bytes, 0).unwrap();
    let dst = db();
    dst.load(&mut bytes.as_slice(), 2).unwrap();
    let next = dst.get_sequence("ids", 50).unwrap().next().unwrap();
    assert_eq!(next, 120);
    assert!(next > *handed.last().unwrap());
}

#[test]
fn misuse_is_a_typed_error() {
    // Proves bandwidth 0, a bad key, a value that is not 8 bytes, managed mode, read-only and
    // detect_conflicts off are refused with typed errors, not panics.
    let db = db();
    assert!(matches!(db.get_sequence("k", 0), Err(Error::ZeroBandwidth)));
    assert!(matches!(db.get_sequence("", 1), Err(Error::EmptyKey)));
    assert!(matches!(
        db.get_sequence("!settdb!x", 1),
        Err(Error::InvalidKey { .. })
    ));
    db.set("text", "hello").unwrap();
    assert!(matches!(
        db.get_sequence("text", 1),
        Err(Error::BadSequenceValue { size_bytes: 5 })
    ));
    db.set("max", (u64::MAX - 1).to_be_bytes().to_vec())
        .unwrap();
    assert!(matches!(
        db.get_sequence("max", 2),
        Err(Error::SequenceExhausted { .. })
    ));

    let storage = Arc::new(SimStorage::new());
    let managed = Db::open_managed(opts(&storage)).unwrap();
    assert!(matches!(
        managed.get_sequence("k", 1),
        Err(Error::InvalidRequest(_))
    ));
    managed.close().unwrap();
    drop(managed);
    let ro = Db::open(opts(&storage).with_read_only(true)).unwrap();
    assert!(matches!(
        ro.get_sequence("k", 1),
        Err(Error::InvalidRequest(_))
    ));
    drop(ro);
    let no_ssi = Db::open(opts(&storage).with_detect_conflicts(false)).unwrap();
    assert!(matches!(
        no_ssi.get_sequence("k", 1),
        Err(Error::InvalidRequest(_))
    ));
}

#[test]
fn a_closed_database_fails_next_with_closed() {
    // Proves a sequence whose lease runs out after close reports Closed.
    let db = db();
    let seq = db.get_sequence("ids", 1).unwrap();
    assert_eq!(seq.next().unwrap(), 0);
    db.close().unwrap();
    assert!(matches!(seq.next(), Err(Error::Closed)));
}

//! The merge operator (`Db::get_merge_operator`): `get` is the oldest-first fold of every
//! add, with or without merges, under concurrent adds and merges from several handles;
//! merges shrink the stored versions; operands survive compaction, stop and reopen; Badger's
//! merge_test cases; typed errors.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::small_options;
use settdb::io::SimStorage;
use settdb::{Db, Error, IteratorOptions, Options};

fn opts(storage: &Arc<SimStorage>) -> Options {
    small_options(Path::new("/db"), storage.clone())
}

fn db() -> Db {
    Db::open(opts(&Arc::new(SimStorage::new()))).unwrap()
}

fn num(v: &[u8]) -> u64 {
    u64::from_be_bytes(v.try_into().expect("8 bytes"))
}

/// Badger's merge_test `add`: big-endian u64 addition.
fn add(existing: &[u8], new: &[u8]) -> Vec<u8> {
    (num(existing) + num(new)).to_be_bytes().to_vec()
}

fn append(existing: &[u8], new: &[u8]) -> Vec<u8> {
    [existing, new].concat()
}

/// Order-sensitive and not associative: `f(f(a, b), c) != f(a, f(b, c))`.
fn nest(existing: &[u8], new: &[u8]) -> Vec<u8> {
    [b"(", existing, new, b")"].concat()
}

fn be(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Every stored version of `key`, deletes included.
fn versions(db: &Db, key: &[u8]) -> usize {
    let txn = db.new_transaction(false).unwrap();
    txn.key_iter(key, IteratorOptions::default())
        .unwrap()
        .count()
}

/// Versions of `key` a read folds: newest first, down to the first that discards earlier
/// versions.
fn operands(db: &Db, key: &[u8]) -> usize {
    let txn = db.new_transaction(false).unwrap();
    let mut n = 0;
    for item in txn.key_iter(key, IteratorOptions::default()).unwrap() {
        n += 1;
        if item.unwrap().discard_earlier_versions() {
            break;
        }
    }
    n
}

const LONG: Duration = Duration::from_secs(3600);

#[test]
fn badger_get_before_add() {
    // Proves Badger's "Get before Add": nothing added reads as None (Badger: ErrKeyNotFound).
    let db = db();
    let m = db
        .get_merge_operator("merge", add, Duration::from_millis(200))
        .unwrap();
    assert_eq!(m.get().unwrap(), None);
    m.stop().unwrap();
}

#[test]
fn badger_add_and_get() {
    // Proves Badger's "Add and Get" and "Get Before Compact": get folds adds not merged yet.
    let db = db();
    let m = db
        .get_merge_operator("merge", add, Duration::from_millis(500))
        .unwrap();
    for n in 1..=3 {
        m.add(be(n)).unwrap();
    }
    assert_eq!(m.get().unwrap(), Some(be(6)));
}

#[test]
fn badger_add_and_get_slices() {
    // Proves Badger's "Add and Get slices": with a 2 ms interval (merges racing the adds)
    // appends come back in the order they were added.
    let db = db();
    let m = db
        .get_merge_operator("fooprefix", append, Duration::from_millis(2))
        .unwrap();
    for v in ["A", "B", "C"] {
        m.add(v).unwrap();
    }
    assert_eq!(m.get().unwrap(), Some(b"ABC".to_vec()));
}

#[test]
fn badger_get_after_stop() {
    // Proves Badger's "Get after Stop": stop runs a final merge; get still returns the sum,
    // now from one merged version.
    let db = db();
    let m = db
        .get_merge_operator("merge", add, Duration::from_secs(1))
        .unwrap();
    for n in 1..=3 {
        m.add(be(n)).unwrap();
    }
    m.stop().unwrap();
    assert_eq!(m.get().unwrap(), Some(be(6)));
    let txn = db.new_transaction(false).unwrap();
    let mut it = txn.key_iter(b"merge", IteratorOptions::default()).unwrap();
    let newest = Iterator::next(&mut it).unwrap().unwrap();
    assert!(
        newest.discard_earlier_versions(),
        "the final merge wrote it"
    );
    assert_eq!(newest.value().unwrap(), be(6));
    m.stop().unwrap(); // a second stop is a no-op
}

#[test]
fn badger_old_versions_are_removed_after_compaction() {
    // Proves Badger's "Old keys should be removed after compaction": 5,000 adds with a 2 ms
    // interval sum up; after stop and a flatten, one version of the key is left.
    let db = db();
    let m = db
        .get_merge_operator("foo", add, Duration::from_millis(2))
        .unwrap();
    for _ in 0..5000 {
        m.add(be(1)).unwrap();
    }
    assert_eq!(m.get().unwrap(), Some(be(5000)));
    m.stop().unwrap();
    db.flatten().unwrap();
    assert_eq!(versions(&db, b"foo"), 1);
    assert_eq!(m.get().unwrap(), Some(be(5000)));
}

#[test]
fn fold_is_oldest_first_and_merges_do_not_change_it() {
    // Proves the fold order (oldest to newest) with an order-sensitive, non-associative
    // function, and that merging a prefix of the operands first gives the same bytes.
    let db = db();
    let m = db.get_merge_operator("k", nest, LONG).unwrap();
    m.add("a").unwrap();
    m.add("b").unwrap();
    assert!(m.merge_now().unwrap());
    m.add("c").unwrap();
    m.add("d").unwrap();
    assert_eq!(m.get().unwrap(), Some(b"(((ab)c)d)".to_vec()));
    assert!(m.merge_now().unwrap());
    m.add("e").unwrap();
    assert_eq!(m.get().unwrap(), Some(b"((((ab)c)d)e)".to_vec()));

    let fresh = db.get_merge_operator("k2", nest, LONG).unwrap();
    for v in ["a", "b", "c", "d", "e"] {
        fresh.add(v).unwrap();
    }
    assert_eq!(
        fresh.get().unwrap(),
        m.get().unwrap(),
        "no merge: same bytes"
    );
}

#[test]
fn a_delete_starts_the_fold_again() {
    // Proves operands stop at a delete (as Badger's iterateAndMerge), and that a value
    // stored before the first add is the first operand.
    let db = db();
    db.set("k", be(100)).unwrap();
    let m = db.get_merge_operator("k", add, LONG).unwrap();
    m.add(be(1)).unwrap();
    assert_eq!(m.get().unwrap(), Some(be(101)));
    db.delete("k").unwrap();
    assert_eq!(m.get().unwrap(), None);
    m.add(be(5)).unwrap();
    m.add(be(6)).unwrap();
    assert_eq!(m.get().unwrap(), Some(be(11)));
    assert!(m.merge_now().unwrap());
    assert_eq!(m.get().unwrap(), Some(be(11)));
}

#[test]
fn concurrent_adds_and_merges_lose_nothing() {
    // Proves no add is lost or counted twice while 4 threads add and the thread merges every
    // millisecond: a reader's sums never go down, the final sum is every add, and merges ran
    // (few versions remain).
    let db = db();
    let m = db
        .get_merge_operator("counter", add, Duration::from_millis(1))
        .unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut last = 0;
            while !done.load(Ordering::Acquire) {
                let now = m.get().unwrap().map_or(0, |v| num(&v));
                assert!(now >= last, "sum went down: {last} -> {now}");
                last = now;
            }
        });
        let adders: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..500 {
                        m.add(be(1)).unwrap();
                    }
                })
            })
            .collect();
        for a in adders {
            a.join().unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap();
    });
    assert_eq!(m.get().unwrap(), Some(be(2000)));
    m.stop().unwrap();
    assert_eq!(
        operands(&db, b"counter"),
        1,
        "the final merge folded everything"
    );
}

#[test]
fn merges_from_two_handles_conflict_instead_of_hiding_adds() {
    // Proves the merge of one operator never hides an add of another operator on the same
    // key: both add and merge every millisecond from their own threads (merges conflict with
    // the other's adds and retry), and the sum counts every add.
    let db = db();
    let m1 = db
        .get_merge_operator("k", add, Duration::from_millis(1))
        .unwrap();
    let m2 = db
        .get_merge_operator("k", add, Duration::from_millis(1))
        .unwrap();
    std::thread::scope(|s| {
        for m in [&m1, &m2, &m1, &m2] {
            s.spawn(move || {
                for _ in 0..400 {
                    m.add(be(1)).unwrap();
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                let _ = m1.merge_now().unwrap();
                let _ = m2.merge_now().unwrap();
            }
        });
    });
    assert_eq!(m1.get().unwrap(), Some(be(1600)));
    assert_eq!(m2.get().unwrap(), Some(be(1600)));
}

#[test]
fn an_iterator_read_of_the_key_makes_a_later_add_conflict() {
    // Proves what the merge relies on: a read-write transaction that read the key's versions
    // through a key iterator conflicts with an add committed after its read timestamp.
    let db = db();
    let m = db.get_merge_operator("k", add, LONG).unwrap();
    m.add(be(1)).unwrap();
    m.add(be(2)).unwrap();
    let mut txn = db.new_transaction(true).unwrap();
    let seen = txn
        .key_iter(b"k", IteratorOptions::default())
        .unwrap()
        .count();
    assert_eq!(seen, 2);
    m.add(be(3)).unwrap();
    txn.set("k", be(3)).unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    assert_eq!(m.get().unwrap(), Some(be(6)));
}

#[test]
fn operands_survive_compaction_before_they_are_merged() {
    // Proves the MERGE bit: with num_versions_to_keep = 1, a flatten keeps every operand not
    // merged yet (an ordinary older version would be dropped), so get still sums them all.
    let db = db();
    let m = db.get_merge_operator("k", add, LONG).unwrap();
    for n in 1..=50 {
        m.add(be(n)).unwrap();
    }
    db.flatten().unwrap();
    assert_eq!(versions(&db, b"k"), 50);
    assert_eq!(m.get().unwrap(), Some(be(50 * 51 / 2)));
}

#[test]
fn the_value_survives_stop_and_reopen() {
    // Proves a merged value and operands added after it read back the same after close and
    // reopen, through a new operator.
    let storage = Arc::new(SimStorage::new());
    let db = Db::open(opts(&storage)).unwrap();
    let m = db.get_merge_operator("k", append, LONG).unwrap();
    for v in ["x", "y", "z"] {
        m.add(v).unwrap();
    }
    m.stop().unwrap();
    m.add("w").unwrap();
    drop(m);
    db.close().unwrap();
    drop(db);
    let db = Db::open(opts(&storage)).unwrap();
    let m = db.get_merge_operator("k", append, LONG).unwrap();
    assert_eq!(m.get().unwrap(), Some(b"xyzw".to_vec()));
}

#[test]
fn misuse_is_a_typed_error() {
    // Proves bad keys, managed mode, read-only, detect_conflicts off and a closed database
    // are refused with typed errors; stop after close reports Closed.
    let db = db();
    assert!(matches!(
        db.get_merge_operator("", add, LONG),
        Err(Error::EmptyKey)
    ));
    let storage = Arc::new(SimStorage::new());
    let managed = Db::open_managed(opts(&storage)).unwrap();
    assert!(matches!(
        managed.get_merge_operator("k", add, LONG),
        Err(Error::InvalidRequest(_))
    ));
    managed.close().unwrap();
    drop(managed);
    let ro = Db::open(opts(&storage).with_read_only(true)).unwrap();
    assert!(matches!(
        ro.get_merge_operator("k", add, LONG),
        Err(Error::InvalidRequest(_))
    ));
    drop(ro);
    let no_ssi = Db::open(opts(&storage).with_detect_conflicts(false)).unwrap();
    assert!(matches!(
        no_ssi.get_merge_operator("k", add, LONG),
        Err(Error::InvalidRequest(_))
    ));

    let m = db.get_merge_operator("k", add, LONG).unwrap();
    m.add(be(1)).unwrap();
    db.close().unwrap();
    assert!(matches!(m.add(be(1)), Err(Error::Closed)));
    assert!(matches!(m.stop(), Err(Error::Closed)));
    assert!(matches!(
        db.get_merge_operator("k", add, LONG),
        Err(Error::Closed)
    ));
}

#[test]
fn operands_in_the_value_log_fold_and_merge() {
    // Proves operands over the value threshold (read through value pointers) fold and merge
    // like inline ones, and the operator is Send + Sync.
    fn send_sync<T: Send + Sync>() {}
    send_sync::<settdb::MergeOperator>();
    let db = db();
    let m = db.get_merge_operator("big", append, LONG).unwrap();
    let parts: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i; 200]).collect();
    for p in &parts {
        m.add(p.clone()).unwrap();
    }
    assert_eq!(m.get().unwrap(), Some(parts.concat()));
    assert!(m.merge_now().unwrap());
    db.flatten().unwrap();
    assert_eq!(m.get().unwrap(), Some(parts.concat()));
    assert_eq!(versions(&db, b"big"), 1);
}

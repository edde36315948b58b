//! Badger's own tests, ported case by case (Debian's Badger v2.2007 sources:
//! /usr/share/gocode/src/github.com/dgraph-io/badger/{txn,iterator,managed_db,batch,db}_test.go).
//! Each `#[test]` is named after its Go function and cites it; a case SettDB answers
//! differently on purpose says `DEPARTURE:` and why; a case that needs a feature SettDB has
//! not built is listed as `NOT PORTED`. Loops are scaled down where noted (2 shared cores).
//!
//! | Go test (file)                           | status                                                        |
//! |------------------------------------------|---------------------------------------------------------------|
//! | TestTxnSimple (txn)                      | departure (commit_at refused, not a panic)                    |
//! | TestTxnReadAfterWrite (txn)              | ported                                                        |
//! | TestTxnCommitAsync (txn)                 | ported                                                        |
//! | TestTxnVersions (txn)                    | ported (snapshots held instead of poking readTs)              |
//! | TestTxnWriteSkew (txn)                   | ported                                                        |
//! | TestTxnIterationEdgeCase (txn)           | ported (snapshots held instead of poking readTs)              |
//! | TestTxnIterationEdgeCase2 (txn)          | ported (snapshots held instead of poking readTs)              |
//! | TestTxnIterationEdgeCase3 (txn)          | ported                                                        |
//! | TestIteratorAllVersionsWithDeleted (txn) | ported (managed commit at the same ts for batchSet)           |
//! | TestIteratorAllVersionsWithDeleted2      | ported                                                        |
//! | TestManagedDB (txn)                      | departure (update in managed mode: error, no panic)           |
//! | TestArmV7Issue311Fix (txn)               | ported (v2-only options mapped to SettDB's)                   |
//! | TestConflict (txn)                       | ported; its ItrSeek case via Txn::range found a bug (fixed)   |
//! | TestPickTables (iterator)                | not ported: crate-private table picking                       |
//! | TestPickSortTables (iterator)            | not ported: crate-private table picking                       |
//! | TestIteratePrefix (iterator)             | ported                                                        |
//! | TestDropAllManaged (managed_db)          | ported (10000 → 2000 keys; commit_at is synchronous)          |
//! | TestDropAll (managed_db)                 | ported (10000 → 2000 keys); found the WriteBatch bug (fixed)  |
//! | TestDropAllTwice (managed_db)            | ported                                                        |
//! | TestDropAllWithPendingTxn (managed_db)   | ported (2000 keys, 200 ms instead of 2 s)                     |
//! | TestDropReadOnly (managed_db)            | departure (error instead of panic)                            |
//! | TestWriteAfterClose (managed_db)         | ported                                                        |
//! | TestDropAllRace (managed_db)             | ported (10000 → 2000 keys)                                    |
//! | TestDropPrefix (managed_db)              | ported                                                        |
//! | TestDropPrefixWithPendingTxn             | ported (2000 keys, 200 ms instead of 2 s)                     |
//! | TestDropPrefixReadOnly (managed_db)      | departure (error instead of panic)                            |
//! | TestDropPrefixRace (managed_db)          | ported (10000 → 2000 keys)                                    |
//! | TestWriteBatchManagedMode (managed_db)   | ported (50000 → 10000 keys)                                   |
//! | TestWriteBatchManaged (managed_db)       | ported (20,000 sets instead of 50,000)                         |
//! | TestWriteBatchDuplicate (managed_db)     | ported 2 of 3 sub-tests (third: SetEntryAt)                   |
//! | TestWriteBatch (batch)                   | ported (50000 → 10000); SetEntryAt check: departure           |
//! | TestEmptyWriteBatch (batch)              | ported (ManagedWriteBatch sub-test: not built)                |
//! | TestWrite (db)                           | ported                                                        |
//! | TestUpdateAndView (db)                   | ported                                                        |
//! | TestConcurrentWrite (db)                 | ported                                                        |
//! | TestGet (db)                             | ported (disk, in-memory, cache enabled)                       |
//! | TestGetAfterDelete (db)                  | ported                                                        |
//! | TestTxnTooBig (db)                       | ported (n 1000 → 20000 so SettDB's 1 MiB memtable splits it)  |
//! | TestForceCompactL0 (db)                  | departure (compact_l0_on_close is off by default in SettDB)   |
//! | TestGetMore (db)                         | ported (db.validate() is internal: left out)                  |
//! | TestExistsMore (db)                      | ported                                                        |
//! | TestIterate2Basic (db)                   | ported                                                        |
//! | TestLoad (db)                            | departure (next read_ts n, not n+1); file-id summary ported   |
//! | TestIterateDeleted (db)                  | ported                                                        |
//! | TestIterateParallel (db)                 | departure (discard with open iterators is fine); 100000→10000 |
//! | TestDeleteWithoutSyncWrite (db)          | ported                                                        |
//! | TestPidFile (db)                         | departure (Error::Locked, not Badger's message)               |
//! | TestInvalidKey (db)                      | departure (reserved prefix is !settdb!, not !badger!)         |
//! | TestIteratorPrefetchSize (db)            | departure (no prefetch size: nothing is read ahead)           |
//! | TestSetIfAbsentAsync (db)                | ported                                                        |
//! | TestGetSetRace (db)                      | ported                                                        |
//! | TestDiscardVersionsBelow (db)            | ported                                                        |
//! | TestExpiry (db)                          | ported                                                        |
//! | TestExpiryImproperDBClose (db)           | ported (crash simulated with SimStorage, plain and encrypted) |
//! | TestLargeKeys (db)                       | ported (1000 → 100 rounds)                                    |
//! | TestCreateDirs (db)                      | ported                                                        |
//! | TestGetSetDeadlock (db)                  | ported                                                        |
//! | TestWriteDeadlock (db)                   | departure (15 MB write refused; 600 keys per write instead)   |
//! | TestSequence (db)                        | ported in tests/sequence.rs                                   |
//! | TestSequence_Release (db)                | ported in tests/sequence.rs                                   |
//! | TestTestSequence2 (db)                   | ported in tests/sequence.rs                                   |
//! | TestReadOnly (db)                        | departure (Error::Locked, not Badger's message)               |
//! | TestLSMOnly (db)                         | departure (one threshold check; GC finds nothing to rewrite)  |
//! | TestMinReadTs (db)                       | ported in part: the read watermark is crate-private           |
//! | TestGoroutineLeak (db)                   | departure (threads ended per subscriber, not counted)         |
//! | TestSyncForRace (db)                     | ported (10000 × 128 KiB → 300 × 128 KiB)                      |
//! | TestNoCrash (db)                         | not ported: pokes Badger v2's private value-log head          |
//! | TestForceFlushMemtable (db)              | not ported: v2-only LogRotatesToFlush and private head key    |
//! | TestVerifyChecksum (db)                  | ported (bulk_load for StreamWriter, plain and encrypted)      |
//! | TestMain (db)                            | not a test (flag parsing)                                     |
//! | TestWriteInemory (db)                    | ported                                                        |
//!
//! Not in v2.2007's db_test.go, so not here: TestReverseIterator; the DropAll-style cases are
//! managed_db_test.go's, above. Totals: 71 Go test functions — 51 ported (the three sequence
//! tests in tests/sequence.rs), 15 ported with a departure, 4 not ported, 1 not a test
//! (TestMain). 2 bugs found, both fixed (regression
//! tests at the end): WriteBatch and the value-log fit (TestDropAll), Txn::range and its
//! start key's read (TestConflict's ItrSeek case written with Txn::range: conflict_range).
//!
//! SettDB idioms used throughout: a missing key is `Ok(None)` where Badger returns
//! `ErrKeyNotFound` (not marked as a departure at each case: it is the API's shape); misuse is
//! an `Err` where Badger panics (marked); iterators are closed by dropping them.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::small_options;
use settdb::io::{MemStorage, Storage};
use settdb::{Db, Entry, Error, IteratorOptions, Options, Txn, TxnIterator};

// ---------------------------------------------------------------------------------------------
// Helpers: Badger's test harness (runBadgerTest, getTestOptions, txnSet, txnDelete, ...).
// ---------------------------------------------------------------------------------------------

/// Badger's `getTestOptions`: small memtables, tables and levels so that a few thousand
/// writes flush and compact (SettDB's minimums: 1 MiB memtable, 64 KiB tables), and a 10 MiB
/// block cache.
fn test_options(storage: Arc<dyn Storage>) -> Options {
    small_options(Path::new("/db"), storage).with_block_cache_size(10 << 20)
}

fn mem() -> Arc<dyn Storage> {
    Arc::new(MemStorage::new())
}

/// Badger's `runBadgerTest` database (in a private in-memory file system).
fn open_test_db() -> Db {
    Db::open(test_options(mem())).unwrap()
}

/// Badger's `opt.InMemory = true`.
fn open_in_memory() -> Db {
    Db::open(Options::in_memory()).unwrap()
}

/// Badger's `opt.managedTxns = true` test database.
fn open_managed_test_db() -> Db {
    Db::open_managed(test_options(mem())).unwrap()
}

/// Badger's `txnSet`: one transaction setting `key` with a user meta byte.
fn txn_set(db: &Db, key: &[u8], value: &[u8], user_meta: u8) {
    let mut txn = db.new_transaction(true).unwrap();
    txn.set_entry(Entry::new(key, value).with_user_meta(user_meta))
        .unwrap();
    txn.commit().unwrap();
}

/// Badger's `txnDelete`.
fn txn_delete(db: &Db, key: &[u8]) {
    let mut txn = db.new_transaction(true).unwrap();
    txn.delete(key).unwrap();
    txn.commit().unwrap();
}

/// The value `txn` reads for `key` (`None`: Badger's `ErrKeyNotFound`).
fn value_of(txn: &mut Txn, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    txn.get(key).unwrap().map(|item| item.value().unwrap())
}

/// Badger's `checkIterator` of the edge-case tests: the values an iterator yields, in order.
fn values(it: TxnIterator) -> Vec<String> {
    it.map(|item| String::from_utf8(item.unwrap().value().unwrap()).unwrap())
        .collect()
}

/// The keys an iterator yields, in order.
fn keys(it: TxnIterator) -> Vec<Vec<u8>> {
    it.map(|item| item.unwrap().key().to_vec()).collect()
}

fn rev() -> IteratorOptions {
    IteratorOptions::default().with_reverse(true)
}

/// Badger's `numKeys`: keys visible to a fresh read transaction.
fn num_keys(db: &Db) -> usize {
    db.view(|txn| Ok(txn.iter(IteratorOptions::default())?.count()))
        .unwrap()
}

/// Badger's `numKeysManaged`: keys visible at `read_ts`.
fn num_keys_managed(db: &Db, read_ts: u64) -> usize {
    let txn = db.new_transaction_at(read_ts, false).unwrap();
    txn.iter(IteratorOptions::default()).unwrap().count()
}

/// Badger's `key(prefix, i)` of manifest_test.go: `prefix` and `i` on 4 digits.
fn key4(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:04}")
}

/// Badger's `val(large)` of managed_db_test.go: random bytes, 8 KiB (value log) or 16 B.
fn random_value(len: usize, seed: u64) -> Vec<u8> {
    common::value_for(b"val", seed, len)
}

// ---------------------------------------------------------------------------------------------
// txn_test.go
// ---------------------------------------------------------------------------------------------

#[test]
fn txn_simple() {
    // txn_test.go TestTxnSimple: a transaction reads its own pending writes, and a managed
    // commit on a normal database is refused.
    let db = open_test_db();
    let mut txn = db.new_transaction(true).unwrap();
    for i in 0..10 {
        txn.set_entry(Entry::new(format!("key={i}"), format!("val={i}")))
            .unwrap();
    }
    let item = txn.get("key=8").unwrap().expect("pending write is read");
    assert_eq!(item.value().unwrap(), b"val=8");
    // DEPARTURE: Badger panics on CommitAt in normal mode (require.Panics); SettDB returns
    // InvalidRequest (misuse is an error, STYLE.md 8) and the transaction stays usable.
    assert!(matches!(txn.commit_at(100), Err(Error::InvalidRequest(_))));
    txn.commit().unwrap();
    db.close().unwrap();
}

fn txn_read_after_write_on(db: &Db) {
    let n = 100;
    thread::scope(|s| {
        for i in 0..n {
            s.spawn(move || {
                let key = format!("key{i}");
                db.update(|tx| tx.set_entry(Entry::new(&key, &key)))
                    .unwrap();
                db.view(|tx| {
                    assert_eq!(value_of(tx, &key).expect("just written"), key.as_bytes());
                    Ok(())
                })
                .unwrap();
            });
        }
    });
}

#[test]
fn txn_read_after_write() {
    // txn_test.go TestTxnReadAfterWrite: a read transaction begun after a commit returned sees
    // it, from many threads at once (disk mode and in-memory mode).
    let db = open_test_db();
    txn_read_after_write_on(&db);
    db.close().unwrap();
    let db = open_in_memory();
    txn_read_after_write_on(&db);
    db.close().unwrap();
}

#[test]
fn txn_commit_async() {
    // txn_test.go TestTxnCommitAsync: asynchronous commits are atomic: a reader summing 40
    // balances always finds 4000 while writers move amounts with commit_with.
    let key = |i: usize| format!("key={i}");
    let db = open_test_db();
    let mut txn = db.new_transaction(true).unwrap();
    for i in 0..40 {
        txn.set_entry(Entry::new(key(i), "100")).unwrap();
    }
    txn.commit().unwrap();
    txn.discard();

    let stop = AtomicBool::new(false);
    let checks = AtomicU64::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let mut txn = db.new_transaction(false).unwrap();
                let total: i64 = (0..40)
                    .map(|i| {
                        let v = value_of(&mut txn, key(i)).expect("balance present");
                        std::str::from_utf8(&v).unwrap().parse::<i64>().unwrap()
                    })
                    .sum();
                assert_eq!(total, 4000);
                txn.discard();
                checks.fetch_add(1, Ordering::SeqCst);
            }
        });
        let (tx, rx) = mpsc::channel();
        let mut writers = Vec::new();
        for w in 0..100 {
            let (db, tx) = (db.clone(), tx.clone());
            writers.push(s.spawn(move || {
                let mut txn = db.new_transaction(true).unwrap();
                let delta = (w * 37) % 100;
                for i in 0..20 {
                    let v = (100 - delta).to_string();
                    txn.set_entry(Entry::new(key(i), v)).unwrap();
                }
                for i in 20..40 {
                    let v = (100 + delta).to_string();
                    txn.set_entry(Entry::new(key(i), v)).unwrap();
                }
                // Only writes, so there won't be any conflicts.
                txn.commit_with(move |r| tx.send(r).unwrap());
                txn.discard();
            }));
        }
        for w in writers {
            w.join().unwrap();
        }
        for _ in 0..100 {
            rx.recv_timeout(Duration::from_secs(30))
                .unwrap()
                .expect("blind writes commit");
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert!(checks.load(Ordering::SeqCst) > 0);
    db.close().unwrap();
}

#[test]
fn txn_versions() {
    // txn_test.go TestTxnVersions: each commit is one version; a transaction at read_ts i
    // sees version i through get and through forward, reverse and all-versions iterators.
    // Badger sets the private txn.readTs; here a transaction begun right after commit i is
    // held open instead (its read_ts is i).
    let db = open_test_db();
    let k = b"key";
    let mut at = Vec::new();
    for i in 1..10u64 {
        let mut txn = db.new_transaction(true).unwrap();
        txn.set_entry(Entry::new(k, format!("valversion={i}")))
            .unwrap();
        txn.commit().unwrap();
        assert_eq!(db.max_version(), i);
        let snapshot = db.new_transaction(true).unwrap();
        assert_eq!(snapshot.read_ts(), i);
        at.push(snapshot);
    }
    let check_iterator = |it: TxnIterator, i: u64| {
        let items: Vec<_> = it.map(|r| r.unwrap()).collect();
        assert_eq!(items.len(), 1, "i={i}");
        assert_eq!(items[0].key(), k);
        assert_eq!(
            items[0].value().unwrap(),
            format!("valversion={i}").as_bytes()
        );
    };
    let check_all_versions = |it: TxnIterator, i: u64, reverse: bool| {
        let items: Vec<_> = it.map(|r| r.unwrap()).collect();
        assert_eq!(items.len() as u64, i, "i={i}");
        for (n, item) in items.iter().enumerate() {
            let version = if reverse { 1 + n as u64 } else { i - n as u64 };
            assert_eq!(item.key(), k);
            assert_eq!(item.version(), version);
            let want = format!("valversion={version}");
            assert_eq!(item.value().unwrap(), want.as_bytes(), "v={version}");
        }
    };
    for (idx, txn) in at.iter_mut().enumerate() {
        let i = idx as u64 + 1;
        let want = format!("valversion={i}");
        assert_eq!(value_of(txn, k).unwrap(), want.as_bytes(), "i={i}");
        check_iterator(txn.iter(IteratorOptions::default()).unwrap(), i);
        check_iterator(txn.iter(rev()).unwrap(), i);
        let all = IteratorOptions::default().with_all_versions(true);
        check_all_versions(txn.iter(all.clone()).unwrap(), i, false);
        check_all_versions(txn.iter(all.with_reverse(true)).unwrap(), i, true);
        txn.discard();
    }
    let mut txn = db.new_transaction(true).unwrap();
    assert_eq!(value_of(&mut txn, k).unwrap(), b"valversion=9");
    drop(txn);
    db.close().unwrap();
}

#[test]
fn txn_write_skew() {
    // txn_test.go TestTxnWriteSkew: two transactions that each read both balances and each
    // write one of them cannot both commit (serializable snapshot isolation).
    let db = open_test_db();
    let (ax, ay) = (b"x", b"y");
    let mut txn = db.new_transaction(true).unwrap();
    txn.set_entry(Entry::new(ax, "100")).unwrap();
    txn.set_entry(Entry::new(ay, "100")).unwrap();
    txn.commit().unwrap();
    assert_eq!(db.max_version(), 1);

    let bal = |txn: &mut Txn, key: &[u8]| -> i64 {
        let v = value_of(txn, key).expect("balance");
        std::str::from_utf8(&v).unwrap().parse().unwrap()
    };
    let mut txn1 = db.new_transaction(true).unwrap();
    let sum = bal(&mut txn1, ax) + bal(&mut txn1, ay);
    assert_eq!(sum, 200);
    txn1.set_entry(Entry::new(ax, "0")).unwrap();
    let sum = bal(&mut txn1, ax);
    assert_eq!(sum, 0);
    assert_eq!(sum + bal(&mut txn1, ay), 100);

    let mut txn2 = db.new_transaction(true).unwrap();
    let sum = bal(&mut txn2, ax) + bal(&mut txn2, ay);
    assert_eq!(sum, 200);
    txn2.set_entry(Entry::new(ay, "0")).unwrap();
    let sum = bal(&mut txn2, ax);
    assert_eq!(sum, 100);
    assert_eq!(sum + bal(&mut txn2, ay), 100);

    txn1.commit().unwrap();
    assert!(matches!(txn2.commit(), Err(Error::Conflict)));
    assert_eq!(db.max_version(), 2);
    db.close().unwrap();
}

#[test]
fn txn_iteration_edge_case() {
    // txn_test.go TestTxnIterationEdgeCase: iterators at each read_ts over
    // a3, a2, b4 (del), b3, c2, c1, and over a transaction's pending writes (b4, c deleted),
    // forward and reverse. Transactions begun after each commit stand in for Badger's
    // assignments to the private txn.readTs.
    let db = open_test_db();
    let (ka, kb, kc) = (b"a", b"b", b"c");
    let commit = |sets: &[(&[u8], &str)], dels: &[&[u8]]| {
        let mut txn = db.new_transaction(true).unwrap();
        for (k, v) in sets {
            txn.set_entry(Entry::new(*k, *v)).unwrap();
        }
        for k in dels {
            txn.delete(*k).unwrap();
        }
        txn.commit().unwrap();
        db.new_transaction(true).unwrap()
    };
    let at1 = commit(&[(kc, "c1")], &[]);
    assert_eq!(db.max_version(), 1);
    let at2 = commit(&[(ka, "a2"), (kc, "c2")], &[]);
    assert_eq!(db.max_version(), 2);
    let at3 = commit(&[(ka, "a3"), (kb, "b3")], &[]);
    assert_eq!(db.max_version(), 3);
    // b4, c4(del) (uncommitted)
    let mut txn4 = db.new_transaction(true).unwrap();
    txn4.set_entry(Entry::new(kb, "b4")).unwrap();
    txn4.delete(kc).unwrap();
    assert_eq!(db.max_version(), 3);
    // b4 (del)
    let txn = commit(&[], &[kb]);
    assert_eq!(db.max_version(), 4);

    let fwd = IteratorOptions::default;
    assert_eq!(values(txn.iter(fwd()).unwrap()), ["a3", "c2"]);
    assert_eq!(values(txn4.iter(fwd()).unwrap()), ["a3", "b4"]);
    assert_eq!(values(txn.iter(rev()).unwrap()), ["c2", "a3"]);
    assert_eq!(values(txn4.iter(rev()).unwrap()), ["b4", "a3"]);
    assert_eq!(values(at3.iter(fwd()).unwrap()), ["a3", "b3", "c2"]);
    assert_eq!(values(at3.iter(rev()).unwrap()), ["c2", "b3", "a3"]);
    assert_eq!(values(at2.iter(fwd()).unwrap()), ["a2", "c2"]);
    assert_eq!(values(at2.iter(rev()).unwrap()), ["c2", "a2"]);
    assert_eq!(values(at1.iter(fwd()).unwrap()), ["c1"]);
    assert_eq!(values(at1.iter(rev()).unwrap()), ["c1"]);
    drop((at1, at2, at3, txn4, txn));
    db.close().unwrap();
}

/// Asserts `it` is valid and positioned at `key`.
fn assert_at(it: &TxnIterator, key: &[u8]) {
    assert!(
        it.valid(),
        "not valid, wanted {:?}",
        String::from_utf8_lossy(key)
    );
    assert_eq!(it.item().key(), key);
}

#[test]
fn txn_iteration_edge_case2() {
    // txn_test.go TestTxnIterationEdgeCase2: the same history over keys that are prefixes of
    // each other (a, aa, aaa), plus seeks forward and reverse.
    let db = open_test_db();
    let (ka, kb, kc) = (&b"a"[..], &b"aa"[..], &b"aaa"[..]);
    let commit = |sets: &[(&[u8], &str)], dels: &[&[u8]]| {
        let mut txn = db.new_transaction(true).unwrap();
        for (k, v) in sets {
            txn.set_entry(Entry::new(*k, *v)).unwrap();
        }
        for k in dels {
            txn.delete(*k).unwrap();
        }
        txn.commit().unwrap();
        db.new_transaction(true).unwrap()
    };
    let at1 = commit(&[(kc, "c1")], &[]);
    assert_eq!(db.max_version(), 1);
    let at2 = commit(&[(ka, "a2"), (kc, "c2")], &[]);
    assert_eq!(db.max_version(), 2);
    let at3 = commit(&[(ka, "a3"), (kb, "b3")], &[]);
    assert_eq!(db.max_version(), 3);
    let txn = commit(&[], &[kb]);
    assert_eq!(db.max_version(), 4);

    let fwd = IteratorOptions::default;
    assert_eq!(values(txn.iter(fwd()).unwrap()), ["a3", "c2"]);
    assert_eq!(values(txn.iter(rev()).unwrap()), ["c2", "a3"]);

    // Badger reads at 5 here; nothing is committed above 4, so the latest snapshot is the same.
    let mut it = txn.iter(fwd()).unwrap();
    it.seek(ka).unwrap();
    assert_at(&it, ka);
    it.seek(kc).unwrap();
    assert_at(&it, kc);
    drop(it);
    let mut it = txn.iter(rev()).unwrap();
    it.seek(ka).unwrap();
    assert_at(&it, ka);
    it.seek(kc).unwrap();
    assert_at(&it, kc);
    drop(it);

    assert_eq!(values(at3.iter(fwd()).unwrap()), ["a3", "b3", "c2"]);
    assert_eq!(values(at3.iter(rev()).unwrap()), ["c2", "b3", "a3"]);
    assert_eq!(values(at2.iter(fwd()).unwrap()), ["a2", "c2"]);
    assert_eq!(values(at2.iter(rev()).unwrap()), ["c2", "a2"]);
    assert_eq!(values(at1.iter(fwd()).unwrap()), ["c1"]);
    assert_eq!(values(at1.iter(rev()).unwrap()), ["c1"]);
    drop((at1, at2, at3, txn));
    db.close().unwrap();
}

#[test]
fn txn_iteration_edge_case3() {
    // txn_test.go TestTxnIterationEdgeCase3: seeks (an empty seek is a rewind) forward and
    // reverse over committed keys abc, acd and over pending writes (ade set, acd deleted).
    let db = open_test_db();
    let (kb, kc, kd) = (&b"abc"[..], &b"acd"[..], &b"ade"[..]);
    db.update(|t| t.set_entry(Entry::new(kc, "c1"))).unwrap();
    assert_eq!(db.max_version(), 1);
    db.update(|t| t.set_entry(Entry::new(kb, "b2"))).unwrap();
    assert_eq!(db.max_version(), 2);

    let mut txn2 = db.new_transaction(true).unwrap();
    txn2.set_entry(Entry::new(kd, "d2")).unwrap();
    txn2.delete(kc).unwrap();
    let txn = db.new_transaction(true).unwrap();

    let mut it = txn.iter(IteratorOptions::default()).unwrap();
    it.seek(b"ab").unwrap();
    assert_at(&it, kb);
    it.seek(b"ac").unwrap();
    assert_at(&it, kc);
    it.seek(b"").unwrap();
    assert_at(&it, kb);
    it.seek(b"ac").unwrap();
    it.rewind().unwrap();
    it.seek(b"").unwrap();
    assert_at(&it, kb);
    it.seek(b"ac").unwrap();
    assert_at(&it, kc);
    drop(it);

    // Keys: "abc", "ade" (pending writes read).
    let mut it = txn2.iter(IteratorOptions::default()).unwrap();
    it.seek(b"ab").unwrap();
    assert_at(&it, kb);
    it.seek(b"ac").unwrap();
    assert_at(&it, kd);
    it.seek(b"").unwrap();
    assert_at(&it, kb);
    it.seek(b"ac").unwrap();
    it.rewind().unwrap();
    it.seek(b"").unwrap();
    assert_at(&it, kb);
    it.seek(b"ad").unwrap();
    assert_at(&it, kd);
    drop(it);

    let mut it = txn.iter(rev()).unwrap();
    it.seek(b"ac").unwrap();
    assert_at(&it, kb);
    it.seek(b"ad").unwrap();
    assert_at(&it, kc);
    it.seek(b"").unwrap();
    assert_at(&it, kc);
    it.seek(b"ac").unwrap();
    it.rewind().unwrap();
    assert_at(&it, kc);
    it.seek(b"ad").unwrap();
    assert_at(&it, kc);
    drop(it);

    // Keys: "abc", "ade".
    let mut it = txn2.iter(rev()).unwrap();
    it.seek(b"ad").unwrap();
    assert_at(&it, kb);
    it.seek(b"ae").unwrap();
    assert_at(&it, kd);
    it.seek(b"").unwrap();
    assert_at(&it, kd);
    it.seek(b"ab").unwrap();
    it.rewind().unwrap();
    assert_at(&it, kd);
    it.seek(b"ac").unwrap();
    assert_at(&it, kb);
    drop(it);
    drop((txn, txn2));
    db.close().unwrap();
}

fn iterator_all_versions_with_deleted_on(db: &Db) {
    let mut t = db.new_transaction_at(0, true).unwrap();
    t.set_entry(Entry::new("answer1", "42")).unwrap();
    t.set_entry(Entry::new("answer2", "43")).unwrap();
    t.commit_at(1).unwrap();
    // Badger writes a tombstone at the very version of answer1 with its private batchSet;
    // the public equivalent is a managed commit at that same timestamp.
    let version = db
        .view(|t| Ok(t.get("answer1")?.unwrap().version()))
        .unwrap();
    let mut t = db.new_transaction_at(version, true).unwrap();
    t.delete("answer1").unwrap();
    t.commit_at(version).unwrap();

    let opts = IteratorOptions::default()
        .with_all_versions(true)
        .with_prefetch_values(false);
    db.view(|txn| {
        let items: Vec<_> = txn.iter(opts)?.collect::<settdb::Result<_>>()?;
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].key(), b"answer1");
        assert!(items[0].is_deleted_or_expired());
        assert_eq!(items[1].key(), b"answer2");
        Ok(())
    })
    .unwrap();
}

#[test]
fn iterator_all_versions_with_deleted() {
    // txn_test.go TestIteratorAllVersionsWithDeleted: a tombstone written at the same version
    // as the value it deletes shows up (as deleted) in an all-versions iterator, once (disk and
    // in-memory mode). Managed mode is used to write at a chosen version.
    let db = open_managed_test_db();
    iterator_all_versions_with_deleted_on(&db);
    db.close().unwrap();
    let db = Db::open_managed(Options::in_memory()).unwrap();
    iterator_all_versions_with_deleted_on(&db);
    db.close().unwrap();
}

#[test]
fn iterator_all_versions_with_deleted2() {
    // txn_test.go TestIteratorAllVersionsWithDeleted2: alternating sets and deletes of one key
    // all show up in an all-versions iterator, tombstones marked deleted.
    let db = open_test_db();
    for i in 0..4 {
        db.update(|txn| {
            if i % 2 == 0 {
                txn.set_entry(Entry::new("key", "value"))
            } else {
                txn.delete("key")
            }
        })
        .unwrap();
    }
    let opts = IteratorOptions::default()
        .with_all_versions(true)
        .with_prefetch_values(false);
    db.view(|txn| {
        let mut count = 0;
        for item in txn.iter(opts)? {
            let item = item?;
            assert_eq!(item.key(), b"key");
            if count % 2 != 0 {
                assert_eq!(item.value()?, b"value");
            } else {
                assert!(item.is_deleted_or_expired());
            }
            count += 1;
        }
        assert_eq!(count, 4);
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

fn managed_db_on(db: &Db) {
    let key = |i: u64| format!("key-{i:02}");
    let val = |i: u64| format!("val-{i}");
    // DEPARTURE: Badger panics on Update in managed mode; SettDB refuses it with an error.
    assert!(matches!(
        db.update(|_| Ok(())),
        Err(Error::InvalidRequest(_))
    ));
    db.view(|_| Ok(())).unwrap();

    // Write data at t=3.
    let mut txn = db.new_transaction_at(3, true).unwrap();
    for i in 0..=3 {
        txn.set_entry(Entry::new(key(i), val(i))).unwrap();
    }
    assert!(txn.commit().is_err());
    txn.commit_at(3).unwrap();

    // Read data at t=2.
    let mut txn = db.new_transaction_at(2, false).unwrap();
    for i in 0..=3 {
        assert!(txn.get(key(i)).unwrap().is_none());
    }
    txn.discard();

    // Read data at t=3.
    let mut txn = db.new_transaction_at(3, false).unwrap();
    for i in 0..=3 {
        let item = txn.get(key(i)).unwrap().unwrap();
        assert_eq!(item.version(), 3);
        assert_eq!(item.value().unwrap(), val(i).as_bytes());
    }
    txn.discard();

    // Write data at t=7.
    let mut txn = db.new_transaction_at(6, true).unwrap();
    for i in 0..=7 {
        if txn.get(key(i)).unwrap().is_some() {
            continue; // Don't overwrite existing keys.
        }
        txn.set_entry(Entry::new(key(i), val(i))).unwrap();
    }
    txn.commit_at(7).unwrap();

    // Read data at t=9.
    let mut txn = db.new_transaction_at(9, false).unwrap();
    for i in 0..=9 {
        let item = txn.get(key(i)).unwrap();
        if i > 7 {
            assert!(item.is_none());
            continue;
        }
        let item = item.unwrap();
        assert_eq!(item.version(), if i <= 3 { 3 } else { 7 });
        assert_eq!(item.value().unwrap(), val(i).as_bytes());
    }
    txn.discard();
}

#[test]
fn managed_db() {
    // txn_test.go TestManagedDB: managed mode reads and commits at caller timestamps; a
    // commit without one is refused (and the transaction can still commit_at); disk and
    // in-memory mode.
    let db = open_managed_test_db();
    managed_db_on(&db);
    db.close().unwrap();
    let db = Db::open_managed(Options::in_memory()).unwrap();
    managed_db_on(&db);
    db.close().unwrap();
}

#[test]
fn arm_v7_issue311_fix() {
    // txn_test.go TestArmV7Issue311Fix: a view and two updates of the same key work with a
    // 16 MiB value log (Badger's v2-only MaxTableSize / LevelOneSize / TableLoadingMode map
    // to base_table_size 2 MiB and base_level_size 8 MiB).
    let db = Db::open(
        Options::new("/db")
            .with_storage(mem())
            .with_value_log_file_size(16 << 20)
            .with_base_level_size(8 << 20)
            .with_base_table_size(2 << 20)
            .with_sync_writes(false),
    )
    .unwrap();
    db.view(|_| Ok(())).unwrap();
    db.update(|t| t.set_entry(Entry::new([0x11u8], [0x22u8])))
        .unwrap();
    db.update(|t| t.set_entry(Entry::new([0x11u8], [0x22u8])))
        .unwrap();
    db.close().unwrap();
}

/// TestConflict's `testAndSet`: sets `foo` if a get finds it absent; true if it committed.
fn test_and_set(db: &Db) -> bool {
    let mut txn = db.new_transaction(true).unwrap();
    if txn.get("foo").unwrap().is_some() {
        return false;
    }
    txn.set("foo", "AA").unwrap();
    let (tx, rx) = mpsc::channel();
    txn.commit_with(move |r| tx.send(r).unwrap());
    match rx.recv().unwrap() {
        Ok(()) => true,
        Err(e) => {
            assert!(matches!(e, Error::Conflict), "{e}");
            false
        }
    }
}

/// TestConflict's `testAndSetItr`: the same with an iterator seek instead of a get.
fn test_and_set_itr(db: &Db) -> bool {
    let mut txn = db.new_transaction(true).unwrap();
    let mut found = false;
    {
        let mut it = txn.iter(IteratorOptions::default()).unwrap();
        it.seek(b"foo").unwrap();
        while it.valid() {
            found = true;
            it.next().unwrap();
        }
    }
    if found {
        return false;
    }
    txn.set("foo", "AA").unwrap();
    let (tx, rx) = mpsc::channel();
    txn.commit_with(move |r| tx.send(r).unwrap());
    match rx.recv().unwrap() {
        Ok(()) => true,
        Err(e) => {
            assert!(matches!(e, Error::Conflict), "{e}");
            false
        }
    }
}

/// TestConflict's `testAndSetItr` written with SettDB's range iterator: `Txn::range(key..)`
/// is the idiomatic form of Badger's `it.Seek(key)` followed by `Valid`/`Next`.
fn test_and_set_range(db: &Db) -> bool {
    let mut txn = db.new_transaction(true).unwrap();
    let found = txn.range("foo"..).unwrap().count() > 0;
    if found {
        return false;
    }
    txn.set("foo", "AA").unwrap();
    let (tx, rx) = mpsc::channel();
    txn.commit_with(move |r| tx.send(r).unwrap());
    match rx.recv().unwrap() {
        Ok(()) => true,
        Err(e) => {
            assert!(matches!(e, Error::Conflict), "{e}");
            false
        }
    }
}

#[test]
fn conflict_range() {
    // txn_test.go TestConflict, sub-test ItrSeek, with the seek written as Txn::range("foo"..):
    // of 16 concurrent seek-and-set transactions on an absent key, exactly one commits.
    for round in 0..10 {
        let db = open_test_db();
        let start = Barrier::new(16);
        let set_count = AtomicU32::new(0);
        thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    start.wait();
                    if test_and_set_range(&db) {
                        set_count.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        db.close().unwrap();
        assert_eq!(set_count.load(Ordering::SeqCst), 1, "round {round}");
    }
}

#[test]
fn conflict() {
    // txn_test.go TestConflict (issue 1289): of 16 concurrent get-and-set (or seek-and-set)
    // transactions on an absent key, exactly one commits; 10 rounds each.
    for f in [test_and_set, test_and_set_itr] {
        for round in 0..10 {
            let db = open_test_db();
            let start = Barrier::new(16);
            let set_count = AtomicU32::new(0);
            thread::scope(|s| {
                for _ in 0..16 {
                    s.spawn(|| {
                        start.wait();
                        if f(&db) {
                            set_count.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
            db.close().unwrap();
            assert_eq!(set_count.load(Ordering::SeqCst), 1, "round {round}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// iterator_test.go
// ---------------------------------------------------------------------------------------------

// NOT PORTED: TestPickTables, TestPickSortTables — they call Badger's private
// IteratorOptions.pickTable(s) on mock tables. SettDB's table pruning by prefix is
// crate-private (src/read/prefix_range.rs, unit-tested there) and not observable through the
// public API except as speed.

fn iterate_prefix_on(db: &Db) {
    let bkey = |i: u64| format!("{i:04}");
    let n = 10_000;
    let mut batch = db.new_write_batch().unwrap();
    for i in 0..n {
        batch.set(bkey(i), "OK").unwrap();
    }
    batch.flush().unwrap();

    let count_keys = |prefix: &str| -> usize {
        let opts = IteratorOptions::default().with_prefix(prefix.as_bytes());
        db.view(|txn| {
            let mut count = 0;
            for item in txn.iter(opts)? {
                let item = item?;
                assert_eq!(item.value()?, b"OK");
                assert!(item.key().starts_with(prefix.as_bytes()));
                count += 1;
            }
            Ok(count)
        })
        .unwrap()
    };
    let count_one_key = |key: &str| -> usize {
        db.view(|txn| {
            let mut count = 0;
            for item in txn.key_iter(key, IteratorOptions::default())? {
                let item = item?;
                assert_eq!(item.value()?, b"OK");
                assert_eq!(item.key(), key.as_bytes());
                count += 1;
            }
            Ok(count)
        })
        .unwrap()
    };
    for i in 0..=9 {
        assert_eq!(count_keys(&format!("{i}{i}{i}{i}")), 1);
        assert_eq!(count_keys(&format!("{i}{i}{i}")), 10);
        assert_eq!(count_keys(&format!("{i}{i}")), 100);
        assert_eq!(count_keys(&format!("{i}")), 1000);
    }
    assert_eq!(count_keys(""), 10_000);
    for i in 0..n {
        assert_eq!(count_one_key(&bkey(i)), 1, "{}", bkey(i));
    }
}

#[test]
fn iterate_prefix() {
    // iterator_test.go TestIteratePrefix: prefix iterators count exactly the keys with the
    // prefix and key iterators exactly one key, over 10000 keys in many tables, with the
    // default caches, the index cache, both caches, and the block cache alone.
    let configs = [
        (10 << 20, 0),
        (10 << 20, 100 << 20),
        (100 << 20, 100 << 20),
        (100 << 20, 0),
    ];
    for (block, index) in configs {
        let db = Db::open(
            test_options(mem())
                .with_block_cache_size(block)
                .with_index_cache_size(index),
        )
        .unwrap();
        iterate_prefix_on(&db);
        db.close().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// batch_test.go
// ---------------------------------------------------------------------------------------------

fn write_batch_on(db: &Db) {
    let key = |i: u64| format!("{i:10}");
    let val = |i: u64| format!("{i:128}");
    let mut wb = db.new_write_batch().unwrap();
    // DEPARTURE: Badger checks that SetEntryAt fails on a normal write batch; SettDB's
    // WriteBatch has no per-entry version method at all, so the misuse does not compile.
    // Scaled: N 50000 → 10000.
    let (n, m) = (10_000, 1_000);
    for i in 0..n {
        wb.set(key(i), val(i)).unwrap();
    }
    for i in 0..m {
        wb.delete(key(i)).unwrap();
    }
    wb.flush().unwrap();
    db.view(|txn| {
        let mut i = m;
        for item in txn.iter(IteratorOptions::default())? {
            let item = item?;
            assert_eq!(item.key(), key(i).as_bytes());
            assert_eq!(item.value()?, val(i).as_bytes());
            i += 1;
        }
        assert_eq!(i, n);
        Ok(())
    })
    .unwrap();
}

#[test]
fn write_batch() {
    // batch_test.go TestWriteBatch: a write batch's sets and later deletes all land, in key
    // order, with a 32-byte value threshold (value log) and in-memory.
    let db = Db::open(test_options(mem()).with_value_threshold(32)).unwrap();
    write_batch_on(&db);
    db.close().unwrap();
    let db = open_in_memory();
    write_batch_on(&db);
    db.close().unwrap();
}

#[test]
fn empty_write_batch() {
    // batch_test.go TestEmptyWriteBatch: flushing an empty write batch does not deadlock, in
    // normal mode and with managed batches at a timestamp.
    let db = open_test_db();
    for _ in 0..3 {
        db.new_write_batch().unwrap().flush().unwrap();
    }
    db.close().unwrap();
    let db = open_managed_test_db();
    for ts in [2, 208, 31] {
        db.new_write_batch_at(ts).unwrap().flush().unwrap();
    }
    // The "ManagedWriteBatch" sub-test: batches whose entries carry their own versions.
    for _ in 0..3 {
        db.new_managed_write_batch().unwrap().flush().unwrap();
    }
    db.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// managed_db_test.go
// ---------------------------------------------------------------------------------------------

/// Badger's DropAll tests use 8 KiB values ("large", value log) over a 5 MiB value-log file.
fn drop_test_options(storage: Arc<dyn Storage>) -> Options {
    test_options(storage).with_value_log_file_size(5 << 20)
}

/// Scaled: Badger's N = 10000 keys with 8 KiB values, here 2000.
const DROP_N: u64 = 2_000;

/// Badger's `populate` with a write batch: keys key0000.. with `len`-byte values.
fn populate_batch(db: &Db, n: u64, len: usize) {
    let mut writer = db.new_write_batch().unwrap();
    for i in 0..n {
        writer.set(key4("key", i), random_value(len, i)).unwrap();
    }
    writer.flush().unwrap();
}

/// Badger's managed `populate`: key `start + i` committed at version `start + i`.
fn populate_managed(db: &Db, start: u64, n: u64) {
    for i in start..start + n {
        let mut txn = db.new_transaction_at(u64::MAX, true).unwrap();
        txn.set_entry(Entry::new(key4("key", i), random_value(8192, i)))
            .unwrap();
        // Badger commits with CommitAt(i, callback) and waits for every callback; SettDB's
        // commit_at is synchronous.
        txn.commit_at(i).unwrap();
    }
}

#[test]
fn drop_all_managed() {
    // managed_db_test.go TestDropAllManaged: drop_all (twice) in managed mode empties the
    // database, writes at lower timestamps work afterwards and survive a reopen.
    let storage = mem();
    let db = Db::open_managed(drop_test_options(storage.clone())).unwrap();
    let n = DROP_N;
    populate_managed(&db, n, n);
    assert_eq!(num_keys_managed(&db, u64::MAX), n as usize);
    db.drop_all().unwrap();
    db.drop_all().unwrap(); // Just call it twice, for fun.
    assert_eq!(num_keys_managed(&db, u64::MAX), 0);
    // Check that we can still write to db, and using lower timestamps.
    populate_managed(&db, 1, n);
    assert_eq!(num_keys_managed(&db, u64::MAX), n as usize);
    db.close().unwrap();
    let db2 = Db::open_managed(drop_test_options(storage)).unwrap();
    assert_eq!(num_keys_managed(&db2, u64::MAX), n as usize);
    db2.close().unwrap();
}

#[test]
fn drop_all() {
    // managed_db_test.go TestDropAll: drop_all empties the database; new writes work and
    // survive a reopen.
    let storage = mem();
    let db = Db::open(drop_test_options(storage.clone())).unwrap();
    populate_batch(&db, DROP_N, 8192);
    assert_eq!(num_keys(&db), DROP_N as usize);
    db.drop_all().unwrap();
    assert_eq!(num_keys(&db), 0);
    populate_batch(&db, DROP_N, 8192);
    assert_eq!(num_keys(&db), DROP_N as usize);
    db.close().unwrap();
    let db2 = Db::open(drop_test_options(storage)).unwrap();
    assert_eq!(num_keys(&db2), DROP_N as usize);
    db2.close().unwrap();
}

fn drop_all_twice_on(db: Db) {
    let n = 10_000;
    populate_batch(&db, n, 16);
    assert_eq!(num_keys(&db), n as usize);
    db.drop_all().unwrap();
    assert_eq!(num_keys(&db), 0);
    // Call drop_all again.
    db.drop_all().unwrap();
    db.close().unwrap();
}

#[test]
fn drop_all_twice() {
    // managed_db_test.go TestDropAllTwice: a second drop_all of an empty database works, on
    // disk and in memory.
    drop_all_twice_on(Db::open(drop_test_options(mem())).unwrap());
    drop_all_twice_on(open_in_memory());
}

/// The reader of Badger's Drop*WithPendingTxn tests: a transaction begun before the drop
/// iterates and then gets every key it saw, round after round, until a get fails (the drop
/// became visible to it). Returns the number of rounds.
fn read_until_dropped(mut txn: Txn) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rounds = 0;
    let mut it = txn.iter(IteratorOptions::default()).unwrap();
    loop {
        assert!(
            Instant::now() < deadline,
            "the drop never reached the transaction"
        );
        rounds += 1;
        let mut keys = Vec::new();
        it.rewind().unwrap();
        while it.valid() {
            let item = it.item();
            keys.push(item.key().to_vec());
            if item.value().is_err() {
                return rounds;
            }
            it.next().unwrap();
        }
        for key in keys {
            match txn.get(&key) {
                Ok(Some(item)) => {
                    if item.value().is_err() {
                        return rounds;
                    }
                }
                Ok(None) | Err(_) => return rounds,
            }
        }
    }
}

#[test]
fn drop_all_with_pending_txn() {
    // managed_db_test.go TestDropAllWithPendingTxn: drop_all completes while a transaction
    // with an open iterator keeps reading, and that reader ends (no deadlock, no crash).
    // Scaled: 2000 keys, the drop after 200 ms instead of 2 s.
    let db = Db::open(drop_test_options(mem())).unwrap();
    populate_batch(&db, DROP_N, 8192);
    assert_eq!(num_keys(&db), DROP_N as usize);
    let txn = db.new_transaction(true).unwrap();
    thread::scope(|s| {
        s.spawn(move || read_until_dropped(txn));
        s.spawn(|| {
            thread::sleep(Duration::from_millis(200));
            db.drop_all().unwrap();
        });
    });
    db.close().unwrap();
}

#[test]
fn drop_read_only() {
    // managed_db_test.go TestDropReadOnly: drop_all on a database opened read-only is refused.
    let storage = mem();
    let db = Db::open(drop_test_options(storage.clone())).unwrap();
    populate_batch(&db, 1000, 8192);
    assert_eq!(num_keys(&db), 1000);
    db.close().unwrap();
    let db2 = Db::open(drop_test_options(storage).with_read_only(true)).unwrap();
    // DEPARTURE: Badger panics (require.Panics); SettDB returns InvalidRequest (STYLE.md 8).
    assert!(matches!(db2.drop_all(), Err(Error::InvalidRequest(_))));
    db2.close().unwrap();
}

#[test]
fn write_after_close() {
    // managed_db_test.go TestWriteAfterClose: an update after close fails with the closed
    // error (Badger's ErrDBClosed).
    let db = Db::open(drop_test_options(mem())).unwrap();
    populate_batch(&db, 1000, 8192);
    assert_eq!(num_keys(&db), 1000);
    db.close().unwrap();
    let r = db.update(|txn| txn.set_entry(Entry::new("a", "b")));
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
}

/// The background writer of Badger's Drop*Race tests: every millisecond, a managed commit
/// of key `i` at version `i` (from `first`), until `stop`; errors are counted, not fatal.
fn write_every_ms(db: &Db, first: u64, stop: &AtomicBool) -> u64 {
    let mut i = first;
    let mut errors = 0;
    while !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(1));
        i += 1;
        let mut txn = db.new_transaction_at(u64::MAX, true).unwrap();
        txn.set_entry(Entry::new(key4("key", i), random_value(16, i)))
            .unwrap();
        if txn.commit_at(i).is_err() {
            errors += 1;
        }
    }
    errors
}

fn drop_race(drop: impl FnOnce(&Db)) {
    let db = open_managed_test_db();
    let n = DROP_N;
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let writer = s.spawn(|| write_every_ms(&db, n + 1, &stop));
        for i in 1..=n {
            let mut txn = db.new_transaction_at(u64::MAX, true).unwrap();
            txn.set_entry(Entry::new(key4("key", i), random_value(16, i)))
                .unwrap();
            txn.commit_at(i).unwrap();
        }
        // Badger's writes are asynchronous and race the background writer; with synchronous
        // commits, wait until the writer wrote something too.
        while num_keys_managed(&db, u64::MAX) <= n as usize {
            thread::sleep(Duration::from_millis(5));
        }
        let before = num_keys_managed(&db, u64::MAX);
        assert!(before > n as usize);
        drop(&db);
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        let after = num_keys_managed(&db, u64::MAX);
        assert!(after < before, "before {before}, after {after}");
    });
    db.close().unwrap();
}

#[test]
fn drop_all_race() {
    // managed_db_test.go TestDropAllRace: drop_all while another thread keeps committing
    // leaves fewer keys than before and no error. Scaled: 10000 → 2000 keys.
    drop_race(|db| db.drop_all().unwrap());
}

/// Badger's TestDropPrefix: 10000 keys (the prefix arithmetic needs them) with 8 KiB values
/// (value log).
const DROP_PREFIX_VALUE_LEN: usize = 8192;

#[test]
fn drop_prefix() {
    // managed_db_test.go TestDropPrefix: drop_prefix removes exactly the keys under each
    // prefix, new writes work after, and a final drop survives a reopen.
    let storage = mem();
    let db = Db::open(drop_test_options(storage.clone())).unwrap();
    let n = 10_000;
    populate_batch(&db, n, DROP_PREFIX_VALUE_LEN);
    assert_eq!(num_keys(&db), n as usize);
    db.drop_prefix(&["key000"]).unwrap();
    assert_eq!(num_keys(&db), n as usize - 10);
    db.drop_prefix(&["key00"]).unwrap();
    assert_eq!(num_keys(&db), n as usize - 100);
    let mut expected = n as usize;
    for i in 0..10 {
        db.drop_prefix(&[format!("key{i}")]).unwrap();
        expected -= 1000;
        assert_eq!(num_keys(&db), expected, "after key{i}");
    }
    db.drop_prefix(&["key1"]).unwrap();
    assert_eq!(num_keys(&db), 0);
    db.drop_prefix(&["key"]).unwrap();
    assert_eq!(num_keys(&db), 0);
    // Check that we can still write to the db.
    populate_batch(&db, n, DROP_PREFIX_VALUE_LEN);
    assert_eq!(num_keys(&db), n as usize);
    db.drop_prefix(&["key"]).unwrap();
    db.close().unwrap();
    let db2 = Db::open(drop_test_options(storage)).unwrap();
    assert_eq!(num_keys(&db2), 0);
    db2.close().unwrap();
}

#[test]
fn drop_prefix_with_pending_txn() {
    // managed_db_test.go TestDropPrefixWithPendingTxn: drop_prefix completes while a
    // transaction with an open iterator keeps reading, and that reader ends. Scaled: 2000
    // keys, the drops after 200 ms instead of 2 s.
    let db = Db::open(drop_test_options(mem())).unwrap();
    populate_batch(&db, DROP_N, 8192);
    assert_eq!(num_keys(&db), DROP_N as usize);
    let txn = db.new_transaction(true).unwrap();
    thread::scope(|s| {
        s.spawn(move || read_until_dropped(txn));
        s.spawn(|| {
            thread::sleep(Duration::from_millis(200));
            db.drop_prefix(&["key0"]).unwrap();
            db.drop_prefix(&["key00"]).unwrap();
            db.drop_prefix(&["key"]).unwrap();
        });
    });
    db.close().unwrap();
}

#[test]
fn drop_prefix_read_only() {
    // managed_db_test.go TestDropPrefixReadOnly: drop_prefix on a read-only database is
    // refused.
    let storage = mem();
    let db = Db::open(drop_test_options(storage.clone())).unwrap();
    populate_batch(&db, 1000, 8192);
    assert_eq!(num_keys(&db), 1000);
    db.close().unwrap();
    let db2 = Db::open(drop_test_options(storage).with_read_only(true)).unwrap();
    // DEPARTURE: Badger panics (require.Panics); SettDB returns InvalidRequest (STYLE.md 8).
    assert!(matches!(
        db2.drop_prefix(&["key0"]),
        Err(Error::InvalidRequest(_))
    ));
    db2.close().unwrap();
}

#[test]
fn drop_prefix_race() {
    // managed_db_test.go TestDropPrefixRace: drop_prefix while another thread keeps
    // committing leaves fewer keys than before and no error. Scaled: 10000 → 2000 keys.
    drop_race(|db| {
        db.drop_prefix(&["key00"]).unwrap();
        db.drop_prefix(&["key1"]).unwrap();
        db.drop_prefix(&["key"]).unwrap();
    });
}

#[test]
fn write_batch_managed_mode() {
    // managed_db_test.go TestWriteBatchManagedMode: a managed write batch at ts 1, split into
    // several commits by the batch limits (1 MiB memtable here, MaxTableSize 1 MiB in Badger),
    // writes every entry at version 1. Scaled: N 50000 → 10000.
    let key = |i: u64| format!("{i:10}");
    let val = |i: u64| format!("{i:128}");
    let db = open_managed_test_db();
    let mut wb = db.new_write_batch_at(1).unwrap();
    let (n, m) = (10_000, 1_000);
    for i in 0..n {
        wb.set(key(i), val(i)).unwrap();
    }
    for i in 0..m {
        wb.delete(key(i)).unwrap();
    }
    wb.flush().unwrap();
    db.view(|txn| {
        let mut i = m;
        for item in txn.iter(IteratorOptions::default())? {
            let item = item?;
            assert_eq!(item.key(), key(i).as_bytes());
            assert_eq!(item.version(), 1);
            assert_eq!(item.value()?, val(i).as_bytes());
            i += 1;
        }
        assert_eq!(i, n);
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

#[test]
fn write_batch_managed() {
    // managed_db_test.go TestWriteBatchManaged: 50,000 sets at version 1 and 1,000 deletes
    // at version 2 through one managed batch (several sub-batches); the newest view sees keys
    // 1,000.. at version 1 with their values. Scaled to 20,000 sets (2 shared cores).
    let key = |i: usize| format!("{i:10}");
    let val = |i: usize| format!("{i:128}");
    let db = open_managed_test_db();
    let (n, m) = (20_000, 1_000);
    let mut wb = db.new_managed_write_batch().unwrap();
    for i in 0..n {
        wb.set_entry_at(Entry::new(key(i), val(i)), 1).unwrap();
    }
    for i in 0..m {
        wb.delete_at(key(i), 2).unwrap();
    }
    wb.flush().unwrap();
    let txn = db.new_transaction_at(u64::MAX, false).unwrap();
    let mut i = m;
    for item in txn.iter(IteratorOptions::default()).unwrap() {
        let item = item.unwrap();
        assert_eq!(item.key(), key(i).as_bytes());
        assert_eq!(item.version(), 1);
        assert_eq!(item.value().unwrap(), val(i).as_bytes());
        i += 1;
    }
    assert_eq!(i, n);
    db.close().unwrap();
}

/// TestWriteBatchDuplicate's `readVerify`: all versions of "key", with their versions.
fn read_verify(db: &Db, versions: &[u64]) {
    db.view(|txn| {
        let opts = IteratorOptions::default().with_all_versions(true);
        let items: Vec<_> = txn.iter(opts)?.collect::<settdb::Result<_>>()?;
        assert_eq!(items.len(), versions.len());
        for (item, &v) in items.iter().zip(versions) {
            assert_eq!(item.key(), b"key");
            assert_eq!(item.version(), v);
            assert_eq!(item.value()?, b"val");
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn write_batch_duplicate() {
    // managed_db_test.go TestWriteBatchDuplicate: ten sets of one key in a write batch make
    // one version (1 in normal mode, the batch's ts in managed mode).
    let db = open_test_db();
    let mut wb = db.new_write_batch().unwrap();
    for _ in 0..10 {
        wb.set_entry(Entry::new("key", "val")).unwrap();
    }
    wb.flush().unwrap();
    read_verify(&db, &[1]);
    db.close().unwrap();

    let db = open_managed_test_db();
    let mut wb = db.new_write_batch_at(10).unwrap();
    for _ in 0..10 {
        wb.set_entry(Entry::new("key", "val")).unwrap();
    }
    wb.flush().unwrap();
    read_verify(&db, &[10]);
    db.close().unwrap();

    // The "managed writebatch" sub-test: one key at ten versions in one managed batch.
    // DEPARTURE: Badger writes versions 0..9; SettDB refuses version 0 (no read timestamp
    // could tell it from "nothing"), so the versions are 1..10.
    let db = open_managed_test_db();
    let mut wb = db.new_managed_write_batch().unwrap();
    for i in 1..=10 {
        wb.set_entry_at(Entry::new("key", "val"), i).unwrap();
    }
    wb.flush().unwrap();
    read_verify(&db, &[10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    db.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Regressions found by the ports above (minimal reproductions).
// ---------------------------------------------------------------------------------------------

#[test]
fn write_batch_splits_when_its_values_overflow_a_value_log_file() {
    // Found by the TestDropAll port: 200 values of 8 KiB (1.6 MB for the value log) in one
    // write batch over 1 MiB value-log files must commit in several sub-batches, as the batch
    // does when a transaction would be too big; flush failed with ValueLogWriteTooBig.
    let opts = Options::new("/db")
        .with_storage(mem())
        .with_value_log_file_size(1 << 20);
    let db = Db::open(opts).unwrap();
    let mut wb = db.new_write_batch().unwrap();
    for i in 0..200 {
        wb.set(format!("k{i:03}"), vec![1u8; 8192]).unwrap();
    }
    wb.flush().unwrap();
    for i in 0..200 {
        assert_eq!(db.get(format!("k{i:03}")).unwrap().unwrap().len(), 8192);
    }
    db.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// db_test.go (the API cases; statuses in the table at the top)
// ---------------------------------------------------------------------------------------------

#[test]
fn write() {
    // db_test.go TestWrite: 100 single-key transactions commit.
    let db = open_test_db();
    for i in 0..100 {
        txn_set(
            &db,
            format!("key{i}").as_bytes(),
            format!("val{i}").as_bytes(),
            0,
        );
    }
    db.close().unwrap();
}

#[test]
fn update_and_view() {
    // db_test.go TestUpdateAndView: what update wrote, view reads.
    let db = open_test_db();
    db.update(|txn| {
        for i in 0..10 {
            txn.set_entry(Entry::new(format!("key{i}"), format!("val{i}")))?;
        }
        Ok(())
    })
    .unwrap();
    db.view(|txn| {
        for i in 0..10 {
            let item = txn.get(format!("key{i}"))?.expect("written");
            assert_eq!(item.value()?, format!("val{i}").as_bytes());
        }
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

#[test]
fn concurrent_write() {
    // db_test.go TestConcurrentWrite: 20 threads × 500 commits all land; an iterator yields
    // them in key order with their values and user meta.
    let db = open_test_db();
    let (n, m) = (20, 500);
    thread::scope(|s| {
        for i in 0..n {
            let db = &db;
            s.spawn(move || {
                for j in 0..m {
                    let k = format!("k{i:05}_{j:08}");
                    let v = format!("v{i:05}_{j:08}");
                    txn_set(db, k.as_bytes(), v.as_bytes(), (j % 127) as u8);
                }
            });
        }
    });
    let opts = IteratorOptions::default().with_prefetch_values(true);
    let txn = db.new_transaction(true).unwrap();
    let (mut i, mut j) = (0, 0);
    for item in txn.iter(opts).unwrap() {
        let item = item.unwrap();
        assert_eq!(item.key(), format!("k{i:05}_{j:08}").as_bytes());
        assert_eq!(item.value().unwrap(), format!("v{i:05}_{j:08}").as_bytes());
        assert_eq!(item.user_meta(), (j % 127) as u8);
        j += 1;
        if j == m {
            i += 1;
            j = 0;
        }
    }
    assert_eq!((i, j), (n, 0));
    drop(txn);
    db.close().unwrap();
}

fn get_on(db: &Db) {
    txn_set(db, b"key1", b"val1", 0x08);
    let mut txn = db.new_transaction(false).unwrap();
    let item = txn.get("key1").unwrap().unwrap();
    assert_eq!(item.value().unwrap(), b"val1");
    assert_eq!(item.user_meta(), 0x08);
    txn.discard();

    txn_set(db, b"key1", b"val2", 0x09);
    let mut txn = db.new_transaction(false).unwrap();
    let item = txn.get("key1").unwrap().unwrap();
    assert_eq!(item.value().unwrap(), b"val2");
    assert_eq!(item.user_meta(), 0x09);
    txn.discard();

    txn_delete(db, b"key1");
    let mut txn = db.new_transaction(false).unwrap();
    assert!(txn.get("key1").unwrap().is_none());
    txn.discard();

    txn_set(db, b"key1", b"val3", 0x01);
    let mut txn = db.new_transaction(false).unwrap();
    let item = txn.get("key1").unwrap().unwrap();
    assert_eq!(item.value().unwrap(), b"val3");
    assert_eq!(item.user_meta(), 0x01);

    let long_val = vec![0u8; 1000];
    txn_set(db, b"key1", &long_val, 0x00);
    let mut txn = db.new_transaction(false).unwrap();
    let item = txn.get("key1").unwrap().unwrap();
    assert_eq!(item.value().unwrap(), long_val);
    txn.discard();
}

#[test]
fn get() {
    // db_test.go TestGet: get sees each overwrite with its user meta, nothing after a delete,
    // and a value-log value; on disk, in memory, and with the block cache.
    let db = open_test_db();
    get_on(&db);
    db.close().unwrap();
    let db = open_in_memory();
    get_on(&db);
    db.close().unwrap();
    let db = Db::open(
        Options::new("/db")
            .with_storage(mem())
            .with_block_cache_size(10 << 20),
    )
    .unwrap();
    get_on(&db);
    db.close().unwrap();
}

#[test]
fn get_after_delete() {
    // db_test.go TestGetAfterDelete: a transaction's own delete hides the key from its get.
    let db = open_test_db();
    txn_set(&db, b"key", b"val1", 0);
    db.update(|txn| {
        txn.delete("key")?;
        assert!(txn.get("key")?.is_none());
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

#[test]
fn txn_too_big() {
    // db_test.go TestTxnTooBig: writing until TxnTooBig, committing and going on in a new
    // transaction writes (and then deletes) every key. Badger's 32 KiB test tables made its
    // batch limit ~5 KB, crossed by 1000 keys; SettDB's smallest memtable (1 MiB) allows
    // ~150 KB per transaction, so n is 20000 to cross it several times.
    let data = |i: u64| format!("{i:b}");
    let n = 20_000;
    let db = open_test_db();
    let mut splits = 0;
    let mut txn = db.new_transaction(true).unwrap();
    let mut i = 0;
    while i < n {
        match txn.set_entry(Entry::new(data(i), data(i))) {
            Err(Error::TxnTooBig { .. }) => {
                txn.commit().unwrap();
                txn = db.new_transaction(true).unwrap();
                splits += 1;
            }
            Err(e) => panic!("{e}"),
            Ok(()) => i += 1,
        }
    }
    txn.commit().unwrap();
    assert!(splits > 0);

    let mut txn = db.new_transaction(true).unwrap();
    let mut i = 0;
    while i < n {
        match txn.delete(data(i)) {
            Err(Error::TxnTooBig { .. }) => {
                txn.commit().unwrap();
                txn = db.new_transaction(true).unwrap();
            }
            Err(e) => panic!("{e}"),
            Ok(()) => i += 1,
        }
    }
    txn.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn force_compact_l0() {
    // db_test.go TestForceCompactL0: closing compacts L0, so a reopened database has no L0
    // table. Scaled: values 32 KiB → 4 KiB.
    let storage = mem();
    // DEPARTURE: Badger v2 compacts L0 on close by default (CompactL0OnClose = true); SettDB
    // follows Badger v4 (default false), so the test turns it on.
    let opts = test_options(storage)
        .with_value_log_file_size(15 << 20)
        .with_compact_l0_on_close(true);
    let db = Db::open_managed(opts.clone()).unwrap();
    let data = |i: u64| format!("{i:b}");
    let (n, m) = (80, 45);
    let v = vec![0u8; 4 << 10];
    for i in (0..n).step_by(2) {
        let version = i;
        let mut txn = db.new_transaction_at(version, true).unwrap();
        for j in 0..m {
            txn.set_entry(Entry::new(data(j), v.clone())).unwrap();
        }
        txn.commit_at(version + 1).unwrap();
    }
    db.close().unwrap();
    let db = Db::open_managed(opts).unwrap();
    assert_eq!(db.levels().tables(0).len(), 0);
    db.close().unwrap();
}

#[test]
fn get_more() {
    // db_test.go TestGetMore: 10000 keys written 45 per transaction, read back, overwritten
    // with longer values, read back, deleted, and all gone (Badger's internal db.validate()
    // of the level structure between phases is left out).
    let data = |i: u64| format!("{i:b}");
    let long = |j: u64| format!("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz{j:9}");
    let (n, m) = (10_000, 45);
    let db = open_test_db();
    let write_all = |value: &dyn Fn(u64) -> String, delete: bool| {
        for i in (0..n).step_by(m) {
            let mut txn = db.new_transaction(true).unwrap();
            for j in i..(i + m as u64).min(n) {
                if delete {
                    txn.delete(data(j)).unwrap();
                } else {
                    txn.set_entry(Entry::new(data(j), value(j))).unwrap();
                }
            }
            txn.commit().unwrap();
        }
    };
    let check_all = |value: &dyn Fn(u64) -> Option<String>| {
        for i in 0..n {
            let mut txn = db.new_transaction(false).unwrap();
            let got = value_of(&mut txn, data(i));
            assert_eq!(got, value(i).map(String::into_bytes), "key {}", data(i));
        }
    };
    write_all(&data, false);
    check_all(&|i| Some(data(i)));
    write_all(&long, false);
    check_all(&|i| Some(long(i)));
    write_all(&data, true);
    check_all(&|_| None);
    db.close().unwrap();
}

fn exists_more_on(db: &Db) {
    let (n, m) = (10_000u64, 45usize);
    let key = |j: u64| format!("{j:09}");
    for i in (0..n).step_by(m) {
        let mut txn = db.new_transaction(true).unwrap();
        for j in i..(i + m as u64).min(n) {
            txn.set_entry(Entry::new(key(j), key(j))).unwrap();
        }
        txn.commit().unwrap();
    }
    for i in 0..n {
        db.view(|txn| {
            assert!(txn.get(key(i))?.is_some());
            Ok(())
        })
        .unwrap();
    }
    db.view(|txn| {
        assert!(txn.get("non-exists")?.is_none());
        Ok(())
    })
    .unwrap();
    for i in (0..n).step_by(m) {
        let mut txn = db.new_transaction(true).unwrap();
        for j in i..(i + m as u64).min(n) {
            txn.delete(key(j)).unwrap();
        }
        txn.commit().unwrap();
    }
    for i in 0..n {
        db.view(|txn| {
            assert!(txn.get(key(i))?.is_none());
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn exists_more() {
    // db_test.go TestExistsMore: 10000 keys exist after writing and none after deleting, on
    // disk and in memory.
    let db = open_test_db();
    exists_more_on(&db);
    db.close().unwrap();
    let db = open_in_memory();
    exists_more_on(&db);
    db.close().unwrap();
}

fn iterate2_basic_on(db: &Db) {
    let bkey = |i: u64| format!("{i:09}");
    let bval = |i: u64| format!("{i:025}");
    let n = 10_000;
    for i in 0..n {
        txn_set(db, bkey(i).as_bytes(), bval(i).as_bytes(), (i % 127) as u8);
    }
    let opts = IteratorOptions::default().with_prefetch_values(true);
    let txn = db.new_transaction(false).unwrap();
    let mut it = txn.iter(opts).unwrap();
    let mut count = 0;
    let mut rewind = true;
    it.rewind().unwrap();
    while it.valid() {
        let item = it.item();
        if rewind && count == 5000 {
            // Rewind would skip /head/ key, and it.next() would skip 0.
            count = 1;
            it.rewind().unwrap();
            rewind = false;
            it.next().unwrap(); // Go's `continue` runs the loop's it.Next().
            continue;
        }
        assert_eq!(item.key(), bkey(count).as_bytes());
        assert_eq!(item.value().unwrap(), bval(count).as_bytes());
        assert_eq!(item.user_meta(), (count % 127) as u8);
        count += 1;
        it.next().unwrap();
    }
    assert_eq!(count, n);

    let mut idx = 5030;
    it.seek(bkey(idx).as_bytes()).unwrap();
    while it.valid() {
        let item = it.item();
        assert_eq!(item.key(), bkey(idx).as_bytes());
        assert_eq!(item.value().unwrap(), bval(idx).as_bytes());
        idx += 1;
        it.next().unwrap();
    }
    assert_eq!(idx, n);
}

#[test]
fn iterate2_basic() {
    // db_test.go TestIterate2Basic: an iterator over 10000 single-commit keys yields them in
    // order with values and user meta, can rewind midway, and seeks; disk and in-memory.
    let db = open_test_db();
    iterate2_basic_on(&db);
    db.close().unwrap();
    let db = open_in_memory();
    iterate2_basic_on(&db);
    db.close().unwrap();
}

fn load_with(opts: Options) {
    // Scaled: as Badger (10000 single-key commits), per configuration.
    let n = 10_000u64;
    let db = Db::open(opts.clone()).unwrap();
    for i in 0..n {
        let k = format!("{i:09}");
        txn_set(&db, k.as_bytes(), k.as_bytes(), 0);
    }
    db.close().unwrap();
    let kv = Db::open(opts.clone()).unwrap();
    // DEPARTURE: Badger v2 expects readTs 10001 here: on close it stores its value-log head
    // under the internal key !badger!head at a version of its own. SettDB keeps no internal
    // key in the LSM tree, so the newest version (and a new read_ts) is exactly n.
    assert_eq!(kv.max_version(), n);
    assert_eq!(kv.new_transaction(false).unwrap().read_ts(), n);
    for i in 0..n {
        let k = format!("{i:09}");
        kv.view(|txn| {
            assert_eq!(txn.get(&k)?.expect("reloaded").value()?, k.as_bytes());
            Ok(())
        })
        .unwrap();
    }
    kv.close().unwrap();
    // Every table file in the directory is a live table and the other way round (Badger's
    // summary of file ids after close).
    let levels = kv.levels();
    let mut live: Vec<u64> = (0..levels.level_count())
        .flat_map(|l| levels.tables(l).iter().map(|t| t.id()))
        .collect();
    live.sort_unstable();
    let mut on_disk: Vec<u64> = opts
        .storage
        .list_dir(&opts.dir)
        .unwrap()
        .iter()
        .filter_map(|name| name.strip_suffix(".sst")?.parse().ok())
        .collect();
    on_disk.sort_unstable();
    assert_eq!(live, on_disk);
}

#[test]
fn load() {
    // db_test.go TestLoad: 10000 commits survive a close and reopen, with and without
    // encryption and compression, and no table file is left over.
    let key: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
    for (encrypt, compression) in [
        (false, settdb::Compression::None),
        (true, settdb::Compression::None),
        (true, settdb::Compression::Zstd(1)),
        (false, settdb::Compression::Zstd(1)),
    ] {
        let mut opts = test_options(mem()).with_compression(compression);
        if encrypt {
            opts = opts.with_encryption_key(key.clone());
        }
        load_with(opts);
    }
}

#[test]
fn iterate_deleted() {
    // db_test.go TestIterateDeleted: keys deleted through a prefix scan are gone for later
    // iterators, with and without value prefetching (no item, estimated size 0).
    let db = open_test_db();
    txn_set(&db, b"Key1", b"Value1", 0);
    txn_set(&db, b"Key2", b"Value2", 0);
    let txn = db.new_transaction(false).unwrap();
    let mut idx_it = txn
        .iter(IteratorOptions::default().with_prefetch_values(false))
        .unwrap();
    let mut count = 0;
    let mut txn2 = db.new_transaction(true).unwrap();
    let prefix = b"Key";
    idx_it.seek(prefix).unwrap();
    while idx_it.valid_for_prefix(prefix) {
        let key = idx_it.item().key().to_vec();
        count += 1;
        txn2.delete(key).unwrap();
        idx_it.next().unwrap();
    }
    assert_eq!(count, 2);
    txn2.commit().unwrap();

    for prefetch in [true, false] {
        let txn = db.new_transaction(false).unwrap();
        let opts = IteratorOptions::default().with_prefetch_values(prefetch);
        let mut it = txn.iter(opts).unwrap();
        let mut est_size = 0;
        let mut idx_keys = Vec::new();
        it.seek(prefix).unwrap();
        while it.valid() {
            let item = it.item();
            est_size += item.estimated_size();
            if !item.key().starts_with(prefix) {
                break;
            }
            idx_keys.push(item.key().to_vec());
            it.next().unwrap();
        }
        assert!(idx_keys.is_empty(), "prefetch={prefetch}");
        assert_eq!(est_size, 0);
    }
    drop((idx_it, txn));
    db.close().unwrap();
}

#[test]
fn iterate_parallel() {
    // db_test.go TestIterateParallel: a read-write transaction runs several iterators, and
    // three iterators of one transaction run concurrently, read-only and read-write, each
    // seeing every key. Scaled: 100000 → 10000 transactions committed with commit_with.
    let key = |account: u32| {
        let mut k = b"account-".to_vec();
        k.extend_from_slice(&account.to_be_bytes());
        k
    };
    let n = 10_000u32;
    let db = Db::open(Options::new("/db").with_storage(mem())).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut txns = Vec::new();
    for i in 0..n {
        let mut txn = db.new_transaction(true).unwrap();
        txn.set_entry(Entry::new(key(i), "1000")).unwrap();
        txns.push(txn);
    }
    for mut txn in txns {
        let tx = tx.clone();
        txn.commit_with(move |r| tx.send(r).unwrap());
    }
    for _ in 0..n {
        rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
    }

    // Check that a RW txn can run multiple iterators.
    let mut txn = db.new_transaction(true).unwrap();
    let itr = txn.iter(IteratorOptions::default()).unwrap();
    drop(txn.iter(IteratorOptions::default()).unwrap());
    // DEPARTURE: Badger panics when a transaction is discarded with an iterator open; a
    // SettDB iterator holds its own snapshot and does not borrow the transaction, so discard
    // is always allowed.
    txn.discard();
    drop(itr);

    let iterate = |it: TxnIterator| {
        let mut count = 0;
        for item in it {
            let item = item.unwrap();
            assert_eq!(&item.key()[..8], b"account-");
            assert_eq!(item.value().unwrap(), b"1000");
            count += 1;
        }
        assert_eq!(count, n);
        // Badger closes twice here; a Rust iterator is closed once, when dropped.
    };
    for update in [false, true] {
        let txn = db.new_transaction(update).unwrap();
        let its: Vec<_> = (0..3)
            .map(|_| txn.iter(IteratorOptions::default()).unwrap())
            .collect();
        thread::scope(|s| {
            for it in its {
                s.spawn(move || iterate(it));
            }
        });
    }
    db.close().unwrap();
}

#[test]
fn delete_without_sync_write() {
    // db_test.go TestDeleteWithoutSyncWrite: a delete without sync_writes survives a close
    // and reopen.
    let storage = mem();
    let opts = Options::new("/db").with_storage(storage);
    let kv = Db::open(opts.clone()).unwrap();
    let key = b"k1";
    txn_set(
        &kv,
        key,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789FOOBARZOGZOG",
        0,
    );
    txn_delete(&kv, key);
    kv.close().unwrap();
    let kv = Db::open(opts).unwrap();
    kv.view(|txn| {
        assert!(txn.get(key)?.is_none());
        Ok(())
    })
    .unwrap();
    kv.close().unwrap();
}

#[test]
fn pid_file() {
    // db_test.go TestPidFile: a second open of an open database's directory fails.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(Options::new(dir.path())).unwrap();
    // DEPARTURE: Badger's error says "Another process is using this Badger database";
    // SettDB's is the typed Error::Locked naming the directory.
    let r = Db::open(Options::new(dir.path()));
    assert!(matches!(r, Err(Error::Locked { .. })), "{r:?}");
    db.close().unwrap();
}

#[test]
fn invalid_key() {
    // db_test.go TestInvalidKey: keys with the engine's reserved prefix are refused; a key
    // that only starts like it is fine.
    let db = open_test_db();
    db.update(|txn| {
        // DEPARTURE: SettDB's reserved prefix is "!settdb!" (Badger's is "!badger!"), so the
        // Go keys "!badger!head" and "!badger!" are ordinary keys here; the same cases are
        // checked with SettDB's prefix.
        let r = txn.set_entry(Entry::new("!settdb!head", ""));
        assert!(matches!(r, Err(Error::InvalidKey { .. })), "{r:?}");
        let r = txn.set_entry(Entry::new("!settdb!", ""));
        assert!(matches!(r, Err(Error::InvalidKey { .. })), "{r:?}");
        txn.set_entry(Entry::new("!badger!head", ""))?;
        txn.set_entry(Entry::new("!settdb", "SettDB"))?;
        txn.set_entry(Entry::new("!badger", "BadgerDB"))
    })
    .unwrap();
    db.view(|txn| {
        assert_eq!(txn.get("!badger")?.unwrap().value()?, b"BadgerDB");
        assert_eq!(txn.get("!settdb")?.unwrap().value()?, b"SettDB");
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

#[test]
fn iterator_prefetch_size() {
    // db_test.go TestIteratorPrefetchSize: the prefetch size does not change what an
    // iterator yields.
    let db = open_test_db();
    let n = 100;
    for i in 0..n {
        let (k, v) = (format!("{i:09}"), format!("{i:025}"));
        txn_set(&db, k.as_bytes(), v.as_bytes(), (i % 127) as u8);
    }
    // DEPARTURE: SettDB has no prefetch size (no values are read ahead; the option was
    // removed rather than accepted and ignored): the case checks both prefetch settings.
    for prefetch in [false, true] {
        let opts = IteratorOptions::default().with_prefetch_values(prefetch);
        let txn = db.new_transaction(false).unwrap();
        assert_eq!(txn.iter(opts).unwrap().count(), n as usize, "{prefetch}");
    }
    db.close().unwrap();
}

#[test]
fn set_if_absent_async() {
    // db_test.go TestSetIfAbsentAsync: 1000 get-then-set transactions committed with
    // commit_with (callbacks ignored) are all there after close and reopen.
    let storage = mem();
    let kv = Db::open(test_options(storage.clone())).unwrap();
    let n = 1000;
    for i in 0..n {
        let k = format!("{i:09}");
        let mut txn = kv.new_transaction(true).unwrap();
        assert!(txn.get(&k).unwrap().is_none());
        txn.set_entry(Entry::new(&k, "").with_user_meta((i % 127) as u8))
            .unwrap();
        txn.commit_with(|_| {});
    }
    kv.close().unwrap();
    let kv = Db::open(test_options(storage)).unwrap();
    let txn = kv.new_transaction(false).unwrap();
    assert_eq!(txn.iter(IteratorOptions::default()).unwrap().count(), n);
    drop(txn);
    kv.close().unwrap();
}

#[test]
fn get_set_race() {
    // db_test.go TestGetSetRace: a reader gets each key right after a writer committed it
    // (4 KiB values, value log) without error.
    let db = open_test_db();
    let data = random_value(4096, 7);
    let (tx, rx) = mpsc::channel::<String>();
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..100 {
                let key = i.to_string();
                txn_set(&db, key.as_bytes(), &data, 0);
                tx.send(key).unwrap();
            }
            drop(tx);
        });
        s.spawn(|| {
            for key in rx {
                db.view(|txn| {
                    txn.get(&key)?.expect("just written").value()?;
                    Ok(())
                })
                .unwrap();
            }
        });
    });
    db.close().unwrap();
}

#[test]
fn discard_versions_below() {
    // db_test.go TestDiscardVersionsBelow: an all-versions iterator stops at a version
    // written with_discard: 4 versions before it, only the marked one after.
    let db = open_test_db();
    for i in 0..4 {
        db.update(|txn| txn.set_entry(Entry::new("answer", i.to_string())))
            .unwrap();
    }
    let opts = IteratorOptions::default()
        .with_all_versions(true)
        .with_prefetch_values(false);
    let count_until_discard = || {
        db.view(|txn| {
            let mut count = 0;
            for item in txn.iter(opts.clone())? {
                let item = item?;
                count += 1;
                assert_eq!(item.key(), b"answer");
                if item.discard_earlier_versions() {
                    break;
                }
            }
            Ok(count)
        })
        .unwrap()
    };
    assert_eq!(count_until_discard(), 4);
    db.update(|txn| txn.set_entry(Entry::new("answer", "5").with_discard()))
        .unwrap();
    assert_eq!(count_until_discard(), 1);
    db.close().unwrap();
}

#[test]
fn expiry() {
    // db_test.go TestExpiry: a key written with a 1 s TTL is gone 2 s later, from get and
    // from iterators; the other key stays.
    let db = open_test_db();
    db.update(|txn| txn.set_entry(Entry::new("answer1", "42")))
        .unwrap();
    db.update(|txn| txn.set_entry(Entry::new("answer2", "43").with_ttl(Duration::from_secs(1))))
        .unwrap();
    thread::sleep(Duration::from_secs(2));
    db.view(|txn| {
        assert!(txn.get("answer1")?.is_some());
        assert!(txn.get("answer2")?.is_none());
        Ok(())
    })
    .unwrap();
    let opts = IteratorOptions::default().with_prefetch_values(false);
    db.view(|txn| {
        assert_eq!(keys(txn.iter(opts)?), [b"answer1".to_vec()]);
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn expiry_improper_db_close_with(key: Vec<u8>) {
    let sim = settdb::io::SimStorage::new();
    let opts = |s: settdb::io::SimStorage| {
        test_options(Arc::new(s))
            .with_compact_l0_on_close(false)
            .with_encryption_key(key.clone())
    };
    let db0 = Db::open(opts(sim.clone())).unwrap();
    let dur = Duration::from_secs(3600);
    let expiry_time = now_secs() + dur.as_secs();
    db0.update(|txn| txn.set_entry(Entry::new("test_key", "test_value").with_ttl(dur)))
        .unwrap();
    // A process crash: everything written reached the OS, nothing was closed.
    let crashed = sim.crash(settdb::io::CrashMode::Everything, 1);
    drop(db0);
    let db1 = Db::open(opts(crashed)).unwrap();
    db1.view(|txn| {
        let item = txn.get("test_key")?.expect("replayed");
        let at = item.expires_at();
        assert!(
            expiry_time <= at && at <= now_secs() + dur.as_secs(),
            "expiry time of entry is invalid: {at}"
        );
        Ok(())
    })
    .unwrap();
    db1.close().unwrap();
}

#[test]
fn expiry_improper_db_close() {
    // db_test.go TestExpiryImproperDBClose: a TTL survives a crash (WAL replay), plain and
    // encrypted. The crash is SimStorage's copy of everything written, never closed.
    expiry_improper_db_close_with(Vec::new());
    expiry_improper_db_close_with((0..32u8).collect());
}

fn large_keys_with(opts: Options) {
    let bytes = |n: usize, tag: u64| random_value(n, tag);
    // Badger's benchmarkData: (key, value, should the write succeed).
    let data: Vec<(Vec<u8>, Vec<u8>, bool)> = vec![
        (bytes(100, 1), Vec::new(), true),
        (bytes(1000, 2), b"foo".to_vec(), true),
        (b"foo".to_vec(), bytes(1000, 3), true),
        (Vec::new(), bytes(1000, 4), false),
        (Vec::new(), bytes(1_000_000, 5), false),
        (bytes(100_000, 6), Vec::new(), false),
        (bytes(1_000_000, 7), Vec::new(), false),
    ];
    let db = Db::open(opts).unwrap();
    // Scaled: 1000 rounds → 100.
    for i in 0..100 {
        let mut tx = db.new_transaction(true).unwrap();
        for (k, v, success) in &data {
            let r = tx.set_entry(Entry::new(k.clone(), v.clone()));
            assert_eq!(
                r.is_ok(),
                *success,
                "round {i}, key of {} bytes: {r:?}",
                k.len()
            );
        }
        tx.commit().unwrap();
    }
    db.close().unwrap();
}

#[test]
fn large_keys() {
    // db_test.go TestLargeKeys: keys up to 1000 bytes and empty values are written; empty
    // keys and keys of 100 KB and 1 MB are refused, the transaction stays usable; disk and
    // in-memory with 1 GiB value-log files.
    large_keys_with(
        Options::new("/db")
            .with_storage(mem())
            .with_value_log_file_size(1 << 30),
    );
    large_keys_with(Options::in_memory().with_value_log_file_size(1 << 30));
}

#[test]
fn create_dirs() {
    // db_test.go TestCreateDirs: open creates a missing database directory.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(Options::new(dir.path().join("badger"))).unwrap();
    db.close().unwrap();
    assert!(dir.path().join("badger").is_dir());
}

#[test]
fn get_set_deadlock() {
    // db_test.go TestGetSetDeadlock: an update that reads a value-log value and then writes
    // two 512 KiB values finishes within 10 s (no deadlock with 1 MiB value-log files).
    let db = Db::open(
        Options::new("/db")
            .with_storage(mem())
            .with_value_log_file_size(1 << 20),
    )
    .unwrap();
    let val = random_value(1 << 19, 1);
    db.update(|txn| txn.set_entry(Entry::new("key1", val.clone())))
        .unwrap();
    let (done_tx, done) = mpsc::channel();
    let db2 = db.clone();
    thread::spawn(move || {
        let r = db2.update(|txn| {
            txn.get("key1")?.expect("written").value()?;
            let val = random_value(1 << 19, 2);
            txn.set_entry(Entry::new("key1", val.clone()))?;
            txn.set_entry(Entry::new("key2", val))
        });
        done_tx.send(r).unwrap();
    });
    let r = done
        .recv_timeout(Duration::from_secs(10))
        .expect("db.update did not finish within 10s, assuming deadlock");
    // Badger ignores the update's result (its SetEntry calls must succeed); the two values
    // fill exactly one value-log file, which a write may.
    r.unwrap();
    db.close().unwrap();
}

#[test]
fn write_deadlock() {
    // db_test.go TestWriteDeadlock: one update iterates (no value prefetch), copies each
    // value-log value and rewrites the same key, without deadlock.
    let db = Db::open(
        Options::new("/db")
            .with_storage(mem())
            .with_value_log_file_size(10 << 20),
    )
    .unwrap();
    // DEPARTURE: Badger writes 1500 values of 10000 bytes (15 MB) in one transaction over
    // 10 MiB value-log files, letting one write overflow a file; SettDB refuses such a write
    // up front with ValueLogWriteTooBig (tests/transactions.rs) — checked here — so the
    // scenario below uses 600 keys (6 MB) per transaction.
    let r = db.update(|txn| {
        for i in 0..1500 {
            txn.set_entry(Entry::new(i.to_string(), random_value(10_000, i)))?;
        }
        Ok(())
    });
    assert!(matches!(r, Err(Error::ValueLogWriteTooBig { .. })), "{r:?}");
    let n = 600;
    db.update(|txn| {
        for i in 0..n {
            txn.set_entry(Entry::new(i.to_string(), random_value(10_000, i)))?;
        }
        Ok(())
    })
    .unwrap();
    let mut count = 0;
    db.update(|txn| {
        let opts = IteratorOptions::default().with_prefetch_values(false);
        let mut it = txn.iter(opts)?;
        it.rewind()?;
        while it.valid() {
            let item = it.item();
            let out = item.value()?;
            assert_eq!(out.len(), 10_000);
            let key = item.key().to_vec();
            txn.set_entry(Entry::new(key, random_value(10_000, n + count)))?;
            count += 1;
            it.next()?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(count, n);
    db.close().unwrap();
}

// TestSequence, TestSequence_Release, TestTestSequence2: ported in tests/sequence.rs, beside
// SettDB's own sequence tests.

#[test]
fn read_only() {
    // db_test.go TestReadOnly: a read-only open fails while a writer has the directory; two
    // read-only opens coexist and keep a writer out; their transactions read, refuse writes,
    // and commit (nothing) without error.
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path())
        .with_base_table_size(64 << 10)
        .with_base_level_size(256 << 10);
    let db = Db::open(opts.clone()).unwrap();
    for i in 0..10_000 {
        let (k, v) = (format!("key{i}"), format!("value{i}"));
        txn_set(&db, k.as_bytes(), v.as_bytes(), 0);
    }
    // DEPARTURE (for each refused open below): Badger's message is "Another process is using
    // this Badger database"; SettDB returns the typed Error::Locked.
    let r = Db::open(opts.clone().with_read_only(true));
    assert!(matches!(r, Err(Error::Locked { .. })), "{r:?}");
    db.close().unwrap();

    let kv1 = Db::open(opts.clone().with_read_only(true)).unwrap();
    let kv2 = Db::open(opts.clone().with_read_only(true)).unwrap();
    let r = Db::open(opts.clone());
    assert!(matches!(r, Err(Error::Locked { .. })), "{r:?}");

    let mut txn1 = kv1.new_transaction(true).unwrap();
    assert_eq!(value_of(&mut txn1, "key1").unwrap(), b"value1");
    txn1.commit().unwrap();
    let mut txn2 = kv2.new_transaction(true).unwrap();
    assert_eq!(value_of(&mut txn2, "key2000").unwrap(), b"value2000");
    txn2.commit().unwrap();

    let mut txn = kv1.new_transaction(true).unwrap();
    let r = txn.set_entry(Entry::new("key", "value"));
    assert!(matches!(r, Err(Error::ReadOnlyTxn)), "{r:?}");
    txn.commit().unwrap();
    kv1.close().unwrap();
    kv2.close().unwrap();
}

#[test]
fn lsm_only() {
    // db_test.go TestLSMOnly: lsm_only raises the value threshold; a threshold over the limit
    // (1 MiB, or 15% of the memtable) is refused; an LSM-only database takes writes, reopens,
    // and value-log GC runs on it without error.
    let storage = mem();
    let opts = Options::lsm_only("/db").with_storage(storage.clone());
    let dopts = Options::new("/db").with_storage(storage);
    assert_ne!(dopts.value_threshold, opts.value_threshold);

    let r = Db::open(dopts.clone().with_value_threshold(1 << 21));
    assert!(
        matches!(&r, Err(Error::InvalidOptions(m)) if m.contains("value_threshold")),
        "{r:?}"
    );
    // DEPARTURE: Badger has two checks with two messages ("Invalid ValueThreshold" and
    // "Valuethreshold greater than max batch size"); SettDB has one, whose limit is the
    // smaller of 1 MiB and the batch size, naming value_threshold both times. Badger derives
    // the batch size from MaxTableSize; SettDB from mem_table_size.
    let r = Db::open(
        dopts
            .with_value_threshold(opts.value_threshold)
            .with_mem_table_size(opts.value_threshold),
    );
    assert!(
        matches!(&r, Err(Error::InvalidOptions(m)) if m.contains("value_threshold")),
        "{r:?}"
    );

    let opts = opts.with_value_log_max_entries(100);
    let db = Db::open(opts.clone()).unwrap();
    let value = random_value(128, 1);
    for i in 0..500 {
        txn_set(&db, format!("key{i}").as_bytes(), &value, 0);
    }
    db.close().unwrap();
    let db = Db::open(opts).unwrap();
    // DEPARTURE (in the outcome only): Badger v2's value log is also its write-ahead log, so
    // its GC finds something to rewrite; SettDB's value log holds only values at or over the
    // threshold, so GC succeeds with nothing to rewrite.
    let outcome = db.run_value_log_gc(0.2).unwrap();
    assert!(
        matches!(outcome, settdb::GcOutcome::NothingToRewrite),
        "{outcome:?}"
    );
    db.close().unwrap();
}

#[test]
fn min_read_ts() {
    // db_test.go TestMinReadTs, in part: after 10 commits a new transaction reads at 10, and
    // 10 more commits make the newest version 20 while older read transactions are open.
    // Badger's other checks read its private read watermark (orc.readMark.DoneUntil), which
    // SettDB keeps crate-private: not ported.
    let db = open_test_db();
    for _ in 0..10 {
        db.update(|txn| txn.set_entry(Entry::new("x", "y")))
            .unwrap();
    }
    let read_txn0 = db.new_transaction(false).unwrap();
    assert_eq!(read_txn0.read_ts(), 10);
    let read_txn = db.new_transaction(false).unwrap();
    for _ in 0..10 {
        db.update(|txn| txn.set_entry(Entry::new("x", "y")))
            .unwrap();
    }
    assert_eq!(db.max_version(), 20);
    drop((read_txn0, read_txn));
    for _ in 0..10 {
        db.view(|_| Ok(())).unwrap();
    }
    assert_eq!(db.new_transaction(false).unwrap().read_ts(), 20);
    db.close().unwrap();
}

#[test]
fn goroutine_leak() {
    // db_test.go TestGoroutineLeak: twelve rounds (on disk and in memory) of a subscriber
    // on "key" that sees the update "value", then is cancelled. DEPARTURE: Badger counts
    // goroutines before and after; the test harness runs other tests' threads in this process,
    // so the port proves the same thing per thread instead: the subscriber's thread ends on
    // cancel, and a subscriber left running ends when the database closes.
    for in_memory in [false, true] {
        for round in 0..12 {
            let db = if in_memory {
                open_in_memory()
            } else {
                open_test_db()
            };
            let (tx, rx) = mpsc::channel();
            let sub = db.subscribe([settdb::Match::prefix("key")]).unwrap();
            let thread = sub
                .spawn(move |batch| -> settdb::Result<()> {
                    assert_eq!(batch[0].value.as_ref(), b"value");
                    let _ = tx.send(());
                    Ok(())
                })
                .unwrap();
            db.update(|txn| txn.set_entry(Entry::new("key", "value")))
                .unwrap();
            rx.recv_timeout(Duration::from_secs(10))
                .expect("update delivered");
            if round % 2 == 0 {
                thread.cancel_and_join().unwrap();
                db.close().unwrap();
            } else {
                db.close().unwrap();
                thread.join().unwrap();
            }
        }
    }
}

#[test]
fn sync_for_race() {
    // db_test.go TestSyncForRace: Db::sync called every 100 µs from another thread while
    // transactions write 128 KiB values (value log) causes no error or race. Scaled: 10000
    // values → 300.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(Options::new(dir.path()).with_sync_writes(false)).unwrap();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let syncer = s.spawn(|| {
            let mut syncs = 0u64;
            while !stop.load(Ordering::SeqCst) {
                db.sync().unwrap();
                syncs += 1;
                thread::sleep(Duration::from_micros(100));
            }
            syncs
        });
        let v = random_value(128 << 10, 3);
        let mut txn = db.new_transaction(true).unwrap();
        for i in 0..300 {
            txn.set_entry(Entry::new(format!("key{i}"), v.clone()))
                .unwrap();
            if i % 3 == 0 {
                txn.commit().unwrap();
                txn = db.new_transaction(true).unwrap();
            }
        }
        txn.commit().unwrap();
        stop.store(true, Ordering::SeqCst);
        assert!(syncer.join().unwrap() > 0);
    });
    db.close().unwrap();
}

// NOT PORTED: TestNoCrash — it sets Badger v2's private value-log head (db.vhead) to an old
// file and reopens; SettDB has no value-log head (the WAL is separate, as in Badger v4).
// NOT PORTED: TestForceFlushMemtable — it needs v2's LogRotatesToFlush option and reads the
// private !badger!head key after dropping memtables by hand.

fn verify_checksum_with(opts: Options) {
    let db = Db::open(opts).unwrap();
    let value = random_value(32, 9);
    let mut kvs = Vec::new();
    let mut st = 0;
    for i in 0..1000u64 {
        kvs.push(settdb::backup::pb::Kv {
            key: i.to_be_bytes().to_vec().into(),
            value: value.clone().into(),
            stream_id: st,
            version: 1,
            ..Default::default()
        });
        if i % 100 == 0 {
            st += 1;
        }
    }
    let list = settdb::backup::pb::KvList {
        kv: kvs,
        alloc_ref: 0,
    };
    // Badger's StreamWriter Prepare / Write / Flush is SettDB's bulk_load.
    db.bulk_load(|w| w.write(list)).unwrap();
    let report = db.verify_checksum().unwrap();
    assert!(
        report.is_ok(),
        "checksum verification failed: {:?}",
        report.problems
    );
    db.close().unwrap();
}

#[test]
fn verify_checksum() {
    // db_test.go TestVerifyChecksum: a database bulk-loaded from 1000 KVs in 11 streams
    // passes verify_checksum, without and with encryption.
    verify_checksum_with(test_options(mem()));
    verify_checksum_with(test_options(mem()).with_encryption_key((0..32u8).rev().collect()));
}

// TestMain (db_test.go) is Go's test entry point (flag parsing), not a test.

#[test]
fn write_in_memory() {
    // db_test.go TestWriteInemory: 100 commits to an in-memory database are all readable.
    let db = open_in_memory();
    for i in 0..100 {
        txn_set(
            &db,
            format!("key{i}").as_bytes(),
            format!("val{i}").as_bytes(),
            0,
        );
    }
    db.view(|txn| {
        for j in 0..100 {
            let item = txn.get(format!("key{j}"))?.expect("written");
            assert_eq!(item.value()?, format!("val{j}").as_bytes());
        }
        Ok(())
    })
    .unwrap();
    db.close().unwrap();
}

#[test]
fn a_range_that_finds_nothing_records_its_included_bounds_as_read() {
    // Found by writing TestConflict's ItrSeek with Txn::range: a transaction learned through
    // range("foo"..) (or range("foo"..="foo"), or range(..="foo") walked backwards) that "foo"
    // is absent, wrote "foo", and committed over a concurrent commit of "foo": a lost update.
    // Through get("foo") or an iterator's seek("foo") the same history is a conflict.
    type Scan = fn(&Txn) -> usize;
    let scans: [(&str, Scan); 3] = [
        ("range(foo..)", |t| t.range("foo"..).unwrap().count()),
        ("range(foo..=foo)", |t| {
            t.range("foo"..="foo").unwrap().count()
        }),
        ("range(..=foo).rev()", |t| {
            t.range(..="foo").unwrap().rev().count()
        }),
    ];
    for (name, scan) in scans {
        let db = open_test_db();
        let mut t1 = db.new_transaction(true).unwrap();
        assert_eq!(scan(&t1), 0, "{name}");
        db.update(|t| t.set("foo", "other")).unwrap();
        t1.set("foo", "AA").unwrap();
        let r = t1.commit();
        assert!(matches!(r, Err(Error::Conflict)), "{name}: {r:?}");
        db.close().unwrap();
    }
}

//! Transactions: snapshot reads, read-your-writes, serializable conflict detection (write skew
//! refused), misuse errors, asynchronous commits, TTL, managed mode and write batches.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::small_options;
use settdb::io::SimStorage;
use settdb::{Db, Entry, Error, IteratorOptions};

fn db() -> Db {
    Db::open(small_options(Path::new("/db"), Arc::new(SimStorage::new()))).unwrap()
}

fn get(txn: &mut settdb::Txn, key: &[u8]) -> Option<Vec<u8>> {
    match txn.get(key) {
        Ok(item) => item.map(|i| i.value().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

fn keys(txn: &mut settdb::Txn, opts: IteratorOptions) -> Vec<Vec<u8>> {
    txn.iter(opts)
        .unwrap()
        .map(|i| i.unwrap().key().to_vec())
        .collect()
}

#[test]
fn reads_see_own_writes_and_a_fixed_snapshot() {
    // Proves read-your-writes in get and iterators, and that a transaction keeps its snapshot
    // while others commit.
    let db = db();
    db.set("a", "1").unwrap();
    let mut t = db.new_transaction(true).unwrap();
    t.set("b", "2").unwrap();
    t.delete("a").unwrap();
    assert_eq!(get(&mut t, b"b"), Some(b"2".to_vec()));
    assert_eq!(get(&mut t, b"a"), None);
    db.set("c", "3").unwrap();
    assert_eq!(
        get(&mut t, b"c"),
        None,
        "a later commit is invisible to the snapshot"
    );
    assert_eq!(
        keys(&mut t, IteratorOptions::default()),
        vec![b"b".to_vec()]
    );
    assert_eq!(
        keys(&mut t, IteratorOptions::default().with_reverse(true)),
        vec![b"b".to_vec()]
    );
    // It read `c`, which a commit after its snapshot wrote (a blind `Db::set` counts like any
    // commit): serializable isolation refuses it, and none of its writes land.
    assert!(matches!(t.commit(), Err(Error::Conflict)));
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(b"b").unwrap(), None);
}

#[test]
fn a_write_skew_through_seek_is_refused() {
    // Proves a seek records the sought key as read (Badger's Seek does): each transaction
    // seeks to a key the other then writes; the second commit is a conflict. Without it both
    // commit and the invariant "at most one of a, b" breaks.
    let db = db();
    let mut t1 = db.new_transaction(true).unwrap();
    let mut t2 = db.new_transaction(true).unwrap();
    for (txn, key) in [(&mut t1, b"a"), (&mut t2, b"b")] {
        let mut it = txn.iter(IteratorOptions::default()).unwrap();
        it.seek(key).unwrap();
        assert!(!it.valid(), "the key is absent and nothing follows it");
    }
    t1.set("b", "1").unwrap();
    t2.set("a", "1").unwrap();
    t1.commit().unwrap();
    assert!(matches!(t2.commit(), Err(Error::Conflict)));
}

#[test]
fn write_skew_is_refused() {
    // Proves serializability: two transactions each read x and y and write the other key
    // (the classic write-skew anomaly); the second to commit gets Error::Conflict.
    let db = db();
    db.set("x", "1").unwrap();
    db.set("y", "1").unwrap();
    let mut t1 = db.new_transaction(true).unwrap();
    let mut t2 = db.new_transaction(true).unwrap();
    for t in [&mut t1, &mut t2] {
        assert!(get(t, b"x").is_some() && get(t, b"y").is_some());
    }
    t1.set("x", "0").unwrap();
    t2.set("y", "0").unwrap();
    t1.commit().unwrap();
    assert!(matches!(t2.commit(), Err(Error::Conflict)));
    assert_eq!(db.get(b"y").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn blind_writes_never_conflict_and_detection_can_be_off() {
    // Proves writes without reads commit whatever else committed, reads through iterators
    // count as reads, and detect_conflicts(false) turns tracking off.
    let db = db();
    db.set("k", "0").unwrap();
    let mut blind = db.new_transaction(true).unwrap();
    let mut reader = db.new_transaction(true).unwrap();
    assert_eq!(
        keys(&mut reader, IteratorOptions::default()),
        vec![b"k".to_vec()]
    );
    db.set("k", "1").unwrap();
    blind.set("k", "2").unwrap();
    blind.commit().unwrap();
    reader.set("other", "x").unwrap();
    assert!(
        matches!(reader.commit(), Err(Error::Conflict)),
        "an iterator read conflicts too"
    );
    let off = Db::open(
        small_options(Path::new("/db2"), Arc::new(SimStorage::new())).with_detect_conflicts(false),
    )
    .unwrap();
    off.set("k", "0").unwrap();
    let mut t = off.new_transaction(true).unwrap();
    let _ = get(&mut t, b"k");
    off.set("k", "1").unwrap();
    t.set("k", "2").unwrap();
    t.commit().unwrap();
}

#[test]
fn misuse_is_a_typed_error() {
    // Proves each misuse returns its error variant instead of panicking.
    let db = db();
    let mut ro = db.new_transaction(false).unwrap();
    assert!(matches!(ro.set("k", "v"), Err(Error::ReadOnlyTxn)));
    let mut t = db.new_transaction(true).unwrap();
    assert!(matches!(t.set("", "v"), Err(Error::EmptyKey)));
    assert!(matches!(
        t.set("!settdb!k", "v"),
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        t.set(vec![1u8; 65_001], "v"),
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        t.set("k", vec![0u8; 1 << 20]),
        Err(Error::ValueTooLarge { .. })
    ));
    let mut too_big = Ok(());
    for i in 0..1_000_000u32 {
        too_big = t.set(format!("key{i}"), vec![0u8; 100]);
        if too_big.is_err() {
            break;
        }
    }
    assert!(
        matches!(too_big, Err(Error::TxnTooBig { .. })),
        "{too_big:?}"
    );
    t.commit().unwrap();
    assert!(matches!(t.set("k", "v"), Err(Error::DiscardedTxn)));
    assert!(matches!(t.get(b"k"), Err(Error::DiscardedTxn)));
    assert!(matches!(t.commit(), Err(Error::DiscardedTxn)));
    assert!(matches!(
        db.new_transaction_at(5, true),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        db.set_discard_ts(5),
        Err(Error::InvalidRequest(_))
    ));
}

#[test]
fn commit_with_calls_back_once_with_the_outcome() {
    // Proves the asynchronous commit runs its callback exactly once, with Ok for a good commit
    // and Err(Conflict) for a conflicting one.
    let db = db();
    db.set("k", "0").unwrap();
    let (tx, rx) = mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut stale = db.new_transaction(true).unwrap();
    let _ = get(&mut stale, b"k");
    let mut t = db.new_transaction(true).unwrap();
    t.set("k", "1").unwrap();
    let (tx1, c1) = (tx.clone(), calls.clone());
    t.commit_with(move |r| {
        c1.fetch_add(1, Ordering::SeqCst);
        tx1.send(r.is_ok()).unwrap();
    });
    assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    stale.set("k", "2").unwrap();
    let c2 = calls.clone();
    stale.commit_with(move |r| {
        c2.fetch_add(1, Ordering::SeqCst);
        tx.send(matches!(r, Err(Error::Conflict))).unwrap();
    });
    assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn expired_entries_are_invisible() {
    // Proves TTL: an entry past its expiry is gone from get and iterators.
    let db = db();
    db.update(|t| {
        t.set_entry(Entry::new("old", "v").with_expires_at(1))?;
        t.set_entry(
            Entry::new("new", "v")
                .with_ttl(Duration::from_secs(3600))
                .with_user_meta(9),
        )
    })
    .unwrap();
    db.view(|t| {
        assert_eq!(get(t, b"old"), None);
        assert_eq!(t.get(b"new")?.unwrap().user_meta(), 9);
        assert_eq!(keys(t, IteratorOptions::default()), vec![b"new".to_vec()]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn managed_mode_uses_caller_timestamps() {
    // Proves managed mode: commit_at versions, reads at read_ts, write batches at a ts, and
    // that normal-mode calls are refused.
    let db =
        Db::open_managed(small_options(Path::new("/db"), Arc::new(SimStorage::new()))).unwrap();
    assert!(matches!(
        db.new_transaction(true),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        db.new_write_batch(),
        Err(Error::InvalidRequest(_))
    ));
    assert!(db.set("k", "v").is_err());
    let mut t = db.new_transaction_at(0, true).unwrap();
    t.set("k", "v10").unwrap();
    t.commit_at(10).unwrap();
    let mut t = db.new_transaction_at(10, true).unwrap();
    t.set("k", "v20").unwrap();
    assert!(
        t.commit().is_err(),
        "commit without a timestamp in managed mode"
    );
    let mut t = db.new_transaction_at(10, true).unwrap();
    t.set("k", "v20").unwrap();
    t.commit_at(20).unwrap();
    let mut wb = db.new_write_batch_at(30).unwrap();
    wb.set("w", "b").unwrap();
    wb.flush().unwrap();
    for (ts, want) in [
        (9, None),
        (10, Some("v10")),
        (19, Some("v10")),
        (20, Some("v20")),
    ] {
        let mut r = db.new_transaction_at(ts, false).unwrap();
        assert_eq!(
            get(&mut r, b"k"),
            want.map(|s| s.as_bytes().to_vec()),
            "at {ts}"
        );
    }
    let mut r = db.new_transaction_at(30, false).unwrap();
    assert_eq!(r.get(b"w").unwrap().unwrap().version(), 30);
    db.set_discard_ts(25).unwrap();
}

#[test]
fn a_newer_version_in_an_older_source_wins_over_an_older_one_found_first() {
    // Proves a point read takes the highest version from every source, not the first hit:
    // in managed mode k@20 is flushed to a table, then k@10 (written later, out of order) sits
    // in the memtable, which the read searches first; reads at 25 and 20 see v20, at 15 v10,
    // and the same holds once k@10 is flushed into L0 above the table holding k@20 (no
    // compaction, so the two tables stay apart and the newer table is searched first).
    let opts = small_options(Path::new("/db"), Arc::new(SimStorage::new())).with_num_compactors(0);
    let db = Db::open_managed(opts).unwrap();
    let mut t = db.new_transaction_at(0, true).unwrap();
    t.set("k", "v20").unwrap();
    t.commit_at(20).unwrap();
    db.flush().unwrap();
    let mut t = db.new_transaction_at(0, true).unwrap();
    t.set("k", "v10").unwrap();
    t.commit_at(10).unwrap();
    let check = |db: &Db| {
        for (ts, want) in [(25, "v20"), (20, "v20"), (15, "v10"), (10, "v10")] {
            let mut r = db.new_transaction_at(ts, false).unwrap();
            assert_eq!(get(&mut r, b"k"), Some(want.as_bytes().to_vec()), "at {ts}");
            assert_eq!(db.get_at(b"k", ts).unwrap(), Some(want.as_bytes().to_vec()));
        }
        let mut r = db.new_transaction_at(9, false).unwrap();
        assert_eq!(get(&mut r, b"k"), None);
    };
    check(&db);
    db.flush().unwrap();
    check(&db);
}

#[test]
fn write_batch_splits_past_the_limits_and_flushes_everything() {
    // Proves WriteBatch commits more than one transaction can hold, all visible after flush,
    // and cancel drops what was not committed.
    let db = db();
    let mut wb = db.new_write_batch().unwrap();
    let n = 40_000u32; // ~5 MiB of entries: several sub-commits with 1 MiB memtables
    for i in 0..n {
        wb.set(format!("key{i:06}"), vec![(i % 200) as u8; 100])
            .unwrap();
    }
    wb.flush().unwrap();
    for i in (0..n).step_by(997) {
        assert_eq!(
            db.get(format!("key{i:06}").as_bytes()).unwrap(),
            Some(vec![(i % 200) as u8; 100])
        );
    }
    let mut wb = db.new_write_batch().unwrap();
    wb.set("cancelled", "x").unwrap();
    wb.cancel();
    assert_eq!(db.get(b"cancelled").unwrap(), None);
}

#[test]
fn key_iter_walks_every_version_of_one_key_only() {
    // Proves key_iter yields all versions of exactly one key (not keys it is a prefix of),
    // newest first, oldest first in reverse, and refuses a prefix option.
    let db = db();
    // An open reader holds the discard timestamp down, so the flush keeps every version.
    let hold = db.new_transaction(false).unwrap();
    for v in ["1", "2", "3"] {
        db.set("k", v).unwrap();
        db.set("k2", v).unwrap();
    }
    db.flush().unwrap();
    db.set("k", "4").unwrap();
    db.view(|t| {
        let forward: Vec<Vec<u8>> = t
            .key_iter(b"k", IteratorOptions::default())?
            .map(|i| i.unwrap().value().unwrap())
            .collect();
        assert_eq!(
            forward,
            vec![b"4".to_vec(), b"3".to_vec(), b"2".to_vec(), b"1".to_vec()]
        );
        let reverse: Vec<Vec<u8>> = t
            .key_iter(b"k", IteratorOptions::default().with_reverse(true))?
            .map(|i| i.unwrap().value().unwrap())
            .collect();
        assert_eq!(
            reverse,
            vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]
        );
        assert!(matches!(
            t.key_iter(b"k", IteratorOptions::default().with_prefix(b"x".to_vec())),
            Err(Error::InvalidRequest(_))
        ));
        Ok(())
    })
    .unwrap();
    drop(hold);
}

#[test]
fn closing_from_a_commit_callback_does_not_deadlock() {
    // Proves a callback may close the database: the callback thread does not join itself.
    let db = db();
    let (tx, rx) = mpsc::channel();
    let mut t = db.new_transaction(true).unwrap();
    t.set("k", "v").unwrap();
    let closer = db.clone();
    t.commit_with(move |r| {
        r.unwrap();
        tx.send(closer.close().is_ok()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "close from the callback failed or hung"
    );
}

#[test]
fn a_write_whose_values_overflow_a_value_log_file_is_refused_up_front() {
    // Proves a write's value-log values must fit one value-log file: refused with a typed
    // error before anything is written (the writer would otherwise fail and poison the
    // database), while each value alone is fine and the database stays usable.
    let db = db(); // value-log files of 1 MiB
    let v = vec![7u8; 600 << 10];
    let e = db
        .update(|t| {
            t.set("a", v.clone())?;
            t.set("b", v.clone())
        })
        .unwrap_err();
    assert!(matches!(e, Error::ValueLogWriteTooBig { .. }), "{e}");
    let e = db.write(vec![settdb::Entry::new("a", v.clone()); 2]);
    assert!(matches!(e, Err(Error::ValueLogWriteTooBig { .. })));
    db.update(|t| t.set("a", v.clone())).unwrap();
    db.update(|t| t.set("b", v.clone())).unwrap();
    assert_eq!(db.get(b"b").unwrap(), Some(v));
}

//! `Db::subscribe`: every committed matching update is delivered exactly once, in commit
//! order, with its value (value-log values included), version, expiry, user meta and delete
//! flag; nothing else is (non-matching keys, failed commits, GC rewrites); cancel, drop and
//! close end a subscription; a subscriber that does not keep up is ended with
//! `SubscriberLagged` while writes go on.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{seed, small_options, value_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::{Fault, FaultKind, FaultOp, FsStorage, SimStorage, Storage};
use settdb::{Db, Entry, Error, GcOutcome, Match, Options, SubscribeOptions, Subscription, Update};

fn on_disk(dir: &std::path::Path) -> Options {
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
    small_options(dir, storage).with_auto_value_log_gc(false)
}

/// Every batch until the subscription ends; panics on an error item.
fn drain(sub: Subscription) -> Vec<Vec<Update>> {
    sub.map(|b| b.expect("subscription item")).collect()
}

// ---- the model test ----

/// Expiry far in the future (unix seconds), so entries with it stay live.
const EXPIRES_AT: u64 = 4_000_000_000;

/// One write an operation makes: a set (with its value, expiry and user meta) or a delete.
#[derive(Clone, Debug)]
struct Op {
    key: String,
    delete: bool,
    value: Vec<u8>,
    expires_at: u64,
    user_meta: u8,
}

impl Op {
    fn update(&self, version: u64) -> Update {
        Update {
            key: Bytes::copy_from_slice(self.key.as_bytes()),
            value: if self.delete {
                Bytes::new()
            } else {
                Bytes::copy_from_slice(&self.value)
            },
            version,
            expires_at: self.expires_at,
            user_meta: self.user_meta,
            is_delete: self.delete,
        }
    }
}

/// What a thread did, in its order: a blind write at a known version, or a transaction
/// (identified by its marker key, which it always writes) that committed or conflicted.
#[derive(Debug)]
enum Done {
    Write {
        version: u64,
        ops: Vec<Op>,
    },
    Txn {
        marker: String,
        ops: Vec<Op>,
        committed: bool,
    },
}

/// The two matches of the model test: `a/...`, and `c/<any byte>/x...`.
fn model_matches() -> Vec<Match> {
    vec![
        Match::prefix("a/"),
        Match::prefix("c/?/x").with_ignore_bytes("2").unwrap(),
    ]
}

fn model_wants(key: &str) -> bool {
    model_matches().iter().any(|m| m.matches(key.as_bytes()))
}

/// `n` distinct random keys, matching and not: `a/<i>`, `b/<i>`, `c/<d>/x<i>`, `c/<d>/y<i>`,
/// and the hot keys `a/hot<i>`, `b/hot<i>` every transaction may read and write.
fn random_keys(rng: &mut StdRng, n: usize) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    while keys.len() < n {
        let i = rng.random_range(0..40);
        let k = match rng.random_range(0..6) {
            0 => format!("a/{i}"),
            1 => format!("b/{i}"),
            2 => format!("c/{}/x{i}", i % 10),
            3 => format!("c/{}/y{i}", i % 10),
            4 => format!("a/hot{}", i % 3),
            _ => format!("b/hot{}", i % 3),
        };
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

fn random_op(rng: &mut StdRng, key: String, tag: u64) -> Op {
    let delete = rng.random_bool(0.15);
    let len = match rng.random_range(0..10) {
        0..=4 => 10,
        5..=7 => 300, // over small_options' value_threshold (64): the value log
        8 => 0,
        _ => 5000,
    };
    Op {
        value: if delete {
            Vec::new()
        } else {
            value_for(key.as_bytes(), tag, len)
        },
        // Txn::delete writes a plain tombstone: no expiry, no user meta.
        expires_at: if !delete && rng.random_bool(0.2) {
            EXPIRES_AT
        } else {
            0
        },
        user_meta: if !delete && rng.random_bool(0.3) {
            rng.random_range(1..=255)
        } else {
            0
        },
        delete,
        key,
    }
}

fn entry_of(op: &Op) -> Entry {
    Entry::new(op.key.clone(), op.value.clone())
        .with_expires_at(op.expires_at)
        .with_user_meta(op.user_meta)
}

/// A blind write of 1-4 random entries; its version.
fn blind_write(db: &Db, rng: &mut StdRng, tag: u64) -> Done {
    let n = rng.random_range(1..=4);
    let ops: Vec<Op> = random_keys(rng, n)
        .into_iter()
        .map(|k| random_op(rng, k, tag))
        .collect();
    let entries = ops
        .iter()
        .map(|op| {
            let e = if op.delete {
                Entry::delete(&op.key)
            } else {
                Entry::new(&op.key, &op.value)
            };
            e.with_user_meta(op.user_meta)
                .with_expires_at(op.expires_at)
        })
        .collect::<Vec<_>>();
    let version = db.write(entries).unwrap();
    Done::Write { version, ops }
}

/// A transaction that reads a hot key (so concurrent ones conflict), writes 1-4 random
/// entries and its marker; whether it committed.
fn transaction(db: &Db, rng: &mut StdRng, thread: usize, seq: u64) -> Done {
    let marker = format!("a/marker/{thread}/{seq}");
    let mut txn = db.new_transaction(true).unwrap();
    let hot = format!("a/hot{}", rng.random_range(0..3));
    if let Err(e) = txn.get(hot.as_bytes()) {
        panic!("{e}");
    }
    let n = rng.random_range(1..=4);
    let mut ops: Vec<Op> = random_keys(rng, n)
        .into_iter()
        .map(|k| random_op(rng, k, seq))
        .collect();
    ops.push(Op {
        key: marker.clone(),
        delete: false,
        value: b"m".to_vec(),
        expires_at: 0,
        user_meta: 0,
    });
    for op in &ops {
        if op.delete {
            txn.delete(op.key.clone()).unwrap();
        } else {
            txn.set_entry(entry_of(op)).unwrap();
        }
    }
    let committed = match txn.commit() {
        Ok(()) => true,
        Err(Error::Conflict) => false,
        Err(e) => panic!("{e}"),
    };
    Done::Txn {
        marker,
        ops,
        committed,
    }
}

/// What a run delivered, by version, after checking the stream's order: versions never go
/// down, a batch starts above where the one before ended, and a version is one run.
fn delivered_by_version(batches: &[Vec<Update>]) -> BTreeMap<u64, Vec<Update>> {
    let mut by_version: BTreeMap<u64, Vec<Update>> = BTreeMap::new();
    let mut last = 0;
    for batch in batches {
        assert!(!batch.is_empty(), "an empty batch was delivered");
        assert!(
            batch[0].version > last,
            "batch starts at {} after {last}",
            batch[0].version
        );
        for u in batch {
            assert!(u.version >= last, "version {} after {last}", u.version);
            assert!(model_wants(std::str::from_utf8(&u.key).unwrap()), "{u:?}");
            last = u.version;
            by_version.entry(u.version).or_default().push(u.clone());
        }
    }
    by_version
}

#[test]
fn concurrent_random_writes_are_delivered_once_in_commit_order() {
    // Proves the guarantees against a model: 4 threads of blind writes and conflicting
    // transactions (sets, deletes, expiry, user meta, value-log values) over matching and
    // non-matching keys; the subscriber gets, per committed write, exactly its matching
    // entries at its version (a transaction's sorted by key), in commit order, and nothing
    // of a transaction that conflicted.
    let seed = seed(0x5ab5_c41b);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(on_disk(dir.path())).unwrap();
    let sub = db.subscribe(model_matches()).unwrap();
    let consumer = std::thread::spawn(move || drain(sub));
    let histories: Vec<Vec<Done>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let db = &db;
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(seed ^ ((t as u64 + 1) * 0x9e37));
                    (0..250u64)
                        .map(|seq| {
                            if rng.random_bool(0.5) {
                                blind_write(db, &mut rng, seq)
                            } else {
                                transaction(db, &mut rng, t, seq)
                            }
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    db.close().unwrap();
    let delivered = delivered_by_version(&consumer.join().unwrap());
    let marker_version: HashMap<&[u8], u64> = delivered
        .iter()
        .flat_map(|(v, us)| us.iter().map(move |u| (&u.key[..], *v)))
        .filter(|(k, _)| k.starts_with(b"a/marker/"))
        .collect();
    let (mut expected_versions, mut conflicts) = (0, 0);
    for history in &histories {
        let mut last = 0;
        for done in history {
            let (version, mut want) = match done {
                Done::Write { version, ops } => {
                    let want: Vec<Update> = ops
                        .iter()
                        .filter(|op| model_wants(&op.key))
                        .map(|op| op.update(*version))
                        .collect();
                    (*version, want)
                }
                Done::Txn {
                    marker,
                    committed: false,
                    ..
                } => {
                    conflicts += 1;
                    let got = marker_version.get(marker.as_bytes());
                    assert!(got.is_none(), "conflicted {marker} delivered (seed {seed})");
                    continue;
                }
                Done::Txn { marker, ops, .. } => {
                    let version = marker_version[marker.as_bytes()];
                    let mut want: Vec<Update> = ops
                        .iter()
                        .filter(|op| model_wants(&op.key))
                        .map(|op| op.update(version))
                        .collect();
                    want.sort_by(|a, b| a.key.cmp(&b.key));
                    (version, want)
                }
            };
            assert!(version > last, "a thread's versions go down (seed {seed})");
            last = version;
            let got = delivered.get(&version).cloned().unwrap_or_default();
            want.sort_by(|a, b| a.key.cmp(&b.key));
            let mut got_sorted = got.clone();
            got_sorted.sort_by(|a, b| a.key.cmp(&b.key));
            assert_eq!(got_sorted, want, "version {version} (seed {seed})");
            expected_versions += usize::from(!want.is_empty());
        }
    }
    assert_eq!(
        delivered.len(),
        expected_versions,
        "extra versions (seed {seed})"
    );
    eprintln!(
        "{} versions delivered, {conflicts} transactions conflicted",
        delivered.len()
    );
}

// ---- matching ----

#[test]
fn ignore_bytes_match_any_byte_at_their_positions() {
    // Proves Badger's ignore-bytes through the database: `user:??:name` with positions 5-6
    // ignored takes every two-byte id, not other fields, shorter keys or other prefixes; and
    // a key matching two matches of one subscription is delivered once.
    let db = Db::open(Options::in_memory()).unwrap();
    let m = Match::prefix("user:??:name")
        .with_ignore_bytes("5-6")
        .unwrap();
    let sub = db.subscribe([m, Match::prefix("user:12")]).unwrap();
    for k in [
        "user:12:name",
        "user:ab:name=x",
        "user:12:mail",
        "user:1:name",
        "usex:12:name",
    ] {
        db.set(k, "v").unwrap();
    }
    db.close().unwrap();
    let keys: Vec<Bytes> = drain(sub).concat().into_iter().map(|u| u.key).collect();
    assert_eq!(keys, ["user:12:name", "user:ab:name=x", "user:12:mail"]);
    assert!(matches!(
        Match::prefix("x").with_ignore_bytes("1-x"),
        Err(Error::InvalidIgnoreBytes { .. })
    ));
}

// ---- ends: cancel, drop, close ----

#[test]
fn cancel_from_another_thread_wakes_a_blocked_subscriber() {
    // Proves a cancel handle ends a subscription whose thread waits in `next`: the thread
    // returns `None`, and writes after the cancel go on without it.
    let db = Db::open(Options::in_memory()).unwrap();
    let sub = db.subscribe([Match::prefix("k")]).unwrap();
    let cancel = sub.cancel_handle();
    db.set("k1", "v").unwrap();
    let waiter = std::thread::spawn(move || drain(sub));
    std::thread::sleep(Duration::from_millis(50));
    cancel.cancel();
    cancel.cancel();
    let got = waiter.join().unwrap();
    assert!(got.len() <= 1, "{got:?}");
    for i in 0..10 {
        db.set(format!("k{i}"), "v").unwrap();
    }
    db.close().unwrap();
}

#[test]
fn a_dropped_subscription_takes_nothing_and_others_go_on() {
    // Proves dropping a subscription unregisters it: writes go on, a second subscription
    // still gets every update, and a subscriber never read does not lag anyone.
    let db = Db::open(Options::in_memory()).unwrap();
    let limits = SubscribeOptions::default().with_max_buffered_batches(2);
    let dropped = db.subscribe_with([Match::prefix("")], limits).unwrap();
    let kept = db.subscribe([Match::prefix("")]).unwrap();
    db.set("a", "1").unwrap();
    drop(dropped);
    for i in 0..20 {
        db.set(format!("b{i}"), "2").unwrap();
    }
    db.close().unwrap();
    assert_eq!(drain(kept).concat().len(), 21);
}

#[test]
fn close_delivers_everything_applied_then_ends_cleanly() {
    // Proves the close path: a subscriber that has not read yet still gets every update
    // applied before close, then `None` (no error); subscribing after close is `Closed`.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(on_disk(dir.path())).unwrap();
    let mut sub = db.subscribe([Match::prefix("k")]).unwrap();
    for i in 0..50u64 {
        db.set(format!("k{i:02}"), value_for(b"k", i, 200)).unwrap();
    }
    db.close().unwrap();
    let updates: Vec<Update> = sub
        .by_ref()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(updates.len(), 50);
    for (i, u) in updates.iter().enumerate() {
        assert_eq!(&u.value[..], &value_for(b"k", i as u64, 200)[..]);
    }
    assert!(sub.next().is_none());
    assert!(matches!(
        db.subscribe([Match::prefix("k")]),
        Err(Error::Closed)
    ));
}

#[test]
fn recv_timeout_returns_an_empty_batch_when_nothing_comes() {
    // Proves the timed receive: an empty batch when nothing arrives in time, the batch of a
    // commit that returned without waiting (published before completion), `None` after close.
    let db = Db::open(Options::in_memory()).unwrap();
    let mut sub = db.subscribe([Match::prefix("k")]).unwrap();
    let idle = sub
        .recv_timeout(Duration::from_millis(20))
        .unwrap()
        .unwrap();
    assert!(idle.is_empty());
    db.set("k", "v").unwrap();
    // In the buffer by the time the commit returned: no wait needed.
    let got = sub.recv_timeout(Duration::ZERO).unwrap().unwrap();
    assert_eq!(got.len(), 1);
    db.close().unwrap();
    assert!(sub.recv_timeout(Duration::from_secs(10)).is_none());
}

// ---- the lag policy ----

#[test]
fn a_subscriber_that_never_reads_is_ended_and_writes_finish() {
    // Proves the lag policy: with room for 10 batches, 100 commits all finish while the
    // subscriber reads nothing; it then yields its 10 batches, `SubscriberLagged` naming the
    // 11th commit's version, and ends.
    let db = Db::open(Options::in_memory()).unwrap();
    let limits = SubscribeOptions::default().with_max_buffered_batches(10);
    let mut sub = db.subscribe_with([Match::prefix("k")], limits).unwrap();
    let versions: Vec<u64> = (0..100)
        .map(|i| db.set(format!("k{i}"), "v").unwrap())
        .collect();
    let got: Vec<u64> = sub
        .by_ref()
        .take(10)
        .map(|b| b.unwrap()[0].version)
        .collect();
    assert_eq!(got, versions[..10]);
    match sub.next() {
        Some(Err(Error::SubscriberLagged {
            first_missed_version,
            max_buffered_batches: 10,
            ..
        })) => assert_eq!(first_missed_version, versions[10]),
        other => panic!("{other:?}"),
    }
    assert!(sub.next().is_none());
    db.close().unwrap();
}

#[test]
fn the_byte_limit_ends_a_subscriber_too() {
    // Proves the byte bound: 1 KiB values against a 4 KiB limit lag on the fifth batch.
    let db = Db::open(Options::in_memory()).unwrap();
    let limits = SubscribeOptions::default().with_max_buffered_bytes(4096);
    let sub = db.subscribe_with([Match::prefix("k")], limits).unwrap();
    for i in 0..10 {
        db.set(format!("k{i}"), vec![7u8; 1024]).unwrap();
    }
    let items: Vec<_> = sub.collect();
    assert_eq!(items.len(), 4);
    assert!(matches!(items[3], Err(Error::SubscriberLagged { .. })));
    db.close().unwrap();
}

#[test]
fn a_subscriber_that_keeps_up_never_lags() {
    // Proves reading gives buffer room back: with room for about three batches, a subscriber
    // that stays one batch behind (so the buffer is never empty when the next one comes)
    // gets all 50 updates and no lag error.
    let db = Db::open(Options::in_memory()).unwrap();
    let limits = SubscribeOptions::default().with_max_buffered_bytes(4096);
    let mut sub = db.subscribe_with([Match::prefix("k")], limits).unwrap();
    db.set("k0", vec![7u8; 1024]).unwrap();
    let mut got = 0;
    for i in 1..50 {
        db.set(format!("k{i}"), vec![7u8; 1024]).unwrap();
        let batch = sub.next().expect("a batch").expect("no lag");
        got += batch.len();
    }
    got += sub.next().expect("the last batch").expect("no lag").len();
    assert_eq!(got, 50);
    db.close().unwrap();
    assert!(sub.next().is_none());
}

// ---- the callback form ----

#[test]
fn the_callback_thread_runs_until_its_error_a_cancel_or_close() {
    // Proves `spawn`: the callback sees every batch in order; its error ends the thread and
    // comes back from `join`; `cancel_and_join` and close end it with `Ok`.
    let db = Db::open(Options::in_memory()).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let failing = db
        .subscribe([Match::prefix("k")])
        .unwrap()
        .spawn(move |batch| {
            let mut s = seen2.lock().unwrap();
            s.extend(batch.into_iter().map(|u| u.version));
            if s.len() == 3 {
                return Err(Error::InvalidRequest("enough"));
            }
            Ok(())
        })
        .unwrap();
    let cancelled = db
        .subscribe([Match::prefix("k")])
        .unwrap()
        .spawn(|_| Ok::<(), Error>(()))
        .unwrap();
    let closed = db
        .subscribe([Match::prefix("k")])
        .unwrap()
        .spawn(|_| Ok::<(), Error>(()))
        .unwrap();
    let versions: Vec<u64> = (0..5)
        .map(|i| db.set(format!("k{i}"), "v").unwrap())
        .collect();
    assert!(matches!(
        failing.join(),
        Err(Error::InvalidRequest("enough"))
    ));
    assert_eq!(*seen.lock().unwrap(), versions[..3]);
    assert!(cancelled.cancel_and_join().is_ok());
    db.close().unwrap();
    assert!(closed.join().is_ok());
}

// ---- what is not delivered, and what is ----

#[test]
fn a_commit_that_conflicts_is_not_delivered() {
    // Proves a failed commit is never published: of two transactions that read and write
    // the same key, the second fails with Conflict and only the first's update arrives.
    let db = Db::open(Options::in_memory()).unwrap();
    db.set("k", "0").unwrap();
    let sub = db.subscribe([Match::prefix("k")]).unwrap();
    let mut t1 = db.new_transaction(true).unwrap();
    let mut t2 = db.new_transaction(true).unwrap();
    for t in [&mut t1, &mut t2] {
        t.get(b"k").unwrap();
    }
    t1.set("k", "1").unwrap();
    t2.set("k", "2").unwrap();
    t1.commit().unwrap();
    assert!(matches!(t2.commit(), Err(Error::Conflict)));
    db.close().unwrap();
    let got = drain(sub).concat();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].value[..], b"1");
}

#[test]
fn managed_mode_delivers_the_commit_at_versions() {
    // Proves managed mode: each update carries the timestamp given to `commit_at`, and a
    // write batch at a timestamp arrives at it too.
    let db = Db::open_managed(Options::in_memory()).unwrap();
    let sub = db.subscribe([Match::prefix("k")]).unwrap();
    for (ts, k) in [(10u64, "k1"), (20, "k2"), (15, "k3")] {
        let mut txn = db.new_transaction_at(ts - 1, true).unwrap();
        txn.set(k, "v").unwrap();
        txn.commit_at(ts).unwrap();
    }
    let mut batch = db.new_write_batch_at(30).unwrap();
    batch.set("k4", "v").unwrap();
    batch.flush().unwrap();
    db.close().unwrap();
    let got: Vec<(Bytes, u64)> = drain(sub)
        .concat()
        .into_iter()
        .map(|u| (u.key, u.version))
        .collect();
    let want: Vec<(Bytes, u64)> = [("k1", 10), ("k2", 20), ("k3", 15), ("k4", 30)]
        .into_iter()
        .map(|(k, v)| (Bytes::from(k), v))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn value_log_gc_rewrites_are_not_delivered() {
    // Proves GC moves are not updates: after overwrites, a GC that rewrites live values
    // into a new file delivers nothing to a subscription taken before it.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(on_disk(dir.path())).unwrap();
    for round in 0..5u64 {
        for i in 0..300u64 {
            let k = format!("key{i:05}");
            db.set(k.clone(), value_for(k.as_bytes(), round, 2000))
                .unwrap();
        }
    }
    db.flatten().unwrap();
    let sub = db.subscribe([Match::prefix("")]).unwrap();
    assert!(matches!(
        db.run_value_log_gc(0.5).unwrap(),
        GcOutcome::Rewrote(_)
    ));
    db.set("after", "gc").unwrap();
    db.close().unwrap();
    let got = drain(sub).concat();
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(|u| &u.key).collect::<Vec<_>>()
    );
    assert_eq!(&got[0].key[..], b"after");
}

#[test]
fn loaded_versions_are_delivered_at_the_backup_versions() {
    // Proves `Db::load` is published (as Badger's Load): each restored version arrives with
    // its value, the backup's version, expiry and user meta.
    let src = Db::open(Options::in_memory()).unwrap();
    src.set("k1", "a").unwrap();
    src.update(|t| {
        t.set_entry(
            Entry::new("k2", vec![9u8; 500])
                .with_user_meta(7)
                .with_expires_at(EXPIRES_AT),
        )
    })
    .unwrap();
    let mut backup = Vec::new();
    src.backup(&mut backup, 0).unwrap();
    let want: Vec<(Bytes, Vec<u8>)> = ["k1", "k2"]
        .iter()
        .map(|k| (Bytes::from(*k), src.get(k.as_bytes()).unwrap().unwrap()))
        .collect();
    let max = src.max_version();
    src.close().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dst = Db::open(on_disk(dir.path())).unwrap();
    let sub = dst.subscribe([Match::prefix("k")]).unwrap();
    dst.load(&mut &backup[..], 4).unwrap();
    dst.close().unwrap();
    let mut got = drain(sub).concat();
    got.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(got.len(), 2);
    for (u, (k, v)) in got.iter().zip(&want) {
        assert_eq!((&u.key, &u.value[..]), (k, &v[..]));
    }
    assert_eq!((got[0].version, got[1].version), (max - 1, max));
    assert_eq!((got[1].user_meta, got[1].expires_at), (7, EXPIRES_AT));
}

#[test]
fn a_write_that_fails_on_io_is_not_delivered() {
    // Proves a group whose WAL sync fails (EIO with sync_writes) is never published: the
    // writer is poisoned, the commit fails, and the subscriber gets only the write before.
    let sim = SimStorage::new();
    let dir = std::path::Path::new("/db");
    let opts = small_options(dir, Arc::new(sim.clone())).with_sync_writes(true);
    let db = Db::open(opts).unwrap();
    let sub = db.subscribe([Match::prefix("")]).unwrap();
    db.set("before", "1").unwrap();
    sim.inject(
        Fault::new(FaultOp::Sync, FaultKind::Eio)
            .path_contains(".mem")
            .times(1),
    );
    assert!(db.set("failed", "2").is_err());
    assert!(db.set("after", "3").is_err());
    let _ = db.close();
    let keys: Vec<Bytes> = drain(sub).concat().into_iter().map(|u| u.key).collect();
    assert_eq!(keys, ["before"]);
}

#[test]
fn a_delivered_update_is_readable_at_the_latest_version() {
    // Proves publication comes after the commit watermark moved: a callback reading each
    // delivered key at once (while later commits go on) finds the delivered value.
    let db = Db::open(Options::in_memory()).unwrap();
    let reader = db.clone();
    let checked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = checked.clone();
    let thread = db
        .subscribe([Match::prefix("k")])
        .unwrap()
        .spawn(move |batch| {
            for u in batch {
                let now = reader.get(&u.key).unwrap();
                assert_eq!(now.as_deref(), Some(&u.value[..]), "{u:?}");
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<(), Error>(())
        })
        .unwrap();
    for i in 0..200 {
        db.set(format!("k{i}"), format!("v{i}")).unwrap();
    }
    // Reads fail once the database closes: let the callback check everything first.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while checked.load(std::sync::atomic::Ordering::Relaxed) < 200 {
        // A failed check panics the callback's thread: then `join` below says why.
        if std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    db.close().unwrap();
    thread.join().unwrap();
}

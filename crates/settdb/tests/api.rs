//! The public API as a Rust user writes it: every key and value form, `Result<Option<_>>`
//! reads, range and prefix iterators (checked against a `BTreeMap` model, both ends pulled in
//! random order), and misuse refused without losing the transaction.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use common::{seed, small_options, value_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::{MemStorage, SimStorage};
use settdb::{Bytes, Db, Entry, Error, Options, Result, Txn};

fn mem_db() -> Db {
    Db::open(Options::new("/db").with_storage(Arc::new(MemStorage::new()))).unwrap()
}

// The first line: a helper taking borrowed slices compiles and works.
fn put(db: &Db, k: &[u8], v: &[u8]) -> Result<()> {
    db.update(|t| t.set(k, v))
}

fn get_string(db: &Db, k: &str) -> Result<Option<String>> {
    Ok(db.get(k)?.map(|v| String::from_utf8(v).unwrap()))
}

#[test]
fn every_key_and_value_form_goes_in_everywhere() {
    // Proves keys and values accept &[u8], &str, &[u8; N], [u8; N], &String, &Vec<u8>,
    // Vec<u8>, String and Bytes in Txn, WriteBatch, Db and Entry, and that reads take the
    // borrowed forms too.
    let db = mem_db();
    put(&db, b"slice", b"1").unwrap();
    let owned_key = String::from("string");
    let owned_vec = b"vec".to_vec();
    db.update(|t| {
        t.set("str", "2")?;
        t.set(b"arr", *b"3")?;
        t.set(*b"arr2", b"4")?;
        t.set(&owned_key, &owned_key)?;
        t.set(&owned_vec, &owned_vec)?;
        t.set(String::from("owned"), vec![5u8])?;
        t.set(Bytes::from_static(b"bytes"), Bytes::from_static(b"6"))?;
        t.delete("gone")
    })
    .unwrap();
    let mut wb = db.new_write_batch().unwrap();
    wb.set("wb-str", String::from("7")).unwrap();
    wb.set(&b"wb-arr"[..], [8u8; 2]).unwrap();
    wb.delete(b"slice").unwrap();
    wb.flush().unwrap();
    db.set("db-set", "9").unwrap();
    // Subscriptions, sequences and merge operators take the same forms.
    let borrowed_prefix: &[u8] = &owned_vec[..1];
    drop(db.subscribe([
        settdb::Match::prefix(borrowed_prefix),
        settdb::Match::prefix("s"),
    ]));
    let seq_key = String::from("counter");
    let seq = db.get_sequence(&seq_key[..], 10).unwrap();
    assert_eq!(seq.next().unwrap(), 0);
    seq.release().unwrap();
    db.write([Entry::new("entry", "10").with_user_meta(3)])
        .unwrap();
    db.delete(String::from("str")).unwrap();

    assert_eq!(get_string(&db, "slice").unwrap(), None);
    assert_eq!(get_string(&db, "str").unwrap(), None);
    for (k, v) in [
        ("arr", "3"),
        ("arr2", "4"),
        ("string", "string"),
        ("vec", "vec"),
        ("owned", "\u{5}"),
        ("bytes", "6"),
        ("wb-str", "7"),
        ("wb-arr", "\u{8}\u{8}"),
        ("db-set", "9"),
        ("entry", "10"),
    ] {
        assert_eq!(get_string(&db, k).unwrap().as_deref(), Some(v), "{k}");
    }
    db.view(|t| {
        assert!(t.get(&owned_key)?.is_some());
        assert!(t.get(&owned_vec)?.is_some());
        assert!(t.get(*b"arr")?.is_some());
        assert!(t.get(Bytes::from_static(b"bytes"))?.is_some());
        assert_eq!(t.get("entry")?.unwrap().user_meta(), 3);
        assert!(t.get("gone")?.is_none());
        Ok(())
    })
    .unwrap();
}

#[test]
fn not_found_is_none_everywhere_and_errors_stay_errors() {
    // Proves a missing, deleted or expired key reads as Ok(None) (in a transaction, through
    // its own pending delete, and on Db), while a bad key is still an error.
    let db = mem_db();
    db.set("k", "v").unwrap();
    db.write([Entry::new("expired", "v").with_expires_at(1)])
        .unwrap();
    let mut t = db.new_transaction(true).unwrap();
    assert!(t.get("missing").unwrap().is_none());
    assert!(t.get("expired").unwrap().is_none());
    t.delete("k").unwrap();
    assert!(t.get("k").unwrap().is_none(), "own pending delete");
    assert!(db.get("k").unwrap().is_some(), "not committed yet");
    assert!(matches!(t.get(""), Err(Error::EmptyKey)));
    t.commit().unwrap();
    assert!(db.get("k").unwrap().is_none());
    assert!(db.get("expired").unwrap().is_none());
}

fn keys(it: impl Iterator<Item = Result<settdb::Item>>) -> Vec<Vec<u8>> {
    it.map(|i| i.unwrap().key().to_vec()).collect()
}

#[test]
fn range_and_prefix_iterators_forward_and_reversed() {
    // Proves the forms of the issue: Vec ranges, str ranges, inclusive and open ends, prefix
    // iterators, and .rev().
    let db = mem_db();
    db.update(|t| {
        for k in ["a", "b", "m", "user:1", "user:2", "user:3", "users", "z"] {
            t.set(k, "v")?;
        }
        Ok(())
    })
    .unwrap();
    db.view(|t| {
        let r = t.range(b"a".to_vec()..b"m".to_vec())?;
        assert_eq!(keys(r), [b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(
            keys(t.range("b"..="m")?.rev()),
            [b"m".to_vec(), b"b".to_vec()]
        );
        assert_eq!(
            keys(t.range("users"..)?),
            [b"users".to_vec(), b"z".to_vec()]
        );
        assert_eq!(keys(t.range(.."b")?), [b"a".to_vec()]);
        assert_eq!(keys(t.range::<&str>(..)?).len(), 8);
        assert_eq!(
            keys(t.prefix("user:")?),
            [b"user:1".to_vec(), b"user:2".to_vec(), b"user:3".to_vec()]
        );
        assert_eq!(
            keys(t.prefix(String::from("user:"))?.rev()),
            [b"user:3".to_vec(), b"user:2".to_vec(), b"user:1".to_vec()]
        );
        assert!(keys(t.prefix("nothing")?).is_empty());
        // Excluded bounds that exist, walked from each end alone.
        fn open(lo: &'static str, hi: &'static str) -> (Bound<&'static str>, Bound<&'static str>) {
            (Bound::Excluded(lo), Bound::Excluded(hi))
        }
        assert_eq!(keys(t.range::<&str>(open("a", "m"))?), [b"b".to_vec()]);
        assert_eq!(
            keys(t.range::<&str>(open("a", "m"))?.rev()),
            [b"b".to_vec()]
        );
        let half = (Bound::Excluded("a"), Bound::Included("m"));
        assert_eq!(
            keys(t.range::<&str>(half)?.rev()),
            [b"m".to_vec(), b"b".to_vec()]
        );
        assert!(keys(t.range::<&str>(open("a", "b"))?.rev()).is_empty());
        assert!(keys(t.range::<&str>(open("a", "b"))?).is_empty());
        assert!(keys(t.range("m".."b")?).is_empty(), "inverted range");
        assert!(keys(t.range("m".."m")?).is_empty());
        let mut both = t.prefix("user:")?;
        assert_eq!(both.next().unwrap()?.key(), b"user:1");
        assert_eq!(both.next_back().unwrap()?.key(), b"user:3");
        assert_eq!(both.next_back().unwrap()?.key(), b"user:2");
        assert!(both.next().is_none() && both.next_back().is_none());
        Ok(())
    })
    .unwrap();
}

fn bound(rng: &mut StdRng, keys: u32) -> Bound<Vec<u8>> {
    let k = format!("k{:03}", rng.random_range(0..keys)).into_bytes();
    match rng.random_range(0..3) {
        0 => Bound::Included(k),
        1 => Bound::Excluded(k),
        _ => Bound::Unbounded,
    }
}

#[test]
fn range_iterators_match_a_model_from_both_ends() {
    // Proves against a BTreeMap: random ranges and prefixes over a database with flushed,
    // compacted and memtable versions, deletes and a transaction's own pending writes, pulled
    // from the front and the back in random order, yield exactly the model's keys with the
    // right values, each once.
    let seed = seed(0x4a11);
    let mut rng = StdRng::seed_from_u64(seed);
    let db = Db::open(small_options(Path::new("/db"), Arc::new(SimStorage::new()))).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    const KEYS: u32 = 300;
    for round in 0..6u64 {
        let mut wb = db.new_write_batch().unwrap();
        for _ in 0..400 {
            let k = format!("k{:03}", rng.random_range(0..KEYS)).into_bytes();
            if rng.random_bool(0.2) {
                wb.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let v = value_for(&k, round, rng.random_range(1..200));
                wb.set(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        wb.flush().unwrap();
        if round % 2 == 0 {
            db.flush().unwrap();
        }
    }
    let mut txn = db.new_transaction(true).unwrap();
    for _ in 0..30 {
        let k = format!("k{:03}", rng.random_range(0..KEYS)).into_bytes();
        if rng.random_bool(0.3) {
            txn.delete(&k).unwrap();
            model.remove(&k);
        } else {
            let v = value_for(&k, 99, 10);
            txn.set(&k, &v).unwrap();
            model.insert(k, v);
        }
    }
    for case in 0..300 {
        let (lo, hi) = (bound(&mut rng, KEYS), bound(&mut rng, KEYS));
        let prefix = (case % 4 == 0).then(|| format!("k{}", rng.random_range(0..3)));
        let want: Vec<(Vec<u8>, Vec<u8>)> = match &prefix {
            Some(p) => model
                .iter()
                .filter(|(k, _)| k.starts_with(p.as_bytes()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None => {
                let valid = match (&lo, &hi) {
                    (Bound::Included(a), Bound::Included(b)) => a <= b,
                    (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
                    | (Bound::Excluded(a), Bound::Included(b)) => a < b,
                    _ => true,
                };
                if valid {
                    model
                        .range((lo.clone(), hi.clone()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                } else {
                    Vec::new()
                }
            }
        };
        let mut it = match &prefix {
            Some(p) => txn.prefix(p).unwrap(),
            None => txn.range::<Vec<u8>>((lo.clone(), hi.clone())).unwrap(),
        };
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            let from_back = rng.random_bool(0.5);
            let next = if from_back { it.next_back() } else { it.next() };
            let Some(item) = next else { break };
            let item = item.unwrap();
            let kv = (item.key().to_vec(), item.value().unwrap());
            if from_back {
                back.push(kv);
            } else {
                front.push(kv);
            }
        }
        assert!(it.next().is_none() && it.next_back().is_none());
        back.reverse();
        front.extend(back);
        assert_eq!(
            front.len(),
            want.len(),
            "case {case} seed {seed}: {lo:?}..{hi:?} prefix {prefix:?}"
        );
        assert!(front == want, "case {case} seed {seed}: contents differ");
    }
}

#[test]
fn a_range_records_its_reads_for_conflicts() {
    // Proves keys yielded by a range iterator are reads: a concurrent commit to one of them
    // makes the transaction's commit a conflict; a commit outside the range does not.
    let db = mem_db();
    db.update(|t| {
        t.set("a", "1")?;
        t.set("b", "1")?;
        t.set("x", "1")
    })
    .unwrap();
    let mut t1 = db.new_transaction(true).unwrap();
    assert_eq!(keys(t1.range("a"..="b").unwrap()).len(), 2);
    t1.set("out", "1").unwrap();
    db.set("x", "2").unwrap();
    t1.commit().unwrap();
    let mut t2 = db.new_transaction(true).unwrap();
    assert_eq!(keys(t2.prefix("a").unwrap().rev()).len(), 1);
    t2.set("out", "2").unwrap();
    db.set("a", "2").unwrap();
    assert!(matches!(t2.commit(), Err(Error::Conflict)));
}

#[test]
fn commit_of_the_wrong_mode_is_refused_and_the_transaction_stays_usable() {
    // Badger's commitPrecheck (TestTxnSimple, TestManagedDB): commit_at on a normal database
    // and commit on a managed one are refused without discarding, so the correct commit that
    // follows still writes.
    let db = mem_db();
    let mut t = db.new_transaction(true).unwrap();
    t.set("k", "v").unwrap();
    assert!(matches!(t.commit_at(10), Err(Error::InvalidRequest(_))));
    t.commit().unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));

    let mdb =
        Db::open_managed(Options::new("/m").with_storage(Arc::new(MemStorage::new()))).unwrap();
    let mut t: Txn = mdb.new_transaction_at(1, true).unwrap();
    t.set("k", "v").unwrap();
    assert!(matches!(t.commit(), Err(Error::InvalidRequest(_))));
    let (tx, rx) = std::sync::mpsc::channel();
    t.commit_with(move |r| tx.send(r.is_err()).unwrap());
    assert!(
        rx.recv().unwrap(),
        "commit_with on a managed db is refused too"
    );
    t.commit_at(5).unwrap();
    assert_eq!(mdb.get_at("k", 5).unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_read_only_database_hands_out_read_only_transactions() {
    // Badger's TestReadOnly: new_transaction(true) on a read-only database gives a read-only
    // transaction whose writes fail at once with ReadOnlyTxn (not at commit); reads work.
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(Options::new(dir.path())).unwrap();
        db.set("k", "v").unwrap();
        db.close().unwrap();
    }
    let db = Db::open(Options::new(dir.path()).with_read_only(true)).unwrap();
    let mut t = db.new_transaction(true).unwrap();
    assert!(!t.is_update());
    assert!(matches!(t.set("k", "w"), Err(Error::ReadOnlyTxn)));
    assert!(matches!(t.delete("k"), Err(Error::ReadOnlyTxn)));
    assert_eq!(t.get("k").unwrap().unwrap().value().unwrap(), b"v");
    assert!(matches!(
        db.update(|t| t.set("k", "w")),
        Err(Error::ReadOnlyTxn)
    ));
}

#[test]
fn is_closed_reports_close() {
    // Proves is_closed is false while open and true after close, on every clone.
    let db = mem_db();
    let clone = db.clone();
    assert!(!db.is_closed());
    db.close().unwrap();
    assert!(db.is_closed() && clone.is_closed());
    assert!(matches!(clone.get("k"), Err(Error::Closed)));
}

fn managed_db() -> Db {
    Db::open_managed(small_options(Path::new("/m"), Arc::new(SimStorage::new()))).unwrap()
}

#[test]
fn a_managed_write_batch_writes_each_entry_at_its_own_version() {
    // Badger's NewManagedWriteBatch / SetEntryAt / DeleteAt: every entry lands at its version
    // (several versions of one key in one batch included), the later write of a key at one
    // version wins, a batch larger than one write splits and still lands whole, and each
    // read timestamp sees the versions at or below it.
    let db = managed_db();
    let mut wb = db.new_managed_write_batch().unwrap();
    wb.set_entry_at(Entry::new("k", "v10"), 10).unwrap();
    wb.set_entry_at(Entry::new("k", "v30"), 30).unwrap();
    wb.set_entry_at(Entry::new("k", "first"), 20).unwrap();
    wb.set_entry_at(Entry::new("k", "v20").with_user_meta(2), 20)
        .unwrap();
    wb.delete_at("k", 40).unwrap();
    // Enough 300-byte values (value log, 1 MiB files) to need several writes.
    for i in 0..6_000u64 {
        let key = format!("bulk{i:05}");
        let value = value_for(key.as_bytes(), i, 300);
        wb.set_entry_at(Entry::new(&key, value), 100 + i % 7)
            .unwrap();
    }
    wb.flush().unwrap();
    for (ts, want) in [
        (9, None),
        (10, Some("v10")),
        (25, Some("v20")),
        (30, Some("v30")),
        (40, None),
    ] {
        assert_eq!(
            db.get_at("k", ts).unwrap().as_deref(),
            want.map(str::as_bytes),
            "at {ts}"
        );
    }
    let mut t = db.new_transaction_at(25, false).unwrap();
    assert_eq!(t.get("k").unwrap().unwrap().user_meta(), 2);
    for i in (0..6_000u64).step_by(97) {
        let key = format!("bulk{i:05}");
        assert_eq!(
            db.get_at(&key, 106).unwrap().unwrap(),
            value_for(key.as_bytes(), i, 300)
        );
        assert!(db.get_at(&key, 100 + i % 7 - 1).unwrap().is_none());
    }
}

#[test]
fn managed_write_batch_misuse_is_refused() {
    // Proves each wrong call is a typed error naming the right call: plain set on a managed
    // batch, set_entry_at on a normal one, version 0, a managed batch on a normal database.
    let db = managed_db();
    let mut wb = db.new_managed_write_batch().unwrap();
    assert!(matches!(wb.set("k", "v"), Err(Error::InvalidRequest(_))));
    assert!(matches!(
        wb.set_entry_at(Entry::new("k", "v"), 0),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        wb.set_entry_at(Entry::new("", "v"), 1),
        Err(Error::EmptyKey)
    ));
    wb.cancel();
    let mut at = db.new_write_batch_at(5).unwrap();
    assert!(matches!(
        at.set_entry_at(Entry::new("k", "v"), 5),
        Err(Error::InvalidRequest(_))
    ));
    at.cancel();
    let normal = mem_db();
    assert!(matches!(
        normal.new_managed_write_batch(),
        Err(Error::InvalidRequest(_))
    ));
    let mut nb = normal.new_write_batch().unwrap();
    assert!(matches!(
        nb.delete_at("k", 3),
        Err(Error::InvalidRequest(_))
    ));
}

#[test]
fn managed_batch_writes_conflict_with_transactions_that_read_them() {
    // Proves a managed batch's writes count for conflict detection: a transaction that read
    // `k` at 10 conflicts when a batch wrote `k` at 15 before it commits; one that read only
    // other keys commits.
    let db = managed_db();
    let mut reader = db.new_transaction_at(10, true).unwrap();
    assert!(reader.get("k").unwrap().is_none());
    reader.set("other", "x").unwrap();
    let mut bystander = db.new_transaction_at(10, true).unwrap();
    assert!(bystander.get("unrelated").unwrap().is_none());
    bystander.set("y", "y").unwrap();
    let mut wb = db.new_managed_write_batch().unwrap();
    wb.set_entry_at(Entry::new("k", "v"), 15).unwrap();
    wb.flush().unwrap();
    assert!(matches!(reader.commit_at(20), Err(Error::Conflict)));
    bystander.commit_at(21).unwrap();
}

#[test]
fn commit_at_with_calls_back_once_with_the_outcome() {
    // Badger's CommitAt with a callback: the callback gets Ok after the write is applied,
    // and the error for a conflict; a normal database refuses it through the callback.
    let db = managed_db();
    let mut t = db.new_transaction_at(1, true).unwrap();
    t.set("k", "v").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    t.commit_at_with(7, move |r| tx2.send(r.map_err(|e| e.to_string())).unwrap());
    assert_eq!(rx.recv().unwrap(), Ok(()));
    assert_eq!(db.get_at("k", 7).unwrap().as_deref(), Some(&b"v"[..]));
    let mut stale = db.new_transaction_at(1, true).unwrap();
    assert!(stale.get("k").unwrap().is_none());
    stale.set("k", "w").unwrap();
    let tx3 = tx.clone();
    stale.commit_at_with(8, move |r| tx3.send(r.map_err(|e| e.to_string())).unwrap());
    assert!(
        rx.recv().unwrap().is_err(),
        "conflict reported to the callback"
    );
    let normal = mem_db();
    let mut n = normal.new_transaction(true).unwrap();
    n.set("k", "v").unwrap();
    n.commit_at_with(3, move |r| tx.send(r.map_err(|e| e.to_string())).unwrap());
    assert!(rx.recv().unwrap().is_err());
    n.commit().unwrap();
}

#[test]
fn tables_levels_estimate_size_and_key_splits_describe_the_tree() {
    // Proves the info calls agree with each other and with the data: tables() lists every
    // table once with its level, key range and counts; level_info() sums them per level with
    // one base level; estimate_size() gives a prefix its share (a prefix inside one table gets
    // part of it, not 0 as Badger's whole-table rule would), nothing for a prefix with no keys;
    // key_splits() are sorted, distinct table starts under the prefix.
    let db = Db::open(small_options(Path::new("/db"), Arc::new(SimStorage::new()))).unwrap();
    let mut wb = db.new_write_batch().unwrap();
    for i in 0..20_000u32 {
        let key = format!("a:{i:06}");
        wb.set(&key, value_for(key.as_bytes(), 1, 40)).unwrap();
    }
    for i in 0..50u32 {
        let key = format!("b:{i:06}");
        wb.set(&key, value_for(key.as_bytes(), 1, 40)).unwrap();
    }
    wb.flush().unwrap();
    db.flatten().unwrap();
    let tables = db.tables();
    assert!(tables.len() > 3, "{} tables", tables.len());
    let mut keys = 0;
    for t in &tables {
        assert!(t.smallest <= t.biggest && t.on_disk_bytes > 0 && t.max_version > 0);
        assert!(t.entry_count >= t.key_count && t.uncompressed_bytes > 0);
        keys += t.key_count;
    }
    assert_eq!(keys, 20_050, "flattened: one version per key");
    let levels = db.level_info();
    assert_eq!(levels.iter().filter(|l| l.is_base_level).count(), 1);
    assert!(!levels[0].is_base_level);
    assert_eq!(levels[0].target_bytes, 0, "L0 has no size target");
    for l in &levels {
        let here: Vec<_> = tables.iter().filter(|t| t.level == l.level).collect();
        assert_eq!(l.tables, here.len());
        assert_eq!(l.bytes, here.iter().map(|t| t.on_disk_bytes).sum::<u64>());
        assert_eq!(
            l.stale_bytes,
            here.iter().map(|t| t.stale_bytes).sum::<u64>()
        );
        assert!(l.target_table_bytes > 0);
        if l.level == 0 {
            // small_options: num_level_zero_tables = 2.
            assert_eq!(l.score, l.tables as f64 / 2.0);
        } else {
            assert!(l.target_bytes >= 256 << 10, "at least base_level_size");
            assert_eq!(l.score, l.bytes as f64 / l.target_bytes as f64);
        }
    }
    let total: u64 = tables.iter().map(|t| t.on_disk_bytes).sum();
    let a = db.estimate_size("a:").unwrap();
    let b = db.estimate_size("b:").unwrap();
    let all = db.estimate_size("").unwrap();
    assert_eq!(all.on_disk_bytes, total);
    assert!(a.on_disk_bytes > 0 && a.on_disk_bytes <= total);
    // 50 keys of about 60 bytes: a few 1 KiB blocks, part of one table.
    let holder = tables
        .iter()
        .find(|t| t.biggest.starts_with(b"b:"))
        .unwrap();
    assert!(
        b.on_disk_bytes >= 2_000 && b.on_disk_bytes < holder.on_disk_bytes,
        "a prefix inside one table gets its blocks: {b:?} of {}",
        holder.on_disk_bytes
    );
    assert!(b.on_disk_bytes * 20 < a.on_disk_bytes, "{b:?} vs {a:?}");
    // Whole tables: each counts its bytes before compression (at least its bytes on disk).
    let raw: u64 = tables
        .iter()
        .map(|t| t.uncompressed_bytes.max(t.on_disk_bytes))
        .sum();
    let slack = tables.len() as u64;
    assert!(
        all.uncompressed_bytes + slack >= raw && all.uncompressed_bytes <= raw + slack,
        "{} vs {raw}",
        all.uncompressed_bytes
    );
    assert_eq!(db.estimate_size("c:").unwrap().on_disk_bytes, 0);
    // Put a table in L0 to see its score move.
    db.set("z", "v").unwrap();
    db.flush().unwrap();
    let l0 = &db.level_info()[0];
    assert_eq!((l0.tables, l0.score), (1, 0.5));
    let splits = db.key_splits("a:");
    assert!(splits.len() > 2);
    assert!(splits.windows(2).all(|w| w[0] < w[1]));
    assert!(splits.iter().all(|k| k.starts_with(b"a:")));
    assert!(db.key_splits("zz").is_empty());
}

#[test]
fn vlog_percentile_keeps_the_common_sizes_inline() {
    // Proves the dynamic threshold (Badger's VLogPercentile): with 0.9 and 95% of values at
    // 300 bytes (over the fixed threshold of 64) and 5% at 20 KB, after the first groups only
    // the large values go to the value log, so it holds far less than with a fixed threshold;
    // every value reads back, also after reopen (reads follow each value's own pointer bit).
    let write = |percentile: f64| -> (u64, Arc<SimStorage>) {
        let storage = Arc::new(SimStorage::new());
        let opts = small_options(Path::new("/db"), storage.clone())
            .with_value_log_file_size(8 << 20)
            .with_vlog_percentile(percentile);
        let db = Db::open(opts.clone()).unwrap();
        for batch in 0..40u64 {
            let mut entries = Vec::new();
            for j in 0..100u64 {
                let i = batch * 100 + j;
                let key = format!("k{i:05}");
                let len = if i % 20 == 7 { 20_000 } else { 300 };
                entries.push(Entry::new(&key, value_for(key.as_bytes(), i, len)));
            }
            db.write(entries).unwrap();
        }
        let vlog: u64 = db.value_log_files().iter().map(|f| f.size_bytes).sum();
        db.close().unwrap();
        let db = Db::open(opts).unwrap();
        for i in 0..4_000u64 {
            let key = format!("k{i:05}");
            let len = if i % 20 == 7 { 20_000 } else { 300 };
            assert_eq!(
                db.get(&key).unwrap().unwrap(),
                value_for(key.as_bytes(), i, len),
                "{key} with percentile {percentile}"
            );
        }
        db.close().unwrap();
        (vlog, storage)
    };
    let (fixed, _) = write(0.0);
    let (dynamic, _) = write(0.9);
    let large = 200 * 20_000;
    assert!(fixed > large + 3_000 * 300, "fixed threshold: {fixed}");
    assert!(
        dynamic < large + large / 5,
        "dynamic threshold kept {dynamic} bytes in the value log"
    );
    assert!(matches!(
        Db::open(
            Options::new("/x")
                .with_in_memory(true)
                .with_vlog_percentile(1.0)
        ),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn a_managed_write_batch_splits_before_its_values_overflow_a_value_log_file() {
    // Proves the managed batch splits on value-log bytes as the normal one does: 200 values
    // of 8 KiB (1.6 MB for the value log) over 1 MiB value-log files flush without
    // ValueLogWriteTooBig, and every value reads back at its version.
    let db = Db::open_managed(
        Options::new("/m")
            .with_storage(Arc::new(MemStorage::new()))
            .with_value_log_file_size(1 << 20),
    )
    .unwrap();
    let mut wb = db.new_managed_write_batch().unwrap();
    for i in 0..200u64 {
        let key = format!("big{i:03}");
        wb.set_entry_at(
            Entry::new(&key, value_for(key.as_bytes(), i, 8 << 10)),
            1 + i % 3,
        )
        .unwrap();
    }
    wb.flush().unwrap();
    for i in 0..200u64 {
        let key = format!("big{i:03}");
        assert_eq!(
            db.get_at(&key, 3).unwrap().unwrap(),
            value_for(key.as_bytes(), i, 8 << 10)
        );
    }
}

#[test]
fn a_write_batch_reports_a_failed_sub_commit_at_flush_and_after() {
    // Proves the batch's error path: a sub-commit whose WAL sync fails (EIO) makes flush
    // return an error (flush waits for it and checks), and a batch started after the failure
    // is refused at once by the poisoned database, never silently dropped.
    let sim = SimStorage::new();
    let opts = small_options(Path::new("/db"), Arc::new(sim.clone())).with_sync_writes(true);
    let db = Db::open(opts).unwrap();
    let mut wb = db.new_write_batch().unwrap();
    wb.set("before", "1").unwrap();
    sim.inject(
        settdb::io::Fault::new(settdb::io::FaultOp::Sync, settdb::io::FaultKind::Eio)
            .path_contains(".mem")
            .times(1),
    );
    for i in 0..10u32 {
        wb.set(format!("k{i}"), "v").unwrap();
    }
    assert!(
        wb.flush().is_err(),
        "the failed commit is reported by flush"
    );
    let mut later = db.new_write_batch().unwrap();
    let refused = later.set("x", "y").and_then(|()| later.flush());
    assert!(
        refused.is_err(),
        "a poisoned database refuses the next batch"
    );
}

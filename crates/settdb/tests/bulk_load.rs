//! `Db::bulk_load` (the StreamWriter): a backup's streams written straight into last-level
//! tables give the same content as the source; out-of-order and overlapping streams, a
//! non-empty database and failed writes leave nothing behind; and a crash at any point of a
//! load (simulated storage, every crash mode) reopens to the database as it was before the
//! load, or, once the load returned, to all of it.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{seed, small_options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::backup::pb::{Kv, KvList};
use settdb::backup::FrameReader;
use settdb::io::{CrashMode, Fault, FaultKind, FaultOp, SimStorage, Storage};
use settdb::{Db, Entry, Error, IteratorOptions, Options};

fn opts(storage: &SimStorage) -> Options {
    let s: Arc<dyn Storage> = Arc::new(storage.clone());
    small_options(Path::new("/db"), s).with_num_versions_to_keep(u32::MAX)
}

/// As [`opts`] with no background compaction or GC, so nothing but the load itself makes
/// anything durable (a crash copy right after it shows what the load synced).
fn still_opts(storage: &SimStorage) -> Options {
    opts(storage)
        .with_num_compactors(0)
        .with_auto_value_log_gc(false)
}

fn kv_in(k: &str, v: u64, stream: u32, len: usize) -> Kv {
    Kv {
        key: k.as_bytes().to_vec().into(),
        value: vec![b'v'; len].into(),
        version: v,
        stream_id: stream,
        ..Kv::default()
    }
}

fn one_list(kv: Vec<Kv>) -> KvList {
    KvList { kv, alloc_ref: 0 }
}

#[test]
fn large_values_go_to_the_value_log_in_groups_that_fit_a_file() {
    // Proves values at or over the threshold (64 B here) go to the value log and smaller
    // ones and deletes stay inline (the exact value-log byte count), that value-log files keep
    // to their size as the write path's do (1 MiB here: a file rotates once it is full, so it
    // holds less than its size plus one group of at most its size) though one list carries
    // 3 MiB of values, and that every value reads back.
    let storage = SimStorage::new();
    let db = Db::open(still_opts(&storage)).unwrap();
    let mut kvs = Vec::new();
    for i in 0..5000u32 {
        let mut kv = kv_in(&format!("k{i:05}"), 7, 1, if i % 5 == 0 { 20 } else { 800 });
        if i % 50 == 1 {
            kv.meta = settdb::backup::one_byte(1);
        }
        kvs.push(kv);
    }
    let big: u64 = kvs
        .iter()
        .filter(|kv| kv.meta.as_ref() != [1] && kv.value.len() >= 64)
        .map(|kv| kv.value.len() as u64)
        .sum();
    let ((), s) = db.bulk_load(|w| w.write(one_list(kvs.clone()))).unwrap();
    assert_eq!(s.value_log_bytes, big);
    let files = db.value_log_files();
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        assert!(f.size_bytes <= 2 << 20, "{f:?}");
    }
    assert!(db.size().vlog_bytes >= big);
    for kv in &kvs {
        let k = std::str::from_utf8(&kv.key).unwrap();
        let got = db.get(&kv.key).unwrap();
        if kv.meta.as_ref() == [1] {
            assert_eq!(got, None, "{k}");
        } else {
            assert_eq!(got.as_deref(), Some(kv.value.as_ref()), "{k}");
        }
    }
}

#[test]
fn each_stream_writes_its_own_tables_with_at_most_16_open() {
    // Proves interleaved streams each get their own table (10 small streams: 10 tables), and
    // that with more than 16 streams open at once the least recently written one's table is
    // finished (20 streams round-robin: more tables than streams), the content unchanged.
    for (streams, more) in [(10u32, false), (20, true)] {
        let db = Db::open(still_opts(&SimStorage::new())).unwrap();
        let mut lists = Vec::new();
        for round in 0..3u32 {
            let kv = (0..streams)
                .map(|s| kv_in(&format!("s{s:02}-{round}"), 1, s + 1, 10))
                .collect();
            lists.push(one_list(kv));
        }
        let ((), sum) = db
            .bulk_load(|w| lists.iter().try_for_each(|l| w.write(l.clone())))
            .unwrap();
        if more {
            assert!(sum.tables > u64::from(streams), "{streams}: {sum:?}");
        } else {
            assert_eq!(sum.tables, u64::from(streams), "{sum:?}");
        }
        assert_eq!(key_count(&db), (3 * streams) as usize);
    }
}

/// A source database with versions, deletes, discard markers, TTLs, user meta and values in
/// the value log, in many tables; returns its backup's frames.
fn source_backup(rng: &mut StdRng) -> Vec<KvList> {
    let db = Db::open(opts(&SimStorage::new())).unwrap();
    for i in 0..4000u32 {
        let k = format!("key{:05}", rng.random_range(0..3000)).into_bytes();
        let len = if rng.random_bool(0.3) { 300 } else { 20 };
        let v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        match rng.random_range(0..10) {
            0 => {
                db.delete(k).unwrap();
            }
            1 => db
                .update(|t| t.set_entry(Entry::new(k, v).with_discard()))
                .unwrap(),
            2 => db
                .update(|t| t.set_entry(Entry::new(k, v).with_expires_at(u64::MAX / 4)))
                .unwrap(),
            _ => db
                .update(|t| t.set_entry(Entry::new(k, v).with_user_meta(rng.random())))
                .unwrap(),
        }
        if i % 1000 == 999 {
            db.flatten().unwrap();
        }
    }
    let mut bytes = Vec::new();
    db.stream()
        .max_batch_bytes(20_000)
        .key_to_list(settdb::backup_key_to_list)
        .run(|list| {
            settdb::backup::write_frame(&mut bytes, &list, 0)?;
            Ok(())
        })
        .unwrap();
    // Lists of at most 100 KVs (cut in order, so each stream stays sorted), for many load
    // steps.
    frames(&bytes)
        .into_iter()
        .flat_map(|l| {
            l.kv.chunks(100)
                .map(|c| KvList {
                    kv: c.to_vec(),
                    alloc_ref: 0,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn frames(bytes: &[u8]) -> Vec<KvList> {
    let mut r = FrameReader::new(bytes);
    let mut out = Vec::new();
    while let Some((_, list)) = r.next_frame().unwrap() {
        out.push(list);
    }
    out
}

/// Every KV of a database's backup, sorted, stream ids cleared.
fn content(db: &Db) -> Vec<Kv> {
    let mut bytes = Vec::new();
    db.backup(&mut bytes, 0).unwrap();
    let mut all: Vec<Kv> = frames(&bytes)
        .into_iter()
        .flat_map(|l| l.kv)
        .map(|mut kv| {
            kv.stream_id = 0;
            kv
        })
        .collect();
    all.sort_by(|a, b| a.key.cmp(&b.key).then(b.version.cmp(&a.version)));
    all
}

fn source_content(lists: &[KvList]) -> Vec<Kv> {
    let mut all: Vec<Kv> = lists
        .iter()
        .flat_map(|l| l.kv.iter().cloned())
        .map(|mut kv| {
            kv.stream_id = 0;
            kv
        })
        .collect();
    all.sort_by(|a, b| a.key.cmp(&b.key).then(b.version.cmp(&a.version)));
    all
}

fn key_count(db: &Db) -> usize {
    db.iter(IteratorOptions::default().with_all_versions(true))
        .unwrap()
        .count()
}

#[test]
fn a_bulk_load_holds_what_the_backup_held_in_last_level_tables() {
    // Proves a bulk load of a backup's streams gives a database whose backup equals the
    // source's, all in last-level tables with nothing in L0, surviving a reopen; the next
    // commit goes above the versions loaded; a second bulk load is refused (not empty).
    let s = seed(21);
    println!("seed {s}");
    let lists = source_backup(&mut StdRng::seed_from_u64(s));
    assert!(lists.iter().flat_map(|l| &l.kv).any(|kv| kv.stream_id > 1));
    let storage = SimStorage::new();
    let db = Db::open(opts(&storage)).unwrap();
    let ((), summary) = db
        .bulk_load(|w| {
            for l in lists.clone() {
                w.write(l)?;
            }
            Ok(())
        })
        .unwrap();
    let want = source_content(&lists);
    assert_eq!(summary.kvs as usize, want.len());
    assert!(
        summary.tables > 1 && summary.value_log_bytes > 0,
        "{summary:?}"
    );
    let levels = db.levels();
    let last = levels.level_count() - 1;
    assert_eq!(levels.tables(last).len() as u64, summary.tables);
    assert!((0..last).all(|l| levels.tables(l).is_empty()));
    assert!(
        content(&db) == want,
        "bulk-loaded content differs from the source"
    );
    let v = db.set(&b"after"[..], &b"x"[..]).unwrap();
    assert!(v > summary.max_version);
    let again = db.bulk_load(|_| Ok(()));
    assert!(matches!(again, Err(Error::InvalidRequest(m)) if m.contains("empty")));
    db.close().unwrap();
    drop(db);
    let db = Db::open(opts(&storage)).unwrap();
    let mut with_after = want.clone();
    with_after.retain(|kv| kv.key.as_ref() != b"after");
    let got: Vec<Kv> = content(&db)
        .into_iter()
        .filter(|kv| kv.key.as_ref() != b"after")
        .collect();
    assert!(got == with_after, "content after reopen differs");
    assert_eq!(db.get(b"after").unwrap(), Some(b"x".to_vec()));
}

#[test]
fn bad_streams_and_failed_writes_leave_nothing_behind() {
    // Proves that KVs out of order within a stream, streams whose ranges overlap, an error
    // returned by the caller, and an injected write failure each fail the load, leave no
    // table and no key, and that the same database then takes a good load.
    let kv = |k: &str, v: u64, stream: u32| Kv {
        key: k.as_bytes().to_vec().into(),
        value: vec![b'v'; 100].into(),
        version: v,
        stream_id: stream,
        ..Kv::default()
    };
    let list = |kvs: Vec<Kv>| KvList {
        kv: kvs,
        alloc_ref: 0,
    };
    let storage = SimStorage::new();
    let db = Db::open(opts(&storage)).unwrap();
    let cases: Vec<(&str, Vec<KvList>)> = vec![
        (
            "keys out of order",
            vec![list(vec![kv("b", 1, 1), kv("a", 1, 1)])],
        ),
        (
            "versions oldest first",
            vec![list(vec![kv("a", 1, 1), kv("a", 2, 1)])],
        ),
        (
            "streams overlap",
            vec![
                list(vec![kv("a", 1, 1), kv("c", 1, 1)]),
                list(vec![kv("b", 1, 2)]),
            ],
        ),
    ];
    for (name, lists) in cases {
        let r = db.bulk_load(|w| {
            for l in lists {
                w.write(l)?;
            }
            Ok(())
        });
        assert!(matches!(r, Err(Error::InvalidRequest(_))), "{name}: {r:?}");
        assert_eq!(key_count(&db), 0, "{name}");
        assert!(db.levels().total_size_bytes() == 0, "{name}");
    }
    let r = db.bulk_load(|w| {
        w.write(list(vec![kv("a", 1, 1)]))?;
        Err::<(), _>(Error::InvalidRequest("caller gave up"))
    });
    assert!(matches!(r, Err(Error::InvalidRequest("caller gave up"))));
    assert_eq!(key_count(&db), 0);
    storage.inject(
        Fault::new(FaultOp::Write, FaultKind::Eio)
            .path_contains(".sst")
            .times(1),
    );
    let many: Vec<Kv> = (0..3000).map(|i| kv(&format!("k{i:05}"), 1, 1)).collect();
    let r = db.bulk_load(|w| w.write(list(many.clone())));
    assert!(
        r.is_err(),
        "the injected table write failure fails the load"
    );
    storage.clear_faults();
    assert_eq!(key_count(&db), 0);
    db.bulk_load(|w| w.write(list(many.clone()))).unwrap();
    assert_eq!(key_count(&db), 3000);
    let tables: Vec<String> = storage
        .list_dir(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    assert_eq!(
        tables.len(),
        db.levels().tables(db.levels().level_count() - 1).len()
    );
}

#[test]
fn a_crash_during_a_bulk_load_reopens_to_the_database_before_it() {
    // Proves: crash copies taken after each list written (and before the load returned), in
    // every crash mode, reopen cleanly to an empty database (no key, no table) that takes a
    // new load; copies taken after it returned reopen to all of it.
    let s = seed(22);
    println!("seed {s}");
    let lists = source_backup(&mut StdRng::seed_from_u64(s));
    let want = source_content(&lists);
    let storage = SimStorage::new();
    let db = Db::open(still_opts(&storage)).unwrap();
    let copies = Mutex::new(Vec::new());
    let modes = [
        CrashMode::Prefix,
        CrashMode::Subset,
        CrashMode::TornTail,
        CrashMode::Nothing,
        CrashMode::Everything,
    ];
    db.bulk_load(|w| {
        for (i, l) in lists.clone().into_iter().enumerate() {
            w.write(l)?;
            let mode = modes[i % modes.len()];
            copies
                .lock()
                .unwrap()
                .push((mode, storage.crash(mode, s + i as u64)));
        }
        Ok(())
    })
    .unwrap();
    let during = copies.into_inner().unwrap();
    assert!(during.len() > 3);
    for (i, (mode, copy)) in during.into_iter().enumerate() {
        let reopened = Db::open(opts(&copy)).unwrap_or_else(|e| panic!("copy {i} {mode:?}: {e}"));
        assert_eq!(key_count(&reopened), 0, "copy {i} {mode:?} (seed {s})");
        assert_eq!(reopened.levels().total_size_bytes(), 0, "copy {i} {mode:?}");
        let leftover = copy
            .list_dir(Path::new("/db"))
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".sst"))
            .count();
        assert_eq!(
            leftover, 0,
            "copy {i} {mode:?}: tables of the unfinished load remain"
        );
        reopened
            .bulk_load(|w| w.write(lists[0].clone()))
            .unwrap_or_else(|e| panic!("copy {i} {mode:?}: a new load fails: {e}"));
    }
    for mode in modes {
        let copy = storage.crash(mode, s);
        let reopened = Db::open(opts(&copy)).unwrap();
        assert!(
            content(&reopened) == want,
            "{mode:?}: the finished load is not whole"
        );
    }
}

#[test]
fn a_crash_while_the_load_ends_keeps_all_of_it_or_none() {
    // Proves that when the MANIFEST edit that ends the load fails to sync (then the process
    // dies), every crash copy reopens to either the whole load or nothing of it, never part.
    let s = seed(23);
    println!("seed {s}");
    let lists = source_backup(&mut StdRng::seed_from_u64(s));
    let want = source_content(&lists);
    for (i, mode) in [
        CrashMode::Prefix,
        CrashMode::Subset,
        CrashMode::TornTail,
        CrashMode::Nothing,
    ]
    .into_iter()
    .enumerate()
    {
        let storage = SimStorage::new();
        let db = Db::open(opts(&storage)).unwrap();
        let copy = Mutex::new(None);
        let r = db.bulk_load(|w| {
            for l in lists.clone() {
                w.write(l)?;
            }
            storage.inject(
                Fault::new(FaultOp::Sync, FaultKind::Eio)
                    .path_contains("MANIFEST")
                    .times(1),
            );
            Ok(())
        });
        assert!(
            r.is_err(),
            "{mode:?}: the failed MANIFEST sync fails the load"
        );
        *copy.lock().unwrap() = Some(storage.crash(mode, s + i as u64));
        let copy = copy.into_inner().unwrap().unwrap();
        let reopened = Db::open(opts(&copy)).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let got = content(&reopened);
        assert!(
            got.is_empty() || got == want,
            "{mode:?}: {} of {} KVs",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn a_load_writes_the_value_log_back_while_it_runs() {
    // Proves the bulk loader asks for background writeback as the write path does: once
    // more than 8 MiB of values are appended, the value-log file's durable bytes grow before
    // the load ends (its final sync), so that sync has little left to write. Without the
    // writeback nothing of the file but its header is durable until then.
    let storage = SimStorage::new();
    let db = Db::open(
        still_opts(&storage)
            .with_value_log_file_size(256 << 20)
            .with_mem_table_size(64 << 20),
    )
    .unwrap();
    let vlog = Path::new("/db/000001.vlog");
    let ((), _) = db
        .bulk_load(|w| {
            for part in 0..3u32 {
                let kvs = (0..4000u32)
                    .map(|i| kv_in(&format!("k{part}{i:05}"), 7, 1, 1000))
                    .collect();
                w.write(one_list(kvs))?;
            }
            let start = std::time::Instant::now();
            let durable = || storage.durable_bytes(vlog).map_or(0, |b| b.len());
            while durable() < 8 << 20 && start.elapsed() < std::time::Duration::from_secs(10) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert!(
                durable() >= 8 << 20,
                "durable value-log bytes during the load: {}",
                durable()
            );
            Ok(())
        })
        .unwrap();
}

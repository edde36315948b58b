//! Backup and load (Badger's format): the exact content Badger emits per key, round trips
//! against a model (backup -> load -> backup gives the same KVs), incremental backups chained
//! over several `since` values, every truncation and kinds of damage of a backup file, and
//! streams (parallel ranges give what one thread gives; prefix, choose_key, errors).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{seed, small_options};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::backup::pb::{Kv, KvList};
use settdb::backup::{write_frame, FrameReader, MAX_FRAME_LEN};
use settdb::io::{SimStorage, Storage};
use settdb::{Db, Entry, Error, IteratorOptions, Options};

fn opts(dir: &str) -> Options {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    small_options(Path::new(dir), storage).with_num_versions_to_keep(u32::MAX)
}

/// Every KV of a backup, sorted by key then version descending (ranges arrive in any order;
/// within a key the order is the stream's).
fn kvs_of(bytes: &[u8]) -> Vec<Kv> {
    let mut r = FrameReader::new(bytes);
    let mut per_key: BTreeMap<bytes::Bytes, Vec<Kv>> = BTreeMap::new();
    while let Some((_, list)) = r.next_frame().unwrap() {
        for mut kv in list.kv {
            assert!(
                kv.stream_id > 0,
                "a backup's KVs carry their range's stream id"
            );
            kv.stream_id = 0;
            per_key.entry(kv.key.clone()).or_default().push(kv);
        }
    }
    per_key.into_values().flatten().collect()
}

fn backup(db: &Db, since: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let next = db.backup(&mut out, since).unwrap();
    (out, next)
}

fn kv(key: &str, version: u64, value: &str, user_meta: u8, meta: u8, expires_at: u64) -> Kv {
    Kv {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        user_meta: vec![user_meta].into(),
        version,
        expires_at,
        meta: vec![meta].into(),
        ..Kv::default()
    }
}

#[test]
fn each_key_is_backed_up_as_badger_emits_it() {
    // Proves the per-key content of Badger's backup KeyToList: every version newest first
    // with user meta and meta; a delete ends the key with no value; an expired version keeps
    // its expiry, loses its value and ends the key; a version that discards earlier ones is
    // followed by a delete marker one version below (no user meta) and ends the key; internal
    // keys are not included; values in the value log are read (meta 0x02 never appears).
    let db = Db::open(opts("/exact")).unwrap();
    let a1 = db
        .update(|t| t.set_entry(Entry::new(&b"a"[..], &b"x"[..]).with_user_meta(7)))
        .map(|()| db.max_version())
        .unwrap();
    let a2 = db.set(&b"a"[..], vec![b'y'; 200]).unwrap();
    let b1 = db.set(&b"b"[..], &b"old"[..]).unwrap();
    let b2 = db.delete(&b"b"[..]).unwrap();
    let c1 = db.set(&b"c"[..], &b"c1"[..]).unwrap();
    db.update(|t| t.set_entry(Entry::new(&b"c"[..], &b"c2"[..]).with_discard()))
        .unwrap();
    let c2 = db.max_version();
    db.set(&b"d"[..], &b"live"[..]).unwrap();
    db.update(|t| t.set_entry(Entry::new(&b"d"[..], &b"gone"[..]).with_expires_at(1)))
        .unwrap();
    let d2 = db.max_version();
    let (bytes, next) = backup(&db, 0);
    assert_eq!(next, d2);
    let big = "y".repeat(200);
    let want = vec![
        kv("a", a2, &big, 0, 0, 0),
        kv("a", a1, "x", 7, 0, 0),
        kv("b", b2, "", 0, 1, 0),
        kv("c", c2, "c2", 0, 4, 0),
        Kv {
            key: b"c".to_vec().into(),
            version: c2 - 1,
            meta: vec![1].into(),
            ..Kv::default()
        },
        kv("d", d2, "", 0, 0, 1),
    ];
    assert_eq!(kvs_of(&bytes), want);
    assert!(b1 < b2 && c1 < c2);
    // Versions at or below `since` are left out (v4: exclusive); the returned `since` is
    // kept when nothing is newer.
    let (bytes, next) = backup(&db, a2);
    assert!(kvs_of(&bytes)
        .iter()
        .all(|kv| kv.version > a2 || kv.version == c2 - 1));
    assert_eq!(backup(&db, d2).1, d2);
    assert_eq!(next, d2);
}

/// A random history: sets (inline and value-log values, user meta, some with TTLs already
/// past or far ahead), deletes, and sets that discard earlier versions, with flushes so data
/// sits in memtables and tables.
fn random_history(db: &Db, rng: &mut StdRng, ops: usize) {
    for i in 0..ops {
        let k = format!("key{:04}", rng.random_range(0..300)).into_bytes();
        match rng.random_range(0..10) {
            0 => {
                db.delete(k).unwrap();
            }
            1 => db
                .update(|t| t.set_entry(Entry::new(k, vec![b'd'; 20]).with_discard()))
                .unwrap(),
            2 => {
                let exp = if rng.random_bool(0.5) {
                    1
                } else {
                    u64::MAX / 2
                };
                db.update(|t| t.set_entry(Entry::new(k, vec![b'e'; 10]).with_expires_at(exp)))
                    .unwrap()
            }
            _ => {
                let len = if rng.random_bool(0.3) { 300 } else { 12 };
                let v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let um: u8 = rng.random();
                db.update(|t| t.set_entry(Entry::new(k, v).with_user_meta(um)))
                    .unwrap()
            }
        }
        if i % 700 == 699 {
            db.flush().unwrap();
        }
    }
}

#[test]
fn backup_load_backup_gives_the_same_kvs() {
    // Proves a round trip keeps every KV (keys, values, versions, expiry, user meta, meta)
    // and the newest visible value of every key, and that load raises the next commit
    // timestamp above the versions it loaded.
    let s = seed(11);
    println!("seed {s}");
    let mut rng = StdRng::seed_from_u64(s);
    let src = Db::open(opts("/src")).unwrap();
    random_history(&src, &mut rng, 3000);
    let (bytes, since) = backup(&src, 0);
    let dst = Db::open(opts("/dst")).unwrap();
    let summary = dst.load(&mut bytes.as_slice(), 4).unwrap();
    assert_eq!(summary.max_version, since);
    assert_eq!(summary.bytes, bytes.len() as u64);
    assert_eq!(kvs_of(&backup(&dst, 0).0), kvs_of(&bytes));
    let newest = |db: &Db| -> Vec<(Vec<u8>, Vec<u8>)> {
        db.iter(IteratorOptions::default())
            .unwrap()
            .map(|i| {
                let i = i.unwrap();
                (i.key().to_vec(), i.value().unwrap())
            })
            .collect()
    };
    assert_eq!(newest(&dst), newest(&src));
    let v = dst.set(&b"after"[..], &b"x"[..]).unwrap();
    assert!(v > since, "a commit after load got {v}, not above {since}");
    // Survives a reopen.
    let dst_opts = dst.options().clone();
    dst.close().unwrap();
    drop(dst);
    let dst = Db::open(dst_opts).unwrap();
    assert_eq!(dst.get(b"after").unwrap(), Some(b"x".to_vec()));
    assert_eq!(newest(&dst).len(), newest(&src).len() + 1);
}

#[test]
fn incremental_backups_chain() {
    // Proves backups chained over several `since` values, loaded in order into an empty
    // database, give what one full backup gives.
    let s = seed(12);
    println!("seed {s}");
    let mut rng = StdRng::seed_from_u64(s);
    let src = Db::open(opts("/src")).unwrap();
    let dst = Db::open(opts("/dst")).unwrap();
    let mut since = 0;
    for _ in 0..4 {
        random_history(&src, &mut rng, 500);
        let (bytes, next) = backup(&src, since);
        assert!(kvs_of(&bytes)
            .iter()
            .all(|kv| kv.version > since || kv.meta.as_ref() == [1]));
        dst.load(&mut bytes.as_slice(), 2).unwrap();
        since = next;
    }
    assert_eq!(since, src.max_version());
    let (full, _) = backup(&src, 0);
    let (chained, _) = backup(&dst, 0);
    let (full, chained) = (kvs_of(&full), kvs_of(&chained));
    assert!(
        full == chained,
        "{} KVs in the full backup, {} after the chain",
        full.len(),
        chained.len()
    );
}

fn small_backup() -> (Vec<u8>, Vec<u64>) {
    // Three frames of a few KVs each; returns the bytes and the frame offsets.
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for f in 0..3u64 {
        let list = KvList {
            kv: (0..4u64)
                .map(|i| kv(&format!("k{f}{i}"), 10 * f + i + 1, "value", 0, 0, 0))
                .collect(),
            alloc_ref: 0,
        };
        offsets.push(out.len() as u64);
        write_frame(&mut out, &list, 0).unwrap();
    }
    (out, offsets)
}

fn keys(db: &Db) -> Vec<Vec<u8>> {
    db.iter(IteratorOptions::default())
        .unwrap()
        .map(|i| i.unwrap().key().to_vec())
        .collect()
}

#[test]
fn every_truncation_loads_the_whole_frames_before_it_and_names_the_cut_frame() {
    // Proves a backup cut at every byte offset either loads completely (cut at a frame
    // boundary) or fails with BadBackup naming the offset of the frame it cut, having loaded
    // exactly the frames before it.
    let (bytes, offsets) = small_backup();
    for cut in 0..bytes.len() {
        let db = Db::open(opts(&format!("/t{cut}"))).unwrap();
        let r = db.load(&mut &bytes[..cut], 1);
        let whole = offsets.iter().filter(|&&o| o < cut as u64).count();
        let frame_start = offsets.iter().rev().find(|&&o| o <= cut as u64).copied();
        match r {
            Ok(s) => {
                assert!(
                    offsets.contains(&(cut as u64)) || cut == 0,
                    "cut {cut} loaded"
                );
                assert_eq!(
                    s.frames as usize,
                    offsets.iter().filter(|&&o| o < cut as u64).count()
                );
                assert_eq!(keys(&db).len(), 4 * s.frames as usize);
            }
            Err(Error::BadBackup { offset, reason }) => {
                assert_eq!(Some(offset), frame_start, "cut {cut}");
                let in_length = (cut as u64) < offset + 8;
                let said = if in_length {
                    "inside a frame length"
                } else {
                    "inside the frame"
                };
                assert!(reason.contains(said), "cut {cut}: {reason}");
                assert_eq!(keys(&db).len(), 4 * (whole - 1), "cut {cut}");
            }
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
}

#[test]
fn damaged_frames_are_typed_errors_naming_their_offset() {
    // Proves: a length over the limit, bytes that are not a KVList, and KVs SettDB cannot
    // store (empty key, internal key, version 0, two-byte meta, unknown meta bits) each fail
    // with BadBackup at their frame's offset, after loading the frames before it and nothing
    // of the bad one.
    let (good, offsets) = small_backup();
    let second = offsets[1] as usize;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut huge = good[..second].to_vec();
    huge.extend_from_slice(&(MAX_FRAME_LEN + 1).to_le_bytes());
    huge.extend_from_slice(&good[second + 8..]);
    cases.push(("over the limit", huge));
    let mut garbage = good[..second].to_vec();
    garbage.extend_from_slice(&5u64.to_le_bytes());
    garbage.extend_from_slice(&[0xff; 5]);
    cases.push(("not a KVList", garbage));
    for (name, bad_kv) in [
        ("empty key", kv("", 5, "v", 0, 0, 0)),
        ("internal key", kv("!settdb!x", 5, "v", 0, 0, 0)),
        ("version 0", kv("z", 0, "v", 0, 0, 0)),
        (
            "two-byte meta",
            Kv {
                meta: vec![0, 0].into(),
                ..kv("z", 5, "v", 0, 0, 0)
            },
        ),
        ("unknown meta bit", kv("z", 5, "v", 0, 0x10, 0)),
    ] {
        let mut b = good[..second].to_vec();
        let list = KvList {
            kv: vec![kv("fine", 3, "v", 0, 0, 0), bad_kv],
            alloc_ref: 0,
        };
        write_frame(&mut b, &list, 0).unwrap();
        cases.push((name, b));
    }
    for (i, (name, bytes)) in cases.into_iter().enumerate() {
        let db = Db::open(opts(&format!("/d{i}"))).unwrap();
        match db.load(&mut bytes.as_slice(), 1) {
            Err(Error::BadBackup { offset, reason }) => {
                assert_eq!(offset, second as u64, "{name}: {reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(keys(&db).len(), 4, "{name}: only the first frame is loaded");
    }
}

#[test]
fn load_drops_the_value_pointer_and_transaction_bits_and_keeps_the_others() {
    // Proves meta 0x02 (Badger leaves it set when the value lived in its value log) and the
    // transaction bits are cleared, the value is stored as given, and delete and discard
    // bits are kept (the delete hides the key; stream_done KVs carry nothing and are skipped).
    let list = KvList {
        kv: vec![
            kv("p", 5, "inline", 3, 0x02 | 0x40 | 0x80, 0),
            kv("q", 6, "", 0, 0x01, 0),
            kv("q", 4, "old", 0, 0, 0),
            Kv {
                stream_done: true,
                ..Kv::default()
            },
        ],
        alloc_ref: 0,
    };
    let mut bytes = Vec::new();
    write_frame(&mut bytes, &list, 0).unwrap();
    let db = Db::open(opts("/meta")).unwrap();
    let s = db.load(&mut bytes.as_slice(), 1).unwrap();
    assert_eq!((s.kvs, s.max_version), (3, 6));
    assert_eq!(db.get(b"p").unwrap(), Some(b"inline".to_vec()));
    assert_eq!(db.get(b"q").unwrap(), None);
    assert_eq!(db.get_at(b"q", 5).unwrap(), Some(b"old".to_vec()));
    let back = kvs_of(&backup(&db, 0).0);
    assert_eq!(back[0], kv("p", 5, "inline", 3, 0, 0));
    assert_eq!(back[1], kv("q", 6, "", 0, 1, 0));
    assert_eq!(back.len(), 2);
}

#[test]
fn a_frame_decodes_as_the_protobuf_it_was_written_from() {
    // Proves the frame layout: an 8-byte little-endian length, then exactly that many bytes
    // of the encoded KVList.
    let list = KvList {
        kv: vec![kv("k", 9, "v", 1, 0, 77)],
        alloc_ref: 0,
    };
    let mut b = Vec::new();
    let n = write_frame(&mut b, &list, 0).unwrap();
    assert_eq!(n as usize, b.len());
    let len = u64::from_le_bytes(b[..8].try_into().unwrap());
    assert_eq!(len as usize, b.len() - 8);
    assert_eq!(KvList::decode(&b[8..]).unwrap(), list);
}

#[test]
fn streams_with_many_threads_give_what_one_thread_gives() {
    // Proves that splitting the key space over 4 threads yields every key exactly once, as one
    // thread does, with prefix and choose_key applied, and that an error from `send` stops
    // the stream and is returned.
    let s = seed(13);
    println!("seed {s}");
    let mut rng = StdRng::seed_from_u64(s);
    let db = Db::open(opts("/stream")).unwrap();
    random_history(&db, &mut rng, 3000);
    // Enough inline data for many tables, so the key space is cut into many ranges.
    for chunk in 0..20u32 {
        let mut b = db.new_write_batch().unwrap();
        for i in 0..1000u32 {
            b.set(
                format!("fill{:06}", chunk * 1000 + i).into_bytes(),
                vec![b'f'; 40],
            )
            .unwrap();
        }
        b.flush().unwrap();
    }
    db.flatten().unwrap();
    let levels = db.levels();
    let most = (0..levels.level_count())
        .map(|l| levels.tables(l).len())
        .max();
    assert!(most > Some(3), "tables per level: {most:?}");
    let collect = |threads: usize, prefix: &str| {
        let mut got = Vec::new();
        let summary = db
            .stream()
            .num_threads(threads)
            .prefix(prefix.as_bytes().to_vec())
            .choose_key(|item| item.key().last() != Some(&b'7'))
            .max_batch_bytes(1000)
            .run(|list| {
                got.extend(list.kv);
                Ok(())
            })
            .unwrap();
        got.sort_by(|a, b| a.key.cmp(&b.key).then(b.version.cmp(&a.version)));
        assert!(summary.batches > 1 || !prefix.is_empty(), "{summary:?}");
        got
    };
    let one = collect(1, "");
    assert_eq!(collect(4, ""), one);
    assert!(one.iter().all(|kv| kv.key.last() != Some(&b'7')));
    // The default key_to_list gives the live versions: the newest values match.
    let newest: BTreeMap<Vec<u8>, Vec<u8>> = db
        .iter(IteratorOptions::default())
        .unwrap()
        .map(|i| i.unwrap())
        .filter(|i| i.key().last() != Some(&b'7'))
        .map(|i| (i.key().to_vec(), i.value().unwrap()))
        .collect();
    let mut first: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for kv in &one {
        first.entry(kv.key.to_vec()).or_insert(kv.value.to_vec());
    }
    assert_eq!(first, newest);
    let pre = collect(4, "key01");
    assert!(!pre.is_empty() && pre.iter().all(|kv| kv.key.starts_with(b"key01")));
    assert_eq!(
        pre,
        one.iter()
            .filter(|kv| kv.key.starts_with(b"key01"))
            .cloned()
            .collect::<Vec<_>>()
    );
    let mut calls = 0;
    let r = db.stream().num_threads(4).max_batch_bytes(100).run(|_| {
        calls += 1;
        Err(Error::InvalidRequest("stop here"))
    });
    assert!(matches!(r, Err(Error::InvalidRequest("stop here"))));
    assert_eq!(calls, 1);
}

#[test]
fn a_database_of_one_table_is_streamed_by_several_ranges() {
    // Proves a database whose data is one table (a fresh bulk write before any compaction) is
    // still cut into several ranges (at the table's block boundaries), so several threads
    // share it: done markers name at least 8 ranges (16 asked), every key
    // comes exactly once, in order within its range, the ranges hold disjoint runs of keys,
    // and the value-log values arrive intact.
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let db = Db::open(
        small_options(Path::new("/one-table"), storage)
            .with_mem_table_size(16 << 20)
            .with_base_table_size(16 << 20)
            .with_base_level_size(64 << 20)
            .with_value_log_file_size(16 << 20),
    )
    .unwrap();
    let n = 6000u32;
    let value = |i: u32| format!("{i:08}").repeat(12).into_bytes();
    for chunk in 0..6 {
        let mut b = db.new_write_batch().unwrap();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            b.set(format!("key{i:06}").into_bytes(), value(i)).unwrap();
        }
        b.flush().unwrap();
    }
    db.flush().unwrap();
    let levels = db.levels();
    let tables: usize = (0..levels.level_count())
        .map(|l| levels.tables(l).len())
        .sum();
    assert_eq!(tables, 1, "the test needs one table");
    let mut per_range: BTreeMap<u32, Vec<Kv>> = BTreeMap::new();
    db.stream()
        .num_threads(2)
        .done_markers(true)
        .run(|list| {
            for kv in list.kv {
                per_range.entry(kv.stream_id).or_default().push(kv);
            }
            Ok(())
        })
        .unwrap();
    let mut runs: Vec<(bytes::Bytes, bytes::Bytes)> = Vec::new();
    let mut all = Vec::new();
    for kvs in per_range.values() {
        let (done, kvs) = kvs.split_last().unwrap();
        assert!(done.stream_done && done.key.is_empty(), "{done:?}");
        // The range before the table's first key holds nothing.
        if kvs.is_empty() {
            continue;
        }
        assert!(kvs.windows(2).all(|w| w[0].key < w[1].key));
        runs.push((kvs[0].key.clone(), kvs[kvs.len() - 1].key.clone()));
        all.extend(kvs.iter().cloned());
    }
    assert!(runs.len() >= 8, "ranges holding keys: {}", runs.len());
    runs.sort();
    assert!(runs.windows(2).all(|w| w[0].1 < w[1].0), "{runs:?}");
    all.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(all.len(), n as usize);
    for (i, kv) in (0..n).zip(&all) {
        assert_eq!(kv.key.as_ref(), format!("key{i:06}").as_bytes());
        assert_eq!(kv.value.as_ref(), value(i).as_slice());
    }
}

#[test]
fn a_badger_v4_backup_loads() {
    // Proves what Badger v4's backups add over v2's (from its sources: badgerpb4.KVList's
    // alloc_ref = 10, stream ids per range, meta 0x02 left set for values that lived in its
    // value log, 0x04 with the synthetic delete marker below it) loads: alloc_ref is ignored,
    // the meta bits are taken as documented, and the content backs up again the same.
    let frame1 = KvList {
        kv: vec![
            Kv {
                stream_id: 3,
                ..kv("v4/a", 20, "vlog value", 9, 0x02, 0)
            },
            Kv {
                stream_id: 3,
                ..kv("v4/b", 19, "discarding", 0, 0x04 | 0x02, 0)
            },
            Kv {
                key: b"v4/b".to_vec().into(),
                version: 18,
                meta: vec![1].into(),
                stream_id: 3,
                ..Kv::default()
            },
        ],
        alloc_ref: 0xdead_beef,
    };
    let frame2 = KvList {
        kv: vec![Kv {
            stream_id: 1,
            ..kv("v4/0", 5, "", 0, 0x01, 0)
        }],
        alloc_ref: 7,
    };
    let mut bytes = Vec::new();
    for f in [&frame1, &frame2] {
        write_frame(&mut bytes, f, 0).unwrap();
    }
    let db = Db::open(opts("/v4")).unwrap();
    let s = db.load(&mut bytes.as_slice(), 8).unwrap();
    assert_eq!((s.frames, s.kvs, s.max_version), (2, 4, 20));
    assert_eq!(db.get(b"v4/a").unwrap(), Some(b"vlog value".to_vec()));
    assert_eq!(db.get(b"v4/b").unwrap(), Some(b"discarding".to_vec()));
    assert_eq!(db.get_at(b"v4/b", 18).unwrap(), None);
    assert_eq!(db.get(b"v4/0").unwrap(), None);
    let back = kvs_of(&backup(&db, 0).0);
    let want = vec![
        kv("v4/0", 5, "", 0, 0x01, 0),
        kv("v4/a", 20, "vlog value", 9, 0, 0),
        kv("v4/b", 19, "discarding", 0, 0x04, 0),
        Kv {
            key: b"v4/b".to_vec().into(),
            version: 18,
            meta: vec![1].into(),
            ..Kv::default()
        },
    ];
    assert_eq!(back, want);
}

#[test]
fn a_managed_database_streams_at_the_timestamp_it_picks() {
    // Proves a managed database's backup (which reads at a new timestamp) is refused with an
    // error naming stream_at, and that stream_at reads exactly the versions at or below its
    // timestamp.
    let db = Db::open_managed(opts("/managed")).unwrap();
    for ts in [10u64, 20] {
        let mut t = db.new_transaction_at(ts - 1, true).unwrap();
        t.set(format!("k{ts}").into_bytes(), b"v".to_vec()).unwrap();
        t.commit_at(ts).unwrap();
    }
    let r = db.backup(&mut Vec::new(), 0);
    assert!(
        matches!(r, Err(Error::InvalidRequest(m)) if m.contains("stream_at")),
        "{r:?}"
    );
    let mut got = Vec::new();
    let s = db
        .stream_at(15)
        .run(|l| {
            got.extend(l.kv.into_iter().map(|kv| (kv.key.to_vec(), kv.version)));
            Ok(())
        })
        .unwrap();
    assert_eq!(got, vec![(b"k10".to_vec(), 10)]);
    assert_eq!((s.read_ts, s.kvs, s.max_version), (15, 1, 10));
}

#[test]
fn progress_reports_add_up_to_what_was_written_and_read() {
    // Proves backup_with_progress reports, after the last frame, exactly the frames, KVs and
    // bytes written (and returns what backup returns), and load_with_progress's last report
    // equals the summary load returns.
    let s = seed(14);
    println!("seed {s}");
    let src = Db::open(opts("/progress")).unwrap();
    random_history(&src, &mut StdRng::seed_from_u64(s), 1500);
    let mut out = Vec::new();
    let mut last = settdb::BackupProgress::default();
    let mut calls = 0;
    let next = src
        .backup_with_progress(&mut out, 0, |p| {
            calls += 1;
            last = *p;
        })
        .unwrap();
    assert_eq!(next, src.max_version());
    assert_eq!(last.bytes, out.len() as u64);
    assert_eq!(last.frames, calls);
    let frames = {
        let mut r = FrameReader::new(out.as_slice());
        let mut n = (0u64, 0u64);
        while let Some((_, l)) = r.next_frame().unwrap() {
            n = (n.0 + 1, n.1 + l.kv.len() as u64);
        }
        n
    };
    assert_eq!((last.frames, last.kvs), frames);
    let dst = Db::open(opts("/progress2")).unwrap();
    let mut seen = settdb::LoadSummary::default();
    let summary = dst
        .load_with_progress(&mut out.as_slice(), 3, |p| seen = *p)
        .unwrap();
    assert_eq!(summary.frames, frames.0);
    assert_eq!(summary.kvs, frames.1);
    assert_eq!(summary.bytes, out.len() as u64);
    assert_eq!((seen.frames, seen.bytes), (summary.frames, summary.bytes));
    assert_eq!(summary.max_version, next);
}

#[test]
fn a_load_splits_its_writes_to_fit_the_value_log_and_batch_limits() {
    // Proves one frame holding 3 MiB of value-log values (the value-log file is 1 MiB here, and
    // one write's values must fit one file) and more entries than one write may hold loads
    // whole: the loader cuts its writes by count, bytes and value-log bytes.
    let o = opts("/split");
    let many = o.max_batch_count() as usize + 10;
    let mut kvs: Vec<Kv> = (0..4000u32)
        .map(|i| kv(&format!("big{i:05}"), 5, &"x".repeat(800), 0, 0, 0))
        .collect();
    kvs.extend((0..many).map(|i| kv(&format!("small{i:07}"), 6, "s", 0, 0, 0)));
    let mut bytes = Vec::new();
    write_frame(
        &mut bytes,
        &KvList {
            kv: kvs,
            alloc_ref: 0,
        },
        0,
    )
    .unwrap();
    let db = Db::open(o).unwrap();
    let s = db.load(&mut bytes.as_slice(), 4).unwrap();
    assert_eq!(s.kvs as usize, 4000 + many);
    assert_eq!(db.get(b"big03999").unwrap(), Some(vec![b'x'; 800]));
    assert_eq!(
        db.iter(IteratorOptions::default()).unwrap().count(),
        4000 + many
    );
}

#[test]
fn a_custom_key_to_list_gets_values_through_current_value() {
    // Proves KeyVersions::current_value gives the value of the version next_version returned
    // (value-log and inline values alike), refuses to run before next_version returned one or
    // after the versions ran out, and key_bytes gives the key.
    let db = Db::open(opts("/custom")).unwrap();
    db.set(b"big".to_vec(), vec![b'b'; 500]).unwrap();
    db.set(b"big".to_vec(), vec![b'c'; 600]).unwrap();
    db.set(b"small".to_vec(), b"s".to_vec()).unwrap();
    let mut got = Vec::new();
    db.stream()
        .key_to_list(|v| {
            assert!(matches!(v.current_value(), Err(Error::InvalidRequest(_))));
            let key = v.key_bytes();
            let mut out = Vec::new();
            while let Some(item) = v.next_version()? {
                let version = item.version();
                out.push(Kv {
                    key: key.clone(),
                    value: v.current_value()?,
                    version,
                    ..Kv::default()
                });
            }
            assert!(matches!(v.current_value(), Err(Error::InvalidRequest(_))));
            Ok(out)
        })
        .run(|list| {
            got.extend(list.kv);
            Ok(())
        })
        .unwrap();
    got.sort_by(|a, b| a.key.cmp(&b.key).then(b.version.cmp(&a.version)));
    let shown: Vec<(&[u8], usize, u8)> = got
        .iter()
        .map(|kv| (kv.key.as_ref(), kv.value.len(), kv.value[0]))
        .collect();
    assert_eq!(
        shown,
        vec![
            (&b"big"[..], 600, b'c'),
            (&b"big"[..], 500, b'b'),
            (&b"small"[..], 1, b's')
        ]
    );
}

#[test]
fn the_default_key_to_list_keeps_user_meta_expiry_and_versions() {
    // Proves live_versions (the default key_to_list) gives each live version with its value,
    // user meta, expiry and version, newest first, stops at a delete, and keeps only the
    // newest when num_versions_to_keep is 1.
    let db = Db::open(opts("/live")).unwrap();
    let far = 4_000_000_000u64;
    db.update(|t| t.set_entry(Entry::new(&b"k"[..], vec![b'o'; 300]).with_user_meta(3)))
        .unwrap();
    let v1 = db.max_version();
    db.update(|t| {
        t.set_entry(
            Entry::new(&b"k"[..], &b"new"[..])
                .with_user_meta(9)
                .with_expires_at(far),
        )
    })
    .unwrap();
    let v2 = db.max_version();
    db.set(&b"gone"[..], &b"x"[..]).unwrap();
    db.delete(&b"gone"[..]).unwrap();
    let collect = |db: &Db| {
        let mut got = Vec::new();
        db.stream()
            .run(|list| {
                got.extend(list.kv);
                Ok(())
            })
            .unwrap();
        got.into_iter()
            .map(|kv| {
                (
                    kv.key.to_vec(),
                    kv.version,
                    kv.value.len(),
                    kv.user_meta.to_vec(),
                    kv.expires_at,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        collect(&db),
        vec![
            (b"k".to_vec(), v2, 3, vec![9], far),
            (b"k".to_vec(), v1, 300, vec![3], 0),
        ]
    );
    db.close().unwrap();
    let storage: Arc<dyn Storage> = db.options().storage.clone();
    let one =
        Db::open(small_options(Path::new("/live"), storage).with_num_versions_to_keep(1)).unwrap();
    assert_eq!(collect(&one), vec![(b"k".to_vec(), v2, 3, vec![9], far)]);
}

//! The database iterator end to end: a seeded random model test over writes, deletes, TTLs,
//! flushes and compactions with random iterator options; seeks both ways; values through the
//! value log; snapshot isolation while writes, flushes and compactions go on; table pruning
//! by prefix and since_ts; and typed errors from a damaged table.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use common::{seed, small_options, value_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::{SimStorage, Storage};
use settdb::Entry;
use settdb::{Db, DbIterator, IteratorOptions};

const DIR: &str = "/db";
/// Value threshold of the model test.
const VALUE_THRESHOLD: u64 = 256;

/// One version in the model.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ver {
    /// `None` for a delete.
    value: Option<Vec<u8>>,
    expired: bool,
    user_meta: u8,
    discard: bool,
}

impl Ver {
    fn dead(&self) -> bool {
        self.value.is_none() || self.expired
    }
}

/// key -> version -> what was written.
type Model = BTreeMap<Vec<u8>, BTreeMap<u64, Ver>>;

/// What one item showed: key, version, deleted or expired, value, user meta, discard bit.
type Obs = (Vec<u8>, u64, bool, Vec<u8>, u8, bool);

/// Small options without automatic value-log GC: these models expect every version they
/// wrote to stay readable through all-versions iteration, and GC may retire the value of a
/// version no reader can see (an all-versions iterator then leaves it out).
fn iter_options(storage: Arc<dyn settdb::io::Storage>) -> settdb::Options {
    small_options(Path::new(DIR), storage).with_auto_value_log_gc(false)
}

fn obs_of(item: &settdb::Item) -> Obs {
    (
        item.key().to_vec(),
        item.version(),
        item.is_deleted_or_expired(),
        item.value().expect("value read"),
        item.user_meta(),
        item.discard_earlier_versions(),
    )
}

fn expected_obs(key: &[u8], v: u64, ver: &Ver) -> Obs {
    let value = ver.value.clone().unwrap_or_default();
    (
        key.to_vec(),
        v,
        ver.dead(),
        value,
        ver.user_meta,
        ver.discard,
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Writes each (key, version content) in one batch; returns the version.
fn write(db: &Db, batch: &[(Vec<u8>, Ver)]) -> u64 {
    let entries: Vec<Entry> = batch
        .iter()
        .map(|(k, ver)| {
            let e = match (&ver.value, ver.discard) {
                (None, _) => Entry::delete(k),
                (Some(v), true) => Entry::new(k, v).with_discard(),
                (Some(v), false) => Entry::new(k, v),
            };
            e.with_user_meta(ver.user_meta).with_expires_at(
                match (ver.expired, ver.user_meta % 3) {
                    (true, _) => 1,
                    (false, 0) => unix_now() + 86_400,
                    (false, _) => 0,
                },
            )
        })
        .collect();
    db.write(entries).unwrap()
}

/// Writes `batch` and records it in `model`.
fn write_model(db: &Db, model: &mut Model, batch: Vec<(Vec<u8>, Ver)>) {
    let v = write(db, &batch);
    for (k, ver) in batch {
        model.entry(k).or_default().insert(v, ver);
    }
}

fn collect(it: &mut DbIterator) -> Vec<Obs> {
    let mut out = Vec::new();
    while it.valid() {
        out.push(obs_of(it.item()));
        it.next().unwrap();
    }
    out
}

/// What the iterator must yield, assuming every written version is still stored.
fn expected(model: &Model, o: &IteratorOptions) -> Vec<Obs> {
    let mut out = Vec::new();
    for (key, versions) in model.range(o.prefix.clone()..) {
        if !key.starts_with(&o.prefix) {
            break;
        }
        let visible = versions.iter().rev().filter(|(v, _)| **v > o.since_ts);
        if o.all_versions {
            out.extend(visible.map(|(v, ver)| expected_obs(key, *v, ver)));
        } else if let Some((v, ver)) = visible.take(1).find(|(_, ver)| !ver.dead()) {
            out.push(expected_obs(key, *v, ver));
        }
    }
    if o.reverse {
        out.reverse();
    }
    out
}

/// Checks `all_versions` output after compactions that may have dropped old versions: each
/// item is a model version, keys and versions come in iteration order, and every key whose
/// newest version is live and above `since_ts` shows that version.
fn check_relaxed(got: &[Obs], model: &Model, o: &IteratorOptions, ctx: &str) {
    let order = |a: &Obs, b: &Obs| {
        let fwd = a.0 < b.0 || (a.0 == b.0 && a.1 > b.1);
        if o.reverse {
            !fwd && a != b
        } else {
            fwd
        }
    };
    for w in got.windows(2) {
        assert!(
            order(&w[0], &w[1]),
            "{ctx}: out of order {:?} {:?}",
            w[0],
            w[1]
        );
    }
    for g in got {
        let ver = model.get(&g.0).and_then(|vs| vs.get(&g.1));
        let want = ver.map(|ver| expected_obs(&g.0, g.1, ver));
        assert_eq!(Some(g), want.as_ref(), "{ctx}: item not in the model");
        assert!(
            g.0.starts_with(&o.prefix) && g.1 > o.since_ts,
            "{ctx}: {g:?}"
        );
    }
    let shown: BTreeSet<(&[u8], u64)> = got.iter().map(|g| (&g.0[..], g.1)).collect();
    for (key, versions) in model.range(o.prefix.clone()..) {
        if !key.starts_with(&o.prefix) {
            break;
        }
        if let Some((v, ver)) = versions.iter().next_back() {
            if *v > o.since_ts && !ver.dead() {
                assert!(
                    shown.contains(&(&key[..], *v)),
                    "{ctx}: {key:?}@{v} missing"
                );
            }
        }
    }
}

/// After `flatten` only the newest version of each key survives, and only if live.
fn flatten_model(model: &mut Model) {
    model.retain(|_, versions| {
        let newest = versions.pop_last().filter(|(_, ver)| !ver.dead());
        versions.clear();
        versions.extend(newest);
        !versions.is_empty()
    });
}

/// What a flush leaves of the versions written after `flushed_ts` (all in the one memtable it
/// writes; nothing reads, so the discard timestamp is the newest commit): with one version to
/// keep, only each key's newest one, a tombstone or expired value included.
fn flush_model(model: &mut Model, flushed_ts: u64) {
    for versions in model.values_mut() {
        if let Some((&newest, _)) = versions.last_key_value() {
            versions.retain(|&v, _| v <= flushed_ts || v == newest);
        }
    }
}

fn random_opts(rng: &mut StdRng, max_version: u64) -> IteratorOptions {
    let prefixes: [&[u8]; 6] = [b"", b"k", b"k1", b"k01", b"k002", b"x"];
    IteratorOptions::default()
        .with_reverse(rng.random_bool(0.5))
        .with_all_versions(rng.random_bool(0.4))
        .with_prefetch_values(rng.random_bool(0.5))
        .with_prefix(prefixes[rng.random_range(0..prefixes.len())].to_vec())
        .with_since_ts(if rng.random_bool(0.5) {
            0
        } else {
            rng.random_range(0..=max_version)
        })
}

fn random_ver(rng: &mut StdRng, key: &[u8], step: u64) -> Ver {
    let len = if rng.random_bool(0.2) {
        rng.random_range(VALUE_THRESHOLD as usize..600)
    } else {
        rng.random_range(0..VALUE_THRESHOLD as usize)
    };
    match rng.random_range(0..10) {
        0..=1 => Ver {
            value: None,
            expired: false,
            user_meta: 0,
            discard: false,
        },
        2 => Ver {
            value: Some(value_for(key, step, len)),
            expired: true,
            user_meta: 1,
            discard: false,
        },
        n => Ver {
            value: Some(value_for(key, step, len)),
            expired: false,
            user_meta: n as u8,
            discard: n == 9,
        },
    }
}

/// One random check: the whole iteration, then a seek, against the model.
fn check(db: &Db, model: &Model, exact: bool, rng: &mut StdRng, ctx: &str) {
    let o = random_opts(rng, db.max_version());
    let probe = format!("k{:04}", rng.random_range(0..3300)).into_bytes();
    check_opts(db, model, exact, o, &probe, ctx);
}

/// The whole iteration with `o`, then from a seek to `probe`, against the model (`exact`:
/// every written version is still stored).
fn check_opts(db: &Db, model: &Model, exact: bool, o: IteratorOptions, probe: &[u8], ctx: &str) {
    let mut it = db.iter(o.clone()).unwrap();
    it.rewind().unwrap();
    let got = collect(&mut it);
    let ctx = format!("{ctx} opts {o:?} exact {exact}");
    let want = expected(model, &o);
    if exact || !o.all_versions {
        assert_eq!(got, want, "{ctx}");
    } else {
        check_relaxed(&got, model, &o, &ctx);
    }
    it.seek(probe).unwrap();
    let from_probe = collect(&mut it);
    let want: Vec<Obs> = got
        .into_iter()
        .filter(|g| {
            if o.reverse {
                g.0.as_slice() <= probe
            } else {
                g.0.as_slice() >= probe
            }
        })
        .collect();
    assert_eq!(from_probe, want, "{ctx} seek {probe:?}");
}

fn run_model(seed: u64, steps: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Inline values up to 255 bytes and level targets growing 2x: a few hundred KiB spread
    // over several tables in several levels.
    let opts = iter_options(Arc::new(SimStorage::new()))
        .with_num_compactors(0)
        .with_value_threshold(VALUE_THRESHOLD)
        .with_level_size_multiplier(2);
    let db = Db::open(opts).unwrap();
    let mut model = Model::new();
    // Exact until a compaction that may keep some old versions and drop others.
    let mut exact = true;
    // The newest version at the last flush, and L0's tables after it.
    let (mut flushed_ts, mut l0_tables) = (0u64, 0usize);
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        let draw = rng.random_range(0..1000);
        match draw {
            0..=849 => {
                let n = rng.random_range(1..=8);
                let keys: BTreeSet<Vec<u8>> = (0..n)
                    .map(|_| format!("k{:04}", rng.random_range(0..3000)).into_bytes())
                    .collect();
                let batch = keys
                    .into_iter()
                    .map(|k| {
                        let ver = random_ver(&mut rng, &k, step);
                        (k, ver)
                    })
                    .collect();
                write_model(&db, &mut model, batch);
            }
            850..=939 => check(&db, &model, exact, &mut rng, &ctx),
            940..=996 => {
                // The model knows what a flush drops only if this flush writes every version
                // since the last one: no memtable filled up and flushed in between.
                assert_eq!(
                    db.levels().tables(0).len(),
                    l0_tables,
                    "{ctx}: a memtable filled"
                );
                db.flush().unwrap();
                flush_model(&mut model, flushed_ts);
                flushed_ts = db.max_version();
                l0_tables = db.levels().tables(0).len();
                if draw >= 970 {
                    db.compact_until_settled().unwrap();
                    l0_tables = db.levels().tables(0).len();
                    exact = false;
                }
            }
            _ => {
                db.flatten().unwrap();
                flatten_model(&mut model);
                flushed_ts = db.max_version();
                l0_tables = 0;
                exact = true;
            }
        }
    }
    for _ in 0..10 {
        check(&db, &model, exact, &mut rng, &format!("seed {seed} end"));
    }
    db.close().unwrap();
}

#[test]
fn random_operations_match_the_model() {
    // Proves every iterator option combination (direction, all_versions, prefix, since_ts,
    // prefetch) and seeks yield exactly the model's items over data spread across memtables,
    // L0 and deeper levels, including deletes, expired and live TTLs and value-log values.
    let s = seed(0x17e2_a70b);
    for i in 0..2 {
        run_model(s.wrapping_add(i), 2000);
    }
}

fn put(key: &[u8], tag: u64, len: usize) -> (Vec<u8>, Ver) {
    let ver = Ver {
        value: Some(value_for(key, tag, len)),
        expired: false,
        user_meta: tag as u8,
        discard: false,
    };
    (key.to_vec(), ver)
}

fn layer_key(i: u32) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

/// Overwrites every `every`-th key of `0..n` in batches of 100: deletes, expired TTLs, live
/// TTLs, value-log values and inline ones, by turns.
fn overwrite(db: &Db, model: &mut Model, n: u32, every: u32, tag: u64) {
    let keys: Vec<u32> = (0..n).step_by(every as usize).collect();
    for chunk in keys.chunks(100) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let (k, mut ver) = put(&layer_key(i), tag, 40 + (i as usize % 3) * 200);
                match (i / every) % 5 {
                    0 => ver.value = None,
                    1 => ver.expired = true,
                    2 => ver.user_meta = 3, // a live TTL
                    _ => {}
                }
                (k, ver)
            })
            .collect();
        write_model(db, model, batch);
    }
}

#[test]
fn data_in_every_layer_reads_like_the_model() {
    // Proves exact items for every option combination over one state holding versions of the
    // same keys in the memtable, L0, an intermediate level and the last level at once.
    let opts = iter_options(Arc::new(SimStorage::new()))
        .with_num_compactors(0)
        .with_value_threshold(VALUE_THRESHOLD)
        .with_level_size_multiplier(2);
    let db = Db::open(opts).unwrap();
    let mut model = Model::new();
    const N: u32 = 6000;
    let all: Vec<u32> = (0..N).collect();
    for chunk in all.chunks(100) {
        let batch = chunk.iter().map(|&i| put(&layer_key(i), 1, 200)).collect();
        write_model(&db, &mut model, batch);
    }
    db.flatten().unwrap();
    let mut stamps = vec![0, db.max_version()];
    // Two L0 tables: enough for an L0 compaction into the base level, above the last.
    overwrite(&db, &mut model, N, 3, 2);
    db.flush().unwrap();
    overwrite(&db, &mut model, N, 4, 5);
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    stamps.push(db.max_version());
    overwrite(&db, &mut model, N, 5, 3);
    db.flush().unwrap();
    stamps.push(db.max_version());
    overwrite(&db, &mut model, N, 7, 4);
    let levels = db.levels();
    let per_level: Vec<usize> = (0..levels.level_count())
        .map(|l| levels.tables(l).len())
        .collect();
    let last = per_level.len() - 1;
    assert!(per_level[0] > 0 && per_level[last] > 1, "{per_level:?}");
    assert!(per_level[1..last].iter().any(|&n| n > 0), "{per_level:?}");
    let prefixes: [&[u8]; 4] = [b"", b"k1", b"k004", b"k59"];
    for reverse in [false, true] {
        for all_versions in [false, true] {
            for prefix in prefixes {
                for &since in &stamps {
                    let o = IteratorOptions::default()
                        .with_reverse(reverse)
                        .with_all_versions(all_versions)
                        .with_prefix(prefix.to_vec())
                        .with_since_ts(since);
                    let ctx = format!("levels {per_level:?}");
                    check_opts(&db, &model, false, o, b"k3000", &ctx);
                }
            }
        }
    }
}

fn sst_files(sim: &SimStorage) -> BTreeSet<String> {
    sim.list_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect()
}

fn fill(db: &Db, keys: u32, tag: u64) {
    for chunk in (0..keys).collect::<Vec<_>>().chunks(100) {
        let entries: Vec<Entry> = chunk
            .iter()
            .map(|i| {
                let key = format!("key{i:05}").into_bytes();
                // Every third value goes to the value log (threshold 64).
                let len = if i % 3 == 0 { 200 } else { 20 };
                let value = value_for(&key, tag, len);
                Entry::new(key, value)
            })
            .collect();
        db.write(entries).unwrap();
    }
}

#[test]
fn an_iterator_keeps_its_snapshot_while_the_database_changes() {
    // Proves an iterator's items and values do not change while every key is overwritten or
    // deleted, flushed and compacted away under it (half read before, half after), that the
    // table files it reads stay on disk until it is dropped, and that they go then.
    let sim = SimStorage::new();
    let opts = iter_options(Arc::new(sim.clone())).with_num_compactors(0);
    let db = Db::open(opts).unwrap();
    fill(&db, 3000, 1);
    db.flatten().unwrap();
    fill(&db, 1000, 2); // the first 1000 keys again: L0 and the memtable
    db.flush().unwrap();
    fill(&db, 300, 3);
    let opts = IteratorOptions::default().with_prefetch_values(false);
    let want: Vec<Obs> = {
        let mut it = db.iter(opts.clone()).unwrap();
        it.rewind().unwrap();
        collect(&mut it)
    };
    assert_eq!(want.len(), 3000);
    let mut it = db.iter(opts).unwrap();
    it.rewind().unwrap();
    let mut got = Vec::new();
    for _ in 0..1500 {
        got.push(obs_of(it.item()));
        it.next().unwrap();
    }
    let held = sst_files(&sim);
    fill(&db, 3000, 4);
    for i in (0..3000).step_by(7) {
        db.delete(format!("key{i:05}").into_bytes()).unwrap();
    }
    db.flatten().unwrap();
    assert!(
        held.is_subset(&sst_files(&sim)),
        "tables deleted under an iterator"
    );
    got.extend(collect(&mut it));
    assert_eq!(got, want);
    drop(it);
    let live: BTreeSet<String> = sst_files(&sim);
    let levels = db.levels();
    let current = (0..levels.level_count())
        .flat_map(|l| levels.tables(l).iter())
        .count();
    assert_eq!(
        live.len(),
        current,
        "obsolete tables left after the iterator dropped"
    );
    db.close().unwrap();
}

#[test]
fn seeks_land_on_the_nearest_key_in_both_directions() {
    // Proves forward seek finds the first key >= target and reverse seek the last <= target,
    // for present keys, gaps, and targets past either end; an empty target rewinds.
    let db = Db::open(iter_options(Arc::new(SimStorage::new()))).unwrap();
    for k in ["b", "d", "f"] {
        db.set(k.as_bytes().to_vec(), k.as_bytes().to_vec())
            .unwrap();
    }
    db.delete(b"d".to_vec()).unwrap();
    let first = |it: &mut DbIterator, target: &[u8]| {
        it.seek(target).unwrap();
        it.valid().then(|| it.item().key().to_vec())
    };
    let mut fwd = db.iter(IteratorOptions::default()).unwrap();
    let mut rev = db
        .iter(IteratorOptions::default().with_reverse(true))
        .unwrap();
    // (target, first key forward, first key in reverse)
    type Case<'a> = (&'a [u8], Option<&'a [u8]>, Option<&'a [u8]>);
    let cases: [Case<'_>; 6] = [
        (b"a", Some(b"b"), None),
        (b"b", Some(b"b"), Some(b"b")),
        (b"c", Some(b"f"), Some(b"b")), // "d" is deleted
        (b"d", Some(b"f"), Some(b"b")),
        (b"g", None, Some(b"f")),
        (b"", Some(b"b"), Some(b"f")),
    ];
    for (target, f, r) in cases {
        assert_eq!(first(&mut fwd, target).as_deref(), f, "forward {target:?}");
        assert_eq!(first(&mut rev, target).as_deref(), r, "reverse {target:?}");
    }
}

#[test]
fn values_come_back_through_the_value_log() {
    // Proves values at and above the threshold are read back through the value log, with and
    // without prefetch, via value(), value_with() and the Iterator adaptor; sizes are exact.
    let db = Db::open(iter_options(Arc::new(SimStorage::new()))).unwrap();
    let lens = [0usize, 63, 64, 65, 1000, 5000];
    for (i, len) in lens.iter().enumerate() {
        let key = format!("v{i}").into_bytes();
        db.set(key.clone(), value_for(&key, 7, *len)).unwrap();
    }
    db.flush().unwrap();
    for prefetch in [false, true] {
        let opts = IteratorOptions::default().with_prefetch_values(prefetch);
        let items: Vec<settdb::Item> = db.iter(opts).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(items.len(), lens.len());
        for (item, len) in items.into_iter().zip(lens) {
            let want = value_for(item.key(), 7, len);
            assert_eq!(item.value_size(), len as u64, "{item:?}");
            let key_len = item.key().len() as u64;
            if len >= 64 {
                assert!(item.estimated_size() > key_len + len as u64, "{item:?}");
            } else {
                assert_eq!(item.estimated_size(), key_len + len as u64);
            }
            assert!(item.value_with(|v| v == want.as_slice()).unwrap());
            assert_eq!(item.value().unwrap(), want);
            assert_eq!(item.into_value().unwrap(), want);
        }
    }
}

/// A database whose only table (L0) holds `keys` keys `key00000..`, closed, then the table
/// damaged at `at` (a fraction of its length), reopened without compactors.
fn damaged(keys: u32, at: f64) -> (SimStorage, Db) {
    let sim = SimStorage::new();
    let opts = iter_options(Arc::new(sim.clone())).with_num_compactors(0);
    let db = Db::open(opts.clone()).unwrap();
    fill(&db, keys, 1);
    db.flush().unwrap();
    db.close().unwrap();
    drop(db);
    let tables = sst_files(&sim);
    assert_eq!(tables.len(), 1);
    let path = Path::new(DIR).join(tables.first().unwrap());
    let len = sim.live_bytes(&path).unwrap().len();
    sim.corrupt(&path, (len as f64 * at) as u64, 0x10).unwrap();
    let db = Db::open(opts).unwrap();
    (sim, db)
}

#[test]
fn a_damaged_table_is_a_typed_error_from_rewind_and_next() {
    // Proves a flipped bit in a table's first data block fails rewind, and one further in
    // fails a later next(), with a corruption error; the Iterator adaptor yields the error
    // once and then ends.
    let (_sim, db) = damaged(2000, 0.0005);
    let err = db
        .iter(IteratorOptions::default())
        .unwrap()
        .rewind()
        .unwrap_err();
    assert!(err.is_corruption(), "{err}");
    let (_sim, db) = damaged(2000, 0.3);
    let mut it = db.iter(IteratorOptions::default()).unwrap();
    it.rewind().unwrap();
    let err = loop {
        assert!(it.valid(), "the damage was never read");
        if let Err(e) = it.next() {
            break e;
        }
    };
    assert!(err.is_corruption(), "{err}");
    assert!(!it.valid());
    let results: Vec<_> = db.iter(IteratorOptions::default()).unwrap().collect();
    let errors = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(errors, 1);
    assert!(results.last().unwrap().is_err());
}

#[test]
fn prefix_and_since_ts_skip_tables_they_cannot_need() {
    // Proves pruning: with the only table damaged, an iterator whose prefix lies outside the
    // table's keys, or whose since_ts is at or above the table's versions, reads nothing from
    // it (no error) and still sees newer writes in the memtable.
    let (_sim, db) = damaged(2000, 0.3);
    let table_max = db.max_version();
    db.set(b"zz".to_vec(), b"new".to_vec()).unwrap();
    let collect_keys = |o: IteratorOptions| -> Vec<Vec<u8>> {
        db.iter(o)
            .unwrap()
            .map(|r| r.unwrap().key().to_vec())
            .collect()
    };
    assert_eq!(
        collect_keys(IteratorOptions::default().with_prefix(b"zz".to_vec())),
        vec![b"zz".to_vec()]
    );
    assert_eq!(
        collect_keys(IteratorOptions::default().with_since_ts(table_max)),
        vec![b"zz".to_vec()]
    );
    assert!(db
        .iter(IteratorOptions::default())
        .unwrap()
        .any(|r| r.is_err()));
}

#[test]
fn a_damaged_value_log_record_is_an_error_from_value() {
    // Proves a value whose value-log record is damaged is reported by value() (checksum
    // mismatch), with or without prefetch, while the keys still iterate; and that a closed
    // database refuses new iterators.
    let sim = SimStorage::new();
    let db = Db::open(iter_options(Arc::new(sim.clone()))).unwrap();
    // Larger than the active value-log file's batches kept in memory (64 KiB), so reads go
    // to the file and meet the damage.
    let big_len = 70_000;
    db.set(b"big".to_vec(), vec![7u8; big_len]).unwrap();
    db.set(b"small".to_vec(), b"s".to_vec()).unwrap();
    db.flush().unwrap();
    let vlog = sim
        .list_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".vlog"))
        .unwrap();
    let path = Path::new(DIR).join(vlog);
    let len = sim.live_bytes(&path).unwrap().len() as u64;
    sim.corrupt(&path, len - 100, 0x01).unwrap();
    for prefetch in [true, false] {
        let opts = IteratorOptions::default().with_prefetch_values(prefetch);
        let mut it = db.iter(opts).unwrap();
        it.rewind().unwrap();
        assert_eq!(it.item().key(), b"big");
        assert_eq!(it.item().value_size(), big_len as u64);
        let err = it.item().value().unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(it.item().value_with(|_| ()).unwrap_err().is_corruption());
        it.next().unwrap();
        assert_eq!(it.item().value().unwrap(), b"s");
    }
    db.close().unwrap();
    assert!(matches!(
        db.iter(IteratorOptions::default()),
        Err(settdb::Error::Closed)
    ));
}

#[test]
fn iterators_see_whole_batches_while_writes_flushes_and_compactions_run() {
    // Proves snapshot consistency under concurrency: a writer rewrites all 50 keys in one
    // batch per round while flushes and background compactions run; every iterator created
    // meanwhile yields all 50 keys from one single round (never a mix, never a gap), and the
    // rounds seen never go backwards.
    const KEYS: u32 = 50;
    const ROUNDS: u64 = 300;
    let db = Db::open(iter_options(Arc::new(SimStorage::new()))).unwrap();
    let batch = |round: u64| -> Vec<(Vec<u8>, Ver)> {
        (0..KEYS)
            .map(|i| {
                let mut value = round.to_le_bytes().to_vec();
                value.resize(if i % 2 == 0 { 100 } else { 20 }, i as u8);
                let ver = Ver {
                    value: Some(value),
                    expired: false,
                    user_meta: 1,
                    discard: false,
                };
                (format!("key{i:03}").into_bytes(), ver)
            })
            .collect()
    };
    write(&db, &batch(0));
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || {
            for round in 1..=ROUNDS {
                write(&db, &batch(round));
                if round % 20 == 0 {
                    db.flush().unwrap();
                }
            }
        })
    };
    let mut last = 0;
    let mut snapshots = 0;
    while !writer.is_finished() || snapshots == 0 {
        let items: Vec<settdb::Item> = db
            .iter(IteratorOptions::default())
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(items.len(), KEYS as usize);
        let rounds: BTreeSet<u64> = items
            .iter()
            .map(|it| {
                let v = it.value().unwrap();
                u64::from_le_bytes(v[..8].try_into().unwrap())
            })
            .collect();
        assert_eq!(rounds.len(), 1, "a snapshot mixes rounds {rounds:?}");
        let round = *rounds.first().unwrap();
        assert!(round >= last, "round {round} after {last}");
        last = round;
        snapshots += 1;
    }
    writer.join().unwrap();
    db.close().unwrap();
}

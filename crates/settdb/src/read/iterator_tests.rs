//! Model tests of [`DbIterator`] over hand-built sources: memtables, L0 tables and sorted
//! deeper levels holding random versions of random keys (deletes, expired and live TTLs,
//! internal keys), with random pending writes, read and since timestamps, prefixes, and both
//! directions, compared item by item with a `BTreeMap` model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::db_iterator::DbIterator;
use super::iterator_options::IteratorOptions;
use super::sources::ReadSnapshot;
use crate::error::Error;
use crate::io::{OpenMode, SimStorage, Storage};
use crate::key::{compare_keys, key_with_version, user_key, INTERNAL_KEY_PREFIX};
use crate::levels::{LevelTable, LevelsSnapshot};
use crate::memtable::{MemValue, Memtable, MemtablesView};
use crate::options::Options;
use crate::table::{Table, TableBuilder, TableBuilderOptions, TableOpenOptions, VecIterator};
use crate::value::{meta, ValueRef, ValueStruct};

/// The iterator's clock in these tests.
const NOW: u64 = 1_000;

/// What one version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Put,
    Delete,
    /// A TTL in the past of [`NOW`].
    Expired,
    /// A TTL in the future of [`NOW`].
    Ttl,
}

fn value_struct(kind: Kind, uk: &[u8], version: u64) -> ValueStruct {
    let (meta_bits, expires_at) = match kind {
        Kind::Put => (0, 0),
        Kind::Delete => (meta::DELETE, 0),
        Kind::Expired => (0, NOW - 1),
        Kind::Ttl => (0, NOW + 1),
    };
    let value = if kind == Kind::Delete {
        Vec::new()
    } else {
        [uk, &version.to_le_bytes()].concat()
    };
    ValueStruct {
        meta: meta_bits,
        user_meta: version as u8,
        expires_at,
        value,
    }
}

/// Where a version lives: 0 mutable memtable, 1 immutable memtable, 2..=3 L0 tables (2 the
/// newest), 4 L1, 5 L2.
const SOURCES: usize = 6;

/// An expected item: key, version, deleted or expired, value, user meta.
type Expected = (Vec<u8>, u64, bool, Vec<u8>, u8);

#[derive(Debug, Clone)]
struct Case {
    /// (user key, version) -> (kind, source).
    versions: BTreeMap<(Vec<u8>, u64), (Kind, usize)>,
    pending: Option<BTreeMap<Vec<u8>, Kind>>,
    read_ts: u64,
    opts: IteratorOptions,
    probe: Vec<u8>,
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 1..4),
        1 => Just([INTERNAL_KEY_PREFIX, b"x"].concat()),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Put),
        2 => Just(Kind::Delete),
        1 => Just(Kind::Expired),
        1 => Just(Kind::Ttl),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    // Up to 30 versions of a key: more than the forward iteration steps over before it seeks
    // past a key (MAX_SEQUENTIAL_SKIPS).
    let versions =
        proptest::collection::btree_map((small_key(), 1u64..31), (kind(), 0..SOURCES), 0..120);
    let pending = proptest::option::of(proptest::collection::btree_map(
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 1..4),
        kind(),
        0..5,
    ));
    let prefix = proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 0..3);
    let probe = proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..4);
    (
        versions,
        pending,
        0u64..33,
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prefix,
        prop_oneof![Just(0u64), 0u64..31],
        probe,
    )
        .prop_map(
            |(versions, pending, read_ts, (reverse, all, prefetch), prefix, since, probe)| Case {
                versions,
                pending,
                read_ts,
                opts: IteratorOptions::default()
                    .with_reverse(reverse)
                    .with_all_versions(all)
                    .with_prefetch_values(prefetch)
                    .with_prefix(prefix)
                    .with_since_ts(since),
                probe,
            },
        )
}

/// Builds a table from sorted entries on `sim`.
fn table(sim: &SimStorage, id: u64, entries: &[(Vec<u8>, ValueStruct)]) -> Arc<LevelTable> {
    let path = PathBuf::from(format!("/t/{id}.sst"));
    let file = sim.open(&path, OpenMode::CreateNew).unwrap();
    let opts = TableBuilderOptions::from_options(&Options::new("/t").with_block_size(64), 1 << 20);
    let mut b = TableBuilder::new(file.clone(), opts).unwrap();
    for (k, v) in entries {
        let vr = ValueRef {
            meta: v.meta,
            user_meta: v.user_meta,
            expires_at: v.expires_at,
            value: &v.value,
        };
        b.add(k, vr).unwrap();
    }
    b.finish().unwrap();
    LevelTable::new(
        Table::open(file, id, TableOpenOptions::default()).unwrap(),
        path,
        None,
    )
}

/// Sorted deeper-level tables: cut after every second user key.
fn level_tables(
    sim: &SimStorage,
    next_id: &mut u64,
    entries: &[(Vec<u8>, ValueStruct)],
) -> Vec<Arc<LevelTable>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut users = 0;
    for i in 0..entries.len() {
        let last_of_user =
            i + 1 == entries.len() || user_key(&entries[i].0) != user_key(&entries[i + 1].0);
        if last_of_user {
            users += 1;
            if users % 2 == 0 || i + 1 == entries.len() {
                out.push(table(sim, *next_id, &entries[start..=i]));
                *next_id += 1;
                start = i + 1;
            }
        }
    }
    out
}

fn snapshot(case: &Case) -> ReadSnapshot {
    let mut per_source: Vec<Vec<(Vec<u8>, ValueStruct)>> = vec![Vec::new(); SOURCES];
    for ((uk, v), (kind, source)) in &case.versions {
        per_source[*source].push((key_with_version(uk, *v), value_struct(*kind, uk, *v)));
    }
    for s in &mut per_source {
        s.sort_by(|a, b| compare_keys(&a.0, &b.0));
    }
    let memtables: Vec<Arc<Memtable>> = (0..2)
        .map(|i| {
            let m = Memtable::in_memory(10 - i as u64);
            for (k, v) in &per_source[i] {
                let mv = MemValue {
                    meta: v.meta,
                    user_meta: v.user_meta,
                    expires_at: v.expires_at,
                    value: Bytes::from(v.value.clone()),
                };
                m.list().insert(Bytes::from(k.clone()), mv);
            }
            Arc::new(m)
        })
        .collect();
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new("/t")).unwrap();
    let mut next_id = 100;
    // L0: source 2 is the newest, so it gets the higher id.
    let mut l0 = Vec::new();
    for (id, s) in [(3u64, 2usize), (2, 3)] {
        if !per_source[s].is_empty() {
            l0.push(table(&sim, id, &per_source[s]));
        }
    }
    let l1 = level_tables(&sim, &mut next_id, &per_source[4]);
    let l2 = level_tables(&sim, &mut next_id, &per_source[5]);
    ReadSnapshot {
        memtables: Arc::new(MemtablesView {
            newest_first: memtables,
        }),
        levels: Arc::new(LevelsSnapshot::from_levels(vec![l0, l1, l2])),
        vlog: None,
        dir: Arc::from(Path::new("/t")),
    }
}

fn iterator(case: &Case) -> DbIterator {
    let pending = case.pending.as_ref().map(|p| {
        // Keys at the read timestamp, as the transaction layer hands them over.
        let entries = p
            .iter()
            .map(|(uk, kind)| {
                let v = value_struct(*kind, uk, 99);
                (key_with_version(uk, case.read_ts), v)
            })
            .collect();
        VecIterator::new(entries)
    });
    DbIterator::new(
        snapshot(case),
        case.read_ts,
        NOW,
        case.opts.clone(),
        pending,
    )
}

fn expected_of(uk: &[u8], version: u64, vs: &ValueStruct) -> Expected {
    let dead = vs.is_delete() || vs.is_expired(NOW);
    (uk.to_vec(), version, dead, vs.value.clone(), vs.user_meta)
}

/// The items the model says the iterator yields, in iteration order.
fn model(case: &Case) -> Vec<Expected> {
    let o = &case.opts;
    let mut per_key: BTreeMap<Vec<u8>, Vec<Expected>> = BTreeMap::new();
    for (uk, kind) in case.pending.iter().flatten() {
        let vs = value_struct(*kind, uk, 99);
        per_key
            .entry(uk.clone())
            .or_default()
            .push(expected_of(uk, case.read_ts, &vs));
    }
    for ((uk, v), (kind, _)) in case.versions.iter().rev() {
        let visible = *v <= case.read_ts && (o.since_ts == 0 || *v > o.since_ts);
        if visible && !uk.starts_with(INTERNAL_KEY_PREFIX) {
            let vs = value_struct(*kind, uk, *v);
            per_key
                .entry(uk.clone())
                .or_default()
                .push(expected_of(uk, *v, &vs));
        }
    }
    let mut out = Vec::new();
    for (uk, versions) in per_key {
        if !uk.starts_with(&o.prefix) {
            continue;
        }
        // `versions` is newest first: pending, then committed descending.
        if o.all_versions {
            out.extend(versions);
        } else if let Some(newest) = versions.into_iter().next().filter(|e| !e.2) {
            out.push(newest);
        }
    }
    if o.reverse {
        out.reverse();
    }
    out
}

fn observed(it: &DbIterator) -> Expected {
    let item = it.item();
    (
        item.key().to_vec(),
        item.version(),
        item.is_deleted_or_expired(),
        item.value().unwrap(),
        item.user_meta(),
    )
}

fn drain(it: &mut DbIterator) -> Vec<Expected> {
    let mut out = Vec::new();
    while it.valid() {
        out.push(observed(it));
        it.next().unwrap();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn iterator_equals_the_model(case in case()) {
        // Proves rewind + next, the Iterator adaptor, and seek followed by next each yield
        // exactly the model's items, for random sources, timestamps, prefixes and directions.
        let want = model(&case);
        let mut it = iterator(&case);
        it.rewind().unwrap();
        prop_assert_eq!(&drain(&mut it), &want);

        let adapted: Vec<Expected> = iterator(&case)
            .map(|r| {
                let item = r.unwrap();
                let value = item.value().unwrap();
                (item.key().to_vec(), item.version(), item.is_deleted_or_expired(), value, item.user_meta())
            })
            .collect();
        prop_assert_eq!(&adapted, &want);

        it.seek(&case.probe).unwrap();
        let from_probe: Vec<Expected> = want
            .iter()
            .filter(|e| case.probe.is_empty()
                || if case.opts.reverse { e.0 <= case.probe } else { e.0 >= case.probe })
            .cloned()
            .collect();
        prop_assert_eq!(drain(&mut it), from_probe);
    }
}

#[test]
fn not_positioned_iterator_shows_nothing_and_refuses_next() {
    // Proves an unpositioned or exhausted cursor is invalid, shows an empty item, and that
    // next() on it is a typed error, not a panic.
    let case = Case {
        versions: BTreeMap::from([((b"a".to_vec(), 1), (Kind::Put, 2))]),
        pending: None,
        read_ts: 5,
        opts: IteratorOptions::default(),
        probe: Vec::new(),
    };
    let mut it = iterator(&case);
    assert!(!it.valid() && it.item().key().is_empty());
    assert!(matches!(it.next(), Err(Error::InvalidRequest(_))));
    it.rewind().unwrap();
    assert!(it.valid_for_prefix(b"a") && !it.valid_for_prefix(b"b"));
    it.next().unwrap();
    assert!(!it.valid() && it.item().key().is_empty());
    assert!(matches!(it.next(), Err(Error::InvalidRequest(_))));
}

#[test]
fn pending_write_shadows_a_commit_at_the_read_timestamp() {
    // Proves a pending write given at version read_ts hides a committed version at read_ts
    // of the same key (newest wins), and that all_versions shows both, pending first.
    let mut case = Case {
        versions: BTreeMap::from([((b"k".to_vec(), 5), (Kind::Put, 0))]),
        pending: Some(BTreeMap::from([(b"k".to_vec(), Kind::Delete)])),
        read_ts: 5,
        opts: IteratorOptions::default(),
        probe: Vec::new(),
    };
    let mut it = iterator(&case);
    it.rewind().unwrap();
    assert!(!it.valid(), "the pending delete hides k");
    case.opts = case.opts.with_all_versions(true);
    let mut it = iterator(&case);
    it.rewind().unwrap();
    let got: Vec<(u64, bool)> = drain(&mut it).into_iter().map(|e| (e.1, e.2)).collect();
    assert_eq!(got, vec![(5, true), (5, false)]);
}

/// A case with one put per key, at version 1 in the mutable memtable.
fn puts(keys: &[&[u8]], pending: &[&[u8]], opts: IteratorOptions) -> Case {
    Case {
        versions: keys
            .iter()
            .map(|k| ((k.to_vec(), 1), (Kind::Put, 0)))
            .collect(),
        pending: Some(pending.iter().map(|k| (k.to_vec(), Kind::Put)).collect()),
        read_ts: 5,
        opts,
        probe: Vec::new(),
    }
}

fn keys_from(it: &mut DbIterator) -> Vec<Vec<u8>> {
    drain(it).into_iter().map(|e| e.0).collect()
}

#[test]
fn seeks_outside_the_prefix_start_at_its_nearest_key() {
    // Proves a forward seek below the prefix starts at the prefix's first key, a reverse seek
    // above it at its last key, and the opposite seeks find nothing.
    let keys: [&[u8]; 4] = [b"a", b"ba", b"bb", b"c"];
    let fwd = IteratorOptions::default().with_prefix(b"b".to_vec());
    let mut it = iterator(&puts(&keys, &[], fwd.clone()));
    it.seek(b"a").unwrap();
    assert_eq!(keys_from(&mut it), vec![b"ba".to_vec(), b"bb".to_vec()]);
    it.seek(b"bz").unwrap();
    assert!(!it.valid());
    let rev = fwd.with_reverse(true);
    let mut it = iterator(&puts(&keys, &[], rev));
    it.seek(b"zz").unwrap();
    assert_eq!(keys_from(&mut it), vec![b"bb".to_vec(), b"ba".to_vec()]);
    it.seek(b"ba").unwrap();
    assert_eq!(keys_from(&mut it), vec![b"ba".to_vec()]);
    it.seek(b"a").unwrap();
    assert!(!it.valid());
}

#[test]
fn reverse_rewind_skips_a_pending_write_at_the_prefix_end() {
    // Proves a reverse rewind with prefix "a" starts at the last "a" key even when a pending
    // write sits exactly at the prefix's end key "b" (the newest possible internal key there).
    let rev = IteratorOptions::default()
        .with_prefix(b"a".to_vec())
        .with_reverse(true);
    let mut it = iterator(&puts(&[b"a", b"ab"], &[b"b"], rev));
    it.rewind().unwrap();
    assert_eq!(keys_from(&mut it), vec![b"ab".to_vec(), b"a".to_vec()]);
}

#[test]
fn iterators_and_items_cross_threads() {
    // Proves (at compile time) an iterator can be sent to another thread and items shared.
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<DbIterator>();
    send_sync::<super::item::Item>();
}

//! Memtable choice, measured: our crossbeam-skiplist memtable against the plain alternative
//! (a `BTreeMap` behind a `RwLock`) for inserts by one writer and point gets, with 16-byte keys
//! (+ 8-byte version) and 128-byte values, 200K entries.

use std::collections::BTreeMap;
use std::sync::RwLock;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use settdb::key::{key_with_version, InternalKey};
use settdb::memtable::{MemValue, SkipList};

const N: usize = 200_000;

fn keys() -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(3);
    (0..N)
        .map(|_| {
            let mut k = [0u8; 16];
            rng.fill_bytes(&mut k);
            key_with_version(&k, 1)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let value = Bytes::from(vec![7u8; 128]);
    let mut g = c.benchmark_group("memtable");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("skiplist insert", |b| {
        b.iter_batched(
            SkipList::new,
            |list| {
                for k in &keys {
                    let v = MemValue {
                        value: value.clone(),
                        ..MemValue::default()
                    };
                    list.insert(Bytes::copy_from_slice(k), v);
                }
                list
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("rwlock btreemap insert", |b| {
        b.iter_batched(
            || RwLock::new(BTreeMap::new()),
            |map| {
                for k in &keys {
                    map.write()
                        .unwrap()
                        .insert(InternalKey(k.clone()), value.clone());
                }
                map
            },
            BatchSize::LargeInput,
        )
    });
    let list = SkipList::new();
    let map = RwLock::new(BTreeMap::new());
    for k in &keys {
        list.insert(
            Bytes::copy_from_slice(k),
            MemValue {
                value: value.clone(),
                ..MemValue::default()
            },
        );
        map.write()
            .unwrap()
            .insert(InternalKey(k.clone()), value.clone());
    }
    g.bench_function("skiplist get", |b| {
        b.iter(|| keys.iter().filter(|k| list.get(k).is_some()).count())
    });
    g.bench_function("rwlock btreemap get", |b| {
        b.iter(|| {
            keys.iter()
                .filter(|k| {
                    map.read()
                        .unwrap()
                        .range(InternalKey(k.to_vec())..)
                        .next()
                        .is_some()
                })
                .count()
        })
    });
    g.finish();
    concurrent(c, &keys, &value);
}

/// Reader gets while one writer inserts groups of 1,000 entries (the engine's group commit):
/// what a reader waits for when the writer holds the lock for a group.
fn concurrent(c: &mut Criterion, keys: &[Vec<u8>], value: &Bytes) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut g = c.benchmark_group("memtable concurrent");
    g.sample_size(10);
    g.throughput(Throughput::Elements(50_000));
    let probe: Vec<Vec<u8>> = keys[..50_000].to_vec();
    g.bench_function("skiplist gets during group inserts", |b| {
        b.iter_custom(|iters| {
            let list = Arc::new(SkipList::new());
            let stop = Arc::new(AtomicBool::new(false));
            let writer = {
                let (list, stop, keys, value) =
                    (list.clone(), stop.clone(), keys.to_vec(), value.clone());
                std::thread::spawn(move || {
                    for k in keys.iter().cycle() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        list.insert(
                            Bytes::copy_from_slice(k),
                            MemValue {
                                value: value.clone(),
                                ..MemValue::default()
                            },
                        );
                    }
                })
            };
            let start = std::time::Instant::now();
            for _ in 0..iters {
                criterion::black_box(probe.iter().filter(|k| list.get(k).is_some()).count());
            }
            let t = start.elapsed();
            stop.store(true, Ordering::Relaxed);
            writer.join().unwrap();
            t
        })
    });
    g.bench_function("rwlock btreemap gets during group inserts", |b| {
        b.iter_custom(|iters| {
            let map = Arc::new(RwLock::new(BTreeMap::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let writer = {
                let (map, stop, keys, value) =
                    (map.clone(), stop.clone(), keys.to_vec(), value.clone());
                std::thread::spawn(move || {
                    for group in keys.chunks(1000).cycle() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let mut m = map.write().unwrap();
                        for k in group {
                            m.insert(InternalKey(k.clone()), value.clone());
                        }
                    }
                })
            };
            let start = std::time::Instant::now();
            for _ in 0..iters {
                criterion::black_box(
                    probe
                        .iter()
                        .filter(|k| {
                            map.read()
                                .unwrap()
                                .range(InternalKey(k.to_vec())..)
                                .next()
                                .is_some()
                        })
                        .count(),
                );
            }
            let t = start.elapsed();
            stop.store(true, Ordering::Relaxed);
            writer.join().unwrap();
            t
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

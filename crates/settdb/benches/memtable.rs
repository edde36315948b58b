//! Memtable choice, measured: `MemMap` (a `BTreeMap` behind a `RwLock`, written in chunks)
//! against `crossbeam_skiplist::SkipMap`, for inserts by one writer, point gets, and gets while
//! a writer inserts; 200K entries of 16-byte keys (+ 8-byte version) and 128-byte values.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use crossbeam_skiplist::SkipMap;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use settdb::inspect::internals::{MemMap, MemValue};
use settdb::key::{key_with_version, InternalKey};

const N: usize = 200_000;
const PROBES: usize = 50_000;

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

fn mem_value(value: &Bytes) -> MemValue {
    MemValue {
        value: value.clone(),
        ..MemValue::default()
    }
}

fn skip_get(map: &SkipMap<InternalKey, Bytes>, k: &[u8]) -> bool {
    map.lower_bound(Bound::Included(&InternalKey(k.to_vec())))
        .is_some()
}

fn single_threaded(c: &mut Criterion, keys: &[Vec<u8>], value: &Bytes) {
    let mut g = c.benchmark_group("memtable");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("crossbeam skipmap insert", |b| {
        b.iter_batched(
            SkipMap::new,
            |map| {
                for k in keys {
                    map.insert(InternalKey(k.clone()), value.clone());
                }
                map
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("mem_map insert", |b| {
        b.iter_batched(
            MemMap::new,
            |map| {
                map.insert_many(
                    keys.iter()
                        .map(|k| (Bytes::copy_from_slice(k), mem_value(value))),
                );
                map
            },
            BatchSize::LargeInput,
        )
    });
    let skip = SkipMap::new();
    let ours = MemMap::new();
    for k in keys {
        skip.insert(InternalKey(k.clone()), value.clone());
        ours.insert(Bytes::copy_from_slice(k), mem_value(value));
    }
    g.bench_function("crossbeam skipmap get", |b| {
        b.iter(|| keys.iter().filter(|k| skip_get(&skip, k)).count())
    });
    g.bench_function("mem_map get", |b| {
        b.iter(|| keys.iter().filter(|k| ours.get(k).is_some()).count())
    });
    g.finish();
}

/// Times `iters` rounds of `PROBES` gets by `get` while `write` runs on another thread.
fn timed_under_writes(
    iters: u64,
    write: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    get: impl Fn() -> usize,
) -> std::time::Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || write(stop))
    };
    let start = std::time::Instant::now();
    for _ in 0..iters {
        black_box(get());
    }
    let t = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    t
}

fn concurrent(c: &mut Criterion, keys: &[Vec<u8>], value: &Bytes) {
    let mut g = c.benchmark_group("memtable concurrent");
    g.sample_size(10);
    g.throughput(Throughput::Elements(PROBES as u64));
    let probe: Vec<Vec<u8>> = keys[..PROBES].to_vec();
    g.bench_function("crossbeam skipmap gets during inserts", |b| {
        b.iter_custom(|iters| {
            let map = Arc::new(SkipMap::new());
            let (m, ks, v) = (map.clone(), keys.to_vec(), value.clone());
            let write = move |stop: Arc<AtomicBool>| {
                for k in ks.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    m.insert(InternalKey(k.clone()), v.clone());
                }
            };
            timed_under_writes(iters, write, || {
                probe.iter().filter(|k| skip_get(&map, k)).count()
            })
        })
    });
    g.bench_function("mem_map gets during group inserts", |b| {
        b.iter_custom(|iters| {
            let map = Arc::new(MemMap::new());
            let (m, ks, v) = (map.clone(), keys.to_vec(), value.clone());
            let write = move |stop: Arc<AtomicBool>| {
                for group in ks.chunks(1000).cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    m.insert_many(
                        group
                            .iter()
                            .map(|k| (Bytes::copy_from_slice(k), mem_value(&v))),
                    );
                }
            };
            timed_under_writes(iters, write, || {
                probe.iter().filter(|k| map.get(k).is_some()).count()
            })
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let value = Bytes::from(vec![7u8; 128]);
    single_threaded(c, &keys, &value);
    concurrent(c, &keys, &value);
}

criterion_group!(benches, bench);
criterion_main!(benches);

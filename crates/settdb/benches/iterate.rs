//! Range-read rate: a forward scan of 1M keys with 128-byte values, every value read.
//!
//! Setup (once): a database on the real file system in a temporary directory with default
//! options (values inline: below the 1 KiB threshold), 1,000,000 distinct 16-byte keys written
//! in a scattered order in batches of 1,000, then flushed and compacted until settled. Measured:
//! a full scan with the cursor API (`rewind`, `item().value_with`, `next`) and with the
//! `Iterator` adaptor (owned items, `into_value`); throughput in keys per second.
//!
//! Run: `cargo bench -p settdb --bench iterate`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use settdb::Entry;
use settdb::{Db, IteratorOptions, Options};

const KEYS: u64 = 1_000_000;
const VALUE_LEN: usize = 128;
const BATCH: u64 = 1_000;
/// A multiplier coprime with `KEYS`: `i * STRIDE % KEYS` visits every key once, scattered.
const STRIDE: u64 = 7_919;

fn key(i: u64) -> Bytes {
    Bytes::from(format!("{i:016}"))
}

fn value(i: u64) -> Bytes {
    let mut v = [0u8; VALUE_LEN];
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in v.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    Bytes::copy_from_slice(&v)
}

fn load(dir: &std::path::Path) -> Db {
    let start = Instant::now();
    let db = Db::open(Options::new(dir)).unwrap();
    for b in 0..KEYS / BATCH {
        let entries = (b * BATCH..(b + 1) * BATCH)
            .map(|i| {
                let k = i * STRIDE % KEYS;
                Entry::new(key(k), value(k))
            })
            .collect::<Vec<_>>();
        db.write(entries).unwrap();
    }
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    let levels = db.levels();
    let tables: Vec<usize> = (0..levels.level_count())
        .map(|l| levels.tables(l).len())
        .collect();
    eprintln!(
        "loaded {KEYS} keys in {:?}; tables per level {tables:?}",
        start.elapsed()
    );
    db
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = load(dir.path());
    let mut g = c.benchmark_group("iterate");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(KEYS));
    g.bench_function("forward_1m_values_cursor", |b| {
        b.iter(|| {
            let mut it = db.iter(IteratorOptions::default()).unwrap();
            it.rewind().unwrap();
            let (mut n, mut bytes) = (0u64, 0usize);
            while it.valid() {
                bytes += it.item().value_with(|v| black_box(v).len()).unwrap();
                n += 1;
                it.next().unwrap();
            }
            assert_eq!((n, bytes), (KEYS, KEYS as usize * VALUE_LEN));
        })
    });
    g.bench_function("forward_1m_values_adaptor", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for item in db.iter(IteratorOptions::default()).unwrap() {
                black_box(item.unwrap().into_value().unwrap());
                n += 1;
            }
            assert_eq!(n, KEYS);
        })
    });
    g.finish();
    db.close().unwrap();
}

criterion_group!(iterate, benches);
criterion_main!(iterate);

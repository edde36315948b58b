//! Table build throughput and point-lookup rate.
//!
//! Build: a 64 MiB table (key + value bytes) of distinct random 16-byte user keys at version 1,
//! sorted before building, with 128-byte values (64 random bytes followed by a copy of them, so
//! about 2:1 compressible), for Snappy and no compression; throughput in key + value bytes,
//! including the final fsync. Lookup: `Table::get` of random present keys on the Snappy table
//! (no block cache yet: every lookup reads, checks and decodes one block).
//!
//! Run: `cargo bench -p settdb --bench table -- --warm-up-time 1 --measurement-time 5`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::inspect::internals::{TableBuilder, TableBuilderOptions, TableOpenOptions};
use settdb::inspect::Table;
use settdb::io::{FsStorage, OpenMode, Storage};
use settdb::key::key_with_version;
use settdb::value::ValueRef;
use settdb::{Compression, Options};

const TABLE_BYTES: usize = 64 << 20;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 128;
const SEED: u64 = 0x5e77_0db0;

struct Data {
    keys: Vec<Vec<u8>>,
    values: Vec<[u8; VALUE_LEN]>,
}

fn data() -> Data {
    let mut rng = StdRng::seed_from_u64(SEED);
    let n = TABLE_BYTES / (KEY_LEN + VALUE_LEN);
    let mut users: Vec<[u8; KEY_LEN]> = (0..n).map(|_| rng.random()).collect();
    users.sort_unstable();
    users.dedup();
    let keys = users.iter().map(|u| key_with_version(u, 1)).collect();
    let values = (0..users.len())
        .map(|_| {
            let mut v = [0u8; VALUE_LEN];
            rng.fill(&mut v[..VALUE_LEN / 2]);
            v.copy_within(..VALUE_LEN / 2, VALUE_LEN / 2);
            v
        })
        .collect();
    Data { keys, values }
}

static FILE_SEQ: AtomicUsize = AtomicUsize::new(0);

fn build(dir: &Path, d: &Data, compression: Compression) -> std::path::PathBuf {
    let path = dir.join(format!("{}.sst", FILE_SEQ.fetch_add(1, Ordering::Relaxed)));
    let file = FsStorage::new().open(&path, OpenMode::CreateNew).unwrap();
    let opts = TableBuilderOptions {
        compression,
        ..TableBuilderOptions::from_options(&Options::new(dir), 1 << 30)
    };
    let mut b = TableBuilder::new(file, opts).unwrap();
    for (k, v) in d.keys.iter().zip(&d.values) {
        let value = ValueRef {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: v,
        };
        b.add(k, value).unwrap();
    }
    b.finish().unwrap();
    path
}

fn bench_build(c: &mut Criterion, dir: &Path, d: &Data) {
    let mut g = c.benchmark_group("table_build_64MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(
        (d.keys.len() * (KEY_LEN + VALUE_LEN)) as u64,
    ));
    for (name, comp) in [("snappy", Compression::Snappy), ("none", Compression::None)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let path = build(dir, d, comp);
                std::fs::remove_file(path).unwrap();
            })
        });
    }
    g.finish();
}

fn bench_get(c: &mut Criterion, dir: &Path, d: &Data) {
    let path = build(dir, d, Compression::Snappy);
    let file = FsStorage::new().open(&path, OpenMode::Read).unwrap();
    let table: Arc<Table> = Table::open(file, 1, TableOpenOptions::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let mut g = c.benchmark_group("table_get_64MiB_snappy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("present_key", |b| {
        b.iter(|| {
            let k = &d.keys[rng.random_range(0..d.keys.len())];
            let found = table.get(k).unwrap();
            assert!(found.is_some());
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let d = data();
    bench_build(c, dir.path(), &d);
    bench_get(c, dir.path(), &d);
}

criterion_group!(table, benches);
criterion_main!(table);

//! `settdb-bench`: load and read workloads on SettDB, printing one result line each, so that
//! `scripts/bench-vs-badger.sh` can run the same workloads on Go Badger in the same session and
//! report ratios.
//!
//! - `load`: N random keys of `--key-size` bytes with `--value-size` byte values, written in
//!   batches of `--batch` entries by `--writers` threads through the batched write path
//!   (`Db::write`, one group commit per queue drain), then `close` (which flushes). Prints
//!   entries/s, MB/s, elapsed seconds, peak RSS and on-disk bytes per file kind.
//! - `gc`: the value-log GC workload (load, overwrite every key, let GC settle; space
//!   amplification and GC throughput), see `gc.rs`.
//! - `read`: random point reads of keys from the load (regenerated from the same seed) by
//!   `--threads` threads for `--seconds`, with a block cache of `--block-cache-mb` (Badger's
//!   256 by default) and an index cache of `--index-cache-mb` (0); prints reads/s and each
//!   cache's hit ratio over the timed reads.

mod compare;
mod driver;
mod gc;
mod proto;
mod report;
mod stores;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use settdb::Entry;
use settdb::{Db, Options};

#[derive(Debug, Parser)]
#[command(name = "settdb-bench", about = "SettDB load and read benchmarks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// One workload of the driver protocol (docs/bench/protocol.md) on an in-process store;
    /// prints one `RESULT` line.
    Run(driver::RunArgs),
    /// SettDB beside Go Badger, RocksDB, fjall, redb and sled in one run: every workload of
    /// the driver protocol, a markdown and CSV report and SVG plots (scripts/bench.sh
    /// installs the peers first).
    Compare(compare::CompareArgs),
    /// Load random keys through the batched write path.
    Load {
        /// Database directory (must not exist or be empty).
        #[arg(long)]
        dir: PathBuf,
        /// Number of keys.
        #[arg(long)]
        keys: u64,
        /// Key size in bytes.
        #[arg(long, default_value_t = 16)]
        key_size: usize,
        /// Value size in bytes.
        #[arg(long)]
        value_size: usize,
        /// Entries per write batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Writer threads (their batches share group commits).
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Seed of the key generator (reads use the same).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep everything in memory (no files; `--dir` is ignored).
        #[arg(long)]
        in_memory: bool,
    },
    /// Uncontended `Db::update` transactions, each setting one key (one thread).
    Update {
        /// Database directory.
        #[arg(long)]
        dir: PathBuf,
        /// Number of transactions.
        #[arg(long, default_value_t = 100_000)]
        n: u64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 128)]
        value_size: usize,
        /// Sync every commit.
        #[arg(long)]
        sync: bool,
    },
    /// Iterates every key with its value in one view transaction.
    Iterate {
        /// Database directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Load, overwrite every key, let value-log GC settle (gc.rs).
    Gc {
        /// Database directory (must not exist or be empty).
        #[arg(long)]
        dir: PathBuf,
        /// off, auto or manual.
        #[arg(long, value_enum, default_value_t = gc::GcMode::Auto)]
        mode: gc::GcMode,
        /// Number of keys.
        #[arg(long, default_value_t = 50_000)]
        keys: u64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 16_384)]
        value_size: usize,
        /// Times every key is written (the first write, then overwrites).
        #[arg(long, default_value_t = 5)]
        rounds: u64,
        /// Writer threads.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// `auto`: settled once the value log has not shrunk for this many seconds.
        #[arg(long, default_value_t = 10)]
        quiet_secs: u64,
        /// Seed of the key generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Random point reads of loaded keys.
    Read {
        /// Database directory.
        #[arg(long)]
        dir: PathBuf,
        /// Number of keys that were loaded.
        #[arg(long)]
        keys: u64,
        /// Key size in bytes.
        #[arg(long, default_value_t = 16)]
        key_size: usize,
        /// Reader threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Duration in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Seed used by the load.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Block cache size in MiB (Badger's default 256; 0 turns it off).
        #[arg(long, default_value_t = 256)]
        block_cache_mb: u64,
        /// Index cache size in MiB (0: every table keeps its index in memory).
        #[arg(long, default_value_t = 0)]
        index_cache_mb: u64,
    },
}

fn main() {
    // SettDB's log lines (flushes, compactions, GC runs) on stderr when RUST_LOG asks for
    // them, e.g. RUST_LOG=settdb=info; nothing otherwise.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let cli = Cli::parse();
    let outcome = match cli.cmd {
        Cmd::Compare(args) => match compare::run(&args) {
            Ok(()) => return,
            Err(e) => {
                eprintln!("settdb-bench compare: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Run(args) => match driver::run(&args) {
            Ok(out) => {
                println!("{}", out.line());
                return;
            }
            Err(e) => {
                eprintln!("settdb-bench run: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Load {
            dir,
            keys,
            key_size,
            value_size,
            batch,
            writers,
            seed,
            in_memory,
        } => {
            let opts = if in_memory {
                Options::in_memory()
            } else {
                Options::new(&dir)
            };
            load(opts, &dir, keys, key_size, value_size, batch, writers, seed)
        }
        Cmd::Update {
            dir,
            n,
            value_size,
            sync,
        } => update(&dir, n, value_size, sync),
        Cmd::Iterate { dir } => iterate(&dir),
        Cmd::Gc {
            dir,
            mode,
            keys,
            value_size,
            rounds,
            writers,
            quiet_secs,
            seed,
        } => gc::run(
            &dir,
            mode,
            gc::GcWorkload {
                keys,
                value_size,
                rounds,
                writers,
                quiet_secs,
                seed,
            },
        ),
        Cmd::Read {
            dir,
            keys,
            key_size,
            threads,
            seconds,
            seed,
            block_cache_mb,
            index_cache_mb,
        } => {
            let opts = Options::new(dir)
                .with_read_only(true)
                .with_block_cache_size(block_cache_mb << 20)
                .with_index_cache_size(index_cache_mb << 20);
            read(opts, keys, key_size, threads, seconds, seed)
        }
    };
    if let Err(e) = outcome {
        eprintln!("settdb-bench: {e}");
        std::process::exit(1);
    }
}

/// The `i`-th key of the load with `seed` (random bytes, reproducible by index).
fn key_at(seed: u64, i: u64, key_size: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut k = vec![0u8; key_size];
    rng.fill_bytes(&mut k);
    k
}

#[allow(clippy::too_many_arguments)]
fn load(
    opts: Options,
    dir: &Path,
    keys: u64,
    key_size: usize,
    value_size: usize,
    batch: usize,
    writers: usize,
    seed: u64,
) -> settdb::Result<()> {
    // Keep a batch at half the write limit, so the batch size never trips TxnTooBig.
    let per_entry = (key_size + value_size + 32) as u64;
    let batch = batch.min((opts.max_batch_size() / 2 / per_entry).max(1) as usize);
    let db = Db::open(opts)?;
    let next = Arc::new(AtomicU64::new(0));
    // Values are slices of one random pool (incompressible, zero-copy), so the benchmark
    // measures the engine rather than the value generator.
    let pool = random_pool(value_size, seed);
    let start = Instant::now();
    let handles: Vec<_> = (0..writers.max(1))
        .map(|w| {
            let (db, next, pool) = (db.clone(), next.clone(), pool.clone());
            std::thread::spawn(move || -> settdb::Result<()> {
                let mut rng = StdRng::seed_from_u64(seed + 1000 + w as u64);
                loop {
                    let from = next.fetch_add(batch as u64, Ordering::Relaxed);
                    if from >= keys {
                        return Ok(());
                    }
                    let to = (from + batch as u64).min(keys);
                    let entries = (from..to)
                        .map(|i| {
                            let off = rng.random_range(0..=pool.len() - value_size);
                            Entry::new(key_at(seed, i, key_size), pool.slice(off..off + value_size))
                        })
                        .collect::<Vec<_>>();
                    db.write(entries)?;
                }
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| settdb::Error::InvalidRequest("writer thread panicked"))??;
    }
    db.close()?;
    let secs = start.elapsed().as_secs_f64();
    let bytes = keys as f64 * (key_size + value_size) as f64;
    let (sst, vlog, other) = dir_sizes(dir);
    println!(
        "settdb load: keys={keys} value_size={value_size} entries_per_s={:.0} mb_per_s={:.1} elapsed_s={secs:.2} peak_rss_mb={:.0} sst_mb={:.1} vlog_mb={:.1} other_mb={:.1}",
        keys as f64 / secs,
        bytes / secs / 1e6,
        peak_rss_mb(),
        sst as f64 / 1e6,
        vlog as f64 / 1e6,
        other as f64 / 1e6,
    );
    Ok(())
}

fn update(dir: &Path, n: u64, value_size: usize, sync: bool) -> settdb::Result<()> {
    let db = Db::open(Options::new(dir).with_sync_writes(sync))?;
    let value = bytes::Bytes::from(vec![7u8; value_size]);
    let start = Instant::now();
    for i in 0..n {
        let key = key_at(1, i, 16);
        db.update(|txn| txn.set(key, value.clone()))?;
    }
    let secs = start.elapsed().as_secs_f64();
    db.close()?;
    println!(
        "settdb update: n={n} per_s={:.0} elapsed_s={secs:.2} sync={sync}",
        n as f64 / secs
    );
    Ok(())
}

fn iterate(dir: &Path) -> settdb::Result<()> {
    let db = Db::open(Options::new(dir).with_read_only(true))?;
    let start = Instant::now();
    let (count, bytes) = db.view(|txn| {
        let mut it = txn.iter(settdb::IteratorOptions::default())?;
        let (mut count, mut bytes) = (0u64, 0u64);
        it.rewind()?;
        while it.valid() {
            let item = it.item();
            bytes += item.value_with(|v| v.len() as u64)? + item.key().len() as u64;
            count += 1;
            it.next()?;
        }
        Ok((count, bytes))
    })?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "settdb iterate: keys={count} per_s={:.0} mb_per_s={:.1} elapsed_s={secs:.2}",
        count as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

/// Random bytes to slice values from: at least 8 MiB and 64 values long.
fn random_pool(value_size: usize, seed: u64) -> bytes::Bytes {
    let mut pool = vec![0u8; (8 << 20).max(value_size * 64)];
    StdRng::seed_from_u64(seed ^ 0xfeed).fill_bytes(&mut pool);
    pool.into()
}

fn read(
    opts: Options,
    keys: u64,
    key_size: usize,
    threads: usize,
    seconds: u64,
    seed: u64,
) -> settdb::Result<()> {
    let db = Db::open(opts)?;
    let before = db.cache_metrics();
    let stop = Arc::new(AtomicBool::new(false));
    let (done, found) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|t| {
            let (db, stop, done, found) = (db.clone(), stop.clone(), done.clone(), found.clone());
            std::thread::spawn(move || -> settdb::Result<()> {
                let mut rng = StdRng::seed_from_u64(seed + 7 + t as u64);
                let (mut n, mut f) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let k = key_at(seed, rng.random_range(0..keys), key_size);
                    if db.get(&k)?.is_some() {
                        f += 1;
                    }
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
                found.fetch_add(f, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join()
            .map_err(|_| settdb::Error::InvalidRequest("reader thread panicked"))??;
    }
    let n = done.load(Ordering::Relaxed);
    let after = db.cache_metrics();
    println!(
        "settdb read: threads={threads} reads_per_s={:.0} found={} of {n} block_cache_hit_ratio={} \
         index_cache_hit_ratio={}",
        n as f64 / seconds as f64,
        found.load(Ordering::Relaxed),
        hit_ratio(&before.block, &after.block),
        hit_ratio(&before.index, &after.index),
    );
    Ok(())
}

/// A cache's hits over its lookups between `before` and `after` (`off` for a cache that is
/// off, `-` when nothing was looked up).
fn hit_ratio(before: &settdb::CacheStats, after: &settdb::CacheStats) -> String {
    let d = after.since(before);
    match (d.capacity, d.hits + d.misses) {
        (0, _) => "off".into(),
        (_, 0) => "-".into(),
        _ => format!("{:.4}", d.hit_ratio()),
    }
}

/// Peak resident set size of this process in MB (Linux `VmHWM`; 0 elsewhere).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Bytes of `.sst`, `.vlog` and other files in `dir`.
fn dir_sizes(dir: &Path) -> (u64, u64, u64) {
    let (mut sst, mut vlog, mut other) = (0, 0, 0);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let len = e.metadata().map_or(0, |m| m.len());
            match e.path().extension().and_then(|x| x.to_str()) {
                Some("sst") => sst += len,
                Some("vlog") => vlog += len,
                _ => other += len,
            }
        }
    }
    (sst, vlog, other)
}

//! `settdb-bench gc`: the value-log GC workload of issue 9, run beside Go Badger's
//! (`bench/badger-peer -mode gc`) by `scripts/bench-vs-badger.sh gc`.
//!
//! Loads `--keys` random keys with `--value-size` byte values `--rounds` times over (the first
//! round, then overwrites of every key), through the batched write path from `--writers`
//! threads, with automatic GC on (`--mode auto`, the default options: space-amplification
//! target 1.5, rate limit 256 MiB/s) or off (`off`, `manual`). Then lets GC settle:
//! - `manual`: `Db::run_value_log_gc(0.5)` until it has nothing to rewrite, timed (GC
//!   throughput is the bytes of the files it retired over that time);
//! - `auto`: waits until the value log has not shrunk for `--quiet-secs`;
//! - `off`: nothing.
//!
//! Then closes and prints the value-log bytes on disk over the live value bytes
//! (`keys × value_size`): the space amplification.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::Entry;
use settdb::{Db, GcOutcome, Options};

use crate::{dir_sizes, key_at, peak_rss_mb, random_pool};

/// How GC runs during and after the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GcMode {
    /// No GC at all.
    Off,
    /// Automatic GC (the default options).
    Auto,
    /// No automatic GC; `run_value_log_gc(0.5)` in a loop after the load.
    Manual,
}

/// The workload's shape.
#[derive(Clone, Copy, Debug)]
pub struct GcWorkload {
    pub keys: u64,
    pub value_size: usize,
    pub rounds: u64,
    pub writers: usize,
    pub quiet_secs: u64,
    pub seed: u64,
}

const KEY_SIZE: usize = 16;

/// Runs the workload in `dir` (new or empty).
pub fn run(dir: &Path, mode: GcMode, w: GcWorkload) -> settdb::Result<()> {
    let opts = Options::new(dir).with_auto_value_log_gc(mode == GcMode::Auto);
    let per_entry = (KEY_SIZE + w.value_size + 32) as u64;
    let batch = (opts.max_batch_size() / 2 / per_entry).clamp(1, 1000);
    let db = Db::open(opts)?;
    let load_secs = load(&db, w, batch)?;
    let settle_start = Instant::now();
    let mut retired = 0u64;
    match mode {
        GcMode::Off => {}
        GcMode::Manual => {
            while let GcOutcome::Rewrote(r) = db.run_value_log_gc(0.5)? {
                retired += r.bytes_retired;
            }
        }
        GcMode::Auto => wait_until_quiet(&db, Duration::from_secs(w.quiet_secs)),
    }
    let settle_secs = settle_start.elapsed().as_secs_f64();
    db.close()?;
    let (_, vlog, _) = dir_sizes(dir);
    let live = w.keys * w.value_size as u64;
    let written = (w.keys * w.rounds) as f64 * (KEY_SIZE + w.value_size) as f64;
    let gc_mb_s = if retired > 0 {
        format!("{:.0}", retired as f64 / settle_secs / 1e6)
    } else {
        "-".to_string()
    };
    println!(
        "settdb gc: mode={mode:?} keys={} value_size={} rounds={} load_mb_per_s={:.1} \
         load_s={load_secs:.2} settle_s={settle_secs:.2} gc_retired_mb={:.1} gc_mb_per_s={gc_mb_s} \
         vlog_mb={:.1} live_mb={:.1} space_amp={:.2} peak_rss_mb={:.0}",
        w.keys,
        w.value_size,
        w.rounds,
        written / load_secs / 1e6,
        retired as f64 / 1e6,
        vlog as f64 / 1e6,
        live as f64 / 1e6,
        vlog as f64 / live as f64,
        peak_rss_mb(),
    );
    Ok(())
}

/// Writes every key `rounds` times; the seconds it took (every write acknowledged).
fn load(db: &Db, w: GcWorkload, batch: u64) -> settdb::Result<f64> {
    let total = w.keys * w.rounds;
    let next = Arc::new(AtomicU64::new(0));
    let pool = random_pool(w.value_size, w.seed);
    let start = Instant::now();
    let handles: Vec<_> = (0..w.writers.max(1))
        .map(|t| {
            let (db, next, pool) = (db.clone(), next.clone(), pool.clone());
            std::thread::spawn(move || -> settdb::Result<()> {
                let mut rng = StdRng::seed_from_u64(w.seed + 2000 + t as u64);
                loop {
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= total {
                        return Ok(());
                    }
                    let entries = (from..(from + batch).min(total))
                        .map(|j| {
                            let off = rng.random_range(0..=pool.len() - w.value_size);
                            Entry::new(
                                key_at(w.seed, j % w.keys, KEY_SIZE),
                                pool.slice(off..off + w.value_size),
                            )
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
    Ok(start.elapsed().as_secs_f64())
}

/// Returns once the value log has not shrunk for `quiet` (automatic GC is idle).
fn wait_until_quiet(db: &Db, quiet: Duration) {
    let mut smallest = db.size().vlog_bytes;
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        std::thread::sleep(Duration::from_millis(200));
        let now = db.size().vlog_bytes;
        if now < smallest {
            smallest = now;
            since = Instant::now();
        }
    }
}

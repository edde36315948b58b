//! `settdb bench read`: Badger's `benchmark read`. Random point reads (`Db::get`, values
//! included) from `-g` threads for `-d`, over keys sampled from those `bench write` wrote;
//! prints reads/s and latency percentiles.
//!
//! Keys are sampled by regenerating them from the `BENCH_KEYS_SEED` file `bench write` left
//! in the directory: there is no iterator API yet. Sampling by iteration (any database) and
//! `--full-scan` come with it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::{Rng, RngCore, SeedableRng};
use settdb::Db;

use crate::bench_keys::BenchKeys;
use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::progress::{Goal, Progress};
use crate::units::{fmt_count, fmt_duration, fmt_latency_ns, fmt_rate};

/// Highest latency the histograms record (longer reads are counted as this).
const MAX_LATENCY_NS: u64 = 3_600 * 1_000_000_000;
/// Significant digits of the latency histograms.
const LATENCY_DIGITS: u8 = 3;
/// Reads a thread does between two updates of the shared progress counter.
const PROGRESS_EVERY: u64 = 64;

/// Flags of `bench read` (Badger's names).
#[derive(Debug, clap::Args)]
pub struct BenchReadArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Reader threads (Badger's goroutines).
    #[arg(short = 'g', long, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub goroutines: u32,
    /// How long to read: 10s, 1m, 1m30s, 500ms.
    #[arg(short = 'd', long, default_value = "10s", value_parser = crate::units::parse_duration)]
    pub duration: Duration,
    /// Keys sampled before reading (at most the number written).
    #[arg(long, default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_size: u64,
    /// Look keys up without reading their values (needs a key-only lookup in the library).
    #[arg(long)]
    pub keys_only: bool,
}

/// What one reader thread saw.
struct ReaderReport {
    latency_ns: Histogram<u64>,
    found: u64,
    missing: u64,
    value_bytes: u64,
}

/// Runs `bench read`.
pub fn run(args: BenchReadArgs) -> CliResult {
    if args.keys_only {
        return Err(CliError::new(
            "--keys-only needs a point lookup that does not read the value, which the library \
             does not have yet (`Db::get` always reads it)",
        ));
    }
    args.dirs.require_existing()?;
    let keys = BenchKeys::read_file(&args.dirs.dir)?;
    if keys.count == 0 {
        return Err(CliError::new(format!(
            "the bench write in {} wrote no keys",
            args.dirs.dir.display()
        )));
    }
    let sample = sample_keys(&keys, args.sample_size.min(keys.count));
    let db = args.dirs.open_read_only()?;
    let progress = Progress::start("bench read", Goal::Time(args.duration), "reads");
    let start = Instant::now();
    let outcome = read_for(&db, &sample, keys.key_size, &args, &progress);
    let elapsed = start.elapsed();
    progress.finish();
    let closed = db.close();
    let reports = outcome.map_err(|e| args.dirs.error(e))?;
    closed.map_err(|e| args.dirs.error(e))?;
    print_report(&args, &reports, elapsed, sample.len() / keys.key_size)
}

/// `n` keys drawn at random from those written, packed end to end.
fn sample_keys(keys: &BenchKeys, n: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::rng().next_u64());
    let mut out = vec![0u8; n as usize * keys.key_size];
    for chunk in out.chunks_exact_mut(keys.key_size) {
        keys.fill_key(rng.random_range(0..keys.count), chunk);
    }
    out
}

/// Reads from `args.goroutines` threads until `args.duration` has passed.
fn read_for(
    db: &Db,
    sample: &[u8],
    key_size: usize,
    args: &BenchReadArgs,
    progress: &Progress,
) -> settdb::Result<Vec<ReaderReport>> {
    let stop = AtomicBool::new(false);
    let counter = progress.counter();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.goroutines)
            .map(|_| {
                let (stop, counter) = (&stop, &counter);
                scope.spawn(move || read_loop(db, sample, key_size, stop, counter))
            })
            .collect();
        let deadline = Instant::now() + args.duration;
        // Stop early if a reader fails (it returns at once), else at the deadline.
        while Instant::now() < deadline && !handles.iter().any(|h| h.is_finished()) {
            std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(50)));
        }
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or(Err(settdb::Error::InvalidRequest(
                    "a reader thread panicked",
                )))
            })
            .collect()
    })
}

/// One reader: random keys of the sample until `stop`.
fn read_loop(
    db: &Db,
    sample: &[u8],
    key_size: usize,
    stop: &AtomicBool,
    counter: &AtomicU64,
) -> settdb::Result<ReaderReport> {
    let mut report = ReaderReport {
        latency_ns: Histogram::new_with_bounds(1, MAX_LATENCY_NS, LATENCY_DIGITS)
            .map_err(|_| settdb::Error::InvalidRequest("histogram bounds"))?,
        found: 0,
        missing: 0,
        value_bytes: 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::rng().next_u64());
    let n = sample.len() / key_size;
    let mut unreported = 0;
    while !stop.load(Ordering::Relaxed) {
        let i = rng.random_range(0..n);
        let key = &sample[i * key_size..(i + 1) * key_size];
        let t0 = Instant::now();
        let value = db.get(key)?;
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        report.latency_ns.saturating_record(ns.max(1));
        match value {
            Some(v) => {
                report.found += 1;
                report.value_bytes += v.len() as u64;
            }
            None => report.missing += 1,
        }
        unreported += 1;
        if unreported == PROGRESS_EVERY {
            counter.fetch_add(unreported, Ordering::Relaxed);
            unreported = 0;
        }
    }
    Ok(report)
}

fn print_report(
    args: &BenchReadArgs,
    reports: &[ReaderReport],
    elapsed: Duration,
    sampled: usize,
) -> CliResult {
    let mut latency = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, LATENCY_DIGITS)
        .map_err(|e| CliError::new(format!("histogram: {e}")))?;
    let (mut found, mut missing, mut bytes) = (0, 0, 0);
    for r in reports {
        latency
            .add(&r.latency_ns)
            .map_err(|e| CliError::new(format!("histogram: {e}")))?;
        found += r.found;
        missing += r.missing;
        bytes += r.value_bytes;
    }
    let reads = found + missing;
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "bench read: {} reads from {} threads in {} over {} sampled keys",
        fmt_count(reads),
        args.goroutines,
        fmt_duration(elapsed),
        fmt_count(sampled as u64),
    );
    println!(
        "  throughput  {} reads/s, {:.1} MB/s of values",
        fmt_rate(reads as f64 / secs),
        bytes as f64 / secs / 1e6
    );
    if reads > 0 {
        println!(
            "  latency     p50 {}, p99 {}, p99.9 {}, max {}",
            fmt_latency_ns(latency.value_at_quantile(0.5)),
            fmt_latency_ns(latency.value_at_quantile(0.99)),
            fmt_latency_ns(latency.value_at_quantile(0.999)),
            fmt_latency_ns(latency.max()),
        );
    }
    println!(
        "  found       {} ({} missing{})",
        fmt_count(found),
        fmt_count(missing),
        if missing > 0 {
            ": deleted or overwritten since `bench write`?"
        } else {
            ""
        }
    );
    Ok(())
}

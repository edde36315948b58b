//! `settdb bench read`: Badger's `benchmark read`, on any database.
//!
//! - Default: samples `--sample-size` keys uniformly from the whole database with one pass of
//!   a key-only iterator ([`KeySample`]), then does random point reads of them from `-g`
//!   threads for `-d`, each one `Db::view` + `txn.get` as Badger's `lookupForKey`, reading the
//!   value (`Item::value_with`); prints reads/s, MB/s and latency percentiles.
//! - `--keys-only`: the same lookups without asking for the value. `txn.get` returns an
//!   `Item` whose value-log value is only read when asked for, so no value-log read happens;
//!   a value stored inline in the LSM tree is copied into the item anyway (it comes with the
//!   key from the table block), so for small values the two modes differ little.
//! - `--full-scan`: one pass over every key with its value (values prefetched; with
//!   `--keys-only` without them) in one read-only transaction; prints keys/s and MB/s.
//!
//! `bench write` no longer leaves a seed file for this command: sampling by iteration works on
//! any database, reads only keys that exist (so "missing" means something), and costs one
//! key-only pass, about a second per few million keys.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::{Rng, RngCore, SeedableRng};
use settdb::{Db, Error, IteratorOptions};

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::key_sample::KeySample;
use settdb::CacheMetrics;

use crate::progress::{Goal, Progress};
use crate::units::{fmt_bytes, fmt_count, fmt_duration, fmt_latency_ns, fmt_rate};

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
    /// Keys sampled (uniformly, by a key-only pass over the database) before reading.
    #[arg(long, default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    pub sample_size: u64,
    /// Look keys up without reading their values (no value-log reads).
    #[arg(long)]
    pub keys_only: bool,
    /// Instead of point reads, iterate over every key (and value, unless --keys-only) once.
    #[arg(long)]
    pub full_scan: bool,
    /// Block cache size in MiB (Badger's default 256; 0 turns it off).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub block_cache_mb: u64,
    /// Index cache size in MiB (0, the default: every table keeps its index in memory).
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    pub index_cache_mb: u64,
    /// Read sealed value-log files through memory mappings (Options::value_log_mmap, on by
    /// default, Badger's way); `--value-log-mmap false` reads each value with pread.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub value_log_mmap: bool,
}

/// What one reader thread saw.
struct ReaderReport {
    latency_ns: Histogram<u64>,
    found: u64,
    missing: u64,
    /// Bytes of values read (of keys with --keys-only).
    bytes: u64,
}

/// Runs `bench read`.
pub fn run(args: BenchReadArgs) -> CliResult {
    args.dirs.require_database()?;
    let opts = args
        .dirs
        .options()?
        .with_read_only(true)
        .with_block_cache_size(args.block_cache_mb << 20)
        .with_index_cache_size(args.index_cache_mb << 20)
        .with_value_log_mmap(args.value_log_mmap);
    let db = args.dirs.open(opts)?;
    let outcome = if args.full_scan {
        full_scan(&db, &args)
    } else {
        point_reads(&db, &args)
    };
    let closed = db.close();
    outcome?;
    closed.map_err(|e| args.dirs.error(e))
}

/// Samples keys, then reads them at random.
fn point_reads(db: &Db, args: &BenchReadArgs) -> CliResult {
    let progress = Progress::start("sampling keys", Goal::Open, "keys");
    let start = Instant::now();
    let sample = KeySample::collect(db, args.sample_size as usize, &progress.counter());
    let sampling = start.elapsed();
    progress.finish();
    let sample = sample.map_err(|e| args.dirs.error(e))?;
    if sample.keys().is_empty() {
        return Err(CliError::new(format!(
            "{} holds no keys to read",
            args.dirs.dir.display()
        )));
    }
    eprintln!(
        "bench read: sampled {} of {} keys in {}",
        fmt_count(sample.keys().len() as u64),
        fmt_count(sample.seen()),
        fmt_duration(sampling)
    );
    let progress = Progress::start("bench read", Goal::Time(args.duration), "reads");
    let before = db.cache_metrics();
    let start = Instant::now();
    let outcome = read_for(db, sample.keys(), args, &progress);
    let elapsed = start.elapsed();
    progress.finish();
    let reports = outcome.map_err(|e| args.dirs.error(e))?;
    print_report(args, &reports, elapsed, &sample)?;
    print_caches(&before, &db.cache_metrics());
    Ok(())
}

/// The caches' work during the timed reads (`after` less `before`) and what they hold.
pub fn print_caches(before: &CacheMetrics, after: &CacheMetrics) {
    for (name, b, a) in [
        ("block cache", before.block, after.block),
        ("index cache", before.index, after.index),
    ] {
        if a.capacity == 0 {
            println!("  {name:<11} off");
            continue;
        }
        let d = a.since(&b);
        println!(
            "  {name:<11} hit ratio {:.1}% ({} hits, {} misses), {} of {} held in {} entries, {} evicted",
            100.0 * d.hit_ratio(),
            fmt_count(d.hits),
            fmt_count(d.misses),
            fmt_bytes(d.bytes),
            fmt_bytes(d.capacity),
            fmt_count(d.entries),
            fmt_count(d.evictions),
        );
    }
}

/// Reads from `args.goroutines` threads until `args.duration` has passed.
fn read_for(
    db: &Db,
    sample: &[Box<[u8]>],
    args: &BenchReadArgs,
    progress: &Progress,
) -> settdb::Result<Vec<ReaderReport>> {
    let stop = AtomicBool::new(false);
    let counter = progress.counter();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.goroutines)
            .map(|_| {
                let (stop, counter) = (&stop, &counter);
                scope.spawn(move || read_loop(db, sample, args.keys_only, stop, counter))
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
    sample: &[Box<[u8]>],
    keys_only: bool,
    stop: &AtomicBool,
    counter: &AtomicU64,
) -> settdb::Result<ReaderReport> {
    let mut report = ReaderReport {
        latency_ns: Histogram::new_with_bounds(1, MAX_LATENCY_NS, LATENCY_DIGITS)
            .map_err(|_| Error::InvalidRequest("histogram bounds"))?,
        found: 0,
        missing: 0,
        bytes: 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(rand::rng().next_u64());
    let mut unreported = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = &sample[rng.random_range(0..sample.len())];
        let t0 = Instant::now();
        let size = lookup(db, key, keys_only)?;
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        report.latency_ns.saturating_record(ns.max(1));
        match size {
            Some(bytes) => {
                report.found += 1;
                report.bytes += bytes;
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

/// One lookup as Badger's `lookupForKey`: a read-only transaction and `get`; the bytes of the
/// value, or with `keys_only` of the key (the value is not asked for, so a value-log value is
/// not read). `None` if the key has no value.
fn lookup(db: &Db, key: &[u8], keys_only: bool) -> settdb::Result<Option<u64>> {
    db.view(|txn| match txn.get(key)? {
        Some(_) if keys_only => Ok(Some(key.len() as u64)),
        Some(item) => item.value_with(|v| Some(v.len() as u64)),
        None => Ok(None),
    })
}

/// Iterates over every key once; prints keys/s and MB/s.
fn full_scan(db: &Db, args: &BenchReadArgs) -> CliResult {
    let progress = Progress::start("bench read --full-scan", Goal::Open, "keys");
    let start = Instant::now();
    let scanned = scan_all(db, !args.keys_only, &progress.counter());
    let elapsed = start.elapsed();
    progress.finish();
    let (keys, bytes) = scanned.map_err(|e| args.dirs.error(e))?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let what = if args.keys_only {
        "keys only"
    } else {
        "keys and values"
    };
    println!(
        "bench read --full-scan: {} keys, {} of {what} in {}",
        fmt_count(keys),
        fmt_bytes(bytes),
        fmt_duration(elapsed)
    );
    println!(
        "  throughput  {} keys/s, {:.1} MB/s",
        fmt_rate(keys as f64 / secs),
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

/// One pass in a read-only transaction: (keys, bytes of keys and of values when `values`).
fn scan_all(db: &Db, values: bool, counter: &AtomicU64) -> settdb::Result<(u64, u64)> {
    let txn = db.new_transaction(false)?;
    let mut it = txn.iter(IteratorOptions::default().with_prefetch_values(values))?;
    let (mut keys, mut bytes) = (0u64, 0u64);
    it.rewind()?;
    while it.valid() {
        let item = it.item();
        bytes += item.key().len() as u64;
        if values {
            bytes += item.value_with(|v| v.len() as u64)?;
        }
        keys += 1;
        if keys.is_multiple_of(PROGRESS_EVERY * 64) {
            counter.fetch_add(PROGRESS_EVERY * 64, Ordering::Relaxed);
        }
        it.next()?;
    }
    Ok((keys, bytes))
}

fn print_report(
    args: &BenchReadArgs,
    reports: &[ReaderReport],
    elapsed: Duration,
    sample: &KeySample,
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
        bytes += r.bytes;
    }
    let reads = found + missing;
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "bench read: {} reads{} from {} threads in {} over {} keys sampled from {}",
        fmt_count(reads),
        if args.keys_only { " (keys only)" } else { "" },
        args.goroutines,
        fmt_duration(elapsed),
        fmt_count(sample.keys().len() as u64),
        fmt_count(sample.seen()),
    );
    println!(
        "  throughput  {} reads/s, {:.1} MB/s of {}",
        fmt_rate(reads as f64 / secs),
        bytes as f64 / secs / 1e6,
        if args.keys_only { "keys" } else { "values" }
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
            ": expired since sampling?"
        } else {
            ""
        }
    );
    Ok(())
}

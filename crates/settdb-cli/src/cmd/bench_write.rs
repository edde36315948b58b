//! `settdb bench write`: Badger's `benchmark write`. Random keys (or sorted ones) with random
//! values, written in batches through `Db::write` by several threads, so that concurrent
//! batches share group commits; then `close`, which flushes the memtable. Prints entries/s,
//! MB/s, elapsed time, peak memory and the bytes on disk per file kind. `bench read` then
//! samples the keys from the database itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, RngCore, SeedableRng};
use settdb::Entry;
use settdb::{Db, Options};

use crate::bench_keys::{BenchKeys, SORTED_PREFIX_LEN};
use crate::cli_error::{CliError, CliResult};
use crate::compression_arg::CompressionArg;
use crate::db_dir::DirArgs;
use crate::disk_usage::{peak_memory_bytes, DiskUsage};
use crate::progress::{Goal, Progress};
use crate::temp_dir::TempDbDir;
use crate::units::{fmt_bytes, fmt_count, fmt_duration, fmt_rate};

/// Bytes of the random pool values are sliced from, beyond one value.
const VALUE_POOL_BYTES: usize = 8 << 20;
/// Largest `-m`: a trillion keys.
const MAX_KEYS_MIL: f64 = 1e6;

/// Flags of `bench write` (Badger's names and defaults).
#[derive(Debug, clap::Args)]
pub struct BenchWriteArgs {
    /// Database directory (an existing database is written into); without it, a temporary
    /// directory that is removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Value-log directory, when it is not --dir.
    #[arg(long, value_name = "DIR", requires = "dir")]
    pub vlog_dir: Option<PathBuf>,
    /// File holding an encryption key (16, 24 or 32 bytes): the database is encrypted.
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Bytes per key (32 is Badger's default; scripts/bench-vs-badger.sh compares at 16).
    #[arg(short = 'k', long, default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=settdb::key::MAX_KEY_SIZE as i64))]
    pub key_size: u32,
    /// Bytes per value.
    #[arg(short = 'v', long, default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(0..=1 << 30))]
    pub val_size: u32,
    /// Millions of keys to write (a fraction is fine: -m 0.01 is 10,000 keys).
    #[arg(short = 'm', long, default_value_t = 10.0, value_parser = parse_keys_mil,
          allow_negative_numbers = true)]
    pub keys_mil: f64,
    /// Write keys in ascending order (an 8-byte big-endian index prefix).
    #[arg(long)]
    pub sorted: bool,
    /// Sync the WAL and value log before each write is acknowledged.
    #[arg(long)]
    pub sync: bool,
    /// Turn automatic value-log GC off (measure the load alone, or keep the garbage of
    /// overwrites for `settdb gc`).
    #[arg(long)]
    pub no_auto_gc: bool,
    /// Values of at least this many bytes go to the value log.
    #[arg(short = 't', long, default_value_t = 1024, value_name = "BYTES")]
    pub value_threshold: u64,
    /// Block compression of tables.
    #[arg(long, value_enum, default_value_t = CompressionArg::Snappy)]
    pub compression: CompressionArg,
    /// Entries per `Db::write` call (lowered to fit the write size limit).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Threads writing batches at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub writers: u32,
    /// Seed of the keys and values (random when absent), for a reproducible run.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Parses `-m`: a finite, non-negative number of millions.
fn parse_keys_mil(s: &str) -> Result<f64, String> {
    let m: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if m.is_finite() && (0.0..=MAX_KEYS_MIL).contains(&m) {
        Ok(m)
    } else {
        Err(format!("{s} must be between 0 and {MAX_KEYS_MIL}"))
    }
}

/// What one load measured.
struct LoadReport {
    entries: u64,
    writing: Duration,
    closing: Duration,
    batch: usize,
}

/// Runs `bench write`.
pub fn run(args: BenchWriteArgs) -> CliResult {
    if args.sorted && (args.key_size as usize) < SORTED_PREFIX_LEN {
        return Err(CliError::usage(format!(
            "--sorted needs keys of at least {SORTED_PREFIX_LEN} bytes (-k)"
        )));
    }
    if let Some(d) = &args.dir {
        DirArgs {
            dir: d.clone(),
            vlog_dir: args.vlog_dir.clone(),
            encryption_key_file: None,
        }
        .refuse_foreign_files()?;
    }
    let (dir, temp) = match &args.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = TempDbDir::create("settdb-bench-")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let dirs = DirArgs {
        dir,
        vlog_dir: args.vlog_dir.clone(),
        encryption_key_file: args.encryption_key_file.clone(),
    };
    let keys = BenchKeys {
        seed: args.seed.unwrap_or_else(|| rand::rng().next_u64()),
        count: (args.keys_mil * 1e6).round() as u64,
        key_size: args.key_size as usize,
        sorted: args.sorted,
    };
    let opts = dirs
        .options()?
        .with_sync_writes(args.sync)
        .with_auto_value_log_gc(!args.no_auto_gc)
        .with_value_threshold(args.value_threshold)
        .with_compression(args.compression.to_compression(1));
    opts.validate().map_err(|e| dirs.error(e))?;
    let report = load(&dirs, opts, &keys, &args)?;
    let usage = DiskUsage::scan(&[&dirs.dir, dirs.value_dir()])
        .map_err(|e| CliError::new(format!("cannot list {}: {e}", dirs.dir.display())))?;
    print_report(&args, &keys, &report, &usage, &dirs.dir, temp.is_some());
    if let Some(t) = temp {
        t.close()?;
    }
    Ok(())
}

/// Opens the database, writes every key, closes; the times of the writes and of the close.
fn load(
    dirs: &DirArgs,
    opts: Options,
    keys: &BenchKeys,
    args: &BenchWriteArgs,
) -> CliResult<LoadReport> {
    // Half the write limits per batch, so a batch never trips TxnTooBig.
    let per_entry = (keys.key_size + args.val_size as usize + 32) as u64;
    let by_size = (opts.max_batch_size() / 2 / per_entry).max(1);
    let by_count = (opts.max_batch_count() / 2).max(1);
    let batch = u64::from(args.batch_size).min(by_size).min(by_count) as usize;
    let db = dirs.open(opts)?;
    eprintln!(
        "bench write: {} entries ({} B keys, {} B values) into {} with {} writers",
        fmt_count(keys.count),
        keys.key_size,
        args.val_size,
        dirs.dir.display(),
        args.writers
    );
    let progress = Progress::start("bench write", Goal::Items(keys.count), "entries");
    let start = Instant::now();
    let written = write_all(
        &db,
        keys,
        args.val_size as usize,
        batch,
        args.writers,
        &progress,
    );
    let writing = start.elapsed();
    progress.finish();
    let closing_progress = Progress::start("closing (flushing the memtable)", Goal::Open, "");
    let close_start = Instant::now();
    let closed = db.close();
    let closing = close_start.elapsed();
    closing_progress.finish();
    let entries = written.map_err(|e| dirs.error(e))?;
    closed.map_err(|e| dirs.error(e))?;
    Ok(LoadReport {
        entries,
        writing,
        closing,
        batch,
    })
}

/// Writes keys `0..keys.count` from `writers` threads, each claiming `batch` indices at a
/// time; returns the number written. The first error stops every thread.
fn write_all(
    db: &Db,
    keys: &BenchKeys,
    val_size: usize,
    batch: usize,
    writers: u32,
    progress: &Progress,
) -> settdb::Result<u64> {
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    // Values are slices of one random pool (incompressible, no copy), so the benchmark
    // measures the engine, not the value generator.
    let pool = random_pool(val_size, keys.seed);
    let counter = progress.counter();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (next, failed, pool, counter) = (&next, &failed, pool.clone(), counter.clone());
                scope.spawn(move || -> settdb::Result<()> {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(keys.seed ^ u64::from(w));
                    while !failed.load(Ordering::Relaxed) {
                        let from = next.fetch_add(batch as u64, Ordering::Relaxed);
                        if from >= keys.count {
                            return Ok(());
                        }
                        let to = (from + batch as u64).min(keys.count);
                        let entries = (from..to)
                            .map(|i| entry(keys, i, &pool, val_size, &mut rng))
                            .collect::<Vec<_>>();
                        if let Err(e) = db.write(entries) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                        counter.fetch_add(to - from, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first_err = None;
        for h in handles {
            let outcome = h.join().unwrap_or(Err(settdb::Error::InvalidRequest(
                "a writer thread panicked",
            )));
            if let Err(e) = outcome {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(keys.count),
        }
    })
}

/// Entry `i`: its key and a random slice of the pool as value.
fn entry(keys: &BenchKeys, i: u64, pool: &Bytes, val_size: usize, rng: &mut impl Rng) -> Entry {
    let off = rng.random_range(0..=pool.len() - val_size);
    Entry::new(keys.key(i), pool.slice(off..off + val_size))
}

/// Random bytes to slice values from.
fn random_pool(val_size: usize, seed: u64) -> Bytes {
    let mut pool = vec![0u8; VALUE_POOL_BYTES + val_size];
    rand::rngs::StdRng::seed_from_u64(seed ^ 0xfeed).fill_bytes(&mut pool);
    pool.into()
}

fn print_report(
    args: &BenchWriteArgs,
    keys: &BenchKeys,
    r: &LoadReport,
    usage: &DiskUsage,
    dir: &Path,
    temporary: bool,
) {
    let secs = (r.writing + r.closing).as_secs_f64().max(1e-9);
    let logical = r.entries * (keys.key_size as u64 + u64::from(args.val_size));
    println!(
        "bench write: {} entries ({} B keys, {} B values, {}{}, {} writers, batches of {}) in {}",
        fmt_count(r.entries),
        keys.key_size,
        args.val_size,
        format!("{:?}", args.compression).to_lowercase(),
        if args.sync { ", sync" } else { "" },
        args.writers,
        fmt_count(r.batch as u64),
        fmt_duration(r.writing + r.closing),
    );
    println!(
        "  throughput   {} entries/s, {:.1} MB/s of keys and values ({} writing, {} closing)",
        fmt_rate(r.entries as f64 / secs),
        logical as f64 / secs / 1e6,
        fmt_duration(r.writing),
        fmt_duration(r.closing),
    );
    match peak_memory_bytes() {
        Some(b) => println!("  peak memory  {} (VmHWM)", fmt_bytes(b)),
        None => println!("  peak memory  unknown (no /proc/self/status)"),
    }
    println!(
        "  on disk      {} for {} of keys and values: sst {}, vlog {}, mem {}, other {}",
        fmt_bytes(usage.total_bytes()),
        fmt_bytes(logical),
        usage.sst,
        usage.vlog,
        usage.mem,
        usage.other
    );
    println!(
        "  directory    {}{}",
        dir.display(),
        if temporary {
            " (temporary, removed now; pass --dir to keep it for `bench read`)"
        } else {
            ""
        }
    );
}

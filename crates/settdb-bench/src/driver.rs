//! `settdb-bench run`: the protocol's workloads (docs/bench/protocol.md) on an in-process
//! store. One process runs one workload and prints one `RESULT` line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::proto::{key, Dist, DistKind, Latency, Outcome, ValuePool, Zipf};
use crate::stores::{self, Engine, Res, Store};

/// The workloads of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    Load,
    Read,
    Scan,
    ScanShort,
    YcsbA,
    YcsbB,
    YcsbC,
    YcsbD,
    YcsbE,
    YcsbF,
    Overwrite,
    ReadWhileWriting,
}

/// `--txn`: a read transaction per read or one per thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TxnMode {
    View,
    Long,
}

/// The protocol's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Store to drive.
    #[arg(long, value_enum)]
    pub engine: Engine,
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// Database directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Records loaded (indexes 0..N).
    #[arg(long)]
    pub records: u64,
    #[arg(long)]
    pub value_size: usize,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seconds of the timed workloads.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    #[arg(long, value_enum, default_value_t = DistKind::Uniform)]
    pub dist: DistKind,
    #[arg(long, value_enum, default_value_t = TxnMode::View)]
    pub txn: TxnMode,
    /// Records per write batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Entries per short scan.
    #[arg(long, default_value_t = 50)]
    pub scan_len: u64,
    /// First index YCSB inserts use (default: records).
    #[arg(long)]
    pub insert_start: Option<u64>,
    /// Overwrites of the overwrite workload (default: records).
    #[arg(long)]
    pub ops: Option<u64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// read-while-writing: the writer's records per second (0: as fast as it can).
    #[arg(long, default_value_t = 0.0)]
    pub write_rate: f64,
    /// SettDB only: `Options::value_threshold` instead of its default (values of at least
    /// this many bytes go to the value log), for experiments; the same at every step.
    #[arg(long)]
    pub settdb_value_threshold: Option<u64>,
    /// SettDB only: `Options::auto_value_log_gc` instead of its default (on), for experiments.
    #[arg(long)]
    pub settdb_auto_gc: Option<bool>,
    /// SettDB only: `Options::background_nice` instead of its default, for experiments.
    #[arg(long)]
    pub settdb_background_nice: Option<i32>,
    /// SettDB only: `Options::value_log_gc_rate_bytes` instead of its default, for
    /// experiments.
    #[arg(long)]
    pub settdb_gc_rate_bytes: Option<u64>,
}

pub fn run(a: &RunArgs) -> Res<Outcome> {
    if a.records == 0 || a.threads == 0 || a.batch == 0 {
        return Err("--records, --threads and --batch must be positive".into());
    }
    let pool = ValuePool::new(a.value_size, a.seed);
    let start = Instant::now();
    let tweaks = stores::SettdbTweaks {
        value_threshold: a.settdb_value_threshold,
        auto_gc: a.settdb_auto_gc,
        background_nice: a.settdb_background_nice,
        gc_rate_bytes: a.settdb_gc_rate_bytes,
    };
    if a.engine != Engine::Settdb {
        if let Some(flag) = tweaks.first_set() {
            return Err(format!("--settdb-{flag} is for --engine settdb only").into());
        }
    }
    let mut store = stores::open(a.engine, &a.dir, a.value_size, tweaks)?;
    let mut out = match a.workload {
        Workload::Load => load(&*store, a, &pool)?,
        Workload::Read => timed(a, |t, stop| read_thread(&*store, a, t, stop))?,
        Workload::Scan => {
            let t = Instant::now();
            let (n, bytes) = store.scan(None, u64::MAX)?;
            Outcome {
                ops: n,
                secs: t.elapsed().as_secs_f64(),
                bytes: Some(bytes),
                ..Outcome::default()
            }
        }
        Workload::ScanShort => timed(a, |t, stop| {
            let mut rng = thread_rng(a, t);
            let mut out = ThreadOut::default();
            while !stop.load(Ordering::Relaxed) {
                let k = key(rng.random_range(0..a.records));
                store.scan(Some(&k), a.scan_len)?;
                out.ops += 1;
            }
            Ok(out)
        })?,
        Workload::YcsbA
        | Workload::YcsbB
        | Workload::YcsbC
        | Workload::YcsbD
        | Workload::YcsbE
        | Workload::YcsbF => ycsb(&*store, a, &pool)?,
        Workload::Overwrite => {
            let t = Instant::now();
            let ops = a.ops.unwrap_or(a.records);
            let mut rng = thread_rng(a, 0);
            let mut done = 0;
            while done < ops {
                let n = (ops - done).min(a.batch as u64);
                let batch = (0..n)
                    .map(|_| (key(rng.random_range(0..a.records)), pool.value(&mut rng)))
                    .collect();
                store.write(batch)?;
                done += n;
            }
            let secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            store.reclaim()?;
            Outcome {
                ops,
                secs,
                gc_secs: Some(t.elapsed().as_secs_f64()),
                ..Outcome::default()
            }
        }
        Workload::ReadWhileWriting => read_while_writing(&*store, a, &pool)?,
    };
    store.close()?;
    if a.workload == Workload::Load {
        out.secs = start.elapsed().as_secs_f64();
    }
    Ok(out)
}

fn thread_rng(a: &RunArgs, t: usize) -> SmallRng {
    SmallRng::seed_from_u64(a.seed.wrapping_mul(1_000_003) + t as u64)
}

fn load(store: &dyn Store, a: &RunArgs, pool: &ValuePool) -> Res<Outcome> {
    let mut rng = thread_rng(a, 0);
    let mut i = 0;
    while i < a.records {
        let to = (i + a.batch as u64).min(a.records);
        store.write((i..to).map(|j| (key(j), pool.value(&mut rng))).collect())?;
        i = to;
    }
    Ok(Outcome {
        ops: a.records,
        ..Outcome::default()
    })
}

/// One thread's counts.
#[derive(Default)]
struct ThreadOut {
    ops: u64,
    missing: u64,
    inserts: u64,
    latency: Option<Latency>,
}

/// Runs `body` on `a.threads` threads for `a.secs` seconds and sums what they did.
fn timed<F>(a: &RunArgs, body: F) -> Res<Outcome>
where
    F: Fn(usize, &AtomicBool) -> Res<ThreadOut> + Sync,
{
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let outs = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|t| {
                let (body, stop) = (&body, &stop);
                s.spawn(move || body(t, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(a.secs));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("worker thread panicked".into()))
            })
            .collect::<Res<Vec<_>>>()
    })?;
    let secs = start.elapsed().as_secs_f64();
    let mut out = Outcome {
        secs,
        missing: Some(0),
        ..Outcome::default()
    };
    for o in outs {
        out.ops += o.ops;
        *out.missing.get_or_insert(0) += o.missing;
        if o.inserts > 0 {
            *out.inserts.get_or_insert(0) += o.inserts;
        }
        if let Some(l) = o.latency {
            out.latency.get_or_insert_with(Latency::default).merge(&l);
        }
    }
    Ok(out)
}

fn read_thread(store: &dyn Store, a: &RunArgs, t: usize, stop: &AtomicBool) -> Res<ThreadOut> {
    let mut rng = thread_rng(a, t);
    let dist = Dist::new(a.dist, a.records);
    let mut out = ThreadOut::default();
    let mut reader = match a.txn {
        TxnMode::Long => Some(store.reader()?),
        TxnMode::View => None,
    };
    while !stop.load(Ordering::Relaxed) {
        let k = key(dist.next(&mut rng));
        let len = match &mut reader {
            Some(r) => r.get(&k)?,
            None => store.get(&k)?,
        };
        if len != Some(a.value_size) {
            out.missing += 1;
        }
        out.ops += 1;
    }
    Ok(out)
}

/// YCSB's mixes: percentages of (read, update, insert, scan, read-modify-write).
fn mix(w: Workload) -> [u32; 5] {
    match w {
        Workload::YcsbA => [50, 50, 0, 0, 0],
        Workload::YcsbB => [95, 5, 0, 0, 0],
        Workload::YcsbC => [100, 0, 0, 0, 0],
        Workload::YcsbD => [95, 0, 5, 0, 0],
        Workload::YcsbE => [0, 0, 5, 95, 0],
        Workload::YcsbF => [50, 0, 0, 0, 50],
        _ => [100, 0, 0, 0, 0],
    }
}

fn ycsb(store: &dyn Store, a: &RunArgs, pool: &ValuePool) -> Res<Outcome> {
    let [read, update, insert, scan, _rmw] = mix(a.workload);
    let insert_start = a.insert_start.unwrap_or(a.records);
    // Inserts: thread t writes indexes M+t, M+t+T, ... and publishes how many it finished, so
    // every index below M + T * min(finished) exists ("latest" reads pick among those).
    let finished: Vec<AtomicU64> = (0..a.threads).map(|_| AtomicU64::new(0)).collect();
    let latest = Zipf::new(a.records);
    let dist = Dist::new(DistKind::Zipf, a.records);
    timed(a, |t, stop| {
        let mut rng = thread_rng(a, t);
        let mut out = ThreadOut {
            latency: Some(Latency::default()),
            ..ThreadOut::default()
        };
        let mut lat = Latency::default();
        while !stop.load(Ordering::Relaxed) {
            let p = rng.random_range(0..100);
            let began = Instant::now();
            if p < read {
                let i = if a.workload == Workload::YcsbD {
                    // "latest": the records 0..N followed by this run's finished inserts,
                    // counted back from the newest.
                    let done = finished
                        .iter()
                        .map(|f| f.load(Ordering::Acquire))
                        .min()
                        .unwrap_or(0);
                    let total = a.records + a.threads as u64 * done;
                    let p = total - 1 - latest.rank(&mut rng).min(total - 1);
                    if p < a.records {
                        p
                    } else {
                        insert_start + (p - a.records)
                    }
                } else {
                    dist.next(&mut rng)
                };
                if store.get(&key(i))? != Some(a.value_size) {
                    out.missing += 1;
                }
            } else if p < read + update {
                let i = dist.next(&mut rng);
                store.write(vec![(key(i), pool.value(&mut rng))])?;
            } else if p < read + update + insert {
                let i = insert_start + t as u64 + out.inserts * a.threads as u64;
                store.write(vec![(key(i), pool.value(&mut rng))])?;
                out.inserts += 1;
                finished[t].store(out.inserts, Ordering::Release);
            } else if p < read + update + insert + scan {
                let len = rng.random_range(1..=100);
                store.scan(Some(&key(dist.next(&mut rng))), len)?;
            } else {
                let k = key(dist.next(&mut rng));
                if store.get(&k)? != Some(a.value_size) {
                    out.missing += 1;
                }
                store.write(vec![(k, pool.value(&mut rng))])?;
            }
            lat.record(began.elapsed());
            out.ops += 1;
        }
        out.latency = Some(lat);
        Ok(out)
    })
}

fn read_while_writing(store: &dyn Store, a: &RunArgs, pool: &ValuePool) -> Res<Outcome> {
    let writes = AtomicU64::new(0);
    let stop_writer = AtomicBool::new(false);
    let dist = Dist::new(a.dist, a.records);
    std::thread::scope(|s| {
        let writer = s.spawn(|| -> Res<()> {
            let mut rng = thread_rng(a, 1000);
            let start = Instant::now();
            let mut written = 0u64;
            while !stop_writer.load(Ordering::Relaxed) {
                if a.write_rate > 0.0 {
                    // At most R records per second: the next batch starts at written/R.
                    let due = Duration::from_secs_f64(written as f64 / a.write_rate);
                    while start.elapsed() < due && !stop_writer.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                written += a.batch as u64;
                let batch = (0..a.batch)
                    .map(|_| (key(rng.random_range(0..a.records)), pool.value(&mut rng)))
                    .collect();
                store.write(batch)?;
                writes.fetch_add(a.batch as u64, Ordering::Relaxed);
            }
            Ok(())
        });
        let readers = timed(a, |t, stop| {
            let mut rng = thread_rng(a, t);
            let mut out = ThreadOut::default();
            let mut lat = Latency::default();
            while !stop.load(Ordering::Relaxed) {
                let k = key(dist.next(&mut rng));
                let began = Instant::now();
                let len = store.get(&k)?;
                lat.record(began.elapsed());
                if len != Some(a.value_size) {
                    out.missing += 1;
                }
                out.ops += 1;
            }
            out.latency = Some(lat);
            Ok(out)
        });
        stop_writer.store(true, Ordering::Relaxed);
        let w = writer
            .join()
            .unwrap_or_else(|_| Err("writer thread panicked".into()));
        let mut out = readers?;
        w?;
        out.writes = Some(writes.load(Ordering::Relaxed));
        Ok(out)
    })
}

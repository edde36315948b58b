//! `settdb-bench compare`: SettDB beside its peers in one run. Builds the Go and C++ drivers,
//! measures the disk with `dd`, then for each store runs the plan's steps one process at a
//! time (driver protocol, docs/bench/protocol.md) under `/usr/bin/time` (peak RSS and bytes
//! written), sampling RSS while loads run, and writes the report (report.rs).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::driver::{TxnMode, Workload};
use crate::proto::DistKind;
use crate::report::{self, Row};
use crate::stores::Res;

/// The stores `compare` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Peer {
    Settdb,
    Badger,
    Rocksdb,
    DbBench,
    Fjall,
    Redb,
    Sled,
}

impl Peer {
    pub const ALL: [Peer; 7] = [
        Peer::Settdb,
        Peer::Badger,
        Peer::Rocksdb,
        Peer::DbBench,
        Peer::Fjall,
        Peer::Redb,
        Peer::Sled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Settdb => "settdb",
            Peer::Badger => "badger",
            Peer::Rocksdb => "rocksdb",
            Peer::DbBench => "db_bench",
            Peer::Fjall => "fjall",
            Peer::Redb => "redb",
            Peer::Sled => "sled",
        }
    }

    /// How the store is configured, for the report.
    pub fn config(self) -> &'static str {
        match self {
            Peer::Settdb => "SettDB defaults: `Options::new(dir)` (256 MiB block cache, snappy, values of 1 KiB and more in the value log, its sealed files read through mmap); batches via `Db::write`",
            Peer::Badger => "Go Badger v2.2007 (Debian) via bench/badger-peer: `DefaultOptions(dir)` with `SyncWrites(false)`; `WriteBatch` loads, `db.View` reads, `RunValueLogGC(0.5)` until `ErrNoRewrite`",
            Peer::Rocksdb => "RocksDB 7.8 (Debian librocksdb) via bench/rocksdb-peer: the tuning guide's options (IncreaseParallelism(2), OptimizeLevelStyleCompaction, dynamic level bytes, bloom 10 bits, 256 MiB LRU block cache with index and filter blocks in it, 16 KiB blocks, LZ4 with ZSTD at the bottom), WAL on, no sync; one WriteBatch per batch",
            Peer::DbBench => "RocksDB 7.8's own `db_bench` (Debian rocksdb-tools): filluniquerandom + flush, readrandom, readseq, readwhilewriting; snappy, bloom 10 bits, 256 MiB cache, incompressible values",
            Peer::Fjall => "fjall 3.1: 256 MiB cache, default keyspace (LZ4), key-value separation for values of 4 KiB and more; `persist(SyncAll)` at close",
            Peer::Redb => "redb 4.6: 256 MiB cache; a write transaction per batch with `Durability::None`, an `Immediate` commit at close; `compact()` to reclaim",
            Peer::Sled => "sled 0.34: 256 MiB cache; `apply_batch` per batch, `flush` at close",
        }
    }

    fn in_process(self) -> Option<crate::stores::Engine> {
        use crate::stores::Engine;
        match self {
            Peer::Settdb => Some(Engine::Settdb),
            Peer::Fjall => Some(Engine::Fjall),
            Peer::Redb => Some(Engine::Redb),
            Peer::Sled => Some(Engine::Sled),
            _ => None,
        }
    }
}

/// Groups of steps, to run a part of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Group {
    Loads,
    Reads,
    Scans,
    Ycsb,
    ReadWhileWriting,
    Overwrite,
    Scale,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Directory for the databases (about 15 GB free at the default scale).
    #[arg(long)]
    pub work: PathBuf,
    /// Directory for the report (results.md, results.csv, plots).
    #[arg(long)]
    pub out: PathBuf,
    /// Records of the 128 B and 1 KiB loads (the 16 KiB load has a tenth).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Seconds of each timed workload.
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Stores to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub stores: Vec<Peer>,
    /// Groups to run, comma-separated (default: all but scale).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Group>,
    /// Records of the scale group's 128 B load and reads.
    #[arg(long, default_value_t = 10_000_000)]
    pub big_records: u64,
    /// Threads of the YCSB and short-scan workloads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// The writer's pace in read-while-writing (records/s): the same write load on every store,
/// enough to flush a memtable every few seconds and keep compactions running.
const RWW_RATE: u64 = 200_000;
/// read-while-writing runs at least this long (at 100K records or more), so flushes and
/// compactions happen in it.
const RWW_SECS: f64 = 10.0;

/// One step of the plan.
#[derive(Debug, Clone)]
struct Step {
    peer: Peer,
    group: Group,
    label: String,
    workload: Workload,
    db: String,
    records: u64,
    value_size: usize,
    threads: usize,
    dist: DistKind,
    txn: TxnMode,
    /// Drop the database directory after this step.
    drop_after: bool,
}

fn plan(a: &CompareArgs, peers: &[Peer], groups: &[Group]) -> Vec<Step> {
    let n = a.records;
    let big = a.big_records;
    let mut steps = Vec::new();
    for &peer in peers {
        let db_bench = peer == Peer::DbBench;
        let mk = |group: Group, label: String, workload, db: &str, records, value_size| Step {
            peer,
            group,
            label,
            workload,
            db: db.to_string(),
            records,
            value_size,
            threads: 1,
            dist: DistKind::Uniform,
            txn: TxnMode::View,
            drop_after: false,
        };
        let mut mine = Vec::new();
        for (records, v) in [(n, 128), (n, 1024), (n / 10, 16384)] {
            let label = format!("load {} x {}", count(records), size(v));
            mine.push(mk(
                Group::Loads,
                label,
                Workload::Load,
                &format!("v{v}"),
                records,
                v,
            ));
        }
        for dist in [DistKind::Uniform, DistKind::Zipf] {
            for threads in [1, 2, 4] {
                for txn in [TxnMode::View, TxnMode::Long] {
                    if db_bench && (dist == DistKind::Zipf || txn == TxnMode::Long) {
                        continue;
                    }
                    let how = if txn == TxnMode::View {
                        "view"
                    } else {
                        "long-txn"
                    };
                    let label = format!("read {} {threads}t {how}", dist_name(dist));
                    mine.push(Step {
                        threads,
                        dist,
                        txn,
                        ..mk(Group::Reads, label, Workload::Read, "v128", n, 128)
                    });
                }
            }
        }
        mine.push(mk(
            Group::Scans,
            "scan full 128 B".into(),
            Workload::Scan,
            "v128",
            n,
            128,
        ));
        if !db_bench {
            let label = format!("scan 50 x {}t", a.threads);
            mine.push(Step {
                threads: a.threads,
                ..mk(Group::Scans, label, Workload::ScanShort, "v128", n, 128)
            });
            for (w, l) in [
                (Workload::YcsbA, "ycsb-a"),
                (Workload::YcsbB, "ycsb-b"),
                (Workload::YcsbC, "ycsb-c"),
                (Workload::YcsbF, "ycsb-f"),
                (Workload::YcsbD, "ycsb-d"),
                (Workload::YcsbE, "ycsb-e"),
            ] {
                mine.push(Step {
                    threads: a.threads,
                    ..mk(Group::Ycsb, l.into(), w, "v1024", n, 1024)
                });
            }
        }
        let label = format!("read while writing {}K/s, 128 B", RWW_RATE / 1000);
        mine.push(mk(
            Group::ReadWhileWriting,
            label,
            Workload::ReadWhileWriting,
            "v128",
            n,
            128,
        ));
        if !db_bench {
            let label = format!("overwrite {} x 16 KiB + GC", count(n / 10));
            mine.push(mk(
                Group::Overwrite,
                label,
                Workload::Overwrite,
                "v16384",
                n / 10,
                16384,
            ));
        }
        let label = format!("load {} x 128 B", count(big));
        mine.push(mk(Group::Scale, label, Workload::Load, "big", big, 128));
        for dist in [DistKind::Uniform, DistKind::Zipf] {
            if db_bench && dist == DistKind::Zipf {
                continue;
            }
            let label = format!("read {} 2t view @{}", dist_name(dist), count(big));
            mine.push(Step {
                threads: 2,
                dist,
                ..mk(Group::Scale, label, Workload::Read, "big", big, 128)
            });
        }
        mine.retain(|s| groups.contains(&s.group));
        // Drop each database after its last step.
        for db in ["v128", "v1024", "v16384", "big"] {
            if let Some(last) = mine.iter_mut().rev().find(|s| s.db == db) {
                last.drop_after = true;
            }
        }
        steps.extend(mine);
    }
    steps
}

fn dist_name(d: DistKind) -> &'static str {
    match d {
        DistKind::Uniform => "uniform",
        DistKind::Zipf => "zipf",
    }
}

pub fn count(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}K", n / 1000)
    } else {
        n.to_string()
    }
}

fn size(v: usize) -> String {
    if v >= 1024 && v.is_multiple_of(1024) {
        format!("{} KiB", v / 1024)
    } else {
        format!("{v} B")
    }
}

/// Where the drivers live.
struct Drivers {
    settdb_bench: PathBuf,
    badger: Option<PathBuf>,
    rocksdb: Option<PathBuf>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn build_drivers(a: &CompareArgs, peers: &[Peer]) -> Res<Drivers> {
    let root = repo_root();
    let mut d = Drivers {
        settdb_bench: std::env::current_exe()?,
        badger: None,
        rocksdb: None,
    };
    if peers.contains(&Peer::Badger) {
        let out = a.work.join("badger-peer");
        eprintln!("building bench/badger-peer (Go, Debian's Badger v2.2007 sources)...");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./bench/badger-peer")
            .current_dir(&root)
            .env("GOPATH", "/usr/share/gocode")
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", a.work.join("gocache"))
            .status()
            .map_err(|e| format!("go build (install golang-go): {e}"))?;
        if !status.success() {
            return Err("go build of bench/badger-peer failed".into());
        }
        d.badger = Some(out);
    }
    if peers.contains(&Peer::Rocksdb) {
        let out = a.work.join("rocksdb-peer");
        eprintln!("building bench/rocksdb-peer (C++, Debian's librocksdb)...");
        let status = Command::new("sh")
            .arg(root.join("bench/rocksdb-peer/build.sh"))
            .arg(&out)
            .current_dir(&root)
            .status()?;
        if !status.success() {
            return Err("build of bench/rocksdb-peer failed (install librocksdb-dev)".into());
        }
        d.rocksdb = Some(out);
    }
    Ok(d)
}

/// What one driver process reported and used.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    pub fields: Vec<(String, String)>,
    pub wall_secs: f64,
    pub peak_rss_mb: f64,
    pub write_bytes: u64,
    /// (seconds since start, RSS MB) samples every 100 ms.
    pub rss_series: Vec<(f64, f64)>,
}

impl Measured {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// Runs `cmd` under `/usr/bin/time`, sampling the RSS of the process it starts.
fn measure(mut cmd: Command, log: &Path) -> Res<Measured> {
    let time_out = log.with_extension("time");
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "TIME %e %M %O", "-o"])
        .arg(&time_out)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        timed.current_dir(d);
    }
    cmd = timed;
    let stdout_path = log.with_extension("out");
    cmd.stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(log)?)
        .stdin(Stdio::null());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("/usr/bin/time (install `time`): {e}"))?;
    let mut series = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(rss) = grandchild_rss_mb(child.id()) {
            series.push((start.elapsed().as_secs_f64(), rss));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path)?;
    if !status.success() {
        let err = std::fs::read_to_string(log).unwrap_or_default();
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("exit {status}: {last} (log {})", log.display()).into());
    }
    let time = std::fs::read_to_string(&time_out)?;
    let t: Vec<&str> = time
        .lines()
        .find(|l| l.starts_with("TIME "))
        .ok_or("no TIME line from /usr/bin/time")?
        .split_whitespace()
        .collect();
    let mut m = Measured {
        wall_secs: t.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.0),
        peak_rss_mb: t.get(2).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0,
        write_bytes: t.get(3).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) * 512,
        rss_series: series,
        fields: Vec::new(),
    };
    if let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT ")) {
        m.fields = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    } else {
        m.fields.push(("raw".into(), stdout));
    }
    Ok(m)
}

/// RSS of the first child of `pid` (the driver `/usr/bin/time` started), in MB.
fn grandchild_rss_mb(pid: u32) -> Option<f64> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    let child = children.split_whitespace().next()?;
    let status = std::fs::read_to_string(format!("/proc/{child}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The protocol's arguments for a step.
fn protocol_args(s: &Step, dir: &Path, secs: f64, insert_start: u64) -> Vec<String> {
    let secs = if s.workload == Workload::ReadWhileWriting && s.records >= 100_000 {
        secs.max(RWW_SECS)
    } else {
        secs
    };
    let w = match s.workload {
        Workload::Load => "load",
        Workload::Read => "read",
        Workload::Scan => "scan",
        Workload::ScanShort => "scan-short",
        Workload::YcsbA => "ycsb-a",
        Workload::YcsbB => "ycsb-b",
        Workload::YcsbC => "ycsb-c",
        Workload::YcsbD => "ycsb-d",
        Workload::YcsbE => "ycsb-e",
        Workload::YcsbF => "ycsb-f",
        Workload::Overwrite => "overwrite",
        Workload::ReadWhileWriting => "read-while-writing",
    };
    let mut args: Vec<String> = vec![
        "--workload".into(),
        w.into(),
        "--dir".into(),
        dir.display().to_string(),
        "--records".into(),
        s.records.to_string(),
        "--value-size".into(),
        s.value_size.to_string(),
        "--threads".into(),
        s.threads.to_string(),
        "--secs".into(),
        secs.to_string(),
        "--dist".into(),
        dist_name(s.dist).into(),
        "--txn".into(),
        (if s.txn == TxnMode::View {
            "view"
        } else {
            "long"
        })
        .into(),
        "--insert-start".into(),
        insert_start.to_string(),
    ];
    if s.workload == Workload::ReadWhileWriting {
        args.extend(["--write-rate".into(), RWW_RATE.to_string()]);
    }
    args
}

/// db_bench's command for a step, and how to read its result.
fn db_bench_cmd(s: &Step, dir: &Path, secs: f64) -> Command {
    let mut c = Command::new("db_bench");
    let bench = match s.workload {
        Workload::Load => "filluniquerandom,flush",
        Workload::Scan => "readseq",
        Workload::ReadWhileWriting => "readwhilewriting",
        _ => "readrandom",
    };
    c.arg(format!("--benchmarks={bench}"))
        .arg(format!("--db={}", dir.display()))
        .arg(format!("--num={}", s.records))
        .arg("--key_size=16")
        .arg(format!("--value_size={}", s.value_size))
        .arg("--compression_type=snappy")
        .arg("--compression_ratio=1")
        .arg("--bloom_bits=10")
        .arg(format!("--cache_size={}", crate::stores::CACHE_BYTES))
        .arg("--sync=0");
    if s.workload != Workload::Load {
        c.arg("--use_existing_db=1");
    }
    match s.workload {
        Workload::Read => {
            c.arg(format!("--threads={}", s.threads))
                .arg(format!("--duration={}", secs.ceil() as u64));
        }
        Workload::ReadWhileWriting => {
            c.arg(format!("--threads={}", s.threads))
                .arg(format!("--duration={}", secs.max(RWW_SECS).ceil() as u64))
                .arg(format!(
                    "--benchmark_write_rate_limit={}",
                    RWW_RATE * (16 + s.value_size as u64)
                ))
                .arg("--histogram=1");
        }
        _ => {
            c.arg("--threads=1");
        }
    }
    c
}

/// Turns db_bench's output into the protocol's fields.
fn parse_db_bench(s: &Step, m: &mut Measured) {
    let raw = m
        .fields
        .iter()
        .find(|(k, _)| k == "raw")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let name = match s.workload {
        Workload::Load => "filluniquerandom",
        Workload::Scan => "readseq",
        Workload::ReadWhileWriting => "readwhilewriting",
        _ => "readrandom",
    };
    let mut fields = Vec::new();
    if s.workload == Workload::Load {
        fields.push(("ops".into(), s.records.to_string()));
        fields.push(("secs".into(), m.wall_secs.to_string()));
    } else if let Some(line) = raw.lines().find(|l| l.starts_with(name)) {
        // "readrandom   :   3.1 micros/op 640000 ops/sec 5.0 seconds 3200000 operations; ..."
        let words: Vec<&str> = line.split_whitespace().collect();
        let before = |w: &str| {
            words
                .iter()
                .position(|x| x.starts_with(w))
                .and_then(|i| i.checked_sub(1))
                .map(|i| words[i].to_string())
        };
        if let (Some(ops_s), Some(secs)) = (before("ops/sec"), before("seconds")) {
            let (ops_s, secs): (f64, f64) =
                (ops_s.parse().unwrap_or(0.0), secs.parse().unwrap_or(0.0));
            fields.push(("ops".into(), format!("{:.0}", ops_s * secs)));
            fields.push(("secs".into(), secs.to_string()));
        }
        if let Some(p) = raw.lines().find(|l| l.starts_with("Percentiles:")) {
            // "Percentiles: P50: 1.23 P75: 2.01 P99: 5.20 P99.9: 9.10 P99.99: 20.00"
            let w: Vec<&str> = p.split_whitespace().collect();
            for (tag, key) in [
                ("P50:", "p50_us"),
                ("P99:", "p99_us"),
                ("P99.9:", "p999_us"),
            ] {
                if let Some(i) = w.iter().position(|x| *x == tag) {
                    if let Some(v) = w.get(i + 1) {
                        fields.push((key.into(), v.to_string()));
                    }
                }
            }
        }
    }
    m.fields = fields;
}

/// `dd`'s bandwidth writing `mib` MiB in 1 MiB blocks with fdatasync in `dir`, in MB/s.
fn dd_bandwidth(dir: &Path, mib: u64) -> Res<f64> {
    let f = dir.join("dd.tmp");
    let start = Instant::now();
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "conv=fdatasync"])
        .arg(format!("count={mib}"))
        .arg(format!("of={}", f.display()))
        .output()?;
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&f);
    if !out.status.success() {
        return Err(format!("dd: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    // dd prints "2147483648 bytes (2.1 GB, 2.0 GiB) copied, 1.52 s, 1.4 GB/s"; use its seconds.
    let err = String::from_utf8_lossy(&out.stderr);
    let dd_secs = err
        .lines()
        .find(|l| l.contains("copied"))
        .and_then(|l| l.split(", ").nth(2))
        .and_then(|s| s.trim_end_matches(" s").parse::<f64>().ok())
        .unwrap_or(secs);
    Ok(mib as f64 * 1048576.0 / dd_secs / 1e6)
}

pub fn run(a: &CompareArgs) -> Res<()> {
    std::fs::create_dir_all(&a.work)?;
    std::fs::create_dir_all(&a.out)?;
    let logs = a.out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let peers: Vec<Peer> = if a.stores.is_empty() {
        // The C++ RocksDB driver is not written yet: RocksDB runs through db_bench alone.
        let have_driver = repo_root().join("bench/rocksdb-peer/build.sh").exists();
        Peer::ALL
            .into_iter()
            .filter(|p| *p != Peer::Rocksdb || have_driver)
            .collect()
    } else {
        a.stores.clone()
    };
    let groups: Vec<Group> = if a.only.is_empty() {
        vec![
            Group::Loads,
            Group::Reads,
            Group::Scans,
            Group::Ycsb,
            Group::ReadWhileWriting,
            Group::Overwrite,
        ]
    } else {
        a.only.clone()
    };
    let drivers = build_drivers(a, &peers)?;
    eprintln!("measuring the disk with dd (2 GiB, fdatasync; again before each 16 KiB load)...");
    let dd = dd_bandwidth(&a.work, 2048)?;
    eprintln!("dd: {dd:.0} MB/s");
    let steps = plan(a, &peers, &groups);
    let total = steps.len();
    let began = Instant::now();
    let mut rows = Vec::new();
    let mut insert_start: std::collections::HashMap<Peer, u64> = Default::default();
    for (i, s) in steps.iter().enumerate() {
        let dir = a.work.join(format!("{}-{}", s.peer.name(), s.db));
        if s.workload == Workload::Load {
            let _ = std::fs::remove_dir_all(&dir);
        } else if !dir.exists() {
            eprintln!(
                "[{}/{total}] {} {}: skipped (its database was not loaded in this run)",
                i + 1,
                s.peer.name(),
                s.label
            );
            continue;
        }
        let m_start = *insert_start.entry(s.peer).or_insert(s.records);
        let args = protocol_args(s, &dir, a.secs, m_start);
        let cmd = match s.peer {
            Peer::DbBench => db_bench_cmd(s, &dir, a.secs),
            Peer::Badger => {
                let mut c = Command::new(drivers.badger.as_ref().ok_or("no badger driver")?);
                c.args(&args);
                c
            }
            Peer::Rocksdb => {
                let mut c = Command::new(drivers.rocksdb.as_ref().ok_or("no rocksdb driver")?);
                c.args(&args);
                c
            }
            p => {
                let engine = p.in_process().ok_or("not an in-process store")?;
                let mut c = Command::new(&drivers.settdb_bench);
                c.args(["run", "--engine", engine_name(engine)]).args(&args);
                c
            }
        };
        let log = logs.join(format!(
            "{:03}-{}-{}.log",
            i + 1,
            s.peer.name(),
            s.label.replace([' ', '/', '@'], "_")
        ));
        eprint!(
            "[{}/{total} {:>5.0}s] {:<9} {:<28} ",
            i + 1,
            began.elapsed().as_secs_f64(),
            s.peer.name(),
            s.label
        );
        // This machine's disk bandwidth swings several-fold within minutes: each load of
        // large values is compared with dd writing the same bytes just before it.
        let dd_before = if s.workload == Workload::Load && s.value_size >= 16384 {
            let mib = (s.records * (16 + s.value_size as u64)) >> 20;
            Some(dd_bandwidth(&a.work, mib.max(64))?)
        } else {
            None
        };
        let outcome = measure(cmd, &log).map(|mut m| {
            if s.peer == Peer::DbBench {
                parse_db_bench(s, &mut m);
            }
            m
        });
        let mut row = Row::new(
            s.peer,
            s.group,
            &s.label,
            s.records,
            s.value_size,
            s.threads,
        );
        row.dd_mb_s = dd_before;
        match outcome {
            Ok(m) => {
                if let Some(ins) = m.get("inserts") {
                    *insert_start.entry(s.peer).or_insert(s.records) +=
                        ins as u64 * s.threads as u64;
                }
                row.fill(&m);
                if s.workload == Workload::Load {
                    row.disk_bytes = Some(dir_bytes(&dir));
                }
                if s.workload == Workload::Overwrite {
                    row.disk_bytes = Some(dir_bytes(&dir));
                }
                if let Some(e) = row.check() {
                    row.error = Some(e);
                }
            }
            Err(e) => row.error = Some(e.to_string()),
        }
        eprintln!("{}", row.summary());
        rows.push(row);
        if s.drop_after {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let mut header = String::new();
    let _ = writeln!(
        header,
        "{} records (16 KiB: {}), {} s per timed workload, {} threads for YCSB and short scans; \
         dd with fdatasync wrote {dd:.0} MB/s; {}; total {:.0} s",
        count(a.records),
        count(a.records / 10),
        a.secs,
        a.threads,
        machine(),
        began.elapsed().as_secs_f64()
    );
    report::write(&a.out, &header, &peers, dd, &rows)?;
    eprintln!("report: {}", a.out.join("results.md").display());
    Ok(())
}

fn engine_name(e: crate::stores::Engine) -> &'static str {
    e.name()
}

/// CPU count and memory of this machine.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1048576.0);
    format!("{cpus} CPUs, {mem_gib:.0} GiB")
}

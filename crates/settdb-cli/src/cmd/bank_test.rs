//! `settdb bank test`: Badger's bank test (Jepsen's bank workload). Sets up `-a` accounts of
//! [`INITIAL_BALANCE`] with a `WriteBatch`; then `-c` worker threads move
//! [`TRANSFER_AMOUNT`] between two random accounts in `Db::update` transactions (each balance
//! read by `txn.get` or by a fresh iterator and a seek, at random; a transfer from an account
//! with less is abandoned; conflicts are counted and not retried), while one checker thread
//! sums every account in `Db::view` transactions, by point reads or by a prefix scan at
//! random, for `-d`. Serializable snapshot isolation means every sum is `accounts × 100`.
//!
//! The first wrong sum (or missing account, or a value that is not a balance) stops every
//! thread; the command prints the sum and the read timestamp it was seen at, keeps the
//! directory (even a temporary one) for `settdb bank disect`, and exits with code 3
//! ([`crate::cli_error::EXIT_CHECK_FAILED`]). A library error exits 1. Every version is kept
//! (`num_versions_to_keep` = u32::MAX) so that disect can read any past snapshot.
//!
//! `--gc` adds a thread running value-log GC in a loop (`Db::run_value_log_gc` at ratio
//! [`GC_RATIO`]) over 1 MiB value-log files, with one version kept per key so compaction
//! leaves garbage to collect (automatic GC off: this thread is the only collector); a GC
//! error fails the run like any library error.
//!
//! `--check-subscriber` subscribes to every account key before the set-up and replays the
//! updates into a model on its own thread ([`crate::bank_replay`]): they must come in commit
//! order, sum to the bank's total after every batch once every account was seen, and equal
//! the database's last snapshot at the end; a failure exits 3 like a wrong total.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use settdb::{Db, Error, GcOutcome};

use crate::bank_accounts::{
    balances_by_scan, bank_options, read_balance, BankAccounts, Total, INITIAL_BALANCE,
    TRANSFER_AMOUNT,
};
use crate::bank_replay::{ReplayCheck, ReplaySummary};
use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::progress::{Goal, Progress};
use crate::temp_dir::TempDbDir;
use crate::units::{fmt_bytes, fmt_count, fmt_duration, fmt_rate};

/// Flags of `bank test` (Badger's names).
#[derive(Debug, clap::Args)]
pub struct BankTestArgs {
    /// Database directory, new or empty (kept afterwards); without it, a temporary directory,
    /// removed after a pass and kept after a failure.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// File holding an encryption key (16, 24 or 32 bytes): the bank runs on an encrypted
    /// database.
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Number of accounts.
    #[arg(short = 'a', long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(2..=100_000_000))]
    pub accounts: u32,
    /// Worker threads doing transfers at the same time.
    #[arg(short = 'c', long, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub conc: u32,
    /// How long to run: 30s, 3m, 1h.
    #[arg(short = 'd', long, default_value = "1m", value_parser = crate::units::parse_duration)]
    pub duration: Duration,
    /// Testing the test: after this many transfers, one transfer credits the money without
    /// debiting it, so the run must fail and `bank disect` must find that transaction.
    #[arg(long, value_name = "N", hide = true)]
    pub inject_fault_after: Option<u64>,
    /// Run value-log GC over and over beside the transfers (1 MiB value-log files), so every
    /// check also reads values GC moved. Keeps one version per key, as GC needs: `bank
    /// disect` cannot read the past snapshots of such a run.
    #[arg(long)]
    pub gc: bool,
    /// Also subscribe to every account (`Db::subscribe`) and replay the updates into a
    /// model: commit order, the total after every batch, and the model equal to the
    /// database at the end.
    #[arg(long)]
    pub check_subscriber: bool,
}

/// The discard ratio the `--gc` thread collects at.
const GC_RATIO: f64 = 0.5;
/// How long the `--gc` thread waits when there was nothing to rewrite.
const GC_IDLE: Duration = Duration::from_millis(20);

/// Why the run stopped before its time.
#[derive(Debug)]
enum Failure {
    /// A snapshot did not add up.
    WrongTotal { total: Total, by_scan: bool },
    /// A worker read an account that is missing or not a balance.
    BadAccount { why: String, read_ts: u64 },
    /// The subscriber's replay did not match (`--check-subscriber`).
    Subscriber { why: String },
    /// The library failed.
    Db(Error),
}

/// What the threads share.
struct Shared {
    bank: BankAccounts,
    stop: AtomicBool,
    failure: Mutex<Option<Failure>>,
    /// Copied from the progress counter the workers add to, once they stopped.
    transfers: AtomicU64,
    aborted: AtomicU64,
    conflicts: Arc<AtomicU64>,
    checks: Arc<AtomicU64>,
    checks_by_scan: AtomicU64,
    /// Transfers before the injected fault; `u64::MAX`: none.
    fault_after: u64,
    /// True while a worker runs the faulty transfer, and for good once it committed.
    fault_injected: AtomicBool,
    /// `--gc`: value-log files GC retired, and the bytes it gave back.
    gc_files: AtomicU64,
    gc_bytes: AtomicU64,
    /// `--check-subscriber`: what the replay saw, once it passed.
    replay: Mutex<Option<ReplaySummary>>,
}

impl Shared {
    /// Records `f` if it is the first failure, and stops every thread.
    fn fail(&self, f: Failure) {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(f);
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `bank test`.
pub fn run(args: BankTestArgs) -> CliResult {
    let (mut dirs, temp) = test_dir(args.dir.as_ref())?;
    dirs.encryption_key_file = args.encryption_key_file.clone();
    let bank = BankAccounts { n: args.accounts };
    let mut opts = bank_options(dirs.options()?);
    if args.gc {
        opts = opts
            .with_num_versions_to_keep(1)
            .with_value_log_file_size(1 << 20)
            .with_auto_value_log_gc(false);
    }
    let db = dirs.open(opts)?;
    let shared = Shared {
        bank,
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
        transfers: AtomicU64::new(0),
        aborted: AtomicU64::new(0),
        conflicts: Arc::new(AtomicU64::new(0)),
        checks: Arc::new(AtomicU64::new(0)),
        checks_by_scan: AtomicU64::new(0),
        fault_after: args.inject_fault_after.unwrap_or(u64::MAX),
        fault_injected: AtomicBool::new(false),
        gc_files: AtomicU64::new(0),
        gc_bytes: AtomicU64::new(0),
        replay: Mutex::new(None),
    };
    let replay = if args.check_subscriber {
        Some(ReplayCheck::start(&db, bank).map_err(|e| dirs.error(e))?)
    } else {
        None
    };
    let mut elapsed = Duration::ZERO;
    let mut last = None;
    let outcome = set_up(&db, bank).and_then(|()| {
        elapsed = run_threads(&db, &shared, &args);
        final_check(&db, &shared)?;
        if replay.is_some() {
            last = Some(db.view(|txn| balances_by_scan(txn))?);
        }
        Ok(())
    });
    // Closing ends the subscription once every applied update was delivered.
    let closed = db.close();
    if let Err(e) = outcome {
        shared.fail(Failure::Db(e));
    }
    if let Err(e) = closed {
        shared.fail(Failure::Db(e));
    }
    if let Some(r) = replay {
        match r.finish(last.as_ref()) {
            Ok(summary) => *shared.replay.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary),
            Err(why) => shared.fail(Failure::Subscriber { why }),
        }
    }
    let failure = shared
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    print_summary(&shared, &args, elapsed);
    match failure {
        None => {
            print_directory(&dirs.dir, temp.is_some(), true, args.gc);
            if let Some(t) = temp {
                t.close()?;
            }
            Ok(())
        }
        Some(f) => {
            // A failed run's history is the evidence: never remove it.
            let dir = temp.map_or(dirs.dir.clone(), |t| t.keep());
            report_failure(f, bank, &dir, &dirs, args.gc)
        }
    }
}

/// The directory to use: `--dir` (new or empty) or a temporary one.
fn test_dir(dir: Option<&PathBuf>) -> CliResult<(DirArgs, Option<TempDbDir>)> {
    let (dir, temp) = match dir {
        Some(d) => {
            let non_empty = std::fs::read_dir(d).is_ok_and(|mut entries| entries.next().is_some());
            if non_empty {
                return Err(CliError::new(format!(
                    "{} is not empty: bank test needs a new or empty directory (its accounts \
                     must be the only ones)",
                    d.display()
                )));
            }
            (d.clone(), None)
        }
        None => {
            let t = TempDbDir::create("settdb-bank-")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    Ok((
        DirArgs {
            dir,
            vlog_dir: None,
            encryption_key_file: None,
        },
        temp,
    ))
}

/// Writes every account at its initial balance.
fn set_up(db: &Db, bank: BankAccounts) -> settdb::Result<()> {
    let mut batch = db.new_write_batch()?;
    for i in 0..bank.n {
        batch.set(BankAccounts::key(i), INITIAL_BALANCE.to_string())?;
    }
    batch.flush()
}

/// Runs the workers and the checker until the duration is over or one of them fails; how
/// long they ran.
fn run_threads(db: &Db, shared: &Shared, args: &BankTestArgs) -> Duration {
    eprintln!(
        "bank test: {} accounts, {} workers, {}",
        fmt_count(u64::from(args.accounts)),
        args.conc,
        fmt_duration(args.duration)
    );
    let (conflicts, checks) = (shared.conflicts.clone(), shared.checks.clone());
    let progress = Progress::start_with_detail(
        "bank test",
        Goal::Time(args.duration),
        "transfers",
        move || {
            format!(
                "{} conflicts, {} checks",
                fmt_count(conflicts.load(Ordering::Relaxed)),
                fmt_count(checks.load(Ordering::Relaxed))
            )
        },
    );
    let transfers = progress.counter();
    let start = Instant::now();
    let deadline = start + args.duration;
    std::thread::scope(|scope| {
        for _ in 0..args.conc {
            scope.spawn(|| worker(db, shared, &transfers, deadline));
        }
        scope.spawn(|| checker(db, shared, deadline));
        if args.gc {
            scope.spawn(|| collector(db, shared, deadline));
        }
        while Instant::now() < deadline && !shared.stopped() {
            std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(50)));
        }
        shared.stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed();
    progress.finish();
    shared
        .transfers
        .store(transfers.load(Ordering::Relaxed), Ordering::Relaxed);
    elapsed
}

/// Transfers between random accounts until stopped.
fn worker(db: &Db, shared: &Shared, transfers: &AtomicU64, deadline: Instant) {
    let mut rng = rand::rng();
    let n = shared.bank.n;
    while !shared.stopped() && Instant::now() < deadline {
        let from = rng.random_range(0..n);
        let to = (from + rng.random_range(1..n)) % n;
        let via = (rng.random_bool(0.5), rng.random_bool(0.5));
        // The fault is claimed by one worker at a time and released unless it committed.
        let faulty = transfers.load(Ordering::Relaxed) >= shared.fault_after
            && !shared.fault_injected.swap(true, Ordering::Relaxed);
        let outcome = transfer(db, from, to, via, faulty);
        if faulty && !matches!(outcome, Ok(Transfer::Moved)) {
            shared.fault_injected.store(false, Ordering::Relaxed);
        }
        match outcome {
            Ok(Transfer::Moved) => transfers.fetch_add(1, Ordering::Relaxed),
            Ok(Transfer::Abandoned) => shared.aborted.fetch_add(1, Ordering::Relaxed),
            Ok(Transfer::Bad { why, read_ts }) => {
                shared.fail(Failure::BadAccount { why, read_ts });
                return;
            }
            Err(Error::Conflict) => shared.conflicts.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                shared.fail(Failure::Db(e));
                return;
            }
        };
    }
}

/// What one transfer did.
enum Transfer {
    Moved,
    /// The source had less than [`TRANSFER_AMOUNT`].
    Abandoned,
    /// An account was missing or not a balance (nothing was written).
    Bad {
        why: String,
        read_ts: u64,
    },
}

/// Moves [`TRANSFER_AMOUNT`] from `from` to `to` in one transaction; `via` picks the read
/// path of each balance (true: iterator and seek); `faulty` skips the debit (the injected
/// fault). `Err(Conflict)`: retry is the caller's.
fn transfer(
    db: &Db,
    from: u32,
    to: u32,
    via: (bool, bool),
    faulty: bool,
) -> settdb::Result<Transfer> {
    db.update(|txn| {
        let (from_key, to_key) = (BankAccounts::key(from), BankAccounts::key(to));
        let a = read_balance(txn, &from_key, via.0)?;
        let b = read_balance(txn, &to_key, via.1)?;
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(why), _) | (_, Err(why)) => {
                let read_ts = txn.read_ts();
                return Ok(Transfer::Bad { why, read_ts });
            }
        };
        if a < TRANSFER_AMOUNT {
            return Ok(Transfer::Abandoned);
        }
        if !faulty {
            txn.set(from_key, (a - TRANSFER_AMOUNT).to_string())?;
        }
        txn.set(to_key, (b + TRANSFER_AMOUNT).to_string())?;
        Ok(Transfer::Moved)
    })
}

/// Sums every account, again and again, until stopped; a wrong sum fails the run.
fn checker(db: &Db, shared: &Shared, deadline: Instant) {
    let mut rng = rand::rng();
    while !shared.stopped() && Instant::now() < deadline {
        let by_scan = rng.random_bool(0.5);
        match total(db, shared.bank, by_scan) {
            Ok(t) if shared.bank.is_correct(&t) => {
                shared.checks.fetch_add(1, Ordering::Relaxed);
                if by_scan {
                    shared.checks_by_scan.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(total) => shared.fail(Failure::WrongTotal { total, by_scan }),
            Err(e) => shared.fail(Failure::Db(e)),
        }
    }
}

/// `--gc`: value-log GC until stopped; an error fails the run.
fn collector(db: &Db, shared: &Shared, deadline: Instant) {
    while !shared.stopped() && Instant::now() < deadline {
        match db.run_value_log_gc(GC_RATIO) {
            Ok(GcOutcome::Rewrote(r)) => {
                shared
                    .gc_files
                    .fetch_add(r.files_retired.len() as u64, Ordering::Relaxed);
                shared
                    .gc_bytes
                    .fetch_add(r.bytes_reclaimed(), Ordering::Relaxed);
            }
            Ok(GcOutcome::NothingToRewrite) => std::thread::sleep(GC_IDLE),
            Err(e) => shared.fail(Failure::Db(e)),
        }
    }
}

fn total(db: &Db, bank: BankAccounts, by_scan: bool) -> settdb::Result<Total> {
    db.view(|txn| {
        if by_scan {
            bank.total_by_scan(txn)
        } else {
            bank.total_by_get(txn)
        }
    })
}

/// After the threads stopped (without a failure): one more sum each way.
fn final_check(db: &Db, shared: &Shared) -> settdb::Result<()> {
    if shared
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some()
    {
        return Ok(());
    }
    for by_scan in [false, true] {
        let t = total(db, shared.bank, by_scan)?;
        if !shared.bank.is_correct(&t) {
            shared.fail(Failure::WrongTotal { total: t, by_scan });
            break;
        }
        shared.checks.fetch_add(1, Ordering::Relaxed);
        shared
            .checks_by_scan
            .fetch_add(u64::from(by_scan), Ordering::Relaxed);
    }
    Ok(())
}

fn print_summary(shared: &Shared, args: &BankTestArgs, elapsed: Duration) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (moved, checks) = (load(&shared.transfers), load(&shared.checks));
    println!(
        "bank test: {} accounts, {} workers, {}",
        fmt_count(u64::from(args.accounts)),
        args.conc,
        fmt_duration(elapsed)
    );
    println!(
        "  transfers  {} ({}/s), {} abandoned (balance below {TRANSFER_AMOUNT}), {} conflicts",
        fmt_count(moved),
        fmt_rate(moved as f64 / elapsed.as_secs_f64().max(1e-9)),
        fmt_count(load(&shared.aborted)),
        fmt_count(load(&shared.conflicts)),
    );
    println!(
        "  checks     {} correct totals of {} ({} by point reads, {} by scans)",
        fmt_count(checks),
        fmt_count(shared.bank.expected_total()),
        fmt_count(checks - load(&shared.checks_by_scan).min(checks)),
        fmt_count(load(&shared.checks_by_scan)),
    );
    if args.gc {
        println!(
            "  gc         {} value-log files retired, {} given back",
            fmt_count(load(&shared.gc_files)),
            fmt_bytes(load(&shared.gc_bytes)),
        );
    }
    if let Some(r) = *shared.replay.lock().unwrap_or_else(|e| e.into_inner()) {
        println!(
            "  subscriber {} updates in {} batches replayed, {} totals correct, equal to the \
             database at the end",
            fmt_count(r.updates),
            fmt_count(r.batches),
            fmt_count(r.totals_checked),
        );
    }
}

fn print_directory(dir: &std::path::Path, temporary: bool, passed: bool, gc: bool) {
    let note = match (temporary, passed) {
        (true, true) => " (temporary, removed now; pass --dir to keep it)".to_string(),
        _ if gc => " (kept; a run with --gc keeps one version per key, so `bank disect` \
                    cannot replay it: rerun without --gc to bisect)"
            .to_string(),
        _ => format!(
            " (kept: `settdb bank disect --dir {}` finds the first wrong read_ts)",
            dir.display()
        ),
    };
    println!("  directory  {}{note}", dir.display());
}

/// Prints what failed and turns it into the command's error.
fn report_failure(
    f: Failure,
    bank: BankAccounts,
    dir: &std::path::Path,
    dirs: &DirArgs,
    gc: bool,
) -> CliResult {
    let outcome = match f {
        Failure::WrongTotal { total, by_scan } => {
            let how = if by_scan {
                "a prefix scan"
            } else {
                "point reads"
            };
            let problem = total.problem.map(|p| format!(" ({p})")).unwrap_or_default();
            println!(
                "FAILED: total {} instead of {} at read_ts {}, seen by {how}{problem}",
                fmt_count(total.sum),
                fmt_count(bank.expected_total()),
                total.read_ts,
            );
            Err(CliError::check_failed(format!(
                "bank test failed: total {} instead of {} at read_ts {}{problem}",
                total.sum,
                bank.expected_total(),
                total.read_ts
            )))
        }
        Failure::BadAccount { why, read_ts } => {
            println!("FAILED: {why} at read_ts {read_ts}");
            Err(CliError::check_failed(format!(
                "bank test failed: {why} at read_ts {read_ts}"
            )))
        }
        Failure::Subscriber { why } => {
            println!("FAILED: subscriber: {why}");
            Err(CliError::check_failed(format!(
                "bank test failed: the subscriber's replay: {why}"
            )))
        }
        Failure::Db(e) => Err(dirs.error(e)),
    };
    print_directory(dir, false, false, gc);
    outcome
}

//! Automatic value-log GC yields the CPU to the rest of the process
//! (`Options::value_log_gc_busy_space_amp`), and gives way to a caller or a close. Alone in
//! its test binary, one test at a time: GC measures the whole process's CPU time, so other
//! tests running beside it would look like a busy application (and their load would skew
//! the timings here).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{small_options, value_for};
use settdb::io::{FsStorage, Storage};
use settdb::{Db, GcOutcome, Options};

/// The tests here run one at a time: each measures what the whole process does.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts(dir: &Path) -> Options {
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
    small_options(dir, storage)
}

/// Five rounds of overwrites of 300 keys of 2,000 bytes (a value log about five times its
/// live values) with automatic GC off; returns the model.
fn garbage(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = Db::open(opts(dir).with_auto_value_log_gc(false)).unwrap();
    let mut model = BTreeMap::new();
    for round in 0..5 {
        for i in 0..300u64 {
            let k = format!("key{i:05}").into_bytes();
            let v = value_for(&k, round, 2000);
            db.set(k.clone(), v.clone()).unwrap();
            model.insert(k, v);
        }
    }
    db.close().unwrap();
    model
}

/// Threads spinning on every core (one more than the cores) until dropped.
struct Spinners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spinners {
    fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..=cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
            })
            .collect();
        Spinners { stop, threads }
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// Waits up to `limit` for automatic GC to retire a file; how long it took.
fn first_retire(db: &Db, limit: Duration) -> Duration {
    let t = Instant::now();
    while db.stats().gc_files_rewritten == 0 {
        assert!(
            t.elapsed() < limit,
            "automatic GC retired nothing in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

fn check_model(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
}

#[test]
fn automatic_gc_waits_while_the_process_is_busy_unless_the_value_log_is_past_its_bound() {
    // Proves both sides of the yield. With every core kept busy by the application's
    // threads and the busy bound far above the value log's space amplification (about 5),
    // automatic GC retires nothing; once they stop it retires files. With the bound at the
    // target (never yield), it retires files while the cores are busy. The first case
    // waits several times what the second needed, so a GC that did not yield would have
    // retired a file in it.
    let _serial = serial();
    let (yielding, urgent) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = garbage(yielding.path());
    assert_eq!(garbage(urgent.path()), model);

    let spin = Spinners::start();
    let db = Db::open(opts(urgent.path()).with_value_log_gc_busy_space_amp(1.5)).unwrap();
    let busy_but_urgent = first_retire(&db, Duration::from_secs(60));
    check_model(&db, &model);
    db.close().unwrap();

    let waited = (busy_but_urgent * 4).max(Duration::from_secs(3));
    let db = Db::open(opts(yielding.path()).with_value_log_gc_busy_space_amp(100.0)).unwrap();
    std::thread::sleep(waited);
    let stats = db.stats();
    assert_eq!(
        stats.gc_files_rewritten, 0,
        "GC did not yield to busy threads in {waited:?}: {stats:?}"
    );
    drop(spin);
    let idle = first_retire(&db, Duration::from_secs(60));
    check_model(&db, &model);
    db.close().unwrap();
    eprintln!(
        "first file retired: {busy_but_urgent:?} busy past the bound, none in {waited:?} busy \
         below it, {idle:?} once idle"
    );
}

#[test]
fn a_caller_does_not_wait_for_a_yielding_automatic_run() {
    // Proves that automatic GC yielding to busy threads while it holds the one-run lock
    // does not hold up a caller who needs that lock: a manual GC call made while every core
    // is busy (and automatic GC waits for them) completes, with the spinners still running.
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let model = garbage(dir.path());
    let spin = Spinners::start();
    let db = Arc::new(Db::open(opts(dir.path()).with_value_log_gc_busy_space_amp(100.0)).unwrap());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(db.stats().gc_files_rewritten, 0, "GC did not yield");
    let (tx, rx) = std::sync::mpsc::channel();
    let caller = db.clone();
    std::thread::spawn(move || {
        let _ = tx.send(caller.run_value_log_gc(0.3));
    });
    let outcome = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a manual GC call waited behind a yielding automatic run");
    // The manual call, or the automatic runs that stopped yielding while it waited (they
    // may take the lock first), did the work, with the cores still busy.
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(db.stats().gc_files_rewritten > 0, "{outcome:?}");
    assert!(matches!(
        db.run_value_log_gc(0.3),
        Ok(GcOutcome::NothingToRewrite)
    ));
    drop(spin);
    check_model(&db, &model);
    db.close().unwrap();
}

#[test]
fn a_close_does_not_wait_for_gc_to_classify_a_whole_dead_file() {
    // Proves that GC looks at close while it classifies the records of a file, not only when
    // it moves values: a file of 60K small records, all overwritten, moves nothing, and a
    // close made halfway through its rewrite returns in well under the rest of it.
    let _serial = serial();
    let (dir, copy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let o = |p: &Path| {
        opts(p)
            .with_value_log_file_size(8 << 20)
            .with_value_threshold(16)
            .with_mem_table_size(16 << 20)
    };
    for d in [dir.path(), copy.path()] {
        let db = Db::open(o(d).with_auto_value_log_gc(false)).unwrap();
        for round in 0..2u64 {
            for chunk in 0..60u64 {
                let mut batch = db.new_write_batch().unwrap();
                for i in chunk * 1000..(chunk + 1) * 1000 {
                    let k = format!("key{i:06}").into_bytes();
                    batch.set(k.clone(), value_for(&k, round, 100)).unwrap();
                }
                batch.flush().unwrap();
            }
        }
        db.flatten().unwrap();
        db.close().unwrap();
    }
    // How long a whole run takes (the copy).
    let db = Db::open(o(copy.path()).with_auto_value_log_gc(false)).unwrap();
    let t = Instant::now();
    assert!(matches!(
        db.run_value_log_gc(0.5),
        Ok(GcOutcome::Rewrote(_))
    ));
    let whole = t.elapsed();
    db.close().unwrap();
    // Automatic GC (never yielding) on the original, closed halfway through.
    let db = Db::open(
        o(dir.path())
            .with_auto_value_log_gc(true)
            .with_value_log_gc_busy_space_amp(1.5),
    )
    .unwrap();
    std::thread::sleep(whole / 2);
    let t = Instant::now();
    db.close().unwrap();
    let close = t.elapsed();
    eprintln!("a whole GC run {whole:?}, the close halfway through it {close:?}");
    assert!(close < whole / 4, "close {close:?}, whole run {whole:?}");
}

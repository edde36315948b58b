//! Metrics: with `metrics_enabled` the engine emits `settdb_*` counters, gauges and histograms
//! that match known work (sets, gets, a flush, a compaction, a value-log GC) exactly or at
//! least; with it off nothing at all is recorded. One test in this binary: the recorder is
//! global (the flush, compaction and writer threads emit too) and its snapshots drain it.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{small_options, value_for};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use settdb::io::{FsStorage, Storage};
use settdb::{Db, GcOutcome, Options};

const KEYS: u64 = 300;
const ROUNDS: u64 = 5;
const VALUE_LEN: usize = 2000;

fn opts(dir: &std::path::Path, metrics: bool) -> Options {
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
    // No compactor thread: the one compaction is the test's `flatten`.
    small_options(dir, storage)
        .with_auto_value_log_gc(false)
        .with_num_compactors(0)
        .with_metrics_enabled(metrics)
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// What was recorded since the last snapshot, by name, labels summed over.
#[derive(Debug, Default)]
struct Taken {
    counters: HashMap<String, u64>,
    gauges: HashMap<String, f64>,
    histograms: HashMap<String, usize>,
}

impl Taken {
    fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
    fn samples(&self, name: &str) -> usize {
        self.histograms.get(name).copied().unwrap_or(0)
    }
}

fn take(s: &Snapshotter) -> Taken {
    let mut t = Taken::default();
    for (ck, _, _, value) in s.snapshot().into_vec() {
        let key = ck.key();
        let name = key.name().to_string();
        assert!(name.starts_with("settdb_"), "{name}");
        match value {
            DebugValue::Counter(v) => *t.counters.entry(name).or_default() += v,
            DebugValue::Gauge(v) => {
                let labels: Vec<String> = key.labels().map(|l| l.value().to_string()).collect();
                t.gauges.insert(format!("{name}{labels:?}"), v.0);
            }
            DebugValue::Histogram(v) => *t.histograms.entry(name).or_default() += v.len(),
        }
    }
    t
}

fn overwrite(db: &Db) {
    for r in 0..ROUNDS {
        for i in 0..KEYS {
            db.set(key(i), value_for(&key(i), r, VALUE_LEN)).unwrap();
        }
    }
}

#[test]
fn metrics_match_known_work_and_nothing_is_recorded_when_disabled() {
    // Proves both sides: a database with metrics off does sets, gets, a flush and a compaction
    // and the global recorder sees no key at all; one with metrics on reports exactly the puts,
    // user bytes and gets it did, and at least one flush, compaction and GC run, each with its
    // bytes and latency samples, and the level gauges; Db::stats agrees.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), false)).unwrap();
    overwrite(&db);
    for i in 0..KEYS {
        assert!(db.get(key(i)).unwrap().is_some());
    }
    db.flatten().unwrap();
    db.close().unwrap();
    let off = take(&snapshotter);
    assert!(off.counters.is_empty(), "{off:?}");
    assert!(
        off.gauges.is_empty() && off.histograms.is_empty(),
        "{off:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), true)).unwrap();
    take(&snapshotter);

    overwrite(&db);
    let writes = take(&snapshotter);
    let puts = KEYS * ROUNDS;
    assert_eq!(writes.counter("settdb_puts_total"), puts);
    let user = puts * (key(0).len() + VALUE_LEN) as u64;
    assert_eq!(writes.counter("settdb_written_bytes_user_total"), user);
    assert!(writes.counter("settdb_written_bytes_vlog_total") >= puts * VALUE_LEN as u64);
    assert!(writes.counter("settdb_written_bytes_wal_total") > 0);
    let groups = writes.samples("settdb_write_group_seconds");
    assert!(groups >= 1 && groups as u64 <= puts, "{groups}");

    for i in 0..KEYS {
        assert!(db.get(key(i)).unwrap().is_some());
    }
    assert!(db.get(b"absent").unwrap().is_none());
    let gets = take(&snapshotter);
    assert_eq!(gets.counter("settdb_gets_total"), KEYS + 1);
    assert_eq!(gets.counter("settdb_get_misses_total"), 1);
    let hits = gets.counter("settdb_get_memtable_hits_total")
        + gets.counter("settdb_get_level_hits_total");
    assert_eq!(hits, KEYS);
    assert_eq!(gets.samples("settdb_get_seconds"), KEYS as usize + 1);
    assert!(gets.counter("settdb_read_bytes_vlog_total") >= KEYS * VALUE_LEN as u64);

    db.flush().unwrap();
    let flush = take(&snapshotter);
    assert!(flush.counter("settdb_flushes_total") >= 1, "{flush:?}");
    assert!(flush.counter("settdb_written_bytes_table_total") > 0);
    assert!(flush.samples("settdb_flush_seconds") >= 1);
    let l0 = flush.gauges.get("settdb_level_tables[\"0\"]").copied();
    assert!(l0.is_some_and(|n| n >= 1.0), "{flush:?}");

    db.flatten().unwrap();
    let compaction = take(&snapshotter);
    assert!(
        compaction.counter("settdb_compactions_total") >= 1,
        "{compaction:?}"
    );
    assert!(compaction.counter("settdb_compaction_bytes_in_total") > 0);
    assert!(compaction.counter("settdb_compaction_bytes_out_total") > 0);
    assert!(compaction.samples("settdb_compaction_seconds") >= 1);

    // After the flatten every key is in one level: absent keys inside its range meet filters.
    for i in 0..KEYS {
        let absent = format!("key{i:05}x");
        assert!(db.get(absent.as_bytes()).unwrap().is_none());
    }
    let bloom = take(&snapshotter);
    assert_eq!(bloom.counter("settdb_get_misses_total"), KEYS);
    let filtered = bloom.counter("settdb_bloom_filtered_total");
    let passed = bloom.counter("settdb_bloom_passed_total");
    // At most one table per read (one level); a key past a table's range meets none.
    assert!(filtered + passed <= KEYS, "{bloom:?}");
    assert!(filtered >= KEYS * 8 / 10, "{bloom:?}");
    assert_eq!(bloom.counter("settdb_bloom_false_positives_total"), passed);

    let report = match db.run_value_log_gc(0.5).unwrap() {
        GcOutcome::Rewrote(r) => r,
        GcOutcome::NothingToRewrite => panic!("nothing rewritten"),
    };
    let gc = take(&snapshotter);
    assert_eq!(gc.counter("settdb_vlog_gc_runs_total"), 1);
    let files = report.files_retired.len() as u64;
    assert_eq!(gc.counter("settdb_vlog_gc_files_rewritten_total"), files);
    let reclaimed = report.bytes_reclaimed();
    assert_eq!(
        gc.counter("settdb_vlog_gc_bytes_reclaimed_total"),
        reclaimed
    );

    let stats = db.stats();
    assert_eq!(stats.gets, 2 * KEYS + 1);
    assert_eq!(stats.bloom_filtered, filtered);
    assert!(stats.puts >= puts);
    assert!(stats.flushes >= 1 && stats.compactions >= 1);
    assert_eq!((stats.gc_runs, stats.gc_files_rewritten), (1, files));
    assert_eq!(stats.gc_bytes_reclaimed, reclaimed);
    db.close().unwrap();
}

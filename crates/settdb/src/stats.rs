//! Engine statistics: [`EngineStats`], the counters the components bump as they work (relaxed
//! atomics, always kept), and [`Stats`], the snapshot [`crate::Db::stats`] returns.
//!
//! When `Options::metrics_enabled` is true each `record_*` call also emits through the
//! `metrics` facade under a `settdb_` name (docs/design/observability.md lists them); the
//! application installs the recorder. When it is false the emission is one branch on a `bool`:
//! no label, no key, no timestamp is built.
//!
//! Concurrency: every field is an atomic updated with `Relaxed` ordering; a [`Stats`] snapshot
//! reads each counter on its own, so two counters may disagree by an event in flight. The
//! counters of point reads, which every reader thread bumps, are split into cache-line-sized
//! shards (a thread keeps to one), so parallel readers do not contend on one line; a snapshot
//! sums the shards.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::table::CacheMetrics;

/// Labels for levels 0..16 without an allocation (levels beyond use a `String`).
const LEVEL_LABELS: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
];

/// The `level` label of `level`. Called only when metrics are enabled.
fn level_label(level: usize) -> metrics::SharedString {
    match LEVEL_LABELS.get(level) {
        Some(s) => metrics::SharedString::const_str(s),
        None => metrics::SharedString::from(level.to_string()),
    }
}

/// Where a point read found the version it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GetSource {
    /// Nothing found.
    Miss,
    /// A memtable.
    Memtable,
    /// A table at this level.
    Level(usize),
}

/// What the bloom filters of the tables one point read asked said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BloomTally {
    /// Tables whose filter ruled the key out (no block read).
    pub filtered: u32,
    /// Tables whose filter let it through (a block read).
    pub passed: u32,
    /// Of those, tables that held a version of the key at or below the read's; `passed -
    /// found` are the filter's false positives (or the key only has newer versions there).
    pub found: u32,
}

/// Shards of the point-read counters (a power of two).
const READ_SHARDS: usize = 16;

/// The point-read counters of the threads that use one shard, alone on their cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct ReadShard {
    gets: AtomicU64,
    memtable_hits: AtomicU64,
    table_hits: AtomicU64,
    bloom_filtered: AtomicU64,
    bloom_false_positives: AtomicU64,
    vlog_bytes_read: AtomicU64,
}

/// This thread's shard: threads take shards in turn, the first time they read.
fn read_shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % READ_SHARDS;
    }
    SHARD.with(|s| *s)
}

/// The engine's counters, shared (`Arc`) by the components that do the work. Holds no
/// reference to anything else.
#[derive(Debug, Default)]
pub(crate) struct EngineStats {
    /// `Options::metrics_enabled`: also emit through the `metrics` facade.
    metrics: bool,
    puts: AtomicU64,
    user_bytes_written: AtomicU64,
    wal_bytes_written: AtomicU64,
    vlog_bytes_written: AtomicU64,
    table_bytes_written: AtomicU64,
    table_bytes_read: AtomicU64,
    /// Point reads and value-log reads, by thread shard.
    reads: [ReadShard; READ_SHARDS],
    flushes: AtomicU64,
    compactions: AtomicU64,
    compaction_bytes_in: AtomicU64,
    compaction_bytes_out: AtomicU64,
    write_stalls: AtomicU64,
    write_stall_micros: AtomicU64,
    gc_runs: AtomicU64,
    gc_bytes_reclaimed: AtomicU64,
    gc_files_rewritten: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl EngineStats {
    /// Counters at zero; `metrics` says whether to emit through the facade too.
    pub(crate) fn new(metrics: bool) -> Self {
        EngineStats {
            metrics,
            ..EngineStats::default()
        }
    }

    /// The start of a latency measurement: `None` (no clock read) when metrics are off.
    pub(crate) fn timer(&self) -> Option<Instant> {
        self.metrics.then(Instant::now)
    }

    /// One write group applied: `puts` entries of `user_bytes` (keys and values), `wal_bytes`
    /// appended to the WAL and `vlog_bytes` to the value log, since `start`.
    pub(crate) fn record_write_group(
        &self,
        puts: u64,
        user_bytes: u64,
        wal_bytes: u64,
        vlog_bytes: u64,
        start: Option<Instant>,
    ) {
        self.puts.fetch_add(puts, Relaxed);
        self.user_bytes_written.fetch_add(user_bytes, Relaxed);
        self.wal_bytes_written.fetch_add(wal_bytes, Relaxed);
        self.vlog_bytes_written.fetch_add(vlog_bytes, Relaxed);
        if self.metrics {
            metrics::counter!("settdb_puts_total").increment(puts);
            metrics::counter!("settdb_written_bytes_user_total").increment(user_bytes);
            metrics::counter!("settdb_written_bytes_wal_total").increment(wal_bytes);
            metrics::counter!("settdb_written_bytes_vlog_total").increment(vlog_bytes);
            if let Some(t) = start {
                metrics::histogram!("settdb_write_group_seconds").record(t.elapsed());
            }
        }
    }

    /// Write requests queued and not yet taken by the writer (`pending` is not called when
    /// metrics are off: it takes the queue's lock).
    pub(crate) fn record_pending_writes(&self, pending: impl FnOnce() -> usize) {
        if self.metrics {
            metrics::gauge!("settdb_pending_writes").set(pending() as f64);
        }
    }

    /// One point read, answered from `source`, what the bloom filters said, since `start`.
    pub(crate) fn record_get(&self, source: GetSource, bloom: BloomTally, start: Option<Instant>) {
        let shard = &self.reads[read_shard_index()];
        shard.gets.fetch_add(1, Relaxed);
        let false_positives = bloom.passed.saturating_sub(bloom.found);
        if bloom.filtered > 0 {
            shard
                .bloom_filtered
                .fetch_add(u64::from(bloom.filtered), Relaxed);
        }
        if false_positives > 0 {
            shard
                .bloom_false_positives
                .fetch_add(u64::from(false_positives), Relaxed);
        }
        match source {
            GetSource::Miss => {}
            GetSource::Memtable => {
                shard.memtable_hits.fetch_add(1, Relaxed);
            }
            GetSource::Level(_) => {
                shard.table_hits.fetch_add(1, Relaxed);
            }
        }
        if self.metrics {
            metrics::counter!("settdb_gets_total").increment(1);
            match source {
                GetSource::Miss => metrics::counter!("settdb_get_misses_total").increment(1),
                GetSource::Memtable => {
                    metrics::counter!("settdb_get_memtable_hits_total").increment(1);
                }
                GetSource::Level(l) => {
                    metrics::counter!("settdb_get_level_hits_total", "level" => level_label(l))
                        .increment(1);
                }
            }
            metrics::counter!("settdb_bloom_filtered_total").increment(u64::from(bloom.filtered));
            metrics::counter!("settdb_bloom_passed_total").increment(u64::from(bloom.passed));
            metrics::counter!("settdb_bloom_false_positives_total")
                .increment(u64::from(false_positives));
            if let Some(t) = start {
                metrics::histogram!("settdb_get_seconds").record(t.elapsed());
            }
        }
    }

    /// `bytes` of a value read from the value log.
    pub(crate) fn record_vlog_read(&self, bytes: u64) {
        self.reads[read_shard_index()]
            .vlog_bytes_read
            .fetch_add(bytes, Relaxed);
        if self.metrics {
            metrics::counter!("settdb_read_bytes_vlog_total").increment(bytes);
        }
    }

    /// One point-read counter summed over the shards.
    fn sum_reads(&self, counter: impl Fn(&ReadShard) -> &AtomicU64) -> u64 {
        self.reads.iter().map(|r| counter(r).load(Relaxed)).sum()
    }

    /// A memtable flushed into an L0 table of `table_bytes`, taking `elapsed`.
    pub(crate) fn record_flush(&self, table_bytes: u64, elapsed: Duration) {
        self.flushes.fetch_add(1, Relaxed);
        self.table_bytes_written.fetch_add(table_bytes, Relaxed);
        if self.metrics {
            metrics::counter!("settdb_flushes_total").increment(1);
            metrics::counter!("settdb_written_bytes_table_total").increment(table_bytes);
            metrics::histogram!("settdb_flush_seconds").record(elapsed);
        }
    }

    /// A compaction from `level` that read `bytes_in` of tables and wrote `bytes_out`.
    pub(crate) fn record_compaction(
        &self,
        level: usize,
        bytes_in: u64,
        bytes_out: u64,
        elapsed: Duration,
    ) {
        self.compactions.fetch_add(1, Relaxed);
        self.compaction_bytes_in.fetch_add(bytes_in, Relaxed);
        self.compaction_bytes_out.fetch_add(bytes_out, Relaxed);
        self.table_bytes_read.fetch_add(bytes_in, Relaxed);
        self.table_bytes_written.fetch_add(bytes_out, Relaxed);
        if self.metrics {
            let l = level_label(level);
            metrics::counter!("settdb_compactions_total", "level" => l.clone()).increment(1);
            metrics::counter!("settdb_compaction_bytes_in_total", "level" => l.clone())
                .increment(bytes_in);
            metrics::counter!("settdb_compaction_bytes_out_total", "level" => l)
                .increment(bytes_out);
            metrics::counter!("settdb_read_bytes_table_total").increment(bytes_in);
            metrics::counter!("settdb_written_bytes_table_total").increment(bytes_out);
            metrics::histogram!("settdb_compaction_seconds").record(elapsed);
        }
    }

    /// Writes waited `elapsed` for `cause` ("memtables": too many memtables in memory; "l0":
    /// the flush waited for L0 to shrink).
    pub(crate) fn record_write_stall(&self, cause: &'static str, elapsed: Duration) {
        self.write_stalls.fetch_add(1, Relaxed);
        self.write_stall_micros.fetch_add(micros(elapsed), Relaxed);
        if self.metrics {
            metrics::counter!("settdb_write_stalls_total", "cause" => cause).increment(1);
            metrics::counter!("settdb_write_stall_micros_total", "cause" => cause)
                .increment(micros(elapsed));
        }
    }

    /// A value-log GC run (manual, or a tick of the automatic thread) that rewrote `files`
    /// files (0: nothing to rewrite) and gave back `bytes_reclaimed`.
    pub(crate) fn record_gc_run(&self, files: u64, bytes_reclaimed: u64) {
        self.gc_runs.fetch_add(1, Relaxed);
        self.gc_files_rewritten.fetch_add(files, Relaxed);
        self.gc_bytes_reclaimed.fetch_add(bytes_reclaimed, Relaxed);
        if self.metrics {
            metrics::counter!("settdb_vlog_gc_runs_total").increment(1);
            metrics::counter!("settdb_vlog_gc_files_rewritten_total").increment(files);
            metrics::counter!("settdb_vlog_gc_bytes_reclaimed_total").increment(bytes_reclaimed);
        }
    }

    /// The shape of the levels after an edit (`(tables, bytes)` per level) and the caches'
    /// counters; gauges only, so nothing to keep (and nothing to do) when metrics are off.
    pub(crate) fn record_levels(&self, levels: &[(usize, u64)], cache: &CacheMetrics) {
        if !self.metrics {
            return;
        }
        for (i, &(tables, bytes)) in levels.iter().enumerate() {
            let l = level_label(i);
            metrics::gauge!("settdb_level_tables", "level" => l.clone()).set(tables as f64);
            metrics::gauge!("settdb_level_size_bytes", "level" => l).set(bytes as f64);
        }
        for (name, c) in [("block", &cache.block), ("index", &cache.index)] {
            metrics::counter!("settdb_cache_hits_total", "cache" => name).absolute(c.hits);
            metrics::counter!("settdb_cache_misses_total", "cache" => name).absolute(c.misses);
        }
    }

    /// True when `record_levels` has anything to do.
    pub(crate) fn metrics_enabled(&self) -> bool {
        self.metrics
    }

    /// The counters now; the levels, caches and queue are filled in by the caller.
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Relaxed);
        Stats {
            puts: get(&self.puts),
            user_bytes_written: get(&self.user_bytes_written),
            wal_bytes_written: get(&self.wal_bytes_written),
            vlog_bytes_written: get(&self.vlog_bytes_written),
            table_bytes_written: get(&self.table_bytes_written),
            table_bytes_read: get(&self.table_bytes_read),
            vlog_bytes_read: self.sum_reads(|r| &r.vlog_bytes_read),
            gets: self.sum_reads(|r| &r.gets),
            memtable_hits: self.sum_reads(|r| &r.memtable_hits),
            table_hits: self.sum_reads(|r| &r.table_hits),
            bloom_filtered: self.sum_reads(|r| &r.bloom_filtered),
            bloom_false_positives: self.sum_reads(|r| &r.bloom_false_positives),
            levels: Vec::new(),
            flushes: get(&self.flushes),
            compactions: get(&self.compactions),
            compaction_bytes_in: get(&self.compaction_bytes_in),
            compaction_bytes_out: get(&self.compaction_bytes_out),
            write_stalls: get(&self.write_stalls),
            write_stall_time: Duration::from_micros(get(&self.write_stall_micros)),
            gc_runs: get(&self.gc_runs),
            gc_bytes_reclaimed: get(&self.gc_bytes_reclaimed),
            gc_files_rewritten: get(&self.gc_files_rewritten),
            cache: CacheMetrics::default(),
            pending_writes: 0,
        }
    }
}

/// One level of the LSM tree in a [`Stats`] snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelStats {
    /// The level (0 = L0).
    pub level: usize,
    /// Its tables.
    pub tables: usize,
    /// The bytes of its tables.
    pub size_bytes: u64,
}

impl LevelStats {
    /// Level `level` with `tables` tables of `size_bytes` in all.
    pub(crate) fn new(level: usize, tables: usize, size_bytes: u64) -> Self {
        LevelStats {
            level,
            tables,
            size_bytes,
        }
    }
}

/// What the engine has done since it was opened ([`crate::Db::stats`]): counters kept whatever
/// `Options::metrics_enabled` says, plus the levels, caches and write queue as they are now.
/// Counters start at zero at every open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Entries written by commits and write batches (sets and deletes).
    pub puts: u64,
    /// Bytes of the keys and values written by commits and write batches.
    pub user_bytes_written: u64,
    /// Bytes appended to WALs.
    pub wal_bytes_written: u64,
    /// Bytes of values appended to the value log by commits.
    pub vlog_bytes_written: u64,
    /// Bytes of tables written by flushes and compactions.
    pub table_bytes_written: u64,
    /// Bytes of tables read by compactions (point reads go through the block cache: see
    /// [`Stats::cache`]).
    pub table_bytes_read: u64,
    /// Bytes of value-log values read by point reads that return the value (`Db::get`).
    pub vlog_bytes_read: u64,
    /// Point reads (`Db::get`, `Txn::get`).
    pub gets: u64,
    /// Point reads answered from a memtable.
    pub memtable_hits: u64,
    /// Point reads answered from a table.
    pub table_hits: u64,
    /// Tables a point read skipped because their bloom filter ruled the key out.
    pub bloom_filtered: u64,
    /// Tables a point read searched because their bloom filter let the key through, without
    /// finding a version of it (false positives, or only newer versions there).
    pub bloom_false_positives: u64,
    /// Each level's tables and bytes, L0 first.
    pub levels: Vec<LevelStats>,
    /// Memtables flushed to L0.
    pub flushes: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Bytes of the tables compactions read.
    pub compaction_bytes_in: u64,
    /// Bytes of the tables compactions wrote.
    pub compaction_bytes_out: u64,
    /// Times writes waited: for a memtable slot, or for L0 to shrink before a flush.
    pub write_stalls: u64,
    /// Time spent in those waits.
    pub write_stall_time: Duration,
    /// Value-log GC runs that got past their checks (manual calls and the automatic thread's
    /// ticks), whether or not they rewrote a file.
    pub gc_runs: u64,
    /// Value-log bytes GC gave back (retired minus moved).
    pub gc_bytes_reclaimed: u64,
    /// Value-log files GC rewrote and retired.
    pub gc_files_rewritten: u64,
    /// The block and index caches ([`crate::Db::cache_metrics`]).
    pub cache: CacheMetrics,
    /// Write requests queued and not yet taken by the writer.
    pub pending_writes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_read_counters_from_many_threads_sum_over_the_shards() {
        // Proves the sharded read counters lose nothing: 20 threads (more than the shards, so
        // some share one) each count 500 reads and 100 value-log bytes, and the snapshot sees
        // every one.
        let stats = std::sync::Arc::new(EngineStats::new(false));
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        stats.record_get(GetSource::Level(1), BloomTally::default(), None);
                        stats.record_vlog_read(100);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snap = stats.snapshot();
        assert_eq!((snap.gets, snap.table_hits), (10_000, 10_000));
        assert_eq!(snap.vlog_bytes_read, 1_000_000);
    }

    #[test]
    fn counters_add_up_without_metrics() {
        // Proves the counters are kept with metrics off: record calls, then the snapshot.
        let s = EngineStats::new(false);
        assert!(s.timer().is_none());
        s.record_write_group(3, 30, 40, 10, None);
        s.record_pending_writes(|| unreachable!("not asked when metrics are off"));
        let none = BloomTally::default();
        s.record_get(GetSource::Memtable, none, None);
        let bloom = BloomTally {
            filtered: 2,
            passed: 2,
            found: 1,
        };
        s.record_get(GetSource::Level(2), bloom, None);
        s.record_get(GetSource::Miss, none, None);
        s.record_flush(100, Duration::ZERO);
        s.record_compaction(0, 100, 90, Duration::ZERO);
        s.record_write_stall("l0", Duration::from_millis(2));
        s.record_gc_run(1, 500);
        let snap = s.snapshot();
        assert_eq!((snap.puts, snap.user_bytes_written), (3, 30));
        assert_eq!((snap.gets, snap.memtable_hits, snap.table_hits), (3, 1, 1));
        assert_eq!((snap.bloom_filtered, snap.bloom_false_positives), (2, 1));
        assert_eq!((snap.flushes, snap.table_bytes_written), (1, 190));
        assert_eq!((snap.compactions, snap.compaction_bytes_in), (1, 100));
        assert_eq!(snap.write_stall_time, Duration::from_millis(2));
        assert_eq!((snap.gc_runs, snap.gc_bytes_reclaimed), (1, 500));
    }
}

//! `settdb info --stats`: a [`settdb::Stats`] snapshot as `name: value` lines, one field a
//! line, names as in the struct (docs/design/observability.md says what each counts).

use settdb::Stats;

use crate::units::fmt_bytes;

/// Prints `s` under a `stats` heading.
pub fn print_stats(s: &Stats) {
    println!("stats (since this open):");
    let bytes = [
        ("user_bytes_written", s.user_bytes_written),
        ("wal_bytes_written", s.wal_bytes_written),
        ("vlog_bytes_written", s.vlog_bytes_written),
        ("table_bytes_written", s.table_bytes_written),
        ("table_bytes_read", s.table_bytes_read),
        ("vlog_bytes_read", s.vlog_bytes_read),
        ("compaction_bytes_in", s.compaction_bytes_in),
        ("compaction_bytes_out", s.compaction_bytes_out),
        ("gc_bytes_reclaimed", s.gc_bytes_reclaimed),
    ];
    let counts = [
        ("puts", s.puts),
        ("gets", s.gets),
        ("memtable_hits", s.memtable_hits),
        ("table_hits", s.table_hits),
        ("bloom_filtered", s.bloom_filtered),
        ("bloom_false_positives", s.bloom_false_positives),
        ("flushes", s.flushes),
        ("compactions", s.compactions),
        ("write_stalls", s.write_stalls),
        ("gc_runs", s.gc_runs),
        ("gc_files_rewritten", s.gc_files_rewritten),
        ("pending_writes", s.pending_writes as u64),
    ];
    for (name, n) in counts {
        println!("  {name}: {n}");
    }
    for (name, n) in bytes {
        println!("  {name}: {n} ({})", fmt_bytes(n));
    }
    println!("  write_stall_time_ms: {}", s.write_stall_time.as_millis());
    for l in &s.levels {
        println!(
            "  level {}: tables {} size_bytes {} ({})",
            l.level,
            l.tables,
            l.size_bytes,
            fmt_bytes(l.size_bytes)
        );
    }
    let (b, i) = (&s.cache.block, &s.cache.index);
    println!("  block_cache: hits {} misses {}", b.hits, b.misses);
    println!("  index_cache: hits {} misses {}", i.hits, i.misses);
}

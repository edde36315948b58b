//! `Db::stats`: the counters are kept with metrics off and match known work exactly (puts,
//! bytes, gets and where they were answered, one flush), the levels match the levels snapshot,
//! a compaction's bytes add up with the flush's into the table bytes written, and reads of
//! absent keys are counted as bloom-filtered or false positives.

mod common;

use std::sync::Arc;

use common::small_options;
use settdb::io::MemStorage;
use settdb::Db;

#[test]
fn stats_count_known_work_with_metrics_off() {
    // Proves the snapshot: 100 sets (50 inline, 50 value-log), 100 gets from the memtable, a
    // flush, 100 gets from L0, then a flatten; every counter checked against what was done.
    let opts = small_options("/db".as_ref(), Arc::new(MemStorage::new())).with_num_compactors(0);
    assert!(!opts.metrics_enabled);
    let db = Db::open(opts).unwrap();
    assert_eq!(db.stats().puts, 0);
    let key = |i: u32| format!("key{i:04}");
    let value = |i: u32| vec![1u8; if i.is_multiple_of(2) { 10 } else { 200 }];
    for i in 0..100 {
        db.set(key(i), value(i)).unwrap();
    }
    for i in 0..100 {
        assert_eq!(db.get(key(i).as_bytes()).unwrap(), Some(value(i)));
    }
    let s = db.stats();
    assert_eq!(s.puts, 100);
    let user: u64 = (0..100)
        .map(|i| (key(i).len() + value(i).len()) as u64)
        .sum();
    assert_eq!(s.user_bytes_written, user);
    assert!(s.vlog_bytes_written >= 50 * 200, "{s:?}");
    assert!(s.wal_bytes_written > 0);
    assert_eq!((s.gets, s.memtable_hits, s.table_hits), (100, 100, 0));
    assert!(s.vlog_bytes_read >= 50 * 200, "{s:?}");
    assert_eq!((s.flushes, s.compactions, s.table_bytes_written), (0, 0, 0));
    assert_eq!(s.pending_writes, 0);

    db.flush().unwrap();
    for i in 0..100 {
        assert_eq!(db.get(key(i).as_bytes()).unwrap(), Some(value(i)));
    }
    let s = db.stats();
    assert_eq!(s.flushes, 1);
    assert_eq!((s.gets, s.memtable_hits, s.table_hits), (200, 100, 100));
    let levels = db.levels();
    assert_eq!(s.levels.len(), levels.level_count());
    assert_eq!((s.levels[0].level, s.levels[0].tables), (0, 1));
    assert_eq!(s.levels[0].size_bytes, levels.level_size_bytes(0));
    assert_eq!(s.table_bytes_written, s.levels[0].size_bytes);
    assert_eq!(s.cache, db.cache_metrics());

    db.flatten().unwrap();
    let after = db.stats();
    assert!(after.compactions >= 1);
    assert_eq!(after.levels[0].tables, 0);
    assert_eq!(after.compaction_bytes_in, s.levels[0].size_bytes);
    assert!(after.compaction_bytes_out > 0);
    assert_eq!(after.table_bytes_read, after.compaction_bytes_in);
    let written = s.table_bytes_written + after.compaction_bytes_out;
    assert_eq!(after.table_bytes_written, written);
    assert_eq!(after.write_stalls, 0);
    // Keys inside the table's range that were never written: the bloom filter rules most out.
    for i in 0..50 {
        assert_eq!(db.get(format!("key{i:04}x").as_bytes()).unwrap(), None);
    }
    let bloom = db.stats();
    assert_eq!(bloom.gets, 250);
    assert!(bloom.bloom_filtered >= 40, "{bloom:?}");
    assert_eq!(bloom.bloom_filtered + bloom.bloom_false_positives, 50);
    db.close().unwrap();
}

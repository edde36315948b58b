//! The caches as [`Table`] uses them: one miss then hits for a block, reads that do not fill,
//! tables that share block offsets (and even a table id) never seeing each other's blocks, and
//! tables whose index and filter live only in the index cache (evicted, or damaged on disk
//! after the open).

use std::path::Path;
use std::sync::Arc;

use super::cache::TableCaches;
use super::footer::{Footer, FOOTER_LEN};
use super::test_support::{collect_backward, collect_forward, new_file, small_blocks, vref, Entry};
use super::{KvIterator, Table, TableBuilder, TableIterator, TableOpenOptions};
use crate::io::{FsStorage, OpenMode, Storage};
use crate::key::key_with_version;
use crate::options::Compression;
use crate::value::ValueStruct;

/// 300 entries whose values are all `tag`: tables of different tags have the same layout.
fn entries(tag: u8) -> Vec<Entry> {
    (0..300u32)
        .map(|i| {
            let key = key_with_version(format!("key{i:05}").as_bytes(), 1);
            let value = ValueStruct {
                value: vec![tag; 20],
                ..Default::default()
            };
            (key, value)
        })
        .collect()
}

/// Writes a table of `entries` (uncompressed, small blocks) to `dir/name`.
fn write(dir: &Path, name: &str, entries: &[Entry]) {
    let mut b = TableBuilder::new(new_file(dir, name), small_blocks(Compression::None)).unwrap();
    for (k, v) in entries {
        b.add(k, vref(v)).unwrap();
    }
    b.finish().unwrap();
}

/// Opens `dir/name` as table `id` with `caches`.
fn open(dir: &Path, name: &str, id: u64, caches: &Arc<TableCaches>) -> Arc<Table> {
    let file = FsStorage::new()
        .open(&dir.join(name), OpenMode::Read)
        .unwrap();
    let opts = TableOpenOptions {
        caches: Some(caches.clone()),
        ..TableOpenOptions::default()
    };
    Table::open(file, id, opts).unwrap()
}

#[test]
fn a_block_read_twice_is_one_miss_then_a_hit_and_a_non_filling_read_caches_nothing() {
    // Proves read_block counts a miss and caches, the second read is a hit returning the same
    // block, and read_block_with(fill_cache = false) caches nothing it reads but uses what is
    // cached, and is not counted (the hit ratio is the readers').
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.sst", &entries(b'a'));
    let caches = Arc::new(TableCaches::new(1 << 20, 0));
    let t = open(dir.path(), "t.sst", 1, &caches);
    assert!(t.block_count() > 5);
    t.read_block_with(3, false).unwrap();
    let m = caches.metrics().block;
    assert_eq!((m.hits, m.misses, m.inserts, m.entries), (0, 0, 0, 0));
    let first = t.read_block(3).unwrap();
    let second = t.read_block(3).unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second read was not served by the cache"
    );
    let m = caches.metrics().block;
    assert_eq!((m.hits, m.misses, m.inserts, m.entries), (1, 1, 1, 1));
    assert!(m.bytes > 0 && m.bytes <= m.capacity);
    let third = t.read_block_with(3, false).unwrap();
    assert!(Arc::ptr_eq(&first, &third));
    assert_eq!(caches.metrics().block.hits, 1);
}

#[test]
fn tables_with_the_same_block_offsets_never_see_each_others_blocks() {
    // Proves two tables of the same layout (same block offsets) and even the same table id,
    // sharing one cache, each read only their own blocks, in both orders and through
    // iterators; and a table opened again gets cache keys of its own (a fresh miss), so an
    // entry left by a closed or deleted table is never served for a new one.
    let dir = tempfile::tempdir().unwrap();
    let (ea, eb) = (entries(b'a'), entries(b'b'));
    write(dir.path(), "a.sst", &ea);
    write(dir.path(), "b.sst", &eb);
    let caches = Arc::new(TableCaches::new(1 << 20, 0));
    let a = open(dir.path(), "a.sst", 7, &caches);
    let b = open(dir.path(), "b.sst", 7, &caches);
    assert_eq!(a.block_count(), b.block_count());
    for i in 0..a.block_count() {
        assert_eq!(a.block_handle(i).unwrap(), b.block_handle(i).unwrap());
        let (first, then) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        first.read_block(i).unwrap();
        let block = then.read_block(i).unwrap();
        let tag = if Arc::ptr_eq(then, &a) { b'a' } else { b'b' };
        assert!((0..block.len()).all(|j| block.value_at(j).value == [tag; 20]));
    }
    let m = caches.metrics().block;
    assert_eq!(m.entries, 2 * a.block_count() as u64, "{m:?}");
    assert_eq!(m.hits, 0, "a read was served another table's block: {m:?}");
    assert_eq!(
        collect_forward(&mut TableIterator::new(a.clone())).unwrap(),
        ea
    );
    assert_eq!(
        collect_backward(&mut TableIterator::new(b.clone())).unwrap(),
        eb
    );
    drop(a);
    let again = open(dir.path(), "a.sst", 7, &caches);
    let misses = caches.metrics().block.misses;
    again.read_block(0).unwrap();
    assert_eq!(caches.metrics().block.misses, misses + 1);
}

#[test]
fn tables_on_the_index_cache_hold_no_index_and_read_right_evicted_or_not() {
    // Proves a table opened with the index cache on keeps no index in memory and that gets,
    // bloom checks and iteration both ways are right whether the cache holds its index (hits)
    // or cannot (1 byte: every use re-reads and re-verifies it from the file).
    let dir = tempfile::tempdir().unwrap();
    let es = entries(b'x');
    write(dir.path(), "t.sst", &es);
    for capacity in [1u64 << 20, 1] {
        let caches = Arc::new(TableCaches::new(0, capacity));
        let t = open(dir.path(), "t.sst", 1, &caches);
        assert_eq!(t.memory_bytes(), 0);
        for (k, v) in es.iter().step_by(13) {
            assert_eq!(
                t.get(k).unwrap().map(|e| e.to_pair()),
                Some((k.clone(), v.clone()))
            );
        }
        assert!(t.get(&key_with_version(b"zz", 9)).unwrap().is_none());
        assert_eq!(
            collect_forward(&mut TableIterator::new(t.clone())).unwrap(),
            es
        );
        assert_eq!(
            collect_backward(&mut TableIterator::new(t.clone())).unwrap(),
            es
        );
        let m = caches.metrics().index;
        assert!(m.bytes <= m.capacity, "{m:?}");
        if capacity > 1 {
            assert!(m.hits > 0 && m.entries == 1, "{m:?}");
        } else {
            assert!(m.misses > 0 && m.entries == 0, "{m:?}");
        }
    }
}

#[test]
fn a_damaged_index_loaded_through_the_cache_is_an_error_every_time_and_never_cached() {
    // Proves that when the index region is damaged on disk after the open and the index cache
    // cannot hold it (so each use reloads it), every get and seek fails with a checksum error
    // and nothing is inserted; the bloom check stays conservative (may contain).
    let dir = tempfile::tempdir().unwrap();
    let es = entries(b'x');
    write(dir.path(), "t.sst", &es);
    let caches = Arc::new(TableCaches::new(1 << 20, 1));
    let t = open(dir.path(), "t.sst", 1, &caches);
    let path = dir.path().join("t.sst");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - FOOTER_LEN;
    let footer = Footer::decode(&bytes[at..], &path, at as u64).unwrap();
    bytes[footer.index.offset as usize + 5] ^= 0x10;
    // Rewritten in place: the open handle reads the damaged bytes.
    std::fs::write(&path, &bytes).unwrap();
    let inserts = caches.metrics().index.inserts;
    for _ in 0..3 {
        let e = t.get(&es[40].0).unwrap_err();
        assert!(e.is_corruption(), "{e}");
        let e = TableIterator::new(t.clone()).seek(&es[40].0);
        assert!(e.is_err_and(|e| e.is_corruption()));
    }
    assert!(t.may_contain(b"key00040"));
    let m = caches.metrics();
    assert_eq!(m.index.inserts, inserts, "{m:?}");
    assert_eq!((m.block.inserts, m.block.entries), (0, 0), "{m:?}");
}

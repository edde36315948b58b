//! Database-level checks of DESIGN.md's durability rules that no lower-level test covers:
//! a read-only open never writes (rule 7), a failed sync poisons the handle (rule 8), damaged
//! bytes are a typed error, never a panic (rule 9), and in-memory mode touches no file.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::small_options;
use settdb::io::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
use settdb::{Db, Error};

fn fill(db: &Db, n: u32) {
    for i in 0..n {
        db.set(
            format!("key{i:05}"),
            vec![(i % 251) as u8; 100 + (i % 3) as usize * 200],
        )
        .unwrap();
    }
}

#[test]
fn read_only_open_of_a_crashed_directory_writes_nothing() {
    // Proves rule 7: a read-only open of a directory with a torn WAL and value log changes no
    // byte, no file and no directory entry, and still reads the surviving data.
    let sim = SimStorage::new();
    let dir = Path::new("/db");
    let db = Db::open(small_options(dir, Arc::new(sim.clone()))).unwrap();
    fill(&db, 3000);
    let crashed = sim.crash(CrashMode::TornTail, 9);
    drop(db);
    let names_before = settdb::io::Storage::list_dir(&crashed, dir).unwrap();
    let bytes_before: Vec<_> = names_before
        .iter()
        .map(|n| crashed.live_bytes(&dir.join(n)))
        .collect();
    let ops_before = crashed.unsynced_op_count();
    let ro = Db::open(small_options(dir, Arc::new(crashed.clone())).with_read_only(true)).unwrap();
    let _ = ro.get(b"key00001").unwrap();
    ro.close().unwrap();
    drop(ro);
    let names_after = settdb::io::Storage::list_dir(&crashed, dir).unwrap();
    let bytes_after: Vec<_> = names_after
        .iter()
        .map(|n| crashed.live_bytes(&dir.join(n)))
        .collect();
    assert_eq!(names_before, names_after);
    assert_eq!(bytes_before, bytes_after);
    assert_eq!(ops_before, crashed.unsynced_op_count());
}

#[test]
fn a_failed_wal_sync_poisons_every_later_write() {
    // Proves rule 8: after an fsync error the handle refuses every write with the first
    // error's description, and a reopen recovers what was durable.
    let sim = SimStorage::new();
    let dir = Path::new("/db");
    let db = Db::open(small_options(dir, Arc::new(sim.clone())).with_sync_writes(true)).unwrap();
    db.set("before", "1").unwrap();
    sim.inject(
        Fault::new(FaultOp::Sync, FaultKind::Eio)
            .path_contains(".mem")
            .times(1),
    );
    let first = db.set("during", "2").unwrap_err();
    assert!(matches!(first, Error::Io { .. }), "{first}");
    sim.clear_faults();
    for _ in 0..3 {
        assert!(matches!(db.set("after", "3"), Err(Error::Poisoned(_))));
    }
    assert_eq!(db.get(b"before").unwrap(), Some(b"1".to_vec()));
    drop(db);
    let reopened = Db::open(small_options(
        dir,
        Arc::new(sim.crash(CrashMode::Nothing, 1)),
    ))
    .unwrap();
    assert_eq!(reopened.get(b"before").unwrap(), Some(b"1".to_vec()));
    assert_eq!(reopened.get(b"after").unwrap(), None);
}

#[test]
fn a_bit_flip_in_a_table_is_a_typed_error() {
    // Proves rule 9 end to end: damaged table bytes surface as a checksum or corruption
    // error from reads (or from open), never as a panic or a wrong value.
    let sim = SimStorage::new();
    let dir = Path::new("/db");
    let db = Db::open(small_options(dir, Arc::new(sim.clone()))).unwrap();
    fill(&db, 2000);
    db.flush().unwrap();
    db.close().unwrap();
    drop(db);
    let table = settdb::io::Storage::list_dir(&sim, dir)
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".sst"))
        .unwrap();
    sim.corrupt(&dir.join(&table), 100, 0x10).unwrap();
    match Db::open(small_options(dir, Arc::new(sim.clone()))) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(db) => {
            let mut saw_error = false;
            for i in 0..2000 {
                match db.get(format!("key{i:05}").as_bytes()) {
                    Ok(Some(v)) => {
                        assert_eq!(v, vec![(i % 251) as u8; 100 + (i % 3) as usize * 200])
                    }
                    Ok(None) => panic!("key{i:05} silently missing"),
                    Err(e) => {
                        assert!(e.is_corruption(), "{e}");
                        saw_error = true;
                    }
                }
            }
            assert!(saw_error, "the flipped bit was never noticed");
        }
    }
}

#[test]
fn in_memory_mode_needs_no_directory() {
    // Proves in-memory mode works end to end (flushes and compactions included) with no dir.
    let db = Db::open(
        settdb::Options::in_memory()
            .with_mem_table_size(1 << 20)
            .with_base_table_size(64 << 10)
            .with_base_level_size(256 << 10),
    )
    .unwrap();
    fill(&db, 20_000);
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    assert_eq!(
        db.get(b"key01234").unwrap(),
        Some(vec![(1234 % 251) as u8; 300])
    );
    db.close().unwrap();
}

#[test]
fn damage_in_a_cleanly_closed_value_log_is_corruption_not_a_torn_tail() {
    // Regression (found by the CLI's verify): bytes flipped in the middle of the newest
    // value-log file after a clean close were taken for a torn tail, and the next read-write
    // open deleted the whole file. The close now seals the file, so the damage is reported
    // as corruption and the file is left untouched (rules 4 and 6).
    let sim = SimStorage::new();
    let dir = Path::new("/db");
    let opts = small_options(dir, Arc::new(sim.clone())).with_value_log_file_size(64 << 20);
    let db = Db::open(opts.clone()).unwrap();
    for i in 0..300u32 {
        db.set(format!("key{i:05}"), vec![(i % 251) as u8; 16 << 10])
            .unwrap();
    }
    db.close().unwrap();
    drop(db);
    let vlog = settdb::io::Storage::list_dir(&sim, dir)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".vlog"))
        .max()
        .unwrap();
    let path = dir.join(&vlog);
    sim.corrupt(&path, 50_000, 0xff).unwrap();
    sim.corrupt(&path, 50_001, 0xff).unwrap();
    let before = sim.live_bytes(&path);
    let err = Db::open(opts).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert_eq!(
        sim.live_bytes(&path),
        before,
        "recovery changed the damaged file"
    );
}

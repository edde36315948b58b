//! `settdb::repair`: a damaged database is rebuilt from what can be read; afterwards it opens,
//! verifies clean, reads every key that was readable before, and every old file is kept in
//! `lost/N/`. A swap cut short by an I/O error is refused by opens and finished by a rerun.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{small_options, value_for, workload_step, Model};
use settdb::io::{Fault, FaultKind, FaultOp, SimStorage, Storage};
use settdb::{Db, Error, Options};

const DIR: &str = "/db";

fn opts(sim: &SimStorage) -> Options {
    small_options(Path::new(DIR), Arc::new(sim.clone()))
}

/// A cleanly closed database: overwrites, deletes, inline and value-log values, tables on
/// several levels, several value-log files.
fn base() -> (SimStorage, Model) {
    let sim = SimStorage::new();
    let db = Db::open(opts(&sim)).unwrap();
    let mut model = Model::new();
    for i in 0..12_000u64 {
        workload_step(&db, i, &mut model);
    }
    db.close().unwrap();
    (sim, model)
}

fn names(sim: &SimStorage, dir: &Path) -> Vec<String> {
    sim.list_dir(dir).unwrap()
}

fn file(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// The files of the database whose names end in `suffix`, in name (id) order.
fn ending(sim: &SimStorage, suffix: &str) -> Vec<PathBuf> {
    names(sim, Path::new(DIR))
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .map(|n| file(&n))
        .collect()
}

/// What a read-only open reads for each model key (`None` for the whole map when it fails).
fn readable(sim: &SimStorage, model: &Model) -> Option<BTreeMap<Vec<u8>, Option<Vec<u8>>>> {
    let db = Db::open(opts(sim).with_read_only(true)).ok()?;
    let out = model
        .keys()
        .filter_map(|k| Some((k.clone(), db.get(k).ok()?)))
        .collect();
    db.close().unwrap();
    Some(out)
}

/// Repairs, then checks the promises: the database opens read-write, verifies clean, every key
/// that was readable before reads the same, and the old files are in `lost/1/`.
fn repair_and_check(sim: &SimStorage, model: &Model, what: &str) -> settdb::RepairReport {
    let before = readable(sim, model).unwrap_or_default();
    let old: Vec<String> = names(sim, Path::new(DIR))
        .into_iter()
        .filter(|n| n != "LOCK")
        .collect();
    let report = settdb::repair(&opts(sim)).unwrap_or_else(|e| panic!("{what}: repair: {e}"));
    assert!(report.repaired, "{what}: nothing repaired");
    let verified = settdb::verify(&opts(sim)).unwrap();
    assert!(
        verified.is_ok(),
        "{what}: after repair: {:?}",
        verified.problems
    );
    let db = Db::open(opts(sim)).unwrap();
    for (k, v) in &before {
        assert_eq!(
            &db.get(k).unwrap(),
            v,
            "{what}: a key readable before repair changed"
        );
    }
    db.close().unwrap();
    let lost = Path::new(DIR).join("lost/1");
    let kept = names(sim, &lost);
    for n in old.iter().filter(|n| !n.starts_with("lost")) {
        assert!(
            kept.contains(n),
            "{what}: old file {n} is not in lost/1: {kept:?}"
        );
    }
    report
}

#[test]
fn a_database_verify_passes_is_left_alone() {
    // Proves repair changes nothing when there is nothing to repair.
    let (sim, _) = base();
    let before: Vec<_> = names(&sim, Path::new(DIR))
        .into_iter()
        .map(|n| (n.clone(), sim.live_bytes(&file(&n))))
        .collect();
    let report = settdb::repair(&opts(&sim)).unwrap();
    assert!(!report.repaired);
    let after: Vec<_> = names(&sim, Path::new(DIR))
        .into_iter()
        .map(|n| (n.clone(), sim.live_bytes(&file(&n))))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_lost_manifest_is_rebuilt_with_every_key() {
    // Proves the MANIFEST-deleted finding has a way back: every key reads as it was written.
    let (sim, model) = base();
    sim.remove_file(&file("MANIFEST")).unwrap();
    repair_and_check(&sim, &model, "MANIFEST deleted");
    let db = Db::open(opts(&sim)).unwrap();
    for (k, v) in &model {
        assert_eq!(&db.get(k).unwrap(), v);
    }
    db.close().unwrap();
}

#[test]
fn a_damaged_table_block_loses_only_that_block() {
    // Proves repair keeps every readable block of a damaged table: the report counts the lost
    // block's bytes, and every other key still reads.
    let (sim, model) = base();
    let sst = ending(&sim, ".sst").remove(0);
    let mut bytes = sim.live_bytes(&sst).unwrap();
    bytes[200] ^= 0x55;
    sim.set_bytes(&sst, &bytes).unwrap();
    let report = repair_and_check(&sim, &model, "flipped table byte");
    assert!(report.bytes_lost > 0);
    assert!(
        report
            .damaged
            .iter()
            .any(|d| d.contains("blocks unreadable")),
        "{:?}",
        report.damaged
    );
    assert!(report.keys_kept > 0);
}

#[test]
fn lost_values_become_tombstones_and_are_listed() {
    // Proves a missing value-log file costs exactly the values it held: their versions read
    // as deleted (never an older value), their keys are listed in lost-keys.txt, and every
    // other key reads as written.
    let (sim, model) = base();
    let vlog = ending(&sim, ".vlog").pop().unwrap();
    sim.remove_file(&vlog).unwrap();
    let report = repair_and_check(&sim, &model, "value-log file deleted");
    assert!(report.values_lost > 0);
    let listed = String::from_utf8(
        sim.live_bytes(&Path::new(DIR).join("lost/1/lost-keys.txt"))
            .unwrap(),
    )
    .unwrap();
    let lost: Vec<&str> = listed.lines().collect();
    let db = Db::open(opts(&sim)).unwrap();
    let mut wrong = 0;
    for (k, v) in &model {
        let got = db.get(k).unwrap();
        let key = std::str::from_utf8(k).unwrap();
        if lost.contains(&key) {
            assert!(
                got.is_none() || &got == v,
                "{key}: an older value came back"
            );
        } else if &got != v {
            wrong += 1;
        }
    }
    assert_eq!(wrong, 0);
    db.close().unwrap();
}

#[test]
fn repair_of_a_directory_that_is_not_a_database_is_refused() {
    // Proves repair does not create a database among someone else's files.
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new(DIR)).unwrap();
    sim.set_bytes(&file("notes.txt"), b"mine").unwrap();
    assert!(matches!(
        settdb::repair(&opts(&sim)),
        Err(Error::NotADatabase { .. })
    ));
    assert_eq!(names(&sim, Path::new(DIR)), vec!["notes.txt".to_string()]);
}

#[test]
fn a_swap_cut_short_is_refused_by_opens_and_finished_by_a_rerun() {
    // Proves the REPAIR marker: whichever rename of the swap fails, the directory is either
    // untouched (the marker not yet written) or refused by opens until a rerun finishes the
    // swap; either way a rerun leaves a database that verifies and reads every key.
    let (pristine, model) = base();
    let mut k = 0u64;
    loop {
        let sim = pristine.crash(settdb::io::CrashMode::Everything, 0);
        sim.remove_file(&file("MANIFEST")).unwrap();
        sim.inject(Fault {
            path_contains: None,
            after: k,
            times: Some(1),
            ..Fault::new(FaultOp::Rename, FaultKind::Eio)
        });
        let first = settdb::repair(&opts(&sim));
        sim.clear_faults();
        if first.is_ok() {
            assert!(k > 3, "the swap renames more than {k} files");
            break;
        }
        if sim.exists(&file("REPAIR")).unwrap() {
            let Err(e) = Db::open(opts(&sim)) else {
                panic!("an open during a swap must fail (rename {k})");
            };
            assert!(e.to_string().contains("settdb repair"), "{e}");
        }
        let report = settdb::repair(&opts(&sim)).unwrap();
        assert!(report.repaired, "rename {k}");
        assert!(settdb::verify(&opts(&sim)).unwrap().is_ok(), "rename {k}");
        let db = Db::open(opts(&sim)).unwrap();
        for (key, v) in &model {
            assert_eq!(&db.get(key).unwrap(), v, "rename {k}");
        }
        db.close().unwrap();
        k += 1;
    }
}

#[test]
fn repair_on_the_file_system_with_a_separate_value_log_directory() {
    // Proves repair on a real file system with the value log in its own directory: old files
    // go to lost/1 of their own directory, the staging directories are gone, every key reads.
    let dir = tempfile::tempdir().unwrap();
    let vdir = tempfile::tempdir().unwrap();
    let o = small_options(dir.path(), Arc::new(settdb::io::FsStorage::new()))
        .with_value_dir(vdir.path().to_path_buf());
    let db = Db::open(o.clone()).unwrap();
    let mut model = Model::new();
    for i in 0..4_000u64 {
        let key = format!("key{i:05}").into_bytes();
        let v = value_for(&key, i, if i % 2 == 0 { 300 } else { 24 });
        db.set(key.clone(), v.clone()).unwrap();
        model.insert(key, Some(v));
    }
    db.close().unwrap();
    std::fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    let report = settdb::repair(&o).unwrap();
    assert!(report.repaired);
    assert_eq!(report.keys_kept, 4_000);
    assert!(settdb::verify(&o).unwrap().is_ok());
    assert!(!dir.path().join("repair.tmp").exists());
    assert!(!vdir.path().join("repair.tmp").exists());
    let moved_vlogs = std::fs::read_dir(vdir.path().join("lost/1"))
        .unwrap()
        .count();
    assert!(moved_vlogs > 0);
    let db = Db::open(o).unwrap();
    for (k, v) in &model {
        assert_eq!(&db.get(k).unwrap(), v);
    }
    db.close().unwrap();
}

#[test]
fn repair_splits_its_writes_to_fit_value_log_files() {
    // Proves repair's rebuild respects the value-log limit of one write (a write's values must
    // fit one value-log file, 1 MiB here): 4 KiB values, 1,024 to a salvage batch, once made
    // every repair of such a database fail.
    let sim = SimStorage::new();
    let db = Db::open(opts(&sim)).unwrap();
    let mut model = Model::new();
    for i in 0..2_000u64 {
        let key = format!("big{i:05}").into_bytes();
        let v = value_for(&key, i, 4 << 10);
        db.set(key.clone(), v.clone()).unwrap();
        model.insert(key, Some(v));
    }
    db.close().unwrap();
    sim.remove_file(&file("MANIFEST")).unwrap();
    repair_and_check(&sim, &model, "4 KiB values");
    let db = Db::open(opts(&sim)).unwrap();
    for (k, v) in &model {
        assert_eq!(&db.get(k).unwrap(), v);
    }
    db.close().unwrap();
}

#[test]
fn each_repair_keeps_its_old_files_in_a_new_lost_directory() {
    // Proves a second repair never mixes its old files into an earlier repair's lost/N: it
    // takes the first N free in both directories (here lost/2 exists in the value-log
    // directory only, so it takes lost/3), and the first repair's files stay in lost/1.
    let dir = tempfile::tempdir().unwrap();
    let vdir = tempfile::tempdir().unwrap();
    let o = small_options(dir.path(), Arc::new(settdb::io::FsStorage::new()))
        .with_value_dir(vdir.path().to_path_buf());
    let db = Db::open(o.clone()).unwrap();
    for i in 0..2_000u64 {
        let key = format!("key{i:05}").into_bytes();
        db.set(key.clone(), value_for(&key, i, 300)).unwrap();
    }
    db.close().unwrap();
    std::fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    settdb::repair(&o).unwrap();
    let first: Vec<_> = std::fs::read_dir(dir.path().join("lost/1"))
        .unwrap()
        .collect();
    std::fs::create_dir_all(vdir.path().join("lost/2")).unwrap();
    std::fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    let report = settdb::repair(&o).unwrap();
    assert_eq!(report.lost_dir, Some(dir.path().join("lost/3")));
    assert!(
        std::fs::read_dir(dir.path().join("lost/3"))
            .unwrap()
            .count()
            > 0
    );
    assert!(
        std::fs::read_dir(vdir.path().join("lost/3"))
            .unwrap()
            .count()
            > 0
    );
    let still: Vec<_> = std::fs::read_dir(dir.path().join("lost/1"))
        .unwrap()
        .collect();
    assert_eq!(first.len(), still.len());
    assert!(settdb::verify(&o).unwrap().is_ok());
    assert_eq!(report.keys_kept, 2_000);
}

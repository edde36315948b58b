//! `Db::drop_all` and `Db::drop_prefix`: what they remove and keep, against a model, with
//! data in memtables, L0, deeper levels and the value log; iterators created before keep
//! reading; writes during a drop are kept; a crash at every I/O step of a drop leaves either
//! the whole drop or none of it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{seed, small_options, value_for};
use settdb::io::{FsStorage, Storage};
use settdb::{Db, IteratorOptions, Options};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn opts(dir: &Path) -> Options {
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
    small_options(dir, storage)
}

/// Writes `n` keys under each prefix (values alternately small and in the value log), with
/// a flush and a compaction part way so data sits in memtables, L0 and deeper levels.
fn fill(db: &Db, prefixes: &[&str], n: u64) -> Model {
    let mut model = Model::new();
    for round in 0..2u64 {
        for p in prefixes {
            for i in 0..n {
                let k = format!("{p}{i:05}").into_bytes();
                let len = if i % 2 == 0 { 16 } else { 900 };
                let v = value_for(&k, round, len);
                db.set(k.clone(), v.clone()).unwrap();
                model.insert(k, v);
            }
        }
        if round == 0 {
            db.flatten().unwrap();
        }
    }
    model
}

fn scan(db: &Db) -> Model {
    let mut out = Model::new();
    let mut it = db.iter(IteratorOptions::default()).unwrap();
    it.rewind().unwrap();
    while it.valid() {
        let item = it.item();
        out.insert(item.key().to_vec(), item.value().unwrap().to_vec());
        it.next().unwrap();
    }
    out
}

fn read_all(it: &mut settdb::DbIterator) -> Model {
    let mut out = Model::new();
    it.rewind().unwrap();
    while it.valid() {
        let item = it.item();
        out.insert(item.key().to_vec(), item.value().unwrap().to_vec());
        it.next().unwrap();
    }
    out
}

fn check(db: &Db, model: &Model, absent: &[Vec<u8>]) {
    assert_eq!(scan(db), *model, "scan differs from the model");
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()));
    }
    for k in absent {
        assert_eq!(
            db.get(k).unwrap(),
            None,
            "{:?} is back",
            String::from_utf8_lossy(k)
        );
    }
}

fn vlog_files_on_disk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".vlog")
        })
        .count()
}

#[test]
fn drop_all_empties_the_database_and_a_snapshot_still_reads() {
    // Proves drop_all removes every key (memtables, every level, the value log) and gives
    // the value-log files back once the iterator created before it is dropped; that iterator
    // reads everything meanwhile; a transaction begun before does not (a drop is not
    // versioned, as in Badger); writes after it work and survive a reopen; verify is OK.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    let before = fill(&db, &["a/", "b/"], 300);
    let mut txn = db.new_transaction(false).unwrap();
    let mut it = db.iter(IteratorOptions::default()).unwrap();
    let files_before: Vec<std::path::PathBuf> = db
        .value_log_files()
        .iter()
        .map(|f| dir.path().join(settdb::inspect::vlog_file_name(f.file_id)))
        .collect();
    assert!(files_before.iter().all(|p| p.exists()));
    db.drop_all().unwrap();
    let gone: Vec<Vec<u8>> = before.keys().cloned().collect();
    check(&db, &Model::new(), &gone);
    assert!(txn.get(b"a/00001").unwrap().is_none());
    assert_eq!(
        read_all(&mut it),
        before,
        "the iterator lost what it pinned"
    );
    assert!(
        files_before.iter().all(|p| p.exists()),
        "a value-log file went while an iterator pinned it"
    );
    drop(it);
    drop(txn);
    let left: Vec<_> = files_before.iter().filter(|p| p.exists()).collect();
    assert!(
        left.is_empty(),
        "value-log files stay after the last pin ended: {left:?}"
    );
    assert_eq!(
        vlog_files_on_disk(dir.path()),
        1,
        "only the new active file"
    );
    db.set("after", "drop").unwrap();
    let mut want = Model::new();
    want.insert(b"after".to_vec(), b"drop".to_vec());
    check(&db, &want, &gone);
    db.close().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    check(&db, &want, &gone);
    db.close().unwrap();
    let report = settdb::verify(&opts(dir.path())).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn drop_prefix_removes_exactly_its_keys() {
    // Proves drop_prefix against the model: keys under the dropped prefixes are gone from
    // every level, memtable and scan, every other key keeps its value, across a reopen; the
    // dropped values are counted for GC, which then gives their space back; an empty prefix
    // is refused and an empty list does nothing; verify is OK.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path()).with_auto_value_log_gc(false)).unwrap();
    let mut model = fill(&db, &["a/", "b/", "c/", "ca"], 200);
    let mut it = db.iter(IteratorOptions::default()).unwrap();
    let all = model.clone();
    assert!(matches!(
        db.drop_prefix(&[b"".as_slice()]),
        Err(settdb::Error::InvalidRequest(_))
    ));
    db.drop_prefix::<&[u8]>(&[]).unwrap();
    check(&db, &model, &[]);
    db.drop_prefix(&["a/", "c/"]).unwrap();
    let gone: Vec<Vec<u8>> = model
        .keys()
        .filter(|k| k.starts_with(b"a/") || k.starts_with(b"c/"))
        .cloned()
        .collect();
    model.retain(|k, _| !k.starts_with(b"a/") && !k.starts_with(b"c/"));
    check(&db, &model, &gone);
    assert_eq!(read_all(&mut it), all, "the iterator lost what it pinned");
    drop(it);
    let dead: u64 = db.value_log_files().iter().map(|f| f.discard_bytes).sum();
    assert!(dead > 0, "the dropped values were not counted for GC");
    db.close().unwrap();
    let db = Db::open(opts(dir.path()).with_auto_value_log_gc(false)).unwrap();
    check(&db, &model, &gone);
    db.close().unwrap();
    let report = settdb::verify(&opts(dir.path())).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn writes_during_a_drop_wait_and_are_kept() {
    // Proves a drop pauses writers rather than failing or losing them: writers keep setting
    // keys under the dropped prefix and another while drops run; every write acknowledged
    // after the last drop returned is there, and nothing fails.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path())).unwrap();
    fill(&db, &["x/", "y/"], 200);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = ["x/", "y/"]
        .into_iter()
        .map(|p| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    db.set(format!("{p}w{i:06}"), vec![1u8; 200]).unwrap();
                    i += 1;
                }
                i
            })
        })
        .collect();
    for _ in 0..3 {
        db.drop_prefix(&["x/"]).unwrap();
    }
    db.drop_all().unwrap();
    db.set("marker", "m").unwrap();
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        counts.iter().all(|&n| n > 0),
        "a writer never got through: {counts:?}"
    );
    assert_eq!(db.get(b"marker").unwrap().as_deref(), Some(&b"m"[..]));
    // Every key is one a writer wrote after the drop_all (the only keys left).
    for (k, _) in scan(&db) {
        assert!(
            k == b"marker" || k.starts_with(b"x/w") || k.starts_with(b"y/w"),
            "{:?} survived drop_all",
            String::from_utf8_lossy(&k)
        );
    }
}

#[test]
fn drops_are_refused_read_only_and_work_in_memory() {
    // Proves a read-only database refuses both drops, and an in-memory one supports them.
    let dir = tempfile::tempdir().unwrap();
    Db::open(opts(dir.path())).unwrap().close().unwrap();
    let ro = Db::open(opts(dir.path()).with_read_only(true)).unwrap();
    assert!(matches!(
        ro.drop_all(),
        Err(settdb::Error::InvalidRequest(_))
    ));
    assert!(matches!(
        ro.drop_prefix(&["a"]),
        Err(settdb::Error::InvalidRequest(_))
    ));
    let mem = Db::open(Options::in_memory()).unwrap();
    let model = fill(&mem, &["a/", "b/"], 50);
    mem.drop_prefix(&["a/"]).unwrap();
    let kept: Model = model
        .into_iter()
        .filter(|(k, _)| k.starts_with(b"b/"))
        .collect();
    check(&mem, &kept, &[]);
    mem.drop_all().unwrap();
    check(&mem, &Model::new(), &[]);
}

#[test]
fn a_crash_at_every_io_step_of_a_drop_prefix_keeps_all_of_it_or_none() {
    // Proves drop_prefix is atomic across a crash (see crash_every_step).
    crash_every_step("drop_prefix", &|db| db.drop_prefix(&["a/"]), b"a/");
}

#[test]
fn a_crash_at_every_io_step_of_a_drop_all_keeps_all_of_it_or_none() {
    // Proves drop_all is atomic across a crash (see crash_every_step).
    crash_every_step("drop_all", &|db| db.drop_all(), b"");
}

/// A fault at each I/O step of `op`, then a crash (modes rotating), reopens to either every
/// key under `dropped` or none of them, with every other key intact, and a clean verify;
/// both outcomes occur.
fn crash_every_step(name: &str, op: &dyn Fn(&Db) -> settdb::Result<()>, dropped: &[u8]) {
    use settdb::io::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
    let dir = Path::new("/db");
    let o = |sim: &SimStorage| {
        small_options(dir, Arc::new(sim.clone()))
            .with_auto_value_log_gc(false)
            .with_sync_writes(true)
    };
    let base = SimStorage::new();
    let db = Db::open(o(&base)).unwrap();
    let model = fill(&db, &["a/", "b/"], 120);
    db.close().unwrap();
    let (gone, kept): (Model, Model) = model.into_iter().partition(|(k, _)| k.starts_with(dropped));
    let modes = [
        CrashMode::Prefix,
        CrashMode::Subset,
        CrashMode::TornTail,
        CrashMode::Nothing,
        CrashMode::Everything,
    ];
    let seed = seed(0xd7);
    let mut n = 0u64;
    let (mut saw_before, mut saw_after) = (false, false);
    loop {
        let sim = base.crash(CrashMode::Everything, 0);
        let db = Db::open(o(&sim)).unwrap();
        sim.inject(Fault::new(FaultOp::Any, FaultKind::Eio).after(n).times(1));
        let finished = op(&db).is_ok() && db.sync().is_ok();
        let mode = modes[(n % modes.len() as u64) as usize];
        let crashed = sim.crash(mode, seed + n);
        crashed.clear_faults();
        drop(db);
        let at = format!("{name} step {n} {mode:?} seed {seed}");
        let reopened = Db::open(o(&crashed)).unwrap_or_else(|e| panic!("{at}: reopen: {e}"));
        let present = gone
            .keys()
            .filter(|k| reopened.get(k).unwrap().is_some())
            .count();
        assert!(
            present == 0 || present == gone.len(),
            "{at}: {present} of {} dropped keys are back",
            gone.len()
        );
        if present == 0 {
            saw_after = true;
        } else {
            saw_before = true;
            for (k, v) in &gone {
                assert_eq!(
                    reopened.get(k).unwrap().as_deref(),
                    Some(v.as_slice()),
                    "{at}"
                );
            }
        }
        for (k, v) in &kept {
            assert_eq!(
                reopened.get(k).unwrap().as_deref(),
                Some(v.as_slice()),
                "{at}"
            );
        }
        reopened.close().unwrap();
        let report = settdb::verify(&o(&crashed)).unwrap();
        assert!(report.is_ok(), "{at}: {:?}", report.problems);
        if finished {
            break;
        }
        n += 1;
        assert!(n < 5000, "{name} never finished without reaching the fault");
    }
    eprintln!("{n} I/O steps of one {name} crashed");
    assert!(
        n >= 3 && saw_before && saw_after,
        "{name}: steps {n}, before {saw_before}, after {saw_after}"
    );
}

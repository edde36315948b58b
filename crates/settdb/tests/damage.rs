//! Issue 8's findings, each a regression test: damage an open could once take for a crash (and
//! then delete or forget data) is a typed error now, in read-write and read-only opens, the
//! open changes no file, and `settdb::verify` reports it. Runs on the simulated storage, whose
//! files the tests edit directly; crash images are exact.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{seed, small_options, workload_step, Gate, SlowTableStorage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::inspect::table_file_name;
use settdb::inspect::vlog_file_name;
use settdb::inspect::{ManifestFile, ManifestOptions};
use settdb::io::{CrashMode, SimStorage, Storage};
use settdb::{Db, Error, Options};

const DIR: &str = "/db";

/// A simulated disk holding a database, and what it must read back.
struct Base {
    sim: SimStorage,
    model: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

fn opts(storage: SimStorage) -> Options {
    small_options(Path::new(DIR), Arc::new(storage))
}

/// Writes `n` single-key transactions ([`workload_step`]).
fn workload(db: &Db, n: u64, model: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for i in 0..n {
        workload_step(db, i, model);
    }
}

/// A cleanly closed database with tables on several levels and several value-log files.
fn clean_base() -> Base {
    let sim = SimStorage::new();
    let db = Db::open(opts(sim.clone())).unwrap();
    let mut model = BTreeMap::new();
    workload(&db, 12_000, &mut model);
    db.close().unwrap();
    Base { sim, model }
}

/// A crash image (everything written kept) of a database with `sync_writes` whose flushes
/// wait at a gate, so it holds several WALs: rotated, sealed ones and the active one.
fn crashed_base() -> Base {
    let sim = SimStorage::new();
    let gate = Arc::new(Gate::default());
    let slow = SlowTableStorage {
        inner: Arc::new(sim.clone()),
        delay: std::time::Duration::ZERO,
        gate: Some(gate.clone()),
    };
    let o = small_options(Path::new(DIR), Arc::new(slow))
        .with_sync_writes(true)
        .with_num_memtables(8);
    let db = Db::open(o).unwrap();
    let mut model = BTreeMap::new();
    workload(&db, 36_000, &mut model);
    let image = sim.crash(CrashMode::Everything, 1);
    gate.open();
    drop(db);
    let base = Base { sim: image, model };
    assert!(
        base.files_ending(".mem").len() >= 3,
        "the crashed base needs rotated WALs: {:?}",
        base.names()
    );
    base
}

impl Base {
    fn names(&self) -> Vec<String> {
        self.sim.list_dir(Path::new(DIR)).unwrap()
    }

    fn files_ending(&self, suffix: &str) -> Vec<PathBuf> {
        self.names()
            .into_iter()
            .filter(|n| n.ends_with(suffix))
            .map(|n| Path::new(DIR).join(n))
            .collect()
    }

    fn bytes(&self, path: &Path) -> Vec<u8> {
        self.sim.live_bytes(path).unwrap()
    }

    /// Every file and its bytes.
    fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.names()
            .into_iter()
            .filter(|n| n != "LOCK")
            .filter_map(|n| Some((n.clone(), self.sim.live_bytes(&Path::new(DIR).join(&n))?)))
            .collect()
    }

    /// Both opens fail with a corruption error, the files stay as they were, and verify
    /// reports a problem. Returns the read-write open's message.
    fn assert_refused(&self, what: &str) -> String {
        let before = self.snapshot();
        let mut message = String::new();
        for read_only in [false, true] {
            match Db::open(opts(self.sim.clone()).with_read_only(read_only)) {
                Ok(db) => {
                    let wrong = self.count_wrong(&db);
                    panic!("{what}: open (read_only={read_only}) succeeded, {wrong} keys wrong")
                }
                Err(e) => {
                    assert!(e.is_corruption(), "{what}: not a corruption error: {e}");
                    let line = e.to_string();
                    assert!(!line.contains('\n'), "{what}: not one line: {line}");
                    if !read_only {
                        message = line;
                    }
                }
            }
            assert!(
                before == self.snapshot(),
                "{what}: a failed open changed the files"
            );
        }
        let report = settdb::verify(&opts(self.sim.clone())).unwrap();
        assert!(!report.is_ok(), "{what}: verify found nothing");
        message
    }

    fn count_wrong(&self, db: &Db) -> usize {
        self.model
            .iter()
            .filter(|(k, v)| db.get(k).ok().as_ref() != Some(v))
            .count()
    }

    fn assert_reads_model(&self) {
        let db = Db::open(opts(self.sim.clone())).unwrap();
        assert_eq!(self.count_wrong(&db), 0);
        db.close().unwrap();
    }
}

#[test]
fn the_bases_are_sound() {
    // Proves the undamaged bases open, read exactly the model and verify clean, so every
    // refusal below is the damage's doing.
    for base in [clean_base(), crashed_base()] {
        let report = settdb::verify(&opts(base.sim.clone())).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        base.assert_reads_model();
    }
}

#[test]
fn a_lost_or_damaged_manifest_is_an_error_not_an_empty_database() {
    // Proves the three MANIFEST findings: deleted (a read-write open once made a new one and
    // deleted every table), cut to 25 bytes (replayed as empty), and one byte flipped in its
    // last record (taken for a torn tail, then tables deleted).
    let base = clean_base();
    let manifest = Path::new(DIR).join("MANIFEST");
    let good = base.bytes(&manifest);
    base.sim.remove_file(&manifest).unwrap();
    let msg = base.assert_refused("MANIFEST deleted");
    assert!(msg.contains("MANIFEST is missing"), "{msg}");
    base.sim.set_bytes(&manifest, &good[..25]).unwrap();
    base.assert_refused("MANIFEST cut to 25 bytes");
    let mut flipped = good.clone();
    let at = flipped.len() - 3;
    flipped[at] ^= 0x10;
    base.sim.set_bytes(&manifest, &flipped).unwrap();
    base.assert_refused("last MANIFEST record flipped");
    base.sim.set_bytes(&manifest, &good).unwrap();
    base.assert_reads_model();
}

#[test]
fn damage_to_a_rotated_wal_is_an_error() {
    // Proves a rotated WAL (sealed when it was rotated) reports damage anywhere and any cut:
    // garbage in its middle once returned half the keys with verify saying OK.
    let base = crashed_base();
    let wals = base.files_ending(".mem");
    let oldest = &wals[0];
    let good = base.bytes(oldest);
    let mut rng = StdRng::seed_from_u64(seed(8));
    let mut garbage = good.clone();
    let mid = good.len() / 2;
    rng.fill(&mut garbage[mid..mid + 64]);
    base.sim.set_bytes(oldest, &garbage).unwrap();
    base.assert_refused("garbage in the middle of a rotated WAL");
    base.sim
        .set_bytes(oldest, &good[..good.len() - 10])
        .unwrap();
    base.assert_refused("rotated WAL cut short");
    base.sim.remove_file(oldest).unwrap();
    let msg = base.assert_refused("rotated WAL deleted");
    assert!(msg.contains("missing"), "{msg}");
    base.sim.set_bytes(oldest, &good).unwrap();
    base.assert_reads_model();
}

#[test]
fn damage_followed_by_an_intact_batch_in_the_active_wal_is_an_error() {
    // Proves the active WAL's findings: a region inserted in its middle (every later batch
    // shifted: once read as a torn tail, losing 188 acknowledged transactions), a zeroed range
    // before its last batches, its deletion, and its truncation to a batch boundary that
    // drops synced batches.
    let base = crashed_base();
    let active = base.files_ending(".mem").pop().unwrap();
    let good = base.bytes(&active);
    assert!(
        good.len() > 4096,
        "the active WAL needs batches: {} bytes",
        good.len()
    );
    let at = good.len() / 3;
    let mut inserted = good[..at].to_vec();
    inserted.extend_from_slice(&good[100..700]);
    inserted.extend_from_slice(&good[at..]);
    base.sim.set_bytes(&active, &inserted).unwrap();
    base.assert_refused("region inserted in the active WAL");
    let mut zeroed = good.clone();
    zeroed[at..at + 1024].fill(0);
    base.sim.set_bytes(&active, &zeroed).unwrap();
    base.assert_refused("zeroed range before intact synced batches");
    base.sim.set_bytes(&active, &good[..20]).unwrap();
    base.assert_refused("active WAL cut inside its header");
    base.sim.remove_file(&active).unwrap();
    base.assert_refused("active WAL deleted");
    base.sim.set_bytes(&active, &good).unwrap();
    base.assert_reads_model();
}

#[test]
fn a_missing_value_log_file_is_an_error_read_only_too() {
    // Proves a deleted .vlog file is refused at open (it once opened fine and only verify saw
    // 5,000 dangling pointers).
    let base = clean_base();
    let vlogs = base.files_ending(".vlog");
    assert!(vlogs.len() >= 2, "{:?}", base.names());
    let victim = &vlogs[0];
    let good = base.bytes(victim);
    base.sim.remove_file(victim).unwrap();
    let msg = base.assert_refused("value-log file deleted");
    assert!(msg.contains("missing"), "{msg}");
    base.sim.set_bytes(victim, &good).unwrap();
    base.assert_reads_model();
}

#[test]
fn unlisted_files_whose_ids_were_never_handed_out_are_kept_and_reported() {
    // Proves an unlisted table or WAL the MANIFEST cannot account for (its id was never handed
    // out, so the MANIFEST lost records) is reported and never deleted.
    let base = clean_base();
    let tables = base.files_ending(".sst");
    let copy = Path::new(DIR).join("099999.sst");
    base.sim.set_bytes(&copy, &base.bytes(&tables[0])).unwrap();
    base.assert_refused("unknown table");
    assert!(base.sim.live_bytes(&copy).is_some());
    base.sim.remove_file(&copy).unwrap();
    base.assert_reads_model();
}

#[test]
fn verify_says_when_a_directory_is_not_a_database() {
    // Proves verify on an empty directory, or one of someone else's files, says so (not
    // "CORRUPT" and not OK).
    let sim = SimStorage::new();
    sim.create_dir_all(Path::new(DIR)).unwrap();
    let o = opts(sim.clone());
    assert!(matches!(
        settdb::verify(&o),
        Err(Error::NotADatabase { .. })
    ));
    sim.set_bytes(&Path::new(DIR).join("notes.txt"), b"hello")
        .unwrap();
    let e = settdb::verify(&o).unwrap_err();
    assert!(e.to_string().contains("not a SettDB database"), "{e}");
}

#[test]
fn crash_images_verify_clean_and_recovery_never_deletes_a_needed_table() {
    // Proves the orphan rule on simulated power loss at random points of a workload busy with
    // flushes and compactions: every crash image verifies with no problem (a crash is not
    // damage), the read-write open removes only what the MANIFEST proves garbage, so every
    // table the recovered MANIFEST lists is there (verify after the open), and the data is
    // the acknowledged prefix.
    let base_seed = seed(77);
    let modes = [CrashMode::Prefix, CrashMode::Subset, CrashMode::TornTail];
    for i in 0..6u64 {
        let s = base_seed + i;
        let mode = modes[(i % 3) as usize];
        let sim = SimStorage::with_seed(s);
        let o = opts(sim.clone())
            .with_sync_writes(true)
            .with_num_level_zero_tables(1);
        let db = Db::open(o).unwrap();
        let mut rng = StdRng::seed_from_u64(s);
        let n = rng.random_range(2_000..6_000u64);
        let crash_at = rng.random_range(n / 2..n);
        let mut model = BTreeMap::new();
        let mut image = None;
        for j in 0..n {
            if j == crash_at {
                image = Some((sim.crash(mode, s), model.clone()));
            }
            workload_step(&db, j, &mut model);
        }
        drop(db);
        let (image, acked) = image.unwrap();
        let report = settdb::verify(&opts(image.clone())).unwrap();
        assert!(
            report.is_ok(),
            "seed {s} {mode:?}: crash image: {:?}",
            report.problems
        );
        let db = Db::open(opts(image.clone()))
            .unwrap_or_else(|e| panic!("seed {s} {mode:?}: reopen: {e}"));
        for (k, v) in &acked {
            assert_eq!(&db.get(k).unwrap(), v, "seed {s} {mode:?}");
        }
        db.close().unwrap();
        let report = settdb::verify(&opts(image)).unwrap();
        assert!(
            report.is_ok(),
            "seed {s} {mode:?}: after reopen: {:?}",
            report.problems
        );
    }
}

#[test]
fn a_read_write_open_removes_only_proven_garbage() {
    // Proves the other half of the orphan rule: what the MANIFEST proves garbage (an output
    // of a flush that never finished while its source WAL is intact, a value-log file created
    // by a crash before any batch) is left alone by a read-only open and removed by a
    // read-write open, which then ends the abandoned operation; nothing else goes.
    let base = crashed_base();
    let storage: Arc<dyn Storage> = Arc::new(base.sim.clone());
    let (_, state) =
        ManifestFile::open(storage.clone(), Path::new(DIR), ManifestOptions::new(7)).unwrap();
    let (&op_id, _) = state
        .open_ops()
        .iter()
        .next()
        .expect("a flush waits at the gate with its operation begun");
    let unfinished = Path::new(DIR).join(table_file_name(op_id));
    base.sim.set_bytes(&unfinished, b"half a table").unwrap();
    let next_vlog = u32::try_from(state.next_vlog_id()).unwrap() + 5;
    let unborn_vlog = Path::new(DIR).join(vlog_file_name(next_vlog));
    base.sim.set_bytes(&unborn_vlog, &[]).unwrap();
    let before = base.names();
    let db = Db::open(opts(base.sim.clone()).with_read_only(true)).unwrap();
    assert_eq!(base.count_wrong(&db), 0);
    db.close().unwrap();
    assert_eq!(base.names(), before, "a read-only open removed something");
    let db = Db::open(opts(base.sim.clone())).unwrap();
    assert_eq!(base.count_wrong(&db), 0);
    db.close().unwrap();
    let after = base.names();
    assert!(!after.iter().any(|n| Path::new(DIR).join(n) == unfinished));
    assert!(!after.iter().any(|n| Path::new(DIR).join(n) == unborn_vlog));
    let (_, state) = ManifestFile::open(storage, Path::new(DIR), ManifestOptions::new(7)).unwrap();
    assert!(
        !state.open_ops().contains_key(&op_id),
        "the abandoned operation was not ended"
    );
    assert!(settdb::verify(&opts(base.sim.clone())).unwrap().is_ok());
}

#[test]
fn verify_counts_every_file_and_finds_what_only_it_checks() {
    // Proves verify's report and the checks an open does not make: every table, block,
    // value-log record and WAL counted exactly; a damaged record in an older value-log file
    // (opens check only its seal) and value-log bytes cut from the newest file (which a replay
    // takes for a torn tail; only the tables' pointers show them lost) are problems; a lone WAL
    // without a MANIFEST is a lost MANIFEST, not "not a database".
    let base = clean_base();
    let size = |suffix: &str| -> (u64, u64) {
        let files = base.files_ending(suffix);
        let bytes = files.iter().map(|f| base.bytes(f).len() as u64).sum();
        (files.len() as u64, bytes)
    };
    let r = settdb::verify(&opts(base.sim.clone())).unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!((r.tables, r.table_bytes), size(".sst"));
    assert!(r.blocks > r.tables);
    let (vlogs, vlog_bytes) = size(".vlog");
    let seals = vlogs * settdb::inspect::seal_batch_len();
    assert_eq!((r.vlog_files, r.vlog_bytes), (vlogs, vlog_bytes - seals));
    let values = (0..12_000u64).filter(|i| i % 3 == 0 && i % 11 != 5).count() as u64;
    assert_eq!(r.vlog_records, values);
    assert_eq!((r.wals, r.wal_bytes), size(".mem"));

    let vlog_files = base.files_ending(".vlog");
    let oldest = &vlog_files[0];
    let good = base.bytes(oldest);
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x08;
    base.sim.set_bytes(oldest, &flipped).unwrap();
    let r = settdb::verify(&opts(base.sim.clone())).unwrap();
    assert!(!r.is_ok(), "a damaged record in an older value-log file");
    base.sim.set_bytes(oldest, &good).unwrap();

    let newest = vlog_files.last().unwrap();
    let good = base.bytes(newest);
    base.sim
        .set_bytes(newest, &good[..good.len() * 2 / 3])
        .unwrap();
    let r = settdb::verify(&opts(base.sim.clone())).unwrap();
    assert!(
        r.problems.iter().any(|p| p
            .to_string()
            .contains("newest versions point at value-log bytes")),
        "{:?}",
        r.problems
    );
    base.sim.set_bytes(newest, &good).unwrap();

    let lone = SimStorage::new();
    lone.create_dir_all(Path::new(DIR)).unwrap();
    lone.set_bytes(&Path::new(DIR).join("000001.mem"), b"x")
        .unwrap();
    let r = settdb::verify(&opts(lone)).unwrap();
    assert!(r.problems[0].to_string().contains("MANIFEST is missing"));
}

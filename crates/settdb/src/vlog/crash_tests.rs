//! Crash and fault tests of the value log on [`SimStorage`]: whatever part of the unsynced
//! writes a power loss keeps, reopening succeeds, every group synced before the crash
//! survives, validity is all-or-nothing per group and prefix-closed in append order, and a
//! pointer reported valid always reads back its own value.

use std::path::Path;

use rand::Rng;

use super::testing::{
    append, assert_reads, gen_group, open_sim, opts, read_only, rng, test_seed, Written, DIR,
};
use super::{ValueLog, ValueLogOptions, VlogRecovery};
use crate::io::{CrashMode, Fault, FaultKind, FaultOp, SimStorage, Storage};

const MODES: [CrashMode; 5] = [
    CrashMode::Prefix,
    CrashMode::Subset,
    CrashMode::TornTail,
    CrashMode::Nothing,
    CrashMode::Everything,
];

/// Crash seeds per scenario and mode.
const SEEDS: u64 = 12;

/// Small files, so a dozen groups rotate several times.
fn small() -> ValueLogOptions {
    opts(3 << 10, 6)
}

/// How a scenario's writing ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Groups appended after the last sync.
    Unsynced,
    /// Everything synced.
    Synced,
    /// A short write fails a group part way (poisoning the value log).
    ShortWrite,
    /// Rotation fails: the next file's directory entry never becomes durable.
    FailedRotation,
}

/// Groups appended, and how many of the first of them a successful sync covered.
struct Scenario {
    sim: SimStorage,
    groups: Vec<Written>,
    synced: usize,
}

fn write_scenario(seed: u64, ending: Ending) -> Scenario {
    let sim = SimStorage::with_seed(seed);
    let (vlog, _) = open_sim(&sim, small()).unwrap();
    let mut r = rng(seed);
    let n = r.random_range(4..16u64);
    let sync_after = r.random_range(0..n);
    let fault_at = r.random_range(1..n);
    let mut s = Scenario {
        sim: sim.clone(),
        groups: Vec::new(),
        synced: 0,
    };
    for g in 0..n {
        if g == fault_at {
            match ending {
                Ending::ShortWrite => sim.inject(Fault::new(FaultOp::Write, FaultKind::ShortWrite)),
                Ending::FailedRotation => sim.inject(Fault::new(FaultOp::SyncDir, FaultKind::Eio)),
                Ending::Unsynced | Ending::Synced => {}
            }
        }
        match append(&vlog, gen_group(&mut r, g, 4, 700)) {
            Ok(w) => s.groups.push(w),
            Err(_) => break, // an injected fault: the value log is poisoned from here on
        }
        if g == sync_after && vlog.sync().is_ok() {
            s.synced = s.groups.len();
        }
    }
    if matches!(ending, Ending::Synced) {
        vlog.sync().unwrap();
        s.synced = s.groups.len();
    }
    s
}

/// Checks the survival rules on a reopened value log; returns which groups are valid.
fn check(vlog: &ValueLog, rec: &VlogRecovery, s: &Scenario, ctx: &str) -> Vec<bool> {
    let mut flags = Vec::with_capacity(s.groups.len());
    for (i, w) in s.groups.iter().enumerate() {
        let valid: Vec<bool> = w.ptrs.iter().map(|p| vlog.pointer_is_valid(p)).collect();
        let all = valid.iter().all(|&v| v);
        assert!(
            all || !valid.contains(&true),
            "{ctx}: group {i} partly valid"
        );
        if i < s.synced {
            assert!(all, "{ctx}: group {i} was synced but did not survive");
        }
        if all {
            assert!(
                !flags.contains(&false),
                "{ctx}: group {i} valid after a lost one"
            );
            assert_reads(vlog, w);
        } else {
            for p in &w.ptrs {
                let end = u64::from(p.offset) + u64::from(p.len);
                let past = rec.valid_end(p.file_id).is_none_or(|v| end > v);
                assert!(
                    past,
                    "{ctx}: {p:?} is invalid but within its file's valid end"
                );
            }
        }
        flags.push(all);
    }
    flags
}

/// Everything a writing open could change: each file's name, live and durable bytes, and
/// the count of unsynced operations.
type Snapshot = (Vec<(String, Option<Vec<u8>>, Option<Vec<u8>>)>, usize);

fn snapshot(sim: &SimStorage) -> Snapshot {
    let files = sim
        .list_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .map(|name| {
            let p = Path::new(DIR).join(&name);
            (name, sim.live_bytes(&p), sim.durable_bytes(&p))
        })
        .collect();
    (files, sim.unsynced_op_count())
}

/// One crash of one scenario: read-only open (writes nothing), writing open (same result),
/// a synced append, then a second crash and open (nothing valid is lost or gained).
fn crash_and_recover(s: &Scenario, mode: CrashMode, seed: u64) {
    let ctx = format!("{mode:?} seed {seed}");
    let crashed = s.sim.crash(mode, seed);
    let before = snapshot(&crashed);
    let (ro, rec) = open_sim(&crashed, read_only(small())).unwrap();
    let flags = check(&ro, &rec, s, &format!("{ctx} read-only"));
    assert!(before == snapshot(&crashed), "{ctx}: read-only open wrote");
    drop(ro);

    let (rw, rec) = open_sim(&crashed, small()).unwrap();
    assert_eq!(check(&rw, &rec, s, &format!("{ctx} writing")), flags);
    let max_id = rec.files.iter().map(|f| f.id).max().unwrap_or(0);
    assert_eq!(rw.active_file_id(), Some(max_id + 1), "{ctx}");
    assert!(rw
        .file_ids()
        .iter()
        .all(|&id| rw.file_size_bytes(id) > Some(48) || Some(id) == rw.active_file_id()));
    let extra = append(&rw, gen_group(&mut rng(seed), 1000, 3, 700)).unwrap();
    rw.sync().unwrap();
    drop(rw);

    let again = crashed.crash(mode, seed.wrapping_add(1));
    let (rw2, rec2) = open_sim(&again, small()).unwrap();
    assert_eq!(check(&rw2, &rec2, s, &format!("{ctx} second crash")), flags);
    assert_reads(&rw2, &extra);
}

fn crash_every_way(ending: Ending) {
    let seed = test_seed(&format!("crash {ending:?}"));
    for i in 0..3 {
        let s = write_scenario(seed.wrapping_add(i), ending);
        for mode in MODES {
            for c in 0..SEEDS {
                crash_and_recover(&s, mode, seed.wrapping_mul(31).wrapping_add(c));
            }
        }
    }
}

#[test]
fn crashes_after_unsynced_appends_keep_synced_groups() {
    // Proves the survival rules for every crash mode and many seeds when groups were appended
    // after the last sync (including across rotations).
    crash_every_way(Ending::Unsynced);
}

#[test]
fn crashes_after_a_final_sync_keep_every_group() {
    // Proves every group survives every crash mode once synced.
    crash_every_way(Ending::Synced);
}

#[test]
fn crashes_after_a_short_write_recover() {
    // Proves a torn write (short write fault, poisoning) followed by a crash reopens with the
    // synced groups intact and the torn group invalid.
    crash_every_way(Ending::ShortWrite);
}

#[test]
fn crashes_after_a_failed_rotation_recover() {
    // Proves a rotation whose new file never became durable (directory sync fails) followed
    // by a crash reopens with the synced groups intact.
    crash_every_way(Ending::FailedRotation);
}

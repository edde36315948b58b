//! [`CrashMode`]: which of the unsynced operations a simulated power loss keeps, and the pure
//! function choosing them from a seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::op::Op;

/// What a [`super::SimStorage::crash`] keeps of the operations that were not synced. Durable
/// state is always kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// The first `k` unsynced ops, `k` uniform in `0..=n`: writeback in issue order.
    Prefix,
    /// Each unsynced op independently with probability 1/2: pages written back in any order.
    /// A disk writes whole sectors, and writeback writes a sector as the page cache holds it:
    /// so a kept write also keeps every earlier write to the same file that shares a sector
    /// with it (a crash never leaves a later write's bytes beside the bytes an earlier write
    /// put in the same sector, lost).
    Subset,
    /// The first `k` ops, `k` uniform in `0..n`, and op `k` torn if it is a write: a random
    /// strict prefix of its bytes lands (the file was cut there), or, half of the time, the
    /// file grew to the write's full length but only the sectors before a random sector
    /// boundary landed, the rest reading as zeros (a disk writes whole sectors, so a tear
    /// never leaves zeros inside a sector that landed). A torn op that is not a write is lost.
    TornTail,
    /// Only durable state (`k = 0`).
    Nothing,
    /// Every op: a process kill without power loss, where the page cache survives.
    Everything,
}

impl CrashMode {
    /// Every mode, for campaigns that try each.
    pub const ALL: [CrashMode; 5] = [
        CrashMode::Prefix,
        CrashMode::Subset,
        CrashMode::TornTail,
        CrashMode::Nothing,
        CrashMode::Everything,
    ];
}

/// How much of one logged op a crash keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keep {
    /// All of it.
    Whole,
    /// The first `len` bytes of a write (`len` < its length), then zeros to its end if
    /// `zero_fill`.
    Torn {
        /// Bytes of the write that landed.
        len: usize,
        /// Whether the file was extended to the write's end anyway.
        zero_fill: bool,
    },
}

/// The ops of `log` a crash in `mode` keeps, as (index, how) in issue order. Deterministic in
/// `seed`.
pub(super) fn plan(mode: CrashMode, seed: u64, log: &[Op]) -> Vec<(usize, Keep)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = log.len();
    let whole = |range: std::ops::Range<usize>| range.map(|i| (i, Keep::Whole));
    match mode {
        CrashMode::Nothing => Vec::new(),
        CrashMode::Everything => whole(0..n).collect(),
        CrashMode::Prefix => whole(0..rng.random_range(0..=n)).collect(),
        CrashMode::Subset => {
            let mut kept: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
            keep_sector_mates(log, &mut kept);
            (0..n)
                .filter(|&i| kept[i])
                .map(|i| (i, Keep::Whole))
                .collect()
        }
        CrashMode::TornTail => {
            if n == 0 {
                return Vec::new();
            }
            let k = rng.random_range(0..n);
            let mut kept: Vec<_> = whole(0..k).collect();
            if let Some(Op::Write { offset, bytes, .. }) = log.get(k) {
                if !bytes.is_empty() {
                    let mut len = rng.random_range(0..bytes.len());
                    let zero_fill = rng.random_bool(0.5);
                    if zero_fill {
                        // Sectors land whole: the zeros start at a sector boundary of the
                        // file (or the write's start), never inside a sector that landed.
                        len =
                            ((offset + len) / SECTOR_BYTES * SECTOR_BYTES).saturating_sub(*offset);
                    }
                    kept.push((k, Keep::Torn { len, zero_fill }));
                }
            }
            kept
        }
    }
}

/// Bytes a disk writes atomically.
pub(super) const SECTOR_BYTES: usize = 512;

/// Marks kept every write that an earlier-issued write shares a sector with a kept later one
/// (to a fixpoint: processed from the last op back).
fn keep_sector_mates(log: &[Op], kept: &mut [bool]) {
    for j in (0..log.len()).rev() {
        let Some(Op::Write { ino, offset, bytes }) = log.get(j).filter(|_| kept[j]) else {
            continue;
        };
        let from = offset / SECTOR_BYTES * SECTOR_BYTES;
        let to = (offset + bytes.len()).div_ceil(SECTOR_BYTES) * SECTOR_BYTES;
        for i in 0..j {
            if let Op::Write {
                ino: other,
                offset: o,
                bytes: b,
            } = &log[i]
            {
                if other == ino && *o < to && o + b.len() > from {
                    kept[i] = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::io::{OpenMode, SimStorage, Storage, StorageFile};

    fn writes(n: usize) -> Vec<Op> {
        (0..n)
            .map(|i| Op::Write {
                ino: 1,
                offset: i,
                bytes: vec![7; 4],
            })
            .collect()
    }

    #[test]
    fn modes_keep_their_documented_shapes() {
        // Proves over many seeds: Nothing keeps none, Everything all, Prefix a prefix,
        // TornTail a prefix plus at most one strictly torn last write, and the plan is
        // deterministic in the seed.
        let log = writes(6);
        let mut prefix_lens = std::collections::HashSet::new();
        for seed in 0..300 {
            assert!(plan(CrashMode::Nothing, seed, &log).is_empty());
            assert_eq!(plan(CrashMode::Everything, seed, &log).len(), 6);
            let p = plan(CrashMode::Prefix, seed, &log);
            assert!(p.iter().enumerate().all(|(i, k)| *k == (i, Keep::Whole)));
            prefix_lens.insert(p.len());
            let t = plan(CrashMode::TornTail, seed, &log);
            let (last, head) = t.split_last().unwrap();
            assert!(head.iter().enumerate().all(|(i, k)| *k == (i, Keep::Whole)));
            assert!(matches!(last.1, Keep::Torn { len, .. } if len < 4));
            assert_eq!(
                plan(CrashMode::Subset, seed, &log),
                plan(CrashMode::Subset, seed, &log)
            );
        }
        assert_eq!(prefix_lens.len(), 7, "every k in 0..=n occurs");
    }

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// A storage with durable file `f` holding `content` in the durable directory `/d`.
    fn synced_file(content: &[u8]) -> (SimStorage, Arc<dyn StorageFile>) {
        let s = SimStorage::new();
        s.create_dir_all(p("/d")).unwrap();
        s.set_bytes(p("/d/f"), content).unwrap();
        let f = s.open(p("/d/f"), OpenMode::ReadWrite).unwrap();
        (s, f)
    }

    const ALL_MODES: [CrashMode; 5] = [
        CrashMode::Prefix,
        CrashMode::Subset,
        CrashMode::TornTail,
        CrashMode::Nothing,
        CrashMode::Everything,
    ];

    #[test]
    fn unsynced_write_lost_on_nothing_kept_on_everything() {
        // Proves an unsynced overwrite is gone after a power loss with nothing written back
        // and present after a process kill, and that the crash copy is independent.
        let (s, f) = synced_file(b"old");
        f.write_at(0, b"new").unwrap();
        assert_eq!(s.live_bytes(p("/d/f")).unwrap(), b"new");
        assert_eq!(s.durable_bytes(p("/d/f")).unwrap(), b"old");
        let lost = s.crash(CrashMode::Nothing, 0);
        let kept = s.crash(CrashMode::Everything, 0);
        assert_eq!(lost.live_bytes(p("d/f")).unwrap(), b"old");
        assert_eq!(kept.live_bytes(p("d/f")).unwrap(), b"new");
        assert_eq!(kept.unsynced_op_count(), 0);
        kept.set_bytes(p("/d/f"), b"zzz").unwrap();
        assert_eq!(
            s.live_bytes(p("/d/f")).unwrap(),
            b"new",
            "copies are independent"
        );
    }

    #[test]
    fn synced_write_survives_every_mode() {
        // Proves sync_data on a durably linked file makes its bytes survive any crash, even
        // with later unsynced ops on other files pending.
        let (s, f) = synced_file(b"");
        f.write_at(0, b"payload").unwrap();
        f.sync_data().unwrap();
        let g = s.open(p("/d/g"), OpenMode::CreateNew).unwrap();
        g.write_at(0, b"noise").unwrap();
        for mode in ALL_MODES {
            for seed in 0..20 {
                let c = s.crash(mode, seed);
                assert_eq!(
                    c.live_bytes(p("/d/f")).unwrap(),
                    b"payload",
                    "{mode:?} {seed}"
                );
            }
        }
    }

    #[test]
    fn synced_file_without_dir_sync_is_gone() {
        // Proves durability rule 1: fsync of a new file without fsync of its directory leaves
        // no entry after a crash; with the directory synced it survives.
        let s = SimStorage::new();
        s.create_dir_all(p("db")).unwrap();
        let f = s.open(p("db/000001.sst"), OpenMode::CreateNew).unwrap();
        f.write_at(0, b"table").unwrap();
        f.sync_data().unwrap();
        let c = s.crash(CrashMode::Nothing, 0);
        assert!(!c.exists(p("db/000001.sst")).unwrap());
        assert!(c.exists(p("db")).unwrap(), "create_dir_all is durable");
        s.sync_dir(p("db")).unwrap();
        let c = s.crash(CrashMode::Nothing, 0);
        assert_eq!(c.live_bytes(p("db/000001.sst")).unwrap(), b"table");
    }

    #[test]
    fn rename_is_durable_only_after_dir_sync() {
        // Proves durability rule 2's last step: without sync_dir a crash shows the old
        // CURRENT; after it, the new one, and the replaced inode is gone.
        let s = SimStorage::new();
        s.set_bytes(p("CURRENT"), b"v1").unwrap();
        let t = s.open(p("CURRENT.tmp"), OpenMode::CreateNew).unwrap();
        t.write_at(0, b"v2").unwrap();
        t.sync_data().unwrap();
        s.rename(p("CURRENT.tmp"), p("CURRENT")).unwrap();
        assert_eq!(s.live_bytes(p("CURRENT")).unwrap(), b"v2");
        let c = s.crash(CrashMode::Nothing, 0);
        assert_eq!(c.live_bytes(p("CURRENT")).unwrap(), b"v1");
        assert!(!c.exists(p("CURRENT.tmp")).unwrap());
        s.sync_dir(p(".")).unwrap();
        for mode in ALL_MODES {
            let c = s.crash(mode, 9);
            assert_eq!(c.live_bytes(p("CURRENT")).unwrap(), b"v2");
            assert_eq!(c.list_dir(p("/")).unwrap(), ["CURRENT"]);
        }
    }

    /// Runs a mixed sequence of 12 unsynced ops (writes to two files, file creations) on
    /// synced state, crashes with `mode` and `seed`, and says which of the 12 survived.
    fn survivors(mode: CrashMode, seed: u64) -> Vec<bool> {
        let s = SimStorage::new();
        s.set_bytes(p("a"), &[0; 12]).unwrap();
        s.set_bytes(p("b"), &[0; 12]).unwrap();
        let a = s.open(p("a"), OpenMode::ReadWrite).unwrap();
        let b = s.open(p("b"), OpenMode::ReadWrite).unwrap();
        for i in 0..12u8 {
            match i % 3 {
                0 => a.write_at(u64::from(i), &[i + 1]).unwrap(),
                1 => drop(s.open(p(&format!("n{i}")), OpenMode::CreateNew).unwrap()),
                _ => b.write_at(u64::from(i), &[i + 1]).unwrap(),
            }
        }
        let c = s.crash(mode, seed);
        let (ca, cb) = (c.live_bytes(p("a")).unwrap(), c.live_bytes(p("b")).unwrap());
        (0..12u8)
            .map(|i| match i % 3 {
                0 => ca[usize::from(i)] != 0,
                1 => c.exists(p(&format!("n{i}"))).unwrap(),
                _ => cb[usize::from(i)] != 0,
            })
            .collect()
    }

    fn has_gap(kept: &[bool]) -> bool {
        kept.windows(2).any(|w| !w[0] && w[1])
    }

    #[test]
    fn prefix_never_keeps_a_later_op_without_an_earlier_one() {
        // Proves over 200 seeds that Prefix keeps a prefix of the global op order across
        // files and directory entries, and that every prefix length occurs.
        let mut lens = std::collections::HashSet::new();
        for seed in 0..200 {
            let kept = survivors(CrashMode::Prefix, seed);
            assert!(!has_gap(&kept), "seed {seed}: {kept:?}");
            lens.insert(kept.iter().filter(|k| **k).count());
        }
        assert_eq!(lens.len(), 13);
    }

    #[test]
    fn subset_keeps_earlier_writes_sharing_a_sector_with_a_kept_one() {
        // Proves the sector model of Subset: over many seeds, whenever a later append to a file
        // survives, every earlier append in the same sector survived too, while appends in
        // other sectors are lost independently (some seed keeps a later sector only).
        let mut saw_gap_across_sectors = false;
        for seed in 0..100 {
            let (s, f) = synced_file(b"");
            // Two appends in sector 0, two in sector 1.
            for (at, byte) in [(0u64, 1u8), (100, 2), (600, 3), (700, 4)] {
                f.write_at(at, &[byte; 10]).unwrap();
            }
            let c = s
                .crash(CrashMode::Subset, seed)
                .live_bytes(p("/d/f"))
                .unwrap();
            let has = |at: usize, byte: u8| c.get(at) == Some(&byte);
            assert!(!has(100, 2) || has(0, 1), "seed {seed}");
            assert!(!has(700, 4) || has(600, 3), "seed {seed}");
            saw_gap_across_sectors |= !has(0, 1) && has(600, 3);
        }
        assert!(saw_gap_across_sectors);
    }

    #[test]
    fn subset_can_keep_a_later_op_without_an_earlier_one() {
        // Proves Subset models out-of-order writeback: some seed keeps a later op while
        // losing an earlier one.
        let seed = (0..50).find(|s| has_gap(&survivors(CrashMode::Subset, *s)));
        assert!(seed.is_some());
    }

    #[test]
    fn torn_tail_keeps_a_strict_prefix_of_the_last_write() {
        // Proves over 100 seeds that TornTail leaves the synced bytes, then a strict prefix
        // of the unsynced write, then either nothing or zeros to the write's full end; and
        // that both a non-empty tear and a zero fill occur.
        let data = b"0123456789";
        let (mut saw_tear, mut saw_zeros) = (false, false);
        for seed in 0..100 {
            let (s, f) = synced_file(b"hdr");
            f.write_at(3, data).unwrap();
            let c = s
                .crash(CrashMode::TornTail, seed)
                .live_bytes(p("/d/f"))
                .unwrap();
            let (head, tail) = c.split_at(3);
            assert_eq!(head, b"hdr");
            let landed = tail.iter().zip(data).take_while(|(x, y)| x == y).count();
            assert!(landed < data.len(), "seed {seed}: the whole write landed");
            let rest = &tail[landed..];
            assert!(rest.is_empty() || (tail.len() == data.len() && rest.iter().all(|b| *b == 0)));
            saw_tear |= landed > 0;
            saw_zeros |= !rest.is_empty();
        }
        assert!(saw_tear && saw_zeros);
    }

    #[test]
    fn a_zero_filled_tear_starts_at_a_sector_boundary() {
        // Proves a torn write that grew the file keeps whole sectors only: its zeros begin at
        // a sector boundary of the file (or where the write began), and some seed keeps a
        // sector of the write while another keeps none of it.
        let data: Vec<u8> = (0..2000).map(|i| (i % 251 + 1) as u8).collect();
        let (mut kept_some, mut kept_none) = (false, false);
        for seed in 0..200 {
            let (s, f) = synced_file(&[7; 100]);
            f.write_at(100, &data).unwrap();
            let c = s
                .crash(CrashMode::TornTail, seed)
                .live_bytes(p("/d/f"))
                .unwrap();
            if c.len() < 100 + data.len() {
                continue; // cut, not zero-filled
            }
            let landed = c[100..]
                .iter()
                .zip(&data)
                .take_while(|(x, y)| x == y)
                .count();
            assert!(c[100 + landed..].iter().all(|b| *b == 0), "seed {seed}");
            assert!(
                landed == 0 || (100 + landed) % SECTOR_BYTES == 0,
                "seed {seed}: {landed}"
            );
            kept_some |= landed > 0;
            kept_none |= landed == 0;
        }
        assert!(kept_some && kept_none);
    }

    #[test]
    fn torn_tail_keeps_every_op_before_the_torn_one() {
        // Proves TornTail is a prefix plus one torn op: with 4 appends, whatever is torn, all
        // earlier appends are whole and no later one landed.
        for seed in 0..50 {
            let (s, f) = synced_file(b"");
            for i in 0..4u8 {
                f.write_at(u64::from(i) * 4, &[b'a' + i; 4]).unwrap();
            }
            let c = s
                .crash(CrashMode::TornTail, seed)
                .live_bytes(p("/d/f"))
                .unwrap();
            let full = b"aaaabbbbccccdddd";
            let landed = c.iter().zip(full).take_while(|(x, y)| x == y).count();
            assert!(
                landed < full.len() && c[landed..].iter().all(|b| *b == 0),
                "{seed}"
            );
            assert!(
                c.len() <= (landed / 4 + 1) * 4,
                "{seed}: a later write landed"
            );
        }
    }

    #[test]
    fn torn_tail_loses_a_torn_non_write() {
        // Proves a torn op that is not a write is dropped rather than half-applied.
        let log = vec![Op::SetLen { ino: 1, len: 3 }];
        for seed in 0..20 {
            assert!(plan(CrashMode::TornTail, seed, &log).is_empty());
        }
        assert!(plan(CrashMode::TornTail, 0, &[]).is_empty());
    }
}

//! [`DiscardTracker`]: the engine's discard statistics as a component of their own, shared by
//! compaction (which adds the value-log bytes it drops) and value-log GC (which picks the
//! files to rewrite from them and forgets a file it retired).
//!
//! The statistics are advisory: they choose GC candidates, and GC checks every value it
//! keeps or drops against the LSM tree itself, so a lost or wrong count costs reclaim
//! speed, never data. `DISCARD` is therefore rebuilt (starts empty) when it cannot be read,
//! and the open goes on; the problem is reported by [`DiscardTracker::load_problem`] (and
//! `settdb verify`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::discard_stats::DiscardStats;
use crate::error::{Error, Result};
use crate::io::Storage;

/// A value-log file as GC candidates are ranked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiscardCandidate {
    /// The file id.
    pub file_id: u32,
    /// The file's valid bytes.
    pub size_bytes: u64,
    /// Bytes of its records compaction dropped (capped at `size_bytes`).
    pub discard_bytes: u64,
}

impl DiscardCandidate {
    /// Dropped bytes over the file's bytes, in `[0, 1]`.
    pub fn ratio(&self) -> f64 {
        if self.size_bytes == 0 {
            return 0.0;
        }
        self.discard_bytes.min(self.size_bytes) as f64 / self.size_bytes as f64
    }
}

/// Dead value-log bytes per file, kept in memory and persisted in `DISCARD`.
#[derive(Debug)]
pub struct DiscardTracker {
    /// GUARDED: the statistics; persisted under the lock, so files replace one another in
    /// order.
    stats: Mutex<DiscardStats>,
    /// Where `DISCARD` lives; `None`: in memory only (no value log on disk).
    dir: Option<PathBuf>,
    storage: Arc<dyn Storage>,
    /// Why the statistics on disk could not be read at load (they were started afresh).
    /// Read by tests; `verify` reports a damaged DISCARD file to users.
    #[cfg_attr(not(test), allow(dead_code))]
    load_problem: Option<String>,
}

impl DiscardTracker {
    /// Statistics that are never persisted (a database without a value log).
    pub fn in_memory(storage: Arc<dyn Storage>) -> Self {
        DiscardTracker {
            stats: Mutex::new(DiscardStats::new()),
            dir: None,
            storage,
            load_problem: None,
        }
    }

    /// Loads `DISCARD` from `dir`. A damaged or unreadable file is not an error (module doc):
    /// the statistics start empty and the problem is kept for [`Self::load_problem`]. Only
    /// an I/O error other than damage (the directory cannot be read) fails.
    pub fn load(storage: Arc<dyn Storage>, dir: PathBuf) -> Result<Self> {
        let (stats, load_problem) = match DiscardStats::load(storage.as_ref(), &dir) {
            Ok(s) => (s, None),
            Err(
                e @ (Error::Corruption { .. }
                | Error::ChecksumMismatch { .. }
                | Error::UnsupportedVersion { .. }),
            ) => (DiscardStats::new(), Some(e.to_string())),
            Err(e) => return Err(e),
        };
        Ok(DiscardTracker {
            stats: Mutex::new(stats),
            dir: Some(dir),
            storage,
            load_problem,
        })
    }

    /// Why `DISCARD` was started afresh at load, if it was.
    #[cfg(test)]
    pub fn load_problem(&self) -> Option<&str> {
        self.load_problem.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, DiscardStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the statistics now.
    pub fn snapshot(&self) -> DiscardStats {
        self.lock().clone()
    }

    /// Adds the bytes a compaction dropped and persists the result (nothing is written when
    /// `found` is empty).
    pub fn add(&self, found: &DiscardStats) -> Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let mut stats = self.lock();
        stats.merge(found);
        self.persist_locked(&stats)
    }

    /// Forgets `file_id` (GC retired it) and persists the result.
    pub fn reset(&self, file_id: u32) -> Result<()> {
        let mut stats = self.lock();
        if stats.get(file_id) == 0 {
            return Ok(());
        }
        stats.remove(file_id);
        self.persist_locked(&stats)
    }

    /// The files of `sizes` (id, valid bytes) whose discard ratio is at least `min_ratio`,
    /// best first (highest ratio; ties: most dropped bytes, then oldest).
    pub fn candidates(&self, sizes: &[(u32, u64)], min_ratio: f64) -> Vec<DiscardCandidate> {
        let stats = self.lock();
        let mut out: Vec<DiscardCandidate> = sizes
            .iter()
            .map(|&(file_id, size_bytes)| DiscardCandidate {
                file_id,
                size_bytes,
                discard_bytes: stats.get(file_id).min(size_bytes),
            })
            .filter(|c| c.discard_bytes > 0 && c.ratio() >= min_ratio)
            .collect();
        out.sort_by(|a, b| {
            b.ratio()
                .total_cmp(&a.ratio())
                .then(b.discard_bytes.cmp(&a.discard_bytes))
                .then(a.file_id.cmp(&b.file_id))
        });
        out
    }

    fn persist_locked(&self, stats: &DiscardStats) -> Result<()> {
        match &self.dir {
            Some(dir) => stats.persist(&self.storage, dir),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SimStorage;
    use std::path::Path;

    fn tracker(sim: &Arc<SimStorage>) -> DiscardTracker {
        sim.create_dir_all(Path::new("/d")).unwrap();
        DiscardTracker::load(sim.clone(), PathBuf::from("/d")).unwrap()
    }

    #[test]
    fn adds_persist_and_reset_forgets() {
        // Proves additions accumulate and survive a reload, and a reset file is forgotten on
        // disk too.
        let sim = Arc::new(SimStorage::new());
        let t = tracker(&sim);
        let mut found = DiscardStats::new();
        found.add(1, 10);
        found.add(2, 5);
        t.add(&found).unwrap();
        t.add(&found).unwrap();
        assert_eq!(tracker(&sim).snapshot().get(1), 20);
        t.reset(1).unwrap();
        let back = tracker(&sim).snapshot();
        assert_eq!((back.get(1), back.get(2)), (0, 10));
    }

    #[test]
    fn candidates_rank_by_ratio_and_respect_the_threshold() {
        // Proves the order (ratio, then bytes, then id), the threshold, the cap at the file's
        // size, and that files without discards are never candidates.
        let sim = Arc::new(SimStorage::new());
        let t = tracker(&sim);
        let mut found = DiscardStats::new();
        found.add(1, 50); // 0.5 of 100
        found.add(2, 90); // 0.9 of 100
        found.add(3, 500); // capped: 1.0 of 200
        found.add(4, 45); // 0.45 of 100
        found.add(6, 100); // 0.5 of 200: more bytes than file 1
        t.add(&found).unwrap();
        let sizes = [(1, 100), (2, 100), (3, 200), (4, 100), (5, 100), (6, 200)];
        let ids: Vec<u32> = t
            .candidates(&sizes, 0.5)
            .iter()
            .map(|c| c.file_id)
            .collect();
        assert_eq!(ids, vec![3, 2, 6, 1]);
        assert_eq!(t.candidates(&sizes, 0.0).len(), 5);
        assert!(t.candidates(&sizes, 1.01).is_empty());
        assert!((t.candidates(&sizes, 0.0)[0].ratio() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn damaged_statistics_start_afresh_and_say_why() {
        // Proves a damaged DISCARD neither fails the load nor is trusted, and the next
        // persist replaces it.
        let sim = Arc::new(SimStorage::new());
        let t = tracker(&sim);
        let mut found = DiscardStats::new();
        found.add(1, 10);
        t.add(&found).unwrap();
        let path = Path::new("/d").join(super::super::DISCARD_FILE_NAME);
        let f = sim.open(&path, crate::io::OpenMode::ReadWrite).unwrap();
        f.write_at(0, b"junk").unwrap();
        f.sync_data().unwrap();
        drop(f);
        let t = tracker(&sim);
        assert!(t.snapshot().is_empty());
        assert!(
            t.load_problem().is_some_and(|p| p.contains("DISCARD")),
            "{:?}",
            t.load_problem()
        );
        t.add(&found).unwrap();
        let t = tracker(&sim);
        assert!(t.load_problem().is_none());
        assert_eq!(t.snapshot().get(1), 10);
    }
}

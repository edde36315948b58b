//! The oracle: timestamps and serializable snapshot isolation (Badger's `oracle`).
//!
//! - A transaction reads at `read_ts` = the last commit timestamp handed out; it registers
//!   `read_ts` in the read registry and waits until the commit watermark reaches it, so it
//!   sees every commit up to `read_ts` fully applied.
//! - At commit (under the write queue's lock, so commit order = queue order) the oracle checks
//!   for conflicts: some transaction committed after our `read_ts` wrote a key we read
//!   (fingerprints, 64-bit hashes). Blind writes never conflict. Then it hands out the commit
//!   timestamp, begins it in the commit watermark (done when the writer applied it), and
//!   remembers the transaction's written fingerprints for later checks.
//! - Committed transactions are forgotten once every live reader started after them.
//! - The discard timestamp (compaction may drop versions at or below it) is the oldest live
//!   read timestamp, or the latest applied version when no transaction is open; in managed mode
//!   the caller sets it.
//!
//! Concurrency: `state` is a mutex taken briefly (never across I/O or waits).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::read_mark::{ReadMark, ReadSlot};
use super::watermark::WaterMark;
use crate::error::{Error, Result};

/// A key's fingerprint for conflict detection (stable 64-bit hash of the user key).
pub fn fingerprint(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

#[derive(Debug)]
struct CommittedTxn {
    ts: u64,
    writes: HashSet<u64>,
}

#[derive(Debug)]
struct OracleState {
    committed: Vec<CommittedTxn>,
}

/// Timestamps, watermarks and conflict detection for one database.
#[derive(Debug)]
pub struct Oracle {
    managed: bool,
    detect_conflicts: bool,
    /// GUARDED: the recently committed transactions.
    state: Mutex<OracleState>,
    /// The next commit timestamp: written under `state` (so commits take timestamps in
    /// order), read without it by [`Oracle::begin_read`].
    next_ts: AtomicU64,
    /// Read timestamps of live transactions.
    read_mark: ReadMark,
    /// Commit watermark: a commit timestamp is done once the writer applied it.
    applied: Arc<WaterMark>,
    /// Managed mode: the discard timestamp the caller set.
    managed_discard_ts: AtomicU64,
}

impl Oracle {
    /// An oracle whose last commit timestamp is `max_version` (the largest version on disk).
    pub fn new(
        max_version: u64,
        managed: bool,
        detect_conflicts: bool,
        applied: Arc<WaterMark>,
    ) -> Self {
        Oracle {
            managed,
            detect_conflicts,
            state: Mutex::new(OracleState {
                committed: Vec::new(),
            }),
            next_ts: AtomicU64::new(max_version + 1),
            read_mark: ReadMark::default(),
            applied,
            managed_discard_ts: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OracleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True in managed mode (callers supply timestamps).
    pub fn is_managed(&self) -> bool {
        self.managed
    }

    /// True if reads are tracked for conflict detection.
    pub fn detects_conflicts(&self) -> bool {
        self.detect_conflicts
    }

    /// The commit watermark.
    #[cfg(test)]
    pub fn applied(&self) -> &Arc<WaterMark> {
        &self.applied
    }

    /// Starts a read: returns `read_ts`, registered until [`Oracle::done_read`] (with the
    /// slot returned beside it), after every commit up to it is applied.
    ///
    /// The timestamp is read and registered under a lock of the read registry alone. That is
    /// enough ([`ReadMark::begin_with`] says why): [`Oracle::discard_ts`] reads the commit
    /// watermark before the registry, so a read it misses has a timestamp at or above that
    /// commit watermark (the next timestamp only grows), and `forget_old` either sees the read
    /// or ran after every commit it forgets took its timestamp.
    pub fn begin_read(&self) -> (u64, ReadSlot) {
        let (ts, slot) = self
            .read_mark
            .begin_with(|| self.next_ts.load(Ordering::Acquire) - 1);
        self.applied.wait_for(ts);
        (ts, slot)
    }

    /// Registers a caller-chosen read timestamp (managed mode).
    pub fn begin_read_at(&self, read_ts: u64) -> ReadSlot {
        self.read_mark.begin(read_ts)
    }

    /// Ends a read started by [`Oracle::begin_read`] or [`Oracle::begin_read_at`].
    pub fn done_read(&self, read_ts: u64, slot: ReadSlot) {
        self.read_mark.done(read_ts, slot);
    }

    /// Checks conflicts and assigns a commit timestamp (or takes `managed_commit_ts`); begins
    /// it in the commit watermark. REQUIRES: called under the write queue's lock, and the
    /// request is queued right after (so timestamps reach the writer in order).
    pub fn new_commit_ts(
        &self,
        read_ts: u64,
        reads: &[u64],
        writes: &HashSet<u64>,
        managed_commit_ts: Option<u64>,
    ) -> Result<u64> {
        let mut st = self.lock();
        if self.detect_conflicts && has_conflict(&st.committed, read_ts, reads) {
            return Err(Error::Conflict);
        }
        let ts = match managed_commit_ts {
            Some(ts) if self.managed => ts,
            Some(_) => return Err(Error::InvalidRequest("commit_at is only for managed mode")),
            None if self.managed => {
                return Err(Error::InvalidRequest(
                    "managed mode: commit with commit_at(ts)",
                ))
            }
            None => self.next_ts.fetch_add(1, Ordering::AcqRel),
        };
        self.applied.begin(ts);
        if self.detect_conflicts && !writes.is_empty() {
            st.committed.push(CommittedTxn {
                ts,
                writes: writes.clone(),
            });
            self.forget_old(&mut st);
        }
        Ok(ts)
    }

    /// Assigns a commit timestamp for a write that took part in no transaction (no reads, so
    /// no conflict check of its own). Its `writes` are recorded like a transaction's: a
    /// transaction that read one of those keys before this commit conflicts with it.
    /// REQUIRES: under the write queue's lock.
    pub fn new_blind_commit_ts(&self, writes: &HashSet<u64>) -> Result<u64> {
        if self.managed {
            return Err(Error::InvalidRequest(
                "managed mode: write with a transaction and commit_at(ts)",
            ));
        }
        self.new_commit_ts(0, &[], writes, None)
    }

    /// Managed mode: begins `versions` (sorted, distinct) of a write outside transactions that
    /// carries its own versions (a managed write batch), and records its `writes` at the
    /// largest: a transaction that read one of those keys below it conflicts with it.
    /// REQUIRES: under the write queue's lock.
    pub fn begin_versioned(&self, versions: &[u64], writes: &HashSet<u64>) {
        let mut st = self.lock();
        for &v in versions {
            self.applied.begin(v);
        }
        if let (true, Some(&ts)) = (self.detect_conflicts && !writes.is_empty(), versions.last()) {
            st.committed.push(CommittedTxn {
                ts,
                writes: writes.clone(),
            });
            self.forget_old(&mut st);
        }
    }

    /// Raises the next commit timestamp above `version` (versions loaded from a backup, already
    /// applied), and the commit watermark with it, so a read that starts after sees them.
    /// Commits in flight keep the watermark below their timestamps until they are applied.
    pub fn advance_past(&self, version: u64) {
        let _st = self.lock();
        if self.next_ts.load(Ordering::Acquire) > version {
            return;
        }
        self.applied.begin(version);
        self.next_ts.store(version + 1, Ordering::Release);
        self.applied.done(version);
    }

    /// Forgets committed transactions no live reader can conflict with.
    fn forget_old(&self, st: &mut OracleState) {
        let oldest_reader = self.read_mark.pending_min().unwrap_or(u64::MAX);
        st.committed.retain(|c| c.ts > oldest_reader);
    }

    /// Versions at or below this may be discarded by compaction.
    pub fn discard_ts(&self) -> u64 {
        if self.managed {
            return self.managed_discard_ts.load(Ordering::Acquire);
        }
        let applied = self.applied.done_until();
        match self.read_mark.pending_min() {
            Some(oldest) => oldest.min(applied),
            None => applied,
        }
    }

    /// Sets the discard timestamp (managed mode).
    pub fn set_discard_ts(&self, ts: u64) {
        self.managed_discard_ts.store(ts, Ordering::Release);
    }

    /// Number of committed transactions remembered for conflict checks (for tests).
    #[cfg(test)]
    pub fn remembered_commits(&self) -> usize {
        self.lock().committed.len()
    }
}

fn has_conflict(committed: &[CommittedTxn], read_ts: u64, reads: &[u64]) -> bool {
    if reads.is_empty() {
        return false;
    }
    committed
        .iter()
        .filter(|c| c.ts > read_ts)
        .any(|c| reads.iter().any(|fp| c.writes.contains(fp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle() -> Oracle {
        Oracle::new(10, false, true, Arc::new(WaterMark::new(10)))
    }

    fn set(keys: &[&[u8]]) -> HashSet<u64> {
        keys.iter().map(|k| fingerprint(k)).collect()
    }

    #[test]
    fn read_then_later_write_conflicts_and_blind_writes_never_do() {
        // Proves SSI's rule: a commit after our read_ts that wrote a key we read conflicts;
        // writes without reads never conflict; reads of other keys do not conflict.
        let o = oracle();
        let (r1, s1) = o.begin_read();
        let (r2, s2) = o.begin_read();
        let c = o
            .new_commit_ts(r1, &[fingerprint(b"a")], &set(&[b"a"]), None)
            .unwrap();
        o.applied().done(c);
        o.done_read(r1, s1);
        assert!(matches!(
            o.new_commit_ts(r2, &[fingerprint(b"a")], &set(&[b"b"]), None),
            Err(Error::Conflict)
        ));
        let blind = o.new_commit_ts(r2, &[], &set(&[b"a"]), None).unwrap();
        o.applied().done(blind);
        let other = o
            .new_commit_ts(r2, &[fingerprint(b"z")], &set(&[b"a"]), None)
            .unwrap();
        o.applied().done(other);
        o.done_read(r2, s2);
    }

    #[test]
    fn discard_ts_stays_below_live_readers() {
        // Proves the discard timestamp never passes the oldest live read_ts and follows the
        // commit watermark when no transaction is open.
        let o = oracle();
        let (r, slot) = o.begin_read();
        for _ in 0..5 {
            let ts = o.new_blind_commit_ts(&HashSet::new()).unwrap();
            o.applied().done(ts);
        }
        assert_eq!(o.discard_ts(), r);
        o.done_read(r, slot);
        assert_eq!(o.discard_ts(), 15);
    }

    #[test]
    fn discard_ts_never_passes_a_reader_that_is_live_after_it() {
        // Proves the sharded read registry keeps discard_ts safe while readers begin and end
        // on several threads and commits go on: any reader seen live after discard_ts returned
        // D reads at or above D (else compaction could drop the version it reads).
        use std::sync::atomic::AtomicBool;
        const READERS: usize = 3;
        let o = Arc::new(oracle());
        let stop = Arc::new(AtomicBool::new(false));
        // Each reader's read_ts while it is live (published after begin, cleared before done),
        // 0 when none.
        let live: Arc<Vec<AtomicU64>> = Arc::new((0..READERS).map(|_| AtomicU64::new(0)).collect());
        let mut threads = Vec::new();
        for r in 0..READERS {
            let (o, stop, live) = (o.clone(), stop.clone(), live.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (ts, slot) = o.begin_read();
                    live[r].store(ts, Ordering::SeqCst);
                    std::hint::spin_loop();
                    live[r].store(0, Ordering::SeqCst);
                    o.done_read(ts, slot);
                }
            }));
        }
        {
            let (o, stop) = (o.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let ts = o.new_blind_commit_ts(&HashSet::new()).unwrap();
                    o.applied().done(ts);
                }
            }));
        }
        let mut checks = 0u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while std::time::Instant::now() < deadline {
            let d = o.discard_ts();
            for (r, ts) in live.iter().enumerate() {
                let ts = ts.load(Ordering::SeqCst);
                assert!(
                    ts == 0 || ts >= d,
                    "reader {r} live at {ts} below discard_ts {d}"
                );
            }
            checks += 1;
        }
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        assert!(
            checks > 100 && o.discard_ts() > 10,
            "{checks} checks, {}",
            o.discard_ts()
        );
    }

    #[test]
    fn old_commits_are_forgotten_once_no_reader_predates_them() {
        // Proves memory of committed transactions is bounded by live readers.
        let o = oracle();
        for _ in 0..100 {
            let (r, slot) = o.begin_read();
            let c = o.new_commit_ts(r, &[1], &set(&[b"k"]), None).unwrap();
            o.applied().done(c);
            o.done_read(r, slot);
        }
        assert!(o.remembered_commits() <= 1, "{}", o.remembered_commits());
    }

    #[test]
    fn managed_mode_takes_caller_timestamps_only() {
        // Proves managed/unmanaged mixing is an error, not a panic.
        let m = Oracle::new(0, true, true, Arc::new(WaterMark::new(0)));
        assert!(matches!(
            m.new_commit_ts(0, &[], &HashSet::new(), None),
            Err(Error::InvalidRequest(_))
        ));
        assert_eq!(
            m.new_commit_ts(0, &[], &HashSet::new(), Some(42)).unwrap(),
            42
        );
        assert!(m.new_blind_commit_ts(&HashSet::new()).is_err());
        let o = oracle();
        assert!(o.new_commit_ts(10, &[], &HashSet::new(), Some(3)).is_err());
    }
}

//! A watermark over timestamps: the largest `t` such that every timestamp `<= t` that was
//! begun is done.
//!
//! It is MVCC's commit watermark (as in Badger): a commit timestamp is begun when assigned and
//! done when its writes are applied; a read at `read_ts` waits until it reaches `read_ts`, so it
//! sees every earlier commit. (Badger's second watermark, over the read timestamps of live
//! transactions, is `read_mark.rs` here: sharded, because every read takes it twice.)
//!
//! Badger runs a goroutine with a heap per watermark; here a mutex over a map of pending
//! counts and a condition variable do the same with no thread. `done_until` is also an atomic
//! so readers of the mark never take the lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct State {
    /// Timestamp -> number of holders that began it and are not done.
    pending: BTreeMap<u64, u32>,
}

/// A watermark; see the module doc.
#[derive(Debug, Default)]
pub struct WaterMark {
    /// GUARDED: pending counts.
    state: Mutex<State>,
    cond: Condvar,
    done_until: AtomicU64,
    /// Largest timestamp ever begun; written under `state`, read without it.
    last_begun: AtomicU64,
}

impl WaterMark {
    /// A watermark at `done_until` (nothing pending).
    pub fn new(done_until: u64) -> Self {
        let w = WaterMark::default();
        w.done_until.store(done_until, Ordering::Release);
        w.last_begun.store(done_until, Ordering::Release);
        w
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `ts` as begun (may be called several times for one timestamp).
    pub fn begin(&self, ts: u64) {
        let mut st = self.lock();
        *st.pending.entry(ts).or_insert(0) += 1;
        self.last_begun.fetch_max(ts, Ordering::AcqRel);
    }

    /// Marks one holder of `ts` done and advances the mark.
    pub fn done(&self, ts: u64) {
        let mut st = self.lock();
        match st.pending.get_mut(&ts) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                st.pending.remove(&ts);
            }
            None => debug_assert!(false, "done({ts}) without begin"),
        }
        let until = match st.pending.keys().next() {
            Some(&first) => first.saturating_sub(1),
            None => self.last_begun.load(Ordering::Acquire),
        };
        if until > self.done_until.load(Ordering::Acquire) {
            self.done_until.store(until, Ordering::Release);
            self.cond.notify_all();
        }
    }

    /// Every begun timestamp `<=` this is done.
    pub fn done_until(&self) -> u64 {
        self.done_until.load(Ordering::Acquire)
    }

    /// Largest timestamp begun so far.
    pub fn last_begun(&self) -> u64 {
        self.last_begun.load(Ordering::Acquire)
    }

    /// Blocks until `done_until() >= ts`.
    pub fn wait_for(&self, ts: u64) {
        if self.done_until() >= ts {
            return;
        }
        let mut st = self.lock();
        while self.done_until() < ts {
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn last_begun_is_the_largest_timestamp_ever_begun() {
        // Proves last_begun follows the largest begin (not the latest call), done or not.
        let w = WaterMark::new(2);
        assert_eq!(w.last_begun(), 2);
        w.begin(7);
        w.begin(4);
        assert_eq!(w.last_begun(), 7);
        w.begin(9);
        w.done(7);
        w.done(4);
        w.done(9);
        assert_eq!((w.last_begun(), w.done_until()), (9, 9));
    }

    #[test]
    fn mark_waits_for_the_oldest_pending() {
        // Proves done_until stops below the oldest pending timestamp and jumps when it ends.
        let w = WaterMark::new(0);
        for ts in 1..=3 {
            w.begin(ts);
        }
        w.done(2);
        w.done(3);
        assert_eq!(w.done_until(), 0);
        w.done(1);
        assert_eq!(w.done_until(), 3);
    }

    #[test]
    fn waiter_wakes_when_mark_passes() {
        // Proves wait_for blocks until the mark reaches its timestamp.
        let w = Arc::new(WaterMark::new(0));
        w.begin(1);
        let w2 = w.clone();
        let t = thread::spawn(move || w2.wait_for(1));
        thread::sleep(Duration::from_millis(30));
        assert!(!t.is_finished());
        w.done(1);
        t.join().unwrap();
    }

    proptest! {
        #[test]
        fn matches_model(ops in proptest::collection::vec((1u64..20, any::<bool>()), 1..80)) {
            // Proves done_until = (min pending - 1) or last begun, never decreasing, against a
            // model multiset, for random begin/done interleavings.
            let w = WaterMark::new(0);
            let mut pending: BTreeMap<u64, u32> = BTreeMap::new();
            let mut last = 0u64;
            let mut prev_mark = 0u64;
            for (ts, is_begin) in ops {
                if is_begin {
                    w.begin(ts);
                    *pending.entry(ts).or_insert(0) += 1;
                    last = last.max(ts);
                } else if let Some(n) = pending.get_mut(&ts) {
                    *n -= 1;
                    if *n == 0 { pending.remove(&ts); }
                    w.done(ts);
                    let model = pending.keys().next().map_or(last, |f| f - 1).max(prev_mark);
                    prop_assert_eq!(w.done_until(), model);
                }
                prop_assert!(w.done_until() >= prev_mark);
                prev_mark = w.done_until();
            }
        }
    }
}

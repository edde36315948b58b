//! The read timestamps of live transactions, in shards.
//!
//! Every transaction registers its `read_ts` when it starts and removes it when it ends, and
//! all the oracle asks of the set is its smallest member (the discard timestamp, and which
//! committed transactions may be forgotten). Badger keeps these in a watermark shared by all
//! readers; with one `view` per point read, that shared lock and its cache line, taken twice
//! per read by every reader thread, cost a few percent of a read. Here each thread registers in
//! its own shard (chosen once per thread, each on its own cache lines), so readers on different
//! threads share nothing, and the rare `pending_min` visits every shard.
//!
//! Why the minimum stays safe although `pending_min` locks the shards one at a time, not all
//! at once, is argued at [`ReadMark::begin_with`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Number of shards: more than the reader threads of a typical embedding, few enough that
/// `pending_min` (once per commit that records its writes) stays cheap.
const SHARDS: usize = 16;

/// Which shard a registration went to; given back to [`ReadMark::done`], so a transaction may
/// end on another thread than the one it began on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSlot(u8);

/// One shard: `(read_ts, holders)` sorted by timestamp, no timestamp twice. A sorted `Vec`
/// rather than a map: it keeps its allocation when it empties (a shard is usually empty
/// between two reads, and a map would allocate and free a node for each) and its entries are
/// few (the distinct timestamps of one thread's live transactions).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    pending: Mutex<Vec<(u64, u32)>>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Vec<(u64, u32)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The set of read timestamps in use; see the module doc.
#[derive(Debug, Default)]
pub struct ReadMark {
    shards: [Shard; SHARDS],
}

/// Hands each thread its shard, in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SHARD: u8 = (NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS) as u8;
}

impl ReadMark {
    /// Registers the timestamp `ts()` returns, calling it under the lock of this thread's
    /// shard; returns it and where it went.
    ///
    /// Safety of the minimum: [`ReadMark::pending_min`] visits the shards one by one, so a
    /// registration in a shard it already visited is not in its answer. Such a registration
    /// took the shard's lock after `pending_min` released it, and `ts()` ran under that lock,
    /// so `ts()` ran after everything the caller of `pending_min` did before calling it. The
    /// oracle's `ts()` returns the last commit timestamp handed out, which only grows; so a
    /// read missed this way reads at or above every commit timestamp handed out before the
    /// call (the oracle reads the commit watermark, and hands out the commit it is checking,
    /// before it asks for the minimum).
    pub fn begin_with(&self, ts: impl FnOnce() -> u64) -> (u64, ReadSlot) {
        // `try_with` cannot fail for a `u8` (no destructor, so never torn down); shard 0 would
        // do if it did, and no panic path is left in the read path.
        let slot = ReadSlot(THREAD_SHARD.try_with(|s| *s).unwrap_or(0));
        let mut pending = self.shards[slot.0 as usize].lock();
        let ts = ts();
        match pending.binary_search_by_key(&ts, |&(t, _)| t) {
            Ok(i) => pending[i].1 += 1,
            Err(i) => pending.insert(i, (ts, 1)),
        }
        (ts, slot)
    }

    /// Registers `ts` (may be called several times for one timestamp).
    pub fn begin(&self, ts: u64) -> ReadSlot {
        self.begin_with(|| ts).1
    }

    /// Removes one registration of `ts` made in `slot`.
    pub fn done(&self, ts: u64, slot: ReadSlot) {
        let mut pending = self.shards[slot.0 as usize].lock();
        match pending.binary_search_by_key(&ts, |&(t, _)| t) {
            Ok(i) if pending[i].1 > 1 => pending[i].1 -= 1,
            Ok(i) => {
                pending.remove(i);
            }
            Err(_) => debug_assert!(false, "done({ts}) without begin"),
        }
    }

    /// The smallest registered timestamp, if any (see [`ReadMark::begin_with`] for what a
    /// registration made while this runs may miss).
    pub fn pending_min(&self) -> Option<u64> {
        self.shards
            .iter()
            .filter_map(|s| s.lock().first().map(|&(t, _)| t))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    #[test]
    fn threads_register_in_different_shards_and_the_minimum_sees_them_all() {
        // Proves registrations from many threads land in more than one shard, each is found by
        // pending_min, and a slot ended on another thread is removed from its own shard.
        let mark = Arc::new(ReadMark::default());
        let slots: Vec<(u64, ReadSlot)> = (0..4u64)
            .map(|i| {
                let mark = mark.clone();
                std::thread::spawn(move || (10 + i, mark.begin(10 + i)))
            })
            .map(|h| h.join().unwrap())
            .collect();
        let mut distinct: Vec<u8> = slots.iter().map(|(_, s)| s.0).collect();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() > 1,
            "every thread in one shard: {distinct:?}"
        );
        let mut order = slots.clone();
        order.sort_by_key(|&(ts, _)| ts);
        for &(ts, slot) in &order {
            assert_eq!(mark.pending_min(), Some(ts));
            mark.done(ts, slot);
        }
        assert_eq!(mark.pending_min(), None);
    }

    #[test]
    fn the_timestamp_is_read_under_the_shard_lock() {
        // Proves begin_with reads its timestamp and registers it in one critical section: a
        // pending_min that starts while ts() runs waits for the registration and sees it (if
        // ts() ran outside the lock, pending_min would answer None in the meantime, and a
        // discard timestamp could pass a read that was about to register).
        let mark = Arc::new(ReadMark::default());
        let (inside, wait_inside) = std::sync::mpsc::channel();
        let m = mark.clone();
        let reader = std::thread::spawn(move || {
            m.begin_with(|| {
                inside.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
                7
            })
        });
        wait_inside.recv().unwrap();
        assert_eq!(mark.pending_min(), Some(7));
        let (ts, slot) = reader.join().unwrap();
        mark.done(ts, slot);
        assert_eq!(mark.pending_min(), None);
    }

    proptest! {
        #[test]
        fn matches_a_multiset(ops in proptest::collection::vec((1u64..20, any::<bool>()), 1..80)) {
            // Proves pending_min is the smallest timestamp begun more often than done, against
            // a model multiset, for random begin/done sequences (repeats included).
            let mark = ReadMark::default();
            let mut model: BTreeMap<u64, Vec<ReadSlot>> = BTreeMap::new();
            for (ts, is_begin) in ops {
                if is_begin {
                    model.entry(ts).or_default().push(mark.begin(ts));
                } else if let Some(slots) = model.get_mut(&ts) {
                    mark.done(ts, slots.pop().unwrap());
                    if slots.is_empty() {
                        model.remove(&ts);
                    }
                }
                prop_assert_eq!(mark.pending_min(), model.keys().next().copied());
            }
        }
    }
}

//! The set of memtables: one mutable, and immutable ones waiting to be flushed (oldest first).
//!
//! The writer rotates the mutable memtable when it is full; at `num_memtables` memtables in
//! memory it waits (condition variable) until the flusher has flushed one: this is the write
//! stall that bounds memory. Readers take a [`MemtablesView`] without any lock: every change
//! to the set publishes a new view (under the state lock, so views are published in order),
//! and a reader loads the current one (`ArcSwap`: no lock, no shared counter on the point-read
//! path, which two mutex round trips per read made measurably slower).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arc_swap::{ArcSwap, Guard};

use super::memtable::Memtable;

/// What readers see: newest first.
#[derive(Clone, Debug)]
pub struct MemtablesView {
    /// The mutable memtable, then immutables newest to oldest.
    pub newest_first: Vec<Arc<Memtable>>,
}

#[derive(Debug)]
struct State {
    mutable: Arc<Memtable>,
    /// Oldest first.
    immutable: VecDeque<Arc<Memtable>>,
    closed: bool,
}

impl State {
    fn view(&self) -> MemtablesView {
        let mut newest_first = Vec::with_capacity(1 + self.immutable.len());
        newest_first.push(self.mutable.clone());
        newest_first.extend(self.immutable.iter().rev().cloned());
        MemtablesView { newest_first }
    }
}

/// The memtables of a database.
#[derive(Debug)]
pub struct Memtables {
    /// GUARDED: the mutable memtable, the immutable queue, the closed flag.
    state: Mutex<State>,
    /// The view of `state`'s memtables, republished (under `state`) by every change to them.
    published: ArcSwap<MemtablesView>,
    /// Signalled when an immutable memtable is queued (the flusher waits on it).
    flushable: Condvar,
    /// Signalled when an immutable memtable was flushed (the writer waits on it).
    flushed: Condvar,
    max_memtables: usize,
}

impl Memtables {
    /// A set starting with `mutable` and `immutable` (oldest first), holding at most
    /// `max_memtables` memtables before writes wait.
    pub fn new(
        mutable: Arc<Memtable>,
        immutable: Vec<Arc<Memtable>>,
        max_memtables: usize,
    ) -> Self {
        let state = State {
            mutable,
            immutable: immutable.into(),
            closed: false,
        };
        Memtables {
            published: ArcSwap::from_pointee(state.view()),
            state: Mutex::new(state),
            flushable: Condvar::new(),
            flushed: Condvar::new(),
            max_memtables: max_memtables.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Readers' view, newest first.
    pub fn view(&self) -> Arc<MemtablesView> {
        self.published.load_full()
    }

    /// Readers' view for a short read (a point read): no reference count is taken.
    pub fn current(&self) -> Guard<Arc<MemtablesView>> {
        self.published.load()
    }

    /// The mutable memtable.
    pub fn mutable(&self) -> Arc<Memtable> {
        self.lock().mutable.clone()
    }

    /// Makes the mutable memtable immutable and installs `next` (made by the caller, with its
    /// WAL already durable). Waits first while `max_memtables` memtables are in memory, unless
    /// closed. Returns the number of immutables after the rotation. REQUIRES: the writer.
    pub fn rotate(&self, next: Arc<Memtable>) -> usize {
        let mut st = self.lock();
        while 1 + st.immutable.len() >= self.max_memtables && !st.closed {
            st = self.flushed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let old = std::mem::replace(&mut st.mutable, next);
        if !old.list().is_empty() {
            st.immutable.push_back(old);
        }
        self.published.store(Arc::new(st.view()));
        let n = st.immutable.len();
        drop(st);
        self.flushable.notify_all();
        n
    }

    /// True if a [`Memtables::rotate`] now would wait for a flush (a write stall).
    pub fn is_full(&self) -> bool {
        let st = self.lock();
        1 + st.immutable.len() >= self.max_memtables && !st.closed
    }

    /// The oldest immutable memtable, waiting for one unless closed (then `None` when none).
    pub fn wait_oldest_immutable(&self) -> Option<Arc<Memtable>> {
        let mut st = self.lock();
        loop {
            if let Some(m) = st.immutable.front() {
                return Some(m.clone());
            }
            if st.closed {
                return None;
            }
            st = self.flushable.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Removes the oldest immutable memtable after it was flushed. REQUIRES: `id` is it.
    pub fn remove_flushed(&self, id: u64) {
        let mut st = self.lock();
        if st.immutable.front().is_some_and(|m| m.id() == id) {
            st.immutable.pop_front();
            self.published.store(Arc::new(st.view()));
        } else {
            debug_assert!(false, "flushed memtable {id} is not the oldest immutable");
        }
        drop(st);
        self.flushed.notify_all();
    }

    /// Number of immutable memtables.
    pub fn immutable_count(&self) -> usize {
        self.lock().immutable.len()
    }

    /// Wakes every waiter for shutdown: the writer stops waiting for room and the flusher
    /// returns `None` once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.flushable.notify_all();
        self.flushed.notify_all();
    }

    /// Waits up to `timeout` for a flush to finish (callers re-check their condition).
    pub fn wait_flushed_for(&self, timeout: std::time::Duration) {
        let st = self.lock();
        if st.immutable.is_empty() {
            return;
        }
        let _ = self.flushed.wait_timeout(st, timeout);
    }

    /// The flusher gave up (a poisoned database): nobody may wait for room any more.
    pub fn abandon_flushes(&self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::key_with_version;
    use crate::memtable::MemValue;
    use bytes::Bytes;
    use std::time::Duration;

    /// A memtable `id` holding one entry (an empty one is not queued for flushing).
    fn full(id: u64) -> Arc<Memtable> {
        let m = Memtable::in_memory(id);
        m.list()
            .insert(Bytes::from(key_with_version(b"k", id)), MemValue::default());
        Arc::new(m)
    }

    fn ids(v: &MemtablesView) -> Vec<u64> {
        v.newest_first.iter().map(|m| m.id()).collect()
    }

    #[test]
    fn rotation_stalls_at_the_limit_until_a_flush_and_views_follow_every_change() {
        // Proves the write stall: with room for 3 memtables, rotations return at once until
        // 3 are in memory, the next waits until the oldest immutable is flushed and removed,
        // and close releases a waiting rotation; the published view is the mutable then the
        // immutables newest first after every change; an empty mutable is not queued.
        let m = Arc::new(Memtables::new(
            Arc::new(Memtable::in_memory(1)),
            Vec::new(),
            3,
        ));
        assert_eq!(ids(&m.view()), [1]);
        assert_eq!(m.rotate(full(2)), 0, "an empty memtable is not queued");
        assert_eq!(ids(&m.current()), [2]);
        assert_eq!(m.rotate(full(3)), 1);
        assert_eq!(m.rotate(full(4)), 2);
        assert_eq!(ids(&m.view()), [4, 3, 2]);
        let waiter = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || m.rotate(full(5)))
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !waiter.is_finished(),
            "a fourth memtable must wait for a flush"
        );
        assert_eq!(m.wait_oldest_immutable().map(|t| t.id()), Some(2));
        m.remove_flushed(2);
        assert_eq!(waiter.join().unwrap(), 2);
        assert_eq!(ids(&m.view()), [5, 4, 3]);
        let closing = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || m.rotate(full(6)))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!closing.is_finished());
        m.close();
        closing.join().unwrap();
        assert_eq!(m.immutable_count(), 3);
        assert_eq!(ids(&m.view()), [6, 5, 4, 3]);
    }
}

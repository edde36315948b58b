//! The bounded queue between committers and the one writer thread.
//!
//! Backpressure is by condition variables: a committer blocks while the queue holds
//! `capacity` requests, and the writer blocks while it is empty (Badger polls with 10 ms
//! sleeps instead). The writer takes every queued request at once, up to the batch limits, so
//! concurrent commits share one WAL append and one sync (group commit).
//!
//! Requests are made *inside* the queue lock ([`WriteQueue::push_with`]), so the order in which
//! callers are given commit timestamps is the order in which the writer applies them.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::request::{Completion, WriteRequest};
use crate::error::{Error, Result};

/// Limits of one group taken by the writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupLimits {
    /// Entries at most (a single larger request is still taken alone).
    pub max_entries: u64,
    /// Estimated bytes at most (likewise).
    pub max_bytes: u64,
}

#[derive(Debug, Default)]
struct QueueState {
    requests: VecDeque<WriteRequest>,
    closed: bool,
}

/// A bounded multi-producer, single-consumer queue of write requests.
#[derive(Debug)]
pub struct WriteQueue {
    /// GUARDED: the request deque and the closed flag.
    state: Mutex<QueueState>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

impl WriteQueue {
    /// A queue holding at most `capacity` requests (>= 1).
    pub fn new(capacity: usize) -> Self {
        WriteQueue {
            state: Mutex::new(QueueState::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for room, then calls `make` under the queue lock and enqueues what it returns.
    /// `make` may fail (a conflict, a closed oracle); then nothing is enqueued.
    pub fn push_with<F>(&self, make: F) -> Result<Arc<Completion>>
    where
        F: FnOnce() -> Result<WriteRequest>,
    {
        let mut st = self.lock();
        while st.requests.len() >= self.capacity && !st.closed {
            st = self.not_full.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.closed {
            return Err(Error::Closed);
        }
        let req = make()?;
        let completion = req.completion.clone();
        st.requests.push_back(req);
        drop(st);
        self.not_empty.notify_one();
        Ok(completion)
    }

    /// Makes a request with `make` under the queue lock if nothing is queued, without
    /// queueing it: the caller holds the writer and applies it at once, so it is applied in
    /// the order its timestamp was given. `Err(make)` back if requests are queued (they go
    /// first). Fails with `Closed` once closed.
    pub fn make_if_idle<F>(&self, make: F) -> Result<std::result::Result<WriteRequest, F>>
    where
        F: FnOnce() -> Result<WriteRequest>,
    {
        let st = self.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        if !st.requests.is_empty() {
            return Ok(Err(make));
        }
        Ok(Ok(make()?))
    }

    /// Blocks until a request is queued (`true`) or the queue is closed and drained
    /// (`false`).
    pub fn wait_pending(&self) -> bool {
        let mut st = self.lock();
        while st.requests.is_empty() && !st.closed {
            st = self.not_empty.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        !st.requests.is_empty()
    }

    /// Blocks until at least one request is queued, then takes as many as fit `limits`.
    /// `None` once the queue is closed and drained.
    #[cfg(test)]
    pub fn pop_group(&self, limits: GroupLimits) -> Option<Vec<WriteRequest>> {
        if !self.wait_pending() {
            return None;
        }
        self.try_pop_group(limits)
    }

    /// Takes as many queued requests as fit `limits` (at least one), or `None` if none is
    /// queued.
    pub fn try_pop_group(&self, limits: GroupLimits) -> Option<Vec<WriteRequest>> {
        let mut st = self.lock();
        if st.requests.is_empty() {
            return None;
        }
        let mut group = Vec::new();
        let (mut entries, mut bytes) = (0u64, 0u64);
        while let Some(front) = st.requests.front() {
            let (e, b) = (front.entries.len() as u64, front.estimated_size());
            if !group.is_empty()
                && (entries + e > limits.max_entries || bytes + b > limits.max_bytes)
            {
                break;
            }
            entries += e;
            bytes += b;
            group.extend(st.requests.pop_front());
        }
        drop(st);
        self.not_full.notify_all();
        Some(group)
    }

    /// Refuses new requests; the writer still drains what is queued.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Requests waiting.
    pub fn len(&self) -> usize {
        self.lock().requests.len()
    }

    /// True if no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::request::WriteEntry;
    use bytes::Bytes;
    use std::thread;
    use std::time::Duration;

    fn req(n: usize) -> WriteRequest {
        let e = WriteEntry {
            key: Bytes::from_static(b"k"),
            version: 1,
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: Bytes::from_static(b"v"),
        };
        WriteRequest::new(vec![e; n])
    }

    const BIG: GroupLimits = GroupLimits {
        max_entries: u64::MAX,
        max_bytes: u64::MAX,
    };

    #[test]
    fn make_if_idle_makes_only_when_nothing_is_queued() {
        let q = WriteQueue::new(4);
        let made = q.make_if_idle(|| Ok(req(1))).unwrap();
        assert!(made.is_ok(), "idle: made for the caller to apply");
        assert!(q.is_empty(), "and not queued");
        q.push_with(|| Ok(req(1))).unwrap();
        let mut called = false;
        let back = q
            .make_if_idle(|| {
                called = true;
                Ok(req(2))
            })
            .unwrap();
        assert!(back.is_err(), "a queued request goes first");
        assert!(!called, "no timestamp given out of queue order");
        assert_eq!(q.len(), 1);
        q.close();
        assert!(matches!(q.make_if_idle(|| Ok(req(3))), Err(Error::Closed)));
    }

    #[test]
    fn group_respects_limits_but_takes_one_oversized_request() {
        // Proves grouping stops at the limits and never starves a request bigger than them.
        let q = WriteQueue::new(10);
        for n in [3, 3, 3] {
            q.push_with(|| Ok(req(n))).unwrap();
        }
        let g = q
            .pop_group(GroupLimits {
                max_entries: 7,
                max_bytes: u64::MAX,
            })
            .unwrap();
        assert_eq!(g.len(), 2);
        q.push_with(|| Ok(req(50))).unwrap();
        let g = q
            .pop_group(GroupLimits {
                max_entries: 7,
                max_bytes: u64::MAX,
            })
            .unwrap();
        assert_eq!(g.len(), 1, "the remaining 3-entry request alone");
        let g = q
            .pop_group(GroupLimits {
                max_entries: 7,
                max_bytes: u64::MAX,
            })
            .unwrap();
        assert_eq!(g[0].entries.len(), 50);
    }

    #[test]
    fn full_queue_blocks_until_the_writer_pops() {
        // Proves backpressure: the third push waits until a pop makes room.
        let q = Arc::new(WriteQueue::new(2));
        q.push_with(|| Ok(req(1))).unwrap();
        q.push_with(|| Ok(req(1))).unwrap();
        let q2 = q.clone();
        let pusher = thread::spawn(move || q2.push_with(|| Ok(req(1))).map(|_| ()));
        thread::sleep(Duration::from_millis(50));
        assert!(!pusher.is_finished(), "push must block on a full queue");
        assert_eq!(q.pop_group(BIG).unwrap().len(), 2);
        pusher.join().unwrap().unwrap();
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn close_wakes_everyone_and_drains() {
        // Proves close refuses new pushes, lets the writer drain, then ends it with None.
        let q = Arc::new(WriteQueue::new(4));
        q.push_with(|| Ok(req(1))).unwrap();
        q.close();
        assert!(matches!(q.push_with(|| Ok(req(1))), Err(Error::Closed)));
        assert_eq!(q.pop_group(BIG).unwrap().len(), 1);
        assert!(q.pop_group(BIG).is_none());
    }

    #[test]
    fn failed_make_enqueues_nothing() {
        // Proves a request whose construction fails (e.g. a conflict) is not queued.
        let q = WriteQueue::new(4);
        assert!(matches!(
            q.push_with(|| Err(Error::Conflict)),
            Err(Error::Conflict)
        ));
        assert!(q.is_empty());
    }

    #[test]
    fn completion_wakes_waiter_once() {
        // Proves the waiter gets the first outcome and a second complete() is ignored.
        let c = Arc::new(Completion::default());
        let c2 = c.clone();
        let t = thread::spawn(move || c2.wait());
        c.complete(Ok(()));
        c.complete(Err(Error::Closed));
        t.join().unwrap().unwrap();
        assert!(c.is_done());
    }
}

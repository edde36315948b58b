//! [`Subscriber`]: one subscription's state, shared by the publisher (which offers it
//! batches on the writer thread) and the [`crate::publish::Subscription`] that takes them.
//!
//! The inbox is bounded by [`SubscribeOptions`]: a batch that would take it over either limit
//! (when it already holds something) ends the subscription with [`Error::SubscriberLagged`]
//! instead of blocking the writer. The batches taken in before stay and are delivered first;
//! the error comes after them, then the end.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::matcher::CompiledMatch;
use super::update::Update;
use crate::error::{Error, Result};

/// Limits of one subscription's buffer of delivered but not yet taken batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Batches at most (default [`SubscribeOptions::DEFAULT_MAX_BATCHES`], Badger's channel
    /// capacity).
    pub max_buffered_batches: usize,
    /// Bytes at most, keys and values counted (default
    /// [`SubscribeOptions::DEFAULT_MAX_BYTES`]). A single batch larger than this is still
    /// taken when the buffer is empty.
    pub max_buffered_bytes: u64,
}

impl SubscribeOptions {
    /// Default batch limit.
    pub const DEFAULT_MAX_BATCHES: usize = 1000;
    /// Default byte limit: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

    setter!(
        /// Sets [`SubscribeOptions::max_buffered_batches`] (0 counts as 1).
        with_max_buffered_batches, max_buffered_batches: usize
    );
    setter!(
        /// Sets [`SubscribeOptions::max_buffered_bytes`].
        with_max_buffered_bytes, max_buffered_bytes: u64
    );
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            max_buffered_batches: SubscribeOptions::DEFAULT_MAX_BATCHES,
            max_buffered_bytes: SubscribeOptions::DEFAULT_MAX_BYTES,
        }
    }
}

/// Why a subscription stopped taking batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Cancelled or dropped: nothing more is delivered, buffered batches included.
    Cancelled,
    /// The database closed: buffered batches are delivered, then the end.
    Closed,
    /// The buffer overflowed at a batch starting with this version: buffered batches, then
    /// the error, then the end.
    Lagged(u64),
    /// The lag error was delivered.
    Reported,
}

/// What [`Subscriber::offer`] did with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Buffered.
    Taken,
    /// The subscription had already ended: dropped.
    Ended,
    /// The buffer was full: the subscription ended with the lag error.
    Lagged,
}

#[derive(Debug, Default)]
struct Inbox {
    batches: VecDeque<Vec<Update>>,
    /// Sum of the buffered updates' `charge_bytes`.
    bytes: u64,
    end: Option<End>,
}

/// One subscription (module doc). Invariant: `inbox.bytes` is the charge of the buffered
/// batches; once `end` is set no batch is added.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    matches: Vec<CompiledMatch>,
    limits: SubscribeOptions,
    /// GUARDED: the buffered batches, their bytes, the end.
    inbox: Mutex<Inbox>,
    /// Signalled when a batch is buffered or the subscription ends.
    ready: Condvar,
}

impl Subscriber {
    pub(crate) fn new(id: u64, matches: Vec<CompiledMatch>, limits: SubscribeOptions) -> Self {
        Subscriber {
            id,
            matches,
            limits,
            inbox: Mutex::new(Inbox::default()),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if some match of this subscription takes `key`.
    pub(crate) fn wants(&self, key: &[u8]) -> bool {
        self.matches.iter().any(|m| m.matches(key))
    }

    /// Buffers `batch` (non-empty), or ends the subscription if it does not fit (module doc).
    pub(crate) fn offer(&self, batch: Vec<Update>) -> Offer {
        debug_assert!(!batch.is_empty());
        let bytes: u64 = batch.iter().map(Update::charge_bytes).sum();
        let mut inbox = self.lock();
        if inbox.end.is_some() {
            return Offer::Ended;
        }
        let full = !inbox.batches.is_empty()
            && (inbox.batches.len() >= self.limits.max_buffered_batches.max(1)
                || inbox.bytes + bytes > self.limits.max_buffered_bytes);
        let offer = if full {
            inbox.end = Some(End::Lagged(batch[0].version));
            Offer::Lagged
        } else {
            inbox.bytes += bytes;
            inbox.batches.push_back(batch);
            Offer::Taken
        };
        drop(inbox);
        self.ready.notify_all();
        offer
    }

    /// The database closed: what is buffered is still delivered, then the end.
    pub(crate) fn close(&self) {
        self.end_with(End::Closed);
    }

    /// Cancelled: nothing more is delivered.
    pub(crate) fn cancel(&self) {
        let mut inbox = self.lock();
        inbox.end = Some(End::Cancelled);
        inbox.batches.clear();
        inbox.bytes = 0;
        drop(inbox);
        self.ready.notify_all();
    }

    fn end_with(&self, end: End) {
        let mut inbox = self.lock();
        inbox.end.get_or_insert(end);
        drop(inbox);
        self.ready.notify_all();
    }

    /// The next batch, waiting until `deadline` if given: `Some(Ok(batch))`, `Some(Ok(empty))`
    /// when the deadline passed first, `Some(Err(SubscriberLagged))` once after the buffered
    /// batches of a lagged subscription, `None` once it ended.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Option<Result<Vec<Update>>> {
        let mut inbox = self.lock();
        loop {
            if inbox.end == Some(End::Cancelled) {
                return None;
            }
            if let Some(batch) = inbox.batches.pop_front() {
                inbox.bytes -= batch.iter().map(Update::charge_bytes).sum::<u64>();
                return Some(Ok(batch));
            }
            match inbox.end {
                Some(End::Lagged(first_missed_version)) => {
                    inbox.end = Some(End::Reported);
                    return Some(Err(Error::SubscriberLagged {
                        first_missed_version,
                        max_buffered_batches: self.limits.max_buffered_batches,
                        max_buffered_bytes: self.limits.max_buffered_bytes,
                    }));
                }
                Some(_) => return None,
                None => {}
            }
            inbox = match deadline {
                None => self.ready.wait(inbox).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let Some(left) = d.checked_duration_since(Instant::now()) else {
                        return Some(Ok(Vec::new()));
                    };
                    self.ready
                        .wait_timeout(inbox, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn update(version: u64, value_len: usize) -> Update {
        Update {
            key: Bytes::from_static(b"k"),
            value: Bytes::from(vec![0; value_len]),
            version,
            expires_at: 0,
            user_meta: 0,
            is_delete: false,
        }
    }

    #[test]
    fn overflow_ends_after_the_buffered_batches_with_the_lag_error() {
        // Proves the lag policy at the inbox: a batch over the limit ends the subscription,
        // the batches before it are still delivered, then the error naming the first missed
        // version, then the end; a first batch over the byte limit is still taken.
        let limits = SubscribeOptions::default()
            .with_max_buffered_batches(2)
            .with_max_buffered_bytes(1000);
        let s = Subscriber::new(1, Vec::new(), limits);
        assert_eq!(s.offer(vec![update(1, 5000)]), Offer::Taken);
        assert_eq!(s.offer(vec![update(2, 1)]), Offer::Lagged);
        assert_eq!(s.offer(vec![update(3, 1)]), Offer::Ended);
        assert_eq!(s.recv(None).unwrap().unwrap()[0].version, 1);
        match s.recv(None) {
            Some(Err(Error::SubscriberLagged {
                first_missed_version: 2,
                max_buffered_batches: 2,
                max_buffered_bytes: 1000,
            })) => {}
            other => panic!("{other:?}"),
        }
        assert!(s.recv(None).is_none());
        let s = Subscriber::new(2, Vec::new(), limits);
        for v in 1..=2 {
            assert_eq!(s.offer(vec![update(v, 1)]), Offer::Taken);
        }
        assert_eq!(s.offer(vec![update(3, 1)]), Offer::Lagged);
    }

    #[test]
    fn close_drains_cancel_discards_and_a_deadline_yields_an_empty_batch() {
        // Proves the three other ends: close delivers what is buffered then ends; cancel
        // ends at once; a passed deadline gives an empty batch while still open.
        let s = Subscriber::new(1, Vec::new(), SubscribeOptions::default());
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(s.recv(Some(soon)).unwrap().unwrap(), Vec::new());
        s.offer(vec![update(1, 1)]);
        s.close();
        assert_eq!(s.offer(vec![update(2, 1)]), Offer::Ended);
        assert_eq!(s.recv(None).unwrap().unwrap().len(), 1);
        assert!(s.recv(None).is_none());
        let s = Subscriber::new(2, Vec::new(), SubscribeOptions::default());
        s.offer(vec![update(1, 1)]);
        s.cancel();
        assert!(s.recv(None).is_none());
    }
}

//! [`Publisher`]: the registry of subscriptions, and the step the writer thread runs after
//! each group it applied (Badger's publisher, without its goroutine and its channel).
//!
//! Cost on the write path: with no subscription, one atomic load per group
//! ([`Publisher::has_subscribers`]). With some, one lock-free load of the subscriber list per
//! group, a match check per entry and subscription, and one inbox lock per subscription that
//! got something; values are shared (`Bytes`), not copied. Nothing blocks: a subscription that
//! cannot take a batch is ended ([`crate::publish::SubscribeOptions`]).
//!
//! Order: one thread (the writer) publishes, group after group, in the order it applied them,
//! so every subscription sees the updates in apply order.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use super::matcher::{CompiledMatch, Match};
use super::subscriber::{Offer, SubscribeOptions, Subscriber};
use super::subscription::Subscription;
use super::update::{Publishable, Update};
use crate::error::{Error, Result};
use crate::key::INTERNAL_KEY_PREFIX;

/// The subscriptions of one database (module doc). Invariants: `live` is the length of
/// `subscribers`; once `closed`, the list is empty and stays so.
#[derive(Debug)]
pub(crate) struct Publisher {
    /// Subscriptions registered; read by the writer without a lock.
    live: AtomicUsize,
    /// The registered subscriptions, replaced whole (under `registry`) on every change.
    subscribers: ArcSwap<Vec<Arc<Subscriber>>>,
    /// GUARDED: the closed flag; held by every change of `subscribers` and `live`.
    registry: Mutex<bool>,
    next_id: AtomicU64,
}

impl Default for Publisher {
    fn default() -> Self {
        Publisher {
            live: AtomicUsize::new(0),
            subscribers: ArcSwap::from_pointee(Vec::new()),
            registry: Mutex::new(false),
            next_id: AtomicU64::new(1),
        }
    }
}

impl Publisher {
    fn lock(&self) -> MutexGuard<'_, bool> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a subscription to the keys any of `matches` takes. Every group applied after
    /// this returns is offered to it.
    ///
    /// Errors: [`Error::Closed`] once [`Publisher::close`] ran; [`Error::InvalidRequest`] for
    /// no match at all.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        matches: Vec<Match>,
        limits: SubscribeOptions,
    ) -> Result<Subscription> {
        if matches.is_empty() {
            return Err(Error::InvalidRequest(
                "subscribe needs at least one match (Match::prefix(\"\") takes every key)",
            ));
        }
        let compiled = matches.iter().map(CompiledMatch::new).collect();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Arc::new(Subscriber::new(id, compiled, limits));
        let closed = self.lock();
        if *closed {
            return Err(Error::Closed);
        }
        let mut list = Vec::clone(&self.subscribers.load());
        list.push(sub.clone());
        self.live.store(list.len(), Ordering::Release);
        self.subscribers.store(Arc::new(list));
        drop(closed);
        Ok(Subscription::new(sub, self.clone()))
    }

    /// True if some subscription is registered: the writer's one check per group.
    pub(crate) fn has_subscribers(&self) -> bool {
        self.live.load(Ordering::Acquire) > 0
    }

    /// Offers the matching entries of one applied group to each subscription, as one batch
    /// per subscription. Keys under SettDB's internal prefix are never delivered. REQUIRES:
    /// the writer thread (one publisher at a time, in apply order); `entries` were applied.
    pub(crate) fn publish<'a, E: Publishable + 'a>(&self, entries: impl Iterator<Item = &'a E>) {
        let subs = self.subscribers.load_full();
        if subs.is_empty() {
            return;
        }
        let mut batches: Vec<Vec<Update>> = vec![Vec::new(); subs.len()];
        for e in entries {
            let key = e.user_key();
            if key.starts_with(INTERNAL_KEY_PREFIX) {
                continue;
            }
            let mut update: Option<Update> = None;
            for (sub, batch) in subs.iter().zip(batches.iter_mut()) {
                if sub.wants(key) {
                    batch.push(update.get_or_insert_with(|| e.to_update()).clone());
                }
            }
        }
        for (sub, batch) in subs.iter().zip(batches) {
            if !batch.is_empty() && sub.offer(batch) == Offer::Lagged {
                self.remove(sub.id);
            }
        }
    }

    /// Unregisters subscription `id` (cancelled, dropped or lagged); nothing if it is gone.
    pub(crate) fn remove(&self, id: u64) {
        let _guard = self.lock();
        let current = self.subscribers.load();
        if !current.iter().any(|s| s.id == id) {
            return;
        }
        let list: Vec<Arc<Subscriber>> = current.iter().filter(|s| s.id != id).cloned().collect();
        self.live.store(list.len(), Ordering::Release);
        self.subscribers.store(Arc::new(list));
    }

    /// The database closed: every subscription delivers what it holds and ends; later
    /// subscriptions are refused. REQUIRES: the writer stopped (nothing is published after).
    pub(crate) fn close(&self) {
        let mut closed = self.lock();
        *closed = true;
        let list = self.subscribers.swap(Arc::new(Vec::new()));
        self.live.store(0, Ordering::Release);
        drop(closed);
        for sub in list.iter() {
            sub.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    struct E(&'static [u8], u64);

    impl Publishable for E {
        fn user_key(&self) -> &[u8] {
            self.0
        }
        fn to_update(&self) -> Update {
            Update {
                key: Bytes::from_static(self.0),
                value: Bytes::new(),
                version: self.1,
                expires_at: 0,
                user_meta: 0,
                is_delete: false,
            }
        }
    }

    #[test]
    fn groups_become_one_batch_per_subscription_and_internal_keys_are_skipped() {
        // Proves the routing: each subscription gets the matching entries of a group as one
        // batch, in order; internal keys never; the count drops when a subscription goes and
        // close refuses new ones.
        let p = Arc::new(Publisher::default());
        assert!(!p.has_subscribers());
        let mut a = p.subscribe(vec![Match::prefix(&b"a"[..])], SubscribeOptions::default());
        let mut all = p.subscribe(
            vec![Match::prefix(Bytes::new())],
            SubscribeOptions::default(),
        );
        assert!(p.has_subscribers());
        let group = [E(b"a1", 5), E(b"b1", 5), E(b"!settdb!x", 6), E(b"a2", 7)];
        p.publish(group.iter());
        let got = |s: &mut Result<Subscription>| -> Vec<u64> {
            let batch = s.as_mut().unwrap().next().unwrap().unwrap();
            batch.iter().map(|u| u.version).collect()
        };
        assert_eq!(got(&mut a), vec![5, 7]);
        assert_eq!(got(&mut all), vec![5, 5, 7]);
        drop(a);
        assert_eq!(p.live.load(Ordering::Relaxed), 1);
        p.close();
        assert!(!p.has_subscribers());
        assert!(all.unwrap().next().is_none());
        let refused = p.subscribe(vec![Match::default()], SubscribeOptions::default());
        assert!(matches!(refused, Err(Error::Closed)));
    }
}

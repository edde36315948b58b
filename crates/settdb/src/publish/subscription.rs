//! [`Subscription`]: the caller's end of a subscription (`Db::subscribe`): a blocking
//! iterator of batches, a timed receive, a cancel handle for other threads, and the callback
//! forms ([`Subscription::run`] on this thread, [`Subscription::spawn`] on a new one).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::publisher::Publisher;
use super::subscriber::Subscriber;
use super::update::Update;
use crate::error::{Error, Result};

/// A subscription to committed updates (see `Db::subscribe` for what is delivered and when).
///
/// As an iterator it yields each batch (`Ok`), waiting for the next; after a lag it yields
/// [`Error::SubscriberLagged`] once; it ends (`None`) when cancelled, or when the database
/// closed and every batch delivered before was taken. Dropping it cancels it.
#[derive(Debug)]
pub struct Subscription {
    sub: Arc<Subscriber>,
    publisher: Arc<Publisher>,
}

impl Subscription {
    pub(crate) fn new(sub: Arc<Subscriber>, publisher: Arc<Publisher>) -> Self {
        Subscription { sub, publisher }
    }

    /// The next batch, waiting at most `timeout`: as [`Iterator::next`], except that
    /// `Some(Ok(batch))` with an empty `batch` means nothing came in time (a delivered batch
    /// is never empty).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Result<Vec<Update>>> {
        let deadline = Instant::now().checked_add(timeout);
        self.sub.recv(deadline)
    }

    /// A handle that cancels this subscription from any thread.
    pub fn cancel_handle(&self) -> SubscriptionCancel {
        SubscriptionCancel {
            sub: self.sub.clone(),
            publisher: self.publisher.clone(),
        }
    }

    /// Cancels: no more updates are delivered (buffered ones are dropped) and the iterator
    /// ends.
    pub fn cancel(&self) {
        self.cancel_handle().cancel();
    }

    /// Calls `f` with each batch on this thread until the subscription ends (`Ok(())`:
    /// cancelled or the database closed), `f` fails (its error), or the subscription lagged
    /// ([`Error::SubscriberLagged`], converted). Badger's `Subscribe`.
    pub fn run<E: From<Error>>(
        self,
        mut f: impl FnMut(Vec<Update>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        for batch in self {
            f(batch?)?;
        }
        Ok(())
    }

    /// [`Subscription::run`] on a new thread; the handle cancels it and joins it.
    ///
    /// Errors: [`Error::Io`] if the thread cannot be started.
    pub fn spawn<E, F>(self, f: F) -> Result<SubscriberThread<E>>
    where
        E: From<Error> + Send + 'static,
        F: FnMut(Vec<Update>) -> std::result::Result<(), E> + Send + 'static,
    {
        let cancel = self.cancel_handle();
        let thread = std::thread::Builder::new()
            .name("settdb-subscriber".into())
            .spawn(move || self.run(f))
            .map_err(|e| Error::io("spawn thread", "settdb-subscriber", e))?;
        Ok(SubscriberThread { cancel, thread })
    }
}

impl Iterator for Subscription {
    type Item = Result<Vec<Update>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.sub.recv(None)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Cancels a [`Subscription`] from any thread ([`Subscription::cancel_handle`]).
#[derive(Clone, Debug)]
pub struct SubscriptionCancel {
    sub: Arc<Subscriber>,
    publisher: Arc<Publisher>,
}

impl SubscriptionCancel {
    /// Cancels the subscription: nothing more is delivered, and a thread waiting in it
    /// wakes up to its end. Idempotent.
    pub fn cancel(&self) {
        self.publisher.remove(self.sub.id);
        self.sub.cancel();
    }
}

/// A subscription running a callback on its own thread ([`Subscription::spawn`]).
#[derive(Debug)]
pub struct SubscriberThread<E> {
    cancel: SubscriptionCancel,
    thread: JoinHandle<std::result::Result<(), E>>,
}

impl<E> SubscriberThread<E> {
    /// A handle that cancels the subscription from any thread.
    pub fn cancel_handle(&self) -> SubscriptionCancel {
        self.cancel.clone()
    }

    /// Cancels the subscription and waits for the thread: what [`Subscription::run`]
    /// returned.
    pub fn cancel_and_join(self) -> std::result::Result<(), E> {
        self.cancel.cancel();
        self.join()
    }

    /// Waits for the thread to end (the callback failed, the subscription lagged, was
    /// cancelled, or the database closed): what [`Subscription::run`] returned. A panic in
    /// the callback is resumed here.
    pub fn join(self) -> std::result::Result<(), E> {
        match self.thread.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

//! A write request: entries with their versions, and the completion its caller waits on.

use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use crate::error::{Error, Result};

/// One entry to write. The key is a user key; the version is the commit timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteEntry {
    /// User key (no version suffix).
    pub key: Bytes,
    /// Version (commit timestamp).
    pub version: u64,
    /// Meta bits (`value::meta`): DELETE, DISCARD_EARLIER_VERSIONS, MERGE, TXN bits.
    pub meta: u8,
    /// User meta byte.
    pub user_meta: u8,
    /// Expiry, unix seconds; 0 never.
    pub expires_at: u64,
    /// The value (empty for a delete).
    pub value: Bytes,
}

impl WriteEntry {
    /// Bytes this entry counts against a batch's size limit: key + suffix + value + header.
    pub fn estimated_size(&self) -> u64 {
        (self.key.len() + crate::key::VERSION_LEN + self.value.len() + 16) as u64
    }
}

/// A group of entries written atomically (all or none survive a crash).
#[derive(Debug)]
pub struct WriteRequest {
    /// The entries.
    pub entries: Vec<WriteEntry>,
    /// Signalled once with the outcome.
    pub completion: Arc<Completion>,
}

impl WriteRequest {
    /// A request with a fresh completion.
    pub fn new(entries: Vec<WriteEntry>) -> Self {
        WriteRequest {
            entries,
            completion: Arc::new(Completion::default()),
        }
    }

    /// Sum of the entries' estimated sizes.
    pub fn estimated_size(&self) -> u64 {
        self.entries.iter().map(WriteEntry::estimated_size).sum()
    }
}

/// The outcome of a request, set once by the writer, waited for by the caller (and possibly
/// handed to a callback by an asynchronous commit).
#[derive(Debug, Default)]
pub struct Completion {
    outcome: Mutex<Option<Result<()>>>,
    cond: Condvar,
}

impl Completion {
    /// Sets the outcome and wakes waiters. Only the first call has an effect.
    pub fn complete(&self, outcome: Result<()>) {
        let mut guard = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(outcome);
            self.cond.notify_all();
        }
    }

    /// Blocks until the outcome is set and takes it. A second call sees `Error::InvalidRequest`.
    pub fn wait(&self) -> Result<()> {
        let mut guard = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        while guard.is_none() {
            guard = self.cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        match guard.take() {
            Some(r) => {
                // Leave a marker so a second wait does not block forever.
                *guard = Some(Err(Error::InvalidRequest("completion already taken")));
                r
            }
            None => Err(Error::InvalidRequest("completion already taken")),
        }
    }

    /// True once the outcome is set.
    pub fn is_done(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

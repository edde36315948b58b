//! [`ReadSet`]: the fingerprints of the keys a transaction read, shared with its iterators
//! (which record what they yield), taken by the commit's conflict check.

use std::sync::Mutex;

use super::oracle::fingerprint;

/// Keys read by one transaction, as fingerprints.
#[derive(Debug, Default)]
pub struct ReadSet(Mutex<Vec<u64>>);

impl ReadSet {
    /// Records a read of `key`.
    pub fn record(&self, key: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fingerprint(key));
    }

    /// Every read recorded so far, leaving the set empty.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

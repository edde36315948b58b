//! A wake-up flag for a background thread: set by one thread, waited for by another.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A level-triggered signal: `raise` sets it, `wait` takes it (or times out).
#[derive(Debug, Default)]
pub struct Signal {
    raised: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    /// Sets the flag and wakes the waiter.
    pub fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_one();
    }

    /// Waits up to `timeout` for the flag; takes it. `true` if it was raised.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut raised = self.raised.lock().unwrap_or_else(|e| e.into_inner());
        if !*raised {
            raised = self
                .cond
                .wait_timeout(raised, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        std::mem::take(&mut *raised)
    }
}

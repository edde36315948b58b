//! Pausing the writer: a [`PauseGate`] rides on a request ([`WriteRequest::pause`]). When
//! the writer reaches it, every request queued before it is applied and the mutable memtable
//! is rotated (so everything written so far is in immutable memtables); the writer then says
//! so and waits, applying nothing, until the caller resumes it. Requests queued meanwhile
//! wait in the queue, they are not refused. `Db::drop_all` and `Db::drop_prefix` work under it.

use std::sync::{Condvar, Mutex};

use crate::error::{Error, Result};

#[derive(Debug)]
enum GateState {
    /// The writer has not reached the request yet.
    Waiting,
    /// The writer is paused.
    Paused,
    /// The writer could not pause (its error); it goes on.
    Failed(String),
    /// The caller let the writer go.
    Resumed,
}

/// The handshake between the writer and the caller that paused it.
#[derive(Debug)]
pub struct PauseGate {
    state: Mutex<GateState>,
    cond: Condvar,
}

impl Default for PauseGate {
    fn default() -> Self {
        PauseGate {
            state: Mutex::new(GateState::Waiting),
            cond: Condvar::new(),
        }
    }
}

impl PauseGate {
    /// Writer side: reports that it paused (`Ok`) or why it could not, and when paused,
    /// blocks until [`PauseGate::resume`].
    pub fn hold(&self, paused: Result<()>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = match paused {
            Ok(()) => GateState::Paused,
            Err(e) => GateState::Failed(e.to_string()),
        };
        self.cond.notify_all();
        while matches!(*state, GateState::Paused) {
            state = self.cond.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Caller side: blocks until the writer paused; `Err` if it could not.
    pub fn wait_paused(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match &*state {
                GateState::Waiting => {
                    state = self.cond.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                GateState::Paused => return Ok(()),
                GateState::Failed(why) => return Err(Error::Poisoned(why.clone())),
                GateState::Resumed => {
                    return Err(Error::InvalidRequest("the writer was resumed already"))
                }
            }
        }
    }

    /// Caller side: lets the writer go on (idempotent; harmless before it paused).
    pub fn resume(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, GateState::Paused | GateState::Waiting) {
            *state = GateState::Resumed;
        }
        self.cond.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_writer_waits_until_resumed_and_failures_reach_the_caller() {
        // Proves the handshake: the caller sees the pause, the writer stays held until
        // resume, and a writer that cannot pause hands its error to the caller.
        let gate = Arc::new(PauseGate::default());
        let released = Arc::new(Mutex::new(false));
        let writer = {
            let (gate, released) = (gate.clone(), released.clone());
            std::thread::spawn(move || {
                gate.hold(Ok(()));
                *released.lock().unwrap() = true;
            })
        };
        gate.wait_paused().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            !*released.lock().unwrap(),
            "the writer went on while paused"
        );
        gate.resume();
        writer.join().unwrap();
        assert!(*released.lock().unwrap());
        let failed = PauseGate::default();
        failed.hold(Err(Error::InvalidRequest("boom")));
        assert!(matches!(failed.wait_paused(), Err(Error::Poisoned(m)) if m.contains("boom")));
    }
}

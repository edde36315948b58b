//! Runs the callbacks of asynchronous commits on one SettDB thread, in commit order.
//!
//! Completions finish in the order requests were queued, so one thread waiting for each in
//! turn delays no callback behind a later commit. A callback that panics is contained: the
//! thread goes on with the next one.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::request::Completion;
use crate::error::{Error, Result};

/// A commit callback.
pub type Callback = Box<dyn FnOnce(Result<()>) + Send>;

type Job = (Arc<Completion>, Callback);

/// The callback thread and its queue.
#[derive(Debug)]
pub struct CallbackRunner {
    sender: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl CallbackRunner {
    /// Starts the thread.
    pub fn start() -> Result<Self> {
        let (tx, rx) = channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("settdb-callbacks".into())
            .spawn(move || {
                for (completion, callback) in rx {
                    let outcome = completion.wait();
                    let _ = catch_unwind(AssertUnwindSafe(|| callback(outcome)));
                }
            })
            .map_err(|e| Error::io("spawn thread", "settdb-callbacks", e))?;
        Ok(CallbackRunner {
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `callback` with the outcome of `completion` once it is known. After shutdown the
    /// callback runs on the caller's thread.
    pub fn run_after(&self, completion: Arc<Completion>, callback: Callback) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let job = match sender.as_ref() {
            Some(tx) => match tx.send((completion, callback)) {
                Ok(()) => return,
                Err(e) => e.0,
            },
            None => (completion, callback),
        };
        drop(sender);
        let (completion, callback) = job;
        callback(completion.wait());
    }

    /// Lets the thread finish the queued callbacks and joins it. REQUIRES: the writer has
    /// completed every request (so no callback waits forever).
    ///
    /// Called from a callback itself (a callback that closes the database), it does not wait:
    /// a thread cannot join itself; the thread ends after that callback returns.
    pub fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if thread
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id())
        {
            return;
        }
        if let Some(t) = thread.take() {
            let _ = t.join();
        }
    }
}

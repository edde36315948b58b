//! The write path: requests, the bounded queue to the one writer, and the writer's group
//! commit.

mod callbacks;
mod pause;
mod request;
mod signal;
mod write_queue;
mod writer;

pub use callbacks::{Callback, CallbackRunner};
pub use pause::PauseGate;
pub use request::{Completion, Duty, RewriteCheck, WriteEntry, WriteRequest};
pub use signal::Signal;
pub use write_queue::{GroupLimits, WriteQueue};
pub use writer::{run_writer, Poison, WriterContext, BYTES_PER_SYNC};

//! The write path: requests, the bounded queue to the one writer, and the writer's group
//! commit.

mod callbacks;
mod pause;
mod request;
mod signal;
mod threshold;
mod write_queue;
mod writer;

#[cfg_attr(not(test), allow(unused_imports))]
pub use callbacks::CallbackRunner;
#[cfg_attr(not(test), allow(unused_imports))]
pub use pause::PauseGate;
#[cfg_attr(not(test), allow(unused_imports))]
pub use request::{Completion, WriteEntry, WriteRequest};
#[cfg_attr(not(test), allow(unused_imports))]
pub use signal::Signal;
#[cfg_attr(not(test), allow(unused_imports))]
pub use threshold::ValueThreshold;
#[cfg_attr(not(test), allow(unused_imports))]
pub use write_queue::{GroupLimits, WriteQueue};
#[cfg_attr(not(test), allow(unused_imports))]
pub use writer::{Poison, Writer, WriterContext, BYTES_PER_SYNC};

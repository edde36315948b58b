//! The write path: requests, the bounded queue to the one writer, and the writer's group
//! commit.

mod request;
mod write_queue;

pub use request::{Completion, WriteEntry, WriteRequest};
pub use write_queue::{GroupLimits, WriteQueue};

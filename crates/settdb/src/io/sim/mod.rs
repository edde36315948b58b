//! The simulated storage: [`SimStorage`], an in-memory [`crate::io::Storage`] that models what a
//! disk and its page cache may keep after a power loss, and injects I/O faults.
//!
//! - `path_key`: lexical path normalisation;
//! - `op`: one logged mutation, and the log invariant (durable + log = live);
//! - `tree`: inodes with live and durable views, the log, sync and crash replay;
//! - `crash`: [`CrashMode`] and which unsynced ops a crash keeps;
//! - `fault`: [`Fault`], [`FaultOp`], [`FaultKind`] and their counters;
//! - `file`, `lock`: the handle and lock guard types; `sim_storage`: the [`SimStorage`] facade.

mod crash;
mod fault;
mod file;
mod lock;
mod op;
mod path_key;
mod sim_storage;
mod tree;

pub use crash::CrashMode;
pub use fault::{Fault, FaultKind, FaultOp};
pub use sim_storage::SimStorage;

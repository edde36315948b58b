//! SettDB replicated with [openraft](https://docs.rs/openraft/0.9): openraft supplies the
//! consensus algorithm, this crate supplies its durable storage on SettDB.
//!
//! - [`LogStore`]: the raft log, the vote and the committed log id, in a SettDB database of
//!   their own (`<dir>/log`); every append, vote and truncation is synced before openraft is
//!   told it happened (appends in groups: one sync for all queued meanwhile).
//! - [`StateMachine`]: committed entries applied to a SettDB database in managed mode
//!   (`<dir>/sm`), each entry's writes at version `log index + 1`, so every replica holds the
//!   same keys at the same versions (docs/design/replication.md says why).
//! - Snapshots are streams of the state machine in the backup format
//!   ([`settdb::Db::stream_at`]) and are installed with the bulk loader
//!   ([`settdb::Db::bulk_load`]).
//!
//! [`open`] lays out a node's directory and checks it belongs to the node.
//!
//! ```no_run
//! # fn demo() -> Result<(), settdb_raft::Error> {
//! let (log_store, state_machine) = settdb_raft::open("/var/lib/settdb/node-1".as_ref(), 1)?;
//! let reader = state_machine.reader(); // reads for the KV API, at the last applied entry
//! // openraft::Raft::<settdb_raft::TypeConfig>::new(1, config, network, log_store, state_machine)
//! # let _ = (log_store, reader); Ok(()) }
//! ```

// Openraft's storage traits return its `StorageError` (over 200 bytes); the helpers that build
// it return it too rather than boxing and unboxing at every trait method.
#![allow(clippy::result_large_err)]

mod log_store;
mod node_dir;
mod request;
mod snapshot_file;
mod state_machine;

use std::fmt;
use std::path::PathBuf;

pub use log_store::LogStore;
pub use node_dir::{open, NODE_FILE};
pub use request::{Op, Request, Response, MAX_KEY_LEN};
pub use state_machine::{StateMachine, StateReader};

openraft::declare_raft_types!(
    /// The openraft type configuration of SettDB's replication: requests are [`Request`]s,
    /// node ids are `u64`, a node is its address ([`openraft::BasicNode`]), and snapshots are
    /// files.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A raft node's id.
pub type NodeId = u64;

/// The errors of opening a node's storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory belongs to another node.
    #[error("{dir} holds node {found}'s data, not node {expected}'s (each node needs its own directory)")]
    WrongNode {
        /// The directory.
        dir: PathBuf,
        /// The node id recorded in it.
        found: NodeId,
        /// The node id asked for.
        expected: NodeId,
    },
    /// A file of the node's directory is not what this crate wrote.
    #[error("{path}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The SettDB database under the directory failed.
    #[error(transparent)]
    Db(#[from] settdb::Error),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A storage error for openraft from anything that displays; the subject and verb name what
/// failed.
fn storage_error(
    subject: openraft::ErrorSubject<NodeId>,
    verb: openraft::ErrorVerb,
    e: impl fmt::Display,
) -> openraft::StorageError<NodeId> {
    let source = openraft::AnyError::error(e.to_string());
    openraft::StorageIOError::new(subject, verb, source).into()
}

//! `settdb-server`: one SettDB node replicated with openraft, serving a small KV API and the
//! cluster's admin calls over HTTP, with the raft RPCs on the same listener.
//!
//! The KV API stores UTF-8 text keys and values (JSON carries them as strings):
//! - `PUT /kv/{key}` (the body is the value), `DELETE /kv/{key}`: a write through the leader,
//!   answered `{"index": n}` once committed and applied; the write is at version `n + 1` on
//!   every node.
//! - `GET /kv/{key}`: the value (404 if absent); `GET /scan?prefix=p&limit=n`: a JSON list of
//!   `{"key", "value"}`. Reads are linearizable (the leader confirms it still leads, then
//!   reads at or after that point); `consistency=stale` reads this node's state machine as it
//!   is, on any node, and is named so because it may miss recent writes.
//! - `POST /batch` `{"ops": [{"op": "put", "key", "value"} | {"op": "delete", "key"}]}`: the
//!   writes applied atomically at one version.
//! - Admin: `POST /cluster/init` (`{"members": {"1": "host:port", ...}}`, or the `--peers`
//!   when empty), `POST /cluster/add-learner` (`{"id", "addr"}`), `POST
//!   /cluster/change-membership` (`{"voters": [ids]}`), `GET /cluster/metrics`.
//!
//! Errors are JSON `{"error": "..."}`: 400 for bad input, 404 for a missing key, 413 for a
//! request over `--max-request-bytes`, 503 when the write or read could not be confirmed
//! within `--request-timeout` (no quorum; a write may still commit later), and on a follower,
//! 307 to the leader with `leader_id` and `leader_addr` (curl `-L` follows it).

mod http;
mod network;
mod node;
mod proposer;
mod read_barrier;

pub use network::Network;
pub use node::{Node, NodeConfig, StartError};

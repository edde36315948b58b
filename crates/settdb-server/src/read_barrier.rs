//! Shared leadership confirmations for linearizable reads. A linearizable read needs the leader
//! to confirm, after the read arrived, that it still leads (a heartbeat round to a quorum) and
//! that its state machine caught up with that point (`Raft::ensure_linearizable`). One round
//! per read made three nodes serve ~12K reads/s however many clients asked; reads that arrive
//! while a round is under way now wait for the next round together. Each read still gets a
//! round that started after it arrived, which is what makes it linearizable.

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::{BasicNode, Raft};
use settdb_raft::{NodeId, TypeConfig};
use tokio::sync::{mpsc, oneshot};

/// What a confirmation round answered.
pub(crate) type Confirmed = Result<(), RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>>;

/// Queues reads for the next confirmation round.
#[derive(Clone, Debug)]
pub(crate) struct ReadBarrier {
    queue: mpsc::UnboundedSender<oneshot::Sender<Confirmed>>,
}

impl ReadBarrier {
    /// Starts the confirming task; it ends when every `ReadBarrier` clone is dropped.
    pub(crate) fn start(raft: Raft<TypeConfig>) -> ReadBarrier {
        let (queue, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<Confirmed>>();
        tokio::spawn(async move {
            // Waiting readers are taken only when a round is about to start, so every one of
            // them arrived before it.
            while let Some(first) = rx.recv().await {
                let mut waiting = vec![first];
                while let Ok(next) = rx.try_recv() {
                    waiting.push(next);
                }
                let confirmed: Confirmed = raft.ensure_linearizable().await.map(drop);
                for reader in waiting {
                    // A reader that timed out no longer listens.
                    let _ = reader.send(confirmed.clone());
                }
            }
        });
        ReadBarrier { queue }
    }

    /// Waits for a confirmation round that starts after this call; `None` when the node is
    /// shutting down.
    pub(crate) async fn confirm(&self) -> Option<Confirmed> {
        let (tx, rx) = oneshot::channel();
        self.queue.send(tx).ok()?;
        rx.await.ok()
    }
}

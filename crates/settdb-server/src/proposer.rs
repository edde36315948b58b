//! Group commit for client writes. Openraft 0.9 appends and syncs each proposal on its own
//! before it takes the next (measured: one entry per fsync, ~2,900 puts/s however many
//! clients), so the server combines the writes that arrive while earlier ones are being
//! proposed into one raft entry. Each client's writes were validated on their own and stay
//! together in the entry, which is applied atomically at one version, so every client still
//! gets all-or-nothing; concurrent writes share that version and, for one key, the one that
//! came last in the entry wins (a valid order for concurrent writes).

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};
use settdb_raft::{NodeId, Request, Response, TypeConfig};
use tokio::sync::{mpsc, oneshot, Mutex};

/// What proposing a write answered: the applied entry's response, or openraft's error.
pub(crate) type Outcome = Result<Response, RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>;

type Pending = (Request, oneshot::Sender<Outcome>);

/// Proposals in flight at once: while one is being synced and replicated, the next batch
/// gathers.
const PROPOSERS: usize = 2;

/// The most writes one combined entry carries, and about the most bytes (a single request may
/// be larger; it then goes alone).
const MAX_OPS: usize = 4_096;
const MAX_BYTES: usize = 4 << 20;

/// Queues writes and proposes them in groups.
#[derive(Clone, Debug)]
pub(crate) struct Proposer {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Proposer {
    /// Starts the proposing tasks on the current runtime; they end when every `Proposer`
    /// clone is dropped.
    pub(crate) fn start(raft: Raft<TypeConfig>) -> Proposer {
        let (queue, rx) = mpsc::unbounded_channel::<Pending>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..PROPOSERS {
            let (raft, rx) = (raft.clone(), rx.clone());
            tokio::spawn(async move {
                while let Some(group) = next_group(&rx).await {
                    propose(&raft, group).await;
                }
            });
        }
        Proposer { queue }
    }

    /// Proposes `request` (already validated) and waits for its outcome.
    pub(crate) async fn write(&self, request: Request) -> Option<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((request, tx)).ok()?;
        rx.await.ok()
    }
}

/// Waits for a write, then takes every write queued behind it, within the limits.
async fn next_group(rx: &Mutex<mpsc::UnboundedReceiver<Pending>>) -> Option<Vec<Pending>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut ops = first.0.ops.len();
    let mut bytes = size(&first.0);
    let mut group = vec![first];
    while ops < MAX_OPS && bytes < MAX_BYTES {
        match rx.try_recv() {
            Ok(next) => {
                ops += next.0.ops.len();
                bytes += size(&next.0);
                group.push(next);
            }
            Err(_) => break,
        }
    }
    Some(group)
}

fn size(request: &Request) -> usize {
    request
        .ops
        .iter()
        .map(|op| match op {
            settdb_raft::Op::Put { key, value } => key.len() + value.len(),
            settdb_raft::Op::Delete { key } => key.len(),
        })
        .sum()
}

async fn propose(raft: &Raft<TypeConfig>, group: Vec<Pending>) {
    let (requests, replies): (Vec<Request>, Vec<oneshot::Sender<Outcome>>) =
        group.into_iter().unzip();
    let combined = Request {
        ops: requests.into_iter().flat_map(|r| r.ops).collect(),
    };
    let outcome: Outcome = raft.client_write(combined).await.map(|r| r.data);
    for reply in replies {
        // A caller that gave up (its request timed out) no longer listens.
        let _ = reply.send(outcome.clone());
    }
}

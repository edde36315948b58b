//! A running node: its storage, its openraft instance and its HTTP listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use settdb_raft::{LogStore, NodeId, StateReader, TypeConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http;
use crate::network::Network;
use crate::proposer::Proposer;
use crate::read_barrier::ReadBarrier;

/// How a node runs; `settdb-server`'s flags fill it.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id: nonzero, unique in the cluster.
    pub id: NodeId,
    /// The address to listen on. Other nodes reach this one at the address the cluster's
    /// membership gives it (`peers`, `/cluster/init` or `/cluster/add-learner`).
    pub listen: SocketAddr,
    /// This node's data directory.
    pub dir: PathBuf,
    /// Every voter of the cluster with its address, this node included. The node with the
    /// smallest id initializes the cluster with them on its first start; empty: initialize
    /// through `POST /cluster/init`.
    pub peers: BTreeMap<NodeId, String>,
    /// Build a snapshot after this many entries applied since the last one.
    pub snapshot_every: u64,
    /// Log entries kept behind the newest snapshot (the rest is purged).
    pub keep_logs: u64,
    /// Largest KV request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// How long a write or a linearizable read waits for the cluster before 503.
    pub request_timeout: Duration,
    /// Heartbeat interval; elections time out after 3 to 6 heartbeats without one.
    pub heartbeat: Duration,
}

impl NodeConfig {
    /// A config with the defaults for node `id` listening on `listen` with data in `dir`.
    pub fn new(id: NodeId, listen: SocketAddr, dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            id,
            listen,
            dir: dir.into(),
            peers: BTreeMap::new(),
            snapshot_every: 10_000,
            keep_logs: 1_000,
            max_request_bytes: 1 << 20,
            request_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_millis(100),
        }
    }
}

/// Why a node did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is out of range.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The node's storage did not open.
    #[error("cannot open the node's storage: {0}")]
    Storage(#[from] settdb_raft::Error),
    /// The listener did not bind.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Openraft refused to start.
    #[error("raft did not start: {0}")]
    Raft(String),
}

/// What the HTTP handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) id: NodeId,
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) reader: StateReader,
    pub(crate) proposer: Proposer,
    pub(crate) reads: ReadBarrier,
    pub(crate) peers: BTreeMap<NodeId, String>,
    pub(crate) request_timeout: Duration,
}

/// A running node.
pub struct Node {
    id: NodeId,
    addr: SocketAddr,
    raft: Raft<TypeConfig>,
    reader: StateReader,
    log: LogStore,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Opens the node's storage, starts raft and the HTTP listener, and, if this node has the
    /// smallest id among `peers` and its log is empty, initializes the cluster with them.
    pub async fn start(config: NodeConfig) -> Result<Node, StartError> {
        if config.id == 0 {
            return Err(StartError::Config("the node id must be nonzero".into()));
        }
        if !config.peers.is_empty() && !config.peers.contains_key(&config.id) {
            return Err(StartError::Config(format!(
                "--peers does not list this node's id {} (listed: {:?})",
                config.id,
                config.peers.keys().collect::<Vec<_>>()
            )));
        }
        if config.snapshot_every == 0 {
            return Err(StartError::Config(
                "--snapshot-every must be at least 1".into(),
            ));
        }
        let heartbeat = config.heartbeat.as_millis().max(1) as u64;
        let raft_config = Config {
            cluster_name: "settdb".into(),
            heartbeat_interval: heartbeat,
            election_timeout_min: heartbeat * 3,
            election_timeout_max: heartbeat * 6,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.keep_logs,
            purge_batch_size: 256,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
        let dir = config.dir.clone();
        let id = config.id;
        let (log_store, state_machine) =
            tokio::task::spawn_blocking(move || settdb_raft::open(&dir, id))
                .await
                .map_err(|e| StartError::Raft(e.to_string()))??;
        let reader = state_machine.reader();
        let log = log_store.clone();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let network = Network::new(Duration::from_millis(500));
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let state = AppState {
            id: config.id,
            raft: raft.clone(),
            reader: reader.clone(),
            proposer: Proposer::start(raft.clone()),
            reads: ReadBarrier::start(raft.clone()),
            peers: config.peers.clone(),
            request_timeout: config.request_timeout,
        };
        let (stop, mut stopped) = watch::channel(false);
        let app = http::router(state, config.max_request_bytes);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        let node = Node {
            id: config.id,
            addr,
            raft,
            reader,
            log,
            stop,
            server: Some(server),
        };
        let lowest = config.peers.keys().next().copied();
        if lowest == Some(config.id) && !node.raft.is_initialized().await.unwrap_or(true) {
            let members: BTreeMap<NodeId, BasicNode> = config
                .peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            tracing::info!(?members, "initializing the cluster");
            node.raft
                .initialize(members)
                .await
                .map_err(|e| StartError::Raft(format!("initializing the cluster: {e}")))?;
        }
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The node's openraft instance.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// Reads of the node's state machine as it is (stale reads).
    pub fn reader(&self) -> &StateReader {
        &self.reader
    }

    /// Stops serving, stops raft, waits for both, then closes both databases (which releases
    /// the directory).
    pub async fn shutdown(mut self) -> Result<(), String> {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            server
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        self.raft.shutdown().await.map_err(|e| e.to_string())?;
        let (log, reader) = (self.log.clone(), self.reader.clone());
        tokio::task::spawn_blocking(move || {
            let closed = log.close();
            reader.close().and(closed)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("closing the node's databases: {e}"))
    }
}

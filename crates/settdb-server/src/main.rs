//! `settdb-server`: one node of a replicated SettDB cluster (see the crate docs for the API).
//!
//! ```text
//! settdb-server --id 1 --listen 127.0.0.1:21001 --dir n1 \
//!     --peers 1=127.0.0.1:21001,2=127.0.0.1:21002,3=127.0.0.1:21003
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use settdb_server::{Node, NodeConfig};

/// One node of a replicated SettDB cluster: a KV API over HTTP, replicated with openraft.
#[derive(Debug, Parser)]
#[command(name = "settdb-server", version)]
struct Args {
    /// This node's id (nonzero, unique in the cluster).
    #[arg(long)]
    id: u64,
    /// Address to listen on for the KV API, the admin calls and the raft RPCs.
    #[arg(long)]
    listen: SocketAddr,
    /// This node's data directory (created if missing; refused if another node's).
    #[arg(long)]
    dir: PathBuf,
    /// The cluster's voters as ID=HOST:PORT,...; the node with the smallest id initializes
    /// the cluster with them on its first start. Without it, use POST /cluster/init.
    #[arg(long, value_parser = parse_peers)]
    peers: Option<BTreeMap<u64, String>>,
    /// Build a snapshot after this many log entries applied since the last one.
    #[arg(long, default_value_t = 10_000)]
    snapshot_every: u64,
    /// Log entries kept behind the newest snapshot; older ones are purged.
    #[arg(long, default_value_t = 1_000)]
    keep_logs: u64,
    /// Largest KV request body accepted, in bytes (larger: 413).
    #[arg(long, default_value_t = 1 << 20)]
    max_request_bytes: usize,
    /// Milliseconds a write or linearizable read waits for a quorum before 503.
    #[arg(long, default_value_t = 5_000)]
    request_timeout_ms: u64,
    /// Raft heartbeat interval in milliseconds (elections after 3-6 missed heartbeats).
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
}

fn parse_peers(s: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut peers = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("{id:?} is not a node id"))?;
        if id == 0 {
            return Err("node ids are nonzero".into());
        }
        if addr.trim().is_empty() {
            return Err(format!("node {id} has no address"));
        }
        if peers.insert(id, addr.trim().to_string()).is_some() {
            return Err(format!("node {id} is listed twice"));
        }
    }
    if peers.is_empty() {
        return Err("no peers given".into());
    }
    Ok(peers)
}

/// Returns on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = NodeConfig {
        peers: args.peers.unwrap_or_default(),
        snapshot_every: args.snapshot_every,
        keep_logs: args.keep_logs,
        max_request_bytes: args.max_request_bytes,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        ..NodeConfig::new(args.id, args.listen, args.dir)
    };
    let node = match Node::start(config).await {
        Ok(node) => node,
        Err(e) => {
            eprintln!("settdb-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(id = node.id(), addr = %node.addr(), "serving");
    wait_for_stop().await;
    tracing::info!("stopping");
    match node.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("settdb-server: stopping: {e}");
            ExitCode::FAILURE
        }
    }
}

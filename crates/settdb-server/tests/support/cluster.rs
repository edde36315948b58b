//! A cluster of `settdb-server` processes on 127.0.0.1 for process-level tests: start, kill
//! (SIGKILL), stop (SIGTERM) and restart nodes, read their metrics, find the leader, wait
//! until the nodes agree, read a node's whole state machine, and a client that writes and
//! reads through whichever node leads.
//!
//! Include it with `#[path = "support/cluster.rs"] mod cluster;`.
//!
//! Each node has a temporary directory holding its data (`data/`) and its log (`node.log`,
//! the child's stdout and stderr, appended to across restarts). Dropping the [`Cluster`]
//! kills every child and, if the thread is panicking (a failed assertion), prints the tail of
//! every node's log first. On Linux the children also get SIGKILL when the test process dies
//! (`PR_SET_PDEATHSIG`), so even an aborted test leaves no server behind.
//!
//! Every wait has a deadline and panics when it passes, naming what it waited for.

#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::{redirect, Method, StatusCode};
use serde_json::Value;

/// The server binary Cargo built for this test.
pub const SERVER: &str = env!("CARGO_BIN_EXE_settdb-server");

/// How often the waits poll.
const POLL: Duration = Duration::from_millis(20);

/// Lines of each node's log printed when a test fails.
const TAIL_LINES: usize = 60;

/// Serializes the tests of one test binary that run clusters (each is several processes; two
/// at once on a small machine make elections flap). Hold the guard for the whole test.
/// An async lock, as the guard is held across awaits (each test has its own runtime).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A free port on 127.0.0.1: bound to port 0, then released.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
}

/// One node: its process (when running) and how to start it again.
#[derive(Debug)]
struct NodeProc {
    id: u64,
    addr: SocketAddr,
    home: tempfile::TempDir,
    /// Flags after `--id/--listen/--dir/--peers`; `set_args` changes them for the next start.
    args: Vec<String>,
    child: Option<Child>,
    starts: u32,
}

impl NodeProc {
    fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.home.path().join("node.log")
    }
}

/// What `GET /cluster/metrics` says, the fields the tests use parsed out.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The node's id.
    pub id: u64,
    /// The index of the last entry applied to the state machine.
    pub applied_index: Option<u64>,
    /// Openraft's `state`: `Leader`, `Follower`, `Candidate`, `Learner`, `Shutdown`.
    pub state: String,
    /// The leader this node knows of.
    pub current_leader: Option<u64>,
    /// The node's term.
    pub current_term: u64,
    /// The index of the last entry in the node's log.
    pub last_log_index: Option<u64>,
    /// The index of the last entry in the node's snapshot (none: no snapshot).
    pub snapshot_index: Option<u64>,
    /// The index of the last entry purged from the node's log.
    pub purged_index: Option<u64>,
    /// The whole answer.
    pub raw: Value,
}

impl Metrics {
    fn parse(raw: Value) -> Result<Metrics, String> {
        let raft = &raw["raft"];
        let id = raw["id"]
            .as_u64()
            .ok_or_else(|| format!("metrics without an id: {raw}"))?;
        Ok(Metrics {
            id,
            applied_index: raw["applied_index"].as_u64(),
            state: raft["state"].as_str().unwrap_or("?").to_string(),
            current_leader: raft["current_leader"].as_u64(),
            current_term: raft["current_term"].as_u64().unwrap_or(0),
            last_log_index: raft["last_log_index"].as_u64(),
            snapshot_index: raft["snapshot"]["index"].as_u64(),
            purged_index: raft["purged"]["index"].as_u64(),
            raw,
        })
    }

    /// True if this node says it leads.
    pub fn is_leader(&self) -> bool {
        self.state == "Leader"
    }
}

/// A cluster of `settdb-server` processes; dropping it kills them all.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<NodeProc>,
    peers: String,
    http: reqwest::Client,
    started: Instant,
}

impl Cluster {
    /// Starts nodes `1..=size` on free loopback ports, each with `--peers` listing all of them
    /// (node 1 initializes the cluster) and `args` after the standard flags. Returns once the
    /// processes are spawned; see [`Cluster::wait_ready`].
    pub fn start(size: u64, args: &[&str]) -> Cluster {
        assert!(size >= 1);
        let addrs: Vec<SocketAddr> = (0..size).map(|_| free_addr()).collect();
        let peers = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = addrs
            .into_iter()
            .enumerate()
            .map(|(i, addr)| NodeProc {
                id: i as u64 + 1,
                addr,
                home: tempfile::Builder::new()
                    .prefix(&format!("settdb-node{}-", i + 1))
                    .tempdir()
                    .expect("a temporary directory"),
                args: args.iter().map(|s| s.to_string()).collect(),
                child: None,
                starts: 0,
            })
            .collect();
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .expect("an HTTP client");
        let mut cluster = Cluster {
            nodes,
            peers,
            http,
            started: Instant::now(),
        };
        for id in cluster.ids() {
            cluster.start_node(id);
        }
        cluster
    }

    /// Starts `size` nodes and waits until all answer and a leader is agreed on.
    pub async fn launch(size: u64, args: &[&str], timeout: Duration) -> Cluster {
        let cluster = Cluster::start(size, args);
        cluster.wait_ready(timeout).await;
        cluster
    }

    /// Waits until every running node answers and they agree on a leader; returns it.
    pub async fn wait_ready(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        for id in self.running() {
            self.wait_up(id, deadline.saturating_duration_since(Instant::now()))
                .await;
        }
        self.wait_leader(deadline.saturating_duration_since(Instant::now()), None)
            .await
    }

    /// The node ids, running or not.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The ids of the nodes whose process runs.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// True if node `id`'s process runs.
    pub fn is_running(&self, id: u64) -> bool {
        self.node(id).child.is_some()
    }

    /// Node `id`'s address.
    pub fn addr(&self, id: u64) -> SocketAddr {
        self.node(id).addr
    }

    /// `http://<node id's address><path>`.
    pub fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{path}", self.addr(id))
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).data_dir()
    }

    /// Node `id`'s log file.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.node(id).log_path()
    }

    /// How many times node `id` was started.
    pub fn starts(&self, id: u64) -> u32 {
        self.node(id).starts
    }

    /// Replaces the flags node `id` gets after the standard ones, from its next start on.
    pub fn set_args(&mut self, id: u64, args: &[&str]) {
        self.node_mut(id).args = args.iter().map(|s| s.to_string()).collect();
    }

    fn node(&self, id: u64) -> &NodeProc {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut NodeProc {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Starts node `id`'s process (it must not be running) with its data and address as
    /// before. Returns once it is spawned; see [`Cluster::wait_up`].
    pub fn start_node(&mut self, id: u64) {
        let peers = self.peers.clone();
        let elapsed = self.started.elapsed();
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} is already running");
        node.starts += 1;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())
            .expect("opening the node's log");
        let _ = writeln!(
            &log,
            "=== test: start #{} of node {id} at +{:.3}s: {SERVER} --id {id} --listen {} --dir {} --peers {peers} {}",
            node.starts,
            elapsed.as_secs_f64(),
            node.addr,
            node.data_dir().display(),
            node.args.join(" "),
        );
        let mut cmd = Command::new(SERVER);
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(node.addr.to_string())
            .arg("--dir")
            .arg(node.data_dir())
            .arg("--peers")
            .arg(&peers)
            .args(&node.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("cloning the log file")))
            .stderr(Stdio::from(log));
        let child = spawn(cmd).unwrap_or_else(|e| panic!("starting node {id} ({SERVER}): {e}"));
        node.child = Some(child);
    }

    /// Kills node `id` with SIGKILL (no chance to sync or shut down) and reaps it.
    pub fn kill(&mut self, id: u64) {
        let elapsed = self.started.elapsed();
        let node = self.node_mut(id);
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        sigkill(&mut child);
        note(
            &node.log_path(),
            &format!(
                "=== test: SIGKILL node {id} at +{:.3}s",
                elapsed.as_secs_f64()
            ),
        );
    }

    /// Stops node `id` with SIGTERM (a clean shutdown), SIGKILL if it has not exited within
    /// `timeout`. Returns true if it exited on its own with success.
    pub async fn stop(&mut self, id: u64, timeout: Duration) -> bool {
        let mut child = self
            .node_mut(id)
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        let clean = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                _ => {
                    sigkill(&mut child);
                    break false;
                }
            }
        };
        let elapsed = self.started.elapsed();
        note(
            &self.log_path(id),
            &format!(
                "=== test: SIGTERM node {id}, {} at +{:.3}s",
                if clean { "exited" } else { "killed or failed" },
                elapsed.as_secs_f64()
            ),
        );
        clean
    }

    /// Starts node `id` again and waits until it answers.
    pub async fn restart(&mut self, id: u64, timeout: Duration) {
        self.start_node(id);
        self.wait_up(id, timeout).await;
    }

    /// Panics (with its log's tail) if node `id` was started and its process has exited.
    pub fn check_alive(&mut self, id: u64) {
        let node = self.node_mut(id);
        if let Some(child) = node.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                panic!(
                    "node {id} exited unexpectedly ({status}); its log ends:\n{}",
                    tail(&node.log_path(), TAIL_LINES)
                );
            }
        }
    }

    /// Node `id`'s metrics, or why not.
    pub async fn metrics(&self, id: u64) -> Result<Metrics, String> {
        let res = self
            .http
            .get(self.url(id, "/cluster/metrics"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| format!("node {id}: {e}"))?;
        let status = res.status();
        if status != StatusCode::OK {
            return Err(format!("node {id}: metrics answered {status}"));
        }
        let raw: Value = res.json().await.map_err(|e| format!("node {id}: {e}"))?;
        Metrics::parse(raw)
    }

    /// The metrics of every running node, in id order (an error where one does not answer).
    pub async fn all_metrics(&self) -> Vec<(u64, Result<Metrics, String>)> {
        let mut out = Vec::new();
        for id in self.running() {
            out.push((id, self.metrics(id).await));
        }
        out
    }

    /// Waits until node `id` answers its metrics; panics if its process exits meanwhile.
    pub async fn wait_up(&self, id: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let err = match self.metrics(id).await {
                Ok(_) => return,
                Err(e) => e,
            };
            if self.exited(id) {
                panic!(
                    "node {id} exited while starting; its log ends:\n{}",
                    tail(&self.log_path(id), TAIL_LINES)
                );
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not answer within {timeout:?}: {err}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// True if node `id` was started and its process is gone (without reaping it).
    fn exited(&self, id: u64) -> bool {
        match &self.node(id).child {
            // Not reaped here (that needs `&mut`): a dead child is a zombie until then.
            Some(child) => !process_alive(child.id()),
            None => true,
        }
    }

    /// Waits until a running node other than `not` says it leads and every running node
    /// names it leader; returns its id.
    pub async fn wait_leader(&self, timeout: Duration, not: Option<u64>) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.all_metrics().await;
            let leader = all
                .iter()
                .filter_map(|(_, m)| m.as_ref().ok())
                .find(|m| m.is_leader() && Some(m.id) != not)
                .map(|m| m.id);
            if let Some(leader) = leader {
                let agreed = all.iter().all(|(_, m)| {
                    m.as_ref()
                        .map(|m| m.current_leader == Some(leader))
                        .unwrap_or(false)
                });
                if agreed {
                    return leader;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader (other than {not:?}) within {timeout:?}: {}",
                summary(&all)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The leader the running nodes agree on now, if they do.
    pub async fn leader(&self) -> Option<u64> {
        let all = self.all_metrics().await;
        let leader = all
            .iter()
            .filter_map(|(_, m)| m.as_ref().ok())
            .find(|m| m.is_leader())?
            .id;
        all.iter()
            .all(|(_, m)| matches!(m, Ok(m) if m.current_leader == Some(leader)))
            .then_some(leader)
    }

    /// Waits until every running node has applied its whole log and they all applied the same
    /// index; returns that index. Call it once writes have stopped.
    pub async fn wait_converged(&self, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.all_metrics().await;
            let applied: Vec<Option<u64>> = all
                .iter()
                .filter_map(|(_, m)| m.as_ref().ok())
                .filter(|m| m.applied_index == m.last_log_index)
                .map(|m| m.applied_index)
                .collect();
            if applied.len() == all.len() && applied.windows(2).all(|w| w[0] == w[1]) {
                return applied.first().copied().flatten();
            }
            assert!(
                Instant::now() < deadline,
                "the nodes did not converge within {timeout:?}: {}",
                summary(&all)
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every key of node `id`'s state machine with its value, in key order, read as the node
    /// has it (`consistency=stale`, up to 100,000 keys).
    pub async fn scan_stale(&self, id: u64) -> Result<Vec<(String, String)>, String> {
        let res = self
            .http
            .get(self.url(id, "/scan"))
            .query(&[
                ("prefix", ""),
                ("limit", "100000"),
                ("consistency", "stale"),
            ])
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| format!("node {id}: scan: {e}"))?;
        let status = res.status();
        let body = res
            .text()
            .await
            .map_err(|e| format!("node {id}: scan: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!("node {id}: scan answered {status}: {body}"));
        }
        let pairs: Vec<Value> =
            serde_json::from_str(&body).map_err(|e| format!("node {id}: scan: {e}"))?;
        pairs
            .into_iter()
            .map(|p| match (p["key"].as_str(), p["value"].as_str()) {
                (Some(k), Some(v)) => Ok((k.to_string(), v.to_string())),
                _ => Err(format!("node {id}: scan: a pair is not text: {p}")),
            })
            .collect()
    }

    /// A client of the KV API over all the cluster's nodes (running or not: it tries them).
    pub fn client(&self) -> KvClient {
        KvClient::new(self.nodes.iter().map(|n| n.addr.to_string()).collect())
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        tail(&self.log_path(id), lines)
    }

    /// Prints the last `lines` lines of every node's log to stderr.
    pub fn dump_logs(&self, lines: usize) {
        for node in &self.nodes {
            eprintln!(
                "----- node {} ({}, {}) log, last {lines} lines: {}\n{}",
                node.id,
                node.addr,
                if node.child.is_some() {
                    "running"
                } else {
                    "not running"
                },
                node.log_path().display(),
                tail(&node.log_path(), lines)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            eprintln!("===== the test failed; the nodes' logs end:");
            self.dump_logs(TAIL_LINES);
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                sigkill(&mut child);
            }
        }
        if panicking {
            // Keep the directories for a look after the test.
            if std::env::var_os("SETTDB_TEST_KEEP").is_some() {
                for node in &mut self.nodes {
                    let home = std::mem::replace(
                        &mut node.home,
                        tempfile::tempdir().expect("a temporary directory"),
                    );
                    eprintln!(
                        "kept node {}'s directory {}",
                        node.id,
                        home.keep().display()
                    );
                }
            }
        }
    }
}

/// One line per node: id, state, leader, term, log, applied, snapshot, purged.
pub fn summary(all: &[(u64, Result<Metrics, String>)]) -> String {
    all.iter()
        .map(|(id, m)| match m {
            Ok(m) => format!(
                "[node {id}: {} leader={:?} term={} last_log={:?} applied={:?} snapshot={:?} purged={:?}]",
                m.state,
                m.current_leader,
                m.current_term,
                m.last_log_index,
                m.applied_index,
                m.snapshot_index,
                m.purged_index
            ),
            Err(e) => format!("[node {id}: {e}]"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn note(log: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().append(true).open(log) {
        let _ = writeln!(f, "{line}");
    }
}

/// The last `lines` lines of a file (lossy UTF-8).
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Spawns `cmd` from a thread that lives as long as the test process: on Linux the child
/// gets `PR_SET_PDEATHSIG` = SIGKILL, which fires when the thread that spawned it ends, so
/// that thread must outlive every test (a runtime's blocking thread would not).
fn spawn(mut cmd: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    die_with_parent(&mut cmd);
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("settdb-test-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting the spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec; it only calls prctl and
    // getppid (async-signal-safe) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The test died between fork and prctl: do not outlive it.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Sends `sig` to the child (not yet reaped, so its pid is still its own).
#[allow(unsafe_code)]
fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// SIGKILL, then reap.
fn sigkill(child: &mut Child) {
    signal(child, libc::SIGKILL);
    let _ = child.wait();
}

/// True if `pid` exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => {
            if Path::new("/proc/self").exists() {
                false
            } else {
                // No procfs: assume alive; the deadline catches a dead node.
                true
            }
        }
    }
}

/// The answer to a request after redirects and retries.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The final status (not 307 or 503 unless the retries ran out on them).
    pub status: StatusCode,
    /// The body.
    pub body: String,
    /// The node address that answered.
    pub addr: String,
    /// Attempts made (1 if the first node answered).
    pub attempts: u32,
}

/// Why a request has no final answer: the retries or the deadline ran out. A write may still
/// have been applied (or be applied later).
#[derive(Clone, Debug)]
pub struct Failed {
    /// The last error or unwanted answer.
    pub last: String,
    /// Attempts made.
    pub attempts: u32,
    /// True if some attempt may have reached a node and been acted on (a timeout, a dropped
    /// connection, a 503): the request's effect is unknown rather than absent.
    pub maybe_applied: bool,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no answer after {} attempts (maybe applied: {}): {}",
            self.attempts, self.maybe_applied, self.last
        )
    }
}

/// A KV client over the nodes' addresses: it sends to the node it last found leading, follows
/// 307 redirects itself, and on a connection error, a timeout or a 503 tries the next node
/// after a short pause, within `max_attempts` and `deadline` per request. Clones share the
/// leader hint and the connection pool.
#[derive(Clone, Debug)]
pub struct KvClient {
    http: reqwest::Client,
    addrs: Arc<Vec<String>>,
    hint: Arc<AtomicUsize>,
    /// Attempts per request.
    pub max_attempts: u32,
    /// Time per request, all attempts included.
    pub deadline: Duration,
    /// Time per attempt: above the server's `--request-timeout-ms` (5 s by default), so the
    /// server's 503 comes first.
    pub attempt_timeout: Duration,
}

impl KvClient {
    /// A client of the nodes at `addrs` (`host:port`).
    pub fn new(addrs: Vec<String>) -> KvClient {
        assert!(!addrs.is_empty());
        let http = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client");
        KvClient {
            http,
            addrs: Arc::new(addrs),
            hint: Arc::new(AtomicUsize::new(0)),
            max_attempts: 100,
            deadline: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(6),
        }
    }

    /// Sends `method path` with `body` until a node gives a final answer (anything but a
    /// redirect, a 503 or a transport error), following redirects and retrying other nodes.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Reply, Failed> {
        let start = Instant::now();
        let n = self.addrs.len();
        let mut target = self.addrs[self.hint.load(Ordering::Relaxed) % n].clone();
        let mut maybe_applied = false;
        let mut last = String::from("no attempt made");
        let mut pause = Duration::from_millis(10);
        let mut redirects_in_a_row = 0;
        for attempt in 1..=self.max_attempts {
            let left = self.deadline.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(Failed {
                    last: format!("deadline of {:?} passed; last: {last}", self.deadline),
                    attempts: attempt - 1,
                    maybe_applied,
                });
            }
            let mut req = self
                .http
                .request(method.clone(), format!("http://{target}{path}"))
                .timeout(self.attempt_timeout.min(left));
            if let Some(body) = body {
                req = req.body(body.to_string());
            }
            let sent = req.send().await;
            if !matches!(&sent, Ok(res) if res.status() == StatusCode::TEMPORARY_REDIRECT) {
                redirects_in_a_row = 0;
            }
            let retry_elsewhere = match sent {
                Ok(res) => {
                    let status = res.status();
                    let location = res
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let text = match res.text().await {
                        Ok(text) => text,
                        Err(e) => {
                            // The answer was cut off: the node may have acted on it.
                            maybe_applied = true;
                            last = format!("{target}: reading the answer: {e}");
                            self.next_node(&mut target);
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_millis(200));
                            continue;
                        }
                    };
                    if status == StatusCode::TEMPORARY_REDIRECT {
                        match location.as_deref().and_then(host_of) {
                            Some(leader) => {
                                last = format!("{target}: 307 to {leader}");
                                if let Some(i) = self.addrs.iter().position(|a| *a == leader) {
                                    self.hint.store(i, Ordering::Relaxed);
                                }
                                target = leader;
                                // Nodes naming each other during an election: pause.
                                redirects_in_a_row += 1;
                                if redirects_in_a_row > 2 {
                                    tokio::time::sleep(pause).await;
                                    pause = (pause * 2).min(Duration::from_millis(200));
                                }
                                continue;
                            }
                            None => {
                                last = format!("{target}: 307 without a usable location: {text}");
                                true
                            }
                        }
                    } else if status == StatusCode::SERVICE_UNAVAILABLE {
                        // No leader known yet, or no quorum in time (a write may commit later).
                        maybe_applied = true;
                        last = format!("{target}: 503: {text}");
                        true
                    } else {
                        if let Some(i) = self.addrs.iter().position(|a| *a == target) {
                            self.hint.store(i, Ordering::Relaxed);
                        }
                        return Ok(Reply {
                            status,
                            body: text,
                            addr: target,
                            attempts: attempt,
                        });
                    }
                }
                Err(e) => {
                    // Refused before sending: not applied. Anything else (a timeout, a reset
                    // connection from the pool) may have reached the node.
                    if !e.is_connect() {
                        maybe_applied = true;
                    }
                    last = format!("{target}: {e}");
                    true
                }
            };
            if retry_elsewhere {
                self.next_node(&mut target);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
        Err(Failed {
            last,
            attempts: self.max_attempts,
            maybe_applied,
        })
    }

    /// Moves `target` to the node after it and makes that the hint.
    fn next_node(&self, target: &mut String) {
        let n = self.addrs.len();
        let i = self
            .addrs
            .iter()
            .position(|a| a == target)
            .map_or(0, |i| (i + 1) % n);
        self.hint.store(i, Ordering::Relaxed);
        *target = self.addrs[i].clone();
    }

    /// `PUT /kv/{key}`: the index the write was applied at.
    pub async fn put(&self, key: &str, value: &str) -> Result<Written, Failed> {
        let path = format!("/kv/{key}");
        let reply = self.send(Method::PUT, &path, Some(value)).await?;
        index_of(reply)
    }

    /// `DELETE /kv/{key}`: the index the delete was applied at.
    pub async fn delete(&self, key: &str) -> Result<Written, Failed> {
        let path = format!("/kv/{key}");
        let reply = self.send(Method::DELETE, &path, None).await?;
        index_of(reply)
    }

    /// A linearizable `GET /kv/{key}`: the value, or none if absent.
    pub async fn get(&self, key: &str) -> Result<Option<String>, Failed> {
        let reply = self.send(Method::GET, &format!("/kv/{key}"), None).await?;
        match reply.status {
            StatusCode::OK => Ok(Some(reply.body)),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(Failed {
                last: format!("{}: {status}: {}", reply.addr, reply.body),
                attempts: reply.attempts,
                maybe_applied: false,
            }),
        }
    }
}

/// An acknowledged write.
#[derive(Clone, Copy, Debug)]
pub struct Written {
    /// The log index it was applied at.
    pub index: u64,
    /// Attempts it took (1: the first node asked answered; redirects count).
    pub attempts: u32,
}

fn index_of(reply: Reply) -> Result<Written, Failed> {
    if reply.status == StatusCode::OK {
        if let Some(index) = serde_json::from_str::<Value>(&reply.body)
            .ok()
            .and_then(|v| v["index"].as_u64())
        {
            return Ok(Written {
                index,
                attempts: reply.attempts,
            });
        }
    }
    // A final answer that is not a success (400, 413, ...): the write was refused.
    Err(Failed {
        last: format!("{}: {}: {}", reply.addr, reply.status, reply.body),
        attempts: reply.attempts,
        maybe_applied: false,
    })
}

/// `host:port` of an `http://host:port/...` URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

/// Waits until `done()` holds, polling; panics with `what` and `state()` past `timeout`.
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}: {}",
            state()
        );
        tokio::time::sleep(POLL).await;
    }
}

//! Replicated put throughput and latency: `settdb-server` clusters of 1 and 3 nodes on this
//! machine (processes on 127.0.0.1), driven over HTTP by concurrent clients that each put
//! their own keys for a fixed time. The 1-node cluster is a single SettDB behind the same
//! server (its raft log still synced per batch of writes); the 3-node one waits for a quorum
//! (2 of 3 logs synced) before each answer.
//!
//! ```text
//! cargo build --release -p settdb-server --examples
//! target/release/examples/replication_bench [--seconds 5] [--clients 1,16,64] [--value-bytes 100]
//! ```
//!
//! `--reads` measures linearizable GETs of 1,000 preloaded keys instead of puts.
//! `--target HOST:PORT` drives a running cluster's leader instead (one row per `--clients`).
//!
//! Prints one markdown row per (nodes, clients): puts/s, p50/p99/p99.9 latency in µs.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

struct Args {
    seconds: u64,
    clients: Vec<usize>,
    value_bytes: usize,
    nodes: Vec<u64>,
    /// Linearizable GETs of 1,000 preloaded keys instead of puts.
    reads: bool,
    server: PathBuf,
    /// Drive this running node (its cluster's leader) instead of starting clusters.
    target: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/examples/replication_bench -> target/<profile>/settdb-server
    let default_server = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("settdb-server"))
        .unwrap_or_default();
    let mut args = Args {
        seconds: 5,
        clients: vec![1, 16, 64],
        value_bytes: 100,
        nodes: vec![1, 3],
        reads: false,
        server: default_server,
        target: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let list = |v: String| -> Result<Vec<u64>, String> {
            v.split(',')
                .map(|x| {
                    x.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{x:?} is not a number"))
                })
                .collect()
        };
        match flag.as_str() {
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|_| "--seconds takes a number")?
            }
            "--clients" => args.clients = list(value()?)?.into_iter().map(|c| c as usize).collect(),
            "--value-bytes" => {
                args.value_bytes = value()?
                    .parse()
                    .map_err(|_| "--value-bytes takes a number")?
            }
            "--nodes" => args.nodes = list(value()?)?,
            "--reads" => args.reads = true,
            "--server" => args.server = value()?.into(),
            "--target" => args.target = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.target.is_none() && !args.server.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p settdb-server` or pass --server",
            args.server.display()
        ));
    }
    if args.seconds == 0 || args.clients.contains(&0) || args.nodes.contains(&0) {
        return Err("--seconds, --clients and --nodes must be positive".into());
    }
    Ok(args)
}

/// A cluster of server processes, killed on drop.
struct Cluster {
    children: Vec<Child>,
    addrs: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_cluster(server: &PathBuf, n: u64) -> Result<Cluster, String> {
    let dir = tempfile::tempdir_in(std::env::current_dir().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let addrs: Vec<String> = (0..n)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.to_string())
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut children = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let child = Command::new(server)
            .args([
                "--id",
                &(i + 1).to_string(),
                "--listen",
                addr,
                "--peers",
                &peers,
            ])
            .arg("--dir")
            .arg(dir.path().join(format!("n{}", i + 1)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", server.display()))?;
        children.push(child);
    }
    Ok(Cluster {
        children,
        addrs,
        _dir: dir,
    })
}

/// The leader's address once every node names the same leader.
async fn leader(http: &reqwest::Client, addrs: &[String]) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut leaders = Vec::new();
        for a in addrs {
            let m: Option<serde_json::Value> =
                match http.get(format!("http://{a}/cluster/metrics")).send().await {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
            leaders.push(m.and_then(|m| m["raft"]["current_leader"].as_u64()));
        }
        if let Some(Some(l)) = leaders.first() {
            if leaders.iter().all(|x| *x == Some(*l)) {
                return Ok(addrs[*l as usize - 1].clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("no leader within 20 s".into())
}

async fn run(args: &Args, nodes: u64, clients: usize) -> Result<(f64, Histogram<u64>), String> {
    let cluster = match &args.target {
        Some(_) => None,
        None => Some(start_cluster(&args.server, nodes)?),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(clients)
        .build()
        .map_err(|e| e.to_string())?;
    let leader = Arc::new(match (&args.target, &cluster) {
        (Some(target), _) => target.clone(),
        (None, Some(cluster)) => leader(&http, &cluster.addrs).await?,
        (None, None) => return Err("no cluster".into()),
    });
    let value = Arc::new("v".repeat(args.value_bytes));
    const READ_KEYS: u64 = 1_000;
    if args.reads {
        let ops: Vec<serde_json::Value> = (0..READ_KEYS)
            .map(|k| serde_json::json!({"op": "put", "key": format!("bench/r/{k:04}"), "value": *value}))
            .collect();
        let res = http
            .post(format!("http://{leader}/batch"))
            .json(&serde_json::json!({ "ops": ops }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("preloading answered {}", res.status()));
        }
    }
    let reads = args.reads;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, leader, value) = (http.clone(), leader.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut i = 0u64;
            while Instant::now() < until {
                let t = Instant::now();
                let req = if reads {
                    let k = (c as u64 * 7_919 + i * 104_729) % READ_KEYS;
                    http.get(format!("http://{leader}/kv/bench/r/{k:04}"))
                } else {
                    http.put(format!("http://{leader}/kv/bench/{c:03}/{i:010}"))
                        .body(value.as_str().to_owned())
                };
                let res = req.send().await.map_err(|e| e.to_string())?;
                if !res.status().is_success() {
                    return Err(format!(
                        "{} answered {}: {}",
                        if reads { "get" } else { "put" },
                        res.status(),
                        res.text().await.unwrap_or_default()
                    ));
                }
                hist.record(t.elapsed().as_micros() as u64).ok();
                i += 1;
            }
            Ok::<_, String>(hist)
        }));
    }
    let mut all = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    for t in tasks {
        let h = t.await.map_err(|e| e.to_string())??;
        all.add(h).map_err(|e| e.to_string())?;
    }
    let secs = started.elapsed().as_secs_f64();
    drop(cluster);
    Ok((all.len() as f64 / secs, all))
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("replication_bench: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "| nodes | clients | {}/s | p50 µs | p99 µs | p99.9 µs |  ({} s each, {} B values)",
        if args.reads {
            "linearizable gets"
        } else {
            "puts"
        },
        args.seconds,
        args.value_bytes
    );
    println!("|---|---|---|---|---|---|");
    for &nodes in &args.nodes {
        for &clients in &args.clients {
            match run(&args, nodes, clients).await {
                Ok((rate, h)) => println!(
                    "| {nodes} | {clients} | {rate:.0} | {} | {} | {} |",
                    h.value_at_quantile(0.5),
                    h.value_at_quantile(0.99),
                    h.value_at_quantile(0.999)
                ),
                Err(e) => {
                    eprintln!("replication_bench: {nodes} nodes, {clients} clients: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}

//! Three nodes in one process on 127.0.0.1, driven through their HTTP API: replication,
//! leader redirects, linearizable and stale reads, atomic batches, and bad input (oversized
//! requests, non-text values, unknown node ids, another node's directory, lost quorum).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use reqwest::{redirect, StatusCode};
use serde_json::Value;
use settdb_server::{Node, NodeConfig, StartError};

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Cluster {
    http: reqwest::Client,
    nodes: Vec<Option<Node>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start(n: u64, request_timeout: Duration) -> Cluster {
        let addrs: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect();
        let peers: BTreeMap<u64, String> =
            (1..=n).zip(addrs.iter().map(|a| a.to_string())).collect();
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let config = NodeConfig {
                peers: peers.clone(),
                request_timeout,
                ..NodeConfig::new(i as u64 + 1, *addr, dir.path())
            };
            nodes.push(Some(Node::start(config).await.unwrap()));
            dirs.push(dir);
        }
        Cluster {
            http: client(),
            nodes,
            _dirs: dirs,
        }
    }

    async fn get(&self, id: u64, path: &str) -> reqwest::Response {
        self.http.get(self.url(id, path)).send().await.unwrap()
    }

    async fn put(&self, id: u64, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        client()
            .put(self.url(id, path))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, id: u64, path: &str) -> reqwest::Response {
        self.http.delete(self.url(id, path)).send().await.unwrap()
    }

    async fn post(&self, id: u64, path: &str) -> reqwest::Response {
        self.http.post(self.url(id, path)).send().await.unwrap()
    }

    async fn post_json(&self, id: u64, path: &str, body: &Value) -> reqwest::Response {
        client()
            .post(self.url(id, path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    fn url(&self, id: u64, path: &str) -> String {
        let node = self.nodes[id as usize - 1].as_ref().unwrap();
        format!("http://{}{path}", node.addr())
    }

    /// The leader every live node agrees on, waiting up to 10 s for one.
    async fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leaders: Vec<Option<u64>> = self
                .nodes
                .iter()
                .flatten()
                .map(|n| n.raft().metrics().borrow().current_leader)
                .collect();
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l)) {
                    return *l;
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn shutdown(&mut self, id: u64) {
        let node = self.nodes[id as usize - 1].take().unwrap();
        node.shutdown().await.unwrap();
    }
}

async fn json(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let body = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_redirect_and_refuse_bad_input() {
    let cluster = Cluster::start(3, Duration::from_secs(5)).await;
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|&i| i != leader).unwrap();

    // A write through the leader is readable there at once (linearizable read).
    let (status, body) = json(cluster.put(leader, "/kv/hello", "world").await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let index = body["index"].as_u64().unwrap();
    let got = cluster.get(leader, "/kv/hello").await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.text().await.unwrap(), "world");

    // A follower answers a write and a linearizable read with the leader's address.
    for res in [
        cluster.put(follower, "/kv/x", "1").await,
        cluster.get(follower, "/kv/hello").await,
    ] {
        assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
        let location = res.headers()["location"].to_str().unwrap().to_string();
        let (_, body) = json(res).await;
        assert_eq!(body["leader_id"].as_u64(), Some(leader));
        let leader_addr = cluster.nodes[leader as usize - 1]
            .as_ref()
            .unwrap()
            .addr()
            .to_string();
        assert_eq!(body["leader_addr"].as_str(), Some(leader_addr.as_str()));
        assert!(
            location.starts_with(&format!("http://{leader_addr}/")),
            "{location}"
        );
    }
    // The redirected write was not applied anywhere.
    let missing = cluster.get(leader, "/kv/x").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Every node applies the write at the same index; a stale read on a follower sees it then.
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in 1..=3u64 {
        loop {
            let node = cluster.nodes[id as usize - 1].as_ref().unwrap();
            if node.reader().applied_index() >= Some(index) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} did not apply index {index}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let res = cluster.get(id, "/kv/hello?consistency=stale").await;
        assert_eq!(res.text().await.unwrap(), "world");
    }

    // A batch is applied atomically at one index; a later write to a key in it wins.
    let batch = serde_json::json!({"ops": [
        {"op": "put", "key": "b/1", "value": "one"},
        {"op": "put", "key": "b/2", "value": "two"},
        {"op": "delete", "key": "hello"},
        {"op": "put", "key": "b/1", "value": "uno"},
    ]});
    let (status, body) = json(cluster.post_json(leader, "/batch", &batch).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["index"].as_u64().unwrap() > index);
    let (status, scan) = json(cluster.get(leader, "/scan?prefix=b/").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        scan,
        serde_json::json!([{"key": "b/1", "value": "uno"}, {"key": "b/2", "value": "two"}])
    );
    let gone = cluster.get(leader, "/kv/hello").await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // DELETE through the API.
    let res = cluster.delete(leader, "/kv/b/2").await;
    assert_eq!(res.status(), StatusCode::OK);
    let (_, scan) = json(cluster.get(leader, "/scan?prefix=b/&limit=10").await).await;
    assert_eq!(scan.as_array().unwrap().len(), 1);

    // Bad input: each a clear error, nothing written.
    let big = vec![b'v'; (1 << 20) + 1];
    let res = cluster.put(leader, "/kv/big", big).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let res = cluster.put(leader, "/kv/bin", vec![0xff, 0xfe]).await;
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
    let res = cluster.get(leader, "/kv/hello?consistency=eventual").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = cluster
        .post_json(leader, "/batch", &serde_json::json!({"ops": []}))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = cluster
        .post_json(
            leader,
            "/batch",
            &serde_json::json!({"ops": [{"op": "merge", "key": "k"}]}),
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let res = cluster.get(leader, "/scan?limit=100001").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A membership naming a node that was never added: refused, membership unchanged.
    let res = cluster
        .post_json(
            leader,
            "/cluster/change-membership",
            &serde_json::json!({"voters": [1, 2, 3, 9]}),
        )
        .await;
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains('9'), "{body}");
    let (_, metrics) = json(cluster.get(leader, "/cluster/metrics").await).await;
    let voters = &metrics["raft"]["membership_config"]["membership"]["configs"];
    assert_eq!(voters, &serde_json::json!([[1, 2, 3]]));
    // Initializing again is refused.
    let res = cluster.post(leader, "/cluster/init").await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    let mut cluster = cluster;
    for id in 1..=3 {
        cluster.shutdown(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_quorum_answers_503_never_a_wrong_value() {
    let mut cluster = Cluster::start(3, Duration::from_millis(1_500)).await;
    let leader = cluster.leader().await;
    let res = cluster.put(leader, "/kv/k", "before").await;
    assert_eq!(res.status(), StatusCode::OK);
    for id in (1..=3).filter(|&i| i != leader) {
        cluster.shutdown(id).await;
    }
    // The leader alone can neither commit a write nor confirm a linearizable read.
    let started = Instant::now();
    let (status, body) = json(cluster.put(leader, "/kv/k", "after").await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (status, body) = json(cluster.get(leader, "/kv/k").await).await;
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TEMPORARY_REDIRECT,
        "a linearizable read without quorum answered {status}: {body}"
    );
    // A stale read says what this node has applied: the last committed value, not the
    // uncommitted write.
    let res = cluster.get(leader, "/kv/k?consistency=stale").await;
    assert_eq!(res.text().await.unwrap(), "before");
    cluster.shutdown(leader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_node_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let peers: BTreeMap<u64, String> = [(1, addr.to_string())].into();
    let one = Node::start(NodeConfig {
        peers: peers.clone(),
        ..NodeConfig::new(1, addr, dir.path())
    })
    .await
    .unwrap();
    // The same directory while node 1 runs: the directory lock.
    let err = Node::start(NodeConfig::new(1, free_addr(), dir.path()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock"), "{err}");
    one.shutdown().await.unwrap();
    // Node 2 on node 1's directory.
    match Node::start(NodeConfig::new(2, free_addr(), dir.path())).await {
        Err(StartError::Storage(settdb_raft::Error::WrongNode {
            found: 1,
            expected: 2,
            ..
        })) => {}
        other => panic!("expected WrongNode, got {other:?}"),
    }
    // Peers that do not list the node, and node id 0.
    let other = tempfile::tempdir().unwrap();
    let err = Node::start(NodeConfig {
        peers,
        ..NodeConfig::new(5, free_addr(), other.path())
    })
    .await
    .unwrap_err();
    assert!(matches!(err, StartError::Config(_)), "{err}");
    let err = Node::start(NodeConfig::new(0, free_addr(), other.path()))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Config(_)), "{err}");
    // Node 1 restarts on its own directory with its data.
    let node = Node::start(NodeConfig::new(1, free_addr(), dir.path()))
        .await
        .unwrap();
    assert!(node.raft().is_initialized().await.unwrap());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_joins_as_a_learner_and_becomes_a_voter() {
    let mut cluster = Cluster::start(3, Duration::from_secs(5)).await;
    let leader = cluster.leader().await;
    for i in 0..50 {
        let res = cluster
            .put(leader, &format!("/kv/k{i:02}"), format!("v{i}"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    // Node 4 starts with no peers: it waits to be added.
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let four = Node::start(NodeConfig::new(4, addr, dir.path()))
        .await
        .unwrap();
    let res = cluster
        .post_json(
            leader,
            "/cluster/add-learner",
            &serde_json::json!({"id": 4, "addr": addr.to_string()}),
        )
        .await;
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // add-learner returns once the learner caught up with the log.
    let leader_applied = cluster.nodes[leader as usize - 1]
        .as_ref()
        .unwrap()
        .reader()
        .applied_index();
    let deadline = Instant::now() + Duration::from_secs(10);
    while four.reader().applied_index() < leader_applied {
        assert!(Instant::now() < deadline, "the learner did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        four.reader().get(b"k49").unwrap().as_deref(),
        Some(&b"v49"[..])
    );
    let res = cluster
        .post_json(
            leader,
            "/cluster/change-membership",
            &serde_json::json!({"voters": [1, 2, 3, 4]}),
        )
        .await;
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let voters = four
        .raft()
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut voters = voters;
    while voters != [1, 2, 3, 4] {
        assert!(
            Instant::now() < deadline,
            "node 4 never saw itself a voter: {voters:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        voters = four
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
    }
    // Writes now need 3 of 4: still fine with all up, and node 4 gets them.
    let res = cluster.put(leader, "/kv/after", "join").await;
    let (status, body) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let index = body["index"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while four.reader().applied_index() < Some(index) {
        assert!(Instant::now() < deadline, "node 4 did not apply the write");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        four.reader().get(b"after").unwrap().as_deref(),
        Some(&b"join"[..])
    );
    four.shutdown().await.unwrap();
    for id in 1..=3 {
        cluster.shutdown(id).await;
    }
}

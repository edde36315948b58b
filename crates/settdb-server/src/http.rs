//! The HTTP routes: the KV API, the admin calls and the raft RPCs (see the crate docs).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use openraft::error::{ClientWriteError, ForwardToLeader, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use settdb_raft::{NodeId, Op, Request, TypeConfig};

use crate::node::AppState;

/// Raft RPC bodies may carry many entries or a snapshot chunk: their own, larger limit.
const RAFT_BODY_LIMIT: usize = 256 << 20;

pub(crate) fn router(state: AppState, max_request_bytes: usize) -> Router {
    let raft = Router::new()
        .route("/raft/append", post(raft_append))
        .route("/raft/vote", post(raft_vote))
        .route("/raft/snapshot", post(raft_snapshot))
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT));
    Router::new()
        .route("/kv/{*key}", put(kv_put).get(kv_get).delete(kv_delete))
        .route("/scan", get(kv_scan))
        .route("/batch", post(kv_batch))
        .route("/cluster/init", post(cluster_init))
        .route("/cluster/add-learner", post(cluster_add_learner))
        .route(
            "/cluster/change-membership",
            post(cluster_change_membership),
        )
        .route("/cluster/metrics", get(cluster_metrics))
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .merge(raft)
        .with_state(state)
}

/// An error answer: a status and a one-line JSON message (and, for a follower, the leader).
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    leader: Option<(Option<NodeId>, Option<String>)>,
    location: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            leader: None,
            location: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// "Not the leader": 307 to the same path on the leader when it is known, 503 when not.
    fn forward(f: &ForwardToLeader<NodeId, BasicNode>, path: &str) -> Self {
        let addr = f.leader_node.as_ref().map(|n| n.addr.clone());
        let mut e = match &addr {
            Some(addr) => {
                let mut e = ApiError::new(
                    StatusCode::TEMPORARY_REDIRECT,
                    match f.leader_id {
                        Some(id) => format!("this node is not the leader; node {id} at {addr} is"),
                        None => format!("this node is not the leader; the node at {addr} is"),
                    },
                );
                e.location = Some(format!("http://{addr}{path}"));
                e
            }
            None => ApiError::unavailable(
                "this node is not the leader and knows no leader (an election is under way)",
            ),
        };
        e.leader = Some((f.leader_id, addr));
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some((id, addr)) = self.leader {
            body["leader_id"] = json!(id);
            body["leader_addr"] = json!(addr);
        }
        let mut res = (self.status, Json(body)).into_response();
        if let Some(location) = self.location {
            if let Ok(v) = location.parse() {
                res.headers_mut().insert(header::LOCATION, v);
            }
        }
        res
    }
}

/// Runs `f` within the request timeout; past it, 503 naming what did not finish.
async fn within<T>(
    state: &AppState,
    what: &str,
    f: impl Future<Output = T>,
) -> Result<T, ApiError> {
    tokio::time::timeout(state.request_timeout, f).await.map_err(|_| {
        ApiError::unavailable(format!(
            "{what} not confirmed by a quorum within {:?} (no quorum?); a write may still commit later",
            state.request_timeout
        ))
    })
}

async fn write(
    state: &AppState,
    request: Request,
    path: &str,
) -> Result<Json<serde_json::Value>, ApiError> {
    request.validate().map_err(ApiError::bad_request)?;
    let res = within(state, "the write was", state.proposer.write(request)).await?;
    match res {
        Some(Ok(r)) => match r.refused {
            Some(why) => Err(ApiError::bad_request(why)),
            None => Ok(Json(json!({ "index": r.index }))),
        },
        Some(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(ApiError::forward(&f, path))
        }
        Some(Err(e)) => Err(ApiError::unavailable(e.to_string())),
        None => Err(ApiError::unavailable("the node is shutting down")),
    }
}

/// Confirms this node leads and its state machine has applied up to that point, unless the
/// read asked for stale consistency.
async fn read_barrier(
    state: &AppState,
    consistency: Option<&str>,
    path: &str,
) -> Result<(), ApiError> {
    match consistency {
        None | Some("linearizable") => {}
        Some("stale") => return Ok(()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown consistency {other:?}: use linearizable (the default) or stale"
            )))
        }
    }
    match within(state, "the read was", state.reads.confirm()).await? {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => match e.forward_to_leader::<BasicNode>() {
            Some(f) => Err(ApiError::forward(f, path)),
            None => Err(ApiError::unavailable(e.to_string())),
        },
        None => Err(ApiError::unavailable("the node is shutting down")),
    }
}

#[derive(Deserialize)]
struct ReadQuery {
    consistency: Option<String>,
}

fn text(bytes: &[u8], what: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request(format!("the {what} is not UTF-8 text")))
}

fn internal(e: settdb::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn kv_put(
    State(state): State<AppState>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let value = text(&body, "value")?;
    write(
        &state,
        Request::put(key.clone(), value),
        &format!("/kv/{key}"),
    )
    .await
}

async fn kv_delete(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    write(&state, Request::delete(key.clone()), &format!("/kv/{key}")).await
}

async fn kv_get(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<ReadQuery>,
) -> Result<Response, ApiError> {
    read_barrier(&state, q.consistency.as_deref(), &format!("/kv/{key}")).await?;
    match state.reader.get(key.as_bytes()).map_err(internal)? {
        Some(v) => Ok(text(&v, "stored value")?.into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("key {key:?} not found"),
        )),
    }
}

#[derive(Deserialize)]
struct ScanQuery {
    #[serde(default)]
    prefix: String,
    limit: Option<usize>,
    consistency: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Pair {
    key: String,
    value: String,
}

/// The most keys one scan returns.
const MAX_SCAN: usize = 100_000;

async fn kv_scan(
    State(state): State<AppState>,
    Query(q): Query<ScanQuery>,
) -> Result<Json<Vec<Pair>>, ApiError> {
    let limit = q.limit.unwrap_or(1_000);
    if limit > MAX_SCAN {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is over the maximum of {MAX_SCAN}"
        )));
    }
    read_barrier(&state, q.consistency.as_deref(), "/scan").await?;
    let pairs = state
        .reader
        .scan(q.prefix.as_bytes(), limit)
        .map_err(internal)?;
    pairs
        .into_iter()
        .map(|(k, v)| {
            Ok(Pair {
                key: text(&k, "stored key")?,
                value: text(&v, "stored value")?,
            })
        })
        .collect::<Result<_, _>>()
        .map(Json)
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum BatchOp {
    Put { key: String, value: String },
    Delete { key: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    ops: Vec<BatchOp>,
}

async fn kv_batch(
    State(state): State<AppState>,
    Json(batch): Json<Batch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ops = batch
        .ops
        .into_iter()
        .map(|op| match op {
            BatchOp::Put { key, value } => Op::Put {
                key: key.into_bytes(),
                value: value.into_bytes(),
            },
            BatchOp::Delete { key } => Op::Delete {
                key: key.into_bytes(),
            },
        })
        .collect();
    write(&state, Request { ops }, "/batch").await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Init {
    #[serde(default)]
    members: BTreeMap<NodeId, String>,
}

async fn cluster_init(
    State(state): State<AppState>,
    body: Option<Json<Init>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let members = match body {
        Some(Json(init)) if !init.members.is_empty() => init.members,
        _ => state.peers.clone(),
    };
    if members.is_empty() {
        return Err(ApiError::bad_request("no members: give {\"members\": {\"1\": \"host:port\", ...}} or start the node with --peers"));
    }
    if !members.contains_key(&state.id) {
        return Err(ApiError::bad_request(format!(
            "the members must include this node ({})",
            state.id
        )));
    }
    let nodes: BTreeMap<NodeId, BasicNode> = members
        .iter()
        .map(|(id, a)| (*id, BasicNode::new(a)))
        .collect();
    match state.raft.initialize(nodes).await {
        Ok(()) => Ok(Json(json!({ "initialized": members }))),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e.to_string())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddLearner {
    id: NodeId,
    addr: String,
}

async fn cluster_add_learner(
    State(state): State<AppState>,
    Json(req): Json<AddLearner>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if req.id == 0 {
        return Err(ApiError::bad_request("node ids are nonzero"));
    }
    let res = within(
        &state,
        "adding the learner was",
        state
            .raft
            .add_learner(req.id, BasicNode::new(&req.addr), true),
    )
    .await?;
    membership_answer(res, "/cluster/add-learner")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeMembership {
    voters: BTreeSet<NodeId>,
}

async fn cluster_change_membership(
    State(state): State<AppState>,
    Json(req): Json<ChangeMembership>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let res = within(
        &state,
        "the membership change was",
        state.raft.change_membership(req.voters, false),
    )
    .await?;
    membership_answer(res, "/cluster/change-membership")
}

fn membership_answer(
    res: Result<
        openraft::raft::ClientWriteResponse<TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
    >,
    path: &str,
) -> Result<Json<serde_json::Value>, ApiError> {
    match res {
        Ok(r) => Ok(Json(
            json!({ "index": r.log_id.index, "membership": r.membership }),
        )),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(ApiError::forward(&f, path))
        }
        // An unknown node id, a change that is already under way, ...
        Err(RaftError::APIError(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(e) => Err(ApiError::unavailable(e.to_string())),
    }
}

async fn cluster_metrics(State(state): State<AppState>) -> Json<serde_json::Value> {
    let metrics = state.raft.metrics().borrow().clone();
    Json(json!({
        "id": state.id,
        "applied_index": state.reader.applied_index(),
        "raft": metrics,
    }))
}

async fn raft_append(
    State(state): State<AppState>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> impl IntoResponse {
    Json(state.raft.append_entries(req).await)
}

async fn raft_vote(
    State(state): State<AppState>,
    Json(req): Json<VoteRequest<NodeId>>,
) -> impl IntoResponse {
    Json(state.raft.vote(req).await)
}

async fn raft_snapshot(
    State(state): State<AppState>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> impl IntoResponse {
    Json(state.raft.install_snapshot(req).await)
}

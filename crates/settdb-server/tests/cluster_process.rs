//! Three `settdb-server` processes under client load, with nodes killed by SIGKILL:
//!
//! - `leader_killed_under_load_then_restarted_catches_up_from_the_log`: 10,000 keys written by
//!   8 concurrent clients; the leader is killed part way, another node takes over and the
//!   writes go on; the killed node restarts and catches up from the leader's log (no snapshot
//!   exists in this test: `--snapshot-every 1000000`).
//! - `follower_killed_and_log_purged_then_restarted_catches_up_from_a_snapshot`: the same load
//!   with `--snapshot-every 500 --keep-logs 0`; a follower is killed, the others write and
//!   purge their logs past everything the follower has, and the restarted follower catches
//!   up by installing a snapshot.
//!
//! Both end with the same checks: all nodes applied the same index and hold identical
//! contents, every acknowledged write is there with its value, and a write whose outcome is
//! unknown is either absent or there with its value.

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{Cluster, Failed, KvClient, Written};

/// Keys each test writes (at least).
const KEYS: u64 = 10_000;
/// Concurrent writers, each writing its keys one after the other.
const WRITERS: usize = 8;
/// Acknowledged writes before the first kill.
const KILL_AFTER: u64 = 3_000;

const WAIT: Duration = Duration::from_secs(20);

fn key(i: u64) -> String {
    format!("k/{i:08}")
}

/// The value written under `key(i)`: derived from `i`, so a check needs no record of it.
fn value(i: u64) -> String {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("v{i:08}-{:016x}", x ^ (x >> 31))
}

fn key_number(key: &str) -> Option<u64> {
    key.strip_prefix("k/")?.parse().ok()
}

/// Prints a line with the time since the test started.
macro_rules! step {
    ($t0:expr, $($arg:tt)*) => {
        println!("[{:>6.2}s] {}", $t0.elapsed().as_secs_f64(), format!($($arg)*))
    };
}

/// What the writers share: the next key to take, when to stop, and counts.
#[derive(Debug, Default)]
struct Load {
    next: AtomicU64,
    /// Writers take no key at or past this.
    max: u64,
    /// Writers stop taking keys (at least `min` are taken first).
    stop: AtomicBool,
    min: u64,
    acked: AtomicU64,
    failed: AtomicU64,
    /// Acknowledged writes that took more than one attempt (a redirect included).
    retried: AtomicU64,
    /// Writers still running.
    running: AtomicU64,
}

type Results = Vec<(u64, Result<Written, Failed>)>;

/// `WRITERS` tasks writing `key(i) = value(i)` for i = 0, 1, ...: each takes the next key and
/// writes it, sequentially, until `max` keys are taken or `stop` is set and `min` are.
struct Writers {
    load: Arc<Load>,
    tasks: Vec<tokio::task::JoinHandle<Results>>,
}

impl Writers {
    fn spawn(client: KvClient, min: u64, max: u64) -> Writers {
        let load = Arc::new(Load {
            max,
            min,
            running: AtomicU64::new(WRITERS as u64),
            ..Load::default()
        });
        let tasks = (0..WRITERS)
            .map(|_| {
                let (client, load) = (client.clone(), load.clone());
                tokio::spawn(async move {
                    let mut results = Vec::new();
                    loop {
                        let i = load.next.fetch_add(1, Ordering::Relaxed);
                        if i >= load.max || (i >= load.min && load.stop.load(Ordering::Relaxed)) {
                            break;
                        }
                        let res = client.put(&key(i), &value(i)).await;
                        match &res {
                            Ok(w) => {
                                load.acked.fetch_add(1, Ordering::Relaxed);
                                if w.attempts > 1 {
                                    load.retried.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Err(_) => {
                                load.failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        results.push((i, res));
                    }
                    load.running.fetch_sub(1, Ordering::Relaxed);
                    results
                })
            })
            .collect();
        Writers { load, tasks }
    }

    fn acked(&self) -> u64 {
        self.load.acked.load(Ordering::Relaxed)
    }

    fn finished(&self) -> bool {
        self.load.running.load(Ordering::Relaxed) == 0
    }

    fn counts(&self) -> String {
        format!(
            "{} acknowledged, {} failed, {} retried",
            self.acked(),
            self.load.failed.load(Ordering::Relaxed),
            self.load.retried.load(Ordering::Relaxed)
        )
    }

    /// Stops taking keys (once `min` are taken) and waits for the writers.
    async fn finish(self) -> BTreeMap<u64, Result<Written, Failed>> {
        self.load.stop.store(true, Ordering::Relaxed);
        let mut all = BTreeMap::new();
        for task in self.tasks {
            for (i, res) in task.await.expect("a writer panicked") {
                all.insert(i, res);
            }
        }
        all
    }
}

/// Waits until the nodes converge, then checks all hold the same contents, no acknowledged
/// write is missing or wrong, and every key present was written with its value. Returns the
/// common applied index and the number of keys.
async fn check_contents(
    c: &Cluster,
    results: &BTreeMap<u64, Result<Written, Failed>>,
) -> (Option<u64>, usize) {
    let applied = c.wait_converged(WAIT).await;
    let mut scans = Vec::new();
    for id in c.running() {
        let scan = c
            .scan_stale(id)
            .await
            .unwrap_or_else(|e| panic!("scanning node {id}: {e}"));
        scans.push((id, scan));
    }
    let (first_id, first) = &scans[0];
    for (id, scan) in &scans[1..] {
        if scan != first {
            let diff = first
                .iter()
                .zip(scan.iter())
                .find(|(a, b)| a != b)
                .map(|(a, b)| {
                    format!("first difference: node {first_id} has {a:?}, node {id} has {b:?}")
                })
                .unwrap_or_else(|| "one is a prefix of the other".into());
            panic!(
                "node {first_id} holds {} keys, node {id} {}: {diff}",
                first.len(),
                scan.len()
            );
        }
    }
    let contents: BTreeMap<&str, &str> = first
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (&i, res) in results {
        match (res, contents.get(key(i).as_str())) {
            (_, Some(v)) if *v != value(i) => wrong.push(format!("{}={v:?}", key(i))),
            (Ok(w), None) => {
                missing.push(format!("{} (acknowledged at index {})", key(i), w.index))
            }
            _ => {}
        }
    }
    let unknown: Vec<&str> = contents
        .keys()
        .filter(|k| key_number(k).is_none_or(|i| !results.contains_key(&i)))
        .take(10)
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes are missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        wrong.is_empty(),
        "{} keys hold a wrong value, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(unknown.is_empty(), "keys nobody wrote: {unknown:?}");
    (applied, contents.len())
}

fn summarize_failures(results: &BTreeMap<u64, Result<Written, Failed>>) -> Vec<String> {
    results
        .iter()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| format!("{}: {e}", key(*i))))
        .collect()
}

async fn metrics(c: &Cluster, id: u64) -> cluster::Metrics {
    c.metrics(id)
        .await
        .unwrap_or_else(|e| panic!("metrics of node {id}: {e}"))
}

/// The largest `last_log_index` among the running nodes.
async fn max_last_log(c: &Cluster) -> u64 {
    let mut max = 0;
    for id in c.running() {
        max = max.max(metrics(c, id).await.last_log_index.unwrap_or(0));
    }
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_load_then_restarted_catches_up_from_the_log() {
    let _serial = cluster::serial().await;
    let t0 = Instant::now();
    let mut c = Cluster::start(
        3,
        &[
            "--snapshot-every",
            "1000000",
            "--heartbeat-ms",
            "100",
            "--request-timeout-ms",
            "5000",
        ],
    );
    let first_leader = c.wait_ready(WAIT).await;
    step!(t0, "3 nodes up, leader {first_leader}");
    let mut leaders = vec![first_leader];

    let writers = Writers::spawn(c.client(), KEYS, KEYS);
    cluster::wait_until(
        &format!("{KILL_AFTER} acknowledged writes"),
        WAIT,
        || writers.acked() >= KILL_AFTER || writers.finished(),
        || writers.counts(),
    )
    .await;
    assert!(
        !writers.finished(),
        "the writers finished before the kill: {}",
        writers.counts()
    );

    // Kill whichever node leads now.
    let victim = c.wait_leader(WAIT, None).await;
    let before = metrics(&c, victim).await;
    c.kill(victim);
    let killed_at = Instant::now();
    let acked_at_kill = writers.acked();
    // The victim's log ends at or before every entry any node had when it died.
    let log_end_at_kill = max_last_log(&c).await;
    step!(
        t0,
        "SIGKILL leader {victim} after {acked_at_kill} acknowledged writes (its applied index {:?}, term {})",
        before.applied_index,
        before.current_term
    );

    let new_leader = c.wait_leader(WAIT, Some(victim)).await;
    assert_ne!(new_leader, victim);
    leaders.push(new_leader);
    let failover = killed_at.elapsed();
    let acked_at_new_leader = writers.acked();
    step!(
        t0,
        "node {new_leader} leads {failover:?} after the kill ({acked_at_new_leader} acknowledged)"
    );

    // The writes go on through the new leader.
    cluster::wait_until(
        "1,000 more acknowledged writes through the new leader",
        WAIT,
        || writers.acked() >= acked_at_new_leader + 1_000 || writers.finished(),
        || writers.counts(),
    )
    .await;
    assert!(
        writers.acked() > acked_at_new_leader,
        "no write acknowledged after node {new_leader} took over: {}",
        writers.counts()
    );

    // Restart the killed node: it is behind and catches up while writes go on.
    c.restart(victim, WAIT).await;
    let restarted = metrics(&c, victim).await;
    let leader_at_restart = metrics(&c, new_leader).await;
    step!(
        t0,
        "node {victim} restarted: applied {:?}, log {:?}; the leader's log {:?} ({})",
        restarted.applied_index,
        restarted.last_log_index,
        leader_at_restart.last_log_index,
        writers.counts()
    );
    let leader_log_at_restart = leader_at_restart.last_log_index.unwrap_or(0);
    assert!(
        leader_log_at_restart > log_end_at_kill,
        "the cluster wrote nothing while node {victim} was down (log {leader_log_at_restart} <= {log_end_at_kill})"
    );

    let results = writers.finish().await;
    step!(t0, "writers done: {} keys attempted", results.len());
    let (applied, keys) = check_contents(&c, &results).await;
    for id in c.running() {
        c.check_alive(id);
    }
    let end = c.all_metrics().await;
    step!(
        t0,
        "converged at index {applied:?}: {}",
        cluster::summary(&end)
    );

    // Caught up from the log: no node has a snapshot or purged anything, so every entry the
    // victim lacked reached it as a log entry.
    for (id, m) in &end {
        let m = m.as_ref().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.raw["raft"]["snapshot"],
            serde_json::Value::Null,
            "node {id} has a snapshot: {}",
            m.raw
        );
        assert_eq!(
            m.raw["raft"]["purged"],
            serde_json::Value::Null,
            "node {id} purged its log: {}",
            m.raw
        );
    }
    let victim_end = metrics(&c, victim).await;
    assert_eq!(victim_end.applied_index, applied);
    assert!(applied.unwrap_or(0) > log_end_at_kill);

    let failures = summarize_failures(&results);
    let final_leader = c.leader().await;
    if final_leader.is_some_and(|l| Some(&l) != leaders.last()) {
        leaders.extend(final_leader);
    }
    println!(
        "summary: {} keys written ({} acknowledged, {} unknown, {} retried) by {WRITERS} writers; \
         leaders {leaders:?} (failover {failover:?}); node {victim} killed at {acked_at_kill} \
         acknowledged writes, caught up from the log to index {applied:?}; {keys} keys on every \
         node; {:.1}s",
        results.len(),
        results.len() - failures.len(),
        failures.len(),
        results
            .values()
            .filter(|r| matches!(r, Ok(w) if w.attempts > 1))
            .count(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "writes without an answer despite retries (the cluster was unavailable for {:?}): {:?}",
        c.client().deadline,
        &failures[..failures.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_killed_and_log_purged_then_restarted_catches_up_from_a_snapshot() {
    let _serial = cluster::serial().await;
    let t0 = Instant::now();
    let mut c = Cluster::start(
        3,
        &[
            "--snapshot-every",
            "500",
            "--keep-logs",
            "0",
            "--heartbeat-ms",
            "100",
            "--request-timeout-ms",
            "5000",
        ],
    );
    let leader = c.wait_ready(WAIT).await;
    step!(t0, "3 nodes up, leader {leader}");

    // At least KEYS keys; more if purging past the follower takes longer.
    let writers = Writers::spawn(c.client(), KEYS, 10 * KEYS);
    cluster::wait_until(
        &format!("{KILL_AFTER} acknowledged writes"),
        WAIT,
        || writers.acked() >= KILL_AFTER || writers.finished(),
        || writers.counts(),
    )
    .await;

    let leader = c.wait_leader(WAIT, None).await;
    let follower = *c
        .ids()
        .iter()
        .find(|&&id| id != leader)
        .expect("a follower");
    let before = metrics(&c, follower).await;
    c.kill(follower);
    let acked_at_kill = writers.acked();
    // Nothing the follower holds is past this index.
    let log_end_at_kill = max_last_log(&c).await;
    step!(
        t0,
        "SIGKILL follower {follower} after {acked_at_kill} acknowledged writes (its applied index {:?}, snapshot {:?}; the log ends at {log_end_at_kill})",
        before.applied_index,
        before.snapshot_index
    );

    // Write on until every live node has a snapshot past the follower's log and has purged
    // its log beyond it: the follower cannot catch up from anyone's log.
    let deadline = Instant::now() + Duration::from_secs(40);
    let purged_past = loop {
        let all = c.all_metrics().await;
        let purged: Vec<Option<u64>> = all
            .iter()
            .map(|(_, m)| m.as_ref().ok().and_then(|m| m.purged_index))
            .collect();
        if purged
            .iter()
            .all(|p| p.is_some_and(|p| p > log_end_at_kill))
        {
            step!(
                t0,
                "logs purged past {log_end_at_kill}: {}",
                cluster::summary(&all)
            );
            break purged;
        }
        assert!(
            !writers.finished(),
            "the writers stopped before the logs were purged past {log_end_at_kill}: {}; {}",
            writers.counts(),
            cluster::summary(&all)
        );
        assert!(
            Instant::now() < deadline,
            "the logs were not purged past {log_end_at_kill} in time: {}; {}",
            writers.counts(),
            cluster::summary(&all)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    c.restart(follower, WAIT).await;
    let restarted = metrics(&c, follower).await;
    step!(
        t0,
        "follower {follower} restarted: applied {:?}, snapshot {:?} ({})",
        restarted.applied_index,
        restarted.snapshot_index,
        writers.counts()
    );

    // It catches up while the writes go on.
    let deadline = Instant::now() + WAIT;
    let installed = loop {
        let m = c.metrics(follower).await;
        if let Ok(m) = &m {
            if let Some(s) = m.snapshot_index.filter(|&s| s > log_end_at_kill) {
                break s;
            }
        }
        c.check_alive(follower);
        assert!(
            Instant::now() < deadline,
            "follower {follower} did not receive a snapshot past {log_end_at_kill}: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    step!(
        t0,
        "follower {follower} installed a snapshot at index {installed}"
    );

    let results = writers.finish().await;
    step!(t0, "writers done: {} keys attempted", results.len());
    let (applied, keys) = check_contents(&c, &results).await;
    for id in c.running() {
        c.check_alive(id);
    }
    let end = c.all_metrics().await;
    step!(
        t0,
        "converged at index {applied:?}: {}",
        cluster::summary(&end)
    );
    let follower_end = metrics(&c, follower).await;
    assert_eq!(follower_end.applied_index, applied);
    assert!(
        follower_end
            .snapshot_index
            .is_some_and(|s| s > before.applied_index.unwrap_or(0)),
        "{}",
        follower_end.raw
    );

    let failures = summarize_failures(&results);
    println!(
        "summary: {} keys written ({} acknowledged, {} unknown, {} retried) by {WRITERS} writers; \
         follower {follower} killed at {acked_at_kill} acknowledged writes with its log ending at or \
         before {log_end_at_kill}; the others purged to {purged_past:?}; it installed a snapshot at \
         {installed} and converged at {applied:?}; {keys} keys on every node; {:.1}s",
        results.len(),
        results.len() - failures.len(),
        failures.len(),
        results.values().filter(|r| matches!(r, Ok(w) if w.attempts > 1)).count(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "writes without an answer despite retries: {:?}",
        &failures[..failures.len().min(10)]
    );
}

//! Snapshots carry the data, not only the metadata: a follower that installs one reads what the
//! leader's state machine held, at the same versions; an install interrupted after the file
//! was stored is finished by the next open; re-applying entries after a crash changes nothing.

use std::collections::BTreeSet;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership};
use settdb::{Db, IteratorOptions, Options};
use settdb_raft::{Request, StateReader, TypeConfig};

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn entry(index: u64, request: Request) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(request),
    }
}

/// A membership entry at 1, then entries 2..=n writing `k{i % 50}` = `v{i}` (some deleted).
fn entries(n: u64) -> Vec<Entry<TypeConfig>> {
    let mut out = vec![Entry {
        log_id: log_id(1),
        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], None)),
    }];
    for i in 2..=n {
        let key = format!("k{:02}", i % 50);
        let request = if i % 7 == 0 {
            Request::delete(key)
        } else {
            Request::put(key, format!("v{i}").repeat(1 + (i as usize % 5) * 300))
        };
        out.push(entry(i, request));
    }
    out
}

/// Every (key, version, value or tombstone) of a closed state machine's database.
fn versions(node_dir: &std::path::Path) -> Vec<(Vec<u8>, u64, Option<Vec<u8>>)> {
    let db = Db::open_managed(Options::new(node_dir.join("sm")).with_read_only(true)).unwrap();
    let txn = db.new_transaction_at(u64::MAX, false).unwrap();
    let mut it = txn
        .iter(IteratorOptions {
            all_versions: true,
            ..IteratorOptions::default()
        })
        .unwrap();
    let mut out = Vec::new();
    it.rewind().unwrap();
    while it.valid() {
        let item = it.item();
        let value = (!item.is_deleted_or_expired()).then(|| item.value().unwrap());
        out.push((item.key().to_vec(), item.version(), value));
        it.next().unwrap();
    }
    out
}

fn contents(reader: &StateReader) -> Vec<(Vec<u8>, Vec<u8>)> {
    reader.scan(b"", usize::MAX).unwrap()
}

#[tokio::test]
async fn an_installed_snapshot_holds_the_leaders_data() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_la, mut sm_a) = settdb_raft::open(a_dir.path(), 1).unwrap();
    let (_lb, mut sm_b) = settdb_raft::open(b_dir.path(), 2).unwrap();
    let responses = sm_a.apply(entries(400)).await.unwrap();
    assert_eq!(responses.len(), 400);
    assert!(responses.iter().all(|r| r.refused.is_none()));
    let snapshot = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(400)));
    // Entries after the snapshot do not leak into it.
    sm_a.apply(vec![entry(401, Request::put("late", "x"))])
        .await
        .unwrap();

    let mut incoming = sm_b.begin_receiving_snapshot().await.unwrap();
    let mut sent = sm_a.get_current_snapshot().await.unwrap().unwrap().snapshot;
    tokio::io::copy(&mut sent, &mut *incoming).await.unwrap();
    sm_b.install_snapshot(&snapshot.meta, incoming)
        .await
        .unwrap();

    let (applied, membership) = sm_b.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(400)));
    assert_eq!(membership.log_id(), &Some(log_id(1)));
    let (ra, rb) = (sm_a.reader(), sm_b.reader());
    assert_eq!(rb.applied_index(), Some(400));
    assert!(rb.get(b"late").unwrap().is_none());
    assert_eq!(ra.get(b"late").unwrap().as_deref(), Some(&b"x"[..]));
    // k13 was last written at index 363 (13 + 50 * 7), with 1 + 3 * 300 copies of "v363".
    assert_eq!(
        rb.get(b"k13").unwrap(),
        Some("v363".repeat(901).into_bytes())
    );
    assert_eq!(rb.get(b"k14").unwrap(), None, "deleted at index 364");
    let a = contents(&ra);
    let b = contents(&rb);
    assert_eq!(a.len(), b.len() + 1, "only `late` differs");
    assert_eq!(
        a.into_iter()
            .filter(|(k, _)| k != b"late")
            .collect::<Vec<_>>(),
        b
    );
    assert!(
        b.len() > 30,
        "the snapshot holds the data: {} keys",
        b.len()
    );

    // The follower goes on applying after the snapshot.
    sm_b.apply(vec![entry(401, Request::put("late", "x"))])
        .await
        .unwrap();
    assert_eq!(contents(&ra), contents(&rb));

    // Both hold the same newest version of every key (each at its entry's index + 1),
    // deletes included (older versions below the discard timestamp may be gone: flushes and
    // compactions drop them).
    ra.close().unwrap();
    rb.close().unwrap();
    let (va, vb) = (versions(a_dir.path()), versions(b_dir.path()));
    assert!(
        va.iter()
            .any(|(k, v, value)| k == b"d/k07" && *v == 358 && value.is_none()),
        "k07 deleted at index 357 is a tombstone at version 358"
    );
    assert!(
        va.iter().any(|(_, _, value)| value.is_none()),
        "deletes are versions too"
    );
    let latest = |v: Vec<(Vec<u8>, u64, Option<Vec<u8>>)>| {
        let mut m = std::collections::BTreeMap::new();
        for (k, version, value) in v {
            m.entry(k).or_insert((version, value));
        }
        m
    };
    assert_eq!(latest(va), latest(vb));
}

#[tokio::test]
async fn an_interrupted_install_is_finished_by_the_next_open() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_la, mut sm_a) = settdb_raft::open(a_dir.path(), 1).unwrap();
    sm_a.apply(entries(120)).await.unwrap();
    sm_a.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let expected = contents(&sm_a.reader());

    // The follower stored the snapshot file, then died before its database held the data:
    // an empty state machine beside a newer current.snap.
    std::fs::create_dir_all(b_dir.path().join("snapshots")).unwrap();
    std::fs::copy(
        a_dir.path().join("snapshots/current.snap"),
        b_dir.path().join("snapshots/current.snap"),
    )
    .unwrap();
    std::fs::write(
        b_dir.path().join("snapshots/incoming.snap.tmp"),
        b"half a transfer",
    )
    .unwrap();
    let (_lb, mut sm_b) = settdb_raft::open(b_dir.path(), 2).unwrap();
    assert_eq!(sm_b.applied_state().await.unwrap().0, Some(log_id(120)));
    assert_eq!(contents(&sm_b.reader()), expected);
    assert!(!b_dir.path().join("snapshots/incoming.snap.tmp").exists());
}

#[tokio::test]
async fn reapplying_entries_after_a_restart_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let all = entries(200);
    let expected = {
        let (_l, mut sm) = settdb_raft::open(dir.path(), 1).unwrap();
        sm.apply(all.clone()).await.unwrap();
        let reader = sm.reader();
        let c = contents(&reader);
        reader.close().unwrap();
        c
    };
    let (_l, mut sm) = settdb_raft::open(dir.path(), 1).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(200)));
    // Openraft re-applies from what the state machine reports; applying again anyway is
    // harmless: same keys, same versions, same values.
    sm.apply(all[100..].to_vec()).await.unwrap();
    assert_eq!(contents(&sm.reader()), expected);
}

#[tokio::test]
async fn a_refused_request_is_applied_as_nothing_on_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let (_l, mut sm) = settdb_raft::open(dir.path(), 1).unwrap();
    let responses = sm
        .apply(vec![
            entry(1, Request::put("", "v")),
            entry(2, Request::put("k", "v")),
        ])
        .await
        .unwrap();
    assert!(responses[0]
        .refused
        .as_deref()
        .unwrap()
        .contains("empty key"));
    assert_eq!(responses[1].refused, None);
    assert_eq!(contents(&sm.reader()), vec![(b"k".to_vec(), b"v".to_vec())]);
    assert_eq!(sm.reader().applied_index(), Some(2));
}

/// A damaged `current.snap` is reported by name when the node opens (it is what the node
/// would install), never installed half-read or ignored.
#[tokio::test]
async fn a_damaged_snapshot_file_is_a_clear_error_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_l, mut sm) = settdb_raft::open(dir.path(), 1).unwrap();
        sm.apply(entries(60)).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        sm.reader().close().unwrap();
    }
    let snap = dir.path().join("snapshots/current.snap");
    let good = std::fs::read(&snap).unwrap();
    let meta_len = u64::from_le_bytes(good[8..16].try_into().unwrap()) as usize;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    cases.push(("bad magic", bad_magic));
    let mut huge_len = good.clone();
    huge_len[8..16].copy_from_slice(&(16u64 << 20 | 1).to_le_bytes());
    cases.push(("over the limit", huge_len));
    cases.push(("cut short", good[..16 + meta_len / 2].to_vec()));
    cases.push(("cut short", good[..12].to_vec()));
    let mut bad_json = good.clone();
    bad_json[16] = b'#';
    cases.push(("undecodable", bad_json));
    for (what, bytes) in cases {
        // A fresh state machine that must install the snapshot: behind it.
        let node = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(node.path().join("snapshots")).unwrap();
        std::fs::write(node.path().join("snapshots/current.snap"), &bytes).unwrap();
        match settdb_raft::open(node.path(), 1) {
            Err(settdb_raft::Error::Corrupt { path, what: why }) => {
                assert!(path.ends_with("current.snap"), "{what}: {}", path.display());
                assert!(why.contains(what), "{what}: {why}");
            }
            Err(e) => panic!("{what}: expected Corrupt, got {e}"),
            Ok(_) => panic!("{what}: a damaged snapshot was accepted"),
        }
    }
    // A damaged frame inside the data is reported too, naming the file.
    let mut bad_frame = good.clone();
    let at = 16 + meta_len;
    bad_frame[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let node = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(node.path().join("snapshots")).unwrap();
    std::fs::write(node.path().join("snapshots/current.snap"), &bad_frame).unwrap();
    let err = settdb_raft::open(node.path(), 1).expect_err("a damaged frame was accepted");
    assert!(err.to_string().contains("current.snap"), "{err}");
}

/// A snapshot damaged in transfer, even in a value's bytes (which backup frames do not
/// checksum), is refused before it replaces anything: the previous snapshot file and the
/// state machine's data stay as they were. A damaged `current.snap` found at open leaves the
/// database untouched too.
#[tokio::test]
async fn a_damaged_snapshot_replaces_nothing() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_la, mut sm_a) = settdb_raft::open(a_dir.path(), 1).unwrap();
    sm_a.apply(entries(300)).await.unwrap();
    let snapshot = sm_a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = std::fs::read(a_dir.path().join("snapshots/current.snap")).unwrap();
    // Flip a byte inside a value: late in the file, where the long repeated values are.
    let at = bytes.len() - 100;

    // Node b holds its own state and snapshot first.
    let (lb, mut sm_b) = settdb_raft::open(b_dir.path(), 2).unwrap();
    sm_b.apply(entries(40)).await.unwrap();
    sm_b.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let b_snapshot_before = std::fs::read(b_dir.path().join("snapshots/current.snap")).unwrap();
    let b_before = contents(&sm_b.reader());
    bytes[at] ^= 0x01;
    let mut incoming = sm_b.begin_receiving_snapshot().await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut *incoming, &bytes)
        .await
        .unwrap();
    let err = sm_b
        .install_snapshot(&snapshot.meta, incoming)
        .await
        .expect_err("a damaged snapshot was installed");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(sm_b.applied_state().await.unwrap().0, Some(log_id(40)));
    assert_eq!(contents(&sm_b.reader()), b_before);
    let b_snapshot_after = std::fs::read(b_dir.path().join("snapshots/current.snap")).unwrap();
    assert!(
        b_snapshot_after == b_snapshot_before,
        "current.snap was replaced"
    );
    sm_b.reader().close().unwrap();
    lb.close().unwrap();
    drop((sm_b, lb));

    // The same damaged file as b's current.snap, ahead of b's state: open refuses it and
    // b's database keeps its 40 entries.
    std::fs::write(b_dir.path().join("snapshots/current.snap"), &bytes).unwrap();
    let err = settdb_raft::open(b_dir.path(), 2).expect_err("a damaged snapshot was installed");
    assert!(err.to_string().contains("checksum"), "{err}");
    std::fs::write(
        b_dir.path().join("snapshots/current.snap"),
        &b_snapshot_before,
    )
    .unwrap();
    let (_lb, sm_b) = settdb_raft::open(b_dir.path(), 2).unwrap();
    assert_eq!(contents(&sm_b.reader()), b_before);
}

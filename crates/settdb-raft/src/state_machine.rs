//! The replicated state machine: committed entries applied to a SettDB database in managed
//! mode, each entry's writes at version `log index + 1` (index 0 exists in openraft; version 0
//! does not in SettDB). Every replica applies the same entries at the same versions, so they
//! hold the same versions; a read at version `v` sees exactly the entries up to index `v - 1`.
//!
//! Keys: user keys under `d/`, and in the same write as each entry's data, `m/applied` (the
//! entry's log id) and, for a membership entry, `m/membership`, so the applied state read back
//! after a crash matches the data. Applying is idempotent (the same keys at the same versions
//! with the same values), so entries re-applied after a crash that lost the unsynced tail of
//! the state machine change nothing; the raft log, synced, is what makes them durable.
//!
//! Snapshots (`<dir>/snapshots/current.snap`, see `snapshot_file`) are durable before the log
//! is purged: building one syncs the database first. Installing one writes the received file
//! in place of `current.snap` first, then replaces the database's contents; if the process
//! dies part way, the next open finds the database behind `current.snap` and installs it
//! again. So a node never holds less than its newest snapshot.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StoredMembership,
};
use settdb::{Db, Entry};
use tokio::io::AsyncSeekExt;

use crate::request::Op;
use crate::snapshot_file::{self, Meta};
use crate::{storage_error, Error, NodeId, Response, TypeConfig};

type LogEntry = openraft::Entry<TypeConfig>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;

const DATA_PREFIX: &[u8] = b"d/";
const APPLIED: &[u8] = b"m/applied";
const MEMBERSHIP: &[u8] = b"m/membership";

const CURRENT: &str = "current.snap";
const BUILDING: &str = "building.snap.tmp";
const INCOMING: &str = "incoming.snap.tmp";

fn data_key(key: &[u8]) -> Vec<u8> {
    [DATA_PREFIX, key].concat()
}

/// What the state machine and its readers share.
#[derive(Debug)]
struct Shared {
    db: Arc<Db>,
    /// The version of the last applied entry (its index + 1); 0 before the first.
    applied_version: AtomicU64,
    /// Held for writing while a snapshot replaces the database's contents; reads and snapshot
    /// builds hold it for reading.
    gate: RwLock<()>,
    /// Serializes replacing `current.snap`.
    snapshot_lock: Mutex<()>,
    snapshot_dir: PathBuf,
}

impl Shared {
    fn current(&self) -> PathBuf {
        self.snapshot_dir.join(CURRENT)
    }

    fn read_gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The state machine of one node (openraft's `RaftStateMachine`).
#[derive(Debug)]
pub struct StateMachine {
    shared: Arc<Shared>,
    last_applied: Option<LogId<NodeId>>,
    membership: Membership,
    /// Snapshots built by this process so far (for unique snapshot ids).
    builds: u64,
}

/// Reads of the state machine at its last applied entry, for the KV API; cloning shares it.
#[derive(Clone, Debug)]
pub struct StateReader {
    shared: Arc<Shared>,
}

fn json_at<T: serde::de::DeserializeOwned>(
    db: &Db,
    key: &[u8],
    version: u64,
) -> Result<Option<T>, Error> {
    if version == 0 {
        return Ok(None);
    }
    let Some(bytes) = db.get_at(key, version)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path: db.options().dir.clone(),
            what: format!(
                "{} holds undecodable JSON: {e}",
                String::from_utf8_lossy(key)
            ),
        })
}

impl StateMachine {
    /// The state machine in `db` (managed mode), with snapshots under `snapshot_dir`. Installs
    /// `current.snap` again if the database is behind it (a crash during an install).
    pub(crate) fn open(db: Arc<Db>, snapshot_dir: &Path) -> Result<Self, Error> {
        for leftover in [BUILDING, INCOMING] {
            // Written before being renamed to current.snap: a leftover is an unfinished
            // snapshot nobody relies on.
            let path = snapshot_dir.join(leftover);
            if path.exists() {
                std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
            }
        }
        let top = db.max_version();
        let mut last_applied: Option<LogId<NodeId>> = json_at(&db, APPLIED, top)?;
        let mut membership: Membership = json_at(&db, MEMBERSHIP, top)?.unwrap_or_default();
        let current = snapshot_dir.join(CURRENT);
        if current.exists() {
            let meta = snapshot_file::read_meta(&current)?;
            if meta.last_log_id > last_applied {
                tracing::warn!(
                    snapshot = ?meta.last_log_id,
                    applied = ?last_applied,
                    "the state machine is behind its snapshot (an install was interrupted); installing it again"
                );
                let meta = snapshot_file::install(&db, &current)?;
                last_applied = meta.last_log_id;
                membership = meta.last_membership;
            }
        }
        let shared = Arc::new(Shared {
            db,
            applied_version: AtomicU64::new(last_applied.map_or(0, |l| l.index + 1)),
            gate: RwLock::new(()),
            snapshot_lock: Mutex::new(()),
            snapshot_dir: snapshot_dir.to_path_buf(),
        });
        Ok(StateMachine {
            shared,
            last_applied,
            membership,
            builds: 0,
        })
    }

    /// A reader of this state machine.
    pub fn reader(&self) -> StateReader {
        StateReader {
            shared: self.shared.clone(),
        }
    }

    fn apply_blocking(
        &mut self,
        entries: Vec<LogEntry>,
    ) -> Result<Vec<Response>, StorageError<NodeId>> {
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let write_err =
            |e: settdb::Error| storage_error(ErrorSubject::StateMachine, ErrorVerb::Write, e);
        let db = &self.shared.db;
        let mut batch = db.new_managed_write_batch().map_err(write_err)?;
        let mut responses = Vec::with_capacity(entries.len());
        for entry in entries {
            let version = entry.log_id.index + 1;
            let mut refused = None;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(request) => match request.validate() {
                    Ok(()) => {
                        // One write per key and version: the request's last write to a key
                        // wins. A stable sort keeps the ops of one key in request order.
                        let mut ops = request.ops;
                        ops.sort_by(|a, b| a.key().cmp(b.key()));
                        let mut ops = ops.into_iter().peekable();
                        while let Some(op) = ops.next() {
                            if ops.peek().is_some_and(|next| next.key() == op.key()) {
                                continue;
                            }
                            match op {
                                Op::Put { key, value } => {
                                    batch.set_entry_at(Entry::new(data_key(&key), value), version)
                                }
                                Op::Delete { key } => batch.delete_at(data_key(&key), version),
                            }
                            .map_err(write_err)?;
                        }
                    }
                    Err(why) => refused = Some(why),
                },
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    let json = serde_json::to_vec(&self.membership).map_err(|e| {
                        storage_error(ErrorSubject::StateMachine, ErrorVerb::Write, e)
                    })?;
                    batch
                        .set_entry_at(Entry::new(MEMBERSHIP, json), version)
                        .map_err(write_err)?;
                }
            }
            let json = serde_json::to_vec(&entry.log_id)
                .map_err(|e| storage_error(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
            batch
                .set_entry_at(Entry::new(APPLIED, json), version)
                .map_err(write_err)?;
            responses.push(Response {
                index: entry.log_id.index,
                refused,
            });
        }
        batch.flush().map_err(write_err)?;
        self.last_applied = Some(last);
        self.shared
            .applied_version
            .store(last.index + 1, Ordering::Release);
        Ok(responses)
    }

    fn install_blocking(&mut self, meta: &Meta) -> Result<(), Error> {
        let shared = self.shared.clone();
        let incoming = shared.snapshot_dir.join(INCOMING);
        // A damaged transfer replaces nothing: neither current.snap nor the database.
        snapshot_file::verify(&incoming)?;
        {
            let _replacing = shared
                .snapshot_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // Durable before the database is touched: a crash from here on reinstalls it.
            snapshot_file::replace(&incoming, &shared.current())?;
        }
        let _installing = shared.gate.write().unwrap_or_else(|e| e.into_inner());
        let loaded = snapshot_file::load(&shared.db, &shared.current())?;
        if loaded.last_log_id != meta.last_log_id {
            return Err(Error::Corrupt {
                path: shared.current(),
                what: format!(
                    "the snapshot received for {:?} says it is at {:?}",
                    meta.last_log_id, loaded.last_log_id
                ),
            });
        }
        let version = meta.last_log_id.map_or(0, |l| l.index + 1);
        if version > 0 {
            shared.db.set_discard_ts(version)?;
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        shared.applied_version.store(version, Ordering::Release);
        Ok(())
    }
}

impl StateReader {
    /// The value of `key` after the last applied entry.
    pub fn get(&self, key: &[u8]) -> settdb::Result<Option<Vec<u8>>> {
        let _gate = self.shared.read_gate();
        match self.shared.applied_version.load(Ordering::Acquire) {
            0 => Ok(None),
            version => self.shared.db.get_at(data_key(key), version),
        }
    }

    /// Up to `limit` keys starting with `prefix` and their values, in key order, after the
    /// last applied entry.
    pub fn scan(&self, prefix: &[u8], limit: usize) -> settdb::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let _gate = self.shared.read_gate();
        let version = self.shared.applied_version.load(Ordering::Acquire);
        if version == 0 {
            return Ok(Vec::new());
        }
        let txn = self.shared.db.new_transaction_at(version, false)?;
        let out = txn
            .prefix(data_key(prefix))?
            .take(limit)
            .map(|item| {
                let item = item?;
                Ok((item.key()[DATA_PREFIX.len()..].to_vec(), item.into_value()?))
            })
            .collect();
        out
    }

    /// Closes the state machine's database (after openraft shut down): later reads and
    /// applies fail with `settdb::Error::Closed`. Idempotent.
    pub fn close(&self) -> settdb::Result<()> {
        self.shared.db.close()
    }

    /// The index of the last applied entry, if any.
    pub fn applied_index(&self) -> Option<u64> {
        self.shared
            .applied_version
            .load(Ordering::Acquire)
            .checked_sub(1)
    }
}

/// Builds a snapshot of the state machine at the entry last applied when it was made.
#[derive(Debug)]
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    meta: Meta,
}

impl SnapshotBuilder {
    fn build_blocking(&self) -> Result<(), Error> {
        let shared = &self.shared;
        let version = self.meta.last_log_id.map_or(0, |l| l.index + 1);
        let building = shared.snapshot_dir.join(BUILDING);
        {
            let _gate = shared.read_gate();
            // The state machine is durable up to the snapshot before the log behind it can
            // be purged.
            shared.db.sync()?;
            snapshot_file::write(&shared.db, version, &self.meta, &building)?;
        }
        let _replacing = shared
            .snapshot_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = shared.current();
        if current.exists()
            && snapshot_file::read_meta(&current)?.last_log_id >= self.meta.last_log_id
        {
            // A snapshot installed meanwhile is as new: keep it.
            std::fs::remove_file(&building).map_err(|source| Error::Io {
                path: building,
                source,
            })?;
            return Ok(());
        }
        snapshot_file::replace(&building, &current)?;
        if version > 0 {
            shared.db.set_discard_ts(version)?;
        }
        Ok(())
    }
}

async fn open_current(
    shared: &Shared,
) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
    let read_err =
        |e: &dyn std::fmt::Display| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e);
    let _replacing = shared
        .snapshot_lock
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let current = shared.current();
    if !current.exists() {
        return Ok(None);
    }
    let meta = snapshot_file::read_meta(&current).map_err(|e| read_err(&e))?;
    let file = std::fs::File::open(&current).map_err(|e| read_err(&e))?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(tokio::fs::File::from_std(file)),
    }))
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let builder = SnapshotBuilder {
            shared: self.shared.clone(),
            meta: self.meta.clone(),
        };
        let signature = Some(self.meta.signature());
        tokio::task::spawn_blocking(move || builder.build_blocking())
            .await
            .map_err(|e| {
                storage_error(
                    ErrorSubject::Snapshot(signature.clone()),
                    ErrorVerb::Write,
                    e,
                )
            })?
            .map_err(|e| {
                storage_error(
                    ErrorSubject::Snapshot(signature.clone()),
                    ErrorVerb::Write,
                    e,
                )
            })?;
        open_current(&self.shared).await?.ok_or_else(|| {
            storage_error(
                ErrorSubject::Snapshot(signature),
                ErrorVerb::Read,
                "the snapshot just built is gone",
            )
        })
    }
}

/// True if `file` is the file at `path`.
async fn same_file(file: &tokio::fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata().await, tokio::fs::metadata(path).await) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        false
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.apply_blocking(entries.into_iter().collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.builds += 1;
        let snapshot_id = match self.last_applied {
            Some(l) => format!(
                "{}-{}-{}-{}",
                l.leader_id.term, l.leader_id.node_id, l.index, self.builds
            ),
            None => format!("none-{}", self.builds),
        };
        SnapshotBuilder {
            shared: self.shared.clone(),
            meta: Meta {
                last_log_id: self.last_applied,
                last_membership: self.membership.clone(),
                snapshot_id,
            },
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        let path = self.shared.snapshot_dir.join(INCOMING);
        let file = tokio::fs::File::create(&path).await.map_err(|e| {
            storage_error(
                ErrorSubject::Snapshot(None),
                ErrorVerb::Write,
                format!("{}: {e}", path.display()),
            )
        })?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        let err = |e: &dyn std::fmt::Display| {
            storage_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let incoming = self.shared.snapshot_dir.join(INCOMING);
        let mut snapshot = snapshot;
        if !same_file(&snapshot, &incoming).await {
            // Not the file begin_receiving_snapshot made (a snapshot handed over whole):
            // copy it there from its start.
            snapshot
                .seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(|e| err(&e))?;
            let mut copy = tokio::fs::File::create(&incoming)
                .await
                .map_err(|e| err(&e))?;
            tokio::io::copy(&mut snapshot, &mut copy)
                .await
                .map_err(|e| err(&e))?;
            snapshot = Box::new(copy);
        }
        snapshot.sync_all().await.map_err(|e| err(&e))?;
        drop(snapshot);
        self.install_blocking(meta).map_err(|e| err(&e))
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        open_current(&self.shared).await
    }
}

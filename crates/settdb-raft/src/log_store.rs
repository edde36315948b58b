//! The raft log, vote and committed log id in a SettDB database.
//!
//! Durability: openraft is told an append is done (its `LogFlushed` callback) only after a
//! `Db::sync` that covers it, and a vote or truncation returns only after its own sync; the
//! log, the vote and the membership entries in the log are on disk before openraft acts on
//! them. Appends are group-committed: `append` writes the entries (not yet synced) and hands
//! the callback to a flusher thread, which syncs once for every callback queued meanwhile and
//! then calls them in order. Openraft 0.9 appends each client write on its own, so this is
//! what lets one fsync cover many writes (measured: 2 entries per sync became dozens at 16
//! clients). A sync covers every write made before it, in order, so whatever survives a crash
//! is a prefix of the writes made.
//!
//! Keys: `l/` + the log index (8 bytes, big-endian, so key order is index order) holds the
//! entry as JSON; `m/vote`, `m/committed` and `m/purged` hold those log ids as JSON. A purge
//! writes `m/purged` first, then deletes the entries up to it, so the log state read back
//! after a crash is always one that existed.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;
use settdb::{Db, Entry};

use crate::{storage_error, NodeId, TypeConfig};

type LogEntry = openraft::Entry<TypeConfig>;

const LOG_PREFIX: &[u8] = b"l/";
const VOTE: &[u8] = b"m/vote";
const COMMITTED: &[u8] = b"m/committed";
const PURGED: &[u8] = b"m/purged";

fn log_key(index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(LOG_PREFIX.len() + 8);
    k.extend_from_slice(LOG_PREFIX);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The raft log storage of one node (openraft's `RaftLogStorage`); cloning shares it.
#[derive(Clone, Debug)]
pub struct LogStore {
    db: Arc<Db>,
    /// The committed log id openraft saved last; written with the next log write.
    committed: Option<LogId<NodeId>>,
    /// Callbacks of appends written but not yet synced, to the flusher thread.
    flusher: Arc<Flusher>,
}

/// The flusher thread's handle: dropping the last one closes its queue and joins it, so the
/// database it holds is released when the last clone of the store is dropped, not later.
#[derive(Debug)]
struct Flusher {
    queue: Option<Sender<LogFlushed<TypeConfig>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl LogStore {
    /// The log store in `db` (normal mode); starts its flusher thread, which ends when the
    /// last clone of the store is dropped.
    pub(crate) fn new(db: Arc<Db>) -> Result<Self, crate::Error> {
        debug_assert!(!db.is_managed());
        let (queue, pending) = mpsc::channel();
        let flush_db = db.clone();
        let thread = std::thread::Builder::new()
            .name("settdb-raft-log-sync".into())
            .spawn(move || flush_loop(&flush_db, &pending))
            .map_err(|source| crate::Error::Io {
                path: db.options().dir.clone(),
                source,
            })?;
        Ok(LogStore {
            db,
            committed: None,
            flusher: Arc::new(Flusher {
                queue: Some(queue),
                thread: Some(thread),
            }),
        })
    }

    /// Makes every write so far durable.
    fn sync(&self, subject: ErrorSubject<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.db
            .sync()
            .map_err(|e| storage_error(subject, ErrorVerb::Write, e))
    }

    /// Closes the log's database (after openraft shut down); idempotent.
    pub fn close(&self) -> settdb::Result<()> {
        self.db.close()
    }

    fn read<T: DeserializeOwned>(
        &self,
        key: &[u8],
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>, StorageError<NodeId>> {
        let Some(bytes) = self
            .db
            .get(key)
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            storage_error(
                subject,
                ErrorVerb::Read,
                format!(
                    "{} holds undecodable JSON: {e}",
                    String::from_utf8_lossy(key)
                ),
            )
        })
    }

    /// Writes `entries` in order (not synced), in as few atomic writes as SettDB's batch
    /// limits allow: each chunk holds at most half the entries and half the bytes of the
    /// largest batch (bytes counted as if every value were inline, an overestimate). Appends
    /// fit one write by far; a purge or truncation of many entries may not. A crash between
    /// chunks leaves a prefix of them written, which every caller tolerates: an append not
    /// yet acknowledged, a truncation that deletes from the end first, a purge whose marker
    /// goes first.
    fn write(
        &self,
        entries: Vec<Entry>,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        let opts = self.db.options();
        let max_count = (opts.max_batch_count() / 2).max(1) as usize;
        let max_bytes = opts.max_batch_size() / 2;
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for entry in entries {
            let size = (entry.key().len() + entry.value().len()) as u64 + 64;
            if !chunk.is_empty() && (chunk.len() >= max_count || bytes + size > max_bytes) {
                self.write_chunk(std::mem::take(&mut chunk), &subject)?;
                bytes = 0;
            }
            bytes += size;
            chunk.push(entry);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.write_chunk(chunk, &subject)
    }

    fn write_chunk(
        &self,
        chunk: Vec<Entry>,
        subject: &ErrorSubject<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        self.db
            .write(chunk)
            .map(drop)
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))
    }

    fn put<T: Serialize>(
        &self,
        key: &[u8],
        value: &T,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Write, e))?;
        self.write(vec![Entry::new(key.to_vec(), bytes)], subject)
    }

    /// The write of the committed log id saved last, if any.
    fn committed_marker(&self) -> Result<Vec<Entry>, StorageError<NodeId>> {
        if self.committed.is_none() {
            return Ok(Vec::new());
        }
        let bytes = serde_json::to_vec(&self.committed)
            .map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Write, e))?;
        Ok(vec![Entry::new(COMMITTED.to_vec(), bytes)])
    }

    /// The keys of the log entries whose indexes are in `range`, in index order.
    fn keys_in(
        &self,
        range: (Bound<u64>, Bound<u64>),
    ) -> Result<Vec<Vec<u8>>, StorageError<NodeId>> {
        let (start, end) = key_range(range);
        self.db
            .view(|txn| {
                txn.range((start, end))?
                    .map(|item| item.map(|i| i.key().to_vec()))
                    .collect::<settdb::Result<Vec<_>>>()
            })
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let last = self
            .db
            .view(|txn| {
                txn.prefix(LOG_PREFIX)?
                    .next_back()
                    .transpose()?
                    .map(|i| i.value())
                    .transpose()
            })
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        last.map(|bytes| decode_entry(&bytes).map(|e| e.log_id))
            .transpose()
    }
}

/// The key bounds of the log entries whose indexes are in `range`.
fn key_range(range: (Bound<u64>, Bound<u64>)) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = match range.0 {
        Bound::Included(i) => Bound::Included(log_key(i)),
        Bound::Excluded(i) => Bound::Excluded(log_key(i)),
        Bound::Unbounded => Bound::Included(LOG_PREFIX.to_vec()),
    };
    let end = match range.1 {
        Bound::Included(i) => Bound::Included(log_key(i)),
        Bound::Excluded(i) => Bound::Excluded(log_key(i)),
        // The first key after every `l/` key.
        Bound::Unbounded => Bound::Excluded(b"l0".to_vec()),
    };
    (start, end)
}

fn decode_entry(bytes: &[u8]) -> Result<LogEntry, StorageError<NodeId>> {
    serde_json::from_slice(bytes).map_err(|e| {
        storage_error(
            ErrorSubject::Logs,
            ErrorVerb::Read,
            format!("undecodable log entry: {e}"),
        )
    })
}

fn owned_range(range: impl RangeBounds<u64>) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

/// The flusher thread: waits for a callback, takes every other one queued by then, syncs once,
/// and calls them all in order with the outcome.
fn flush_loop(db: &Db, pending: &Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        group.extend(pending.try_iter());
        let outcome = db.sync().map_err(|e| e.to_string());
        for callback in group {
            callback.log_io_completed(outcome.clone().map_err(std::io::Error::other));
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError<NodeId>> {
        let (start, end) = key_range(owned_range(range));
        let values = self
            .db
            .view(|txn| {
                txn.range((start, end))?
                    .map(|item| item.and_then(|i| i.into_value()))
                    .collect::<settdb::Result<Vec<_>>>()
            })
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        values.iter().map(|v| decode_entry(v)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.read(PURGED, ErrorSubject::Logs)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put(VOTE, vote, ErrorSubject::Vote)?;
        self.sync(ErrorSubject::Vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read(VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // A hint, not a promise: openraft re-applies up to the committed id read back after a
        // restart, so it may lag but must never be ahead. It is kept here and written with the
        // next append (or truncation, or purge) instead of costing a sync of its own.
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read::<Option<LogId<NodeId>>>(COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry)
                .map_err(|e| storage_error(ErrorSubject::Log(entry.log_id), ErrorVerb::Write, e))?;
            batch.push(Entry::new(log_key(entry.log_id.index), bytes));
        }
        // Last, so that it is in the same write as the entries it may point at.
        batch.extend(self.committed_marker()?);
        // Written now, synced by the flusher before it calls back (in order with every
        // other callback).
        match self.write(batch, ErrorSubject::Logs) {
            Ok(()) => {
                let queue = self.flusher.queue.as_ref();
                let refused = match queue {
                    Some(queue) => queue.send(callback).err().map(|mpsc::SendError(c)| c),
                    None => Some(callback),
                };
                if let Some(callback) = refused {
                    // No flusher (it cannot end while this store exists): sync here.
                    let outcome = self.sync(ErrorSubject::Logs);
                    callback.log_io_completed(
                        outcome
                            .as_ref()
                            .map(drop)
                            .map_err(|e| std::io::Error::other(e.to_string())),
                    );
                    return outcome;
                }
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut keys = self.keys_in((Bound::Included(log_id.index), Bound::Unbounded))?;
        // Newest first: a crash part way leaves the log contiguous.
        keys.reverse();
        self.write(
            keys.into_iter().map(Entry::delete).collect(),
            ErrorSubject::Logs,
        )?;
        self.sync(ErrorSubject::Logs)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let keys = self.keys_in((Bound::Unbounded, Bound::Included(log_id.index)))?;
        let marker = serde_json::to_vec(&log_id)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        let mut batch = vec![Entry::new(PURGED.to_vec(), marker)];
        batch.extend(self.committed_marker()?);
        batch.extend(keys.into_iter().map(Entry::delete));
        self.write(batch, ErrorSubject::Logs)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};
    use settdb::io::{CrashMode, SimStorage};
    use settdb::Options;

    use super::*;
    use crate::Request;

    fn open(storage: &SimStorage) -> LogStore {
        let opts = Options::new(Path::new("/node/log")).with_storage(Arc::new(storage.clone()));
        LogStore::new(Arc::new(Db::open(opts).unwrap())).unwrap()
    }

    fn entry(term: u64, index: u64) -> LogEntry {
        LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(Request::put(format!("k{index}"), vec![b'v'; 100])),
        }
    }

    async fn indexes(store: &mut LogStore) -> Vec<u64> {
        let entries = store.try_get_log_entries(..).await.unwrap();
        entries.iter().map(|e| e.log_id.index).collect()
    }

    /// Power loss right after each acknowledged operation: what openraft was told is durable
    /// (appends whose callback fired, the vote, a truncation) is there after the crash, for
    /// every way the unsynced writes may have been lost.
    #[tokio::test]
    async fn what_openraft_was_told_survives_power_loss() {
        let modes = [CrashMode::Prefix, CrashMode::Subset, CrashMode::TornTail];
        for seed in 0..24u64 {
            let mode = modes[seed as usize % modes.len()];
            let storage = SimStorage::with_seed(seed);
            let mut store = open(&storage);
            let vote = Vote::new(3, 1);
            store.save_vote(&vote).await.unwrap();
            let mut after_vote = open(&storage.crash(mode, seed));
            assert_eq!(
                after_vote.read_vote().await.unwrap(),
                Some(vote),
                "seed {seed}, {mode:?}"
            );
            for i in 1..=40 {
                store.blocking_append([entry(1, i)]).await.unwrap();
            }
            // Appends queued together, acknowledged together.
            store
                .blocking_append((41..=60).map(|i| entry(2, i)))
                .await
                .unwrap();
            let mut after_appends = open(&storage.crash(mode, seed));
            let got = indexes(&mut after_appends).await;
            assert_eq!(got, (1..=60).collect::<Vec<_>>(), "seed {seed}, {mode:?}");
            store
                .truncate(LogId::new(CommittedLeaderId::new(2, 1), 51))
                .await
                .unwrap();
            let mut after_truncate = open(&storage.crash(mode, seed));
            let got = indexes(&mut after_truncate).await;
            assert_eq!(got, (1..=50).collect::<Vec<_>>(), "seed {seed}, {mode:?}");
            assert_eq!(
                after_truncate.read_vote().await.unwrap(),
                Some(vote),
                "seed {seed}"
            );
            let state = after_truncate.get_log_state().await.unwrap();
            assert_eq!(state.last_log_id.map(|l| l.index), Some(50), "seed {seed}");
        }
    }

    #[tokio::test]
    async fn purge_keeps_the_rest_and_reports_the_purged_id() {
        let storage = SimStorage::new();
        let mut store = open(&storage);
        store
            .blocking_append((1..=20).map(|i| entry(1, i)))
            .await
            .unwrap();
        let purged = LogId::new(CommittedLeaderId::new(1, 1), 12);
        store.purge(purged).await.unwrap();
        assert_eq!(indexes(&mut store).await, (13..=20).collect::<Vec<_>>());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(purged));
        // Everything purged: the last log id is the purged one.
        store
            .purge(LogId::new(CommittedLeaderId::new(1, 1), 20))
            .await
            .unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index), Some(20));
        assert!(indexes(&mut store).await.is_empty());
    }

    #[tokio::test]
    async fn committed_is_written_with_the_next_append_and_never_ahead_of_it() {
        let storage = SimStorage::new();
        let mut store = open(&storage);
        store
            .blocking_append((1..=5).map(|i| entry(1, i)))
            .await
            .unwrap();
        let c = Some(LogId::new(CommittedLeaderId::new(1, 1), 4));
        store.save_committed(c).await.unwrap();
        assert_eq!(
            store.read_committed().await.unwrap(),
            None,
            "not written on its own"
        );
        store.blocking_append([entry(1, 6)]).await.unwrap();
        assert_eq!(store.read_committed().await.unwrap(), c);
    }

    /// A purge and a truncation of more entries than one SettDB write may hold (here a 1 MiB
    /// memtable: about 1,300 entries per batch) go through in several writes, in order.
    #[tokio::test]
    async fn purges_and_truncations_larger_than_one_write_are_split() {
        let storage = SimStorage::new();
        let opts = Options::new(Path::new("/node/log"))
            .with_storage(Arc::new(storage.clone()))
            .with_mem_table_size(1 << 20);
        let max = opts.max_batch_count();
        assert!(max < 2_000, "the test needs a small batch limit: {max}");
        let mut store = LogStore::new(Arc::new(Db::open(opts).unwrap())).unwrap();
        for start in (1..=6_000).step_by(300) {
            store
                .blocking_append((start..start + 300).map(|i| entry(1, i)))
                .await
                .unwrap();
        }
        store
            .truncate(LogId::new(CommittedLeaderId::new(1, 1), 3_001))
            .await
            .unwrap();
        store
            .purge(LogId::new(CommittedLeaderId::new(1, 1), 2_990))
            .await
            .unwrap();
        assert_eq!(
            indexes(&mut store).await,
            (2_991..=3_000).collect::<Vec<_>>()
        );
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2_990));
    }

    #[tokio::test]
    async fn a_closed_store_refuses_writes() {
        let storage = SimStorage::new();
        let mut store = open(&storage);
        store.close().unwrap();
        assert!(store.save_vote(&Vote::new(1, 1)).await.is_err());
        // Closing again is fine.
        store.close().unwrap();
    }

    #[test]
    fn the_store_releases_its_database_when_dropped() {
        let storage = SimStorage::new();
        drop(open(&storage));
        // The flusher thread held the database; it is joined on drop, so the lock is free.
        drop(open(&storage));
    }
}

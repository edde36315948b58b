//! The raft log, vote and committed log id in a SettDB database opened with `sync_writes`:
//! every write below is on disk when `Db::write` returns, which is before openraft is told
//! (durability rule: the log, the vote and the membership in it are synced first).
//!
//! Keys: `l/` + the log index (8 bytes, big-endian, so key order is index order) holds the
//! entry as JSON; `m/vote`, `m/committed` and `m/purged` hold those log ids as JSON. A purge
//! writes `m/purged` and deletes the entries up to it in one atomic write, so the log state
//! read back after a crash is always one that existed.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
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

/// The most bytes one `Db::write` of the log carries: well within SettDB's batch limits at
/// the default memtable size.
const CHUNK_BYTES: usize = 4 << 20;

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
}

impl LogStore {
    /// The log store in `db`, which must be opened with `sync_writes` and in normal mode.
    pub(crate) fn new(db: Arc<Db>) -> Self {
        debug_assert!(db.options().sync_writes && !db.is_managed());
        LogStore { db }
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

    /// Writes `entries` in order, synced, in as few atomic writes as SettDB's batch limits
    /// allow (chunks of at most [`CHUNK_BYTES`]). A crash between chunks leaves a prefix of
    /// them written, which every caller below tolerates: an append not yet acknowledged, a
    /// truncation that deletes from the end first, a purge whose marker goes first.
    fn write(
        &self,
        entries: Vec<Entry>,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for entry in entries {
            let size = entry.key().len() + entry.value().len() + 32;
            if !chunk.is_empty() && bytes + size > CHUNK_BYTES {
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
        self.put(VOTE, vote, ErrorSubject::Vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read(VOTE, ErrorSubject::Vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.put(COMMITTED, &committed, ErrorSubject::Store)
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
        // One atomic, synced write: the entries are durable before the callback says so.
        match self.write(batch, ErrorSubject::Logs) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
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
        )
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let keys = self.keys_in((Bound::Unbounded, Bound::Included(log_id.index)))?;
        let marker = serde_json::to_vec(&log_id)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        let mut batch = vec![Entry::new(PURGED.to_vec(), marker)];
        batch.extend(keys.into_iter().map(Entry::delete));
        self.write(batch, ErrorSubject::Logs)
    }
}

//! A write request: entries with their versions, and the completion its caller waits on.

use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use super::PauseGate;
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::publish::{Publishable, Update};
use crate::value::meta;

/// One entry to write. The key is a user key; the version is the commit timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteEntry {
    /// User key (no version suffix).
    pub key: Bytes,
    /// Version (commit timestamp).
    pub version: u64,
    /// Meta bits (`value::meta`): DELETE, DISCARD_EARLIER_VERSIONS, MERGE, TXN bits.
    pub meta: u8,
    /// User meta byte.
    pub user_meta: u8,
    /// Expiry, unix seconds; 0 never.
    pub expires_at: u64,
    /// The value (empty for a delete).
    pub value: Bytes,
}

impl WriteEntry {
    /// The write `entry` describes, at `version` (0: stamped at commit).
    pub fn from_entry(entry: Entry, version: u64) -> Self {
        WriteEntry {
            key: entry.key,
            version,
            meta: entry.meta,
            user_meta: entry.user_meta,
            expires_at: entry.expires_at,
            value: entry.value,
        }
    }

    /// Bytes this entry counts against a batch's size limit: key + suffix + value + header.
    pub fn estimated_size(&self) -> u64 {
        (self.key.len() + crate::key::VERSION_LEN + self.value.len() + 16) as u64
    }
}

impl Publishable for WriteEntry {
    fn user_key(&self) -> &[u8] {
        &self.key
    }

    /// The value comes from the request itself (shared, not copied): a subscription never
    /// reads the value log.
    fn to_update(&self) -> Update {
        Update {
            key: self.key.clone(),
            value: self.value.clone(),
            version: self.version,
            expires_at: self.expires_at,
            user_meta: self.user_meta,
            is_delete: self.meta & meta::DELETE != 0,
        }
    }
}

/// What a request asks of the writer beyond applying its entries: its duty towards the commit
/// watermark, or a memtable rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duty {
    /// A commit at new versions, each begun in the commit watermark by the committer (under
    /// the queue lock); the writer marks them done once applied, failed or not.
    Commit,
    /// A rewrite of versions that are already committed and applied (value-log GC now;
    /// restore and replication later): the watermark is not touched, and readers see the
    /// same version before and after, with its value in a new place.
    Rewrite,
    /// No entries: after the groups queued before it are applied, the mutable memtable is
    /// rotated if it holds anything (`Db::flush`, close).
    RotateMemtable,
    /// No entries: as [`Duty::RotateMemtable`], then the writer pauses on the request's
    /// [`PauseGate`] until the caller resumes it.
    Pause,
}

/// A rewrite's last check, run by the writer thread just before it applies the group that
/// holds the request, so no other write comes between the check and the rewrite: it keeps in
/// `entries` those still to rewrite, or refuses the whole request with an error (which fails
/// this request alone and poisons nothing).
pub type RewriteCheck = Box<dyn FnOnce(&mut Vec<WriteEntry>) -> Result<()> + Send>;

/// A group of entries written atomically (all or none survive a crash).
pub struct WriteRequest {
    /// The entries.
    pub entries: Vec<WriteEntry>,
    /// What else the writer must do for this request.
    pub duty: Duty,
    /// Sync the value log and the WAL once the group holding this request is applied, even
    /// without `sync_writes`.
    pub sync: bool,
    /// Offer the entries to subscriptions once applied: true for commits and loaded
    /// versions (new to a reader), false for GC rewrites (the same versions moved).
    pub publish: bool,
    /// For a rewrite: the check the writer runs first (see [`RewriteCheck`]).
    pub check: Option<RewriteCheck>,
    /// For [`Duty::Pause`]: the handshake with the caller.
    pub pause: Option<Arc<PauseGate>>,
    /// Signalled once with the outcome.
    pub completion: Arc<Completion>,
}

impl std::fmt::Debug for WriteRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteRequest")
            .field("entries", &self.entries.len())
            .field("duty", &self.duty)
            .field("sync", &self.sync)
            .field("publish", &self.publish)
            .field("check", &self.check.is_some())
            .finish()
    }
}

impl WriteRequest {
    /// A commit of `entries` at versions begun in the commit watermark.
    pub fn new(entries: Vec<WriteEntry>) -> Self {
        WriteRequest::with_duty(entries, Duty::Commit)
    }

    /// A rewrite of already applied versions ([`Duty::Rewrite`]), filtered by `check` on the
    /// writer thread; durable at the next sync (value-log GC sends a
    /// [`WriteRequest::sync_barrier`] before it retires a file, so one sync covers a file's
    /// rewrites and a foreground write grouped with one does not pay for a sync).
    pub fn rewrite(entries: Vec<WriteEntry>, check: RewriteCheck) -> Self {
        let mut req = WriteRequest::with_duty(entries, Duty::Rewrite);
        req.check = Some(check);
        req
    }

    /// Versions restored from a backup ([`Duty::Rewrite`] with no check): written at the
    /// versions they carry without touching the commit watermark; durable at the next sync.
    /// Subscriptions are given them, as Badger publishes its `Load`.
    pub fn load(entries: Vec<WriteEntry>) -> Self {
        let mut req = WriteRequest::with_duty(entries, Duty::Rewrite);
        req.publish = true;
        req
    }

    /// A memtable rotation barrier ([`Duty::RotateMemtable`]).
    pub fn rotate_memtable() -> Self {
        WriteRequest::with_duty(Vec::new(), Duty::RotateMemtable)
    }

    /// A pause ([`Duty::Pause`]) and the gate its caller waits on and resumes.
    pub fn pause() -> (Self, Arc<PauseGate>) {
        let mut req = WriteRequest::with_duty(Vec::new(), Duty::Pause);
        let gate = Arc::new(PauseGate::default());
        req.pause = Some(gate.clone());
        (req, gate)
    }

    /// A request with no entries that completes once everything queued before it is durable.
    pub fn sync_barrier() -> Self {
        let mut req = WriteRequest::with_duty(Vec::new(), Duty::Rewrite);
        req.sync = true;
        req
    }

    fn with_duty(entries: Vec<WriteEntry>, duty: Duty) -> Self {
        WriteRequest {
            entries,
            duty,
            sync: false,
            publish: duty == Duty::Commit,
            check: None,
            pause: None,
            completion: Arc::new(Completion::default()),
        }
    }

    /// The versions this request began in the commit watermark (one per distinct version):
    /// those of a commit, none otherwise.
    pub fn begun_versions(&self) -> Vec<u64> {
        if self.duty != Duty::Commit {
            return Vec::new();
        }
        let mut v: Vec<u64> = self.entries.iter().map(|e| e.version).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Sum of the entries' estimated sizes.
    pub fn estimated_size(&self) -> u64 {
        self.entries.iter().map(WriteEntry::estimated_size).sum()
    }
}

/// The outcome of a request, set once by the writer, waited for by the caller (and possibly
/// handed to a callback by an asynchronous commit).
#[derive(Debug, Default)]
pub struct Completion {
    outcome: Mutex<Option<Result<()>>>,
    cond: Condvar,
}

impl Completion {
    /// Sets the outcome and wakes waiters. Only the first call has an effect.
    pub fn complete(&self, outcome: Result<()>) {
        let mut guard = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(outcome);
            self.cond.notify_all();
        }
    }

    /// Blocks until the outcome is set and takes it. A second call sees `Error::InvalidRequest`.
    pub fn wait(&self) -> Result<()> {
        let mut guard = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        while guard.is_none() {
            guard = self.cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        match guard.take() {
            Some(r) => {
                // Leave a marker so a second wait does not block forever.
                *guard = Some(Err(Error::InvalidRequest("completion already taken")));
                r
            }
            None => Err(Error::InvalidRequest("completion already taken")),
        }
    }

    /// True once the outcome is set.
    #[cfg(test)]
    pub fn is_done(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

//! The commit side of the database: what sends writes (the checks a write must pass, the
//! queue to the writer, the oracle that stamps versions, the poison flag, the callback
//! runner), shared by `Db`, [`crate::Txn`] and [`crate::WriteBatch`] without a reference back
//! to `Db`. Reads go through [`crate::read::Reader`]; a transaction holds one of each.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::key::validate_key;
use crate::namespace::{ban_record_key, Namespaces, BAN_VERSION};
use crate::options::Options;
use crate::txn::{fingerprint, Oracle, WaterMark};
use crate::value::meta;
use crate::write::{
    CallbackRunner, Completion, Poison, WriteEntry, WriteQueue, WriteRequest, Writer,
};

/// The commit side (module doc).
pub(crate) struct Committer {
    pub(crate) opts: Options,
    pub(crate) queue: Arc<WriteQueue>,
    pub(crate) oracle: Arc<Oracle>,
    /// Commit watermark: every version at or below `done_until` is applied.
    pub(crate) applied: Arc<WaterMark>,
    pub(crate) poison: Arc<Poison>,
    pub(crate) callbacks: CallbackRunner,
    /// Set when close begins: writes fail with `Closed`.
    pub(crate) closing: Arc<AtomicBool>,
    /// Set when close begins: every call fails with `Closed`.
    pub(crate) closed: AtomicBool,
    /// Key namespaces: writes to a banned one fail.
    pub(crate) namespaces: Arc<Namespaces>,
    /// The writer, once its thread runs (a read-only database has none).
    pub(crate) writer: std::sync::OnceLock<Arc<Writer>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Committer {
    /// `Err(Closed)` once close began: every call after it fails so.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// `Err` for a read-only, closing or poisoned database.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::InvalidRequest("the database is open read-only"));
        }
        if self.closing.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.poison.check()
    }

    /// Refuses a value the value log cannot hold.
    pub(crate) fn check_value_size(&self, len: usize) -> Result<()> {
        let limit = self.opts.value_log_file_size;
        if len as u64 >= limit {
            return Err(Error::ValueTooLarge {
                size_bytes: len as u64,
                max_size_bytes: limit - 1,
            });
        }
        Ok(())
    }

    /// Refuses a write of `count` entries and `size` bytes over the batch limits.
    pub(crate) fn check_batch_limits(&self, count: u64, size: u64) -> Result<()> {
        let (max_count, max_size) = (self.opts.max_batch_count(), self.opts.max_batch_size());
        if count > max_count || size > max_size {
            return Err(Error::TxnTooBig {
                count,
                size_bytes: size,
                max_count,
                max_size_bytes: max_size,
            });
        }
        Ok(())
    }

    /// Refuses a write whose value-log values would not fit one value-log file: the writer
    /// puts one group's values in one file, and a pointer's offset is a u32.
    pub(crate) fn check_value_log_fit(&self, entries: &[WriteEntry]) -> Result<()> {
        let size: u64 = entries
            .iter()
            .filter(|e| e.meta & meta::DELETE == 0 && self.opts.goes_to_value_log(e.value.len()))
            .map(|e| e.value.len() as u64)
            .sum();
        if size > self.opts.value_log_file_size {
            return Err(Error::ValueLogWriteTooBig {
                size_bytes: size,
                max_size_bytes: self.opts.value_log_file_size,
            });
        }
        Ok(())
    }

    /// Writes the ban records of `namespaces` (keys under the internal prefix, which
    /// `validate_entries` refuses) at their fixed version, like [`Committer::queue_loaded`];
    /// durable when it returns.
    pub(crate) fn write_ban_records(&self, namespaces: &[u64]) -> Result<()> {
        self.check_writable()?;
        let entries = namespaces
            .iter()
            .map(|&ns| WriteEntry {
                key: ban_record_key(ns).into(),
                version: BAN_VERSION,
                meta: 0,
                user_meta: 0,
                expires_at: 0,
                value: bytes::Bytes::new(),
            })
            .collect();
        self.queue
            .push_with(|| {
                let mut req = WriteRequest::load(entries);
                req.sync = true;
                Ok(req)
            })?
            .wait()
    }

    /// Every check a write of `entries` must pass: keys, value sizes, batch limits, fit.
    pub(crate) fn validate_entries(&self, entries: &[WriteEntry]) -> Result<()> {
        for e in entries {
            validate_key(&e.key)?;
            self.check_value_size(e.value.len())?;
        }
        let size = entries
            .iter()
            .map(|e| self.opts.entry_charge(e.key.len(), e.value.len()))
            .sum();
        self.check_batch_limits(entries.len() as u64, size)?;
        self.check_value_log_fit(entries)
    }

    /// Sends a commit's request: applied on this thread when the writer is idle and nothing is
    /// queued, queued otherwise ([`Writer::submit`]).
    pub(crate) fn submit<F>(&self, make: F) -> Result<Arc<Completion>>
    where
        F: FnOnce() -> Result<WriteRequest>,
    {
        match self.writer.get() {
            Some(w) => w.submit(make),
            None => self.queue.push_with(make),
        }
    }

    /// Queues `entries` at the versions they carry, as one atomic group that does not touch
    /// the commit watermark ([`crate::write::Duty::Rewrite`]): versions restored from a
    /// backup, which no commit stamped. Returns the completion to wait for.
    pub(crate) fn queue_loaded(&self, entries: Vec<WriteEntry>) -> Result<Arc<Completion>> {
        self.check_writable()?;
        self.validate_entries(&entries)?;
        self.queue.push_with(|| Ok(WriteRequest::load(entries)))
    }

    /// After loaded versions up to `version` are applied: a normal database's next commit
    /// timestamp goes above them (Badger's `Load` raises `nextTxnTs`); a managed database's
    /// caller picks its timestamps.
    pub(crate) fn loaded_up_to(&self, version: u64) {
        if !self.oracle.is_managed() {
            self.oracle.advance_past(version);
        }
    }

    /// Queues `entries` at the versions they carry (managed mode), as one atomic group through
    /// the commit watermark; `check_keys` false only for `repair`, which rebuilds SettDB's own
    /// keys too. Returns the completion to wait for.
    pub(crate) fn queue_versioned(
        &self,
        entries: Vec<WriteEntry>,
        check_keys: bool,
    ) -> Result<Arc<Completion>> {
        if !self.oracle.is_managed() {
            return Err(Error::InvalidRequest(
                "writes at their own versions need a database opened with open_managed",
            ));
        }
        self.check_writable()?;
        if check_keys {
            self.validate_entries(&entries)?;
            for e in &entries {
                self.namespaces.check(&e.key)?;
            }
        } else {
            let size = entries
                .iter()
                .map(|e| self.opts.entry_charge(e.key.len(), e.value.len()))
                .sum();
            self.check_batch_limits(entries.len() as u64, size)?;
            self.check_value_log_fit(&entries)?;
        }
        if entries.iter().any(|e| e.version == 0) {
            return Err(Error::InvalidRequest(
                "version 0 is not a version: start at 1",
            ));
        }
        let writes: HashSet<u64> = if self.oracle.detects_conflicts() {
            entries.iter().map(|e| fingerprint(&e.key)).collect()
        } else {
            HashSet::new()
        };
        let req = WriteRequest::new(entries);
        self.queue.push_with(|| {
            self.oracle.begin_versioned(&req.begun_versions(), &writes);
            Ok(req)
        })
    }

    /// Writes `entries` at one new version, without a transaction (blind writes have no reads,
    /// so they never conflict themselves, but transactions that read their keys do); returns
    /// the version. Nothing to write returns the applied watermark.
    pub(crate) fn write(&self, mut entries: Vec<WriteEntry>) -> Result<u64> {
        self.check_writable()?;
        if entries.is_empty() {
            return Ok(self.applied.done_until());
        }
        self.validate_entries(&entries)?;
        for e in &entries {
            self.namespaces.check(&e.key)?;
        }
        let writes: HashSet<u64> = if self.oracle.detects_conflicts() {
            entries.iter().map(|e| fingerprint(&e.key)).collect()
        } else {
            HashSet::new()
        };
        let mut version = 0;
        let completion = self.submit(|| {
            version = self.oracle.new_blind_commit_ts(&writes)?;
            for e in &mut entries {
                e.version = version;
            }
            Ok(WriteRequest::new(std::mem::take(&mut entries)))
        })?;
        completion.wait()?;
        Ok(version)
    }
}

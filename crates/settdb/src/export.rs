//! Moving data out of and into a database in Badger's backup format: [`Db::backup`] (a
//! [`crate::Stream`] whose producer threads encode frames) and [`Db::load`] (frames read,
//! checked whole, and written at their own versions through the write path).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use crate::backup::pb::KvList;
use crate::backup::{check_kv, encode_frame, CheckedKv, FrameReader, FRAME_POOL};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::stream::backup_key_to_list;
use crate::value::meta;
use crate::write::{Completion, WriteEntry};

/// Bytes of one write of a load at most (with `max_pending_writes` writes in flight): large
/// enough that the writer's per-write costs vanish, small enough to bound memory.
const MAX_LOAD_BATCH_BYTES: u64 = 4 << 20;

impl Db {
    /// Writes a backup of every version newer than `since` (exclusive, as Badger v4) that is
    /// visible now, deletes, expiry and user meta included, to `w` in Badger's format
    /// (docs/format/backup.md); returns the version to pass as the next `since` for an
    /// incremental backup (the largest version written, or `since` if none was). Normal mode.
    ///
    /// Errors: [`Error::BackupIo`] if writing fails (`w` then holds whole frames and perhaps
    /// part of one), and whatever reading the database fails with.
    ///
    /// ```
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use settdb::{Db, Options};
    /// let db = Db::open(Options::new(dir.path().join("a")))?;
    /// db.set("k1", "v1")?;
    /// let mut full = Vec::new();
    /// let since = db.backup(&mut full, 0)?;
    /// db.set("k2", "v2")?;
    /// let mut incremental = Vec::new();
    /// db.backup(&mut incremental, since)?; // only what changed after `since`
    ///
    /// let restored = Db::open(Options::new(dir.path().join("b")))?;
    /// restored.load(&full[..], 16)?;
    /// restored.load(&incremental[..], 16)?;
    /// assert_eq!(restored.get("k2")?.as_deref(), Some(&b"v2"[..]));
    /// # Ok(()) }
    /// ```
    pub fn backup(&self, mut w: impl Write, since: u64) -> Result<u64> {
        backup(self, &mut w, since, &mut |_| {})
    }

    /// [`Db::backup`], calling `progress` after each frame written.
    pub fn backup_with_progress(
        &self,
        mut w: impl Write,
        since: u64,
        mut progress: impl FnMut(&BackupProgress),
    ) -> Result<u64> {
        backup(self, &mut w, since, &mut progress)
    }

    /// Loads a backup written by [`Db::backup`], `badger backup` or Badger's `DB.Backup`
    /// (Badger's `DB.Load`): each version at its own version, with at most
    /// `max_pending_writes` writes in flight; in a normal database, the next commit timestamp
    /// is raised above the largest version loaded. Loaded versions do not go through
    /// transactions: load into a database nobody else writes (conflict detection does not see
    /// them). Durable when it returns. Into an empty database, [`Db::bulk_load`] is faster.
    ///
    /// Errors: [`Error::BadBackup`] (naming the frame's offset) for a frame cut short, a
    /// length over [`crate::backup::MAX_FRAME_LEN`], bytes that are not a `KVList`, or a KV
    /// SettDB cannot store (empty or internal key, version 0, unknown meta bits); nothing of
    /// that frame is written, every frame before it is, and the database stays consistent.
    pub fn load(&self, mut r: impl Read, max_pending_writes: usize) -> Result<LoadSummary> {
        load(self, &mut r, max_pending_writes, &mut |_| {})
    }

    /// [`Db::load`], calling `progress` after each frame read.
    pub fn load_with_progress(
        &self,
        mut r: impl Read,
        max_pending_writes: usize,
        mut progress: impl FnMut(&LoadSummary),
    ) -> Result<LoadSummary> {
        load(self, &mut r, max_pending_writes, &mut progress)
    }
}

/// The entry the write path stores for a checked KV.
fn write_entry(kv: CheckedKv) -> WriteEntry {
    WriteEntry {
        key: kv.key,
        version: kv.version,
        meta: kv.meta,
        user_meta: kv.user_meta,
        expires_at: kv.expires_at,
        value: kv.value,
    }
}

/// Progress of a backup, reported after each frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupProgress {
    /// Frames written.
    pub frames: u64,
    /// KVs written.
    pub kvs: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes the backup of `db` newer than `since` to `w`; see [`Db::backup`]. Each producer
/// thread of the stream encodes its own frames (one per producer batch, about 4 MiB); this
/// thread only writes them.
pub(crate) fn backup(
    db: &Db,
    w: &mut dyn Write,
    since: u64,
    progress: &mut dyn FnMut(&BackupProgress),
) -> Result<u64> {
    let mut done = BackupProgress::default();
    // Frame buffers go back to the producers once written: large buffers allocated afresh
    // for every frame cost more in page faults than the encoding itself.
    let pool: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    let encode = |list: KvList| -> Result<(Vec<u8>, u64)> {
        let mut frame = pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        encode_frame(&list, &mut frame)?;
        Ok((frame, list.kv.len() as u64))
    };
    let summary = db
        .stream()
        .since_ts(since)
        .key_to_list(backup_key_to_list)
        .run_mapped(&encode, |(frame, kvs)| {
            w.write_all(&frame).map_err(|e| Error::BackupIo {
                op: "write",
                offset: done.bytes,
                source: e,
            })?;
            done.bytes += frame.len() as u64;
            done.frames += 1;
            done.kvs += kvs;
            progress(&done);
            let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < FRAME_POOL {
                pool.push(frame);
            }
            Ok(())
        })?;
    w.flush().map_err(|e| Error::BackupIo {
        op: "flush",
        offset: done.bytes,
        source: e,
    })?;
    Ok(summary.max_version.max(since))
}

/// What [`Db::load`] loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Frames read.
    pub frames: u64,
    /// Versions written.
    pub kvs: u64,
    /// Bytes of the backup read.
    pub bytes: u64,
    /// The largest version loaded (0 if none).
    pub max_version: u64,
}

/// Loads the frames of `r` into `db`; see [`Db::load`].
pub(crate) fn load(
    db: &Db,
    r: &mut dyn Read,
    max_pending_writes: usize,
    progress: &mut dyn FnMut(&LoadSummary),
) -> Result<LoadSummary> {
    let mut frames = FrameReader::new(r);
    let mut loader = Loader {
        db,
        batch: Vec::new(),
        batch_max_version: 0,
        batch_bytes: 0,
        batch_vlog_bytes: 0,
        in_flight: VecDeque::new(),
        max_pending: max_pending_writes.max(1),
        summary: LoadSummary::default(),
    };
    let read = loop {
        let (offset, list) = match frames.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        // The whole frame is checked before any of it is queued.
        let entries: Result<Vec<WriteEntry>> = list
            .kv
            .into_iter()
            .enumerate()
            .filter(|(_, kv)| !kv.stream_done)
            .map(|(i, kv)| check_kv(kv, offset, i).map(write_entry))
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => break Err(e),
        };
        if let Err(e) = loader.add(entries) {
            break Err(e);
        }
        loader.summary.frames += 1;
        loader.summary.bytes = frames.offset();
        progress(&loader.summary);
    };
    // Whatever was read before an error is still written, so the database holds every whole
    // frame before it; the error is returned after.
    let finished = loader.finish();
    read.and(finished).map(|()| loader.summary)
}

struct Loader<'a> {
    db: &'a Db,
    batch: Vec<WriteEntry>,
    batch_max_version: u64,
    batch_bytes: u64,
    batch_vlog_bytes: u64,
    in_flight: VecDeque<(Arc<Completion>, u64)>,
    max_pending: usize,
    summary: LoadSummary,
}

impl Loader<'_> {
    fn add(&mut self, entries: Vec<WriteEntry>) -> Result<()> {
        let opts = self.db.options();
        for e in entries {
            let charge = opts.entry_charge(e.key.len(), e.value.len());
            let vlog = if e.meta & meta::DELETE == 0 && opts.goes_to_value_log(e.value.len()) {
                e.value.len() as u64
            } else {
                0
            };
            let full = self.batch.len() as u64 + 1 > opts.max_batch_count()
                || self.batch_bytes + charge > opts.max_batch_size().min(MAX_LOAD_BATCH_BYTES)
                || self.batch_vlog_bytes + vlog > opts.value_log_file_size;
            if full && !self.batch.is_empty() {
                self.submit()?;
            }
            // A single entry too large for one write is refused by the write path.
            self.batch_max_version = self.batch_max_version.max(e.version);
            self.batch_bytes += charge;
            self.batch_vlog_bytes += vlog;
            self.batch.push(e);
        }
        Ok(())
    }

    fn submit(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= self.max_pending {
            self.wait_oldest()?;
        }
        let n = self.batch.len() as u64;
        (self.batch_bytes, self.batch_vlog_bytes) = (0, 0);
        let completion = self.db.load_batch(std::mem::take(&mut self.batch))?;
        self.in_flight
            .push_back((completion, std::mem::take(&mut self.batch_max_version)));
        self.summary.kvs += n;
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<()> {
        if let Some((c, max_version)) = self.in_flight.pop_front() {
            c.wait()?;
            self.db.loaded_up_to(max_version);
            self.summary.max_version = self.summary.max_version.max(max_version);
        }
        Ok(())
    }

    /// Writes the last batch, waits for every write, makes them durable.
    fn finish(&mut self) -> Result<()> {
        let mut r = self.submit();
        while !self.in_flight.is_empty() {
            r = r.and(self.wait_oldest());
        }
        r.and(self.db.sync())
    }
}

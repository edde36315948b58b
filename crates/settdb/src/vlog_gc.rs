//! Value-log garbage collection: moves the live values out of value-log files that are mostly
//! dead, then retires those files, so the value log shrinks (the WiscKey idea; Badger's
//! `RunValueLogGC`, docs/design/vlog-gc.md).
//!
//! One run: the candidates are the sealed files whose discard ratio (bytes compaction dropped
//! over the file's bytes, [`DiscardTracker`]) is at least the caller's ratio, best first. Each
//! is verified by sampling (the first tenth of its bytes is checked against the LSM tree; a
//! file that is less dead than the statistics said is skipped). The statistics only count
//! versions compaction dropped: overwrites still in memtables or level 0 (a load of large
//! values whose small LSM tree never compacts) leave them blind. So a run then *probes* the
//! other sealed files, oldest first, by the same sampling (Badger samples a random file for
//! the same reason); a file a probe kept is probed again only once the value log has grown
//! by a tenth of its size.
//! A file found dead enough is rewritten: every record
//! is classified ([`classify`]) and the live ones are written again through the write path as
//! *rewrites* at their own version, meta, user meta and expiry ([`Duty::Rewrite`]). The
//! writer classifies each one again just before it applies the group, with no other write in
//! between, so a value overwritten or deleted meanwhile is not brought back. Once every
//! rewrite is durable, the file is retired: its removal is recorded in the MANIFEST and the
//! file goes when the last read snapshot that pinned it drops (rule 5).
//!
//! A record of key K at version v pointing at P is:
//! - **live** when the newest version of K anywhere in the engine is v, still points at P,
//!   and has not expired: it is rewritten;
//! - **dead** when K@v is gone, or points elsewhere (moved already), or has expired, or is
//!   shadowed by newer versions so that compaction may drop it (the retention rules at the
//!   oracle's discard timestamp): no reader that can come can see it, and every snapshot that
//!   could see it pinned the file;
//! - **blocked** when K@v is shadowed but still retained (a transaction that reads below the
//!   newer version is open, or `num_versions_to_keep` keeps it): the file cannot go yet, and
//!   this run leaves it for a later one. (Rewriting such a version would place an older
//!   version above a newer one in the tree, which the per-key tombstone dropping of
//!   compaction relies on never happening.)

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::clock::now_secs;
use crate::compaction::{Decision, Retention, RetentionPolicy};
use crate::error::{Error, Result};
use crate::io::cpu_time;
use crate::key::{key_with_version, user_key, version};
use crate::options::Options;
use crate::read::{get_newest, ReadSnapshot, Reader};
use crate::txn::Oracle;
use crate::value::{is_expired, meta, ValuePointer, ValueRef};
use crate::vlog::{DiscardTracker, ValueLog};
use crate::write::{Poison, WriteEntry, WriteQueue, WriteRequest};

/// Fraction of a candidate's bytes whose records are checked before it is rewritten.
const SAMPLE_FRACTION: f64 = 0.1;
/// GC seals an active file of at least `value_log_file_size / ACTIVE_SEAL_DIVISOR` bytes.
const ACTIVE_SEAL_DIVISOR: u64 = 4;

/// Value bytes one rewrite request carries at most (a single larger value goes alone): the
/// values are copied out of the file, so this bounds GC's memory. The batch limits of a
/// write count what goes to the memtable, which for value-log values is only their pointers.
const BATCH_VALUE_BYTES: u64 = 8 << 20;

/// Records a rewrite classifies between two calls of its pacer (a file of mostly dead
/// records submits few batches, each of which also calls it).
const PACE_EVERY_RECORDS: u64 = 1024;

/// How many records a sample checks at most.
#[derive(Clone, Copy, Debug)]
struct Sample {
    max_records: u64,
}

impl Sample {
    /// A candidate the statistics ranked: checked well before its rewrite.
    const CANDIDATE: Sample = Sample {
        max_records: 10_000,
    };
    /// A file probed for garbage the statistics cannot see yet: a smaller sample (about
    /// 2,000 records estimate the dead share within a few percent), since most probes find
    /// nothing.
    const PROBE: Sample = Sample { max_records: 2_000 };
}

/// What one GC run may do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GcPlan {
    /// Rewrite files at least this dead.
    pub(crate) discard_ratio: f64,
    /// Stop once this many files were retired.
    pub(crate) max_files: usize,
    /// Bytes per second sampled or moved at most (`None`: unlimited).
    pub(crate) rate: Option<u64>,
    /// Rewrite the candidates the discard statistics rank.
    pub(crate) from_statistics: bool,
    /// Sealed files to probe by sampling at most, beyond those candidates.
    pub(crate) probes: usize,
    /// Yield the CPU to the rest of the process while the value log's space amplification
    /// is below this (automatic GC: [`Options::value_log_gc_busy_space_amp`]); `None`:
    /// never yield (a caller's run).
    pub(crate) yield_below: Option<f64>,
}
/// How long a wait for a memtable flush sleeps before looking at close and poison again.
const FLUSH_POLL: Duration = Duration::from_millis(100);

/// What one call of [`crate::Db::run_value_log_gc`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum GcOutcome {
    /// No file was rewritten: none had a discard ratio at or above the one asked for, or
    /// those that had were found less dead by sampling, or their values are still visible to
    /// open transactions (Badger's `ErrNoRewrite`, as an outcome rather than an error).
    NothingToRewrite,
    /// At least one file was rewritten and retired.
    Rewrote(GcReport),
}

/// The work of a GC run that rewrote files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Ids of the value-log files retired.
    pub files_retired: Vec<u32>,
    /// Bytes of the retired files (given back once no snapshot pins them).
    pub bytes_retired: u64,
    /// Values written again (live values moved to the newest file).
    pub values_moved: u64,
    /// Bytes of the values moved.
    pub bytes_moved: u64,
    /// Candidates left alone: less dead than their statistics said, or still holding a
    /// version an open transaction may read.
    pub files_skipped: u64,
}

impl GcReport {
    /// Adds file `id`'s outcome; `false` if it was skipped (nothing added).
    fn record(&mut self, id: u32, result: FileResult) -> bool {
        match result {
            FileResult::Retired {
                bytes,
                moved,
                moved_bytes,
            } => {
                self.files_retired.push(id);
                self.bytes_retired += bytes;
                self.values_moved += moved;
                self.bytes_moved += moved_bytes;
                true
            }
            FileResult::Skipped | FileResult::Interrupted => false,
        }
    }

    /// Bytes given back: retired minus moved.
    pub fn bytes_reclaimed(&self) -> u64 {
        self.bytes_retired.saturating_sub(self.bytes_moved)
    }
}

/// How one record stands (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    Live,
    Dead,
    Blocked,
}

/// What a file's rewrite came to.
enum FileResult {
    Retired {
        bytes: u64,
        moved: u64,
        moved_bytes: u64,
    },
    /// Left: not dead enough, or a value in it still retained (blocked).
    Skipped,
    /// Given up part way (close, or busy threads to yield to): says nothing about the file.
    Interrupted,
}

/// The value-log garbage collector of one database. Holds no reference to `Db`: it reads
/// through the [`Reader`] and writes through the write queue.
pub(crate) struct ValueLogGc {
    reader: Arc<Reader>,
    queue: Arc<WriteQueue>,
    vlog: Arc<ValueLog>,
    discards: Arc<DiscardTracker>,
    oracle: Arc<Oracle>,
    poison: Arc<Poison>,
    opts: Options,
    /// One run at a time (manual calls and the background thread share it).
    running: Mutex<()>,
    /// Callers waiting for `running`: an automatic run that yields to busy threads stops
    /// yielding while anyone waits, so a caller waits for one file's work at most.
    waiting: AtomicUsize,
    /// Files a probe sampled and kept, with the value log's head at the time.
    probed: Mutex<HashMap<u32, Head>>,
}

/// The value log's append position: the active file and its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    file_id: u32,
    bytes: u64,
}

impl std::fmt::Debug for ValueLogGc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueLogGc").finish_non_exhaustive()
    }
}

impl ValueLogGc {
    pub(crate) fn new(
        reader: Arc<Reader>,
        queue: Arc<WriteQueue>,
        vlog: Arc<ValueLog>,
        discards: Arc<DiscardTracker>,
        oracle: Arc<Oracle>,
        poison: Arc<Poison>,
        opts: Options,
    ) -> Self {
        ValueLogGc {
            reader,
            queue,
            vlog,
            discards,
            oracle,
            poison,
            opts,
            running: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            probed: Mutex::new(HashMap::new()),
        }
    }

    /// Holds off every GC run (manual or automatic) while the guard lives; waits for a
    /// running one to end (`Db::drop_all`, `Db::drop_prefix`).
    pub(crate) fn exclusive(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock_running()
    }

    /// Takes the one-run lock, counted in `waiting` while it waits.
    fn lock_running(&self) -> std::sync::MutexGuard<'_, ()> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let guard = self.running.lock().unwrap_or_else(|e| e.into_inner());
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        guard
    }

    /// Bytes of the sealed value-log files and the discard bytes recorded for them: the
    /// inputs of the space-amplification estimate.
    pub(crate) fn sealed_and_discard_bytes(&self) -> (u64, u64) {
        let sizes = self.sealed_sizes();
        let stats = self.discards.snapshot();
        let total = sizes.iter().map(|&(_, s)| s).sum();
        let dead = sizes.iter().map(|&(id, s)| stats.get(id).min(s)).sum();
        (total, dead)
    }

    fn sealed_sizes(&self) -> Vec<(u32, u64)> {
        let Some(active) = self.vlog.active_file_id() else {
            return Vec::new();
        };
        self.vlog
            .file_ids()
            .into_iter()
            .filter(|&id| id < active)
            .filter_map(|id| self.vlog.file_size_bytes(id).map(|s| (id, s)))
            .collect()
    }

    /// Rewrites up to `plan.max_files` files at least `plan.discard_ratio` dead: first the
    /// candidates the discard statistics rank (best first), then up to `plan.probes` other
    /// sealed files found dead enough by sampling (module doc). `stop`: checked between
    /// batches, ends the run early (close).
    ///
    /// Errors: [`Error::InvalidRequest`] for a ratio outside (0, 1) or a value log that is
    /// not writing; the write path's errors ([`Error::Closed`], [`Error::Poisoned`]); a
    /// damaged value-log file ([`Error::Corruption`], [`Error::ChecksumMismatch`]).
    pub(crate) fn run(&self, plan: GcPlan, stop: &AtomicBool) -> Result<GcOutcome> {
        let GcPlan {
            discard_ratio,
            max_files,
            rate,
            from_statistics,
            probes,
            yield_below,
        } = plan;
        if !(discard_ratio > 0.0 && discard_ratio < 1.0) {
            return Err(Error::InvalidRequest(
                "value-log GC: discard_ratio must be above 0 and below 1",
            ));
        }
        let _one = self.lock_running();
        if self.vlog.active_file_id().is_none() {
            return Err(Error::InvalidRequest(
                "value-log GC needs a writable value log",
            ));
        }
        let mut report = GcReport::default();
        // No waiting while a caller waits for this run to end, or past the bound.
        let urgent = |bound: f64| {
            let (sealed, dead) = self.sealed_and_discard_bytes();
            self.waiting.load(Ordering::Acquire) > 0 || space_amp(sealed, dead) >= bound
        };
        let yields = yield_below.map(|bound| Yield {
            cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
            urgent: Box::new(move || urgent(bound)),
            look: Box::new(others_busy),
            last_look: None,
            stop,
        });
        let mut limiter = Pacer::new(rate, yields);
        let sealed = self.sealed_sizes();
        let candidates = if from_statistics {
            self.discards.candidates(&sealed, discard_ratio)
        } else {
            Vec::new()
        };
        let done = |report: &GcReport| {
            report.files_retired.len() >= max_files || stop.load(Ordering::Acquire)
        };
        for c in &candidates {
            if done(&report) {
                break;
            }
            let sample = Sample::CANDIDATE;
            let result = self.rewrite_file(c.file_id, discard_ratio, sample, &mut limiter, stop)?;
            if !report.record(c.file_id, result) {
                report.files_skipped += 1;
            }
        }
        // Files the statistics do not rank: probed by sampling, oldest first.
        let tried: Vec<u32> = candidates.iter().map(|c| c.file_id).collect();
        for id in self.probe_order(&sealed, &tried).into_iter().take(probes) {
            if done(&report) {
                break;
            }
            let result = self.rewrite_file(id, discard_ratio, Sample::PROBE, &mut limiter, stop)?;
            if matches!(result, FileResult::Skipped) {
                self.mark_probed(id);
            }
            report.record(id, result);
        }
        // The active file is never rewritten, and a value log smaller than one file never
        // seals one: its garbage would stay. A large active file is sealed so it can be
        // probed like the others (at most once per quarter of a file written).
        if probes > 0 && !done(&report) {
            if let Some(id) = self.seal_large_active()? {
                let sample = Sample::PROBE;
                let result = self.rewrite_file(id, discard_ratio, sample, &mut limiter, stop)?;
                if matches!(result, FileResult::Skipped) {
                    self.mark_probed(id);
                }
                report.record(id, result);
            }
        }
        if report.files_retired.is_empty() {
            self.reader.stats().record_gc_run(0, 0);
            tracing::debug!(
                files_skipped = report.files_skipped,
                "value-log GC: nothing to rewrite"
            );
            return Ok(GcOutcome::NothingToRewrite);
        }
        self.record(&report);
        Ok(GcOutcome::Rewrote(report))
    }

    /// Counts and logs a run that rewrote files.
    fn record(&self, report: &GcReport) {
        let files = report.files_retired.len() as u64;
        let reclaimed = report.bytes_reclaimed();
        self.reader.stats().record_gc_run(files, reclaimed);
        tracing::info!(
            files_rewritten = files,
            file_ids = ?report.files_retired,
            bytes_retired = report.bytes_retired,
            values_moved = report.values_moved,
            bytes_reclaimed = reclaimed,
            files_skipped = report.files_skipped,
            "value-log GC rewrote files"
        );
    }

    /// The sealed files to probe, oldest first: those not among `tried` that were never
    /// probed, or were probed before the value log grew by a tenth of their size (writes
    /// since may have overwritten their keys).
    fn probe_order(&self, sealed: &[(u32, u64)], tried: &[u32]) -> Vec<u32> {
        let head = self.head();
        let mut probed = self.probed.lock().unwrap_or_else(|e| e.into_inner());
        // Retired files never come back (ids are not reused).
        probed.retain(|id, _| sealed.iter().any(|&(s, _)| s == *id));
        let grown = |at: Head, size: u64| {
            head.file_id > at.file_id
                || head.bytes.saturating_sub(at.bytes) as f64 >= size as f64 * SAMPLE_FRACTION
        };
        let mut ids: Vec<u32> = sealed
            .iter()
            .filter(|(id, _)| !tried.contains(id))
            .filter(|&(id, size)| probed.get(id).is_none_or(|&at| grown(at, *size)))
            .map(|&(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Seals the active file if it holds at least a quarter of `value_log_file_size`, and
    /// returns its id (now a sealed file); `None` if it is smaller.
    ///
    /// The writer appends a group's values before it inserts the group in the memtable, so a
    /// group may have values in the file just sealed and not be in the tree yet: its records
    /// would look dead. A barrier through the write queue waits until every group queued
    /// before it (the one in flight included) is applied, before anything is classified.
    fn seal_large_active(&self) -> Result<Option<u32>> {
        let head = self.head();
        if head.bytes < (self.opts.value_log_file_size / ACTIVE_SEAL_DIVISOR).max(1) {
            return Ok(None);
        }
        let next = self.vlog.rotate()?;
        if next == head.file_id {
            return Ok(None);
        }
        self.queue
            .push_with(|| Ok(WriteRequest::sync_barrier()))?
            .wait()?;
        Ok(Some(head.file_id))
    }

    /// Where the value log is being appended.
    fn head(&self) -> Head {
        let file_id = self.vlog.active_file_id().unwrap_or(0);
        Head {
            file_id,
            bytes: self.vlog.file_size_bytes(file_id).unwrap_or(0),
        }
    }

    /// Remembers that file `id` was probed and kept with the value log at its current head.
    fn mark_probed(&self, id: u32) {
        let head = self.head();
        self.probed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, head);
    }

    /// True if a sample of file `id` is at least `discard_ratio` dead (by bytes).
    fn sample_is_dead_enough(
        &self,
        id: u32,
        size: u64,
        discard_ratio: f64,
        sample: Sample,
        limiter: &mut Pacer<'_>,
    ) -> Result<bool> {
        let budget = (size as f64 * SAMPLE_FRACTION) as u64;
        let snap = self.reader.snapshot();
        let ts = self.oracle.discard_ts();
        let policy = self.policy(ts, now_secs());
        let (mut seen, mut live, mut records) = (0u64, 0u64, 0u64);
        self.vlog.iterate_file(id, |vp, rec| {
            let len = u64::from(vp.len);
            seen += len;
            records += 1;
            if classify(&snap, rec.key, vp, rec.expires_at, policy)? != Standing::Dead {
                live += len;
            }
            Ok(if seen >= budget || records >= sample.max_records {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        drop(snap);
        limiter.wait(seen);
        if seen == 0 {
            return Ok(true);
        }
        Ok((seen - live) as f64 / seen as f64 >= discard_ratio)
    }

    fn policy(&self, discard_ts: u64, now: u64) -> RetentionPolicy {
        RetentionPolicy {
            discard_ts,
            num_versions_to_keep: self.opts.num_versions_to_keep.max(1),
            now_secs: now,
        }
    }

    /// Moves the live values of file `id` and retires it, or leaves it (module doc).
    fn rewrite_file(
        &self,
        id: u32,
        discard_ratio: f64,
        sample: Sample,
        limiter: &mut Pacer<'_>,
        stop: &AtomicBool,
    ) -> Result<FileResult> {
        let Some(size) = self.vlog.file_size_bytes(id) else {
            return Ok(FileResult::Skipped);
        };
        let _ = limiter.wait(0);
        if !self.sample_is_dead_enough(id, size, discard_ratio, sample, limiter)? {
            return Ok(FileResult::Skipped);
        }
        let blocked = Arc::new(AtomicBool::new(false));
        let mut batch = Batch::default();
        let (mut moved, mut moved_bytes) = (0u64, 0u64);
        let snap = self.reader.snapshot();
        let policy = self.policy(self.oracle.discard_ts(), now_secs());
        // Moves a batch; inside the file the pacer only looks (it never waits holding the
        // snapshot): true if the others are busy, and the file is then given up.
        let mut submit = |batch: &mut Batch, limiter: &mut Pacer<'_>| {
            let (entries, expected) = batch.take();
            let n = self.submit(entries, expected, &blocked)?;
            moved += n.0;
            moved_bytes += n.1;
            Ok::<bool, Error>(limiter.give_way(n.1))
        };
        let (mut outcome, mut records) = (None, 0u64);
        self.vlog.iterate_file(id, |vp, rec| {
            // A mostly dead file submits few batches: close and the pacer are looked at
            // per record too, or a close would wait for a whole file's lookups (23 s for a
            // file of 1 KiB values measured once) and GC would not yield meanwhile.
            records += 1;
            if stop.load(Ordering::Acquire)
                || (records % PACE_EVERY_RECORDS == 0 && limiter.give_way(0))
            {
                outcome = Some(FileResult::Interrupted);
                return Ok(ControlFlow::Break(()));
            }
            match classify(&snap, rec.key, vp, rec.expires_at, policy)? {
                Standing::Dead => return Ok(ControlFlow::Continue(())),
                Standing::Blocked => {
                    outcome = Some(FileResult::Skipped);
                    return Ok(ControlFlow::Break(()));
                }
                Standing::Live => {}
            }
            let entry = WriteEntry {
                key: Bytes::copy_from_slice(user_key(rec.key)),
                version: version(rec.key),
                meta: rec.meta & !meta::VALUE_POINTER,
                user_meta: rec.user_meta,
                expires_at: rec.expires_at,
                value: Bytes::copy_from_slice(rec.value),
            };
            if !batch.fits(&self.opts, &entry) && !batch.is_empty() {
                let busy = submit(&mut batch, limiter)?;
                if blocked.load(Ordering::Acquire) {
                    outcome = Some(FileResult::Skipped);
                    return Ok(ControlFlow::Break(()));
                }
                if busy || stop.load(Ordering::Acquire) {
                    outcome = Some(FileResult::Interrupted);
                    return Ok(ControlFlow::Break(()));
                }
            }
            batch.push(&self.opts, entry, vp);
            Ok(ControlFlow::Continue(()))
        })?;
        if let Some(given_up) = outcome {
            return Ok(given_up);
        }
        if !batch.is_empty() {
            // The file's last batch: its work is done, so busy threads are no reason to
            // give it up, and the pacer does not wait (the snapshot is still held).
            let _busy = submit(&mut batch, limiter)?;
        }
        if blocked.load(Ordering::Acquire) {
            return Ok(FileResult::Skipped);
        }
        if stop.load(Ordering::Acquire) {
            return Ok(FileResult::Interrupted);
        }
        // Every rewrite durable before the file goes (one sync for all of them), and no live
        // WAL pointing into the file (WAL replay checks each pointer).
        self.queue
            .push_with(|| Ok(WriteRequest::sync_barrier()))?
            .wait()?;
        if !self.flush_memtables_pointing_into(id, stop)? {
            return Ok(FileResult::Interrupted);
        }
        self.vlog.retire_file(id)?;
        self.discards.reset(id)?;
        Ok(FileResult::Retired {
            bytes: size,
            moved,
            moved_bytes,
        })
    }

    /// Waits until no memtable (so no live WAL) points into value-log file `id`, rotating
    /// the mutable memtable if it does. `Ok(false)`: stopped (close) first.
    fn flush_memtables_pointing_into(&self, id: u32, stop: &AtomicBool) -> Result<bool> {
        let memtables = self.reader.memtables();
        let points_into =
            |m: &crate::memtable::Memtable| m.min_vlog_file().is_some_and(|f| f <= id);
        if points_into(&memtables.mutable()) {
            self.queue
                .push_with(|| Ok(WriteRequest::rotate_memtable()))?
                .wait()?;
        }
        while memtables.view().newest_first.iter().any(|m| points_into(m)) {
            self.poison.check()?;
            if stop.load(Ordering::Acquire) {
                return Ok(false);
            }
            memtables.wait_flushed_for(FLUSH_POLL);
        }
        Ok(true)
    }

    /// Queues one rewrite and waits for it; returns the values and bytes it moved.
    fn submit(
        &self,
        entries: Vec<WriteEntry>,
        expected: Vec<ValuePointer>,
        blocked: &Arc<AtomicBool>,
    ) -> Result<(u64, u64)> {
        let (reader, oracle) = (self.reader.clone(), self.oracle.clone());
        let keep = self.opts.num_versions_to_keep.max(1);
        let flag = blocked.clone();
        let moved = Arc::new(Mutex::new((0u64, 0u64)));
        let moved_out = moved.clone();
        let check = Box::new(move |entries: &mut Vec<WriteEntry>| -> Result<()> {
            // On the writer thread: nothing is applied while this runs.
            let snap = reader.snapshot();
            let policy = RetentionPolicy {
                discard_ts: oracle.discard_ts(),
                num_versions_to_keep: keep,
                now_secs: now_secs(),
            };
            let mut kept = Vec::with_capacity(entries.len());
            for (e, vp) in std::mem::take(entries).into_iter().zip(expected) {
                let key = key_with_version(&e.key, e.version);
                match classify(&snap, &key, vp, e.expires_at, policy)? {
                    Standing::Live => kept.push(e),
                    Standing::Dead => {}
                    Standing::Blocked => {
                        flag.store(true, Ordering::Release);
                        return Err(Error::InvalidRequest(
                            "value-log GC: a value to move is still visible below a newer \
                             version; the file is left for a later run",
                        ));
                    }
                }
            }
            let bytes = kept.iter().map(|e| e.value.len() as u64).sum();
            *moved_out.lock().unwrap_or_else(|e| e.into_inner()) = (kept.len() as u64, bytes);
            *entries = kept;
            Ok(())
        });
        let completion = self
            .queue
            .push_with(|| Ok(WriteRequest::rewrite(entries, check)))?;
        match completion.wait() {
            Ok(()) => Ok(*moved.lock().unwrap_or_else(|e| e.into_inner())),
            Err(_) if blocked.load(Ordering::Acquire) => Ok((0, 0)),
            Err(e) => Err(e),
        }
    }
}

/// How the record of internal key `key` (pointing at `vp`, expiring at `expires_at`) stands
/// in `snap` under `policy` (module doc).
fn classify(
    snap: &ReadSnapshot,
    key: &[u8],
    vp: ValuePointer,
    expires_at: u64,
    policy: RetentionPolicy,
) -> Result<Standing> {
    let (uk, v) = (user_key(key), version(key));
    if is_expired(expires_at, policy.now_secs) {
        return Ok(Standing::Dead);
    }
    let Some(found) = get_newest(&snap.memtables, &snap.levels, uk, u64::MAX)? else {
        return Ok(Standing::Dead);
    };
    let newest = found.version;
    if newest == v {
        return Ok(if points_at(found.value(), vp) {
            Standing::Live
        } else {
            Standing::Dead
        });
    }
    if newest < v {
        // Only a version this record's own write made could be newer; it is gone.
        return Ok(Standing::Dead);
    }
    // Shadowed: walk the versions from the newest down to v through the retention rules,
    // stopping as soon as they drop everything older (one lookup per version walked: without
    // the stop, a key overwritten n times in one file cost n * n / 2 lookups to classify).
    let mut retention = Retention::new(policy);
    let mut always = |_: &[u8]| true;
    let mut cur = found;
    loop {
        let ver = cur.version;
        let decision = retention.decide(&key_with_version(uk, ver), cur.value(), &mut always);
        if ver == v {
            return Ok(match (decision, points_at(cur.value(), vp)) {
                (Decision::Keep, true) => Standing::Blocked,
                _ => Standing::Dead,
            });
        }
        if retention.drops_older_versions() {
            return Ok(Standing::Dead);
        }
        match get_newest(&snap.memtables, &snap.levels, uk, ver - 1)? {
            Some(next) if next.version >= v => cur = next,
            _ => return Ok(Standing::Dead),
        }
    }
}

/// True if `vs` is a value pointer equal to `vp`.
fn points_at(vs: ValueRef<'_>, vp: ValuePointer) -> bool {
    vs.meta & meta::VALUE_POINTER != 0 && ValuePointer::decode(vs.value) == Some(vp)
}

/// Rewrites gathered for one write request.
#[derive(Default)]
struct Batch {
    entries: Vec<WriteEntry>,
    expected: Vec<ValuePointer>,
    charge: u64,
    vlog_bytes: u64,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if `e` fits the limits of one write with the entries gathered so far.
    fn fits(&self, opts: &Options, e: &WriteEntry) -> bool {
        let vlog = if opts.goes_to_value_log(e.value.len()) {
            e.value.len() as u64
        } else {
            0
        };
        (self.entries.len() as u64) < opts.max_batch_count()
            && self.charge + opts.entry_charge(e.key.len(), e.value.len()) <= opts.max_batch_size()
            && self.vlog_bytes + vlog <= opts.value_log_file_size.min(BATCH_VALUE_BYTES)
    }

    fn push(&mut self, opts: &Options, e: WriteEntry, vp: ValuePointer) {
        self.charge += opts.entry_charge(e.key.len(), e.value.len());
        if opts.goes_to_value_log(e.value.len()) {
            self.vlog_bytes += e.value.len() as u64;
        }
        self.entries.push(e);
        self.expected.push(vp);
    }

    fn take(&mut self) -> (Vec<WriteEntry>, Vec<ValuePointer>) {
        self.charge = 0;
        self.vlog_bytes = 0;
        (
            std::mem::take(&mut self.entries),
            std::mem::take(&mut self.expected),
        )
    }
}

/// The value log's space amplification from its sealed and dead bytes (infinite when
/// everything sealed is dead, 1.0 when nothing is).
fn space_amp(sealed: u64, dead: u64) -> f64 {
    let live = sealed.saturating_sub(dead);
    if live == 0 {
        return if dead > 0 { f64::INFINITY } else { 1.0 };
    }
    sealed as f64 / live as f64
}

/// How long GC works between two looks at the rest of the process's CPU use.
const YIELD_WORK_SLICE: Duration = Duration::from_millis(250);
/// How long one look lasts: GC waits and measures the others' CPU time meanwhile (so its own
/// work, which would take their cores, is not in the figure).
const YIELD_LISTEN: Duration = Duration::from_millis(25);
/// The others are busy when they leave less than this much of a core idle.
const YIELD_FREE_CORES: f64 = 0.5;
/// Looks in a row that must find the others not busy before GC resumes after waiting for
/// them: one 25 ms look at threads that keep every core busy reads 1.6-2.1 cores of 2 on the
/// development machine (the hypervisor takes some), so one low reading is not an idle
/// process.
const YIELD_CALM_LOOKS: u32 = 2;

/// Paces one GC run: keeps the bytes sampled or moved per second under a rate by sleeping
/// after each batch, and, for automatic GC, waits while the rest of the process keeps the
/// cores busy (a background thread at the same priority would take a core from the
/// application's threads, and on a few cores each time slice it takes is a foreground
/// request delayed by milliseconds; a lower nice value cannot be taken back when GC must
/// catch up, so GC yields by itself). A rewrite that finds the others busy in the middle of
/// a file gives the file up (as at close) before it waits: its read snapshot would pin
/// memtables and tables for as long as the application stays busy. What it moved stays
/// moved, so the next attempt finds those records dead and goes on from there.
struct Pacer<'a> {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
    yields: Option<Yield<'a>>,
}

/// When and how a GC run yields.
struct Yield<'a> {
    /// Cores the process may use.
    cores: f64,
    /// True when GC must not wait: the value log too far over its target, or a caller
    /// waiting for the run to end.
    urgent: Box<dyn Fn() -> bool + 'a>,
    /// Waits [`YIELD_LISTEN`] and says whether the other threads kept more than
    /// `cores - YIELD_FREE_CORES` cores busy meanwhile ([`others_busy`]; tests script it).
    look: Box<dyn FnMut(f64) -> bool + 'a>,
    /// When the last look ended.
    last_look: Option<Instant>,
    /// Close: stop waiting.
    stop: &'a AtomicBool,
}

impl<'a> Pacer<'a> {
    fn new(rate: Option<u64>, yields: Option<Yield<'a>>) -> Self {
        Pacer {
            rate: rate.filter(|&r| r > 0),
            start: Instant::now(),
            bytes: 0,
            yields,
        }
    }

    /// Called after `bytes` were sampled or moved (0: before a file's work begins), holding
    /// nothing: keeps the rate, and waits while the others are busy. True if it waited.
    fn wait(&mut self, bytes: u64) -> bool {
        self.pace(bytes, true)
    }

    /// As [`Pacer::wait`], but called inside a file, holding a read snapshot: looks at most
    /// once and never waits for the others; true if they are busy (the rewrite then gives
    /// its file up, and the next file's [`Pacer::wait`] waits with nothing held).
    fn give_way(&mut self, bytes: u64) -> bool {
        self.pace(bytes, false)
    }

    fn pace(&mut self, bytes: u64, patient: bool) -> bool {
        if let Some(rate) = self.rate {
            self.bytes += bytes;
            let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        let waited = self.yield_while_busy(patient);
        if waited {
            // The time spent waiting is not credit for a burst above the rate.
            self.start = Instant::now();
            self.bytes = 0;
        }
        waited
    }

    /// Looks at the others' CPU use once a work slice has passed; if they are busy and
    /// `patient`, keeps looking until [`YIELD_CALM_LOOKS`] looks in a row find them not
    /// busy, the value log is urgent, or the database closes. True if they were busy.
    fn yield_while_busy(&mut self, patient: bool) -> bool {
        let Some(y) = self.yields.as_mut() else {
            return false;
        };
        if y.last_look.is_some_and(|t| t.elapsed() < YIELD_WORK_SLICE) {
            return false;
        }
        let (mut waited, mut calm) = (false, 0);
        while !y.stop.load(Ordering::Acquire) && !(y.urgent)() {
            if (y.look)(y.cores) {
                (waited, calm) = (true, 0);
                if !patient {
                    break;
                }
                continue;
            }
            calm += 1;
            if !waited || calm >= YIELD_CALM_LOOKS {
                break;
            }
        }
        y.last_look = Some(Instant::now());
        waited
    }
}

/// Waits [`YIELD_LISTEN`], then says whether the process's other threads kept more than
/// `cores - YIELD_FREE_CORES` cores busy meanwhile (false where CPU time cannot be read).
fn others_busy(cores: f64) -> bool {
    let Some((p0, t0)) = cpu_time::process_and_thread() else {
        return false;
    };
    let started = Instant::now();
    std::thread::sleep(YIELD_LISTEN);
    let Some((p1, t1)) = cpu_time::process_and_thread() else {
        return false;
    };
    let others = p1.saturating_sub(p0).saturating_sub(t1.saturating_sub(t0));
    others.as_secs_f64() / started.elapsed().as_secs_f64() > cores - YIELD_FREE_CORES
}

/// How often automatic value-log GC looks at the space amplification.
const AUTO_GC_INTERVAL: Duration = Duration::from_secs(1);
/// How often a sleeping GC thread looks at the closing flag.
const CLOSE_POLL: Duration = Duration::from_millis(100);

impl ValueLogGc {
    /// The automatic GC thread's loop: while the value log's estimated space amplification
    /// is above the target, rewrites the files worth it, rate-limited, and probes one file a
    /// tick for garbage the statistics cannot see; stops at close. An error other than close
    /// poisons the database (rule 8: a damaged value-log file or a failed write must not go
    /// unnoticed).
    pub(crate) fn run_automatic(&self, opts: &Options, closing: &AtomicBool, poison: &Poison) {
        while !closing.load(Ordering::Acquire) && poison.check().is_ok() {
            let (sealed, dead) = self.sealed_and_discard_bytes();
            let plan = automatic_plan(opts, sealed, dead);
            match self.run(plan, closing) {
                Ok(GcOutcome::Rewrote(_)) => continue,
                Ok(GcOutcome::NothingToRewrite) => {}
                Err(Error::Closed) => return,
                Err(e) => {
                    tracing::error!(error = %e, "automatic value-log GC failed");
                    poison.set(&e);
                    return;
                }
            }
            sleep_unless(closing, AUTO_GC_INTERVAL);
        }
    }
}

/// One tick of automatic GC, given the sealed and dead bytes the statistics show: the
/// statistics' candidates first when they show the log over target, else (or if they found
/// nothing) one probe for garbage they cannot see yet; one file at most, rate-limited,
/// yielding below the busy bound.
fn automatic_plan(opts: &Options, sealed: u64, dead: u64) -> GcPlan {
    let target = opts.value_log_gc_space_amp;
    GcPlan {
        // A file is worth rewriting when its dead fraction is above what the target allows
        // on average: the value log is over target only if some file is.
        discard_ratio: (1.0 - 1.0 / target).clamp(0.01, 0.99),
        max_files: 1,
        rate: Some(opts.value_log_gc_rate_bytes),
        from_statistics: space_amp(sealed, dead) > target,
        probes: 1,
        yield_below: Some(opts.value_log_gc_busy_space_amp),
    }
}

/// Sleeps `total`, waking early once `closing` is set.
fn sleep_unless(closing: &AtomicBool, total: Duration) {
    let step = CLOSE_POLL.min(total);
    let mut slept = Duration::ZERO;
    while slept < total && !closing.load(Ordering::Acquire) {
        std::thread::sleep(step);
        slept += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value_len: usize) -> WriteEntry {
        WriteEntry {
            key: Bytes::from_static(b"key"),
            version: 1,
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: Bytes::from(vec![7u8; value_len]),
        }
    }

    /// A pacer that yields, whose looks answer `script` in turn (then "not busy"), each
    /// after `look_takes`; counts the looks.
    fn scripted<'a>(
        script: Vec<bool>,
        look_takes: Duration,
        urgent: bool,
        stop: &'a AtomicBool,
        looks: &'a std::cell::Cell<usize>,
        rate: Option<u64>,
    ) -> Pacer<'a> {
        let mut answers = script.into_iter();
        let yields = Yield {
            cores: 2.0,
            urgent: Box::new(move || urgent),
            look: Box::new(move |cores| {
                assert_eq!(cores, 2.0);
                looks.set(looks.get() + 1);
                std::thread::sleep(look_takes);
                answers.next().unwrap_or(false)
            }),
            last_look: None,
            stop,
        };
        Pacer::new(rate, Some(yields))
    }

    #[test]
    fn gc_waits_while_the_others_are_busy_and_looks_once_per_work_slice() {
        // Proves the yield loop: the first call looks until the others have been not busy
        // for two looks in a row (a busy look in between starts the count again), a call
        // within the work slice does not look, a call after it looks once when the others
        // are not busy, and a pacer without yields never looks.
        let (stop, looks) = (AtomicBool::new(false), std::cell::Cell::new(0));
        let script = vec![true, true, false, true];
        let mut p = scripted(script, Duration::ZERO, false, &stop, &looks, None);
        assert!(p.wait(0), "waited for the busy threads");
        assert_eq!(looks.get(), 6);
        assert!(!p.wait(1 << 20));
        assert_eq!(looks.get(), 6, "looked again within the work slice");
        std::thread::sleep(YIELD_WORK_SLICE);
        assert!(!p.wait(0), "one calm look is no wait");
        assert_eq!(looks.get(), 7);
        // Inside a file it looks once and never waits: busy is an answer, not a wait.
        let (stop2, looks2) = (AtomicBool::new(false), std::cell::Cell::new(0));
        let mut q = scripted(
            vec![true, true],
            Duration::ZERO,
            false,
            &stop2,
            &looks2,
            None,
        );
        assert!(q.give_way(0), "the others are busy");
        assert_eq!(looks2.get(), 1);
        assert!(!q.give_way(0), "within the work slice");
        assert_eq!(looks2.get(), 1);
        let mut plain = Pacer::new(None, None);
        plain.wait(1 << 20);
        assert!(!plain.yield_while_busy(true));
    }

    #[test]
    fn an_urgent_value_log_or_a_close_does_not_wait_for_the_others() {
        // Proves the escape hatches: over the busy bound, or once closing, GC does not look
        // at (or wait for) the others at all.
        let looks = std::cell::Cell::new(0);
        let running = AtomicBool::new(false);
        let mut urgent = scripted(vec![true; 5], Duration::ZERO, true, &running, &looks, None);
        urgent.wait(0);
        assert_eq!(looks.get(), 0);
        let closing = AtomicBool::new(true);
        let mut closed = scripted(vec![true; 5], Duration::ZERO, false, &closing, &looks, None);
        closed.wait(0);
        assert_eq!(looks.get(), 0);
    }

    #[test]
    fn time_spent_yielding_is_no_credit_for_a_burst_over_the_rate() {
        // Proves the rate restarts after a wait: 100 ms of yielding, then 100 KB at 1 MB/s
        // still takes 100 ms (without the restart the wait would count as time already
        // spent and the bytes would go at once).
        let (stop, looks) = (AtomicBool::new(false), std::cell::Cell::new(0));
        let look = Duration::from_millis(50);
        let mut p = scripted(vec![true], look, false, &stop, &looks, Some(1_000_000));
        p.wait(0);
        assert_eq!(looks.get(), 3);
        let t = Instant::now();
        p.wait(100_000);
        assert!(
            t.elapsed() >= Duration::from_millis(95),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn the_rate_limit_counts_the_time_already_spent() {
        // Proves the limiter sleeps only what the rate still asks for: 200 KB at 1 MB/s is
        // due 200 ms after the start, so after 120 ms of other work it sleeps about 80 ms
        // (not 200 ms, nor 320 ms), and once the time is past it does not sleep at all.
        let mut p = Pacer::new(Some(1_000_000), None);
        std::thread::sleep(Duration::from_millis(120));
        let t = Instant::now();
        p.wait(200_000);
        let slept = t.elapsed();
        assert!(slept >= Duration::from_millis(75), "{slept:?}");
        assert!(slept < Duration::from_millis(190), "{slept:?}");
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        p.wait(100_000);
        assert!(t.elapsed() < Duration::from_millis(90), "{:?}", t.elapsed());
    }

    #[test]
    fn automatic_gc_plans_from_the_target() {
        // Proves the automatic plan: files at least 1 - 1/target dead (clamped to 1%..99%),
        // the statistics' candidates only when they show the log over the target, one file,
        // the options' rate and busy bound.
        let opts = Options::new("/x")
            .with_value_log_gc_rate_bytes(7)
            .with_value_log_gc_busy_space_amp(3.0);
        let plan = automatic_plan(&opts, 1000, 500);
        assert!((plan.discard_ratio - 1.0 / 3.0).abs() < 1e-9, "{plan:?}");
        assert!(plan.from_statistics, "space amp 2.0 is over 1.5");
        assert_eq!((plan.max_files, plan.probes), (1, 1));
        assert_eq!((plan.rate, plan.yield_below), (Some(7), Some(3.0)));
        assert!(
            !automatic_plan(&opts, 1000, 300).from_statistics,
            "1.43 is under 1.5"
        );
        assert!(
            !automatic_plan(&opts, 1500, 500).from_statistics,
            "exactly 1.5 is not over"
        );
        assert!(!automatic_plan(&opts, 1000, 0).from_statistics);
        assert!(
            automatic_plan(&opts, 1000, 1000).from_statistics,
            "all dead"
        );
        let tight = opts.clone().with_value_log_gc_space_amp(1.001);
        assert_eq!(automatic_plan(&tight, 1, 1).discard_ratio, 0.01);
        let loose = opts.with_value_log_gc_space_amp(1000.0);
        assert_eq!(automatic_plan(&loose, 1, 1).discard_ratio, 0.99);
        let half = Options::new("/x").with_value_log_gc_space_amp(2.0);
        assert_eq!(automatic_plan(&half, 1, 1).discard_ratio, 0.5);
    }

    #[test]
    fn space_amplification_of_edge_cases() {
        // Proves the estimate at its edges: nothing sealed or nothing dead is 1.0, all dead
        // is infinite (always over any target), and half dead is 2.0.
        assert_eq!(space_amp(0, 0), 1.0);
        assert_eq!(space_amp(100, 0), 1.0);
        assert_eq!(space_amp(100, 100), f64::INFINITY);
        assert_eq!(space_amp(100, 150), f64::INFINITY);
        assert_eq!(space_amp(100, 50), 2.0);
    }

    #[test]
    fn a_rewrite_batch_holds_at_most_its_value_bytes() {
        // Proves the memory bound of a rewrite: value-log values (whose memtable charge is
        // only a pointer) stop a batch at BATCH_VALUE_BYTES, not at the file size. (One
        // value larger than the bound does not fit even an empty batch: the caller sends a
        // batch only when it is not empty, so such a value goes alone.)
        let opts = Options::new("/x");
        let mut batch = Batch::default();
        let vp = ValuePointer::default();
        let mut n = 0u64;
        while batch.fits(&opts, &entry(16 << 10)) {
            batch.push(&opts, entry(16 << 10), vp);
            n += 1;
            assert!(n < 10_000, "the batch never filled");
        }
        assert_eq!(n * (16 << 10), BATCH_VALUE_BYTES);
        assert!(!Batch::default().fits(&opts, &entry((BATCH_VALUE_BYTES + 1) as usize)));
        let (entries, expected) = batch.take();
        assert_eq!((entries.len(), expected.len()), (n as usize, n as usize));
        assert!(batch.is_empty() && batch.fits(&opts, &entry(16 << 10)));
    }
}

//! Flush: an immutable memtable becomes an L0 table.
//!
//! Order (DESIGN.md rules 5 and 11): the value log is synced first (the table will point into
//! it); the operation begins in the MANIFEST (its table id reserved, its source WAL named); the
//! table is written and synced, its directory entry synced; the manifest edit adding it, ending
//! the operation and deleting the WAL is synced; readers see it; only then is the WAL file
//! deleted. A crash before the edit leaves an unfinished output that the next open proves
//! garbage (its WAL is still there) and removes; after it, at most a WAL file the manifest no
//! longer lists, which is garbage too.
//!
//! Versions: a flush applies compaction's version retention ([`Retention`]) to the memtable,
//! so versions at or below the discard timestamp that a newer one shadows (an update-heavy
//! key's thousands of them) never reach L0, as RocksDB drops them at flush. It keeps every
//! tombstone that ends a key (an older table may still hold the key), and counts the value-log
//! bytes of what it drops in the discard statistics once the table is installed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::compaction::{Decision, Retention, RetentionPolicy};
use crate::error::Result;
use crate::io::{parent_dir, OpenMode};
use crate::levels::{Levels, LevelsEdit};
use crate::manifest::{ManifestChange, OpSource};
use crate::memtable::{Memtable, Memtables};
use crate::table::{KvIterator, TableBuilder, TableBuilderOptions};
use crate::vlog::{DiscardStats, DiscardTracker, ValueLog};
use crate::write::Poison;

/// Writes `mem` as a new L0 table and installs it; deletes the memtable's WAL. An empty
/// memtable only has its WAL deleted. With `retention`, versions it drops are left out of the
/// table, and the value-log bytes per file of those versions are returned for the caller to
/// count; without, every version is written.
pub fn flush_memtable(
    mem: &Memtable,
    levels: &Levels,
    vlog: Option<&ValueLog>,
    builder_opts: TableBuilderOptions,
    retention: Option<RetentionPolicy>,
) -> Result<DiscardStats> {
    let started = std::time::Instant::now();
    let storage = levels.storage().clone();
    let wal = mem.wal_path().map(|_| mem.id());
    let mut discard = DiscardStats::new();
    if mem.list().is_empty() {
        if let Some(wal_id) = wal {
            levels
                .manifest()
                .edit(&[ManifestChange::DeleteWal { wal_id }])?;
        }
        mem.delete_wal(storage.as_ref())?;
        return Ok(discard);
    }
    if let Some(v) = vlog {
        v.sync()?;
    }
    let source = wal.map_or(OpSource::None, OpSource::Wal);
    let mut ids = levels.begin_op(1, source)?;
    let id = levels.new_table_id(&mut ids)?;
    let path = levels.table_path(id);
    let file = storage.open(&path, OpenMode::CreateNew)?;
    let mut builder =
        TableBuilder::new(file, builder_opts)?.with_cipher(levels.new_table_cipher()?);
    let mut retention = retention.map(Retention::new);
    // Nothing below a flush is known: a tombstone or expired value that ends a key is kept.
    let mut deeper = |_: &[u8]| true;
    let mut it = mem.iter();
    it.seek_to_first()?;
    let mut dropped = 0u64;
    while it.valid() {
        let (key, value) = (it.key(), it.value());
        let keep = retention
            .as_mut()
            .is_none_or(|r| r.decide(key, value, &mut deeper) == Decision::Keep);
        if keep {
            builder.add(key, value)?;
        } else {
            dropped += 1;
            if let Some(vp) = value.value_pointer() {
                discard.add(vp.file_id, u64::from(vp.len));
            }
        }
        it.next()?;
    }
    // Retention keeps the newest version of every key, so a non-empty memtable writes one.
    debug_assert!((dropped as usize) < mem.list().len());
    builder.finish()?;
    storage.sync_dir(&parent_dir(&path))?;
    let table = levels.open_new_table(id)?;
    let table_bytes = table.size_bytes();
    levels.apply_edit(&LevelsEdit {
        added: vec![(0, table)],
        removed: Vec::new(),
        end_op: Some(ids.op_id()),
        delete_wal: wal,
    })?;
    mem.delete_wal(storage.as_ref())?;
    let elapsed = started.elapsed();
    levels.stats().record_flush(table_bytes, elapsed);
    tracing::info!(
        memtable_id = mem.id(),
        table_id = id,
        table_bytes,
        versions_dropped = dropped,
        duration_ms = elapsed.as_millis() as u64,
        "flushed a memtable to L0"
    );
    Ok(discard)
}

/// The flusher thread: flushes immutable memtables, oldest first, waiting while L0 is at its
/// stall count; the first error poisons the database.
pub(crate) struct Flusher {
    pub(crate) memtables: Arc<Memtables>,
    pub(crate) levels: Arc<Levels>,
    pub(crate) vlog: Option<Arc<ValueLog>>,
    pub(crate) poison: Arc<Poison>,
    pub(crate) closing: Arc<AtomicBool>,
    pub(crate) builder_opts: TableBuilderOptions,
    /// L0 tables at which a flush waits (`None`: never, when no compactor would shrink L0).
    pub(crate) l0_stall: Option<usize>,
    /// The discard timestamp (the oracle's: the oldest live read timestamp), asked at each
    /// flush; versions above it are kept.
    pub(crate) discard_ts: Box<dyn Fn() -> u64 + Send>,
    /// Versions kept at or below the discard timestamp (`Options::num_versions_to_keep`).
    pub(crate) num_versions_to_keep: u32,
    /// Where the value-log bytes of dropped versions are counted.
    pub(crate) discards: Arc<DiscardTracker>,
}

/// How long a flush waiting for L0 to shrink sleeps before looking at close again.
const STALL_POLL: std::time::Duration = std::time::Duration::from_millis(100);

impl Flusher {
    /// Waits while L0 holds `stall` tables or more (writes stall behind this flush).
    fn wait_for_l0(&self, stall: usize) {
        let l0 = self.levels.snapshot().tables(0).len();
        if l0 < stall || self.closing.load(Ordering::Acquire) {
            return;
        }
        let started = std::time::Instant::now();
        tracing::warn!(l0_tables = l0, stall_at = stall, "write stall: L0 is full");
        while !self.closing.load(Ordering::Acquire)
            && self.levels.snapshot().tables(0).len() >= stall
        {
            self.levels
                .wait_while(STALL_POLL, |s| s.tables(0).len() >= stall);
        }
        let elapsed = started.elapsed();
        self.levels.stats().record_write_stall("l0", elapsed);
        tracing::warn!(
            duration_ms = elapsed.as_millis() as u64,
            "write stall over: L0 shrank"
        );
    }

    /// Flushes `mem` with version retention at the discard timestamp of this moment, then
    /// counts the value-log bytes it dropped (after the table is installed, as compaction
    /// does: before, a crash would leave them counted and still referenced by the WAL).
    fn flush(&self, mem: &Memtable) -> Result<()> {
        let policy = RetentionPolicy {
            discard_ts: (self.discard_ts)(),
            num_versions_to_keep: self.num_versions_to_keep.max(1),
            now_secs: crate::clock::now_secs(),
        };
        let vlog = self.vlog.as_deref();
        let dropped = flush_memtable(mem, &self.levels, vlog, self.builder_opts, Some(policy))?;
        self.discards.add(&dropped)
    }

    /// Flushes immutable memtables, oldest first, until closed with none left.
    pub(crate) fn run(&self) {
        while let Some(mem) = self.memtables.wait_oldest_immutable() {
            if let Some(stall) = self.l0_stall {
                self.wait_for_l0(stall);
            }
            match self.flush(&mem) {
                Ok(()) => self.memtables.remove_flushed(mem.id()),
                Err(e) => {
                    tracing::error!(error = %e, memtable_id = mem.id(), "flush failed");
                    // Writes fail from now on (rule 8); the memtable stays readable and its
                    // WAL stays on disk for the next open.
                    self.poison.set(&e);
                    self.memtables.abandon_flushes();
                    return;
                }
            }
        }
    }
}

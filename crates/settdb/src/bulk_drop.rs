//! Dropping data in bulk: `Db::drop_all` and `Db::drop_prefix` (Badger's `DropAll` and
//! `DropPrefix`), without writing a tombstone per key.
//!
//! Both run with the world held still, in this order (each step waits for the one before):
//! 1. value-log GC is held off (a GC run needs the writer, so it goes first);
//! 2. the writer pauses ([`WriteRequest::pause`]): every write queued before is applied and
//!    its memtable rotated; writes queued later wait (they are not refused);
//! 3. every immutable memtable is flushed to L0 (compactions still run, so an L0 stall
//!    clears); for a prefix, L0 is then compacted into the base level;
//! 4. compactions pause and the running ones end.
//!
//! Then `drop_all` removes every table in one MANIFEST edit, starts a new value-log file and
//! retires every older one (each goes when the last snapshot that pins it drops); `drop_prefix`
//! rewrites the tables that may hold a prefix without its keys, in one MANIFEST operation
//! (atomic across a crash), and counts the dropped values for value-log GC. Iterators and
//! items created before keep reading what they saw (they pin the tables and value-log files
//! they read). A drop is not versioned: a transaction begun before it, reading after it, no
//! longer finds the dropped keys (Badger's semantics).
//!
//! A crash during `drop_all` after the table edit and before every value-log file is retired
//! leaves value-log files that no key points at: GC's probes find them dead and retire them.

use std::sync::Arc;
use std::time::Duration;

use crate::compaction::Compactor;
use crate::error::{Error, Result};
use crate::levels::{LevelTable, Levels};
use crate::memtable::Memtables;
use crate::vlog::{DiscardTracker, ValueLog};
use crate::vlog_gc::ValueLogGc;
use crate::write::{Poison, WriteQueue, WriteRequest};

/// How long a wait for a flush sleeps before looking at the poison flag again.
const FLUSH_POLL: Duration = Duration::from_millis(50);

/// What dropping needs; no reference to `Db`.
pub(crate) struct DropContext<'a> {
    pub(crate) queue: &'a WriteQueue,
    pub(crate) memtables: &'a Memtables,
    pub(crate) compactor: &'a Compactor,
    pub(crate) levels: &'a Levels,
    pub(crate) vlog: Option<&'a Arc<ValueLog>>,
    pub(crate) discards: &'a DiscardTracker,
    pub(crate) gc: Option<&'a ValueLogGc>,
    pub(crate) poison: &'a Poison,
    /// The oracle's discard timestamp, read when needed.
    pub(crate) discard_ts: &'a dyn Fn() -> u64,
}

/// Removes every key and value (module doc).
pub(crate) fn drop_all(ctx: &DropContext<'_>) -> Result<()> {
    held_still(ctx, false, |pause| {
        let _ = pause;
        let snapshot = ctx.levels.snapshot();
        let removed: Vec<(usize, u64)> = (0..snapshot.level_count())
            .flat_map(|l| snapshot.tables(l).iter().map(move |t| (l, t.id())))
            .collect();
        if !removed.is_empty() {
            ctx.levels.apply_edit(&crate::levels::LevelsEdit {
                added: Vec::new(),
                removed,
                end_op: None,
                delete_wal: None,
            })?;
        }
        if let Some(vlog) = ctx.vlog {
            let active = vlog.rotate()?;
            for id in vlog.file_ids().into_iter().filter(|&id| id < active) {
                vlog.retire_file(id)?;
                ctx.discards.reset(id)?;
            }
        }
        Ok(())
    })
}

/// Removes every version of every key that starts with one of `prefixes` (module doc).
///
/// Errors: [`Error::InvalidRequest`] for an empty prefix (it matches every key: that is
/// `drop_all`); the I/O errors of the flushes and rewrites.
pub(crate) fn drop_prefix(ctx: &DropContext<'_>, prefixes: &[Vec<u8>]) -> Result<()> {
    if prefixes.iter().any(Vec::is_empty) {
        return Err(Error::InvalidRequest(
            "drop_prefix: an empty prefix matches every key (drop_all drops everything)",
        ));
    }
    if prefixes.is_empty() {
        return Ok(());
    }
    held_still(ctx, true, |pause| {
        let snapshot = ctx.levels.snapshot();
        let tables: Vec<(usize, Arc<LevelTable>)> = (0..snapshot.level_count())
            .flat_map(|l| snapshot.tables(l).iter().map(move |t| (l, t.clone())))
            .filter(|(_, t)| {
                prefixes
                    .iter()
                    .any(|p| may_hold_prefix(t.smallest_user_key(), t.biggest_user_key(), p))
            })
            .collect();
        if tables.iter().any(|(l, _)| *l == 0) {
            return Err(Error::InvalidRequest(
                "drop_prefix: level 0 was not empty after it was compacted",
            ));
        }
        if tables.is_empty() {
            return Ok(());
        }
        let matches = |uk: &[u8]| prefixes.iter().any(|p| uk.starts_with(p));
        ctx.compactor
            .drop_keys(pause, &tables, &matches, (ctx.discard_ts)())
    })
}

/// True if a table whose user keys run from `lo` to `hi` may hold a key starting with
/// `prefix`: the smallest such key is `prefix` itself, and a range starting above it holds
/// one only if its first key does.
fn may_hold_prefix(lo: &[u8], hi: &[u8], prefix: &[u8]) -> bool {
    hi >= prefix && (lo <= prefix || lo.starts_with(prefix))
}

/// Runs `work` with GC held off, the writer paused, the memtables flushed (and L0 compacted
/// into the base level if `empty_l0`) and compactions paused; everything resumes after,
/// whatever `work` returned.
pub(crate) fn held_still<T>(
    ctx: &DropContext<'_>,
    empty_l0: bool,
    work: impl FnOnce(&crate::compaction::CompactionPause<'_>) -> Result<T>,
) -> Result<T> {
    let _gc = ctx.gc.map(ValueLogGc::exclusive);
    let (request, gate) = WriteRequest::pause();
    let completion = ctx.queue.push_with(|| Ok(request))?;
    // Resumes the writer on every path out of here, error or panic.
    let _resume = Resume(&gate);
    gate.wait_paused()?;
    while ctx.memtables.immutable_count() > 0 {
        ctx.poison.check()?;
        ctx.memtables.wait_flushed_for(FLUSH_POLL);
    }
    if empty_l0 {
        ctx.compactor.compact_l0_fully((ctx.discard_ts)())?;
    }
    let pause = ctx.compactor.pause();
    ctx.poison.check()?;
    let outcome = work(&pause);
    drop(pause);
    gate.resume();
    // The pause request itself completes once the writer went on.
    let resumed = completion.wait();
    let outcome = outcome?;
    resumed.map(|()| outcome)
}

/// Resumes the writer when dropped.
struct Resume<'a>(&'a crate::write::PauseGate);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

#[cfg(test)]
mod tests {
    use super::may_hold_prefix;

    #[test]
    fn prefix_overlap_of_a_key_range() {
        // Proves the range test on its edges: below, inside, straddling, above, and a range
        // starting above the prefix itself but inside its keys.
        assert!(may_hold_prefix(b"a", b"z", b"m"));
        assert!(may_hold_prefix(b"m", b"m", b"m"));
        assert!(may_hold_prefix(b"mb", b"mz", b"m"));
        assert!(may_hold_prefix(b"a", b"ma", b"m"));
        assert!(!may_hold_prefix(b"a", b"l", b"m"));
        assert!(!may_hold_prefix(b"n", b"z", b"m"));
        assert!(!may_hold_prefix(b"a", b"lz", b"m"));
        assert!(may_hold_prefix(b"a", b"m", b"m"));
    }
}

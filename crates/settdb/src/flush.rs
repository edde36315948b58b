//! Flush: an immutable memtable becomes an L0 table.
//!
//! Order (DESIGN.md rule 5): the value log is synced first (the table will point into it);
//! the table is written and synced, its directory entry synced; the manifest edit adding it
//! is synced; readers see it; only then is the memtable's WAL deleted. A crash before the
//! manifest edit leaves an orphan table (removed on open) and the WAL (replayed again); after
//! it, a WAL that replays into a duplicate of the same versions (merges drop equal keys).

use crate::error::Result;
use crate::io::{parent_dir, OpenMode};
use crate::levels::{Levels, LevelsEdit};
use crate::memtable::Memtable;
use crate::table::{KvIterator, TableBuilder, TableBuilderOptions};
use crate::vlog::ValueLog;

/// Writes `mem` as a new L0 table and installs it; deletes the memtable's WAL. An empty
/// memtable only has its WAL deleted. Returns the new table's id, if one was written.
pub fn flush_memtable(
    mem: &Memtable,
    levels: &Levels,
    vlog: Option<&ValueLog>,
    builder_opts: TableBuilderOptions,
) -> Result<Option<u64>> {
    let storage = levels.storage().clone();
    if mem.list().is_empty() {
        mem.delete_wal(storage.as_ref())?;
        return Ok(None);
    }
    if let Some(v) = vlog {
        v.sync()?;
    }
    let id = levels.new_table_id();
    let path = levels.table_path(id);
    let file = storage.open(&path, OpenMode::CreateNew)?;
    let mut builder = TableBuilder::new(file, builder_opts)?;
    let mut it = mem.iter();
    it.seek_to_first()?;
    while it.valid() {
        builder.add(it.key(), it.value())?;
        it.next()?;
    }
    builder.finish()?;
    storage.sync_dir(&parent_dir(&path))?;
    let table = levels.open_new_table(id)?;
    levels.apply_edit(&LevelsEdit {
        added: vec![(0, table)],
        removed: Vec::new(),
    })?;
    mem.delete_wal(storage.as_ref())?;
    Ok(Some(id))
}

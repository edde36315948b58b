//! A table as a level holds it: the open table plus the duty to delete its file once the
//! table is obsolete (compacted away) and no snapshot can read it any more.
//!
//! Every snapshot of the levels that contains a table holds an `Arc<LevelTable>`; compaction
//! marks the inputs obsolete after the manifest edit that removed them is durable (rule 5), and
//! the last `Arc` to drop removes the file. So an iterator or read that took a snapshot keeps
//! its files until it finishes, with no reference counting of our own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::io::Storage;
use crate::key::user_key;
use crate::table::Table;

/// An open table in a level.
pub struct LevelTable {
    table: Arc<Table>,
    path: PathBuf,
    storage: Option<Arc<dyn Storage>>,
    obsolete: AtomicBool,
}

impl std::fmt::Debug for LevelTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelTable")
            .field("id", &self.table.id())
            .field("path", &self.path)
            .field("obsolete", &self.obsolete.load(Ordering::Relaxed))
            .finish()
    }
}

impl LevelTable {
    /// Wraps an open table whose file is `path` on `storage` (`None` for in-memory tables).
    pub fn new(table: Arc<Table>, path: PathBuf, storage: Option<Arc<dyn Storage>>) -> Arc<Self> {
        Arc::new(LevelTable {
            table,
            path,
            storage,
            obsolete: AtomicBool::new(false),
        })
    }

    /// The table.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// Table id.
    pub fn id(&self) -> u64 {
        self.table.id()
    }

    /// File path.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// File size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.table.size_bytes()
    }

    /// Smallest user key in the table.
    pub fn smallest_user_key(&self) -> &[u8] {
        user_key(self.table.smallest())
    }

    /// Biggest user key in the table.
    pub fn biggest_user_key(&self) -> &[u8] {
        user_key(self.table.biggest())
    }

    /// True if the table's user-key range intersects `[lo, hi]` (user keys, inclusive).
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.smallest_user_key() <= hi && lo <= self.biggest_user_key()
    }

    /// Marks the table for deletion when the last holder drops it. REQUIRES: the manifest edit
    /// that removed it is durable.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for LevelTable {
    fn drop(&mut self) {
        if !self.obsolete.load(Ordering::Acquire) {
            return;
        }
        if let Some(storage) = &self.storage {
            // A failure leaves an orphan file, which the next open removes (it is not in the
            // manifest); nothing else can be done from a destructor.
            let _ = storage.remove_file(&self.path);
        }
    }
}

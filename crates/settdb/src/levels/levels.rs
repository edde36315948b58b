//! The levels controller: the current [`LevelsSnapshot`] and the MANIFEST that makes it
//! durable.
//!
//! Every change goes manifest first (synced), then snapshot swap: a table is in the durable
//! tree before any reader can see it, and a table leaves a snapshot only after the manifest
//! edit that removed it is durable (rule 5); its file is deleted when the last snapshot holding
//! it is dropped ([`LevelTable`]).
//!
//! Concurrency: readers call [`Levels::snapshot`] (lock-free `ArcSwap` load). Editors (flush,
//! compaction) serialise on the edit lock, which they hold across the manifest append and the
//! swap so that edits apply in manifest order. Lock order: the edit lock, then the manifest's.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use super::level_table::LevelTable;
use super::levels_snapshot::{LevelsEdit, LevelsSnapshot};
use crate::crypto::{FileCipher, KeyRegistry};
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage};
use crate::manifest::{
    Manifest, ManifestChange, OpIds, OpSource, SharedManifest, MANIFEST_FILE_NAME,
};
use crate::options::Options;
use crate::stats::EngineStats;
use crate::table::{CacheMetrics, Table, TableCaches, TableOpenOptions};

/// File name of table `id`.
pub fn table_file_name(id: u64) -> String {
    format!("{id:06}.sst")
}

/// Parses a table file name.
pub fn parse_table_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".sst")?.parse().ok()
}

/// The levels of the tree and their manifest.
pub struct Levels {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    current: ArcSwap<LevelsSnapshot>,
    manifest: Arc<SharedManifest>,
    /// GUARDED: manifest appends of table edits and snapshot swaps happen under this lock.
    edits: Mutex<()>,
    /// Notified after every edit (L0 shrank, a compaction finished).
    changed: Condvar,
    open_opts: TableOpenOptions,
    /// The engine's counters (flushes and compactions record into them; edits set the
    /// level gauges).
    stats: Arc<EngineStats>,
}

impl std::fmt::Debug for Levels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Levels")
            .field("dir", &self.dir)
            .field("snapshot", &self.current.load())
            .finish_non_exhaustive()
    }
}

/// Refuses a table sealed under another data key than the MANIFEST recorded for it (an open
/// and `verify` both check it, so verify never passes a table an open refuses).
pub fn check_table_key(table: &Table, recorded: u64) -> Result<()> {
    if table.key_id() == recorded {
        return Ok(());
    }
    Err(Error::corruption(
        table.path(),
        0,
        format!(
            "table is sealed under data key {} but the MANIFEST records key {recorded}",
            table.key_id()
        ),
    ))
}

impl Levels {
    /// Opens every table `state` (the replayed `manifest`) lists. Writes nothing (rule 7).
    pub fn open(
        storage: Arc<dyn Storage>,
        opts: &Options,
        manifest: Arc<SharedManifest>,
        state: &Manifest,
        keys: Option<Arc<KeyRegistry>>,
        stats: Arc<EngineStats>,
    ) -> Result<Levels> {
        let dir = opts.dir.clone();
        let mut open_opts = TableOpenOptions::from_options(opts);
        open_opts.keys = keys;
        if opts.block_cache_size > 0 || opts.index_cache_size > 0 {
            let caches = TableCaches::new(opts.block_cache_size, opts.index_cache_size);
            open_opts.caches = Some(Arc::new(caches));
        }
        let mut levels: Vec<Vec<Arc<LevelTable>>> = vec![Vec::new(); opts.max_levels];
        for (&id, tm) in state.tables() {
            let path = dir.join(table_file_name(id));
            let file = storage.open(&path, OpenMode::Read).map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    Error::corruption(
                        dir.join(MANIFEST_FILE_NAME),
                        0,
                        format!(
                            "MANIFEST lists table {id}, whose file {} is missing",
                            path.display()
                        ),
                    )
                }
                other => other,
            })?;
            let table = Table::open(file, id, open_opts.clone())?;
            check_table_key(&table, tm.key_id)?;
            let level = usize::from(tm.level);
            let slot = levels.get_mut(level).ok_or_else(|| {
                Error::corruption(
                    dir.join(MANIFEST_FILE_NAME),
                    0,
                    format!("table {id} at level {level} beyond max_levels"),
                )
            })?;
            slot.push(LevelTable::new(table, path, Some(storage.clone())));
        }
        let snapshot = LevelsSnapshot::from_levels(levels);
        snapshot
            .check()
            .map_err(|why| Error::corruption(dir.join(MANIFEST_FILE_NAME), 0, why))?;
        Ok(Levels {
            storage,
            dir,
            current: ArcSwap::from_pointee(snapshot),
            manifest,
            edits: Mutex::new(()),
            changed: Condvar::new(),
            open_opts,
            stats,
        })
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<LevelsSnapshot> {
        self.current.load_full()
    }

    /// The current snapshot for a short read (a point read): no reference count is taken.
    pub fn current(&self) -> arc_swap::Guard<Arc<LevelsSnapshot>> {
        self.current.load()
    }

    /// The manifest.
    pub fn manifest(&self) -> &Arc<SharedManifest> {
        &self.manifest
    }

    /// Begins a flush or compaction that reads `source`, reserving `count` table ids
    /// durably (see [`SharedManifest::begin_op`]).
    pub fn begin_op(&self, count: u64, source: OpSource) -> Result<OpIds> {
        self.manifest.begin_op(count, source)
    }

    /// A fresh table id of `ids`' operation.
    pub fn new_table_id(&self, ids: &mut OpIds) -> Result<u64> {
        self.manifest.next_table_id(ids)
    }

    /// Path of table `id`.
    pub fn table_path(&self, id: u64) -> PathBuf {
        self.dir.join(table_file_name(id))
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Opens a freshly built, synced table file as a level table.
    pub fn open_new_table(&self, id: u64) -> Result<Arc<LevelTable>> {
        let path = self.table_path(id);
        let file = self.storage.open(&path, OpenMode::Read)?;
        let table = Table::open(file, id, self.open_opts.clone())?;
        Ok(LevelTable::new(table, path, Some(self.storage.clone())))
    }

    /// The engine's counters, shared with the paths that flush and compact into the levels.
    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// The block and index caches' statistics (all zero when both are off).
    pub fn cache_metrics(&self) -> CacheMetrics {
        self.open_opts
            .caches
            .as_ref()
            .map_or_else(CacheMetrics::default, |c| c.metrics())
    }

    /// The cipher a new table is sealed with: a fresh one of the current data key when the
    /// database is encrypted (rotating the key first if it is due), else `None`.
    pub fn new_table_cipher(&self) -> Result<Option<FileCipher>> {
        self.open_opts
            .keys
            .as_deref()
            .map(KeyRegistry::cipher_for_new_file)
            .transpose()
    }

    fn lock_edits(&self) -> MutexGuard<'_, ()> {
        self.edits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies an edit: one manifest record (synced) with the table changes, the operation's
    /// end and the flushed WAL's deletion, then the snapshot swap, then the removed tables are
    /// marked obsolete (their files go when no snapshot holds them). REQUIRES: the added
    /// tables' files and their directory entries are durable.
    pub fn apply_edit(&self, edit: &LevelsEdit) -> Result<()> {
        let changes = manifest_changes(edit);
        let guard = self.lock_edits();
        let current = self.current.load_full();
        let next = current.apply(edit).ok_or(Error::InvalidRequest(
            "levels edit removes a table that is not in its level",
        ))?;
        self.manifest.edit(&changes)?;
        for &(level, id) in &edit.removed {
            if let Some(t) = current.tables(level).iter().find(|t| t.id() == id) {
                t.mark_obsolete();
            }
        }
        if self.stats.metrics_enabled() {
            let sizes = next.level_sizes_bytes();
            let shape: Vec<(usize, u64)> = (0..next.level_count())
                .map(|l| (next.tables(l).len(), sizes[l]))
                .collect();
            self.stats.record_levels(&shape, &self.cache_metrics());
        }
        self.current.store(Arc::new(next));
        drop(guard);
        self.changed.notify_all();
        Ok(())
    }

    /// Blocks while `cond(snapshot)` holds, re-checking after every edit or `timeout`.
    pub fn wait_while(
        &self,
        timeout: std::time::Duration,
        mut cond: impl FnMut(&LevelsSnapshot) -> bool,
    ) {
        let mut guard = self.lock_edits();
        while cond(&self.current.load()) {
            let (g, res) = self
                .changed
                .wait_timeout(guard, timeout)
                .unwrap_or_else(|e| e.into_inner());
            guard = g;
            if res.timed_out() {
                return;
            }
        }
    }

    /// Waits until the next edit or `timeout`, whichever comes first.
    pub fn wait_for_change(&self, timeout: std::time::Duration) {
        let guard = self.lock_edits();
        let _ = self.changed.wait_timeout(guard, timeout);
    }

    /// Wakes every waiter of [`Levels::wait_while`] (on close).
    pub fn notify_all(&self) {
        self.changed.notify_all();
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn manifest_changes(edit: &LevelsEdit) -> Vec<ManifestChange> {
    let mut changes: Vec<ManifestChange> = edit
        .added
        .iter()
        .map(|(level, t)| {
            ManifestChange::create(
                t.id(),
                *level as u8,
                t.table().meta().compression,
                t.table().key_id(),
            )
        })
        .collect();
    changes.extend(
        edit.removed
            .iter()
            .map(|&(_, id)| ManifestChange::delete(id)),
    );
    changes.extend(
        edit.delete_wal
            .map(|wal_id| ManifestChange::DeleteWal { wal_id }),
    );
    changes.extend(edit.end_op.map(|op_id| ManifestChange::EndOp { op_id }));
    changes
}

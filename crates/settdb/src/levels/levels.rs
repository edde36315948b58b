//! The levels controller: the current [`LevelsSnapshot`], the MANIFEST that makes it durable,
//! and table ids.
//!
//! Every change goes manifest first (synced), then snapshot swap: a table is in the durable
//! tree before any reader can see it, and a table leaves a snapshot only after the manifest
//! edit that removed it is durable (rule 5); its file is deleted when the last snapshot holding
//! it is dropped ([`LevelTable`]).
//!
//! Concurrency: readers call [`Levels::snapshot`] (lock-free `ArcSwap` load). Editors (flush,
//! compaction) serialise on the manifest mutex, which they hold across the manifest append and
//! the swap so that edits apply in manifest order.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use super::level_table::LevelTable;
use super::levels_snapshot::{LevelsEdit, LevelsSnapshot};
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage};
use crate::manifest::{
    ManifestChange, ManifestFile, ManifestOptions, MANIFEST_FILE_NAME, MANIFEST_REWRITE_FILE_NAME,
};
use crate::options::Options;
use crate::table::{Table, TableOpenOptions};

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
    /// GUARDED: manifest appends and snapshot swaps happen under this lock.
    manifest: Mutex<ManifestFile>,
    next_table_id: AtomicU64,
    /// Notified after every edit (L0 shrank, a compaction finished).
    changed: Condvar,
    open_opts: TableOpenOptions,
}

impl std::fmt::Debug for Levels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Levels")
            .field("dir", &self.dir)
            .field("snapshot", &self.current.load())
            .finish_non_exhaustive()
    }
}

impl Levels {
    /// Replays the manifest and opens every table it lists. Writes nothing (rule 7) except
    /// what [`ManifestFile::open`] does in read-write mode after validating.
    pub fn open(storage: Arc<dyn Storage>, opts: &Options) -> Result<Levels> {
        let dir = opts.dir.clone();
        let (manifest_file, manifest) =
            ManifestFile::open(storage.clone(), &dir, ManifestOptions::from_options(opts))?;
        let open_opts = TableOpenOptions::from_options(opts);
        let mut levels: Vec<Vec<Arc<LevelTable>>> = vec![Vec::new(); opts.max_levels];
        for (&id, tm) in manifest.tables() {
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
            let table = Table::open(file, id, open_opts)?;
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
            next_table_id: AtomicU64::new(manifest.next_table_id().max(1)),
            storage,
            dir,
            current: ArcSwap::from_pointee(snapshot),
            manifest: Mutex::new(manifest_file),
            changed: Condvar::new(),
            open_opts,
        })
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<LevelsSnapshot> {
        self.current.load_full()
    }

    /// A fresh table id.
    pub fn new_table_id(&self) -> u64 {
        self.next_table_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Path of table `id`.
    pub fn table_path(&self, id: u64) -> PathBuf {
        self.dir.join(table_file_name(id))
    }

    /// Options tables are opened with.
    pub fn open_options(&self) -> TableOpenOptions {
        self.open_opts
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Opens a freshly built, synced table file as a level table.
    pub fn open_new_table(&self, id: u64) -> Result<Arc<LevelTable>> {
        let path = self.table_path(id);
        let file = self.storage.open(&path, OpenMode::Read)?;
        let table = Table::open(file, id, self.open_opts)?;
        Ok(LevelTable::new(table, path, Some(self.storage.clone())))
    }

    fn lock_manifest(&self) -> MutexGuard<'_, ManifestFile> {
        self.manifest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies an edit: manifest record (synced), then the snapshot swap, then the removed
    /// tables are marked obsolete (their files go when no snapshot holds them). REQUIRES: the
    /// added tables' files and their directory entries are durable.
    pub fn apply_edit(&self, edit: &LevelsEdit) -> Result<()> {
        let changes = manifest_changes(edit);
        let mut manifest = self.lock_manifest();
        let current = self.current.load_full();
        let next = current.apply(edit).ok_or(Error::InvalidRequest(
            "levels edit removes a table that is not in its level",
        ))?;
        manifest.add_changes(&changes)?;
        for &(level, id) in &edit.removed {
            if let Some(t) = current.tables(level).iter().find(|t| t.id() == id) {
                t.mark_obsolete();
            }
        }
        self.current.store(Arc::new(next));
        drop(manifest);
        self.changed.notify_all();
        Ok(())
    }

    /// Blocks while `cond(snapshot)` holds, re-checking after every edit or `timeout`.
    pub fn wait_while(
        &self,
        timeout: std::time::Duration,
        mut cond: impl FnMut(&LevelsSnapshot) -> bool,
    ) {
        let mut guard = self.lock_manifest();
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
        let guard = self.lock_manifest();
        let _ = self.changed.wait_timeout(guard, timeout);
    }

    /// Wakes every waiter of [`Levels::wait_while`] (on close).
    pub fn notify_all(&self) {
        self.changed.notify_all();
    }

    /// Removes `.sst` files the manifest does not list, and a leftover manifest rewrite file.
    /// REQUIRES: open validated everything; not read-only.
    pub fn remove_orphans(&self) -> Result<Vec<PathBuf>> {
        let snapshot = self.snapshot();
        let live: std::collections::HashSet<u64> = (0..snapshot.level_count())
            .flat_map(|l| snapshot.tables(l).iter().map(|t| t.id()))
            .collect();
        let mut removed = Vec::new();
        for name in self.storage.list_dir(&self.dir)? {
            let orphan = match parse_table_file_name(&name) {
                Some(id) => !live.contains(&id),
                None => name == MANIFEST_REWRITE_FILE_NAME,
            };
            if orphan {
                let p = self.dir.join(&name);
                self.storage.remove_file(&p)?;
                removed.push(p);
            }
        }
        if !removed.is_empty() {
            self.storage.sync_dir(&self.dir)?;
        }
        Ok(removed)
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
            ManifestChange::create(t.id(), *level as u8, t.table().meta().compression, 0)
        })
        .collect();
    changes.extend(
        edit.removed
            .iter()
            .map(|&(_, id)| ManifestChange::delete(id)),
    );
    changes
}

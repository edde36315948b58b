//! [`SharedManifest`]: the one open MANIFEST of a database, shared by everything that creates
//! or deletes files (flush, compaction, the writer's WAL rotation, the value log).
//!
//! Concurrency: one mutex around the [`ManifestFile`], held across each append and its sync
//! (DESIGN rule 10). Readers of the state take a clone; no lock is held by a reader of data.

use std::sync::{Mutex, MutexGuard};

use super::change::{ManifestChange, OpSource};
use super::state::Manifest;
use super::writer::ManifestFile;
use crate::error::Result;

/// The open MANIFEST behind a mutex.
#[derive(Debug)]
pub struct SharedManifest {
    file: Mutex<ManifestFile>,
}

/// Table ids reserved for one flush or compaction ([`SharedManifest::begin_op`]).
#[derive(Debug)]
pub struct OpIds {
    op_id: u64,
    next: u64,
    end: u64,
}

impl OpIds {
    /// The operation's id (its first table id).
    pub fn op_id(&self) -> u64 {
        self.op_id
    }
}

/// Ids reserved at a time when an operation runs out.
const EXTEND_BY: u64 = 8;

impl SharedManifest {
    /// Shares `file`.
    pub fn new(file: ManifestFile) -> Self {
        SharedManifest {
            file: Mutex::new(file),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ManifestFile> {
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `changes` as one durable record (see [`ManifestFile::add_changes`]).
    pub fn edit(&self, changes: &[ManifestChange]) -> Result<()> {
        self.lock().add_changes(changes)
    }

    /// A copy of the current state.
    pub fn state(&self) -> Manifest {
        self.lock().manifest().clone()
    }

    /// See [`ManifestFile::start_writing`].
    pub fn start_writing(&self) -> Result<()> {
        self.lock().start_writing()
    }

    /// Begins a flush or compaction that reads `source`: durably reserves `count` fresh table
    /// ids (at least one) before any of its files exists, so that after a crash its unfinished
    /// outputs are recognised, and proved garbage while `source` is intact
    /// (docs/format/manifest.md, "Operations").
    pub fn begin_op(&self, count: u64, source: OpSource) -> Result<OpIds> {
        let mut file = self.lock();
        let first = file.manifest().next_table_id();
        let count = count.max(1);
        file.add_changes(&[ManifestChange::BeginOp {
            op_id: first,
            count,
            source,
        }])?;
        Ok(OpIds {
            op_id: first,
            next: first,
            end: first + count,
        })
    }

    /// The next table id of `ids`' operation, reserving more (durably) when its ranges are
    /// used up.
    pub fn next_table_id(&self, ids: &mut OpIds) -> Result<u64> {
        if ids.next == ids.end {
            let mut file = self.lock();
            let first = file.manifest().next_table_id();
            file.add_changes(&[ManifestChange::ExtendOp {
                op_id: ids.op_id,
                first_id: first,
                count: EXTEND_BY,
            }])?;
            (ids.next, ids.end) = (first, first + EXTEND_BY);
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }
}

//! The swap: old files into `lost/N/`, the staging database's files into their place, under a
//! `REPAIR` marker that makes a crash in between finishable and refused by opens.
//!
//! ```text
//! REPAIR := "settdb-repair 1\n" "lost " N "\n" "phase " ("old" | "new") "\n"
//! ```
//!
//! Phase `old`: every database file of the directories is an old one, moved into `lost/N/`.
//! Phase `new`: every old file is gone, so every database file still in the staging
//! directories is a new one, moved into place. Each phase is idempotent, so running repair
//! again finishes an interrupted swap.

use std::path::{Path, PathBuf};

use super::{names_in, RepairReport};
use crate::crypto::KEY_REGISTRY_FILE_NAME;
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage};
use crate::levels::parse_table_file_name;
use crate::manifest::{MANIFEST_FILE_NAME, MANIFEST_REWRITE_FILE_NAME};
use crate::memtable::parse_wal_file_name;
use crate::options::Options;
use crate::vlog::{parse_vlog_file_name, DISCARD_FILE_NAME};

pub(crate) use crate::inventory::REPAIR_MARKER_FILE_NAME;
const MARKER_TMP_FILE_NAME: &str = "REPAIR.tmp";
const MARKER_MAGIC_LINE: &str = "settdb-repair 1";
/// A marker is three short lines; a longer file is not one (and is not read whole).
const MARKER_MAX_BYTES: u64 = 256;
/// Where the rebuilt database is built, in each directory.
const STAGING_DIR_NAME: &str = "repair.tmp";
/// Where old files go, in each directory: `lost/N/`.
const LOST_DIR_NAME: &str = "lost";
/// The keys whose newest readable version lost its value, one per line (escaped).
const LOST_KEYS_FILE_NAME: &str = "lost-keys.txt";

/// The staging directories of a repair.
pub(super) struct Staging {
    dir: PathBuf,
    value_dir: PathBuf,
}

impl Staging {
    /// Creates empty staging directories. A staging directory left by an earlier repair that
    /// stopped before its swap began holds only copies (the old files were untouched): it is
    /// emptied.
    pub(super) fn prepare(storage: &dyn Storage, opts: &Options) -> Result<Staging> {
        let s = Staging::of(opts);
        for d in s.dirs() {
            for name in names_in(storage, d)? {
                storage.remove_file(&d.join(name))?;
            }
            storage.create_dir_all(d)?;
        }
        Ok(s)
    }

    fn of(opts: &Options) -> Staging {
        let dir = opts.dir.join(STAGING_DIR_NAME);
        let value_dir = if opts.value_dir == opts.dir {
            dir.clone()
        } else {
            opts.value_dir.join(STAGING_DIR_NAME)
        };
        Staging { dir, value_dir }
    }

    fn dirs(&self) -> Vec<&Path> {
        let mut out = vec![self.dir.as_path()];
        if self.value_dir != self.dir {
            out.push(&self.value_dir);
        }
        out
    }

    /// The options of the staging database: `opts` in the staging directories.
    pub(super) fn options(&self, opts: &Options) -> Options {
        let mut o = opts.clone();
        o.dir = self.dir.clone();
        o.value_dir = self.value_dir.clone();
        o
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    MovingOld,
    MovingNew,
}

/// A swap in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Marker {
    lost: u32,
    phase: Phase,
}

impl Marker {
    /// The marker in `dir`, if a swap is in progress.
    pub(super) fn read(storage: &dyn Storage, dir: &Path) -> Result<Option<Marker>> {
        let path = dir.join(REPAIR_MARKER_FILE_NAME);
        if !storage.exists(&path)? {
            return Ok(None);
        }
        let bad = || Error::corruption(&path, 0, "not a repair marker SettDB wrote");
        let file = storage.open(&path, OpenMode::Read)?;
        let len = file.len()?;
        if len > MARKER_MAX_BYTES {
            return Err(bad());
        }
        let bytes = file.read_vec_at(0, len as usize)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        if lines.next() != Some(MARKER_MAGIC_LINE) {
            return Err(bad());
        }
        let lost = lines
            .next()
            .and_then(|l| l.strip_prefix("lost "))
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        let phase = match lines.next() {
            Some("phase old") => Phase::MovingOld,
            Some("phase new") => Phase::MovingNew,
            _ => return Err(bad()),
        };
        Ok(Some(Marker { lost, phase }))
    }

    /// Writes the marker atomically (a temporary file renamed over it) and durably.
    fn write(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        let phase = match self.phase {
            Phase::MovingOld => "old",
            Phase::MovingNew => "new",
        };
        let text = format!("{MARKER_MAGIC_LINE}\nlost {}\nphase {phase}\n", self.lost);
        let tmp = dir.join(MARKER_TMP_FILE_NAME);
        if storage.exists(&tmp)? {
            storage.remove_file(&tmp)?;
        }
        let file = storage.open(&tmp, OpenMode::CreateNew)?;
        file.write_at(0, text.as_bytes())?;
        file.sync_data()?;
        storage.rename(&tmp, &dir.join(REPAIR_MARKER_FILE_NAME))?;
        storage.sync_dir(dir)
    }
}

/// True for the names of database files (not LOCK, not the marker, not directories).
fn is_db_file(dir: &Path, name: &str) -> bool {
    parse_table_file_name(name).is_some()
        || parse_wal_file_name(name).is_some()
        || matches!(parse_vlog_file_name(dir, name), Ok(Some(_)))
        || name == MANIFEST_FILE_NAME
        || name == MANIFEST_REWRITE_FILE_NAME
        || name == DISCARD_FILE_NAME
        || name == KEY_REGISTRY_FILE_NAME
}

/// Moves the old files aside and the staging files into place (see the module docs).
pub(super) fn swap(
    storage: &dyn Storage,
    opts: &Options,
    lost_keys: &[Vec<u8>],
    report: &mut RepairReport,
) -> Result<()> {
    let mut n = 1u32;
    while storage.exists(&lost_dir(&opts.dir, n))?
        || storage.exists(&lost_dir(&opts.value_dir, n))?
    {
        n += 1;
    }
    for d in [&opts.dir, &opts.value_dir] {
        storage.create_dir_all(&lost_dir(d, n))?;
    }
    if !lost_keys.is_empty() {
        let mut text = Vec::new();
        for k in lost_keys {
            text.extend(k.escape_ascii());
            text.push(b'\n');
        }
        let dir = lost_dir(&opts.dir, n);
        let file = storage.open(&dir.join(LOST_KEYS_FILE_NAME), OpenMode::CreateNew)?;
        file.write_at(0, &text)?;
        file.sync_data()?;
        storage.sync_dir(&dir)?;
    }
    let marker = Marker {
        lost: n,
        phase: Phase::MovingOld,
    };
    marker.write(storage, &opts.dir)?;
    finish(storage, opts, &marker, report)
}

fn lost_dir(dir: &Path, n: u32) -> PathBuf {
    dir.join(LOST_DIR_NAME).join(n.to_string())
}

/// Finishes the swap `marker` describes, from its phase on.
pub(super) fn finish(
    storage: &dyn Storage,
    opts: &Options,
    marker: &Marker,
    report: &mut RepairReport,
) -> Result<()> {
    let staging = Staging::of(opts);
    let mut dirs = vec![opts.dir.as_path()];
    if opts.value_dir != opts.dir {
        dirs.push(&opts.value_dir);
    }
    report.lost_dir = Some(lost_dir(&opts.dir, marker.lost));
    if marker.phase == Phase::MovingOld {
        for &d in &dirs {
            let to = lost_dir(d, marker.lost);
            storage.create_dir_all(&to)?;
            report.moved_files.extend(move_db_files(storage, d, &to)?);
        }
        Marker {
            phase: Phase::MovingNew,
            ..*marker
        }
        .write(storage, &opts.dir)?;
    }
    move_db_files(storage, &staging.dir, &opts.dir)?;
    if staging.value_dir != staging.dir {
        move_db_files(storage, &staging.value_dir, &opts.value_dir)?;
    }
    storage.remove_file(&opts.dir.join(REPAIR_MARKER_FILE_NAME))?;
    storage.sync_dir(&opts.dir)?;
    for d in staging.dirs() {
        for name in names_in(storage, d)? {
            storage.remove_file(&d.join(name))?;
        }
        if storage.exists(d)? {
            storage.remove_dir(d)?;
        }
    }
    Ok(())
}

/// Moves every database file of `from` into `to` and makes both directories durable; returns
/// the new paths.
fn move_db_files(storage: &dyn Storage, from: &Path, to: &Path) -> Result<Vec<PathBuf>> {
    let mut moved = Vec::new();
    for name in names_in(storage, from)? {
        if is_db_file(from, &name) {
            let dest = to.join(&name);
            storage.rename(&from.join(&name), &dest)?;
            moved.push(dest);
        }
    }
    if storage.exists(from)? {
        storage.sync_dir(from)?;
    }
    storage.sync_dir(to)?;
    Ok(moved)
}

//! A snapshot file: the state machine at one log id, in SettDB's backup format.
//!
//! Layout: the 8 bytes `SETTSNP1`, the length of the metadata (u64 little-endian), the
//! snapshot's openraft metadata as JSON, then backup frames (docs/format/backup.md) of every
//! version visible at the snapshot's version, streamed by [`settdb::Db::stream_at`]. The
//! sender's file is what a receiver stores, byte for byte.
//!
//! Blocking code: callers run it off the async runtime.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use openraft::SnapshotMeta;
use settdb::backup::{write_frame, FrameReader};
use settdb::{backup_key_to_list, Db};

use crate::{Error, NodeId};

const MAGIC: &[u8; 8] = b"SETTSNP1";

/// The longest metadata accepted (a membership of many nodes is still far below it).
const MAX_META_LEN: u64 = 16 << 20;

/// The metadata of a snapshot of this crate.
pub(crate) type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the snapshot of `db` at `version` described by `meta` to `path` and syncs it.
pub(crate) fn write(db: &Db, version: u64, meta: &Meta, path: &Path) -> Result<(), Error> {
    let file = File::create(path).map_err(io_error(path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let meta_json = serde_json::to_vec(meta).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        what: format!("cannot encode snapshot metadata: {e}"),
    })?;
    w.write_all(MAGIC).map_err(io_error(path))?;
    w.write_all(&(meta_json.len() as u64).to_le_bytes())
        .map_err(io_error(path))?;
    w.write_all(&meta_json).map_err(io_error(path))?;
    let mut offset = (MAGIC.len() + 8 + meta_json.len()) as u64;
    if version > 0 {
        db.stream_at(version)
            .key_to_list(backup_key_to_list)
            .run(|list| {
                offset = write_frame(&mut w, &list, offset)?;
                Ok(())
            })?;
    }
    let file = w.into_inner().map_err(|e| io_error(path)(e.into_error()))?;
    file.sync_all().map_err(io_error(path))
}

/// Opens a snapshot file and reads its metadata; the file is left at the first frame.
fn open(path: &Path) -> Result<(Meta, BufReader<File>), Error> {
    let corrupt = |what: String| Error::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_error(path))?);
    let mut head = [0u8; 16];
    r.read_exact(&mut head)
        .map_err(|e| corrupt(format!("snapshot header cut short: {e}")))?;
    if &head[..8] != MAGIC {
        return Err(corrupt("not a SettDB snapshot file (bad magic)".into()));
    }
    let len = u64::from_le_bytes(head[8..].try_into().unwrap_or_default());
    if len > MAX_META_LEN {
        return Err(corrupt(format!(
            "snapshot metadata of {len} bytes is over the limit"
        )));
    }
    let mut meta = vec![0u8; len as usize];
    r.read_exact(&mut meta)
        .map_err(|e| corrupt(format!("snapshot metadata cut short: {e}")))?;
    let meta = serde_json::from_slice(&meta)
        .map_err(|e| corrupt(format!("undecodable snapshot metadata: {e}")))?;
    Ok((meta, r))
}

/// The metadata of the snapshot at `path`.
pub(crate) fn read_meta(path: &Path) -> Result<Meta, Error> {
    open(path).map(|(meta, _)| meta)
}

/// Replaces everything in `db` with the snapshot at `path`: drops all, then bulk-loads the
/// frames straight into tables. Returns the snapshot's metadata.
pub(crate) fn install(db: &Db, path: &Path) -> Result<Meta, Error> {
    let (meta, mut r) = open(path)?;
    db.drop_all()?;
    let offset = r.stream_position().map_err(io_error(path))?;
    let mut frames = FrameReader::new(r);
    db.bulk_load(|w| {
        while let Some((_, list)) = frames.next_frame()? {
            w.write(list)?;
        }
        Ok(())
    })
    .map_err(|e| match e {
        settdb::Error::BadBackup { .. } => Error::Corrupt {
            path: path.to_path_buf(),
            what: format!("{e} (frame offsets count from byte {offset})"),
        },
        e => Error::Db(e),
    })?;
    Ok(meta)
}

/// Renames `from` to `to` and syncs their directory: the replacement is atomic and durable.
pub(crate) fn replace(from: &Path, to: &Path) -> Result<(), Error> {
    fs::rename(from, to).map_err(io_error(to))?;
    sync_dir(to)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir: PathBuf = path.parent().map_or_else(|| ".".into(), Path::to_path_buf);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(&dir))
}

//! A snapshot file: the state machine at one log id, in SettDB's backup format.
//!
//! Layout: the 8 bytes `SETTSNP2`, the length of the metadata (u64 little-endian), the
//! snapshot's openraft metadata as JSON, backup frames (docs/format/backup.md) of every
//! version visible at the snapshot's version, streamed by [`settdb::Db::stream_at`], and last
//! the CRC-32C (Castagnoli, u32 little-endian) of every byte before it. Backup frames carry no
//! checksum of their own, so the trailer is what lets a receiver, or a node reopening after a
//! crash, refuse a damaged snapshot before it replaces anything ([`verify`]). The sender's
//! file is what a receiver stores, byte for byte.
//!
//! Blocking code: callers run it off the async runtime.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use openraft::SnapshotMeta;
use settdb::backup::{write_frame, FrameReader};
use settdb::io::{FsStorage, Storage};
use settdb::{backup_key_to_list, Db};

use crate::{Error, NodeId};

const MAGIC: &[u8; 8] = b"SETTSNP2";

/// Bytes of the checksum trailer.
const TRAILER: u64 = 4;

/// A writer that keeps the CRC-32C of what went through it.
struct Crc<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

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
    let mut w = Crc {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: 0,
    };
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
    let crc = w.crc;
    let mut w = w.inner;
    w.write_all(&crc.to_le_bytes()).map_err(io_error(path))?;
    let file = w.into_inner().map_err(|e| io_error(path)(e.into_error()))?;
    file.sync_all().map_err(io_error(path))
}

/// Opens a snapshot file and reads its metadata; the reader is left at the first frame and
/// ends before the trailer.
fn open(path: &Path) -> Result<(Meta, impl Read), Error> {
    let corrupt = |what: String| Error::Corrupt {
        path: path.to_path_buf(),
        what,
    };
    let file = File::open(path).map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut head = [0u8; 16];
    r.read_exact(&mut head)
        .map_err(|e| corrupt(format!("snapshot header cut short: {e}")))?;
    if &head[..8] != MAGIC {
        return Err(corrupt("not a SettDB snapshot file (bad magic)".into()));
    }
    let meta_len = u64::from_le_bytes(head[8..].try_into().unwrap_or_default());
    if meta_len > MAX_META_LEN {
        return Err(corrupt(format!(
            "snapshot metadata of {meta_len} bytes is over the limit"
        )));
    }
    let Some(frames_len) = len.checked_sub(16 + meta_len + TRAILER) else {
        return Err(corrupt(format!(
            "snapshot cut short: {len} bytes cannot hold {meta_len} bytes of metadata and the trailer"
        )));
    };
    let mut meta = vec![0u8; meta_len as usize];
    r.read_exact(&mut meta)
        .map_err(|e| corrupt(format!("snapshot metadata cut short: {e}")))?;
    let meta = serde_json::from_slice(&meta)
        .map_err(|e| corrupt(format!("undecodable snapshot metadata: {e}")))?;
    Ok((meta, r.take(frames_len)))
}

/// The metadata of the snapshot at `path` (its header only; see [`verify`]).
pub(crate) fn read_meta(path: &Path) -> Result<Meta, Error> {
    open(path).map(|(meta, _)| meta)
}

/// Reads the whole snapshot at `path` and checks its trailer; returns its metadata.
pub(crate) fn verify(path: &Path) -> Result<Meta, Error> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io_error(path))?);
    let meta = read_meta(path)?;
    let len = std::fs::metadata(path).map_err(io_error(path))?.len();
    let mut body = (&mut r).take(len.saturating_sub(TRAILER));
    let mut crc = 0u32;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body.read(&mut buf).map_err(io_error(path))?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
    let mut stored = [0u8; TRAILER as usize];
    r.read_exact(&mut stored).map_err(io_error(path))?;
    if u32::from_le_bytes(stored) != crc {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            what: format!(
                "snapshot checksum mismatch (stored {:#010x}, computed {crc:#010x}): damaged",
                u32::from_le_bytes(stored)
            ),
        });
    }
    Ok(meta)
}

/// Replaces everything in `db` with the snapshot at `path`: verifies the whole file first (a
/// damaged snapshot changes nothing), then [`load`]s it. Returns the snapshot's metadata.
pub(crate) fn install(db: &Db, path: &Path) -> Result<Meta, Error> {
    verify(path)?;
    load(db, path)
}

/// Replaces everything in `db` with the snapshot at `path`, which the caller [`verify`]-ed:
/// drops all, then bulk-loads the frames straight into tables.
pub(crate) fn load(db: &Db, path: &Path) -> Result<Meta, Error> {
    let (meta, r) = open(path)?;
    db.drop_all()?;
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
            what: format!("{e} (frame offsets count from the end of the metadata)"),
        },
        e => Error::Db(e),
    })?;
    Ok(meta)
}

/// Renames `from` to `to` and syncs their directory: the replacement is atomic and durable.
pub(crate) fn replace(from: &Path, to: &Path) -> Result<(), Error> {
    let fs = FsStorage::new();
    fs.rename(from, to)?;
    fs.sync_dir(&settdb::io::parent_dir(to))?;
    Ok(())
}

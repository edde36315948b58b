//! The storage trait: the file-system operations the engine needs, and nothing else.
//!
//! Contracts every implementation keeps:
//! - `write_at` writes all of `buf` or returns an error; after an error the bytes in that range
//!   are unspecified (a short write may have landed).
//! - Written bytes are durable only after `sync_data` on the file returns Ok; a new or renamed
//!   directory entry is durable only after `sync_dir` on its parent returns Ok (rule 1).
//! - `read_at` reads exactly `buf.len()` bytes or fails; callers check lengths against
//!   `len()` first (rule 3), so a short read is an error, not a partial result.
//! - `lock` never blocks: a held lock is [`crate::Error::Locked`].
//! - `map_read_only` is asked only for the first `len` bytes of a file that no one writes or
//!   truncates any more (a sealed value-log file: DESIGN.md allows mmap "only for reading
//!   immutable, fully synced files"); an implementation may decline with `None`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;

/// How [`Storage::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, read only.
    Read,
    /// An existing file, read and write.
    ReadWrite,
    /// A new file, read and write; fails if the path exists.
    CreateNew,
    /// Creates the file if missing, else opens it; read and write. Never truncates.
    CreateOrOpen,
}

/// The kind of directory lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// One holder (read-write open).
    Exclusive,
    /// Many holders (read-only opens).
    Shared,
}

/// An open file.
pub trait StorageFile: Send + Sync + Debug {
    /// The path the file was opened at (for error messages).
    fn path(&self) -> &Path;

    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()>;

    /// Current length in bytes (including unsynced writes).
    fn len(&self) -> Result<u64>;

    /// True if the file has no bytes.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> Result<()>;

    /// Makes every write so far durable (`fdatasync`).
    fn sync_data(&self) -> Result<()>;

    /// Reads `len` bytes at `offset` into a new buffer.
    fn read_vec_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// A read-only memory mapping of the first `len` bytes, or `None` if this storage does not
    /// map files (then readers use `read_at`). REQUIRES: `len <= len()`, and the file is never
    /// written or truncated again by anyone while the mapping lives.
    fn map_read_only(&self, len: u64) -> Result<Option<Mapping>> {
        let _ = len;
        Ok(None)
    }
}

/// A read-only memory mapping of part of a file ([`StorageFile::map_read_only`]).
pub struct Mapping {
    map: memmap2::Mmap,
}

impl Mapping {
    /// Wraps a mapping made by a [`StorageFile`], installing the `SIGBUS` guard first
    /// (`map_guard`): every read of a mapping goes through it.
    pub(crate) fn new(map: memmap2::Mmap) -> std::io::Result<Self> {
        super::map_guard::install()?;
        Ok(Mapping { map })
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Runs `read` over the `len` mapped bytes at `start`, or returns `None` without a
    /// result when it cannot: the range is not all mapped, or the file could not be read
    /// there (a disk error or a truncation under the mapping, caught as `SIGBUS`; after the
    /// first such fault every mapped read of the process returns `None`). The caller then
    /// reads the bytes with [`StorageFile::read_at`], which reports the error. `read` runs to
    /// its end even when a fault is caught (it then sees zeros where the file could not be
    /// read), so it must only copy or inspect the bytes, with no effect that outlives a `None`.
    pub fn read_with<R>(
        &self,
        start: usize,
        len: usize,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        let bytes = self.map.get(start..start.checked_add(len)?)?;
        super::map_guard::guarded(bytes, read)
    }
}

impl Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("len", &self.map.len())
            .finish()
    }
}

/// A held directory lock; released on drop.
pub trait StorageLock: Send + Sync + Debug {}

/// A file system.
pub trait Storage: Send + Sync + Debug + 'static {
    /// Creates `dir` and missing parents. Newly created directories are synced into their
    /// parents before this returns.
    fn create_dir_all(&self, dir: &Path) -> Result<()>;

    /// Opens a file.
    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn StorageFile>>;

    /// True if a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> Result<bool>;

    /// Names (not paths) of the entries of `dir`, sorted.
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>>;

    /// Atomically renames `from` to `to`, replacing `to` if it exists. Durable after
    /// `sync_dir` of the parent(s).
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;

    /// Removes a file. Durable after `sync_dir` of the parent.
    fn remove_file(&self, path: &Path) -> Result<()>;

    /// Removes the empty directory `dir`. Durable after `sync_dir` of the parent. Storages
    /// that keep no directories of their own refuse it (`Unsupported`).
    fn remove_dir(&self, dir: &Path) -> Result<()> {
        let unsupported = std::io::Error::from(std::io::ErrorKind::Unsupported);
        Err(crate::Error::io("remove dir", dir, unsupported))
    }

    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> Result<()>;

    /// Takes a lock on `path` (created if missing). Fails with [`crate::Error::Locked`] if
    /// another holder conflicts.
    fn lock(&self, path: &Path, kind: LockKind) -> Result<Box<dyn StorageLock>>;
}

/// The parent directory of `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

//! [`Storage`] in memory with no durability model: what in-memory mode runs on.
//!
//! [`super::SimStorage`] keeps a file's live bytes, its durable bytes and the log of unsynced
//! writes apart, which is what crash tests need and costs two or three copies of the data.
//! An in-memory database never crashes into a later life, so this storage keeps one copy:
//! syncs are no-ops and every write is "durable" at once. Files are shared buffers, so an open
//! handle keeps working after its file is renamed or removed (as on Unix).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::storage::{parent_dir, LockKind, OpenMode, Storage, StorageFile, StorageLock};
use crate::error::{Error, Result};

type Bytes = Arc<RwLock<Vec<u8>>>;

#[derive(Debug, Default)]
struct Tree {
    files: BTreeMap<PathBuf, Bytes>,
    dirs: BTreeSet<PathBuf>,
    /// Lock holders per lock path: `Some(n)` shared by n, `None` exclusive.
    locks: HashMap<PathBuf, Option<usize>>,
}

/// An in-memory file system with one copy of every byte; cheap to clone (clones share it).
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    tree: Arc<Mutex<Tree>>,
}

impl MemStorage {
    /// An empty file system (with the root directory `/`).
    pub fn new() -> Self {
        let s = MemStorage::default();
        s.lock_tree().dirs.insert(PathBuf::from("/"));
        s
    }

    fn lock_tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(op: &'static str, path: &Path) -> Error {
    Error::io(op, path, ErrorKind::NotFound.into())
}

#[derive(Debug)]
struct MemFile {
    path: PathBuf,
    data: Bytes,
    writable: bool,
}

impl StorageFile for MemFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| data.get(start..end))
            .ok_or_else(|| Error::io("read", &self.path, ErrorKind::UnexpectedEof.into()))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::io(
                "write",
                &self.path,
                ErrorKind::PermissionDenied.into(),
            ));
        }
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        let start = usize::try_from(offset)
            .map_err(|_| Error::io("write", &self.path, ErrorKind::FileTooLarge.into()))?;
        if start > data.len() {
            data.resize(start, 0);
        }
        // Overwrite what exists, append the rest (appends, the common case, copy once).
        let overlap = (data.len() - start).min(buf.len());
        data[start..start + overlap].copy_from_slice(&buf[..overlap]);
        data.extend_from_slice(&buf[overlap..]);
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        Ok(self.data.read().unwrap_or_else(|e| e.into_inner()).len() as u64)
    }

    fn set_len(&self, len: u64) -> Result<()> {
        if !self.writable {
            return Err(Error::io(
                "truncate",
                &self.path,
                ErrorKind::PermissionDenied.into(),
            ));
        }
        let len = usize::try_from(len)
            .map_err(|_| Error::io("truncate", &self.path, ErrorKind::FileTooLarge.into()))?;
        self.data
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct MemLock {
    tree: Arc<Mutex<Tree>>,
    path: PathBuf,
}

impl StorageLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut tree = self.tree.lock().unwrap_or_else(|e| e.into_inner());
        match tree.locks.get_mut(&self.path) {
            Some(Some(n)) if *n > 1 => *n -= 1,
            _ => {
                tree.locks.remove(&self.path);
            }
        }
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let mut tree = self.lock_tree();
        for d in dir.ancestors() {
            if !d.as_os_str().is_empty() {
                tree.dirs.insert(d.to_path_buf());
            }
        }
        Ok(())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn StorageFile>> {
        let mut tree = self.lock_tree();
        if !tree.dirs.contains(&parent_dir(path)) {
            return Err(not_found("open", path));
        }
        let existing = tree.files.get(path).cloned();
        let data = match (mode, existing) {
            (OpenMode::CreateNew, Some(_)) => {
                return Err(Error::io("open", path, ErrorKind::AlreadyExists.into()))
            }
            (OpenMode::Read | OpenMode::ReadWrite, None) => return Err(not_found("open", path)),
            (_, Some(d)) => d,
            (OpenMode::CreateNew | OpenMode::CreateOrOpen, None) => {
                let d: Bytes = Arc::default();
                tree.files.insert(path.to_path_buf(), d.clone());
                d
            }
        };
        Ok(Arc::new(MemFile {
            path: path.to_path_buf(),
            data,
            writable: mode != OpenMode::Read,
        }))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let tree = self.lock_tree();
        Ok(tree.files.contains_key(path) || tree.dirs.contains(path))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let tree = self.lock_tree();
        if !tree.dirs.contains(dir) {
            return Err(not_found("list", dir));
        }
        let children = tree.files.keys().chain(tree.dirs.iter());
        let mut names: Vec<String> = children
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut tree = self.lock_tree();
        let data = tree
            .files
            .remove(from)
            .ok_or_else(|| not_found("rename", from))?;
        tree.files.insert(to.to_path_buf(), data);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        let mut tree = self.lock_tree();
        tree.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found("remove", path))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        if self.lock_tree().dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found("sync dir", dir))
        }
    }

    fn lock(&self, path: &Path, kind: LockKind) -> Result<Box<dyn StorageLock>> {
        let mut tree = self.lock_tree();
        let held = tree.locks.get(path).copied();
        let next = match (held, kind) {
            (None, LockKind::Exclusive) => None,
            (None, LockKind::Shared) => Some(1),
            (Some(Some(n)), LockKind::Shared) => Some(n + 1),
            _ => {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                })
            }
        };
        tree.locks.insert(path.to_path_buf(), next);
        if !tree.files.contains_key(path) {
            tree.files.insert(path.to_path_buf(), Arc::default());
        }
        Ok(Box::new(MemLock {
            tree: self.tree.clone(),
            path: path.to_path_buf(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_behave_like_the_real_file_system() {
        // Proves the open modes, positional I/O, rename, remove, listing and handles that
        // outlive their name, as FsStorage behaves.
        let s = MemStorage::new();
        let dir = Path::new("/db");
        assert!(
            s.open(&dir.join("f"), OpenMode::CreateNew).is_err(),
            "no parent directory yet"
        );
        s.create_dir_all(dir).unwrap();
        let f = s.open(&dir.join("f"), OpenMode::CreateNew).unwrap();
        f.write_at(3, b"abc").unwrap();
        assert_eq!(f.read_vec_at(0, 6).unwrap(), b"\0\0\0abc");
        assert!(f.read_vec_at(4, 3).is_err());
        assert!(s.open(&dir.join("f"), OpenMode::CreateNew).is_err());
        assert!(s.open(&dir.join("g"), OpenMode::Read).is_err());
        s.rename(&dir.join("f"), &dir.join("g")).unwrap();
        assert_eq!(s.list_dir(dir).unwrap(), vec!["g".to_string()]);
        s.remove_file(&dir.join("g")).unwrap();
        assert_eq!(
            f.read_vec_at(3, 3).unwrap(),
            b"abc",
            "an open handle outlives its name"
        );
        assert!(s.remove_file(&dir.join("g")).is_err());
        let ro = {
            let w = s.open(&dir.join("h"), OpenMode::CreateOrOpen).unwrap();
            w.write_at(0, b"x").unwrap();
            s.open(&dir.join("h"), OpenMode::Read).unwrap()
        };
        assert!(ro.write_at(0, b"y").is_err());
        ro.sync_data().unwrap();
        s.sync_dir(dir).unwrap();
    }

    #[test]
    fn locks_exclude_and_release() {
        // Proves exclusive/shared semantics and release on drop.
        let s = MemStorage::new();
        let p = Path::new("/LOCK");
        let g = s.lock(p, LockKind::Exclusive).unwrap();
        assert!(matches!(
            s.lock(p, LockKind::Shared),
            Err(Error::Locked { .. })
        ));
        drop(g);
        let a = s.lock(p, LockKind::Shared).unwrap();
        let b = s.lock(p, LockKind::Shared).unwrap();
        assert!(matches!(
            s.lock(p, LockKind::Exclusive),
            Err(Error::Locked { .. })
        ));
        drop((a, b));
        s.lock(p, LockKind::Exclusive).unwrap();
    }
}

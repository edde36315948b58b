//! [`Storage`] on the real file system (positional I/O, `fdatasync`, `flock`).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::storage::{parent_dir, LockKind, Mapping, OpenMode, Storage, StorageFile, StorageLock};
use crate::error::{Error, Result};

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

impl FsStorage {
    /// A handle to the real file system.
    pub fn new() -> Self {
        FsStorage
    }
}

#[derive(Debug)]
struct FsFile {
    path: PathBuf,
    file: File,
}

impl StorageFile for FsFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io("read", &self.path, e))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io("write", &self.path, e))
    }

    fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io("stat", &self.path, e))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate", &self.path, e))
    }

    fn sync_data(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("sync", &self.path, e))
    }

    /// Maps with `MADV_RANDOM`: value reads are random, and read-ahead around each fault would
    /// read pages no one asked for (a page already cached is still mapped around the fault).
    fn map_read_only(&self, len: u64) -> Result<Option<Mapping>> {
        let err = |e| Error::io("map", &self.path, e);
        let len = usize::try_from(len)
            .map_err(|_| err(std::io::Error::other("file larger than the address space")))?;
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: a mapping is undefined behaviour only if the mapped bytes change (or the
        // file shrinks) while it lives. The caller's contract is a file that no one writes or
        // truncates any more: a sealed value-log file, which this process never writes again
        // and which the directory lock keeps every other SettDB process from opening for
        // writing. What remains is outside any program's control (another program writing
        // the file, a failing disk): there a read through the mapping ends the process with
        // SIGBUS instead of an I/O error, which is why mapping is an option
        // (`Options::value_log_mmap`), off by default.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&self.file) }.map_err(err)?;
        map.advise(memmap2::Advice::Random).map_err(err)?;
        Ok(Some(Mapping::new(map).map_err(err)?))
    }
}

#[derive(Debug)]
struct FsLock {
    _file: File,
}

impl StorageLock for FsLock {}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        // Find the first missing ancestor so that each new directory is synced into its parent.
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            cur = d.parent();
        }
        fs::create_dir_all(dir).map_err(|e| Error::io("mkdir", dir, e))?;
        for d in missing.iter().rev() {
            self.sync_dir(&parent_dir(d))?;
        }
        Ok(())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
            OpenMode::CreateOrOpen => o.read(true).write(true).create(true).truncate(false),
        };
        let file = open_noatime(&o, path).map_err(|e| Error::io("open", path, e))?;
        Ok(Arc::new(FsFile {
            path: path.to_path_buf(),
            file,
        }))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().map_err(|e| Error::io("stat", path, e))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            // A name that is not UTF-8 is not one of ours; list it lossily so callers see it.
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(|e| Error::io("remove", path, e))
    }

    fn remove_dir(&self, dir: &Path) -> Result<()> {
        fs::remove_dir(dir).map_err(|e| Error::io("remove dir", dir, e))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync dir", dir, e))
    }

    fn lock(&self, path: &Path, kind: LockKind) -> Result<Box<dyn StorageLock>> {
        let file = open_lock_file(path, kind).map_err(|e| Error::io("open lock", path, e))?;
        let res = match kind {
            LockKind::Exclusive => file.try_lock(),
            LockKind::Shared => file.try_lock_shared(),
        };
        match res {
            Ok(()) => Ok(Box::new(FsLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
                path: path.to_path_buf(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }
}

/// The lock file, opened as the lock needs: an exclusive lock (a writer) creates it; a shared
/// lock (a reader) opens an existing one read-only, which works on read-only media (`flock`
/// needs no write access).
/// Linux's `O_NOATIME` (the same value on every architecture Rust supports there).
#[cfg(target_os = "linux")]
const O_NOATIME: i32 = 0o1_000_000;

/// Opens with `O_NOATIME` where the system has it: a read then skips the access-time check
/// and update (2% of a value-log point read, measured). Only the file's owner may ask for it;
/// anyone else (EPERM) opens without it.
fn open_noatime(o: &OpenOptions, path: &Path) -> std::io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut noatime = o.clone();
        noatime.custom_flags(O_NOATIME);
        match noatime.open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            other => return other,
        }
    }
    o.open(path)
}

fn open_lock_file(path: &Path, kind: LockKind) -> std::io::Result<File> {
    match kind {
        LockKind::Exclusive => OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path),
        LockKind::Shared => OpenOptions::new().read(true).open(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_exclusive_lock_is_refused() {
        // Proves flock exclusivity: a second exclusive or shared lock gets Error::Locked.
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::new();
        let p = dir.path().join("LOCK");
        let g = s.lock(&p, LockKind::Exclusive).unwrap();
        assert!(matches!(
            s.lock(&p, LockKind::Exclusive),
            Err(Error::Locked { .. })
        ));
        assert!(matches!(
            s.lock(&p, LockKind::Shared),
            Err(Error::Locked { .. })
        ));
        drop(g);
        let a = s.lock(&p, LockKind::Shared).unwrap();
        let _b = s.lock(&p, LockKind::Shared).unwrap();
        assert!(matches!(
            s.lock(&p, LockKind::Exclusive),
            Err(Error::Locked { .. })
        ));
        drop(a);
    }

    #[test]
    fn write_read_and_short_read_error() {
        // Proves positional writes read back and a read past the end is an error.
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::new();
        let p = dir.path().join("sub/dir/f");
        s.create_dir_all(&parent_dir(&p)).unwrap();
        let f = s.open(&p, OpenMode::CreateNew).unwrap();
        f.write_at(3, b"abc").unwrap();
        assert_eq!(f.len().unwrap(), 6);
        assert_eq!(f.read_vec_at(0, 6).unwrap(), b"\0\0\0abc");
        assert!(f.read_vec_at(4, 3).is_err());
        assert!(s.open(&p, OpenMode::CreateNew).is_err());
        assert_eq!(s.list_dir(&parent_dir(&p)).unwrap(), vec!["f".to_string()]);
        f.sync_data().unwrap();
        s.sync_dir(&parent_dir(&p)).unwrap();
    }

    #[test]
    fn a_shared_lock_opens_its_file_read_only() {
        // Proves a reader's lock needs no write access (a read-only open on read-only media
        // once failed with "open lock on LOCK: Read-only file system"): the shared lock's file
        // is opened O_RDONLY (read from /proc, as root bypasses file permissions), and a
        // missing lock file is not created by it.
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        assert!(open_lock_file(&path, LockKind::Shared).is_err());
        assert!(!path.exists());
        let writer = open_lock_file(&path, LockKind::Exclusive).unwrap();
        let reader = open_lock_file(&path, LockKind::Shared).unwrap();
        let access_mode = |f: &File| {
            let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).unwrap();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
                .unwrap();
            flags & 0o3 // O_ACCMODE: 0 read-only, 2 read-write
        };
        assert_eq!(access_mode(&reader), 0);
        assert_eq!(access_mode(&writer), 2);
        drop(writer);
        let s = FsStorage::new();
        let _shared = s.lock(&path, LockKind::Shared).unwrap();
        let _shared2 = s.lock(&path, LockKind::Shared).unwrap();
        assert!(matches!(
            s.lock(&path, LockKind::Exclusive),
            Err(Error::Locked { .. })
        ));
    }
}

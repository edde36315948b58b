//! [`SimFile`]: an open handle on a simulated file. It names an inode, not a path, so it keeps
//! working after the file is renamed or removed (Unix semantics).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::Rng;

use super::fault::{FaultKind, FaultOp};
use super::op::{Ino, Op};
use super::sim_storage::{lock_state, Shared};
use super::tree::Tree;
use crate::error::{Error, Result};
use crate::io::storage::StorageFile;

/// Raw OS error number of `EBADF` (the same on every Unix): what the real fs returns for a
/// write through a read-only descriptor.
const EBADF: i32 = 9;

/// An open simulated file. REQUIRES: the inode's handle count in `shared` was raised for this
/// handle; `Drop` lowers it.
pub(super) struct SimFile {
    shared: Arc<Mutex<Shared>>,
    ino: Ino,
    /// The path it was opened at: for errors and fault matching only.
    path: PathBuf,
    writable: bool,
}

impl SimFile {
    /// A handle on `ino`, opened at `path`.
    pub(super) fn new(shared: Arc<Mutex<Shared>>, ino: Ino, path: PathBuf, writable: bool) -> Self {
        SimFile {
            shared,
            ino,
            path,
            writable,
        }
    }

    fn io_error(&self, op: &'static str, source: std::io::Error) -> Error {
        Error::io(op, &self.path, source)
    }

    fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(self.io_error(op, std::io::Error::from_raw_os_error(EBADF)))
        }
    }
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .field("writable", &self.writable)
            .finish()
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        lock_state(&self.shared).tree.close_handle(self.ino);
    }
}

impl StorageFile for SimFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut s = lock_state(&self.shared);
        if let Some(kind) = s.fault(FaultOp::Read, &[&self.path]) {
            return Err(self.io_error("read", kind.to_io_error()));
        }
        s.tree
            .read(self.ino, offset, buf)
            .map_err(|e| self.io_error("read", e))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check_writable("write")?;
        let offset = Tree::check_range(offset, buf.len()).map_err(|e| self.io_error("write", e))?;
        let mut s = lock_state(&self.shared);
        let mut landed = buf.len();
        let fault = s.fault(FaultOp::Write, &[&self.path]);
        if let Some(kind) = fault {
            landed = match kind {
                FaultKind::ShortWrite if !buf.is_empty() => s.rng.random_range(0..buf.len()),
                _ => 0,
            };
        }
        // An empty write never extends a file (pwrite of 0 bytes), so it is not an op.
        if let Some(bytes) = buf.get(..landed).filter(|b| !b.is_empty()) {
            s.tree.mutate(Op::Write {
                ino: self.ino,
                offset,
                bytes: bytes.to_vec(),
            });
        }
        match fault {
            Some(kind) => Err(self.io_error("write", kind.to_io_error())),
            None => Ok(()),
        }
    }

    fn len(&self) -> Result<u64> {
        Ok(lock_state(&self.shared).tree.len(self.ino))
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.check_writable("truncate")?;
        let len = Tree::check_range(len, 0).map_err(|e| self.io_error("truncate", e))?;
        let mut s = lock_state(&self.shared);
        if let Some(kind) = s.fault(FaultOp::SetLen, &[&self.path]) {
            return Err(self.io_error("truncate", kind.to_io_error()));
        }
        s.tree.mutate(Op::SetLen { ino: self.ino, len });
        Ok(())
    }

    fn sync_data(&self) -> Result<()> {
        let mut s = lock_state(&self.shared);
        // A failed fsync makes nothing durable: the dirty bytes stay unsynced (Linux may even
        // drop them; a crash may lose them either way).
        if let Some(kind) = s.fault(FaultOp::Sync, &[&self.path]) {
            return Err(self.io_error("sync", kind.to_io_error()));
        }
        s.tree.sync_file(self.ino);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::io::{CrashMode, OpenMode, SimStorage, Storage};

    #[test]
    fn handle_survives_rename_and_remove() {
        // Proves a handle follows its inode: writes after a rename show at the new name, and
        // after a remove the handle still reads and writes the unlinked inode.
        let s = SimStorage::new();
        let f = s.open(Path::new("a"), OpenMode::CreateNew).unwrap();
        f.write_at(0, b"one").unwrap();
        s.rename(Path::new("a"), Path::new("b")).unwrap();
        f.write_at(3, b"two").unwrap();
        assert_eq!(s.live_bytes(Path::new("b")).unwrap(), b"onetwo");
        assert_eq!(s.live_bytes(Path::new("a")), None);
        s.remove_file(Path::new("b")).unwrap();
        f.write_at(6, b"!").unwrap();
        assert_eq!(f.read_vec_at(0, 7).unwrap(), b"onetwo!");
        assert_eq!(f.len().unwrap(), 7);
        f.sync_data().unwrap();
        assert!(!s.exists(Path::new("b")).unwrap());
    }

    #[test]
    fn read_only_handle_refuses_writes_and_short_reads_fail() {
        // Proves a Read handle refuses write and set_len with an Io error, and a read past the
        // end is an error rather than a partial result.
        let s = SimStorage::new();
        s.set_bytes(Path::new("f"), b"abc").unwrap();
        let f = s.open(Path::new("f"), OpenMode::Read).unwrap();
        assert!(matches!(
            f.write_at(0, b"x"),
            Err(crate::Error::Io { op: "write", .. })
        ));
        assert!(matches!(
            f.set_len(0),
            Err(crate::Error::Io { op: "truncate", .. })
        ));
        assert_eq!(f.read_vec_at(1, 2).unwrap(), b"bc");
        assert!(f.read_vec_at(2, 2).is_err());
        assert!(f.read_vec_at(u64::MAX, 1).is_err());
        assert_eq!(s.live_bytes(Path::new("f")).unwrap(), b"abc");
    }

    #[test]
    fn unlinked_file_data_vanishes_in_a_crash() {
        // Proves data ops on an inode with no surviving entry vanish with it: a file created,
        // written, synced but never linked durably is absent after every crash that drops the
        // link, and the writes do not appear elsewhere.
        let s = SimStorage::new();
        let f = s.open(Path::new("x"), OpenMode::CreateNew).unwrap();
        f.write_at(0, b"data").unwrap();
        f.sync_data().unwrap();
        s.remove_file(Path::new("x")).unwrap();
        drop(f);
        for mode in [CrashMode::Nothing, CrashMode::Everything, CrashMode::Subset] {
            let c = s.crash(mode, 3);
            assert!(c.list_dir(Path::new("/")).unwrap().is_empty(), "{mode:?}");
        }
    }

    #[test]
    fn set_len_truncates_and_zero_extends() {
        // Proves set_len shrinks and grows with zeros in the live view, unsynced until synced.
        let s = SimStorage::new();
        let f = s.open(Path::new("f"), OpenMode::CreateOrOpen).unwrap();
        f.write_at(0, b"abcdef").unwrap();
        f.set_len(2).unwrap();
        f.set_len(4).unwrap();
        assert_eq!(s.live_bytes(Path::new("f")).unwrap(), b"ab\0\0");
        assert!(f.set_len(u64::MAX).is_err());
        f.sync_data().unwrap();
        s.sync_dir(Path::new("/")).unwrap();
        assert_eq!(s.durable_bytes(Path::new("f")).unwrap(), b"ab\0\0");
        assert_eq!(s.unsynced_op_count(), 0);
    }
}

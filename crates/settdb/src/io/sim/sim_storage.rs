//! [`SimStorage`]: [`Storage`] entirely in memory, keeping what a disk plus page cache may
//! keep after a power loss apart from what it must keep, with injectable faults.
//!
//! Model (see [`super::op`] for the log invariant): every inode has live bytes (what reads see)
//! and durable bytes (what survives for certain); every directory has live and durable
//! entries. `sync_data` makes a file's live bytes durable, `sync_dir` a directory's live
//! entries; every other mutation is logged in issue order, and [`SimStorage::crash`] keeps
//! the durable state plus a selection of the log chosen by a [`CrashMode`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::crash::{plan, CrashMode};
use super::fault::{Fault, FaultKind, FaultOp, FaultSet};
use super::file::SimFile;
use super::lock::{LockTable, SimLock};
use super::op::{Ino, Op};
use super::path_key::PathKey;
use super::tree::{fs_error, Tree, View, ROOT};
use crate::error::{Error, Result};
use crate::io::storage::{LockKind, OpenMode, Storage, StorageFile, StorageLock};

/// Seed of the short-write lengths of [`SimStorage::new`].
const DEFAULT_SEED: u64 = 0x5e77_db51;

/// Everything one simulated file system holds; guarded by the mutex in [`SimStorage`], which
/// is never held across a call out of this module.
#[derive(Debug)]
pub(super) struct Shared {
    /// Inodes, both views, and the unsynced log.
    pub(super) tree: Tree,
    /// Armed faults.
    pub(super) faults: FaultSet,
    /// Held directory locks.
    pub(super) locks: LockTable,
    /// Chooses short-write lengths.
    pub(super) rng: StdRng,
}

impl Shared {
    /// Counts one `op` on `paths` against the armed faults; the kind if it must fail.
    pub(super) fn fault(&mut self, op: FaultOp, paths: &[&Path]) -> Option<FaultKind> {
        if self.faults.is_empty() {
            return None;
        }
        let mut names = Vec::with_capacity(2 * paths.len());
        for p in paths {
            names.push(p.to_string_lossy().into_owned());
            names.push(PathKey::new(p).to_string());
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.faults.check(op, &refs)
    }

    /// `Err` named `what` on `path` if an armed fault fails this `op`.
    fn fail_if(&mut self, op: FaultOp, what: &'static str, path: &Path) -> Result<()> {
        match self.fault(op, &[path]) {
            Some(kind) => Err(Error::io(what, path, kind.to_io_error())),
            None => Ok(()),
        }
    }
}

/// Locks `shared`, ignoring poisoning: a panicking test thread must not hide the state from
/// the others.
pub(super) fn lock_state(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An in-memory file system that proves durability rules (DESIGN.md): it keeps synced and
/// unsynced bytes and directory entries apart, can [`crash`](SimStorage::crash) into an
/// independent copy keeping only part of what was not synced, and injects I/O faults.
///
/// Clones share one file system. Paths are normalised lexically (`a/./b` is `a/b`) and a
/// relative path is read from the root; nothing touches the real disk. Files larger than
/// 1 GiB are refused with `FileTooLarge`. Directories are created only by `create_dir_all`,
/// durably. Semantics follow Linux where the sim cannot differ: `open` of a directory is
/// `IsADirectory`, `remove_file` of a missing path is `NotFound`, `rename` replaces its
/// target atomically and moves directories too.
#[derive(Clone)]
pub struct SimStorage {
    shared: Arc<Mutex<Shared>>,
}

impl Default for SimStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // try_lock: formatting must not deadlock if a caller holds the state.
        match self.shared.try_lock() {
            Ok(s) => f
                .debug_struct("SimStorage")
                .field("tree", &s.tree)
                .field("faults", &s.faults)
                .field("locks_held", &s.locks.held_count())
                .finish(),
            Err(_) => f.write_str("SimStorage { <busy> }"),
        }
    }
}

impl SimStorage {
    /// An empty file system (only the root directory) with the default seed.
    pub fn new() -> Self {
        Self::with_seed(DEFAULT_SEED)
    }

    /// An empty file system whose random choices (short-write lengths) follow `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self::from_tree(Tree::new(), seed)
    }

    fn from_tree(tree: Tree, seed: u64) -> Self {
        SimStorage {
            shared: Arc::new(Mutex::new(Shared {
                tree,
                faults: FaultSet::default(),
                locks: LockTable::default(),
                rng: StdRng::seed_from_u64(seed),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, Shared> {
        lock_state(&self.shared)
    }

    /// What a power loss now would leave, as an independent file system with no open handles,
    /// locks or faults: all durable state plus the unsynced ops `mode` keeps, replayed in
    /// order. Deterministic in `seed`.
    pub fn crash(&self, mode: CrashMode, seed: u64) -> SimStorage {
        let s = self.state();
        let keep = plan(mode, seed, s.tree.log());
        Self::from_tree(s.tree.crash_copy(&keep), seed)
    }

    /// Arms `fault` (behind any already armed).
    pub fn inject(&self, fault: Fault) {
        self.state().faults.inject(fault);
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// The bytes a read of the file at `path` sees now (`None` if no file is there).
    pub fn live_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state();
        let ino = s.tree.lookup(&PathKey::new(path), View::Live)?;
        s.tree.file_bytes(ino, View::Live).map(<[u8]>::to_vec)
    }

    /// The bytes at `path` that survive any crash: the file named by the durable entries,
    /// with its durable bytes (`None` if no file is durably there).
    pub fn durable_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state();
        let ino = s.tree.lookup(&PathKey::new(path), View::Durable)?;
        s.tree.file_bytes(ino, View::Durable).map(<[u8]>::to_vec)
    }

    /// Number of logged ops not yet made durable.
    pub fn unsynced_op_count(&self) -> usize {
        self.state().tree.log().len()
    }

    /// Bit rot: XORs `xor_mask` into the byte at `offset` of the file at `path`, in both its
    /// live and its durable bytes (where each has that byte). Meant for synced files.
    pub fn corrupt(&self, path: &Path, offset: u64, xor_mask: u8) -> Result<()> {
        let mut s = self.state();
        let key = PathKey::new(path);
        let ino = s
            .tree
            .lookup(&key, View::Live)
            .or_else(|| s.tree.lookup(&key, View::Durable))
            .ok_or_else(|| not_found("corrupt", path))?;
        if s.tree.xor_byte(ino, offset, xor_mask) {
            Ok(())
        } else {
            let e = fs_error(std::io::ErrorKind::InvalidInput, "offset past the end");
            Err(Error::io("corrupt", path, e))
        }
    }

    /// Makes the file at `path` hold exactly `bytes`, durably, as a write + `sync_data` +
    /// `sync_dir` of its parent would (so the parent's other pending entries become durable
    /// too). Creates the file if missing; the parent directory must exist. Ignores faults.
    pub fn set_bytes(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut s = self.state();
        let io = |e| Error::io("set_bytes", path, e);
        Tree::check_range(0, bytes.len()).map_err(io)?;
        let (dir, ino) =
            open_or_create(&mut s.tree, &PathKey::new(path), OpenMode::CreateOrOpen).map_err(io)?;
        s.tree.mutate(Op::SetLen { ino, len: 0 });
        if !bytes.is_empty() {
            s.tree.mutate(Op::Write {
                ino,
                offset: 0,
                bytes: bytes.to_vec(),
            });
        }
        s.tree.sync_file(ino);
        s.tree.sync_dir(dir);
        Ok(())
    }
}

fn not_found(op: &'static str, path: &Path) -> Error {
    let e = fs_error(std::io::ErrorKind::NotFound, "no such file or directory");
    Error::io(op, path, e)
}

/// Resolves (or, by `mode`, creates) the file at `key` as `open` does; (parent dir, file).
fn open_or_create(tree: &mut Tree, key: &PathKey, mode: OpenMode) -> std::io::Result<(Ino, Ino)> {
    use std::io::ErrorKind;
    let (dir, name) = tree.parent(key)?;
    let ino = match (tree.child(dir, &name, View::Live), mode) {
        (Some(ino), _) if tree.is_dir(ino) => {
            return Err(fs_error(ErrorKind::IsADirectory, "is a directory"))
        }
        (Some(_), OpenMode::CreateNew) => {
            return Err(fs_error(ErrorKind::AlreadyExists, "file exists"))
        }
        (Some(ino), _) => ino,
        (None, OpenMode::Read | OpenMode::ReadWrite) => {
            return Err(fs_error(ErrorKind::NotFound, "no such file or directory"))
        }
        (None, OpenMode::CreateNew | OpenMode::CreateOrOpen) => {
            let ino = tree.create_node(false);
            tree.mutate(Op::Link { dir, name, ino });
            ino
        }
    };
    Ok((dir, ino))
}

/// Checks that a rename of `ino` (at `from`) onto `to` is allowed, as Linux checks it.
fn check_rename(
    tree: &Tree,
    ino: Ino,
    from: &PathKey,
    to: &PathKey,
    target: Option<Ino>,
) -> std::io::Result<()> {
    use std::io::ErrorKind;
    let moving_dir = tree.is_dir(ino);
    if let Some(target) = target {
        match (moving_dir, tree.is_dir(target)) {
            (false, true) => return Err(fs_error(ErrorKind::IsADirectory, "is a directory")),
            (true, false) => return Err(fs_error(ErrorKind::NotADirectory, "not a directory")),
            (true, true) if !tree.entries(target).is_empty() => {
                return Err(fs_error(
                    ErrorKind::DirectoryNotEmpty,
                    "directory not empty",
                ))
            }
            _ => {}
        }
    }
    if moving_dir && to.starts_with(from) {
        return Err(fs_error(
            ErrorKind::InvalidInput,
            "cannot move a directory into itself",
        ));
    }
    Ok(())
}

impl Storage for SimStorage {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let mut s = self.state();
        let key = PathKey::new(dir);
        let mut cur = ROOT;
        for (depth, name) in key.names().iter().enumerate() {
            match s.tree.child(cur, name, View::Live) {
                Some(ino) if s.tree.is_dir(ino) => cur = ino,
                Some(_) => {
                    let last = depth + 1 == key.names().len();
                    let e = if last {
                        fs_error(std::io::ErrorKind::AlreadyExists, "file exists")
                    } else {
                        fs_error(std::io::ErrorKind::NotADirectory, "not a directory")
                    };
                    return Err(Error::io("mkdir", dir, e));
                }
                None => {
                    let ino = s.tree.create_node(true);
                    let name = name.clone();
                    s.tree.mutate(Op::Link {
                        dir: cur,
                        name,
                        ino,
                    });
                    // As the real implementation: each new directory is synced into its parent.
                    let parent = PathBuf::from(key.prefix(depth).to_string());
                    s.fail_if(FaultOp::SyncDir, "sync dir", &parent)?;
                    s.tree.sync_dir(cur);
                    cur = ino;
                }
            }
        }
        Ok(())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> Result<Arc<dyn StorageFile>> {
        let mut s = self.state();
        s.fail_if(FaultOp::Open, "open", path)?;
        let (_, ino) = open_or_create(&mut s.tree, &PathKey::new(path), mode)
            .map_err(|e| Error::io("open", path, e))?;
        s.tree.open_handle(ino);
        let writable = mode != OpenMode::Read;
        let file = SimFile::new(Arc::clone(&self.shared), ino, path.to_path_buf(), writable);
        Ok(Arc::new(file))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let s = self.state();
        let key = PathKey::new(path);
        let Some((parent, name)) = key.split_last() else {
            return Ok(true);
        };
        match s.tree.lookup_dir(&parent) {
            Ok(dir) => Ok(s.tree.child(dir, name, View::Live).is_some()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("stat", path, e)),
        }
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let s = self.state();
        let ino = s
            .tree
            .lookup_dir(&PathKey::new(dir))
            .map_err(|e| Error::io("list", dir, e))?;
        Ok(s.tree.entries(ino))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut s = self.state();
        if let Some(kind) = s.fault(FaultOp::Rename, &[from, to]) {
            return Err(Error::io("rename", from, kind.to_io_error()));
        }
        let io = |e| Error::io("rename", from, e);
        let (fk, tk) = (PathKey::new(from), PathKey::new(to));
        let (fdir, fname) = s.tree.parent(&fk).map_err(io)?;
        let (tdir, tname) = s.tree.parent(&tk).map_err(io)?;
        let ino = s
            .tree
            .child(fdir, &fname, View::Live)
            .ok_or_else(|| not_found("rename", from))?;
        if fk == tk {
            return Ok(());
        }
        let target = s.tree.child(tdir, &tname, View::Live);
        check_rename(&s.tree, ino, &fk, &tk, target).map_err(io)?;
        if fdir == tdir {
            s.tree.mutate(Op::Rename {
                dir: fdir,
                from: fname,
                to: tname,
            });
        } else {
            // Link first: a crash keeping a prefix never loses the file.
            s.tree.mutate(Op::Link {
                dir: tdir,
                name: tname,
                ino,
            });
            s.tree.mutate(Op::Unlink {
                dir: fdir,
                name: fname,
            });
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        let mut s = self.state();
        s.fail_if(FaultOp::Remove, "remove", path)?;
        let io = |e| Error::io("remove", path, e);
        let (dir, name) = s.tree.parent(&PathKey::new(path)).map_err(io)?;
        let ino = s
            .tree
            .child(dir, &name, View::Live)
            .ok_or_else(|| not_found("remove", path))?;
        if s.tree.is_dir(ino) {
            return Err(io(fs_error(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            )));
        }
        s.tree.mutate(Op::Unlink { dir, name });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let mut s = self.state();
        s.fail_if(FaultOp::SyncDir, "sync dir", dir)?;
        let ino = s
            .tree
            .lookup_dir(&PathKey::new(dir))
            .map_err(|e| Error::io("sync dir", dir, e))?;
        s.tree.sync_dir(ino);
        Ok(())
    }

    fn lock(&self, path: &Path, kind: LockKind) -> Result<Box<dyn StorageLock>> {
        let mut s = self.state();
        let key = PathKey::new(path);
        // As the real implementation: the lock file is opened (created if missing) first.
        open_or_create(&mut s.tree, &key, OpenMode::CreateOrOpen)
            .map_err(|e| Error::io("open lock", path, e))?;
        if !s.locks.try_acquire(&key, kind) {
            return Err(Error::Locked {
                path: path.to_path_buf(),
            });
        }
        Ok(Box::new(SimLock::new(Arc::clone(&self.shared), key, kind)))
    }
}

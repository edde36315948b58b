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
/// durably (each new directory is linked and its parent synced, as the real implementation
/// does, which also makes the parent's other pending entries durable). Semantics follow Linux
/// where the sim cannot differ: `open` of a directory is `IsADirectory`, `remove_file` of a
/// missing path is `NotFound`, `rename` replaces its target atomically and moves directories
/// too; a rename within one directory is one atomic op, across directories it is a link in
/// the target then an unlink in the source, each durable with its own directory's sync.
///
/// Faults (see [`Fault`]) apply to `read_at`, `write_at`, `set_len`, `sync_data`, `open`,
/// `rename`, `remove_file`, `sync_dir` and the parent syncs of `create_dir_all`; `len`,
/// `exists`, `list_dir` and `lock` never fail by injection.
///
/// Thread safety: all state sits behind one mutex, taken for the length of each call and
/// never across a call out of this module.
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

    fn remove_dir(&self, path: &Path) -> Result<()> {
        let mut s = self.state();
        s.fail_if(FaultOp::Remove, "remove dir", path)?;
        let io = |e| Error::io("remove dir", path, e);
        let (dir, name) = s.tree.parent(&PathKey::new(path)).map_err(io)?;
        let ino = s
            .tree
            .child(dir, &name, View::Live)
            .ok_or_else(|| not_found("remove dir", path))?;
        if !s.tree.is_dir(ino) {
            return Err(io(fs_error(
                std::io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        if !s.tree.entries(ino).is_empty() {
            return Err(io(fs_error(
                std::io::ErrorKind::DirectoryNotEmpty,
                "directory not empty",
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::io::ErrorKind;

    use proptest::prelude::*;

    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    fn kind(r: Result<impl Sized>) -> ErrorKind {
        match r {
            Err(Error::Io { source, .. }) => source.kind(),
            Err(e) => panic!("not an Io error: {e}"),
            Ok(_) => panic!("no error"),
        }
    }

    #[test]
    fn open_modes_follow_the_real_fs() {
        // Proves each OpenMode's existence rules, NotFound for a missing parent directory,
        // IsADirectory for a directory, and that CreateOrOpen never truncates.
        let s = SimStorage::new();
        assert_eq!(kind(s.open(p("f"), OpenMode::Read)), ErrorKind::NotFound);
        assert_eq!(
            kind(s.open(p("f"), OpenMode::ReadWrite)),
            ErrorKind::NotFound
        );
        let f = s.open(p("f"), OpenMode::CreateNew).unwrap();
        f.write_at(0, b"keep").unwrap();
        assert_eq!(
            kind(s.open(p("f"), OpenMode::CreateNew)),
            ErrorKind::AlreadyExists
        );
        let g = s.open(p("/./f"), OpenMode::CreateOrOpen).unwrap();
        assert_eq!(g.read_vec_at(0, 4).unwrap(), b"keep");
        assert_eq!(g.path(), p("/./f"));
        assert_eq!(
            kind(s.open(p("no/f"), OpenMode::CreateNew)),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(s.open(p("f/x"), OpenMode::CreateNew)),
            ErrorKind::NotADirectory
        );
        s.create_dir_all(p("d")).unwrap();
        assert_eq!(
            kind(s.open(p("d"), OpenMode::Read)),
            ErrorKind::IsADirectory
        );
        assert_eq!(
            kind(s.open(p("/"), OpenMode::Read)),
            ErrorKind::IsADirectory
        );
        assert!(matches!(
            s.open(p("no/f"), OpenMode::CreateNew),
            Err(Error::Io { op: "open", .. })
        ));
    }

    #[test]
    fn directories_are_durable_entries() {
        // Proves create_dir_all creates every level durably (and is idempotent), refuses a
        // file in the way, and that list_dir/exists see directories and files alike.
        let s = SimStorage::new();
        s.create_dir_all(p("/a/b/c")).unwrap();
        s.create_dir_all(p("a/b")).unwrap();
        assert_eq!(s.unsynced_op_count(), 0);
        let c = s.crash(CrashMode::Nothing, 0);
        assert!(c.exists(p("a/b/c")).unwrap());
        s.set_bytes(p("a/file"), b"").unwrap();
        assert_eq!(s.list_dir(p("a")).unwrap(), ["b", "file"]);
        assert_eq!(
            kind(s.create_dir_all(p("a/file"))),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            kind(s.create_dir_all(p("a/file/x"))),
            ErrorKind::NotADirectory
        );
        assert_eq!(kind(s.list_dir(p("a/file"))), ErrorKind::NotADirectory);
        assert_eq!(kind(s.list_dir(p("zz"))), ErrorKind::NotFound);
        assert_eq!(kind(s.sync_dir(p("zz"))), ErrorKind::NotFound);
        assert!(s.exists(p("/")).unwrap());
        assert!(!s.exists(p("zz/y")).unwrap());
        assert_eq!(kind(s.exists(p("a/file/y"))), ErrorKind::NotADirectory);
        assert_eq!(kind(s.remove_file(p("a/b"))), ErrorKind::IsADirectory);
    }

    #[test]
    fn remove_of_missing_file_is_not_found_and_remove_needs_dir_sync() {
        // Proves remove_file of a missing path is a NotFound Io error, and a removal is
        // undone by a crash until the directory is synced.
        let s = SimStorage::new();
        assert!(matches!(
            s.remove_file(p("x")),
            Err(Error::Io { op: "remove", ref source, .. }) if source.kind() == ErrorKind::NotFound
        ));
        s.set_bytes(p("old.vlog"), b"v").unwrap();
        s.remove_file(p("old.vlog")).unwrap();
        assert!(!s.exists(p("old.vlog")).unwrap());
        let c = s.crash(CrashMode::Nothing, 0);
        assert_eq!(c.live_bytes(p("old.vlog")).unwrap(), b"v");
        s.sync_dir(p("/")).unwrap();
        assert!(!s
            .crash(CrashMode::Nothing, 0)
            .exists(p("old.vlog"))
            .unwrap());
    }

    #[test]
    fn cross_directory_rename_needs_both_dir_syncs() {
        // Proves a rename across directories is durable per directory: syncing only the
        // target leaves the file at both names after a crash, syncing both moves it.
        let s = SimStorage::new();
        s.create_dir_all(p("tmp")).unwrap();
        s.create_dir_all(p("db")).unwrap();
        s.set_bytes(p("tmp/t"), b"x").unwrap();
        s.rename(p("tmp/t"), p("db/t")).unwrap();
        let c = s.crash(CrashMode::Nothing, 0);
        assert!(c.exists(p("tmp/t")).unwrap() && !c.exists(p("db/t")).unwrap());
        s.sync_dir(p("db")).unwrap();
        let c = s.crash(CrashMode::Nothing, 0);
        assert_eq!(c.live_bytes(p("tmp/t")).unwrap(), b"x");
        assert_eq!(c.live_bytes(p("db/t")).unwrap(), b"x");
        s.sync_dir(p("tmp")).unwrap();
        let c = s.crash(CrashMode::Nothing, 0);
        assert!(!c.exists(p("tmp/t")).unwrap() && c.exists(p("db/t")).unwrap());
    }

    #[test]
    fn rename_checks_and_directory_moves() {
        // Proves rename's Linux checks (missing source, file onto directory, directory onto
        // non-empty directory or into itself, same path no-op) and that a directory moves
        // with its contents.
        let s = SimStorage::new();
        s.create_dir_all(p("a/sub")).unwrap();
        s.set_bytes(p("a/f"), b"1").unwrap();
        s.create_dir_all(p("b/full/x")).unwrap();
        assert_eq!(kind(s.rename(p("nope"), p("q"))), ErrorKind::NotFound);
        assert_eq!(
            kind(s.rename(p("a/f"), p("a/sub"))),
            ErrorKind::IsADirectory
        );
        assert_eq!(
            kind(s.rename(p("a/sub"), p("a/f"))),
            ErrorKind::NotADirectory
        );
        assert_eq!(
            kind(s.rename(p("a"), p("b/full"))),
            ErrorKind::DirectoryNotEmpty
        );
        assert_eq!(
            kind(s.rename(p("a"), p("a/sub/a"))),
            ErrorKind::InvalidInput
        );
        s.rename(p("a/f"), p("./a/f")).unwrap();
        assert_eq!(s.unsynced_op_count(), 0, "renaming onto itself is a no-op");
        s.rename(p("a"), p("b/full/x")).unwrap();
        assert_eq!(s.live_bytes(p("b/full/x/f")).unwrap(), b"1");
        assert!(!s.exists(p("a")).unwrap());
        s.sync_dir(p("/")).unwrap();
        s.sync_dir(p("b/full")).unwrap();
        let c = s.crash(CrashMode::Nothing, 0);
        assert_eq!(c.list_dir(p("b/full/x")).unwrap(), ["f", "sub"]);
    }

    #[test]
    fn set_bytes_and_corrupt_for_crafted_files() {
        // Proves set_bytes writes durably (replacing content) and corrupt flips the byte in
        // both views, refusing a missing file or an offset past the end.
        let s = SimStorage::new();
        s.set_bytes(p("t"), b"abcdef").unwrap();
        s.set_bytes(p("t"), b"AB").unwrap();
        assert_eq!(s.durable_bytes(p("t")).unwrap(), b"AB");
        s.corrupt(p("t"), 1, 0x20).unwrap();
        assert_eq!(s.live_bytes(p("t")).unwrap(), b"Ab");
        assert_eq!(s.durable_bytes(p("t")).unwrap(), b"Ab");
        assert!(s.corrupt(p("t"), 2, 1).is_err());
        assert!(s.corrupt(p("nope"), 0, 1).is_err());
        assert!(s.set_bytes(p("no/dir/t"), b"").is_err());
        let dbg = format!("{s:?}");
        assert!(
            dbg.contains("SimStorage") && dbg.contains("unsynced_ops: 0"),
            "{dbg}"
        );
    }

    #[test]
    fn dead_inodes_are_collected() {
        // Proves memory stays bounded: 1000 create/write/remove/sync-dir cycles leave only
        // a few inodes and no pending ops.
        let s = SimStorage::new();
        for i in 0..1000 {
            let name = format!("f{i}");
            let f = s.open(p(&name), OpenMode::CreateNew).unwrap();
            f.write_at(0, &[7; 100]).unwrap();
            drop(f);
            s.remove_file(p(&name)).unwrap();
            s.sync_dir(p("/")).unwrap();
        }
        assert_eq!(s.unsynced_op_count(), 0);
        assert_eq!(s.state().tree.inode_count(), 1, "only the root is left");
    }

    /// The files the property test works on: three names in the root and three in `/d`.
    const PATHS: [&str; 6] = ["/a", "/b", "/c", "/d/a", "/d/b", "/d/c"];
    const DIRS: [&str; 2] = ["/", "/d"];

    #[derive(Clone, Debug)]
    enum Step {
        Create {
            f: usize,
            new: bool,
        },
        Write {
            f: usize,
            offset: u64,
            bytes: Vec<u8>,
        },
        SetLen {
            f: usize,
            len: u64,
        },
        Rename {
            from: usize,
            to: usize,
        },
        Remove {
            f: usize,
        },
        SyncData {
            f: usize,
        },
        SyncDir {
            dir: usize,
        },
        Read {
            f: usize,
            offset: u64,
            len: usize,
        },
        Crash {
            everything: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        let f = 0..PATHS.len();
        prop_oneof![
            (f.clone(), any::<bool>()).prop_map(|(f, new)| Step::Create { f, new }),
            (f.clone(), 0..40u64, prop::collection::vec(1..=255u8, 0..12))
                .prop_map(|(f, offset, bytes)| Step::Write { f, offset, bytes }),
            (f.clone(), 0..48u64).prop_map(|(f, len)| Step::SetLen { f, len }),
            (f.clone(), f.clone()).prop_map(|(from, to)| Step::Rename { from, to }),
            f.clone().prop_map(|f| Step::Remove { f }),
            f.clone().prop_map(|f| Step::SyncData { f }),
            (0..DIRS.len()).prop_map(|dir| Step::SyncDir { dir }),
            (f, 0..48u64, 0..16usize).prop_map(|(f, offset, len)| Step::Read { f, offset, len }),
            any::<bool>().prop_map(|everything| Step::Crash { everything }),
        ]
    }

    /// An independent model: names map to file ids per view, ids to bytes per view.
    #[derive(Default)]
    struct Model {
        live: BTreeMap<usize, u64>,
        durable: BTreeMap<usize, u64>,
        live_data: HashMap<u64, Vec<u8>>,
        durable_data: HashMap<u64, Vec<u8>>,
        next_id: u64,
    }

    impl Model {
        fn live_bytes(&self, f: usize) -> Option<Vec<u8>> {
            self.live.get(&f).map(|id| self.live_data[id].clone())
        }

        fn durable_bytes(&self, f: usize) -> Option<Vec<u8>> {
            let id = self.durable.get(&f)?;
            Some(self.durable_data.get(id).cloned().unwrap_or_default())
        }

        fn crash(&mut self, everything: bool) {
            if everything {
                self.durable = self.live.clone();
            } else {
                self.live = self.durable.clone();
            }
            let data: HashMap<u64, Vec<u8>> = self
                .live
                .values()
                .map(|id| {
                    let d = if everything {
                        self.live_data.get(id)
                    } else {
                        self.durable_data.get(id)
                    };
                    (*id, d.cloned().unwrap_or_default())
                })
                .collect();
            self.live_data = data.clone();
            self.durable_data = data;
        }
    }

    /// Runs `step` on both; checks every call's outcome against the model.
    fn run(s: &mut SimStorage, m: &mut Model, step: &Step) {
        let exists = m.live.contains_key(&step_file(step).unwrap_or(usize::MAX));
        match step.clone() {
            Step::Create { f, new } => {
                let mode = if new {
                    OpenMode::CreateNew
                } else {
                    OpenMode::CreateOrOpen
                };
                assert_eq!(s.open(p(PATHS[f]), mode).is_ok(), !(new && exists));
                if !exists {
                    m.next_id += 1;
                    m.live.insert(f, m.next_id);
                    m.live_data.insert(m.next_id, Vec::new());
                }
            }
            Step::Rename { from, to } => {
                let r = s.rename(p(PATHS[from]), p(PATHS[to]));
                assert_eq!(r.is_ok(), exists);
                if r.is_ok() && from != to {
                    let id = m.live.remove(&from).unwrap();
                    m.live.insert(to, id);
                }
            }
            Step::Remove { f } => {
                assert_eq!(s.remove_file(p(PATHS[f])).is_ok(), exists);
                m.live.remove(&f);
            }
            Step::SyncDir { dir } => {
                s.sync_dir(p(DIRS[dir])).unwrap();
                for f in dir * 3..dir * 3 + 3 {
                    match m.live.get(&f) {
                        Some(id) => m.durable.insert(f, *id),
                        None => m.durable.remove(&f),
                    };
                }
            }
            Step::Crash { everything } => {
                let mode = if everything {
                    CrashMode::Everything
                } else {
                    CrashMode::Nothing
                };
                *s = s.crash(mode, 0);
                m.crash(everything);
            }
            _ => run_on_handle(s, m, step, exists),
        }
    }

    /// The file a step names first (`None` for whole-directory steps).
    fn step_file(step: &Step) -> Option<usize> {
        match step {
            Step::Create { f, .. }
            | Step::Write { f, .. }
            | Step::SetLen { f, .. }
            | Step::Remove { f }
            | Step::SyncData { f }
            | Step::Read { f, .. } => Some(*f),
            Step::Rename { from, .. } => Some(*from),
            Step::SyncDir { .. } | Step::Crash { .. } => None,
        }
    }

    /// Runs a step that goes through a fresh handle; opening fails iff the model lacks it.
    fn run_on_handle(s: &SimStorage, m: &mut Model, step: &Step, exists: bool) {
        let f = step_file(step).unwrap();
        let mode = match step {
            Step::Write { .. } | Step::SetLen { .. } => OpenMode::ReadWrite,
            _ => OpenMode::Read,
        };
        let Ok(h) = s.open(p(PATHS[f]), mode) else {
            return assert!(!exists);
        };
        let id = m.live[&f];
        let data = m.live_data.get_mut(&id).unwrap();
        match step.clone() {
            Step::Write { offset, bytes, .. } => {
                h.write_at(offset, &bytes).unwrap();
                let (start, end) = (offset as usize, offset as usize + bytes.len());
                if !bytes.is_empty() {
                    data.resize(data.len().max(end), 0);
                    data[start..end].copy_from_slice(&bytes);
                }
            }
            Step::SetLen { len, .. } => {
                h.set_len(len).unwrap();
                data.resize(len as usize, 0);
            }
            Step::SyncData { .. } => {
                h.sync_data().unwrap();
                m.durable_data.insert(id, data.clone());
            }
            Step::Read { offset, len, .. } => {
                let got = h.read_vec_at(offset, len).ok();
                let (start, end) = (offset as usize, offset as usize + len);
                assert_eq!(got.as_deref(), data.get(start..end));
            }
            _ => unreachable!("not a handle step: {step:?}"),
        }
    }

    /// The live and durable views of `s` (and of its two extreme crashes) equal the model.
    fn check(s: &SimStorage, m: &Model) {
        let everything = s.crash(CrashMode::Everything, 0);
        let nothing = s.crash(CrashMode::Nothing, 0);
        for (f, path) in PATHS.iter().enumerate() {
            assert_eq!(s.live_bytes(p(path)), m.live_bytes(f), "live {path}");
            assert_eq!(
                everything.live_bytes(p(path)),
                m.live_bytes(f),
                "everything {path}"
            );
            assert_eq!(
                s.durable_bytes(p(path)),
                m.durable_bytes(f),
                "durable {path}"
            );
            assert_eq!(
                nothing.live_bytes(p(path)),
                m.durable_bytes(f),
                "nothing {path}"
            );
        }
        let names = |lo: usize| -> Vec<String> {
            m.live
                .keys()
                .filter(|f| (lo..lo + 3).contains(*f))
                .filter_map(|f| PATHS[*f].rsplit('/').next().map(str::to_owned))
                .collect()
        };
        let mut root = names(0);
        root.push("d".into());
        root.sort();
        assert_eq!(s.list_dir(p("/")).unwrap(), root);
        assert_eq!(s.list_dir(p("/d")).unwrap(), names(3));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn random_ops_match_a_model_of_both_views(steps in prop::collection::vec(step(), 1..40)) {
            // Proves against an independent model, after every step of a random op sequence:
            // reads and live bytes equal the model's live view, durable bytes and a Nothing
            // crash its durable view, and an Everything crash its live view.
            let mut s = SimStorage::new();
            s.create_dir_all(p("/d")).unwrap();
            let mut m = Model::default();
            for step in &steps {
                run(&mut s, &mut m, step);
                check(&s, &m);
            }
        }
    }
}

//! [`Tree`]: the inodes of the simulated file system, each kept in a live and a durable view,
//! and the log of unsynced [`Op`]s between the two.
//!
//! Invariant (checked by `debug_assert!` on every sync): the durable view with the log
//! replayed in order is the live view. Inodes unreachable from every view, from the log and
//! from open handles are collected, with their pending data ops, whenever a directory sync or
//! the last handle's drop may have made one unreachable; so `log` never holds dead ops.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;

use super::crash::Keep;
use super::op::{Ino, Op};
use super::path_key::PathKey;

/// The root directory's inode.
pub(super) const ROOT: Ino = 0;

/// Largest file the simulation holds (it keeps every byte in memory, twice): larger writes
/// and `set_len`s fail with `FileTooLarge` (`EFBIG`).
pub(super) const MAX_FILE_BYTES: usize = 1 << 30;

/// Which view of the file system an operation reads or changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum View {
    /// What reads see now, unsynced changes included.
    Live,
    /// What survives a crash for certain.
    Durable,
}

/// The same state in both views.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Pair<T> {
    live: T,
    durable: T,
}

impl<T> Pair<T> {
    fn get(&self, view: View) -> &T {
        match view {
            View::Live => &self.live,
            View::Durable => &self.durable,
        }
    }

    fn get_mut(&mut self, view: View) -> &mut T {
        match view {
            View::Live => &mut self.live,
            View::Durable => &mut self.durable,
        }
    }
}

/// A file's bytes or a directory's entries.
#[derive(Clone, Debug)]
enum Body {
    File(Pair<Vec<u8>>),
    Dir(Pair<BTreeMap<String, Ino>>),
}

#[derive(Clone, Debug)]
struct Node {
    body: Body,
    /// Open handles on this inode; an inode with handles is never collected.
    handles: u32,
}

/// The whole simulated file system. Not synchronised: [`super::SimStorage`] holds it behind
/// its mutex.
pub(super) struct Tree {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    /// Unsynced ops in issue order.
    log: Vec<Op>,
}

impl fmt::Debug for Tree {
    /// A summary: the bytes would drown any test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tree")
            .field("inodes", &self.nodes.len())
            .field("unsynced_ops", &self.log.len())
            .finish()
    }
}

/// An `io::Error` of `kind` with a message, as the sim reports name-lookup failures.
pub(super) fn fs_error(kind: io::ErrorKind, msg: &'static str) -> io::Error {
    io::Error::new(kind, msg)
}

fn write_into(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    debug_assert!(
        end <= MAX_FILE_BYTES,
        "ops are range-checked before they are made"
    );
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset..end].copy_from_slice(bytes);
}

impl Tree {
    /// A file system holding only an empty root directory.
    pub(super) fn new() -> Self {
        let root = Node {
            body: Body::Dir(Pair::default()),
            handles: 0,
        };
        Tree {
            nodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            log: Vec::new(),
        }
    }

    /// Checks that `len` bytes at `offset` fit in a simulated file; returns `offset`.
    pub(super) fn check_range(offset: u64, len: usize) -> io::Result<usize> {
        usize::try_from(offset)
            .ok()
            .filter(|o| o.checked_add(len).is_some_and(|end| end <= MAX_FILE_BYTES))
            .ok_or_else(|| {
                fs_error(
                    io::ErrorKind::FileTooLarge,
                    "file larger than the simulation holds",
                )
            })
    }

    /// The entry `name` of directory `dir` in `view`.
    pub(super) fn child(&self, dir: Ino, name: &str, view: View) -> Option<Ino> {
        match &self.nodes.get(&dir)?.body {
            Body::Dir(entries) => entries.get(view).get(name).copied(),
            Body::File(_) => None,
        }
    }

    /// The inode at `key` in `view`.
    pub(super) fn lookup(&self, key: &PathKey, view: View) -> Option<Ino> {
        key.names()
            .iter()
            .try_fold(ROOT, |dir, name| self.child(dir, name, view))
    }

    /// True if `ino` is a directory.
    pub(super) fn is_dir(&self, ino: Ino) -> bool {
        matches!(
            self.nodes.get(&ino),
            Some(Node {
                body: Body::Dir(_),
                ..
            })
        )
    }

    /// The live directory at `key`: `NotFound` if a name is missing, `NotADirectory` if a name
    /// is a file.
    pub(super) fn lookup_dir(&self, key: &PathKey) -> io::Result<Ino> {
        let mut dir = ROOT;
        for name in key.names() {
            dir = self
                .child(dir, name, View::Live)
                .ok_or_else(|| fs_error(io::ErrorKind::NotFound, "no such file or directory"))?;
            if !self.is_dir(dir) {
                return Err(fs_error(io::ErrorKind::NotADirectory, "not a directory"));
            }
        }
        Ok(dir)
    }

    /// The live parent directory of `key` and the last name. The root has no parent: it is a
    /// directory, so it cannot be opened, renamed or removed as a file.
    pub(super) fn parent(&self, key: &PathKey) -> io::Result<(Ino, String)> {
        let (parent, name) = key
            .split_last()
            .ok_or_else(|| fs_error(io::ErrorKind::IsADirectory, "is the root directory"))?;
        Ok((self.lookup_dir(&parent)?, name.to_owned()))
    }

    /// Names in the live directory `dir`, sorted.
    pub(super) fn entries(&self, dir: Ino) -> Vec<String> {
        match self.nodes.get(&dir).map(|n| &n.body) {
            Some(Body::Dir(entries)) => entries.live.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// A new, unlinked inode: an empty file or directory.
    pub(super) fn create_node(&mut self, dir: bool) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        let body = if dir {
            Body::Dir(Pair::default())
        } else {
            Body::File(Pair::default())
        };
        self.nodes.insert(ino, Node { body, handles: 0 });
        ino
    }

    /// Applies `op` to the live view and logs it as unsynced.
    pub(super) fn mutate(&mut self, op: Op) {
        self.apply(&op, View::Live);
        self.log.push(op);
    }

    fn file_mut(&mut self, ino: Ino, view: View) -> Option<&mut Vec<u8>> {
        match &mut self.nodes.get_mut(&ino)?.body {
            Body::File(data) => Some(data.get_mut(view)),
            Body::Dir(_) => None,
        }
    }

    fn dir_mut(&mut self, ino: Ino, view: View) -> Option<&mut BTreeMap<String, Ino>> {
        match &mut self.nodes.get_mut(&ino)?.body {
            Body::Dir(entries) => Some(entries.get_mut(view)),
            Body::File(_) => None,
        }
    }

    /// Applies `op` to `view`. An op on an inode of the wrong kind or a missing name does
    /// nothing: after a crash kept a subset, an op may meet a state it was not issued in.
    fn apply(&mut self, op: &Op, view: View) {
        match op {
            Op::Write { ino, offset, bytes } => {
                if let Some(data) = self.file_mut(*ino, view) {
                    write_into(data, *offset, bytes);
                }
            }
            Op::SetLen { ino, len } => {
                if let Some(data) = self.file_mut(*ino, view) {
                    data.resize(*len, 0);
                }
            }
            Op::Link { dir, name, ino } => {
                if let Some(entries) = self.dir_mut(*dir, view) {
                    entries.insert(name.clone(), *ino);
                }
            }
            Op::Unlink { dir, name } => {
                if let Some(entries) = self.dir_mut(*dir, view) {
                    entries.remove(name);
                }
            }
            Op::Rename { dir, from, to } => {
                if let Some(entries) = self.dir_mut(*dir, view) {
                    if let Some(ino) = entries.remove(from) {
                        entries.insert(to.clone(), ino);
                    }
                }
            }
        }
    }

    /// The bytes of file `ino` in `view` (`None` for a directory or a missing inode).
    pub(super) fn file_bytes(&self, ino: Ino, view: View) -> Option<&[u8]> {
        match &self.nodes.get(&ino)?.body {
            Body::File(data) => Some(data.get(view)),
            Body::Dir(_) => None,
        }
    }

    /// Live length of file `ino`.
    pub(super) fn len(&self, ino: Ino) -> u64 {
        self.file_bytes(ino, View::Live)
            .map_or(0, |d| u64::try_from(d.len()).unwrap_or(u64::MAX))
    }

    /// Reads exactly `buf.len()` live bytes at `offset`, or fails with `UnexpectedEof`.
    pub(super) fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let data = self.file_bytes(ino, View::Live).unwrap_or_default();
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| data.get(start..start.checked_add(buf.len())?))
            .ok_or_else(|| fs_error(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    /// Makes the live bytes of file `ino` durable (`fdatasync`).
    pub(super) fn sync_file(&mut self, ino: Ino) {
        self.commit(|op| op.data_ino() == Some(ino));
        debug_assert!(
            self.file_bytes(ino, View::Live) == self.file_bytes(ino, View::Durable),
            "durable + log != live for inode {ino}"
        );
    }

    /// Makes the live entries of directory `dir` durable (`fsync` of the directory).
    pub(super) fn sync_dir(&mut self, dir: Ino) {
        let committed = self.commit(|op| op.dir_ino() == Some(dir));
        debug_assert!(
            match self.nodes.get(&dir).map(|n| &n.body) {
                Some(Body::Dir(entries)) => entries.live == entries.durable,
                _ => true,
            },
            "durable + log != live for directory {dir}"
        );
        // A committed removal or replacement may have dropped an inode's last durable name.
        if committed > 0 {
            self.gc();
        }
    }

    /// Moves the logged ops selected by `covers` onto the durable view, in issue order;
    /// returns how many.
    fn commit(&mut self, covers: impl Fn(&Op) -> bool) -> usize {
        let (taken, kept): (Vec<Op>, Vec<Op>) = self.log.drain(..).partition(|op| covers(op));
        self.log = kept;
        for op in &taken {
            self.apply(op, View::Durable);
        }
        taken.len()
    }

    /// The unsynced ops in issue order.
    pub(super) fn log(&self) -> &[Op] {
        &self.log
    }

    /// Counts a new open handle on `ino`.
    pub(super) fn open_handle(&mut self, ino: Ino) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.handles += 1;
        }
    }

    /// Forgets a dropped handle on `ino`.
    pub(super) fn close_handle(&mut self, ino: Ino) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        debug_assert!(node.handles > 0, "handle count underflow on inode {ino}");
        node.handles = node.handles.saturating_sub(1);
        // The last handle may have kept an unlinked file alive.
        if node.handles == 0 {
            self.gc();
        }
    }

    /// XORs `mask` into byte `offset` of both views of file `ino`, where the byte exists;
    /// returns false if it exists in neither.
    pub(super) fn xor_byte(&mut self, ino: Ino, offset: u64, mask: u8) -> bool {
        let Ok(pos) = usize::try_from(offset) else {
            return false;
        };
        let mut hit = false;
        for view in [View::Live, View::Durable] {
            if let Some(b) = self.file_mut(ino, view).and_then(|d| d.get_mut(pos)) {
                *b ^= mask;
                hit = true;
            }
        }
        hit
    }

    /// What a crash leaves: the durable view plus the `keep` selection of the log (indices in
    /// issue order), as a new tree whose live and durable views agree and whose log is empty.
    pub(super) fn crash_copy(&self, keep: &[(usize, Keep)]) -> Tree {
        let mut nodes = HashMap::with_capacity(self.nodes.len());
        for (ino, node) in &self.nodes {
            let body = match &node.body {
                Body::File(d) => Body::File(Pair {
                    live: d.durable.clone(),
                    durable: Vec::new(),
                }),
                Body::Dir(e) => Body::Dir(Pair {
                    live: e.durable.clone(),
                    durable: BTreeMap::new(),
                }),
            };
            nodes.insert(*ino, Node { body, handles: 0 });
        }
        let mut tree = Tree {
            nodes,
            next_ino: self.next_ino,
            log: Vec::new(),
        };
        for (index, how) in keep {
            if let Some(op) = self.log.get(*index) {
                tree.replay(op, *how);
            }
        }
        for node in tree.nodes.values_mut() {
            match &mut node.body {
                Body::File(d) => d.durable = d.live.clone(),
                Body::Dir(e) => e.durable = e.live.clone(),
            }
        }
        tree.gc();
        tree
    }

    /// Applies `op` (or the torn part of it) to the live view of a crash copy.
    fn replay(&mut self, op: &Op, how: Keep) {
        let (Keep::Torn { len, zero_fill }, Op::Write { ino, offset, bytes }) = (how, op) else {
            self.apply(op, View::Live);
            return;
        };
        debug_assert!(len < bytes.len(), "a torn write keeps a strict prefix");
        let prefix = bytes.get(..len).unwrap_or_default().to_vec();
        let torn = Op::Write {
            ino: *ino,
            offset: *offset,
            bytes: prefix,
        };
        self.apply(&torn, View::Live);
        // The size grew but the data blocks never landed: zeros past the old end, old bytes
        // (never the new ones) below it.
        let end = offset + bytes.len();
        let len = self.file_bytes(*ino, View::Live).map_or(0, <[u8]>::len);
        if zero_fill && len < end {
            self.apply(
                &Op::SetLen {
                    ino: *ino,
                    len: end,
                },
                View::Live,
            );
        }
    }

    /// Drops inodes no view, log op or handle can reach, with their pending data ops.
    fn gc(&mut self) {
        let mut stack = vec![ROOT];
        stack.extend(
            self.nodes
                .iter()
                .filter(|(_, n)| n.handles > 0)
                .map(|(ino, _)| *ino),
        );
        for op in &self.log {
            stack.extend(op.dir_ino());
            stack.extend(op.linked_ino());
        }
        let mut alive = HashSet::new();
        while let Some(ino) = stack.pop() {
            if !alive.insert(ino) {
                continue;
            }
            if let Some(Body::Dir(e)) = self.nodes.get(&ino).map(|n| &n.body) {
                stack.extend(e.live.values().chain(e.durable.values()));
            }
        }
        self.nodes.retain(|ino, _| alive.contains(ino));
        self.log
            .retain(|op| op.data_ino().is_none_or(|ino| alive.contains(&ino)));
    }

    /// Number of inodes held (for tests of the collection).
    #[cfg(test)]
    pub(super) fn inode_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn linked_file(tree: &mut Tree, name: &str) -> Ino {
        let ino = tree.create_node(false);
        tree.mutate(Op::Link {
            dir: ROOT,
            name: name.into(),
            ino,
        });
        ino
    }

    #[test]
    fn sync_moves_only_its_own_ops_to_the_durable_view() {
        // Proves sync_file commits only that file's data ops and sync_dir only that
        // directory's entry ops, leaving the rest of the log in order.
        let mut tree = Tree::new();
        let a = linked_file(&mut tree, "a");
        let b = linked_file(&mut tree, "b");
        for ino in [a, b] {
            tree.mutate(Op::Write {
                ino,
                offset: 2,
                bytes: b"xy".to_vec(),
            });
        }
        tree.sync_file(a);
        assert_eq!(tree.file_bytes(a, View::Durable), Some(&b"\0\0xy"[..]));
        assert_eq!(tree.file_bytes(b, View::Durable), Some(&b""[..]));
        assert_eq!(tree.log().len(), 3);
        assert_eq!(
            tree.lookup(&PathKey::new(Path::new("a")), View::Durable),
            None
        );
        tree.sync_dir(ROOT);
        assert_eq!(tree.log().len(), 1);
        assert_eq!(tree.log()[0].data_ino(), Some(b));
        assert_eq!(
            tree.lookup(&PathKey::new(Path::new("b")), View::Durable),
            Some(b)
        );
    }

    #[test]
    fn unreachable_inodes_are_collected_with_their_ops() {
        // Proves the collection keeps inodes held by a view, the log or a handle, and drops
        // an unlinked, never-durable file together with its pending writes.
        let mut tree = Tree::new();
        let a = linked_file(&mut tree, "a");
        tree.open_handle(a);
        tree.mutate(Op::Write {
            ino: a,
            offset: 0,
            bytes: vec![1],
        });
        tree.mutate(Op::Unlink {
            dir: ROOT,
            name: "a".into(),
        });
        tree.sync_dir(ROOT);
        assert_eq!(tree.inode_count(), 2, "the open handle keeps the file");
        assert_eq!(tree.log().len(), 1);
        tree.close_handle(a);
        assert_eq!(tree.inode_count(), 1);
        assert!(tree.log().is_empty());
    }

    #[test]
    fn out_of_range_offsets_are_file_too_large() {
        // Proves writes past the simulation's size limit are refused before any allocation.
        assert_eq!(Tree::check_range(7, 3).unwrap(), 7);
        let err = Tree::check_range(MAX_FILE_BYTES as u64, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(Tree::check_range(u64::MAX, 0).is_err());
    }
}

//! [`Op`]: one mutation of the simulated file system, as recorded in the log of unsynced
//! operations.
//!
//! Every mutation is first applied to the live view and then logged; `sync_data` and
//! `sync_dir` replay the ops they cover onto the durable view and drop them from the log, and a
//! crash replays a selection of the rest. So the invariant is: durable view + the log replayed
//! in order = live view. Each op touches exactly one file's bytes or one directory's entries,
//! so ops on different files or directories commute and a sync may take its ops out of the
//! middle of the log.

/// An inode number. Files and directories are both inodes.
pub(super) type Ino = u64;

/// One mutation of file bytes or of directory entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Writes `bytes` at `offset` of file `ino`, zero-filling any gap before it.
    Write {
        /// The file.
        ino: Ino,
        /// Byte offset of the first written byte.
        offset: usize,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Truncates or zero-extends file `ino` to `len` bytes.
    SetLen {
        /// The file.
        ino: Ino,
        /// The new length in bytes.
        len: usize,
    },
    /// Creates (or atomically replaces) the entry `name` of directory `dir`, pointing at `ino`.
    Link {
        /// The directory holding the entry.
        dir: Ino,
        /// The entry's name.
        name: String,
        /// The file or directory it names.
        ino: Ino,
    },
    /// Removes the entry `name` of directory `dir`.
    Unlink {
        /// The directory holding the entry.
        dir: Ino,
        /// The entry's name.
        name: String,
    },
    /// Atomically moves the entry `from` of `dir` to `to` in the same directory, replacing
    /// `to`. (A rename across directories is a `Link` in the target and an `Unlink` in the
    /// source: each directory's sync makes its own half durable.)
    Rename {
        /// The directory holding both names.
        dir: Ino,
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

impl Op {
    /// The file whose bytes the op changes, if it is a data op.
    pub(super) fn data_ino(&self) -> Option<Ino> {
        match self {
            Op::Write { ino, .. } | Op::SetLen { ino, .. } => Some(*ino),
            Op::Link { .. } | Op::Unlink { .. } | Op::Rename { .. } => None,
        }
    }

    /// The directory whose entries the op changes, if it is a directory op.
    pub(super) fn dir_ino(&self) -> Option<Ino> {
        match self {
            Op::Link { dir, .. } | Op::Unlink { dir, .. } | Op::Rename { dir, .. } => Some(*dir),
            Op::Write { .. } | Op::SetLen { .. } => None,
        }
    }

    /// The inode a directory op makes reachable (the target of a `Link`).
    pub(super) fn linked_ino(&self) -> Option<Ino> {
        match self {
            Op::Link { ino, .. } => Some(*ino),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_op_touches_one_file_or_one_directory() {
        // Proves the commutation premise of the log: every op is either a data op on one
        // inode or a directory op on one directory, never both.
        let ops = [
            Op::Write {
                ino: 3,
                offset: 0,
                bytes: vec![1],
            },
            Op::SetLen { ino: 3, len: 0 },
            Op::Link {
                dir: 1,
                name: "a".into(),
                ino: 3,
            },
            Op::Unlink {
                dir: 1,
                name: "a".into(),
            },
            Op::Rename {
                dir: 1,
                from: "a".into(),
                to: "b".into(),
            },
        ];
        for op in &ops {
            assert!(op.data_ino().is_some() != op.dir_ino().is_some(), "{op:?}");
        }
        assert_eq!(ops[2].linked_ino(), Some(3));
        assert_eq!(ops[4].linked_ino(), None);
    }
}

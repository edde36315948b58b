//! Injected I/O faults: which operation fails, how, on which paths, and how often.
//!
//! Every armed [`Fault`] counts the operations it matches (kind and path); the first `after` of
//! them pass, then up to `times` fail. When several faults match one operation each counts it,
//! and the first armed one (in injection order) that is due fails it; only that one spends one
//! of its `times`.

use std::io;

/// The operation a [`Fault`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    /// `StorageFile::read_at`.
    Read,
    /// `StorageFile::write_at`.
    Write,
    /// `StorageFile::set_len`.
    SetLen,
    /// `StorageFile::sync_data`: a failed sync makes nothing durable.
    Sync,
    /// `Storage::sync_dir` (also the parent syncs inside `Storage::create_dir_all`).
    SyncDir,
    /// `Storage::open`.
    Open,
    /// `Storage::rename` (matches if either path matches).
    Rename,
    /// `Storage::remove_file`.
    Remove,
    /// Every operation above.
    Any,
}

/// How a faulted operation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO`: `io::Error::from_raw_os_error(5)`; nothing happens.
    Eio,
    /// `ENOSPC`: an error of kind `io::ErrorKind::StorageFull`; nothing happens.
    NoSpace,
    /// On a write: a random strict prefix of the buffer lands in the live bytes, then `EIO`.
    /// On any other operation it is the same as [`FaultKind::Eio`].
    ShortWrite,
}

/// Raw OS error number of `EIO` (the same on every Unix).
const EIO: i32 = 5;

impl FaultKind {
    /// The error the failed operation returns.
    pub(super) fn to_io_error(self) -> io::Error {
        match self {
            FaultKind::Eio | FaultKind::ShortWrite => io::Error::from_raw_os_error(EIO),
            FaultKind::NoSpace => io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            ),
        }
    }
}

/// One fault to inject with [`super::SimStorage::inject`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The operation that fails.
    pub op: FaultOp,
    /// How it fails.
    pub kind: FaultKind,
    /// Only operations on a path containing this string match (`None`: every path). Matched
    /// against the path as the caller spelled it and against its normalised `/a/b` form.
    pub path_contains: Option<String>,
    /// Matching operations to let through before the first failure.
    pub after: u64,
    /// How many matching operations fail (`None`: every one from then on).
    pub times: Option<u64>,
}

impl Fault {
    /// A fault failing every `op` on every path, from now on, with `kind`.
    pub fn new(op: FaultOp, kind: FaultKind) -> Self {
        Fault {
            op,
            kind,
            path_contains: None,
            after: 0,
            times: None,
        }
    }

    /// Restricts the fault to paths containing `needle`.
    pub fn path_contains(mut self, needle: impl Into<String>) -> Self {
        self.path_contains = Some(needle.into());
        self
    }

    /// Lets the first `n` matching operations through.
    pub fn after(mut self, n: u64) -> Self {
        self.after = n;
        self
    }

    /// Fails only `n` matching operations.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, op: FaultOp, paths: &[&str]) -> bool {
        let op_ok = self.op == FaultOp::Any || self.op == op;
        let path_ok = match &self.path_contains {
            None => true,
            Some(needle) => paths.iter().any(|p| p.contains(needle.as_str())),
        };
        op_ok && path_ok
    }
}

/// A fault with its counters.
#[derive(Debug)]
struct Armed {
    fault: Fault,
    /// Matching operations seen so far.
    seen: u64,
    /// Operations this fault has failed.
    failed: u64,
}

/// The armed faults of one simulated file system.
#[derive(Debug, Default)]
pub(super) struct FaultSet {
    armed: Vec<Armed>,
}

impl FaultSet {
    /// Arms `fault` behind the ones already armed.
    pub(super) fn inject(&mut self, fault: Fault) {
        self.armed.push(Armed {
            fault,
            seen: 0,
            failed: 0,
        });
    }

    /// True if no fault is armed.
    pub(super) fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Disarms every fault.
    pub(super) fn clear(&mut self) {
        self.armed.clear();
    }

    /// Counts one `op` on `paths` and says how it fails, if it does.
    pub(super) fn check(&mut self, op: FaultOp, paths: &[&str]) -> Option<FaultKind> {
        debug_assert!(op != FaultOp::Any, "an operation is never `Any`");
        let mut fired = None;
        for a in &mut self.armed {
            if !a.fault.matches(op, paths) {
                continue;
            }
            a.seen += 1;
            let due = a.seen > a.fault.after && a.fault.times.is_none_or(|t| a.failed < t);
            if due && fired.is_none() {
                a.failed += 1;
                fired = Some(a.fault.kind);
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::Error;
    use crate::io::{CrashMode, OpenMode, SimStorage, Storage};

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    fn os_error(r: crate::error::Result<impl Sized>) -> io::Error {
        match r {
            Err(Error::Io { source, .. }) => source,
            Err(e) => panic!("not an Io error: {e}"),
            Ok(_) => panic!("no error"),
        }
    }

    #[test]
    fn after_and_times_count_matching_ops_only() {
        // Proves `after` lets n matching ops pass, `times` bounds the failures, and ops of
        // another kind or path neither fail nor count.
        let mut set = FaultSet::default();
        set.inject(
            Fault::new(FaultOp::Write, FaultKind::Eio)
                .path_contains("vlog")
                .after(2)
                .times(2),
        );
        let mut outcomes = Vec::new();
        for _ in 0..6 {
            assert_eq!(set.check(FaultOp::Write, &["/db/1.sst"]), None);
            assert_eq!(set.check(FaultOp::Read, &["/db/1.vlog"]), None);
            outcomes.push(set.check(FaultOp::Write, &["/db/1.vlog"]).is_some());
        }
        assert_eq!(outcomes, [false, false, true, true, false, false]);
    }

    #[test]
    fn any_matches_every_op_and_first_due_fault_wins() {
        // Proves `Any` matches all kinds, `times: None` fails forever, and with two due faults
        // the first injected decides the kind while both count the op.
        let mut set = FaultSet::default();
        set.inject(Fault::new(FaultOp::Sync, FaultKind::NoSpace).times(1));
        set.inject(Fault::new(FaultOp::Any, FaultKind::Eio));
        assert_eq!(set.check(FaultOp::Sync, &["f"]), Some(FaultKind::NoSpace));
        assert_eq!(set.check(FaultOp::Sync, &["f"]), Some(FaultKind::Eio));
        assert_eq!(set.check(FaultOp::Open, &["g"]), Some(FaultKind::Eio));
        set.clear();
        assert_eq!(set.check(FaultOp::Open, &["g"]), None);
    }

    #[test]
    fn errors_have_the_real_kinds() {
        // Proves EIO is raw OS error 5 and NoSpace is StorageFull, as the real fs reports them.
        assert_eq!(FaultKind::Eio.to_io_error().raw_os_error(), Some(5));
        assert_eq!(FaultKind::ShortWrite.to_io_error().raw_os_error(), Some(5));
        assert_eq!(
            FaultKind::NoSpace.to_io_error().kind(),
            io::ErrorKind::StorageFull
        );
    }

    #[test]
    fn failed_sync_keeps_data_unsynced() {
        // Proves a faulted sync_data makes nothing durable (the write is still lost on a
        // power loss and still counted as unsynced) and a later good sync does.
        let s = SimStorage::new();
        s.set_bytes(p("wal"), b"old").unwrap();
        let f = s.open(p("wal"), OpenMode::ReadWrite).unwrap();
        f.write_at(0, b"new").unwrap();
        s.inject(Fault::new(FaultOp::Sync, FaultKind::Eio).times(1));
        assert_eq!(os_error(f.sync_data()).raw_os_error(), Some(5));
        assert_eq!(s.durable_bytes(p("wal")).unwrap(), b"old");
        assert_eq!(s.unsynced_op_count(), 1);
        let c = s.crash(CrashMode::Nothing, 0);
        assert_eq!(c.live_bytes(p("wal")).unwrap(), b"old");
        f.sync_data().unwrap();
        assert_eq!(s.durable_bytes(p("wal")).unwrap(), b"new");
    }

    #[test]
    fn failed_sync_dir_keeps_entries_unsynced() {
        // Proves a faulted sync_dir leaves a new entry non-durable.
        let s = SimStorage::new();
        drop(s.open(p("f"), OpenMode::CreateNew).unwrap());
        s.inject(Fault::new(FaultOp::SyncDir, FaultKind::NoSpace));
        let e = os_error(s.sync_dir(p("/")));
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(!s.crash(CrashMode::Nothing, 0).exists(p("f")).unwrap());
        s.clear_faults();
        s.sync_dir(p("/")).unwrap();
        assert!(s.crash(CrashMode::Nothing, 0).exists(p("f")).unwrap());
    }

    #[test]
    fn short_write_leaves_a_strict_prefix() {
        // Proves over 30 seeds a ShortWrite lands a strict prefix of the buffer in the live
        // bytes (and only there: it is unsynced), then fails with EIO.
        let buf: Vec<u8> = (1..=64).collect();
        let mut lens = std::collections::HashSet::new();
        for seed in 0..30 {
            let s = SimStorage::with_seed(seed);
            let f = s.open(p("vlog"), OpenMode::CreateNew).unwrap();
            s.inject(Fault::new(FaultOp::Write, FaultKind::ShortWrite).times(1));
            assert_eq!(os_error(f.write_at(0, &buf)).raw_os_error(), Some(5));
            let live = s.live_bytes(p("vlog")).unwrap();
            assert!(
                live.len() < buf.len() && buf.starts_with(&live),
                "seed {seed}"
            );
            lens.insert(live.len());
            f.write_at(0, &buf).unwrap();
        }
        assert!(lens.len() > 5, "lengths vary with the seed: {lens:?}");
    }

    #[test]
    fn eio_and_enospc_writes_change_nothing() {
        // Proves Eio and NoSpace writes fail with their kinds and leave the bytes unchanged.
        let s = SimStorage::new();
        let f = s.open(p("f"), OpenMode::CreateNew).unwrap();
        s.inject(Fault::new(FaultOp::Write, FaultKind::Eio).times(1));
        s.inject(
            Fault::new(FaultOp::Any, FaultKind::NoSpace)
                .path_contains("f")
                .after(1),
        );
        assert_eq!(os_error(f.write_at(0, b"x")).raw_os_error(), Some(5));
        let e = os_error(f.write_at(0, b"x"));
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(s.live_bytes(p("f")).unwrap(), b"");
        assert_eq!(s.unsynced_op_count(), 1, "only the creation is logged");
    }

    #[test]
    fn storage_ops_count_after_and_times() {
        // Proves `after`/`times` through the storage: of five opens of a matching path the
        // 2nd and 3rd fail, other paths never count; rename matches on either path; remove
        // and set_len faults leave the state unchanged.
        let s = SimStorage::new();
        s.set_bytes(p("db/../000001.vlog"), b"v").unwrap();
        s.inject(
            Fault::new(FaultOp::Open, FaultKind::Eio)
                .path_contains("vlog")
                .after(1)
                .times(2),
        );
        let mut ok = Vec::new();
        for _ in 0..5 {
            drop(s.open(p("MANIFEST"), OpenMode::CreateOrOpen).unwrap());
            ok.push(s.open(p("./000001.vlog"), OpenMode::Read).is_ok());
        }
        assert_eq!(ok, [true, false, false, true, true]);
        s.inject(Fault::new(FaultOp::Rename, FaultKind::Eio).path_contains("/x.vlog"));
        assert!(s.rename(p("MANIFEST"), p("x.vlog")).is_err());
        assert!(s.exists(p("MANIFEST")).unwrap());
        s.inject(Fault::new(FaultOp::Remove, FaultKind::Eio).times(1));
        assert!(s.remove_file(p("MANIFEST")).is_err());
        s.remove_file(p("MANIFEST")).unwrap();
        let f = s.open(p("000001.vlog"), OpenMode::ReadWrite).unwrap();
        s.inject(Fault::new(FaultOp::SetLen, FaultKind::Eio).times(1));
        assert!(f.set_len(0).is_err());
        s.inject(Fault::new(FaultOp::Read, FaultKind::Eio).times(1));
        assert!(f.read_vec_at(0, 1).is_err());
        assert_eq!(f.read_vec_at(0, 1).unwrap(), b"v");
    }
}

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
    use super::*;

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
}

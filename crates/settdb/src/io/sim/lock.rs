//! Directory locks of the simulated file system: shared/exclusive holders per path, shared by
//! a [`super::SimStorage`] and its clones (not by a crash copy, which starts with none).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::path_key::PathKey;
use super::sim_storage::{lock_state, Shared};
use crate::io::storage::{LockKind, StorageLock};

/// Holders of one lock path.
#[derive(Debug, Default)]
struct Holders {
    exclusive: bool,
    shared: u32,
}

/// Every lock held in one simulated file system.
#[derive(Debug, Default)]
pub(super) struct LockTable {
    held: HashMap<PathKey, Holders>,
}

impl LockTable {
    /// Takes a `kind` lock on `key` unless a holder conflicts; true if taken.
    pub(super) fn try_acquire(&mut self, key: &PathKey, kind: LockKind) -> bool {
        let h = self.held.entry(key.clone()).or_default();
        match kind {
            LockKind::Exclusive if !h.exclusive && h.shared == 0 => h.exclusive = true,
            LockKind::Shared if !h.exclusive => h.shared += 1,
            _ => return false,
        }
        true
    }

    /// Releases one `kind` hold on `key`.
    fn release(&mut self, key: &PathKey, kind: LockKind) {
        let Some(h) = self.held.get_mut(key) else {
            debug_assert!(false, "release of an unheld lock {key}");
            return;
        };
        match kind {
            LockKind::Exclusive => h.exclusive = false,
            LockKind::Shared => h.shared = h.shared.saturating_sub(1),
        }
        if !h.exclusive && h.shared == 0 {
            self.held.remove(key);
        }
    }

    /// Number of paths with a holder.
    pub(super) fn held_count(&self) -> usize {
        self.held.len()
    }
}

/// A held simulated lock; dropping it releases the hold.
pub(super) struct SimLock {
    shared: Arc<Mutex<Shared>>,
    key: PathKey,
    kind: LockKind,
}

impl SimLock {
    /// A guard for a hold already taken in `shared`'s lock table.
    pub(super) fn new(shared: Arc<Mutex<Shared>>, key: PathKey, kind: LockKind) -> Self {
        SimLock { shared, key, kind }
    }
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock")
            .field("path", &self.key.to_string())
            .field("kind", &self.kind)
            .finish()
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock_state(&self.shared).locks.release(&self.key, self.kind);
    }
}

impl StorageLock for SimLock {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::error::Error;
    use crate::io::SimStorage;
    use crate::io::{LockKind, Storage};

    #[test]
    fn exclusive_and_shared_conflict_and_release_on_drop() {
        // Proves the flock rules: exclusive excludes all, shared excludes only exclusive, a
        // clone sees the same holders, dropping a guard releases it, and the lock file exists.
        let s = SimStorage::new();
        let other = s.clone();
        let p = Path::new("/LOCK");
        let g = s.lock(p, LockKind::Exclusive).unwrap();
        assert!(s.exists(p).unwrap());
        for kind in [LockKind::Exclusive, LockKind::Shared] {
            assert!(matches!(other.lock(p, kind), Err(Error::Locked { .. })));
        }
        drop(g);
        let a = other.lock(Path::new("./LOCK"), LockKind::Shared).unwrap();
        let b = s.lock(p, LockKind::Shared).unwrap();
        assert!(matches!(
            s.lock(p, LockKind::Exclusive),
            Err(Error::Locked { .. })
        ));
        drop(a);
        assert!(s.lock(p, LockKind::Exclusive).is_err(), "b still holds");
        drop(b);
        let _c = s.lock(p, LockKind::Exclusive).unwrap();
        let _d = s.lock(Path::new("/OTHER"), LockKind::Exclusive).unwrap();
    }

    #[test]
    fn crash_copy_holds_no_locks_and_lock_on_missing_dir_fails() {
        // Proves a crash copy starts unlocked and a lock under a missing directory is
        // NotFound, as opening the lock file fails on the real fs.
        let s = SimStorage::new();
        let _g = s.lock(Path::new("LOCK"), LockKind::Exclusive).unwrap();
        let c = s.crash(crate::io::CrashMode::Everything, 1);
        let _h = c.lock(Path::new("LOCK"), LockKind::Exclusive).unwrap();
        match s.lock(Path::new("/no/LOCK"), LockKind::Shared) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
            }
            other => panic!("{other:?}"),
        }
        let f = s
            .open(Path::new("LOCK"), crate::io::OpenMode::Read)
            .unwrap();
        assert_eq!(f.len().unwrap(), 0);
    }
}

//! All file I/O of SettDB goes through [`Storage`].
//!
//! Three implementations: [`FsStorage`], the real filesystem; [`MemStorage`], one copy of every
//! byte in memory, for in-memory mode; and `SimStorage` (with the `testing` feature), an in-memory
//! filesystem that keeps synced and unsynced bytes and directory entries apart, can
//! `SimStorage::crash` into a copy that keeps only part of what was not synced, and can inject
//! I/O faults. Engine tests run on the simulated one to prove the durability rules of
//! DESIGN.md; the same code runs on the real one.

pub(crate) mod cpu_priority;
pub(crate) mod cpu_time;
mod fs;
mod map_guard;
mod mem;
#[cfg(any(test, feature = "testing"))]
mod sim;
mod storage;

pub use fs::FsStorage;
pub use mem::MemStorage;
#[cfg(any(test, feature = "testing"))]
pub use sim::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
pub use storage::{parent_dir, LockKind, Mapping, OpenMode, Storage, StorageFile, StorageLock};

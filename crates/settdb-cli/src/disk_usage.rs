//! [`DiskUsage`]: files and bytes per kind in a database's directories (tables, value log,
//! memtable WALs, everything else), read from the directory listing, not from the engine.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::units::{fmt_bytes, plural};

/// Files and bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindUsage {
    /// Number of files.
    pub files: u64,
    /// Their total length in bytes.
    pub bytes: u64,
}

/// Usage per file kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// `*.sst` tables.
    pub sst: KindUsage,
    /// `*.vlog` value-log files.
    pub vlog: KindUsage,
    /// `*.mem` memtable WALs.
    pub mem: KindUsage,
    /// Everything else (MANIFEST, LOCK, DISCARD, ...).
    pub other: KindUsage,
}

impl DiskUsage {
    /// Scans the regular files directly in each of `dirs` (each directory once).
    pub fn scan(dirs: &[&Path]) -> std::io::Result<DiskUsage> {
        let unique: BTreeSet<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
        let mut usage = DiskUsage::default();
        for dir in unique {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                if !meta.is_file() {
                    continue;
                }
                let kind = match entry.path().extension().and_then(|x| x.to_str()) {
                    Some("sst") => &mut usage.sst,
                    Some("vlog") => &mut usage.vlog,
                    Some("mem") => &mut usage.mem,
                    _ => &mut usage.other,
                };
                kind.files += 1;
                kind.bytes += meta.len();
            }
        }
        Ok(usage)
    }

    /// Bytes of all kinds.
    pub fn total_bytes(&self) -> u64 {
        self.sst.bytes + self.vlog.bytes + self.mem.bytes + self.other.bytes
    }
}

impl fmt::Display for KindUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}",
            fmt_bytes(self.bytes),
            plural(self.files, "file")
        )
    }
}

/// Peak resident memory of this process (Linux `VmHWM`), if the system reports it.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_counted_per_kind_and_a_shared_dir_once() {
        // Proves the classification by extension and that a directory named twice counts once.
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [
            ("000001.sst", 10),
            ("000001.vlog", 20),
            ("00001.mem", 5),
            ("LOCK", 0),
        ] {
            std::fs::write(dir.path().join(name), vec![0u8; len]).unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let u = DiskUsage::scan(&[dir.path(), dir.path()]).unwrap();
        assert_eq!(
            u.sst,
            KindUsage {
                files: 1,
                bytes: 10
            }
        );
        assert_eq!(
            u.vlog,
            KindUsage {
                files: 1,
                bytes: 20
            }
        );
        assert_eq!(u.mem, KindUsage { files: 1, bytes: 5 });
        assert_eq!(u.other, KindUsage { files: 1, bytes: 0 });
        assert_eq!(u.total_bytes(), 35);
    }
}

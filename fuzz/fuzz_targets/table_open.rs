//! Any bytes open as a table and iterate both ways with every verification mode, or fail with
//! a typed error (`Corruption`, `ChecksumMismatch`, `UnsupportedVersion`); never a panic and
//! never a read outside the file. Mirrors `fuzz_table_open` in
//! crates/settdb/src/table/test_support.rs (run there as a proptest).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use settdb::io::StorageFile;
use settdb::table::{KvIterator, Table, TableIterator, TableOpenOptions};
use settdb::{ChecksumVerificationMode, Error, Result};

/// A read-only in-memory file: no syscalls per case.
#[derive(Debug)]
struct MemFile {
    path: PathBuf,
    data: Vec<u8>,
}

impl StorageFile for MemFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buf.len())
            .and_then(|end| self.data.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(Error::io(
                "read",
                &self.path,
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
        }
    }
    fn write_at(&self, _: u64, _: &[u8]) -> Result<()> {
        Err(Error::InvalidRequest("read-only fuzz file"))
    }
    fn len(&self) -> Result<u64> {
        Ok(self.data.len() as u64)
    }
    fn set_len(&self, _: u64) -> Result<()> {
        Err(Error::InvalidRequest("read-only fuzz file"))
    }
    fn sync_data(&self) -> Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let file: Arc<dyn StorageFile> = Arc::new(MemFile {
        path: PathBuf::from("fuzz.sst"),
        data: data.to_vec(),
    });
    for mode in [
        ChecksumVerificationMode::NoVerification,
        ChecksumVerificationMode::OnTableAndBlockRead,
    ] {
        let opts = TableOpenOptions {
            checksum_verification_mode: mode,
        };
        let table = match Table::open(file.clone(), 1, opts) {
            Ok(t) => t,
            Err(e) => {
                assert!(
                    e.is_corruption() || matches!(e, Error::UnsupportedVersion { .. }),
                    "{e}"
                );
                continue;
            }
        };
        let mut it = TableIterator::new(table.clone());
        check(walk(&mut it, true));
        check(walk(&mut it, false));
        for key in [table.smallest().to_vec(), table.biggest().to_vec()] {
            check(table.get(&key).map(|_| ()));
            check(it.seek(&key));
            check(it.seek_for_prev(&key));
        }
        let _ = table.verify_checksums();
    }
});

fn check(r: Result<()>) {
    if let Err(e) = r {
        assert!(e.is_corruption(), "{e}");
    }
}

fn walk(it: &mut TableIterator, forward: bool) -> Result<()> {
    if forward {
        it.seek_to_first()?;
    } else {
        it.seek_to_last()?;
    }
    while it.valid() {
        let _ = (it.key(), it.value());
        if forward {
            it.next()?;
        } else {
            it.prev()?;
        }
    }
    Ok(())
}

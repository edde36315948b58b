//! The shared body of the fuzz targets (fuzz/fuzz_targets/) and of the library's random-input
//! proptests: one function per target, each feeding arbitrary bytes to one decoder of bytes from
//! disk and asserting it yields a value or a typed error, never a panic. Not a public API: it
//! is `pub` only so the fuzz crate can call it, and it panics (by design) when a check fails.
//!
//! Each body is written once here, so a libFuzzer run and `cargo test` check the same things.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::StorageFile;
use crate::key::is_valid_internal_key;
use crate::log::{self, LogKind, RecordPos};
use crate::options::ChecksumVerificationMode;
use crate::table::{
    decode_stored_block, Block, BlockIterator, KvIterator, Table, TableIterator, TableOpenOptions,
};
use crate::value::ValueStruct;

/// The level count [`manifest_replay`] opens the MANIFEST for.
const MANIFEST_MAX_LEVELS: usize = 7;
/// The external magic [`manifest_replay`] opens the MANIFEST with.
const MANIFEST_EXTERNAL_MAGIC: u16 = 0;

/// A read-only file holding the fuzz input in memory: no syscalls per case. Reads past the end
/// fail as a short read (an I/O error, which no decoder may turn into anything but an error);
/// writes and truncations fail and are counted, so a body can assert a decoder never tried.
#[derive(Debug)]
pub struct ReadOnlyMemFile {
    path: PathBuf,
    data: Vec<u8>,
    write_attempts: AtomicUsize,
}

impl ReadOnlyMemFile {
    /// A file named `path` (in errors) holding `data`.
    pub fn new(path: impl Into<PathBuf>, data: Vec<u8>) -> Self {
        ReadOnlyMemFile {
            path: path.into(),
            data,
            write_attempts: AtomicUsize::new(0),
        }
    }

    /// How many `write_at` and `set_len` calls were made (and refused).
    pub fn write_attempts(&self) -> usize {
        self.write_attempts.load(Ordering::Relaxed)
    }

    fn refuse_write(&self) -> Result<()> {
        self.write_attempts.fetch_add(1, Ordering::Relaxed);
        Err(Error::InvalidRequest("the fuzz input file is read-only"))
    }
}

impl StorageFile for ReadOnlyMemFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|from| self.data.get(from..from.checked_add(buf.len())?))
            .ok_or_else(|| {
                Error::io("read", &self.path, std::io::ErrorKind::UnexpectedEof.into())
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<()> {
        self.refuse_write()
    }

    fn len(&self) -> Result<u64> {
        Ok(self.data.len() as u64)
    }

    fn set_len(&self, _len: u64) -> Result<()> {
        self.refuse_write()
    }

    fn sync_data(&self) -> Result<()> {
        Ok(())
    }
}

/// The errors a decoder may give for bad bytes: corruption (including a checksum mismatch) or
/// a format version it does not support.
fn is_typed(e: &Error) -> bool {
    // An encrypted file's header names a key the fuzzer has no registry for.
    e.is_corruption()
        || matches!(
            e,
            Error::UnsupportedVersion { .. } | Error::EncryptionKeyRequired { .. }
        )
}

/// Every entry of `it`, walking from the first forward or from the last backward; always in
/// ascending order.
fn entries(it: &mut dyn KvIterator, forward: bool) -> Result<Vec<(Vec<u8>, ValueStruct)>> {
    let mut out = Vec::new();
    if forward {
        it.seek_to_first()?;
    } else {
        it.seek_to_last()?;
    }
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_owned()));
        if forward {
            it.next()?;
        } else {
            it.prev()?;
        }
    }
    if !forward {
        out.reverse();
    }
    Ok(out)
}

/// Body of fuzz target `block_decode`: any bytes, as a raw data block or as a stored block
/// (checksum not checked, so the decompressors see the bytes), decode to a block that iterates
/// to the same entries both ways and seeks to each of its keys, or fail with `Corruption`.
pub fn block_decode(data: &[u8]) {
    let path = Path::new("fuzz.block");
    let mut candidates = vec![data.to_vec()];
    match decode_stored_block(path, 0, data.to_vec(), false, true, None) {
        Ok(raw) => candidates.push(raw),
        Err(e) => assert!(e.is_corruption(), "{e}"),
    }
    for bytes in candidates {
        match Block::decode(bytes, path, 0) {
            Ok(block) => walk_block(Arc::new(block)),
            Err(e) => assert!(e.is_corruption(), "{e}"),
        }
    }
}

/// A decoded block is checked whole, so iterating it never fails.
fn walk_block(block: Arc<Block>) {
    let mut it = BlockIterator::new(block);
    let forward = entries(&mut it, true).expect("a decoded block iterates forward");
    let backward = entries(&mut it, false).expect("a decoded block iterates backward");
    assert_eq!(forward, backward);
    for (key, _) in &forward {
        it.seek(key).expect("a decoded block seeks");
        assert_eq!(it.key(), &key[..]);
    }
}

/// Body of fuzz target `table_open`: any bytes open as a table with every verification mode
/// and iterate both ways, get and seek to its smallest and biggest keys, or fail with a typed
/// error (`Corruption`, `ChecksumMismatch`, `UnsupportedVersion`); never a read outside the
/// file (that would be an I/O error, which fails the checks).
pub fn table_open(data: &[u8]) {
    let file: Arc<dyn StorageFile> = Arc::new(ReadOnlyMemFile::new("fuzz.sst", data.to_vec()));
    for mode in [
        ChecksumVerificationMode::NoVerification,
        ChecksumVerificationMode::OnTableAndBlockRead,
    ] {
        let opts = TableOpenOptions {
            checksum_verification_mode: mode,
            keys: None,
            caches: None,
        };
        match Table::open(file.clone(), 1, opts) {
            Ok(table) => walk_table(table),
            Err(e) => assert!(is_typed(&e), "{e}"),
        }
    }
}

/// After a successful open, every read of the table succeeds or is corruption.
fn walk_table(table: Arc<Table>) {
    let mut it = TableIterator::new(table.clone());
    check_corruption(entries(&mut it, true).map(drop));
    check_corruption(entries(&mut it, false).map(drop));
    for key in [table.smallest().to_vec(), table.biggest().to_vec()] {
        check_corruption(table.get(&key).map(drop));
        check_corruption(it.seek(&key));
        check_corruption(it.seek_for_prev(&key));
    }
    let _ = table.verify_checksums();
}

fn check_corruption(r: Result<()>) {
    if let Err(e) = r {
        assert!(e.is_corruption(), "{e}");
    }
}

/// Body of fuzz target `log_replay`: the first byte picks the log kind (even: WAL, odd: value
/// log), the rest is the file. Replay hands out only in-bounds, non-empty batches of valid
/// records that read back by position, and ends in a valid end or a typed error; the bytes
/// decoded as one record give a valid key or an error; a value pointer taken from the input
/// reads a record or fails typed. Replay never writes to the file.
pub fn log_replay(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let kind = if selector & 1 == 0 {
        LogKind::Wal
    } else {
        LogKind::ValueLog
    };
    let file = ReadOnlyMemFile::new("fuzz.log", rest.to_vec());
    check_replay(&file, kind);
    if let Ok((rec, used)) = log::decode_record(rest) {
        assert!(used <= rest.len() && is_valid_internal_key(rec.key));
    }
    if let (Some(offset), Some(len)) = (rest.get(..8), rest.get(8..12)) {
        let pos = RecordPos {
            offset: u64::from_le_bytes(offset.try_into().unwrap_or_default()),
            len: u32::from_le_bytes(len.try_into().unwrap_or_default()),
        };
        if let Err(e) = log::read_record(&file, pos) {
            assert!(is_typed(&e), "{e}");
        }
    }
    assert_eq!(file.write_attempts(), 0, "replay must never write");
}

/// Replays `file` as a `kind` log, checking every batch and record it hands out.
fn check_replay(file: &ReadOnlyMemFile, kind: LogKind) {
    let file_len = file.data.len() as u64;
    let mut records = 0u64;
    let replayed = log::replay(file, kind, |batch| {
        assert!(batch.end() <= file_len && !batch.is_empty());
        for (pos, rec) in batch.iter() {
            assert!(pos.end() <= batch.end() && is_valid_internal_key(rec.key));
            let again = log::read_record(file, pos).expect("a replayed record reads back");
            assert_eq!(again.as_record(), rec);
            records += 1;
        }
        Ok(())
    });
    match replayed {
        Ok(end) => assert!(end.valid_end <= file_len && end.records == records),
        Err(e) => assert!(is_typed(&e), "{e}"),
    }
}

/// Body of fuzz target `manifest_replay`: any bytes replay as a MANIFEST to a state whose
/// valid log fits in the input and whose live-table count matches its tables, or to an error.
pub fn manifest_replay(data: &[u8]) {
    let replayed = crate::manifest::replay(
        data,
        Path::new("MANIFEST"),
        MANIFEST_MAX_LEVELS,
        MANIFEST_EXTERNAL_MAGIC,
    );
    if let Ok(r) = replayed {
        assert!(r.valid_len <= r.file_len);
        assert!(r.manifest.tables().len() as u64 == r.manifest.live_tables());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_file_reads_in_bounds_and_refuses_writes() {
        // Proves the fuzz file reads exactly its bytes, fails reads past its end (including an
        // offset that overflows), and refuses and counts writes and truncations.
        let f = ReadOnlyMemFile::new("f", vec![1, 2, 3]);
        assert_eq!(f.read_vec_at(1, 2).unwrap(), vec![2, 3]);
        assert!(f.read_vec_at(2, 2).is_err());
        assert!(f.read_vec_at(u64::MAX, 1).is_err());
        assert_eq!(f.len().unwrap(), 3);
        assert_eq!(f.write_attempts(), 0);
        assert!(f.write_at(0, &[9]).is_err());
        assert!(f.set_len(0).is_err());
        assert_eq!(f.write_attempts(), 2);
        assert_eq!(f.read_vec_at(0, 3).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn bodies_accept_empty_and_tiny_inputs() {
        // Proves every body returns on the edge inputs a fuzzer starts from.
        for input in [&[][..], &[0][..], &[1][..], &[0xff; 64][..]] {
            block_decode(input);
            table_open(input);
            log_replay(input);
            manifest_replay(input);
        }
    }
}

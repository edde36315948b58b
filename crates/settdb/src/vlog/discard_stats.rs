//! Discard statistics: dead bytes per value-log file, persisted in `DISCARD`.
//!
//! ```text
//! discard_file := magic u32 | format_version u16 | reserved u16 | count u32
//!                 | (file_id u32 | discard_bytes u64){count} | crc32c u32
//! ```
//! Normative page: docs/format/discard.md. Compaction adds the bytes of value-log records it
//! drops; GC reads them to pick files and resets a file's entry when it deletes the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checksum::crc32c;
use crate::coding::{self, Reader};
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage};

/// File name of the statistics.
pub const DISCARD_FILE_NAME: &str = "DISCARD";
const TMP_FILE_NAME: &str = "DISCARD.tmp";
const MAGIC: u32 = 0x5344_4453;
const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 4 + 2 + 2 + 4;
const ENTRY_LEN: usize = 4 + 8;
const CRC_LEN: usize = 4;

/// Dead bytes per value-log file id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscardStats {
    per_file: BTreeMap<u32, u64>,
}

impl DiscardStats {
    /// No dead bytes anywhere.
    pub fn new() -> Self {
        DiscardStats::default()
    }

    /// Adds `bytes` dead bytes to `file_id`.
    pub fn add(&mut self, file_id: u32, bytes: u64) {
        let slot = self.per_file.entry(file_id).or_insert(0);
        *slot = slot.saturating_add(bytes);
    }

    /// Merges another set of statistics into this one.
    pub fn merge(&mut self, other: &DiscardStats) {
        for (&f, &b) in &other.per_file {
            self.add(f, b);
        }
    }

    /// Dead bytes of `file_id`.
    pub fn get(&self, file_id: u32) -> u64 {
        self.per_file.get(&file_id).copied().unwrap_or(0)
    }

    /// Forgets `file_id` (its file was deleted).
    pub fn remove(&mut self, file_id: u32) {
        self.per_file.remove(&file_id);
    }

    /// Files with dead bytes, most dead bytes first.
    pub fn by_discard_desc(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self.per_file.iter().map(|(&f, &b)| (f, b)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// True if no file has dead bytes recorded.
    pub fn is_empty(&self) -> bool {
        self.per_file.is_empty()
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.per_file.len() * ENTRY_LEN + CRC_LEN);
        coding::put_u32(&mut out, MAGIC);
        coding::put_u16(&mut out, FORMAT_VERSION);
        coding::put_u16(&mut out, 0);
        coding::put_u32(&mut out, self.per_file.len() as u32);
        for (&f, &b) in &self.per_file {
            coding::put_u32(&mut out, f);
            coding::put_u64(&mut out, b);
        }
        let crc = crc32c(&out);
        coding::put_u32(&mut out, crc);
        out
    }

    /// Decodes the file's bytes; `path` names the file in errors.
    pub fn decode(buf: &[u8], path: &Path) -> Result<Self> {
        let bad = |offset: usize, why: &str| Error::corruption(path, offset as u64, why);
        let mut r = Reader::new(buf);
        let (magic, version, _reserved, count) = match (r.u32(), r.u16(), r.u16(), r.u32()) {
            (Some(m), Some(v), Some(z), Some(c)) => (m, v, z, c),
            _ => return Err(bad(0, "discard stats shorter than their header")),
        };
        if magic != MAGIC {
            return Err(bad(0, "bad magic in discard stats"));
        }
        if version > FORMAT_VERSION || version == 0 {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: u32::from(version),
                supported: u32::from(FORMAT_VERSION),
            });
        }
        let want_len = (count as u64)
            .checked_mul(ENTRY_LEN as u64)
            .map(|n| n + (HEADER_LEN + CRC_LEN) as u64);
        if want_len != Some(buf.len() as u64) {
            return Err(bad(8, "entry count does not match the file length"));
        }
        let body_len = buf.len() - CRC_LEN;
        let stored = coding::get_u32(buf, body_len).unwrap_or(0);
        let computed = crc32c(&buf[..body_len]);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                file: path.to_path_buf(),
                offset: 0,
                stored,
                computed,
            });
        }
        let mut stats = DiscardStats::new();
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let at = r.position();
            let (f, b) = match (r.u32(), r.u64()) {
                (Some(f), Some(b)) => (f, b),
                _ => return Err(bad(at, "truncated discard entry")),
            };
            if last.is_some_and(|l| l >= f) {
                return Err(bad(at, "discard entries not in ascending file order"));
            }
            last = Some(f);
            stats.per_file.insert(f, b);
        }
        Ok(stats)
    }

    /// Loads the statistics in `dir` (empty if the file does not exist).
    pub fn load(storage: &dyn Storage, dir: &Path) -> Result<Self> {
        let path = dir.join(DISCARD_FILE_NAME);
        if !storage.exists(&path)? {
            return Ok(DiscardStats::new());
        }
        let file = storage.open(&path, OpenMode::Read)?;
        let len = file.len()?;
        let max = (HEADER_LEN + CRC_LEN) as u64 + u64::from(u32::MAX) * ENTRY_LEN as u64;
        if len > max {
            return Err(Error::corruption(&path, 0, "discard stats file too large"));
        }
        let bytes = file.read_vec_at(0, len as usize)?;
        DiscardStats::decode(&bytes, &path)
    }

    /// Replaces the statistics in `dir` durably: tmp file, sync, rename, directory sync.
    pub fn persist(&self, storage: &Arc<dyn Storage>, dir: &Path) -> Result<()> {
        let tmp: PathBuf = dir.join(TMP_FILE_NAME);
        if storage.exists(&tmp)? {
            storage.remove_file(&tmp)?;
        }
        let file = storage.open(&tmp, OpenMode::CreateNew)?;
        file.write_at(0, &self.encode())?;
        file.sync_data()?;
        drop(file);
        storage.rename(&tmp, &dir.join(DISCARD_FILE_NAME))?;
        storage.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(entries in proptest::collection::btree_map(any::<u32>(), any::<u64>(), 0..50)) {
            // Proves encode/decode are inverse for any set of file ids and byte counts.
            let stats = DiscardStats { per_file: entries };
            let bytes = stats.encode();
            prop_assert_eq!(DiscardStats::decode(&bytes, Path::new("D")).unwrap(), stats);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            // Proves arbitrary input is a value or a typed error, never a panic.
            let _ = DiscardStats::decode(&bytes, Path::new("D"));
        }

        #[test]
        fn any_bit_flip_is_detected(n in 1usize..20, pos: prop::sample::Index, bit in 0u8..8) {
            // Proves every single-bit flip is refused (checksum, magic, length or order).
            let mut s = DiscardStats::new();
            for f in 0..n as u32 { s.add(f, u64::from(f) * 1000 + 1); }
            let mut bytes = s.encode();
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(DiscardStats::decode(&bytes, Path::new("D")).is_err());
        }
    }

    #[test]
    fn persist_replaces_atomically_and_reloads() {
        // Proves persist writes via a temp file and load reads back the last persisted stats.
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
        assert!(DiscardStats::load(storage.as_ref(), dir.path())
            .unwrap()
            .is_empty());
        let mut s = DiscardStats::new();
        s.add(3, 100);
        s.add(1, 50);
        s.add(3, 1);
        s.persist(&storage, dir.path()).unwrap();
        s.add(7, 9);
        s.persist(&storage, dir.path()).unwrap();
        let back = DiscardStats::load(storage.as_ref(), dir.path()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.by_discard_desc(), vec![(3, 101), (1, 50), (7, 9)]);
        assert!(!dir.path().join(TMP_FILE_NAME).exists());
    }
}

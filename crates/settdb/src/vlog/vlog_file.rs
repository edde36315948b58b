//! One open value-log file, as readers see it: value-pointer reads with their checks.
//!
//! ```text
//! record at ValuePointer { offset, len } := exactly `len` bytes of one log record (log.md)
//! ```
//!
//! Normative pages: docs/format/vlog.md ("Value pointers"), docs/format/log.md ("Reading one
//! record").

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::crypto::FileCipher;
use crate::error::{Error, Result};
use crate::io::{Mapping, Storage, StorageFile};
use crate::log::{
    read_copied_record_at, read_mapped_record_at, OwnedRecord, RecordAlloc, RecordPos,
    FIRST_RECORD_OFFSET, MIN_RECORD_LEN,
};
use crate::value::ValuePointer;

use super::recent::RecentBatches;

/// Bytes of a key shown in an error message.
const KEY_SHOWN_BYTES: usize = 64;

/// An open value-log file and the end of its readable bytes.
///
/// Invariant: every byte below `readable_end` belongs to a valid batch whose append returned
/// (or that recovery validated), and `readable_end` only grows. A sealed file's end never
/// changes, so a read needs no `stat`; the active file's end is its writer's offset, published
/// after each append (Release) and read by readers (Acquire), so a reader never reads a batch
/// that is still being written. Shared as `Arc` by any number of reader threads.
///
/// A file value-log GC replaced is *retired*: the value log forgets it, and the file is
/// removed when the last `Arc` drops, that is when no read snapshot ([`super::VlogPin`]) or
/// item can read it any more (as `levels::LevelTable` does for tables).
pub(crate) struct VlogFile {
    id: u32,
    file: Arc<dyn StorageFile>,
    readable_end: AtomicU64,
    /// Set once retired: where to remove the file from when the last holder drops it.
    remove_on_drop: OnceLock<Arc<dyn Storage>>,
    /// The cipher of an encrypted file.
    cipher: Option<FileCipher>,
    /// A read-only mapping of the readable bytes, made once the file is sealed when the
    /// database maps its value log ([`crate::Options::value_log_mmap`]); reads then copy
    /// from it instead of making a system call.
    mapping: OnceLock<Mapping>,
    /// While the file is active: its newest small batches, read from memory.
    recent: RecentBatches,
}

impl VlogFile {
    /// File `id`, open as `file`, readable up to `readable_end`. REQUIRES: its header was
    /// checked (or written) and the bytes below `readable_end` validated (or written).
    pub(crate) fn new(
        id: u32,
        file: Arc<dyn StorageFile>,
        readable_end: u64,
        cipher: Option<FileCipher>,
    ) -> Self {
        VlogFile {
            id,
            file,
            readable_end: AtomicU64::new(readable_end),
            remove_on_drop: OnceLock::new(),
            cipher,
            mapping: OnceLock::new(),
            recent: RecentBatches::default(),
        }
    }

    /// Maps the readable bytes for reads. REQUIRES: the file is sealed (complete, and never
    /// written or truncated again while open). A storage that does not map (the simulated
    /// and in-memory ones) leaves reads on `read_at`.
    pub(crate) fn map_sealed(&self) -> Result<()> {
        if self.mapping.get().is_none() {
            if let Some(m) = self.file.map_read_only(self.readable_end())? {
                let _ = self.mapping.set(m);
            }
        }
        Ok(())
    }

    /// Keeps the batch the writer just wrote at `offset` for reads from memory (see
    /// `recent.rs`). REQUIRES: the active file's writer, after the write returned and before
    /// the readable end covers it.
    pub(crate) fn keep_written(&self, offset: u64, batch: &[u8]) {
        self.recent.add(offset, batch);
    }

    /// Drops the batches kept for reads (the file is no longer the active one).
    pub(crate) fn forget_written(&self) {
        self.recent.clear();
    }

    /// True if reads go through a mapping.
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        self.mapping.get().is_some()
    }

    /// Retires the file: it is removed from `storage` when the last `Arc` drops. REQUIRES: its
    /// removal is recorded durably (the MANIFEST's `DeleteVlog`), so a crash before the
    /// removal leaves a file the next open proves garbage.
    pub(crate) fn retire(&self, storage: Arc<dyn Storage>) {
        let _ = self.remove_on_drop.set(storage);
    }

    /// The file id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The path it was opened at.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// The open file.
    pub(crate) fn file(&self) -> &Arc<dyn StorageFile> {
        &self.file
    }

    /// Bytes a reader may read (the valid end).
    pub(crate) fn readable_end(&self) -> u64 {
        self.readable_end.load(Ordering::Acquire)
    }

    /// Makes the bytes up to `end` readable. REQUIRES: the writer thread, after the batch
    /// ending at `end` was written.
    pub(crate) fn publish_end(&self, end: u64) {
        debug_assert!(
            end >= self.readable_end(),
            "a file's readable end only grows"
        );
        self.readable_end.store(end, Ordering::Release);
    }

    /// True if `vp` lies within the readable bytes of this file, past the header and the
    /// first batch header, and is at least a record long (see docs/format/vlog.md).
    pub(crate) fn contains(&self, vp: &ValuePointer) -> bool {
        debug_assert_eq!(vp.file_id, self.id);
        let end = u64::from(vp.offset) + u64::from(vp.len);
        u64::from(vp.offset) >= FIRST_RECORD_OFFSET
            && vp.len as usize >= MIN_RECORD_LEN
            && end <= self.readable_end()
    }

    /// [`VlogFile::read_in`] into a `Vec` of its own.
    #[cfg(test)]
    pub(crate) fn read(&self, vp: ValuePointer, expected_key: &[u8]) -> Result<OwnedRecord> {
        self.read_in(vp, expected_key, crate::log::FreshVec)
    }

    /// Reads the record `vp` names into a buffer from `alloc` and checks that its key is
    /// `expected_key`.
    ///
    /// Errors, each naming this file and `vp.offset`: [`Error::Corruption`] for a position
    /// outside the readable bytes, bytes that are not one record of `vp.len` bytes, or a key
    /// other than `expected_key` (a misdirected pointer); [`Error::ChecksumMismatch`] for a
    /// damaged record; I/O errors.
    pub(crate) fn read_in<A: RecordAlloc>(
        &self,
        vp: ValuePointer,
        expected_key: &[u8],
        alloc: A,
    ) -> Result<OwnedRecord<A::Buf>> {
        debug_assert_eq!(vp.file_id, self.id);
        let pos = RecordPos::from(vp);
        let cipher = self.cipher.as_ref();
        let rec = match self.mapping.get() {
            Some(m) => read_mapped_record_at(self.file.as_ref(), m, pos, cipher, alloc),
            None => {
                let end = self.readable_end();
                read_copied_record_at(self.file.as_ref(), end, pos, cipher, alloc, |a, at, len| {
                    self.recent.read_with(at, len, |bytes| a.copy_of(bytes))
                })
            }
        }?;
        if rec.key() != expected_key {
            let why = format!(
                "the value pointer ({vp}) was stored under key {} but its record holds key {}",
                show_key(expected_key),
                show_key(rec.key())
            );
            return Err(Error::corruption(self.path(), u64::from(vp.offset), why));
        }
        Ok(rec)
    }
}

impl Drop for VlogFile {
    fn drop(&mut self) {
        if let Some(storage) = self.remove_on_drop.get() {
            // No caller to report to: a file left behind is unlisted in the MANIFEST, and the
            // next open removes it as proven garbage (docs/design/recovery.md).
            let _ = storage.remove_file(self.file.path());
        }
    }
}

impl fmt::Debug for VlogFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VlogFile")
            .field("id", &self.id)
            .field("path", &self.path())
            .field("readable_end", &self.readable_end())
            .finish()
    }
}

/// A key for an error message: escaped, cut after [`KEY_SHOWN_BYTES`].
fn show_key(key: &[u8]) -> String {
    let shown = key.get(..KEY_SHOWN_BYTES).unwrap_or(key);
    let more = if shown.len() < key.len() { "..." } else { "" };
    format!("\"{}{more}\"", shown.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{SimStorage, Storage};
    use crate::key::key_with_version;
    use crate::log::{LogHeader, LogKind, LogWriter, RecordRef};
    use std::path::PathBuf;

    fn one_record_file() -> (VlogFile, ValuePointer, Vec<u8>) {
        let storage = SimStorage::new();
        let path = PathBuf::from("/v/000003.vlog");
        storage.create_dir_all(Path::new("/v")).unwrap();
        let hdr = LogHeader::new(LogKind::ValueLog, 3);
        let mut w = LogWriter::create(&storage, &path, hdr).unwrap();
        let key = key_with_version(b"k", 9);
        let rec = RecordRef {
            meta: 0,
            user_meta: 1,
            expires_at: 0,
            key: &key,
            value: b"hello",
        };
        let mut pos = Vec::new();
        w.append_batch(&[rec], &mut pos).unwrap();
        let vp = pos[0].value_pointer(3).unwrap();
        (
            VlogFile::new(3, w.file().clone(), w.offset(), None),
            vp,
            key,
        )
    }

    #[test]
    fn reads_check_the_key_and_the_readable_end() {
        // Proves a pointer reads its value under its own key, a wrong key is Corruption at the
        // pointer's offset, and bytes past the published end are neither valid nor read.
        let (f, vp, key) = one_record_file();
        assert!(f.contains(&vp));
        assert_eq!(f.read(vp, &key).unwrap().value(), b"hello");
        let other = key_with_version(b"k", 8);
        match f.read(vp, &other) {
            Err(Error::Corruption { offset, reason, .. }) => {
                assert_eq!(offset, u64::from(vp.offset));
                assert!(reason.contains(r#"stored under key "k\xff"#), "{reason}");
            }
            r => panic!("expected Corruption, got {r:?}"),
        }
        let hidden = VlogFile::new(3, f.file().clone(), u64::from(vp.offset) + 3, None);
        assert!(!hidden.contains(&vp));
        assert!(matches!(
            hidden.read(vp, &key),
            Err(Error::Corruption { .. })
        ));
        let below = ValuePointer {
            offset: FIRST_RECORD_OFFSET as u32 - 1,
            ..vp
        };
        assert!(!f.contains(&below));
        let short = ValuePointer { len: 3, ..vp };
        assert!(!f.contains(&short));
    }

    #[test]
    fn long_keys_are_cut_in_messages() {
        // Proves error messages stay short whatever the key length.
        let shown = show_key(&[b'a'; 1000]);
        assert!(shown.len() < KEY_SHOWN_BYTES + 8 && shown.ends_with("...\""));
        assert_eq!(show_key(b"ab\n"), "\"ab\\n\"");
    }
}

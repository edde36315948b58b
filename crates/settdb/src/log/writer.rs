//! Appending batches of records to a log.
//!
//! ```text
//! log_file := file_header (written and synced by create) batch* (one write_at per batch)
//! batch    := batch_header record{count}
//! ```
//!
//! Normative page: docs/format/log.md ("Writing").

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::format::{
    BatchHeader, LogHeader, LogKind, BATCH_HEADER_LEN, CHECKSUM_LEN, FIRST_BATCH_OFFSET,
};
use super::reader::read_header;
use super::record::{RecordPos, RecordRef};
use super::replay::ReplayEnd;
use crate::checksum::crc32c;
use crate::crypto::{FileCipher, TAG_LEN};
use crate::error::{Error, Result};
use crate::io::{parent_dir, OpenMode, Storage, StorageFile};

/// The one writer of a log file (DESIGN.md rule 10).
///
/// Invariants: `FIRST_BATCH_OFFSET <= synced_offset <= offset`; every byte below
/// `synced_offset` was made durable by a successful `sync_data`; `offset` is the end of the
/// last batch written. Concurrency: `&mut self` for every write, so callers serialise
/// appends (the batcher is the one writer); readers share [`LogWriter::file`] and read only
/// below `offset` of a batch whose `append_batch` returned.
pub struct LogWriter {
    file: Arc<dyn StorageFile>,
    header: LogHeader,
    offset: u64,
    synced_offset: u64,
    buf: Vec<u8>,
    /// The first write or sync failure; set once, then every write fails (rule 8).
    poisoned: Option<String>,
    /// True once [`LogWriter::seal`] wrote the seal: nothing more may be appended.
    sealed: bool,
    /// The cipher of an encrypted log (its header names the key and salt).
    cipher: Option<FileCipher>,
    /// Where each record of the batch being written starts in `buf`, with its head length
    /// (kept between batches: an encrypted append allocates nothing for it).
    seal_spans: Vec<(usize, usize)>,
}

impl LogWriter {
    /// Batch buffer capacity kept between batches; a larger one (after a huge batch) is
    /// released so one 2 GiB value does not pin 2 GiB for the life of the writer.
    pub(crate) const RETAINED_BUFFER_BYTES: usize = 4 << 20;

    /// True if the log is encrypted (its header names a data key).
    pub fn is_encrypted(&self) -> bool {
        self.header.is_encrypted()
    }

    /// Creates the log at `path` (which must not exist), writes the header, syncs the file and
    /// then its directory, so the file is durable before anything can refer to it (rule 1).
    ///
    /// Errors: [`Error::InvalidRequest`] for a header asking for encryption (use
    /// [`LogWriter::create_in`] with its cipher), I/O errors. On failure the file may exist
    /// unborn; recovery reports it as [`super::StopReason::Unborn`].
    pub fn create(storage: &dyn Storage, path: &Path, header: LogHeader) -> Result<LogWriter> {
        LogWriter::create_in(storage, path, header, None)
    }

    /// [`LogWriter::create`], encrypted with `cipher` when given (the header must then be
    /// [`LogHeader::encrypted`] with it).
    pub fn create_in(
        storage: &dyn Storage,
        path: &Path,
        header: LogHeader,
        cipher: Option<FileCipher>,
    ) -> Result<LogWriter> {
        header.check_writable()?;
        let matches = match &cipher {
            None => !header.is_encrypted(),
            Some(c) => header.key_id == c.key_id && header.base_iv == c.salt,
        };
        if !matches {
            return Err(Error::InvalidRequest(
                "the log header's key id and salt are not the cipher's",
            ));
        }
        let file = storage.open(path, OpenMode::CreateNew)?;
        file.write_at(0, &header.encode())?;
        file.sync_data()?;
        storage.sync_dir(&parent_dir(path))?;
        Ok(LogWriter::at(file, header, FIRST_BATCH_OFFSET, cipher))
    }

    /// Reopens the log at `path` for appending after [`super::replay`] returned `end`.
    ///
    /// Truncates the file to `end.valid_end` and syncs before returning, so that stale bytes
    /// past the end (a torn batch, unsynced later batches) can never be read later as a
    /// continuation of new batches, and so that every byte below the end is durable.
    ///
    /// Errors: [`Error::InvalidRequest`] if `end` is of an unborn file (remove it and
    /// `create` again) or of another file or kind; [`Error::Corruption`] if the file is now
    /// shorter than `end.valid_end`; I/O errors.
    pub fn open_append(
        storage: &dyn Storage,
        path: &Path,
        expected: LogKind,
        end: &ReplayEnd,
    ) -> Result<LogWriter> {
        let Some(header) = end.header else {
            return Err(Error::InvalidRequest(
                "cannot append to an unborn log: remove it and create it again",
            ));
        };
        if header.kind != expected || end.valid_end < FIRST_BATCH_OFFSET {
            return Err(Error::InvalidRequest(
                "the replay end is not of this kind of log",
            ));
        }
        let file = storage.open(path, OpenMode::ReadWrite)?;
        if read_header(file.as_ref(), expected)? != Some(header) {
            return Err(Error::InvalidRequest(
                "the replay end belongs to another file",
            ));
        }
        let len = file.len()?;
        if len < end.valid_end {
            let why = format!(
                "file is shorter than the end {} its replay found",
                end.valid_end
            );
            return Err(Error::corruption(path, len, why));
        }
        if len > end.valid_end {
            file.set_len(end.valid_end)?;
        }
        file.sync_data()?;
        // An encrypted log is reopened only to be sealed (the seal is plaintext): appending
        // records would seal them at offsets a torn record may already have used.
        Ok(LogWriter::at(file, header, end.valid_end, None))
    }

    /// A writer whose file is durable up to `end`, where it continues.
    fn at(
        file: Arc<dyn StorageFile>,
        header: LogHeader,
        end: u64,
        cipher: Option<FileCipher>,
    ) -> LogWriter {
        LogWriter {
            file,
            header,
            offset: end,
            synced_offset: end,
            buf: Vec::new(),
            poisoned: None,
            sealed: false,
            cipher,
            seal_spans: Vec::new(),
        }
    }

    /// Appends `records` as one batch with one write, and fills `positions` (cleared first)
    /// with each record's position, in order. Not durable until [`LogWriter::sync`].
    ///
    /// Errors, before anything is written: [`Error::InvalidRequest`] for an empty batch, bad
    /// meta bits, a value-pointer record that is not 12 bytes, or a batch over 4 GiB;
    /// [`Error::InvalidKey`] for a key that is not an internal key; [`Error::ValueTooLarge`].
    /// A failed write returns its error and poisons the writer; afterwards, and on a poisoned
    /// writer, [`Error::Poisoned`]. `positions` is meaningful only on `Ok`.
    pub fn append_batch(
        &mut self,
        records: &[RecordRef<'_>],
        positions: &mut Vec<RecordPos>,
    ) -> Result<()> {
        self.append(records, positions, false)
    }

    fn append(
        &mut self,
        records: &[RecordRef<'_>],
        positions: &mut Vec<RecordPos>,
        plaintext_seal: bool,
    ) -> Result<()> {
        self.check_poisoned()?;
        if self.header.is_encrypted() && self.cipher.is_none() && !plaintext_seal {
            return Err(Error::InvalidRequest(
                "an encrypted log reopened after recovery takes only its seal",
            ));
        }
        let cipher = self.cipher.as_ref().filter(|_| !plaintext_seal);
        if self.sealed {
            return Err(Error::InvalidRequest(
                "the log is sealed: nothing can follow its seal",
            ));
        }
        // An encrypted WAL seals the whole batch body as one unit; a value log each record.
        let whole = cipher.filter(|_| self.header.sealed_batches);
        let each = cipher.filter(|_| !self.header.sealed_batches);
        let batch_offset = self.offset;
        let mut records_len = body_len(records, each.is_some())?;
        if whole.is_some() {
            records_len = records_len
                .checked_add((TAG_LEN + CHECKSUM_LEN) as u32)
                .ok_or(Error::InvalidRequest(
                    "a log batch holds at most 4 GiB - 1 bytes of records",
                ))?;
        }
        let header = BatchHeader {
            count: u32::try_from(records.len())
                .map_err(|_| Error::InvalidRequest("a log batch holds at most 2^32 - 1 records"))?,
            body_len: records_len,
            batch_offset,
            synced_offset: self.synced_offset,
        };
        self.buf.clear();
        header.encode(self.header.kind, self.header.file_id, &mut self.buf);
        positions.clear();
        positions.reserve(records.len());
        self.seal_spans.clear();
        // A plaintext batch is written in chunks as it is encoded, so the kernel copies each
        // into the page cache while it is still in the CPU's cache (a 4 MiB value-log batch
        // written whole was copied from memory: a large-value load spent most of its time
        // there). A batch written whole is no more atomic: recovery treats a batch cut
        // anywhere as a torn tail either way, and readers see none of it until the append
        // returns.
        let chunked = each.is_none() && whole.is_none();
        let mut written = 0usize;
        for rec in records {
            let at = written + self.buf.len();
            match each {
                Some(_) => self
                    .seal_spans
                    .push((at, rec.encode_to_seal(&mut self.buf))),
                None => rec.encode(&mut self.buf),
            }
            positions.push(RecordPos {
                offset: batch_offset + at as u64,
                // validated: at most MAX_RECORD_LEN
                len: (written + self.buf.len() - at) as u32,
            });
            if chunked && self.buf.len() >= WRITE_CHUNK_BYTES {
                let chunk_offset = batch_offset + written as u64;
                if let Err(e) = self.file.write_at(chunk_offset, &self.buf) {
                    return Err(self.poison("write", chunk_offset, e));
                }
                written += self.buf.len();
                self.buf.clear();
            }
        }
        // Before anything is written (a sealed batch is never chunked): a layout error leaves
        // the log as it was.
        if let Some(c) = each {
            seal_all(&mut self.buf, &self.seal_spans, c, batch_offset)?;
        }
        if let Some(c) = whole {
            seal_batch_body(&mut self.buf, c, batch_offset)?;
        }
        debug_assert_eq!((written + self.buf.len()) as u64, header.batch_len());
        let chunk_offset = batch_offset + written as u64;
        if let Err(e) = self.file.write_at(chunk_offset, &self.buf) {
            return Err(self.poison("write", chunk_offset, e));
        }
        self.offset += (written + self.buf.len()) as u64;
        if written > 0 {
            // The buffer holds only the batch's tail: `last_batch` has nothing to give.
            self.buf.clear();
        }
        if self.buf.capacity() > Self::RETAINED_BUFFER_BYTES {
            self.buf.clear();
            self.buf.shrink_to(Self::RETAINED_BUFFER_BYTES);
        }
        Ok(())
    }

    /// The bytes of the batch the last append wrote, as written, and its offset; `None` when
    /// the writer has let go of them (a batch written in chunks, or larger than the buffer it
    /// keeps) or wrote none.
    pub fn last_batch(&self) -> Option<(u64, &[u8])> {
        let len = self.buf.len() as u64;
        (len > 0 && len <= self.offset).then(|| (self.offset - len, &self.buf[..]))
    }

    /// Makes every batch appended so far durable (`sync_data`); a no-op when nothing is new.
    /// A failure poisons the writer (rule 8: the kernel may have dropped the dirty pages, so a
    /// retry could report success for lost bytes).
    pub fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        if self.synced_offset == self.offset {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            return Err(self.poison("sync", self.offset, e));
        }
        self.synced_offset = self.offset;
        Ok(())
    }

    /// Seals the log (DESIGN.md rule 12; [`super::seal`]): syncs it, appends the seal batch,
    /// whose header records every byte before it as durable, and syncs again. Afterwards
    /// appends are refused; sealing again is a no-op. A failure poisons the writer.
    pub fn seal(&mut self) -> Result<()> {
        if self.sealed {
            return Ok(());
        }
        self.sync()?;
        let key = super::seal::seal_key();
        let mut positions = Vec::with_capacity(1);
        self.append(&[super::seal::seal_record(&key)], &mut positions, true)?;
        self.sync()?;
        self.sealed = true;
        Ok(())
    }

    /// Records that bytes below `offset` were made durable by a sync of this file made
    /// outside the writer (a background writeback), so the next batches record it and
    /// recovery can tell damage there from a torn tail. Never raises past the log's end.
    pub fn note_synced(&mut self, offset: u64) {
        self.synced_offset = self.synced_offset.max(offset.min(self.offset));
    }

    /// Offset where the next batch goes (the end of the log).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Offset up to which the log is durable.
    pub fn synced_offset(&self) -> u64 {
        self.synced_offset
    }

    /// The open file, for readers of this log.
    pub fn file(&self) -> &Arc<dyn StorageFile> {
        &self.file
    }

    /// The log's header.
    #[cfg(test)]
    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// The first failure, if the writer is poisoned.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(first) => Err(Error::Poisoned(first.clone())),
            None => Ok(()),
        }
    }

    /// Records the first failure and hands back its error.
    fn poison(&mut self, op: &str, offset: u64, e: Error) -> Error {
        let path = self.file.path().display();
        self.poisoned = Some(format!("log {op} at offset {offset} of {path} failed: {e}"));
        e
    }
}

impl fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.file.path())
            .field("header", &self.header)
            .field("offset", &self.offset)
            .field("synced_offset", &self.synced_offset)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

/// Bytes of a plaintext batch written at a time (the batch's bytes so far, once past this):
/// small enough to be in the CPU's cache when the kernel copies them, large enough that the
/// calls cost nothing measurable.
const WRITE_CHUNK_BYTES: usize = 256 << 10;

/// Bytes of records a batch must hold before its sealing is split over two threads (below
/// it, a thread costs more than it saves).
const PARALLEL_SEAL_BYTES: usize = 256 << 10;

/// Seals, in `buf` (a batch written at `batch_offset`), the records laid out at `records`
/// (each its start in `buf` and head length; ascending), with two threads for a large batch:
/// the writer thread is the one writer of the database, and AES-GCM over a batch of values is
/// most of its work in an encrypted database.
fn seal_all(
    buf: &mut [u8],
    records: &[(usize, usize)],
    cipher: &FileCipher,
    batch_offset: u64,
) -> Result<()> {
    let seal_range = |part: &mut [u8], base: usize, recs: &[(usize, usize)], ends: usize| {
        for (i, &(at, head)) in recs.iter().enumerate() {
            let end = recs.get(i + 1).map_or(ends, |r| r.0);
            let rec = part
                .get_mut(at - base..end - base)
                .ok_or(Error::InvalidRequest(
                    "a record span lies outside its batch",
                ))?;
            super::record::seal_encoded(rec, head, cipher, batch_offset + at as u64)?;
        }
        Ok(())
    };
    let total = buf.len();
    let first = records.first().map_or(total, |r| r.0);
    let mid = records.partition_point(|r| r.0 - first < (total - first) / 2);
    if total - first < PARALLEL_SEAL_BYTES || mid == 0 || mid == records.len() {
        return seal_range(buf, 0, records, total);
    }
    let split = records[mid].0;
    let (left, right) = buf.split_at_mut(split);
    let (a, b) = records.split_at(mid);
    std::thread::scope(|s| {
        let other = s.spawn(|| seal_range(right, split, b, total));
        let mine = seal_range(left, 0, a, split);
        let theirs = other
            .join()
            .unwrap_or(Err(Error::InvalidRequest("the sealing thread panicked")));
        mine.and(theirs)
    })
}

/// Seals, in `buf` (a batch header and its plaintext records, written at `batch_offset`), the
/// records as one unit: encrypts them in place with the batch header as associated data, then
/// appends the tag and a checksum over the encrypted records and tag (which tells a torn write
/// from tampering, as a sealed record's checksum does).
fn seal_batch_body(buf: &mut Vec<u8>, cipher: &FileCipher, batch_offset: u64) -> Result<()> {
    if buf.len() <= BATCH_HEADER_LEN {
        return Err(Error::InvalidRequest("a batch to seal has no records"));
    }
    let (head, body) = buf.split_at_mut(BATCH_HEADER_LEN);
    let tag = cipher.seal(batch_offset, head, body)?;
    buf.extend_from_slice(&tag);
    let crc = crc32c(&buf[BATCH_HEADER_LEN..]);
    buf.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Validates every record and returns the batch body length.
fn body_len(records: &[RecordRef<'_>], sealed: bool) -> Result<u32> {
    if records.is_empty() {
        return Err(Error::InvalidRequest(
            "a log batch needs at least one record",
        ));
    }
    let mut total: u64 = 0;
    for rec in records {
        rec.validate()?;
        total += rec.encoded_len_in(sealed) as u64;
    }
    u32::try_from(total)
        .map_err(|_| Error::InvalidRequest("a log batch holds at most 4 GiB - 1 bytes of records"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FsStorage;
    use crate::log::testing::{build, recs, replay_all, FaultyStorage, TestRec};
    use crate::log::{read_header, replay, StopReason};
    use std::sync::atomic::Ordering;

    const WAL: LogKind = LogKind::Wal;

    fn refs(rs: &[TestRec]) -> Vec<RecordRef<'_>> {
        rs.iter().map(TestRec::as_ref).collect()
    }

    #[test]
    fn create_writes_a_synced_header_and_refuses_existing_files() {
        // Proves create leaves exactly a valid header at offset 48, refuses an existing path,
        // and refuses an encryption header before creating anything.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.mem");
        let w = LogWriter::create(&FsStorage, &path, LogHeader::new(WAL, 1)).unwrap();
        assert_eq!((w.offset(), w.synced_offset()), (48, 48));
        assert_eq!(w.file().len().unwrap(), 48);
        assert_eq!(
            read_header(w.file().as_ref(), WAL).unwrap(),
            Some(*w.header())
        );
        assert!(matches!(
            LogWriter::create(&FsStorage, &path, LogHeader::new(WAL, 1)),
            Err(Error::Io { .. })
        ));
        let other = dir.path().join("2.mem");
        let mut h = LogHeader::new(WAL, 2);
        h.base_iv[0] = 1;
        assert!(matches!(
            LogWriter::create(&FsStorage, &other, h),
            Err(Error::InvalidRequest(_))
        ));
        assert!(!other.exists());
    }

    #[test]
    fn invalid_batches_write_nothing_and_do_not_poison() {
        // Proves size/key/meta validation happens before the write: file and offsets stay,
        // the writer stays usable.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.vlog");
        let hdr = LogHeader::new(LogKind::ValueLog, 1);
        let mut w = LogWriter::create(&FsStorage, &path, hdr).unwrap();
        let mut pos = Vec::new();
        let good = TestRec::new(1, 10);
        let mut bad_key = good.clone();
        bad_key.key.truncate(5);
        let mut bad_meta = good.clone();
        bad_meta.meta = 0x20;
        let empty: [RecordRef<'_>; 0] = [];
        assert!(matches!(
            w.append_batch(&empty, &mut pos),
            Err(Error::InvalidRequest(_))
        ));
        let with_bad_key = [good.as_ref(), bad_key.as_ref()];
        assert!(matches!(
            w.append_batch(&with_bad_key, &mut pos),
            Err(Error::InvalidKey { .. })
        ));
        let with_bad_meta = [bad_meta.as_ref()];
        assert!(matches!(
            w.append_batch(&with_bad_meta, &mut pos),
            Err(Error::InvalidRequest(_))
        ));
        assert_eq!((w.offset(), w.file().len().unwrap()), (48, 48));
        assert!(w.poisoned().is_none());
        w.append_batch(&[good.as_ref()], &mut pos).unwrap();
        assert_eq!(pos[0].offset, 48 + 32);
        assert_eq!(pos[0].len as usize, good.as_ref().encoded_len());
    }

    #[test]
    fn each_batch_records_the_synced_offset_of_its_time() {
        // Proves batch headers carry the last completed sync, and sync is a no-op when
        // nothing is new.
        let b = build(
            WAL,
            &[
                (recs(0, 1), true),
                (recs(1, 1), false),
                (recs(2, 2), true),
                (recs(4, 1), false),
            ],
        );
        let file = FsStorage.open(&b.path, OpenMode::Read).unwrap();
        let mut synced = Vec::new();
        replay(file.as_ref(), WAL, |batch| {
            synced.push(batch.synced_offset());
            Ok(())
        })
        .unwrap();
        assert_eq!(synced, vec![48, b.offsets[1], b.offsets[1], b.offsets[3]]);
    }

    #[test]
    fn a_failed_write_poisons_the_writer() {
        // Proves rule 8 for writes: the first failure is returned, every later append and
        // sync is Poisoned naming it, and the half-written batch replays as a torn tail.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.mem");
        let storage = FaultyStorage::new();
        let mut w = LogWriter::create(&storage, &path, LogHeader::new(WAL, 1)).unwrap();
        let rs = recs(0, 3);
        let mut pos = Vec::new();
        w.append_batch(&refs(&rs), &mut pos).unwrap();
        w.sync().unwrap();
        let end = w.offset();
        storage.faults.writes_left.store(0, Ordering::SeqCst);
        let first = w.append_batch(&refs(&rs), &mut pos).unwrap_err();
        assert!(matches!(first, Error::Io { op: "write", .. }));
        storage
            .faults
            .writes_left
            .store(usize::MAX, Ordering::SeqCst);
        for r in [w.append_batch(&refs(&rs), &mut pos), w.sync()] {
            match r {
                Err(Error::Poisoned(msg)) => assert!(msg.contains("write at offset"), "{msg}"),
                other => panic!("expected Poisoned, got {other:?}"),
            }
        }
        assert_eq!(w.offset(), end);
        let (r, seen) = replay_all(w.file().as_ref(), WAL);
        assert_eq!(r.unwrap().stop, StopReason::TornTail { offset: end });
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn a_failed_sync_poisons_the_writer() {
        // Proves rule 8 for fsync: after one failed sync a later successful-looking sync is
        // impossible; appends and syncs are Poisoned even once the fault is gone.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.mem");
        let storage = FaultyStorage::new();
        let mut w = LogWriter::create(&storage, &path, LogHeader::new(WAL, 1)).unwrap();
        let rs = recs(0, 2);
        let mut pos = Vec::new();
        w.append_batch(&refs(&rs), &mut pos).unwrap();
        storage.faults.fail_sync.store(true, Ordering::SeqCst);
        assert!(matches!(w.sync(), Err(Error::Io { op: "sync", .. })));
        storage.faults.fail_sync.store(false, Ordering::SeqCst);
        assert!(matches!(w.sync(), Err(Error::Poisoned(_))));
        assert!(matches!(
            w.append_batch(&refs(&rs), &mut pos),
            Err(Error::Poisoned(_))
        ));
        assert_eq!(w.synced_offset(), 48);
        assert!(w.poisoned().is_some_and(|m| m.contains("sync")));
    }

    #[test]
    fn open_append_truncates_stale_bytes() {
        // Proves reopening at a replay end cuts everything after it: with three batches on
        // disk and an end after the first, a new batch replays right after the first.
        let b = build(
            WAL,
            &[(recs(0, 2), true), (recs(2, 3), true), (recs(5, 1), true)],
        );
        let file = FsStorage.open(&b.path, OpenMode::Read).unwrap();
        let mut end = replay(file.as_ref(), WAL, |_| Ok(())).unwrap();
        end.valid_end = b.offsets[1];
        end.stop = StopReason::TornTail {
            offset: b.offsets[1],
        };
        let mut w = LogWriter::open_append(&FsStorage, &b.path, WAL, &end).unwrap();
        assert_eq!(
            (w.offset(), w.synced_offset()),
            (b.offsets[1], b.offsets[1])
        );
        assert_eq!(w.file().len().unwrap(), b.offsets[1]);
        let new = recs(100, 1);
        let mut pos = Vec::new();
        w.append_batch(&refs(&new), &mut pos).unwrap();
        w.sync().unwrap();
        let (r, seen) = replay_all(file.as_ref(), WAL);
        let r = r.unwrap();
        assert_eq!(
            (r.stop, r.batches, r.valid_end),
            (StopReason::CleanEnd, 2, w.offset())
        );
        assert_eq!(seen[0].0, b.offsets[0]);
        assert_eq!(seen[1].1, vec![(pos[0], new[0].clone())]);
    }

    #[test]
    fn open_append_refuses_ends_that_do_not_fit_the_file() {
        // Proves an unborn end, another kind, another file's header, or a file shorter than
        // the end are refused with typed errors, before any write.
        let b = build(WAL, &[(recs(0, 2), true)]);
        let file = FsStorage.open(&b.path, OpenMode::Read).unwrap();
        let end = replay(file.as_ref(), WAL, |_| Ok(())).unwrap();
        let mut unborn = end;
        unborn.header = None;
        let open = |e: &ReplayEnd, kind| LogWriter::open_append(&FsStorage, &b.path, kind, e);
        assert!(matches!(open(&unborn, WAL), Err(Error::InvalidRequest(_))));
        assert!(matches!(
            open(&end, LogKind::ValueLog),
            Err(Error::InvalidRequest(_))
        ));
        let mut foreign = end;
        foreign.header = Some(LogHeader::new(WAL, 77));
        assert!(matches!(open(&foreign, WAL), Err(Error::InvalidRequest(_))));
        let mut long = end;
        long.valid_end += 1;
        assert!(matches!(open(&long, WAL), Err(Error::Corruption { .. })));
        assert_eq!(file.len().unwrap(), end.valid_end);
    }

    #[test]
    fn a_large_batch_is_written_in_chunks_and_replays_as_one() {
        // Proves a plaintext batch over WRITE_CHUNK_BYTES goes out in several writes (counted
        // by the storage), every record reads back at its position, replay sees one batch,
        // and `last_batch` gives nothing for it but a small batch's exact bytes; a write
        // failing after the first chunk poisons the writer and leaves a torn tail where the
        // batch began.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.vlog");
        let storage = FaultyStorage::new();
        let hdr = LogHeader::new(LogKind::ValueLog, 1);
        let mut w = LogWriter::create(&storage, &path, hdr).unwrap();
        // 40 records of 20,000 bytes: chunks of about WRITE_CHUNK_BYTES, then the rest.
        let big: Vec<TestRec> = (0..40).map(|i| TestRec::new(i, 20_000)).collect();
        let mut pos = Vec::new();
        const BUDGET: usize = 1_000_000; // writes the storage lets through, counted down
        storage.faults.writes_left.store(BUDGET, Ordering::SeqCst);
        let writes = |s: &FaultyStorage| BUDGET - s.faults.writes_left.load(Ordering::SeqCst);
        let start = w.offset();
        w.append_batch(&refs(&big), &mut pos).unwrap();
        // The writes a chunked batch takes, from its layout: a chunk ends after the record
        // that brings it to WRITE_CHUNK_BYTES.
        let (mut chunk, mut chunks, mut first_chunk) = ((pos[0].offset - start) as usize, 0, 0);
        for p in &pos {
            chunk += p.len as usize;
            if chunk >= WRITE_CHUNK_BYTES {
                chunks += 1;
                first_chunk = if first_chunk == 0 { chunk } else { first_chunk };
                chunk = 0;
            }
        }
        assert!(chunks >= 2, "{chunks}");
        assert_eq!(writes(&storage), chunks + 1);
        assert!(w.last_batch().is_none());
        for (p, r) in pos.iter().zip(&big) {
            let got = crate::log::read_record(w.file().as_ref(), *p).unwrap();
            assert_eq!(got.value(), &r.value[..]);
        }
        let small = recs(100, 2);
        let start = w.offset();
        w.append_batch(&refs(&small), &mut pos).unwrap();
        let (at, bytes) = w.last_batch().unwrap();
        assert_eq!(at, start);
        let mut on_disk = vec![0u8; bytes.len()];
        w.file().read_at(at, &mut on_disk).unwrap();
        assert_eq!(bytes, &on_disk[..]);
        w.sync().unwrap();
        let (r, seen) = replay_all(w.file().as_ref(), LogKind::ValueLog);
        assert_eq!((r.unwrap().stop, seen.len()), (StopReason::CleanEnd, 2));
        assert_eq!(seen[0].1.len(), 40);
        let end = w.offset();
        storage.faults.writes_left.store(1, Ordering::SeqCst);
        let e = w.append_batch(&refs(&big), &mut pos).unwrap_err();
        assert!(matches!(e, Error::Io { op: "write", .. }), "{e}");
        let second = end + first_chunk as u64; // where the failed write went
        let msg = w.poisoned().unwrap().to_string();
        assert!(msg.contains(&format!("offset {second}")), "{msg}");
        assert!(matches!(
            w.append_batch(&refs(&small), &mut pos),
            Err(Error::Poisoned(_))
        ));
        assert_eq!(w.offset(), end);
        let (r, seen) = replay_all(w.file().as_ref(), LogKind::ValueLog);
        assert_eq!(r.unwrap().stop, StopReason::TornTail { offset: end });
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_huge_batch_buffer_is_released() {
        // Proves the reused batch buffer does not keep a multi-MiB capacity after a big value.
        let dir = tempfile::tempdir().unwrap();
        let hdr = LogHeader::new(LogKind::ValueLog, 1);
        let mut w = LogWriter::create(&FsStorage, &dir.path().join("1.vlog"), hdr).unwrap();
        let big = TestRec::new(1, LogWriter::RETAINED_BUFFER_BYTES + 1);
        let mut pos = Vec::new();
        w.append_batch(&[big.as_ref()], &mut pos).unwrap();
        assert!(w.buf.capacity() <= LogWriter::RETAINED_BUFFER_BYTES);
        let got = crate::log::read_record(w.file().as_ref(), pos[0]).unwrap();
        assert_eq!(got.value(), &big.value[..]);
    }
}

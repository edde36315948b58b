//! Random reads of a log: its header, and one record by position (a value pointer).
//!
//! ```text
//! record at RecordPos { offset, len } := exactly `len` bytes of one record (record.rs)
//! ```
//!
//! Normative page: docs/format/log.md ("Reading one record").

use super::format::{LogHeader, LogKind, FIRST_RECORD_OFFSET};
use super::record::{
    FreshVec, OwnedRecord, RecordAlloc, RecordPos, MAX_RECORD_LEN, MIN_RECORD_LEN,
};
use super::replay::read_header_in;
use super::window::Window;
use crate::crypto::FileCipher;
use crate::error::{Error, Result};
use crate::io::{Mapping, StorageFile};

/// Reads and checks the header of `file`, expecting kind `expected`; `None` if the file is
/// unborn (see [`super::StopReason::Unborn`]). For opening a log that needs no replay (a
/// sealed value-log file).
pub fn read_header(file: &dyn StorageFile, expected: LogKind) -> Result<Option<LogHeader>> {
    read_header_in(&mut Window::new(file, file.len()?), expected)
}

/// Reads the record at `pos` (a value pointer's target), checking it against the file length
/// first. See [`read_record_at`].
#[cfg(any(test, feature = "testing"))]
pub fn read_record(file: &dyn StorageFile, pos: RecordPos) -> Result<OwnedRecord> {
    read_record_at(file, file.len()?, pos, None)
}

/// Reads the record at `pos` of `file`, whose length the caller knows is `file_len` (saves a
/// `stat` per read on a sealed file).
///
/// REQUIRES: the file's header was checked when it was opened ([`read_header`] or replay).
/// Every failure is typed and names the file and `pos.offset`: a position below the first
/// record, a length outside `[MIN_RECORD_LEN, MAX_RECORD_LEN]` or past `file_len` is
/// [`Error::Corruption`] (nothing is read or allocated); bytes that are not exactly one
/// record of `pos.len` bytes are [`Error::Corruption`], a bad record checksum
/// [`Error::ChecksumMismatch`]. In an encrypted log (`cipher`, from its header), a record
/// whose checksum holds but whose bytes do not authenticate is [`Error::Authentication`].
pub fn read_record_at(
    file: &dyn StorageFile,
    file_len: u64,
    pos: RecordPos,
    cipher: Option<&FileCipher>,
) -> Result<OwnedRecord> {
    read_copied_record_at(file, file_len, pos, cipher, FreshVec, |_, _, _| None)
}

/// [`read_record_at`] from `mapped`, a mapping of the file's first `mapped.len()` bytes (all
/// of them the caller may read): the same checks and errors, with no system call. The record
/// is copied into a buffer from `alloc`. A read the mapping cannot serve (a disk error or a
/// truncation under it, caught as `SIGBUS`: [`Mapping::read_with`]) is made again with
/// `read_at`, which reports what went wrong.
pub fn read_mapped_record_at<A: RecordAlloc>(
    file: &dyn StorageFile,
    mapped: &Mapping,
    pos: RecordPos,
    cipher: Option<&FileCipher>,
    alloc: A,
) -> Result<OwnedRecord<A::Buf>> {
    read_copied_record_at(
        file,
        mapped.len() as u64,
        pos,
        cipher,
        alloc,
        |a, start, len| {
            let start = usize::try_from(start).ok()?;
            mapped.read_with(start, len, |bytes| a.copy_of(bytes))
        },
    )
}

/// [`read_record_at`] where `copy` may serve the record's bytes from memory (a mapping, or
/// batches kept since they were written): it gets the allocator, the record's offset and
/// length (already checked against `file_len`), and returns the bytes copied into a buffer
/// from the allocator, or `None` to have them read with `read_at`. The record is decoded and
/// checked the same way either way.
pub fn read_copied_record_at<A: RecordAlloc>(
    file: &dyn StorageFile,
    file_len: u64,
    pos: RecordPos,
    cipher: Option<&FileCipher>,
    mut alloc: A,
    copy: impl FnOnce(&mut A, u64, usize) -> Option<A::Buf>,
) -> Result<OwnedRecord<A::Buf>> {
    let len = check_position(file, file_len, pos)?;
    let buf = match copy(&mut alloc, pos.offset, len) {
        Some(buf) => buf,
        None => {
            let mut buf = alloc.zeroed(len);
            file.read_at(pos.offset, buf.as_mut())?;
            buf
        }
    };
    decode_record(file, buf, pos, cipher)
}

/// The record length of `pos` if it can be a record of a file of `file_len` bytes.
fn check_position(file: &dyn StorageFile, file_len: u64, pos: RecordPos) -> Result<usize> {
    let bad = |why: String| Error::corruption(file.path(), pos.offset, why);
    if pos.offset < FIRST_RECORD_OFFSET {
        return Err(bad(format!(
            "record position below the first record offset {FIRST_RECORD_OFFSET}"
        )));
    }
    if !(MIN_RECORD_LEN as u64..=u64::from(MAX_RECORD_LEN)).contains(&u64::from(pos.len)) {
        return Err(bad(format!("record length {} is out of range", pos.len)));
    }
    match pos.offset.checked_add(u64::from(pos.len)) {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(bad(format!(
                "record of {} bytes runs past the end of the file ({file_len} bytes)",
                pos.len
            )))
        }
    }
    usize::try_from(pos.len).map_err(|_| bad("record length overflows".into()))
}

/// Decodes the bytes read for the record at `pos`.
fn decode_record<B: AsRef<[u8]> + AsMut<[u8]>>(
    file: &dyn StorageFile,
    buf: B,
    pos: RecordPos,
    cipher: Option<&FileCipher>,
) -> Result<OwnedRecord<B>> {
    OwnedRecord::from_encoded_in(buf, cipher.map(|c| (c, pos.offset)))
        .map_err(|e| e.into_error(file.path(), pos.offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FsStorage, OpenMode, Storage};
    use crate::log::testing::{build, recs, MemFile, TestRec};

    fn offset_of(r: Result<OwnedRecord>) -> Option<(bool, u64)> {
        match r {
            Err(Error::Corruption { offset, .. }) => Some((false, offset)),
            Err(Error::ChecksumMismatch { offset, .. }) => Some((true, offset)),
            _ => None,
        }
    }

    #[test]
    fn reads_each_record_by_position() {
        // Proves every position the writer returned reads back its record on a real file.
        let b = build(
            LogKind::ValueLog,
            &[(recs(0, 4), true), (recs(4, 2), false)],
        );
        let f = FsStorage.open(&b.path, OpenMode::Read).unwrap();
        let all: Vec<TestRec> = recs(0, 6);
        let positions = b.positions.concat();
        for (pos, want) in positions.iter().zip(&all) {
            let got = read_record(f.as_ref(), *pos).unwrap();
            assert_eq!(&TestRec::from_ref(&got.as_record()), want);
        }
        assert_eq!(
            read_header(f.as_ref(), LogKind::ValueLog)
                .unwrap()
                .unwrap()
                .file_id,
            1
        );
    }

    #[test]
    fn bad_positions_are_typed_corruption_at_the_offset() {
        // Proves out-of-range positions are refused before reading (nothing past the file is
        // read), wrong lengths and misaligned offsets are Corruption, and a damaged record is
        // ChecksumMismatch, all naming the pointer's offset.
        let b = build(LogKind::ValueLog, &[(recs(0, 3), true)]);
        let mut bytes = b.bytes();
        let f = MemFile::new(bytes.clone());
        let p = b.positions[0][1];
        let len = bytes.len() as u64;
        let at = |offset, n| RecordPos { offset, len: n };
        let cases = [
            at(FIRST_RECORD_OFFSET - 1, p.len),
            at(p.offset, MIN_RECORD_LEN as u32 - 1),
            at(p.offset, MAX_RECORD_LEN),
            at(p.offset, u32::MAX),
            at(len - 10, 20),
            at(u64::MAX - 5, 20),
            at(p.offset, p.len - 1),
            at(p.offset, p.len + 1),
            at(p.offset + 1, p.len),
        ];
        for pos in cases {
            assert_eq!(
                offset_of(read_record(&f, pos)),
                Some((false, pos.offset)),
                "{pos:?}"
            );
        }
        assert!(f.max_read() <= bytes.len());
        bytes[p.offset as usize + 5] ^= 1;
        let damaged = MemFile::new(bytes);
        assert_eq!(offset_of(read_record(&damaged, p)), Some((true, p.offset)));
        assert!(read_record(&damaged, b.positions[0][0]).is_ok());
    }

    #[test]
    fn read_header_reports_unborn_and_wrong_kind() {
        // Proves read_header is None for an unborn file and Corruption for the wrong kind.
        assert_eq!(
            read_header(&MemFile::new(vec![0; 10]), LogKind::Wal).unwrap(),
            None
        );
        let b = build(LogKind::Wal, &[(recs(0, 1), true)]);
        let f = MemFile::new(b.bytes());
        assert!(matches!(
            read_header(&f, LogKind::ValueLog),
            Err(Error::Corruption { offset: 0, .. })
        ));
    }
}

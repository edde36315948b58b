//! Random reads of a log: its header, and one record by position (a value pointer).
//!
//! ```text
//! record at RecordPos { offset, len } := exactly `len` bytes of one record (record.rs)
//! ```
//!
//! Normative page: docs/format/log.md ("Reading one record").

use super::format::{LogHeader, LogKind, FIRST_RECORD_OFFSET};
use super::record::{OwnedRecord, RecordPos, MAX_RECORD_LEN, MIN_RECORD_LEN};
use super::replay::read_header_in;
use super::window::Window;
use crate::error::{Error, Result};
use crate::io::StorageFile;

/// Reads and checks the header of `file`, expecting kind `expected`; `None` if the file is
/// unborn (see [`super::StopReason::Unborn`]). For opening a log that needs no replay (a
/// sealed value-log file).
pub fn read_header(file: &dyn StorageFile, expected: LogKind) -> Result<Option<LogHeader>> {
    read_header_in(&mut Window::new(file, file.len()?), expected)
}

/// Reads the record at `pos` (a value pointer's target), checking it against the file length
/// first. See [`read_record_at`].
pub fn read_record(file: &dyn StorageFile, pos: RecordPos) -> Result<OwnedRecord> {
    read_record_at(file, file.len()?, pos)
}

/// Reads the record at `pos` of `file`, whose length the caller knows is `file_len` (saves a
/// `stat` per read on a sealed file).
///
/// REQUIRES: the file's header was checked when it was opened ([`read_header`] or replay).
/// Every failure is typed and names the file and `pos.offset`: a position below the first
/// record, a length outside `[MIN_RECORD_LEN, MAX_RECORD_LEN]` or past `file_len` is
/// [`Error::Corruption`] (nothing is read or allocated); bytes that are not exactly one
/// record of `pos.len` bytes are [`Error::Corruption`], a bad record checksum
/// [`Error::ChecksumMismatch`].
pub fn read_record_at(file: &dyn StorageFile, file_len: u64, pos: RecordPos) -> Result<OwnedRecord> {
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
    let len = usize::try_from(pos.len).map_err(|_| bad("record length overflows".into()))?;
    let buf = file.read_vec_at(pos.offset, len)?;
    OwnedRecord::from_encoded(buf).map_err(|e| e.into_error(file.path(), pos.offset))
}

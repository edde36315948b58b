//! Checking one batch (header and every record) and the view replay hands out.
//!
//! ```text
//! batch := batch_header (32 bytes, format.rs) record{count}  (exactly body_len bytes)
//! ```
//!
//! Normative page: docs/format/log.md ("Reading: replay").

use super::format::{BatchHeader, LogHeader, LogKind, BATCH_HEADER_LEN, CHECKSUM_LEN};
use super::record::{
    parse_record, unseal_record, DecodeError, RecordPos, RecordRef, MIN_RECORD_LEN,
};
use super::seal::is_seal_record;
use super::window::Window;
use crate::checksum::crc32c;
use crate::crypto::{FileCipher, TAG_LEN};
use crate::error::{Error, Result};

/// A decoded record's fields and where its key and value lie in the batch body. Plain data,
/// so replay reuses one vector of them for every batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    meta: u8,
    user_meta: u8,
    expires_at: u64,
    key_at: usize,
    key_len: usize,
    value_len: usize,
    pos: RecordPos,
}

impl Slot {
    fn resolve<'a>(&self, body: &'a [u8]) -> (RecordPos, RecordRef<'a>) {
        // The ranges were produced by decoding this very body; `get` keeps this total anyway.
        let value_at = self.key_at + self.key_len;
        let key = body.get(self.key_at..value_at).unwrap_or_default();
        let value = body
            .get(value_at..value_at + self.value_len)
            .unwrap_or_default();
        let rec = RecordRef {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            key,
            value,
        };
        (self.pos, rec)
    }
}

/// One valid batch, as replay hands it to its callback: all of its records decoded and
/// checked. Borrows replay's buffers; copy out what must outlive the callback.
#[derive(Debug)]
pub struct ReplayBatch<'a> {
    offset: u64,
    header: BatchHeader,
    body: &'a [u8],
    slots: &'a [Slot],
}

impl<'a> ReplayBatch<'a> {
    /// File offset of the batch header (where it was read).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The offset the writer put the batch at, as its header records it (equal to
    /// [`ReplayBatch::offset`] for a batch in place; different for one that damage moved).
    pub fn written_offset(&self) -> u64 {
        self.header.batch_offset
    }

    /// File offset just past the batch.
    pub fn end(&self) -> u64 {
        self.offset + self.header.batch_len()
    }

    /// The offset up to which the writer had synced when it wrote this batch.
    pub fn synced_offset(&self) -> u64 {
        self.header.synced_offset
    }

    /// Number of records (at least 1).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: a valid batch holds at least one record.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `i`-th record and its position.
    pub fn get(&self, i: usize) -> Option<(RecordPos, RecordRef<'a>)> {
        Some(self.slots.get(i)?.resolve(self.body))
    }

    /// The records in file order, each with its position.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (RecordPos, RecordRef<'a>)> + '_ {
        let body = self.body;
        self.slots.iter().map(move |s| s.resolve(body))
    }
}

/// The buffers replay reuses for every batch: the record slots, and the decrypted copy of an
/// encrypted batch's body.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    slots: Vec<Slot>,
    plain: Vec<u8>,
}

/// Where a batch must have been written to be valid at the position it is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// At this very position (replay's in-order reading).
    InPlace,
    /// Anywhere (recovery's forward scan, looking for batches that damage moved).
    Anywhere,
}

/// The cipher of an encrypted log and how its header says it seals (docs/format/log.md).
#[derive(Clone, Copy, Debug)]
pub struct LogCipher<'a> {
    /// The log's file cipher.
    pub cipher: &'a FileCipher,
    /// Each batch's records sealed as one unit (a WAL: flags bit 1), else each record.
    pub whole_batches: bool,
}

impl<'a> LogCipher<'a> {
    /// The sealing of a log with `header`, whose file cipher is `cipher`.
    pub fn of(header: &LogHeader, cipher: &'a FileCipher) -> Self {
        LogCipher {
            cipher,
            whole_batches: header.sealed_batches,
        }
    }
}

/// Reads and fully checks the batch at `offset` of a log of `kind` with id `file_id`.
///
/// `Ok(Ok(batch))` if it is valid (its slots are left in `scratch`), `Ok(Err(reason))` if not,
/// `Err` for an I/O failure and, in place, for a record or batch of an encrypted log (`cipher`)
/// whose checksum holds but whose encrypted bytes do not authenticate
/// ([`Error::Authentication`]: changed bytes, not a torn write). Lengths are checked against
/// the file before anything is read or reserved, so the buffers never outgrow the file.
pub(crate) fn check_batch<'w>(
    win: &'w mut Window<'_>,
    (kind, file_id): (LogKind, u64),
    offset: u64,
    placement: Placement,
    scratch: &'w mut Scratch,
    cipher: Option<LogCipher<'_>>,
) -> Result<Result<ReplayBatch<'w>, String>> {
    let avail = win.file_len().saturating_sub(offset);
    if avail < BATCH_HEADER_LEN as u64 {
        return Ok(Err("batch header cut short by the end of the file".into()));
    }
    // Kept whole: a sealed batch authenticates its header bytes.
    let Ok(raw_header) = <[u8; BATCH_HEADER_LEN]>::try_from(win.get(offset, BATCH_HEADER_LEN)?)
    else {
        return Ok(Err("batch header cut short by the end of the file".into()));
    };
    let header = match BatchHeader::decode(&raw_header, kind, file_id) {
        Ok(h) => h,
        Err(reason) => return Ok(Err(reason.into())),
    };
    if placement == Placement::InPlace && header.batch_offset != offset {
        return Ok(Err(format!(
            "the batch here was written at offset {}: bytes were inserted or removed before it",
            header.batch_offset
        )));
    }
    if header.batch_len() > avail {
        return Ok(Err(format!(
            "batch body of {} bytes runs past the end of the file",
            header.body_len
        )));
    }
    let body_len = header.body_len as usize;
    if header.count as usize > body_len / MIN_RECORD_LEN {
        return Ok(Err(format!(
            "{} records cannot fit {body_len} bytes",
            header.count
        )));
    }
    let body_offset = offset + BATCH_HEADER_LEN as u64;
    let file = win.file();
    let body = win.get(body_offset, body_len)?;
    let Scratch { slots, plain } = scratch;
    // The seal is plaintext in every log (it holds no user bytes); in an encrypted log a
    // one-record body that parses as a plaintext seal can be nothing else (a sealed record
    // or batch with the seal's lengths is at least TAG_LEN bytes longer).
    let cipher = cipher.filter(|_| !is_plain_seal(body, header.count));
    if let Some(c) = cipher.filter(|c| c.whole_batches) {
        // Nonces use the offset the batch was written at.
        return match open_batch_body(body, &raw_header, &header, c.cipher, plain) {
            Err(reason) => Ok(Err(reason)),
            Ok(false) if placement == Placement::InPlace => {
                Err(Error::authentication(file.path(), offset))
            }
            Ok(false) => Ok(Err(format!(
                "batch at offset {offset} does not authenticate"
            ))),
            Ok(true) => match decode_body(plain, body_offset, header.count, slots, false) {
                Ok(()) => Ok(Ok(ReplayBatch {
                    offset,
                    header,
                    body: plain,
                    slots,
                })),
                // Authentic bytes the writer sealed, yet not records: not a torn write.
                Err(reason) if placement == Placement::InPlace => {
                    Err(Error::corruption(file.path(), offset, reason))
                }
                Err(reason) => Ok(Err(reason)),
            },
        };
    }
    if let Err(reason) = decode_body(body, body_offset, header.count, slots, cipher.is_some()) {
        return Ok(Err(reason));
    }
    let body: &'w [u8] = match cipher {
        None => body,
        Some(c) => {
            plain.clear();
            plain.extend_from_slice(body);
            // Nonces use the offsets the records were written at.
            let shift = header.batch_offset.wrapping_sub(offset);
            if let Err(at) = unseal_body(plain, body_offset, slots, c.cipher, shift) {
                if placement == Placement::InPlace {
                    return Err(Error::authentication(file.path(), at));
                }
                return Ok(Err(format!("record at offset {at} does not authenticate")));
            }
            plain
        }
    };
    Ok(Ok(ReplayBatch {
        offset,
        header,
        body,
        slots,
    }))
}

/// Decrypts a sealed batch body (`body`: encrypted records, tag, checksum; `raw_header` its
/// batch header's bytes) into `plain`. `Err(reason)` if the bytes are not an intact sealed body
/// (too short, or the checksum fails: a torn or damaged write); `Ok(false)` if they are intact
/// but do not authenticate (changed by someone who recomputed the checksum, or another key's).
fn open_batch_body(
    body: &[u8],
    raw_header: &[u8; BATCH_HEADER_LEN],
    header: &BatchHeader,
    cipher: &FileCipher,
    plain: &mut Vec<u8>,
) -> Result<bool, String> {
    let short = || format!("a sealed batch body of {} bytes", body.len());
    let covered_len = body.len().checked_sub(CHECKSUM_LEN).ok_or_else(short)?;
    let records_len = covered_len.checked_sub(TAG_LEN).ok_or_else(short)?;
    let (covered, crc) = body.split_at(covered_len);
    let stored = u32::from_le_bytes(crc.try_into().map_err(|_| short())?);
    if crc32c(covered) != stored {
        return Err("sealed batch checksum mismatch".into());
    }
    let (sealed, tag) = covered.split_at(records_len);
    plain.clear();
    plain.extend_from_slice(sealed);
    Ok(cipher.open(header.batch_offset, raw_header, plain, tag))
}

/// True if `body` is exactly one plaintext seal record.
fn is_plain_seal(body: &[u8], count: u32) -> bool {
    count == 1
        && matches!(parse_record(body, false), Ok(l) if l.used == body.len()
            && is_seal_record(&l.resolve(body)))
}

/// Decrypts in place every record of `body` (read at `body_offset`, written `shift` bytes
/// later) that `slots` describe; `Err(offset)` names the first that does not authenticate.
fn unseal_body(
    body: &mut [u8],
    body_offset: u64,
    slots: &[Slot],
    cipher: &FileCipher,
    shift: u64,
) -> Result<(), u64> {
    for s in slots {
        let start = (s.pos.offset - body_offset) as usize;
        let end = start + s.pos.len as usize;
        let layout = super::record::Layout {
            meta: s.meta,
            user_meta: s.user_meta,
            expires_at: s.expires_at,
            key_at: s.key_at - start,
            key_len: s.key_len,
            value_len: s.value_len,
            used: s.pos.len as usize,
        };
        let rec = body.get_mut(start..end).ok_or(s.pos.offset)?;
        unseal_record(rec, &layout, cipher, s.pos.offset.wrapping_add(shift))
            .map_err(|_: DecodeError| s.pos.offset)?;
    }
    Ok(())
}

/// Decodes exactly `count` records (`sealed`: with tags, still encrypted) filling all of
/// `body` into `slots`.
fn decode_body(
    body: &[u8],
    body_offset: u64,
    count: u32,
    slots: &mut Vec<Slot>,
    sealed: bool,
) -> Result<(), String> {
    slots.clear();
    // Bounded: the caller checked count <= body_len / MIN_RECORD_LEN, body within the file.
    slots.reserve(count as usize);
    let mut at = 0usize;
    for i in 0..count {
        let rest = body.get(at..).unwrap_or_default();
        let record_offset = body_offset + at as u64;
        let l = parse_record(rest, sealed)
            .map_err(|e| format!("record {i} at offset {record_offset}: {e}"))?;
        let used = l.used;
        slots.push(Slot {
            meta: l.meta,
            user_meta: l.user_meta,
            expires_at: l.expires_at,
            key_at: at + l.key_at,
            key_len: l.key_len,
            value_len: l.value_len,
            pos: RecordPos {
                offset: record_offset,
                len: used as u32, // a decoded record is at most MAX_RECORD_LEN, a u32
            },
        });
        at += used;
    }
    if at != body.len() {
        return Err(format!(
            "{count} records end {at} bytes into a batch body of {} bytes",
            body.len()
        ));
    }
    Ok(())
}

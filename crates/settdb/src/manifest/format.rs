//! The framing of the MANIFEST: its file header and its checksummed records.
//!
//! ```text
//! file_header := magic u32 | format_version u16 | external_magic u16 | header_crc u32   12 bytes
//! record      := len u32 | body_crc u32 | header_crc u32 | body                          12 + len
//!     body_crc   = crc32c(body)
//!     header_crc = crc32c(record_offset u64 | len | body_crc)
//! ```
//!
//! All little-endian. The body is a change set (`change.rs`). Normative page, with what a reader
//! does on each kind of bad input: docs/format/manifest.md.

use crate::checksum::crc32c;
use crate::coding::{self, Reader};

/// Name of the manifest file in the database directory.
pub const MANIFEST_FILE_NAME: &str = "MANIFEST";
/// Temporary name of a manifest being written from scratch (create or rewrite).
pub const MANIFEST_REWRITE_FILE_NAME: &str = "MANIFEST-REWRITE";

/// First four bytes of every MANIFEST: "SDBM".
pub const MANIFEST_MAGIC: u32 = u32::from_le_bytes(*b"SDBM");
/// The format version this build writes and the newest it reads.
pub const MANIFEST_FORMAT_VERSION: u16 = 2;

const MAGIC_LEN: usize = 4;
const VERSION_LEN: usize = 2;
const EXTERNAL_MAGIC_LEN: usize = 2;
const CRC_LEN: usize = 4;
/// Bytes of the file header covered by its checksum.
const FILE_HEADER_CHECKED_LEN: usize = MAGIC_LEN + VERSION_LEN + EXTERNAL_MAGIC_LEN;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: usize = FILE_HEADER_CHECKED_LEN + CRC_LEN;

const LEN_FIELD_LEN: usize = 4;
/// Bytes of a record header covered by its header checksum (`len | body_crc`).
const RECORD_HEADER_CHECKED_LEN: usize = LEN_FIELD_LEN + CRC_LEN;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = RECORD_HEADER_CHECKED_LEN + CRC_LEN;

/// Smallest record body: a change set's count alone.
pub const MIN_RECORD_BODY_LEN: usize = 1;
/// Largest record body a writer produces and a reader accepts (64 MiB, about 2.9 million
/// changes of the largest size). Snapshots are split into records well below it.
pub const MAX_RECORD_BODY_LEN: usize = 1 << 26;

/// The decoded fields of a file header (not yet compared with what the opener expects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// Format version found.
    pub format_version: u16,
    /// External magic found.
    pub external_magic: u16,
}

/// Why a file header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileHeaderError {
    /// Fewer than [`FILE_HEADER_LEN`] bytes.
    Short,
    /// The magic is not [`MANIFEST_MAGIC`].
    BadMagic(u32),
    /// The header checksum does not match.
    BadChecksum,
}

/// The file header for a manifest stamped with `external_magic`.
pub fn encode_file_header(external_magic: u16) -> [u8; FILE_HEADER_LEN] {
    let mut out = Vec::with_capacity(FILE_HEADER_LEN);
    coding::put_u32(&mut out, MANIFEST_MAGIC);
    coding::put_u16(&mut out, MANIFEST_FORMAT_VERSION);
    coding::put_u16(&mut out, external_magic);
    let crc = crc32c(&out);
    coding::put_u32(&mut out, crc);
    let mut header = [0u8; FILE_HEADER_LEN];
    header.copy_from_slice(&out);
    header
}

/// Decodes the file header at the start of `bytes`, checking magic and checksum only.
pub fn decode_file_header(bytes: &[u8]) -> Result<FileHeader, FileHeaderError> {
    let mut r = Reader::new(bytes);
    let (Some(magic), Some(format_version), Some(external_magic), Some(stored)) =
        (r.u32(), r.u16(), r.u16(), r.u32())
    else {
        return Err(FileHeaderError::Short);
    };
    if magic != MANIFEST_MAGIC {
        return Err(FileHeaderError::BadMagic(magic));
    }
    let checked = bytes
        .get(..FILE_HEADER_CHECKED_LEN)
        .ok_or(FileHeaderError::Short)?;
    if crc32c(checked) != stored {
        return Err(FileHeaderError::BadChecksum);
    }
    Ok(FileHeader {
        format_version,
        external_magic,
    })
}

/// Appends one record framing `body`, to be written at file offset `record_offset`.
///
/// REQUIRES: `MIN_RECORD_BODY_LEN <= body.len() <= MAX_RECORD_BODY_LEN` (the writer checks).
pub fn encode_record(out: &mut Vec<u8>, body: &[u8], record_offset: u64) {
    debug_assert!((MIN_RECORD_BODY_LEN..=MAX_RECORD_BODY_LEN).contains(&body.len()));
    let start = out.len();
    // The bound above makes the length fit in a u32; saturate rather than cast regardless.
    coding::put_u32(out, u32::try_from(body.len()).unwrap_or(u32::MAX));
    coding::put_u32(out, crc32c(body));
    let header_crc = header_crc(
        record_offset,
        &out[start..start + RECORD_HEADER_CHECKED_LEN],
    );
    coding::put_u32(out, header_crc);
    out.extend_from_slice(body);
    debug_assert_eq!(out.len() - start, RECORD_HEADER_LEN + body.len());
}

/// A record header whose checksum matched and whose length is within bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Length of the body in bytes.
    pub body_len: usize,
    /// Checksum the body must have.
    pub body_crc: u32,
}

/// The header checksum of a record at `record_offset`: seeded with the offset, so a record
/// is valid only where it was written (a region copied elsewhere, or moved by inserted or
/// removed bytes, is damage, not records).
fn header_crc(record_offset: u64, checked: &[u8]) -> u32 {
    crate::checksum::crc32c_extend(crc32c(&record_offset.to_le_bytes()), checked)
}

/// Decodes the header of the record at file offset `record_offset`, at the start of `bytes`;
/// `None` if fewer than [`RECORD_HEADER_LEN`] bytes, a header-checksum mismatch (damage, or a
/// record written elsewhere), or a length out of bounds.
pub fn decode_record_header(bytes: &[u8], record_offset: u64) -> Option<RecordHeader> {
    let checked = bytes.get(..RECORD_HEADER_CHECKED_LEN)?;
    let mut r = Reader::new(bytes);
    let (len, body_crc, stored) = (r.u32()?, r.u32()?, r.u32()?);
    if header_crc(record_offset, checked) != stored {
        return None;
    }
    let body_len = usize::try_from(len).ok()?;
    if !(MIN_RECORD_BODY_LEN..=MAX_RECORD_BODY_LEN).contains(&body_len) {
        return None;
    }
    Some(RecordHeader { body_len, body_crc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_explicit_little_endian() {
        // Proves the file header bytes: "SDBM", version 2 LE, external magic LE, crc of the 8.
        let h = encode_file_header(0x0102);
        assert_eq!(&h[..8], b"SDBM\x02\x00\x02\x01");
        assert_eq!(coding::get_u32(&h, 8), Some(crc32c(&h[..8])));
        assert_eq!(
            decode_file_header(&h),
            Ok(FileHeader {
                format_version: 2,
                external_magic: 0x0102
            })
        );
    }

    #[test]
    fn header_damage_is_classified() {
        // Proves short input, wrong magic and a flipped checksummed bit are each refused.
        let h = encode_file_header(7);
        assert_eq!(decode_file_header(&h[..11]), Err(FileHeaderError::Short));
        let mut bad = h;
        bad[0] ^= 1;
        assert!(matches!(
            decode_file_header(&bad),
            Err(FileHeaderError::BadMagic(_))
        ));
        let mut bad = h;
        bad[6] ^= 1;
        assert_eq!(decode_file_header(&bad), Err(FileHeaderError::BadChecksum));
    }

    #[test]
    fn record_header_round_trips_and_refuses_bad_lengths() {
        // Proves a record's header decodes to its body length only at the offset it was
        // written for, and that every single-bit flip in the header is refused (so a damaged
        // length is never trusted).
        let mut rec = Vec::new();
        encode_record(&mut rec, b"\x01\x02\x07", 40);
        assert_eq!(rec.len(), RECORD_HEADER_LEN + 3);
        assert_eq!(decode_record_header(&rec, 41), None);
        assert_eq!(decode_record_header(&rec, 12), None);
        let h = decode_record_header(&rec, 40).unwrap();
        assert_eq!(h.body_len, 3);
        assert_eq!(h.body_crc, crc32c(b"\x01\x02\x07"));
        for bit in 0..RECORD_HEADER_LEN * 8 {
            let mut bad = rec.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode_record_header(&bad, 40), None, "bit {bit}");
        }
        assert_eq!(decode_record_header(&[0u8; RECORD_HEADER_LEN], 40), None);
        assert_eq!(
            decode_record_header(&rec[..RECORD_HEADER_LEN - 1], 40),
            None
        );
    }
}

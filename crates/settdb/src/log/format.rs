//! The fixed-layout parts of a log file: the file header and the batch header.
//!
//! ```text
//! file_header  := magic u32 | format_version u16 | kind u8 | flags u8 | file_id u64
//!                 | key_id u64 | base_iv [12] | reserved [8] | crc32c(bytes 0..44) u32   48 bytes
//! batch_header := batch_magic u32 | count u32 | body_len u32 | batch_offset u64
//!                 | synced_offset u64 | crc32c(kind u8 | file_id u64 | bytes 0..28) u32   32 bytes
//! ```
//!
//! All little-endian. Normative page: docs/format/log.md.

use std::path::Path;

use crate::checksum::{crc32c, crc32c_extend};
use crate::coding::{self, Reader};
use crate::crypto::{FileCipher, KeyRegistry};
use crate::error::{Error, Result};

/// Bytes of a checksum field.
pub const CHECKSUM_LEN: usize = 4;

/// The file header's magic number (bytes `"SDBL"` on disk).
pub const FILE_MAGIC: u32 = u32::from_le_bytes(*b"SDBL");

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 2;

/// Bytes of the file header, checksum included.
pub const FILE_HEADER_LEN: usize = 48;

/// Offset of the header checksum: it covers every header byte before it.
pub const FILE_HEADER_CRC_OFFSET: usize = FILE_HEADER_LEN - CHECKSUM_LEN;

/// Bytes of the reserved, zero field of the header.
const RESERVED_LEN: usize = 8;

/// Flags bit 0: the log is encrypted (its records are sealed: encrypted and authenticated).
pub const FLAG_ENCRYPTED: u8 = 1;

/// Flags bit 1 (only with bit 0, only in a WAL): each batch's records are sealed together as
/// one unit instead of one by one (docs/format/log.md, "sealed_batch"). Nothing reads a WAL
/// record on its own, so one seal per batch is enough, and it is one AES-GCM call per write
/// group instead of one per entry.
pub const FLAG_SEALED_BATCHES: u8 = 2;

/// Offset of the header's data key id (named in errors about it).
pub const KEY_ID_OFFSET: u64 = 16;

/// Bytes of the encryption base IV held in the header.
pub const BASE_IV_LEN: usize = 12;

/// The batch header's magic number. Non-zero, so a zero-filled region never looks like a
/// batch; bytes `b7 5a e1 3c` on disk, which the forward scan of recovery searches for.
pub const BATCH_MAGIC: u32 = 0x3ce1_5ab7;

/// Bytes of a batch header, checksum included.
pub const BATCH_HEADER_LEN: usize = 32;

/// Offset of the batch header checksum: it covers every batch header byte before it.
pub const BATCH_HEADER_CRC_OFFSET: usize = BATCH_HEADER_LEN - CHECKSUM_LEN;

/// Offset of the first batch of a log.
pub const FIRST_BATCH_OFFSET: u64 = FILE_HEADER_LEN as u64;

/// Offset of the first record a log can hold (a value pointer below it is corrupt).
pub const FIRST_RECORD_OFFSET: u64 = FIRST_BATCH_OFFSET + BATCH_HEADER_LEN as u64;

// The layout above is spelled out field by field in `LogHeader::encode`; these pin the sums.
const _: () = assert!(4 + 2 + 1 + 1 + 8 + 8 + BASE_IV_LEN + RESERVED_LEN == FILE_HEADER_CRC_OFFSET);
const _: () = assert!(4 + 4 + 4 + 8 + 8 == BATCH_HEADER_CRC_OFFSET);

/// Which log a file is; stored in the header so a file cannot be replayed as the other kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// A memtable's write-ahead log (`.mem`).
    Wal,
    /// A value-log file (`.vlog`).
    ValueLog,
}

impl LogKind {
    /// The header byte of this kind.
    pub fn to_byte(self) -> u8 {
        match self {
            LogKind::Wal => 1,
            LogKind::ValueLog => 2,
        }
    }

    /// The kind of a header byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(LogKind::Wal),
            2 => Some(LogKind::ValueLog),
            _ => None,
        }
    }

    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Wal => "memtable WAL",
            LogKind::ValueLog => "value log",
        }
    }
}

/// The decoded file header of a log.
///
/// A plaintext log has `key_id` 0 and a zero `base_iv`; an encrypted one (flags bit 0) names
/// its data key (`key_id` >= 1) and holds the salt its file key is derived with in `base_iv`
/// (docs/format/encryption.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHeader {
    /// WAL or value log.
    pub kind: LogKind,
    /// The file's number (the `N` of `N.mem` / `N.vlog`).
    pub file_id: u64,
    /// Data key id; 0 means plaintext.
    pub key_id: u64,
    /// The salt of the file's key when encrypted; zero when plaintext.
    pub base_iv: [u8; BASE_IV_LEN],
    /// Encrypted, with each batch sealed as one unit (flags bit 1; WALs only) rather than
    /// each record.
    pub sealed_batches: bool,
}

impl LogHeader {
    /// A plaintext header.
    pub fn new(kind: LogKind, file_id: u64) -> Self {
        LogHeader {
            kind,
            file_id,
            key_id: 0,
            base_iv: [0; BASE_IV_LEN],
            sealed_batches: false,
        }
    }

    /// The header of a log sealed with `cipher`: a WAL seals whole batches, a value log each
    /// record (a value pointer reads one record on its own).
    pub fn encrypted(kind: LogKind, file_id: u64, cipher: &FileCipher) -> Self {
        LogHeader {
            kind,
            file_id,
            key_id: cipher.key_id,
            base_iv: cipher.salt,
            sealed_batches: kind == LogKind::Wal,
        }
    }

    /// True if the log's records are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.key_id != 0
    }

    /// Checks that the header is one this build writes: plaintext, or a key id with a salt.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.key_id == 0 && self.base_iv != [0; BASE_IV_LEN] {
            return Err(Error::InvalidRequest(
                "a plaintext log header must have a zero base_iv",
            ));
        }
        if self.sealed_batches && (self.key_id == 0 || self.kind != LogKind::Wal) {
            return Err(Error::InvalidRequest(
                "only an encrypted WAL seals whole batches",
            ));
        }
        Ok(())
    }

    /// The cipher of this log's records: `None` for a plaintext log; for an encrypted one,
    /// its key from `keys` ([`Error::EncryptionKeyRequired`] when there is no registry).
    pub fn cipher(&self, keys: Option<&KeyRegistry>, file: &Path) -> Result<Option<FileCipher>> {
        if !self.is_encrypted() {
            return Ok(None);
        }
        let Some(keys) = keys else {
            return Err(Error::EncryptionKeyRequired {
                dir: file.parent().unwrap_or(Path::new("")).to_path_buf(),
            });
        };
        keys.file_cipher(self.key_id, self.base_iv, file, KEY_ID_OFFSET)
            .map(Some)
    }

    /// The flags byte: bit 0 encrypted, bit 1 sealed batches.
    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.is_encrypted() {
            flags |= FLAG_ENCRYPTED;
        }
        if self.sealed_batches {
            flags |= FLAG_SEALED_BATCHES;
        }
        flags
    }

    /// The 48 header bytes.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = Vec::with_capacity(FILE_HEADER_LEN);
        coding::put_u32(&mut b, FILE_MAGIC);
        coding::put_u16(&mut b, FORMAT_VERSION);
        b.push(self.kind.to_byte());
        b.push(self.flags());
        coding::put_u64(&mut b, self.file_id);
        coding::put_u64(&mut b, self.key_id);
        b.extend_from_slice(&self.base_iv);
        b.extend_from_slice(&[0; RESERVED_LEN]);
        debug_assert_eq!(b.len(), FILE_HEADER_CRC_OFFSET);
        let crc = crc32c(&b);
        coding::put_u32(&mut b, crc);
        let mut out = [0u8; FILE_HEADER_LEN];
        out.copy_from_slice(&b);
        out
    }

    /// Decodes and checks 48 header bytes read from `file` (named in errors), expecting
    /// `expected`. The caller has already ruled out an all-zero (unborn) header.
    pub fn decode(buf: &[u8; FILE_HEADER_LEN], file: &Path, expected: LogKind) -> Result<Self> {
        let bad = |reason: String| Error::corruption(file, 0, reason);
        let mut r = Reader::new(buf);
        let (magic, version) = (r.u32(), r.u16());
        if magic != Some(FILE_MAGIC) {
            let found = magic.map_or_else(|| "none".to_string(), |m| format!("{m:#010x}"));
            return Err(bad(format!("not a log file: magic {found}")));
        }
        let version = version.unwrap_or(0);
        if version == 0 {
            return Err(bad("log format version 0".into()));
        }
        if version != FORMAT_VERSION {
            // Newer: laid out differently. Older (1): written by a development build whose
            // batch headers did not store their offset; not readable by this build.
            return Err(Error::UnsupportedVersion {
                file: file.to_path_buf(),
                found: u32::from(version),
                supported: u32::from(FORMAT_VERSION),
            });
        }
        verify_header_crc(buf, file)?;
        let fields = HeaderFields::read(&mut r).ok_or_else(|| bad("short header".into()))?;
        fields.check(file, expected)
    }
}

fn verify_header_crc(buf: &[u8; FILE_HEADER_LEN], file: &Path) -> Result<()> {
    let (body, tail) = buf.split_at(FILE_HEADER_CRC_OFFSET);
    let stored = coding::get_u32(tail, 0).unwrap_or(0);
    let computed = crc32c(body);
    if stored != computed {
        return Err(Error::ChecksumMismatch {
            file: file.to_path_buf(),
            offset: 0,
            stored,
            computed,
        });
    }
    Ok(())
}

/// The header fields after the version, as read, before their checks.
struct HeaderFields {
    kind: u8,
    flags: u8,
    file_id: u64,
    key_id: u64,
    base_iv: [u8; BASE_IV_LEN],
    reserved_zero: bool,
}

impl HeaderFields {
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        let kind = r.u8()?;
        let flags = r.u8()?;
        let file_id = r.u64()?;
        let key_id = r.u64()?;
        let mut base_iv = [0u8; BASE_IV_LEN];
        base_iv.copy_from_slice(r.bytes(BASE_IV_LEN)?);
        let reserved_zero = r.bytes(RESERVED_LEN)?.iter().all(|&b| b == 0);
        Some(HeaderFields {
            kind,
            flags,
            file_id,
            key_id,
            base_iv,
            reserved_zero,
        })
    }

    fn check(self, file: &Path, expected: LogKind) -> Result<LogHeader> {
        let bad = |reason: String| Error::corruption(file, 0, reason);
        let kind = LogKind::from_byte(self.kind)
            .ok_or_else(|| bad(format!("unknown log kind {}", self.kind)))?;
        if kind != expected {
            return Err(bad(format!(
                "expected a {} file, found a {}",
                expected.name(),
                kind.name()
            )));
        }
        let plaintext = self.flags == 0 && self.key_id == 0 && self.base_iv == [0; BASE_IV_LEN];
        let sealed_batches = self.flags == FLAG_ENCRYPTED | FLAG_SEALED_BATCHES;
        let encrypted = (self.flags == FLAG_ENCRYPTED || sealed_batches) && self.key_id != 0;
        if sealed_batches && kind != LogKind::Wal {
            return Err(bad(format!(
                "flags {:#04x}: only a WAL seals whole batches",
                self.flags
            )));
        }
        if !plaintext && !encrypted {
            return Err(bad(format!(
                "flags {:#04x} with key id {}: neither a plaintext nor an encrypted header",
                self.flags, self.key_id
            )));
        }
        if !self.reserved_zero {
            return Err(bad("reserved header bytes are not zero".into()));
        }
        Ok(LogHeader {
            kind,
            file_id: self.file_id,
            key_id: self.key_id,
            base_iv: self.base_iv,
            sealed_batches,
        })
    }
}

/// A decoded batch header (see the module grammar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    /// Records in the batch (>= 1).
    pub count: u32,
    /// Bytes of the records following the header.
    pub body_len: u32,
    /// File offset of the header's first byte where the writer put it. A batch is valid at
    /// a position only if this equals the position; recovery's forward scan also recognises
    /// batches that damage moved (inserted or removed bytes) by it.
    pub batch_offset: u64,
    /// Offset up to which the writer had synced when it wrote the batch.
    pub synced_offset: u64,
}

impl BatchHeader {
    /// Appends the header to `out`, for a log of `kind` with id `file_id`.
    pub fn encode(&self, kind: LogKind, file_id: u64, out: &mut Vec<u8>) {
        let start = out.len();
        coding::put_u32(out, BATCH_MAGIC);
        coding::put_u32(out, self.count);
        coding::put_u32(out, self.body_len);
        coding::put_u64(out, self.batch_offset);
        coding::put_u64(out, self.synced_offset);
        let covered = out.get(start..).unwrap_or_default();
        debug_assert_eq!(covered.len(), BATCH_HEADER_CRC_OFFSET);
        let crc = batch_crc(kind, file_id, covered);
        coding::put_u32(out, crc);
    }

    /// Decodes a batch header of a log of `kind` with id `file_id`, checking magic, checksum
    /// and the fields that need no other bytes. It says nothing about where the batch lies:
    /// the caller compares [`BatchHeader::batch_offset`] with the position it read it at.
    /// `Err` gives the reason it is invalid.
    pub fn decode(buf: &[u8], kind: LogKind, file_id: u64) -> Result<Self, &'static str> {
        let mut r = Reader::new(buf);
        let fields = (r.u32(), r.u32(), r.u32(), r.u64(), r.u64(), r.u32());
        let (
            Some(magic),
            Some(count),
            Some(body_len),
            Some(batch_offset),
            Some(synced_offset),
            Some(stored),
        ) = fields
        else {
            return Err("batch header is cut short by the end of the file");
        };
        if magic != BATCH_MAGIC {
            return Err("bad batch magic");
        }
        let covered = buf.get(..BATCH_HEADER_CRC_OFFSET).unwrap_or_default();
        if stored != batch_crc(kind, file_id, covered) {
            return Err("batch header checksum mismatch");
        }
        if count == 0 {
            return Err("batch with zero records");
        }
        if !(FIRST_BATCH_OFFSET..=batch_offset).contains(&synced_offset) {
            return Err("batch synced_offset outside [header end, batch offset]");
        }
        Ok(BatchHeader {
            count,
            body_len,
            batch_offset,
            synced_offset,
        })
    }

    /// Bytes of the whole batch, header included.
    pub fn batch_len(&self) -> u64 {
        BATCH_HEADER_LEN as u64 + u64::from(self.body_len)
    }
}

/// The batch header checksum, seeded with the log's kind and file id, so that a batch copied
/// from another log (a WAL's batch stored inside a value, a value-log file's batch in a WAL)
/// never passes for one of this file.
fn batch_crc(kind: LogKind, file_id: u64, covered: &[u8]) -> u32 {
    let mut seed = [0u8; 9];
    seed[0] = kind.to_byte();
    seed[1..].copy_from_slice(&file_id.to_le_bytes());
    crc32c_extend(crc32c(&seed), covered)
}

/// The batch magic as it appears on disk, for the forward scan.
pub(crate) const BATCH_MAGIC_BYTES: [u8; 4] = BATCH_MAGIC.to_le_bytes();

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p() -> &'static Path {
        Path::new("t.mem")
    }

    #[test]
    fn header_layout_is_pinned() {
        // Proves the on-disk bytes of a header field by field (magic, version, kind, LE ids).
        let h = LogHeader::new(LogKind::ValueLog, 0x0102);
        let b = h.encode();
        assert_eq!(&b[0..4], b"SDBL");
        assert_eq!(&b[4..6], &[2, 0]);
        assert_eq!((b[6], b[7]), (2, 0));
        assert_eq!(&b[8..16], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert!(b[16..44].iter().all(|&x| x == 0));
        assert_eq!(coding::get_u32(&b, 44), Some(crc32c(&b[..44])));
        assert_eq!(BATCH_MAGIC_BYTES, [0xb7, 0x5a, 0xe1, 0x3c]);
    }

    #[test]
    fn header_checks_each_field() {
        // Proves each bad field gives its typed error (re-sealing the checksum where needed).
        let good = LogHeader::new(LogKind::Wal, 7).encode();
        assert_eq!(
            LogHeader::decode(&good, p(), LogKind::Wal).unwrap(),
            LogHeader::new(LogKind::Wal, 7)
        );
        let reseal = |at: usize, v: u8| {
            let mut b = good;
            b[at] = v;
            let crc = crc32c(&b[..44]);
            b[44..].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let corrupt = |b: [u8; 48]| {
            matches!(
                LogHeader::decode(&b, p(), LogKind::Wal),
                Err(Error::Corruption { offset: 0, .. })
            )
        };
        assert!(corrupt(reseal(0, b'X')), "magic");
        assert!(corrupt(reseal(6, 2)), "wrong kind");
        assert!(corrupt(reseal(6, 9)), "unknown kind");
        assert!(corrupt(reseal(7, 1)), "flags");
        assert!(corrupt(reseal(16, 1)), "key id");
        assert!(corrupt(reseal(30, 1)), "base iv");
        assert!(corrupt(reseal(40, 1)), "reserved");
        assert!(corrupt(reseal(4, 0)), "version 0");
        for (older_or_newer, found) in [(1, 1), (3, 3)] {
            assert!(matches!(
                LogHeader::decode(&reseal(4, older_or_newer), p(), LogKind::Wal),
                Err(Error::UnsupportedVersion { found: f, supported: 2, .. }) if f == found
            ));
        }
        let mut flipped = good;
        flipped[9] ^= 1;
        assert!(matches!(
            LogHeader::decode(&flipped, p(), LogKind::Wal),
            Err(Error::ChecksumMismatch { offset: 0, .. })
        ));
    }

    #[test]
    fn writer_refuses_a_plaintext_header_with_a_salt() {
        // Proves a plaintext header with a non-zero base IV is refused before anything is
        // written, and an encrypted header round-trips with its flag, key id and salt.
        let mut h = LogHeader::new(LogKind::Wal, 1);
        h.base_iv[3] = 1;
        assert!(matches!(h.check_writable(), Err(Error::InvalidRequest(_))));
        assert!(LogHeader::new(LogKind::Wal, 1).check_writable().is_ok());
        let c = FileCipher::new(4, &[9; 16], [5; BASE_IV_LEN]).unwrap();
        let e = LogHeader::encrypted(LogKind::ValueLog, 8, &c);
        assert!(e.check_writable().is_ok() && e.is_encrypted());
        let bytes = e.encode();
        assert_eq!(bytes[7], FLAG_ENCRYPTED);
        let back = LogHeader::decode(&bytes, Path::new("f"), LogKind::ValueLog).unwrap();
        assert_eq!(back, e);
        // The flag without a key id, or a key id without the flag, is corruption.
        for (flags, key_id) in [(1u8, 0u64), (0, 4), (2, 4)] {
            let mut b = bytes;
            b[7] = flags;
            b[16..24].copy_from_slice(&key_id.to_le_bytes());
            let crc = crc32c(&b[..FILE_HEADER_CRC_OFFSET]);
            b[FILE_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
            assert!(matches!(
                LogHeader::decode(&b, Path::new("f"), LogKind::ValueLog),
                Err(Error::Corruption { offset: 0, .. })
            ));
        }
        // An encrypted header needs a key registry.
        assert!(matches!(
            e.cipher(None, Path::new("/d/8.vlog")),
            Err(Error::EncryptionKeyRequired { .. })
        ));
        assert!(LogHeader::new(LogKind::Wal, 1)
            .cipher(None, Path::new("f"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn batch_header_is_bound_to_its_kind_and_file_and_records_its_offset() {
        // Proves a batch header decodes only in the kind and file it was written for, carries
        // its own offset, and refuses each bad field.
        let h = BatchHeader {
            count: 2,
            body_len: 40,
            batch_offset: 100,
            synced_offset: 48,
        };
        let mut b = Vec::new();
        h.encode(LogKind::Wal, 9, &mut b);
        assert_eq!(b.len(), BATCH_HEADER_LEN);
        assert_eq!(BatchHeader::decode(&b, LogKind::Wal, 9), Ok(h));
        assert!(BatchHeader::decode(&b, LogKind::ValueLog, 9).is_err());
        assert!(BatchHeader::decode(&b, LogKind::Wal, 8).is_err());
        assert!(BatchHeader::decode(&b[..31], LogKind::Wal, 9).is_err());
        let bad = |count, batch_offset, synced_offset| {
            let mut x = Vec::new();
            BatchHeader {
                count,
                body_len: 40,
                batch_offset,
                synced_offset,
            }
            .encode(LogKind::Wal, 9, &mut x);
            BatchHeader::decode(&x, LogKind::Wal, 9).is_err()
        };
        assert!(bad(0, 100, 48), "zero count");
        assert!(bad(1, 100, 47), "synced below the header");
        assert!(bad(1, 100, 101), "synced past the batch");
        assert!(bad(1, 40, 48), "batch inside the file header");
        assert!(!bad(1, 100, 100));
        assert!(!bad(1, 48, 48));
    }

    proptest! {
        #[test]
        fn header_round_trips(id: u64, wal: bool) {
            // Proves encode/decode are inverse for both kinds and any file id.
            let kind = if wal { LogKind::Wal } else { LogKind::ValueLog };
            let h = LogHeader::new(kind, id);
            prop_assert_eq!(LogHeader::decode(&h.encode(), p(), kind).unwrap(), h);
        }

        #[test]
        fn header_decode_never_panics(b in proptest::array::uniform32(any::<u8>()),
                                      c in proptest::array::uniform16(any::<u8>())) {
            // Proves arbitrary header bytes decode or give a typed error, never a panic.
            let mut buf = [0u8; FILE_HEADER_LEN];
            buf[..32].copy_from_slice(&b);
            buf[32..].copy_from_slice(&c);
            let _ = LogHeader::decode(&buf, p(), LogKind::ValueLog);
            let _ = BatchHeader::decode(&buf, LogKind::Wal, 0);
        }
    }
}

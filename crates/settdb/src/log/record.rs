//! One log record: the unit a value pointer names.
//!
//! ```text
//! record := meta u8 | user_meta u8 | uvarint key_len | uvarint value_len | uvarint expires_at
//!           | key [key_len] | value [value_len] | crc32c u32 LE over every preceding record byte
//! ```
//!
//! `key` is an internal key (8 ..= `MAX_INTERNAL_KEY_SIZE` bytes), `value_len <=`
//! [`MAX_VALUE_SIZE`], `meta` has only bits of [`meta::ALL`], and a record whose meta has
//! [`meta::VALUE_POINTER`] holds exactly a 12-byte value pointer. Normative page:
//! docs/format/log.md.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use bytes::{Buf, Bytes, BytesMut};

use super::format::CHECKSUM_LEN;
use crate::checksum::crc32c;
use crate::coding::{self, Reader, MAX_VARINT32_LEN, MAX_VARINT64_LEN};
use crate::crypto::{FileCipher, TAG_LEN};
use crate::error::{Error, Result};
use crate::key::{self, MAX_INTERNAL_KEY_SIZE, VERSION_LEN};
use crate::value::{meta, ValuePointer, ValueRef};

/// Largest value a record holds, in bytes (2 GiB: a value-log file is below 2 GiB).
pub const MAX_VALUE_SIZE: usize = 1 << 31;

/// Upper bound of the bytes before the key: two bytes, two u32-sized varints, one u64 varint.
pub const MAX_RECORD_HEADER_LEN: usize = 2 + 2 * MAX_VARINT32_LEN + MAX_VARINT64_LEN;

/// Smallest record: meta, user meta, three one-byte varints, an 8-byte key, the checksum.
pub const MIN_RECORD_LEN: usize = 2 + 3 + VERSION_LEN + CHECKSUM_LEN;

/// Upper bound of a record's length (sealed or not); a record length always fits a u32.
pub const MAX_RECORD_LEN: u32 = {
    let n = MAX_RECORD_HEADER_LEN + MAX_INTERNAL_KEY_SIZE + MAX_VALUE_SIZE + TAG_LEN + CHECKSUM_LEN;
    assert!(n <= u32::MAX as usize);
    n as u32
};

/// A borrowed log record: what the writer takes and what replay hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// [`meta`] bits.
    pub meta: u8,
    /// A byte the user attaches to the entry, opaque to SettDB.
    pub user_meta: u8,
    /// Unix seconds after which the entry is expired; 0 means never.
    pub expires_at: u64,
    /// The internal key (user key and version suffix).
    pub key: &'a [u8],
    /// The value, or an encoded [`ValuePointer`] when `meta` has [`meta::VALUE_POINTER`].
    pub value: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// Bytes of this record's encoding, checksum included.
    pub fn encoded_len(&self) -> usize {
        2 + coding::uvarint_len(self.key.len() as u64)
            + coding::uvarint_len(self.value.len() as u64)
            + coding::uvarint_len(self.expires_at)
            + self.key.len()
            + self.value.len()
            + CHECKSUM_LEN
    }

    /// The value struct this record carries.
    pub fn value_ref(&self) -> ValueRef<'a> {
        ValueRef {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            value: self.value,
        }
    }

    /// Checks what the decoder will check, before anything is written.
    pub(crate) fn validate(&self) -> Result<()> {
        if !key::is_valid_internal_key(self.key) {
            return Err(Error::InvalidKey {
                reason: "a log record key must be an internal key of 8 ..= 65008 bytes",
            });
        }
        check_value_size(self.value.len())?;
        if self.meta & !meta::ALL != 0 {
            return Err(Error::InvalidRequest(
                "record meta has bits outside value::meta::ALL",
            ));
        }
        if self.meta & meta::VALUE_POINTER != 0 && self.value.len() != ValuePointer::ENCODED_LEN {
            return Err(Error::InvalidRequest(
                "a VALUE_POINTER record must hold a 12-byte value pointer",
            ));
        }
        Ok(())
    }

    /// Bytes of this record's encoding in a log sealed (`sealed`) or not: a sealed record
    /// carries a [`TAG_LEN`]-byte tag.
    pub fn encoded_len_in(&self, sealed: bool) -> usize {
        self.encoded_len() + if sealed { TAG_LEN } else { 0 }
    }

    /// Appends the head and the plaintext key and value; returns the head's length (the
    /// bytes before the key: what a sealed record authenticates).
    fn encode_fields(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.push(self.meta);
        out.push(self.user_meta);
        coding::put_uvarint(out, self.key.len() as u64);
        coding::put_uvarint(out, self.value.len() as u64);
        coding::put_uvarint(out, self.expires_at);
        let head_len = out.len() - start;
        out.extend_from_slice(self.key);
        out.extend_from_slice(self.value);
        head_len
    }

    /// Appends the plaintext fields of a sealed record with room for its tag and checksum,
    /// which [`seal_encoded`] fills in; returns the length of the head (the bytes before the
    /// key). REQUIRES: `validate()` passed.
    pub(crate) fn encode_to_seal(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let head_len = self.encode_fields(out);
        out.extend_from_slice(&[0; TAG_LEN + CHECKSUM_LEN]);
        debug_assert_eq!(out.len() - start, self.encoded_len_in(true));
        head_len
    }

    /// Appends the encoding. REQUIRES: `validate()` passed.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        self.encode_fields(out);
        let crc = crc32c(out.get(start..).unwrap_or_default());
        coding::put_u32(out, crc);
        debug_assert_eq!(out.len() - start, self.encoded_len());
    }
}

/// Seals one record laid out by [`RecordRef::encode_to_seal`] (`rec` is exactly its bytes,
/// `head_len` its head) as the record at file offset `offset`: encrypts key and value in place
/// with the head as associated data, writes the tag, then the checksum over all before it.
///
/// Errors: [`Error::InvalidRequest`] if `rec` cannot be such a record (shorter than its tag and
/// checksum, or than its head): nothing may then be written, for the record would go to disk
/// unsealed.
pub(crate) fn seal_encoded(
    rec: &mut [u8],
    head_len: usize,
    cipher: &FileCipher,
    offset: u64,
) -> Result<()> {
    let bad = Error::InvalidRequest("a record laid out for sealing has the wrong length");
    let sealed_end = rec
        .len()
        .checked_sub(TAG_LEN + CHECKSUM_LEN)
        .filter(|&e| e >= head_len)
        .ok_or(bad)?;
    let (covered, crc_room) = rec.split_at_mut(sealed_end + TAG_LEN);
    let (head_body, tag_room) = covered.split_at_mut(sealed_end);
    let (head, body) = head_body.split_at_mut(head_len);
    tag_room.copy_from_slice(&cipher.seal(offset, head, body)?);
    crc_room.copy_from_slice(&crc32c(covered).to_le_bytes());
    Ok(())
}

/// Refuses a value over [`MAX_VALUE_SIZE`].
pub(crate) fn check_value_size(len: usize) -> Result<()> {
    if len > MAX_VALUE_SIZE {
        return Err(Error::ValueTooLarge {
            size_bytes: len as u64,
            max_size_bytes: MAX_VALUE_SIZE as u64,
        });
    }
    Ok(())
}

/// Where a record lies in its file: what a value pointer stores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordPos {
    /// File offset of the record's first byte.
    pub offset: u64,
    /// Length of the whole record, checksum included.
    pub len: u32,
}

impl RecordPos {
    /// The offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }

    /// The value pointer to this record in value-log file `file_id`; `None` if the offset is
    /// past what a pointer can hold (4 GiB).
    pub fn value_pointer(&self, file_id: u32) -> Option<ValuePointer> {
        Some(ValuePointer {
            file_id,
            offset: u32::try_from(self.offset).ok()?,
            len: self.len,
        })
    }
}

impl From<ValuePointer> for RecordPos {
    fn from(vp: ValuePointer) -> Self {
        RecordPos {
            offset: u64::from(vp.offset),
            len: vp.len,
        }
    }
}

/// Why bytes are not a record. Pure: the caller adds the file and offset
/// ([`DecodeError::into_error`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end inside the record.
    Truncated,
    /// A length or expiry varint is malformed or cut short.
    BadVarint {
        /// The field.
        field: &'static str,
    },
    /// `key_len` is not the length of an internal key.
    KeyLength(u64),
    /// `value_len` is over [`MAX_VALUE_SIZE`].
    ValueTooLarge(u64),
    /// `meta` has bits outside [`meta::ALL`].
    UnknownMetaBits(u8),
    /// `meta` says value pointer but the value is not 12 bytes.
    BadPointerLength(usize),
    /// A record read on its own is shorter than the bytes it was given (the length in the
    /// value pointer is wrong); holds the record's real length.
    TrailingBytes(usize),
    /// The record's checksum matches but its encrypted bytes do not authenticate: they were
    /// changed by someone who recomputed the checksum, or the key is not theirs.
    Authentication,
    /// The record checksum does not match.
    ChecksumMismatch {
        /// Checksum stored in the record.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "record is cut short"),
            DecodeError::BadVarint { field } => write!(f, "record {field} varint is malformed"),
            DecodeError::KeyLength(n) => write!(f, "record key length {n} is not 8 ..= 65008"),
            DecodeError::ValueTooLarge(n) => write!(f, "record value length {n} is over 2^31"),
            DecodeError::UnknownMetaBits(m) => write!(f, "record meta {m:#04x} has unknown bits"),
            DecodeError::BadPointerLength(n) => {
                write!(f, "record is a value pointer but its value has {n} bytes")
            }
            DecodeError::TrailingBytes(n) => {
                write!(
                    f,
                    "record is {n} bytes, shorter than the length it was read with"
                )
            }
            DecodeError::Authentication => {
                write!(f, "record does not authenticate (changed encrypted bytes)")
            }
            DecodeError::ChecksumMismatch { stored, computed } => write!(
                f,
                "record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
        }
    }
}

impl DecodeError {
    /// The typed error for a record at `record_offset` of `file`: a checksum mismatch is
    /// [`Error::ChecksumMismatch`], everything else [`Error::Corruption`].
    pub fn into_error(self, file: &Path, record_offset: u64) -> Error {
        match self {
            DecodeError::ChecksumMismatch { stored, computed } => Error::ChecksumMismatch {
                file: file.to_path_buf(),
                offset: record_offset,
                stored,
                computed,
            },
            DecodeError::Authentication => Error::authentication(file, record_offset),
            other => Error::corruption(file, record_offset, other.to_string()),
        }
    }
}

/// Where a decoded record's fields lie in its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub meta: u8,
    pub user_meta: u8,
    pub expires_at: u64,
    /// Offset of the key from the record's first byte (the end of the authenticated head).
    pub key_at: usize,
    pub key_len: usize,
    pub value_len: usize,
    /// Bytes of the whole record, tag and checksum included.
    pub used: usize,
}

impl Layout {
    /// The record's fields over `buf` (the record's bytes, decrypted if it was sealed).
    pub(crate) fn resolve<'a>(&self, buf: &'a [u8]) -> RecordRef<'a> {
        let value_at = self.key_at + self.key_len;
        RecordRef {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            key: buf.get(self.key_at..value_at).unwrap_or_default(),
            value: buf
                .get(value_at..value_at + self.value_len)
                .unwrap_or_default(),
        }
    }
}

/// Decodes the record at the start of `buf`; returns it and the bytes it occupies. Checks
/// lengths against `buf` before slicing (nothing is allocated), then the checksum, then the
/// meta bits.
pub fn decode_record(buf: &[u8]) -> Result<(RecordRef<'_>, usize), DecodeError> {
    let l = parse_record(buf, false)?;
    Ok((l.resolve(buf), l.used))
}

/// Parses and checks the record at the start of `buf` (`sealed`: a tag follows the value,
/// which is still encrypted). Checks lengths against `buf` before slicing, then the checksum,
/// then the meta bits.
pub(crate) fn parse_record(buf: &[u8], sealed: bool) -> Result<Layout, DecodeError> {
    let mut r = Reader::new(buf);
    let meta_bits = r.u8().ok_or(DecodeError::Truncated)?;
    let user_meta = r.u8().ok_or(DecodeError::Truncated)?;
    let varint = |r: &mut Reader<'_>, field| r.uvarint().ok_or(DecodeError::BadVarint { field });
    let key_len_raw = varint(&mut r, "key_len")?;
    let value_len_raw = varint(&mut r, "value_len")?;
    let expires_at = varint(&mut r, "expires_at")?;
    let key_len = usize::try_from(key_len_raw)
        .ok()
        .filter(|n| (VERSION_LEN..=MAX_INTERNAL_KEY_SIZE).contains(n))
        .ok_or(DecodeError::KeyLength(key_len_raw))?;
    let value_len = usize::try_from(value_len_raw)
        .ok()
        .filter(|&n| n <= MAX_VALUE_SIZE)
        .ok_or(DecodeError::ValueTooLarge(value_len_raw))?;
    let key_at = r.position();
    r.bytes(key_len).ok_or(DecodeError::Truncated)?;
    r.bytes(value_len).ok_or(DecodeError::Truncated)?;
    if sealed {
        r.bytes(TAG_LEN).ok_or(DecodeError::Truncated)?;
    }
    let covered = buf.get(..r.position()).unwrap_or_default();
    let stored = r.u32().ok_or(DecodeError::Truncated)?;
    let computed = crc32c(covered);
    if stored != computed {
        return Err(DecodeError::ChecksumMismatch { stored, computed });
    }
    if meta_bits & !meta::ALL != 0 {
        return Err(DecodeError::UnknownMetaBits(meta_bits));
    }
    if meta_bits & meta::VALUE_POINTER != 0 && value_len != ValuePointer::ENCODED_LEN {
        return Err(DecodeError::BadPointerLength(value_len));
    }
    Ok(Layout {
        meta: meta_bits,
        user_meta,
        expires_at,
        key_at,
        key_len,
        value_len,
        used: r.position(),
    })
}

/// Decrypts, in place, the key and value of the sealed record `rec` (its bytes, as `layout`
/// parsed them) written at file offset `offset`.
pub(crate) fn unseal_record(
    rec: &mut [u8],
    layout: &Layout,
    cipher: &FileCipher,
    offset: u64,
) -> Result<(), DecodeError> {
    let sealed_len = layout.key_len + layout.value_len;
    let (head, rest) = rec.split_at_mut(layout.key_at.min(rec.len()));
    let (body, rest) = rest.split_at_mut(sealed_len.min(rest.len()));
    let tag = rest.get(..TAG_LEN).ok_or(DecodeError::Truncated)?;
    if cipher.open(offset, head, body, tag) {
        Ok(())
    } else {
        Err(DecodeError::Authentication)
    }
}

/// A record read on its own (for a value pointer): one buffer holding the encoded record,
/// a `Vec` of its own or a slice of a shared buffer (`BytesMut`, see [`RecordAlloc`]).
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedRecord<B = Vec<u8>> {
    buf: B,
    meta: u8,
    user_meta: u8,
    expires_at: u64,
    key: Range<usize>,
    value: Range<usize>,
}

impl OwnedRecord {
    /// Decodes `buf`, which must hold exactly one record. `Err` if it is not a record or has
    /// bytes past it (the length in the value pointer was wrong).
    #[cfg(test)]
    pub fn from_encoded(buf: Vec<u8>) -> Result<Self, DecodeError> {
        OwnedRecord::from_encoded_in(buf, None)
    }

    /// The value bytes, reusing the record's buffer (no copy into a new allocation).
    pub fn into_value(mut self) -> Vec<u8> {
        self.buf.truncate(self.value.end);
        self.buf.drain(..self.value.start);
        self.buf
    }
}

impl OwnedRecord<BytesMut> {
    /// The value bytes as a [`Bytes`] over the shared buffer the record was read into.
    pub fn into_value_bytes(self) -> Bytes {
        let mut b = self.buf.freeze();
        b.truncate(self.value.end);
        b.advance(self.value.start);
        b
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> OwnedRecord<B> {
    /// Decodes `buf`, which must hold exactly one record; with `unseal = (cipher, offset)`
    /// the record is sealed and was written at file offset `offset`, and is decrypted in
    /// place.
    pub fn from_encoded_in(
        mut buf: B,
        unseal: Option<(&FileCipher, u64)>,
    ) -> Result<Self, DecodeError> {
        let l = parse_record(buf.as_ref(), unseal.is_some())?;
        if l.used != buf.as_ref().len() {
            return Err(DecodeError::TrailingBytes(l.used));
        }
        if let Some((cipher, offset)) = unseal {
            unseal_record(buf.as_mut(), &l, cipher, offset)?;
        }
        let key = l.key_at..l.key_at + l.key_len;
        let value = key.end..key.end + l.value_len;
        Ok(OwnedRecord {
            buf,
            meta: l.meta,
            user_meta: l.user_meta,
            expires_at: l.expires_at,
            key,
            value,
        })
    }

    /// The record as a borrowed view.
    #[cfg(any(test, feature = "testing"))]
    pub fn as_record(&self) -> RecordRef<'_> {
        RecordRef {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            key: self.key(),
            value: self.value(),
        }
    }

    /// The internal key.
    pub fn key(&self) -> &[u8] {
        self.buf.as_ref().get(self.key.clone()).unwrap_or_default()
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        self.buf
            .as_ref()
            .get(self.value.clone())
            .unwrap_or_default()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> fmt::Debug for OwnedRecord<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedRecord")
            .field("meta", &format_args!("{:#04x}", self.meta))
            .field("user_meta", &self.user_meta)
            .field("expires_at", &self.expires_at)
            .field("key", &self.key().escape_ascii().to_string())
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// Where a record read on its own is put: a `Vec` of its own ([`FreshVec`]) or a slice of a
/// shared buffer ([`Arena`]).
pub trait RecordAlloc {
    /// The buffer one record is read into.
    type Buf: AsRef<[u8]> + AsMut<[u8]>;
    /// `len` bytes to read into (zeroed).
    fn zeroed(&mut self, len: usize) -> Self::Buf;
    /// A copy of `bytes` (a record read from a mapping).
    fn copy_of(&mut self, bytes: &[u8]) -> Self::Buf;
}

/// Each record in a `Vec` of its own: what a point read keeps.
#[derive(Clone, Copy, Debug, Default)]
pub struct FreshVec;

impl RecordAlloc for FreshVec {
    type Buf = Vec<u8>;
    fn zeroed(&mut self, len: usize) -> Vec<u8> {
        vec![0; len]
    }
    fn copy_of(&mut self, bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }
}

/// Records as slices of one shared buffer of [`ARENA_BYTES`] (a larger record gets one of
/// its own size): reading many values in a row (a stream) then costs an allocation per
/// arena instead of one per value, and the values, handed on as [`Bytes`], free the arena
/// together once the last of them is dropped.
#[derive(Debug)]
pub struct Arena<'a>(pub &'a mut BytesMut);

/// Bytes of one [`Arena`] buffer.
pub const ARENA_BYTES: usize = 1 << 20;

impl Arena<'_> {
    /// Makes room for `len` bytes: a fresh buffer when the current one has too little left
    /// (its earlier slices keep the old one alive). The arena holds no bytes between
    /// records, only spare capacity.
    fn room(&mut self, len: usize) {
        self.0.clear();
        if self.0.capacity() < len {
            *self.0 = BytesMut::with_capacity(len.max(ARENA_BYTES));
        }
    }
}

impl RecordAlloc for Arena<'_> {
    type Buf = BytesMut;
    fn zeroed(&mut self, len: usize) -> BytesMut {
        self.room(len);
        self.0.resize(len, 0);
        self.0.split()
    }
    fn copy_of(&mut self, bytes: &[u8]) -> BytesMut {
        self.room(bytes.len());
        self.0.extend_from_slice(bytes);
        self.0.split()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec<'a>(key: &'a [u8], value: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            meta: meta::DELETE,
            user_meta: 7,
            expires_at: 300,
            key,
            value,
        }
    }

    #[test]
    fn records_read_into_an_arena_keep_their_values_as_it_moves_on() {
        // Proves records decoded from arena slices hand over exactly their values, that
        // values stay intact when the arena runs out and takes a fresh buffer (earlier slices
        // keep theirs), that a record larger than ARENA_BYTES gets a buffer of its own size,
        // that copy_of and zeroed give independent slices, and that the arena holds no bytes
        // between records.
        let mut arena = BytesMut::new();
        let mut kept = Vec::new();
        let sizes = [10usize, 300_000, 700_000, 5, ARENA_BYTES + 3, 2, 400_000];
        for (i, &n) in sizes.iter().enumerate() {
            let key = [b'k', i as u8, 0, 0, 0, 0, 0, 0, 1];
            let value: Vec<u8> = (0..n).map(|j| (j * 7 + i) as u8).collect();
            let mut enc = Vec::new();
            rec(&key, &value).encode(&mut enc);
            let buf = if i % 2 == 0 {
                Arena(&mut arena).copy_of(&enc)
            } else {
                let mut b = Arena(&mut arena).zeroed(enc.len());
                b.copy_from_slice(&enc);
                b
            };
            assert!(arena.is_empty(), "the arena keeps no bytes between records");
            let r = OwnedRecord::from_encoded_in(buf, None).unwrap();
            assert_eq!(r.key(), key);
            kept.push((r.into_value_bytes(), value));
        }
        for (got, want) in &kept {
            assert_eq!(got.as_ref(), want.as_slice());
        }
        assert!(arena.capacity() <= ARENA_BYTES + 3);
        // Small records share one buffer: each starts where the one before it ended.
        let mut arena = BytesMut::new();
        let a = Arena(&mut arena).zeroed(100);
        let b = Arena(&mut arena).copy_of(&[1; 50]);
        let c = Arena(&mut arena).zeroed(10);
        assert_eq!(a.as_ptr().wrapping_add(100), b.as_ptr());
        assert_eq!(b.as_ptr().wrapping_add(50), c.as_ptr());
        assert_eq!(arena.capacity(), ARENA_BYTES - 160);
    }

    #[test]
    fn a_fresh_vec_record_gives_its_value_in_place() {
        // Proves FreshVec buffers decode and into_value keeps exactly the value.
        let key = *b"key\0\0\0\0\0\x05";
        let mut enc = Vec::new();
        rec(&key, b"the value").encode(&mut enc);
        let r = OwnedRecord::from_encoded_in(FreshVec.copy_of(&enc), None).unwrap();
        assert_eq!(r.value(), b"the value");
        assert_eq!(r.into_value(), b"the value");
        let mut z = FreshVec.zeroed(4);
        assert_eq!(z, vec![0; 4]);
        z[0] = 1;
    }

    #[test]
    fn layout_is_pinned() {
        // Proves the byte layout of a small record field by field.
        let r = rec(b"k\0\0\0\0\0\0\0\x01", b"vv");
        let mut b = Vec::new();
        r.encode(&mut b);
        assert_eq!(&b[..6], &[meta::DELETE, 7, 9, 2, 0xac, 0x02]);
        assert_eq!(&b[6..15], r.key);
        assert_eq!(&b[15..17], b"vv");
        assert_eq!(coding::get_u32(&b, 17), Some(crc32c(&b[..17])));
        assert_eq!(b.len(), r.encoded_len());
        assert_eq!(MIN_RECORD_LEN, 17);
    }

    #[test]
    fn write_side_validation_names_the_problem() {
        // Proves each invalid record is refused with its typed error before encoding.
        let key = [0u8; 8];
        assert!(rec(&key, b"").validate().is_ok());
        assert!(matches!(
            rec(&key[..7], b"").validate(),
            Err(Error::InvalidKey { .. })
        ));
        let long = vec![0u8; MAX_INTERNAL_KEY_SIZE + 1];
        assert!(matches!(
            rec(&long, b"").validate(),
            Err(Error::InvalidKey { .. })
        ));
        let mut bad_meta = rec(&key, b"");
        bad_meta.meta = 0x10;
        assert!(matches!(bad_meta.validate(), Err(Error::InvalidRequest(_))));
        let mut ptr = rec(&key, b"short");
        ptr.meta = meta::VALUE_POINTER;
        assert!(matches!(ptr.validate(), Err(Error::InvalidRequest(_))));
        assert!(check_value_size(MAX_VALUE_SIZE).is_ok());
        assert!(matches!(
            check_value_size(MAX_VALUE_SIZE + 1),
            Err(Error::ValueTooLarge { .. })
        ));
    }

    #[test]
    fn decoder_rejects_each_bad_field() {
        // Proves every malformed field gives its DecodeError, including huge lengths that
        // must not be trusted (nothing is allocated: the decoder only borrows).
        let key = [1u8; 8];
        let mut good = Vec::new();
        rec(&key, b"abc").encode(&mut good);
        assert_eq!(decode_record(&good).unwrap().1, good.len());
        for cut in 0..good.len() {
            assert!(decode_record(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = good.clone();
        flipped[10] ^= 0x20;
        assert!(matches!(
            decode_record(&flipped),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
        let huge_key = [0, 0, 0xff, 0xff, 0x7f, 0, 0];
        assert!(matches!(
            decode_record(&huge_key),
            Err(DecodeError::KeyLength(_))
        ));
        let huge_value = [0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0];
        assert!(matches!(
            decode_record(&huge_value),
            Err(DecodeError::ValueTooLarge(_))
        ));
        let overlong = [
            0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0,
        ];
        assert!(matches!(
            decode_record(&overlong),
            Err(DecodeError::BadVarint { .. })
        ));
        let resealed = |m: u8, value: &[u8]| {
            let mut b = Vec::new();
            RecordRef {
                meta: m,
                ..rec(&key, value)
            }
            .encode(&mut b);
            decode_record(&b).map(|_| ())
        };
        assert_eq!(resealed(0x10, b""), Err(DecodeError::UnknownMetaBits(0x10)));
        assert_eq!(
            resealed(meta::VALUE_POINTER, b"abc"),
            Err(DecodeError::BadPointerLength(3))
        );
        assert_eq!(resealed(meta::VALUE_POINTER, &[0; 12]), Ok(()));
    }

    #[test]
    fn owned_record_requires_exact_length_and_errors_are_typed() {
        // Proves OwnedRecord refuses trailing bytes and errors map to ChecksumMismatch/Corruption.
        let key = [2u8; 9];
        let mut b = Vec::new();
        rec(&key, b"value").encode(&mut b);
        let owned = OwnedRecord::from_encoded(b.clone()).unwrap();
        assert_eq!(owned.as_record(), rec(&key, b"value"));
        assert_eq!(owned.clone().into_value(), b"value");
        let n = b.len();
        b.push(0);
        assert_eq!(
            OwnedRecord::from_encoded(b).unwrap_err(),
            DecodeError::TrailingBytes(n)
        );
        let p = Path::new("x.vlog");
        let e = DecodeError::ChecksumMismatch {
            stored: 1,
            computed: 2,
        }
        .into_error(p, 99);
        assert!(matches!(e, Error::ChecksumMismatch { offset: 99, .. }));
        let e = DecodeError::KeyLength(3).into_error(p, 98);
        assert!(matches!(e, Error::Corruption { offset: 98, .. }));
    }

    #[test]
    fn record_pos_maps_to_value_pointers() {
        // Proves the pointer conversion is lossless and refuses offsets past u32.
        let pos = RecordPos {
            offset: 100,
            len: 20,
        };
        let vp = pos.value_pointer(3).unwrap();
        assert_eq!(RecordPos::from(vp), pos);
        assert_eq!(pos.end(), 120);
        assert_eq!(
            RecordPos {
                offset: 1 << 32,
                len: 1
            }
            .value_pointer(1),
            None
        );
    }

    proptest! {
        #[test]
        fn records_round_trip(m in any::<u8>(), um: u8, exp: u64,
                              k in proptest::collection::vec(any::<u8>(), 8..40),
                              v in proptest::collection::vec(any::<u8>(), 0..100),
                              tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            // Proves encode/decode are inverse, the length is exact, and trailing bytes
            // (the next record) are left alone.
            let mut meta_bits = m & meta::ALL;
            if v.len() != ValuePointer::ENCODED_LEN { meta_bits &= !meta::VALUE_POINTER; }
            let r = RecordRef { meta: meta_bits, user_meta: um, expires_at: exp, key: &k, value: &v };
            prop_assert!(r.validate().is_ok());
            let mut b = Vec::new();
            r.encode(&mut b);
            let n = b.len();
            b.extend_from_slice(&tail);
            prop_assert_eq!(decode_record(&b), Ok((r, n)));
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Proves arbitrary bytes decode or give a DecodeError, and a decoded record obeys
            // every rule the writer enforces.
            if let Ok((r, n)) = decode_record(&b) {
                prop_assert!(n <= b.len());
                prop_assert!(r.validate().is_ok());
            }
            let _ = OwnedRecord::from_encoded(b);
        }
    }
}

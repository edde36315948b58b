//! Values as the LSM stores them: meta bits, the value struct, and value pointers.
//!
//! ```text
//! value_struct  := meta u8 ‖ user_meta u8 ‖ uvarint expires_at ‖ value bytes (to the end)
//! value_pointer := file_id u32 LE ‖ offset u32 LE ‖ len u32 LE              12 bytes
//! ```
//!
//! When `meta` has [`meta::VALUE_POINTER`], the value bytes are an encoded [`ValuePointer`]
//! to a record in the value log. Format page: docs/format/key.md (value struct) and
//! docs/format/log.md (what a pointer points at).

use crate::coding::{self, Reader};

/// Bits of the `meta` byte. Numbered as in Badger so that a backup's meta byte means the same.
pub mod meta {
    /// The version is a delete (tombstone).
    pub const DELETE: u8 = 0x01;
    /// The value is a [`super::ValuePointer`] into the value log.
    pub const VALUE_POINTER: u8 = 0x02;
    /// Versions older than this one may be discarded.
    pub const DISCARD_EARLIER_VERSIONS: u8 = 0x04;
    /// The value is an operand of the merge operator; never dropped by version retention.
    pub const MERGE: u8 = 0x08;
    /// The entry belongs to a transaction (WAL framing).
    pub const TXN: u8 = 0x40;
    /// The entry ends a transaction (WAL framing).
    pub const FIN_TXN: u8 = 0x80;
    /// Every bit SettDB defines; others are corruption.
    pub const ALL: u8 = DELETE | VALUE_POINTER | DISCARD_EARLIER_VERSIONS | MERGE | TXN | FIN_TXN;
}

/// A value as stored under an internal key in a memtable or table.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ValueStruct {
    /// [`meta`] bits.
    pub meta: u8,
    /// A byte the user attaches to the entry, opaque to SettDB.
    pub user_meta: u8,
    /// Unix time in seconds after which the entry is expired; 0 means never.
    pub expires_at: u64,
    /// The value, or an encoded [`ValuePointer`] when `meta` has [`meta::VALUE_POINTER`].
    pub value: Vec<u8>,
}

impl ValueStruct {
    /// Size of the encoding of this value struct.
    pub fn encoded_len(&self) -> usize {
        2 + coding::uvarint_len(self.expires_at) + self.value.len()
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_value_parts(out, self.meta, self.user_meta, self.expires_at, &self.value);
    }

    /// Decodes a value struct occupying all of `buf`. `None` if malformed.
    pub fn decode(buf: &[u8]) -> Option<Self> {
        let v = ValueRef::decode(buf)?;
        Some(v.to_owned())
    }

    /// A borrowed view of this value struct.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        ValueRef {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            value: &self.value,
        }
    }

    /// True if this version is a tombstone.
    pub fn is_delete(&self) -> bool {
        self.meta & meta::DELETE != 0
    }

    /// True if the entry has expired at unix time `now_secs`.
    pub fn is_expired(&self, now_secs: u64) -> bool {
        is_expired(self.expires_at, now_secs)
    }
}

impl std::fmt::Debug for ValueStruct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueStruct")
            .field("meta", &format_args!("{:#04x}", self.meta))
            .field("user_meta", &self.user_meta)
            .field("expires_at", &self.expires_at)
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// A borrowed view of an encoded value struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueRef<'a> {
    /// [`meta`] bits.
    pub meta: u8,
    /// User meta byte.
    pub user_meta: u8,
    /// Expiry, unix seconds; 0 never.
    pub expires_at: u64,
    /// Value bytes (or an encoded pointer).
    pub value: &'a [u8],
}

impl<'a> ValueRef<'a> {
    /// Decodes a value struct occupying all of `buf`. `None` if malformed (unknown meta bits,
    /// bad varint, or a value-pointer flag on bytes that are not a pointer).
    pub fn decode(buf: &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(buf);
        let meta_bits = r.u8()?;
        if meta_bits & !meta::ALL != 0 {
            return None;
        }
        let user_meta = r.u8()?;
        let expires_at = r.uvarint()?;
        let value = r.bytes(r.remaining())?;
        if meta_bits & meta::VALUE_POINTER != 0 && value.len() != ValuePointer::ENCODED_LEN {
            return None;
        }
        Some(ValueRef {
            meta: meta_bits,
            user_meta,
            expires_at,
            value,
        })
    }

    /// Size of the encoding of this value struct.
    pub fn encoded_len(&self) -> usize {
        2 + coding::uvarint_len(self.expires_at) + self.value.len()
    }

    /// Copies into an owned [`ValueStruct`].
    pub fn to_owned(&self) -> ValueStruct {
        ValueStruct {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            value: self.value.to_vec(),
        }
    }

    /// The value pointer, when this value is one.
    pub fn value_pointer(&self) -> Option<ValuePointer> {
        if self.meta & meta::VALUE_POINTER == 0 {
            return None;
        }
        ValuePointer::decode(self.value)
    }
}

/// Appends a value struct's encoding from its parts (no intermediate allocation).
#[inline]
pub fn encode_value_parts(
    out: &mut Vec<u8>,
    meta_bits: u8,
    user_meta: u8,
    expires_at: u64,
    value: &[u8],
) {
    out.push(meta_bits);
    out.push(user_meta);
    coding::put_uvarint(out, expires_at);
    out.extend_from_slice(value);
}

/// True if an entry with `expires_at` has expired at `now_secs` (0 never expires).
#[inline]
pub fn is_expired(expires_at: u64, now_secs: u64) -> bool {
    expires_at != 0 && expires_at <= now_secs
}

/// Where a value lives in the value log: the record at `offset` of length `len` in file
/// `file_id`. `len` covers the whole record (header, key, value, checksum).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValuePointer {
    /// Value-log file number.
    pub file_id: u32,
    /// Byte offset of the record within the file.
    pub offset: u32,
    /// Length of the whole record in bytes.
    pub len: u32,
}

impl std::fmt::Display for ValuePointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "value-log file {} offset {} length {}",
            self.file_id, self.offset, self.len
        )
    }
}

impl ValuePointer {
    /// Bytes of an encoded pointer.
    pub const ENCODED_LEN: usize = 12;

    /// Encodes as three little-endian u32s.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0..4].copy_from_slice(&self.file_id.to_le_bytes());
        out[4..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Decodes exactly [`Self::ENCODED_LEN`] bytes.
    pub fn decode(buf: &[u8]) -> Option<Self> {
        if buf.len() != Self::ENCODED_LEN {
            return None;
        }
        Some(ValuePointer {
            file_id: coding::get_u32(buf, 0)?,
            offset: coding::get_u32(buf, 4)?,
            len: coding::get_u32(buf, 8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn value_struct_round_trips(m in 0u8..=0xff, um: u8, exp: u64,
                                    v in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Proves encode/decode are inverse for every valid meta (pointer flag cleared
            // unless the value is a pointer's size) and encoded_len is exact.
            let mut meta_bits = m & meta::ALL;
            if v.len() != ValuePointer::ENCODED_LEN { meta_bits &= !meta::VALUE_POINTER; }
            let vs = ValueStruct { meta: meta_bits, user_meta: um, expires_at: exp, value: v };
            let mut buf = Vec::new();
            vs.encode(&mut buf);
            prop_assert_eq!(buf.len(), vs.encoded_len());
            prop_assert_eq!(ValueStruct::decode(&buf), Some(vs));
        }

        #[test]
        fn value_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            // Proves arbitrary bytes decode or are refused, and refusal covers unknown meta bits.
            if let Some(v) = ValueRef::decode(&bytes) {
                prop_assert_eq!(v.meta & !meta::ALL, 0);
            }
        }

        #[test]
        fn pointer_round_trips(f: u32, o: u32, l: u32) {
            // Proves the 12-byte little-endian pointer encoding is lossless.
            let p = ValuePointer { file_id: f, offset: o, len: l };
            prop_assert_eq!(ValuePointer::decode(&p.encode()), Some(p));
        }
    }

    #[test]
    fn pointer_is_little_endian() {
        // Proves the byte layout is explicit LE, not struct memory.
        let p = ValuePointer {
            file_id: 1,
            offset: 0x0203,
            len: 0x0405_0607,
        };
        assert_eq!(p.encode(), [1, 0, 0, 0, 3, 2, 0, 0, 7, 6, 5, 4]);
    }

    #[test]
    fn expiry_zero_means_never() {
        // Proves 0 never expires and the boundary second counts as expired.
        assert!(!is_expired(0, u64::MAX));
        assert!(is_expired(10, 10));
        assert!(!is_expired(11, 10));
    }
}

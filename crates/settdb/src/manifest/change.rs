//! One edit of the table set, and the encoding of a change set (the body of a MANIFEST record).
//!
//! ```text
//! change_set := count uvarint | change{count}          -- nothing may follow the last change
//! change     := op u8 = 1 (create) | table_id uvarint | level u8 | compression u8 | key_id uvarint
//!             | op u8 = 2 (delete) | table_id uvarint
//! ```
//!
//! Normative page: docs/format/manifest.md.

use crate::coding::{self, Reader};
use crate::options::Compression;

/// `op` byte of a create.
const OP_CREATE: u8 = 1;
/// `op` byte of a delete.
const OP_DELETE: u8 = 2;

/// Smallest encoded change: a delete of a one-byte table id.
pub const MIN_CHANGE_LEN: usize = 1 + 1;
/// Largest encoded change: a create with ten-byte varints.
pub const MAX_CHANGE_LEN: usize = 1 + coding::MAX_VARINT64_LEN + 1 + 1 + coding::MAX_VARINT64_LEN;

/// One edit of the set of live tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestChange {
    /// A table file became part of the tree (it is durable before this edit is written).
    Create {
        /// The table's id (its file is named after it).
        table_id: u64,
        /// The level it belongs to.
        level: u8,
        /// Block compression of the table (the zstd level is not stored).
        compression: Compression,
        /// Data key that encrypts the table; 0 means plaintext.
        key_id: u64,
    },
    /// A table left the tree (its file may be deleted once this edit is durable).
    Delete {
        /// The table's id.
        table_id: u64,
    },
}

impl ManifestChange {
    /// A create change.
    pub fn create(table_id: u64, level: u8, compression: Compression, key_id: u64) -> Self {
        ManifestChange::Create {
            table_id,
            level,
            compression,
            key_id,
        }
    }

    /// A delete change.
    pub fn delete(table_id: u64) -> Self {
        ManifestChange::Delete { table_id }
    }

    /// The table the change is about.
    pub fn table_id(&self) -> u64 {
        match *self {
            ManifestChange::Create { table_id, .. } | ManifestChange::Delete { table_id } => {
                table_id
            }
        }
    }

    /// Bytes of the encoding of this change.
    pub fn encoded_len(&self) -> usize {
        match *self {
            ManifestChange::Create {
                table_id, key_id, ..
            } => 1 + coding::uvarint_len(table_id) + 2 + coding::uvarint_len(key_id),
            ManifestChange::Delete { table_id } => 1 + coding::uvarint_len(table_id),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            ManifestChange::Create {
                table_id,
                level,
                compression,
                key_id,
            } => {
                out.push(OP_CREATE);
                coding::put_uvarint(out, table_id);
                out.push(level);
                out.push(compression.to_byte());
                coding::put_uvarint(out, key_id);
            }
            ManifestChange::Delete { table_id } => {
                out.push(OP_DELETE);
                coding::put_uvarint(out, table_id);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        let op = r.u8().ok_or("change cut before its op byte")?;
        let table_id = r.uvarint().ok_or("bad table id varint")?;
        match op {
            OP_CREATE => {
                let level = r.u8().ok_or("create cut before its level")?;
                let byte = r.u8().ok_or("create cut before its compression")?;
                let compression = Compression::from_byte(byte).ok_or("unknown compression byte")?;
                let key_id = r.uvarint().ok_or("bad key id varint")?;
                Ok(ManifestChange::create(table_id, level, compression, key_id))
            }
            OP_DELETE => Ok(ManifestChange::delete(table_id)),
            _ => Err("unknown change op"),
        }
    }
}

/// Bytes of the encoding of a change set.
pub fn change_set_encoded_len(changes: &[ManifestChange]) -> usize {
    let body: usize = changes.iter().map(ManifestChange::encoded_len).sum();
    coding::uvarint_len(changes.len() as u64) + body
}

/// Appends the encoding of a change set.
pub fn encode_change_set(out: &mut Vec<u8>, changes: &[ManifestChange]) {
    let start = out.len();
    coding::put_uvarint(out, changes.len() as u64);
    for c in changes {
        c.encode(out);
    }
    debug_assert_eq!(out.len() - start, change_set_encoded_len(changes));
}

/// Decodes a change set occupying all of `body` (untrusted bytes). The error says what was
/// wrong; the caller names the file and offset.
pub fn decode_change_set(body: &[u8]) -> Result<Vec<ManifestChange>, &'static str> {
    let mut r = Reader::new(body);
    let count = r.uvarint().ok_or("bad change count varint")?;
    // Every change takes at least MIN_CHANGE_LEN bytes: a count above that bound is refused
    // before it sizes an allocation.
    let most = r.remaining() / MIN_CHANGE_LEN;
    let count = usize::try_from(count)
        .ok()
        .filter(|&n| n <= most)
        .ok_or("change count larger than the record can hold")?;
    let mut changes = Vec::with_capacity(count);
    for _ in 0..count {
        changes.push(ManifestChange::decode(&mut r)?);
    }
    if !r.is_empty() {
        return Err("bytes after the last change");
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::test_support::compression_strategy;
    use proptest::prelude::*;

    fn change_strategy() -> impl Strategy<Value = ManifestChange> {
        prop_oneof![
            (
                any::<u64>(),
                any::<u8>(),
                compression_strategy(),
                any::<u64>()
            )
                .prop_map(|(t, l, c, k)| ManifestChange::create(t, l, c, k)),
            any::<u64>().prop_map(ManifestChange::delete),
        ]
    }

    proptest! {
        #[test]
        fn change_set_round_trips(changes in proptest::collection::vec(change_strategy(), 0..20)) {
            // Proves encode/decode are inverse and encoded_len is exact, for any field values.
            let mut buf = Vec::new();
            encode_change_set(&mut buf, &changes);
            prop_assert_eq!(buf.len(), change_set_encoded_len(&changes));
            prop_assert_eq!(decode_change_set(&buf), Ok(changes.clone()));
            for c in &changes {
                prop_assert!((MIN_CHANGE_LEN..=MAX_CHANGE_LEN).contains(&c.encoded_len()));
            }
        }

        #[test]
        fn change_set_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Proves arbitrary bytes decode or are refused with a reason, never a panic.
            let _ = decode_change_set(&bytes);
        }
    }

    #[test]
    fn malformed_change_sets_are_refused() {
        // Proves each decode rule: huge count, unknown op, unknown compression, trailing bytes,
        // cut change.
        assert!(decode_change_set(&[0xff, 0xff, 0xff, 0xff, 0x0f, 2, 1]).is_err());
        assert!(decode_change_set(&[1, 3, 5]).is_err());
        assert!(decode_change_set(&[1, 1, 5, 0, 9, 0]).is_err());
        assert!(decode_change_set(&[1, 2, 5, 0]).is_err());
        assert!(decode_change_set(&[1, 1, 5, 0]).is_err());
        assert_eq!(decode_change_set(&[0]), Ok(vec![]));
        assert_eq!(
            decode_change_set(&[2, 1, 5, 3, 1, 0, 2, 5]),
            Ok(vec![
                ManifestChange::create(5, 3, Compression::Snappy, 0),
                ManifestChange::delete(5)
            ])
        );
    }
}

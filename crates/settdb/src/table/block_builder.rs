//! Encodes one data block.
//!
//! ```text
//! data_block := entry{n} ‖ offset u32 LE {n} ‖ n u32 LE
//! entry      := overlap u16 LE ‖ diff_len u16 LE ‖ diff ‖ value_struct
//! ```
//!
//! `overlap` is the prefix shared with the block's first key, so any entry decodes from the first
//! key alone. Format page: docs/format/table.md (data block).

use crate::coding;
use crate::key::{compare_keys, is_valid_internal_key};
use crate::value::{encode_value_parts, ValueRef};

/// Bytes of an entry header (`overlap u16 ‖ diff_len u16`).
pub const ENTRY_HEADER_LEN: usize = 4;
/// Bytes of one entry's slot in the offsets array.
pub const OFFSET_LEN: usize = 4;
/// Bytes of the entry count at the end of a block.
pub const COUNT_LEN: usize = 4;

/// Builds one data block in memory. Reused across blocks via [`BlockBuilder::reset`].
///
/// Invariant: keys added are valid internal keys in strictly ascending `compare_keys` order
/// (the table builder checks this and reports misuse as an error before calling).
#[derive(Debug, Default)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    offsets: Vec<u32>,
    first_key: Vec<u8>,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if no entry was added since the last reset.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The last key added (empty if none).
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Raw size of the block if finished now.
    pub fn size_bytes(&self) -> usize {
        self.buf.len() + OFFSET_LEN * self.offsets.len() + COUNT_LEN
    }

    /// Raw size of the block if `key` and `value` were added and it were then finished.
    pub fn size_after(&self, key: &[u8], value: &ValueRef<'_>) -> usize {
        self.size_bytes() + entry_len(self.overlap(key), key, value) + OFFSET_LEN
    }

    /// Appends an entry. REQUIRES: `key` is a valid internal key greater than the last one,
    /// and the block stays within `u32` offsets (the table builder caps block size).
    pub fn add(&mut self, key: &[u8], value: &ValueRef<'_>) {
        debug_assert!(is_valid_internal_key(key));
        debug_assert!(self.is_empty() || compare_keys(&self.last_key, key).is_lt());
        if self.is_empty() {
            self.first_key.clear();
            self.first_key.extend_from_slice(key);
        }
        let overlap = self.overlap(key);
        let diff = &key[overlap..];
        let start = u32::try_from(self.buf.len());
        debug_assert!(start.is_ok(), "block over 4 GiB");
        self.offsets.push(start.unwrap_or(u32::MAX));
        // Both fit in u16: internal keys are at most MAX_INTERNAL_KEY_SIZE < 65536 bytes.
        coding::put_u16(&mut self.buf, overlap as u16);
        coding::put_u16(&mut self.buf, diff.len() as u16);
        self.buf.extend_from_slice(diff);
        encode_value_parts(
            &mut self.buf,
            value.meta,
            value.user_meta,
            value.expires_at,
            value.value,
        );
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
    }

    /// Appends the offsets array and count and returns the finished block's bytes.
    /// REQUIRES: not empty. Call [`BlockBuilder::reset`] before adding again.
    pub fn finish(&mut self) -> &[u8] {
        debug_assert!(!self.is_empty());
        for &o in &self.offsets {
            coding::put_u32(&mut self.buf, o);
        }
        coding::put_u32(&mut self.buf, self.offsets.len() as u32);
        &self.buf
    }

    /// Empties the block, keeping its buffers.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.offsets.clear();
        self.first_key.clear();
        self.last_key.clear();
    }

    /// Bytes `key` shares with the block's first key (0 for the first entry).
    fn overlap(&self, key: &[u8]) -> usize {
        if self.is_empty() {
            return 0;
        }
        self.first_key
            .iter()
            .zip(key)
            .take_while(|(a, b)| a == b)
            .count()
    }
}

/// Encoded size of an entry (header, key diff, value struct), without its offset slot.
pub fn entry_len(overlap: usize, key: &[u8], value: &ValueRef<'_>) -> usize {
    ENTRY_HEADER_LEN
        + (key.len() - overlap)
        + 2
        + coding::uvarint_len(value.expires_at)
        + value.value.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::key_with_version;

    #[test]
    fn layout_matches_the_grammar() {
        // Proves the exact bytes of a two-entry block: prefix vs the first key, LE offsets.
        let mut b = BlockBuilder::new();
        let v = ValueRef {
            meta: 0,
            user_meta: 7,
            expires_at: 1,
            value: b"x",
        };
        let k1 = key_with_version(b"ab", 1);
        let k2 = key_with_version(b"ac", 1);
        assert_eq!(b.size_after(&k1, &v), 4 + 10 + 4 + 4 + 4);
        b.add(&k1, &v);
        b.add(&k2, &v);
        let size = b.size_bytes();
        let bytes = b.finish().to_vec();
        assert_eq!(bytes.len(), size);
        assert_eq!(&bytes[0..4], &[0, 0, 10, 0]);
        assert_eq!(&bytes[4..14], &k1[..]);
        assert_eq!(&bytes[14..18], &[0, 7, 1, b'x']);
        assert_eq!(&bytes[18..22], &[1, 0, 9, 0]); // overlap 1 ("a"), diff 9
        let n = bytes.len();
        assert_eq!(&bytes[n - 12..], &[0, 0, 0, 0, 18, 0, 0, 0, 2, 0, 0, 0]);
    }
}

//! The decoded block index, held in memory while a table is open.
//!
//! ```text
//! index       := block_count u32 LE ‖ index_entry{block_count}
//! index_entry := block_offset u64 LE ‖ stored_len u32 LE ‖ key_len u16 LE ‖ last_key
//! ```
//!
//! Each entry names a data block by its file offset and stored length and carries its LAST
//! key: the first block whose last key is `>= k` holds the first entry `>= k`, so a seek reads
//! exactly one block. Format page: docs/format/table.md (index region).

use std::cmp::Ordering;
use std::path::Path;

use super::block_frame::BLOCK_TRAILER_LEN;
use super::compression::MAX_BLOCK_BYTES;
use crate::coding::Reader;
use crate::crypto::TAG_LEN;
use crate::error::{Error, Result};
use crate::key::{compare_keys, is_valid_internal_key, user_key, user_key_prefix, VERSION_LEN};

/// Bytes of an index entry without its key.
pub const INDEX_ENTRY_FIXED_LEN: usize = 8 + 4 + 2;
/// Smallest index entry: fixed part plus the shortest internal key.
pub const MIN_INDEX_ENTRY_LEN: usize = INDEX_ENTRY_FIXED_LEN + VERSION_LEN;
/// Largest stored data block: a raw block of [`MAX_BLOCK_BYTES`] and its trailer (a block is
/// stored compressed only when that is smaller).
pub const MAX_STORED_BLOCK_LEN: usize = MAX_BLOCK_BYTES + BLOCK_TRAILER_LEN + TAG_LEN;

/// Where a stored block lies in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHandle {
    /// File offset of the stored block.
    pub offset: u64,
    /// Stored length (payload and trailer).
    pub stored_len: u32,
}

#[derive(Clone, Copy, Debug)]
struct IndexEntry {
    handle: BlockHandle,
    key_start: usize,
    key_len: u16,
}

/// The block index of one table.
///
/// Invariants (established by [`BlockIndex::decode`]): at least one block; blocks tile
/// `[0, data_end)` in order; last keys are valid internal keys, strictly ascending.
#[derive(Debug)]
pub struct BlockIndex {
    keys: Vec<u8>,
    entries: Vec<IndexEntry>,
    /// [`user_key_prefix`] of every block's last key, so [`BlockIndex::find`] compares dense
    /// numbers and reads a key only when the prefixes tie.
    prefixes: Vec<u64>,
}

impl BlockIndex {
    /// Decodes and validates the index payload read from `file` at `offset`; data blocks must
    /// tile `[0, data_end)`.
    pub fn decode(payload: &[u8], file: &Path, offset: u64, data_end: u64) -> Result<Self> {
        decode_entries(payload, data_end)
            .map_err(|r| Error::corruption(file, offset, format!("block index: {r}")))
    }

    /// Number of data blocks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false for a decoded index.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The handle of block `i`.
    pub fn handle(&self, i: usize) -> Option<BlockHandle> {
        self.entries.get(i).map(|e| e.handle)
    }

    /// The last key of block `i` (empty if out of range).
    pub fn last_key(&self, i: usize) -> &[u8] {
        self.entries
            .get(i)
            .and_then(|e| {
                self.keys
                    .get(e.key_start..e.key_start + usize::from(e.key_len))
            })
            .unwrap_or(&[])
    }

    /// The first block whose last key is `>= key` (`len()` if none): the only block that can
    /// hold the first entry `>= key`.
    pub fn find(&self, key: &[u8]) -> usize {
        let prefix = user_key_prefix(user_key(key));
        let below = |i: usize| match self.prefixes.get(i) {
            Some(&p) if p != prefix => p < prefix,
            _ => compare_keys(self.last_key(i), key) == Ordering::Less,
        };
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Bytes of memory held.
    pub fn size_bytes(&self) -> usize {
        self.keys.len()
            + self.entries.len() * (std::mem::size_of::<IndexEntry>() + std::mem::size_of::<u64>())
    }
}

fn decode_entries(payload: &[u8], data_end: u64) -> std::result::Result<BlockIndex, String> {
    let mut r = Reader::new(payload);
    let count = r.u32().ok_or("shorter than its block count")? as usize;
    if count == 0 {
        return Err("block count is 0".into());
    }
    if count.saturating_mul(MIN_INDEX_ENTRY_LEN) > r.remaining() {
        return Err(format!(
            "{count} blocks cannot fit in {} bytes",
            r.remaining()
        ));
    }
    let mut index = BlockIndex {
        keys: Vec::with_capacity(r.remaining() - count * INDEX_ENTRY_FIXED_LEN),
        entries: Vec::with_capacity(count),
        prefixes: Vec::with_capacity(count),
    };
    let mut expect_offset = 0u64;
    for i in 0..count {
        let e = decode_entry(&mut r, i, expect_offset)?;
        expect_offset = e.0.offset + u64::from(e.0.stored_len);
        if expect_offset > data_end {
            return Err(format!(
                "block {i} ends at {expect_offset}, past the data end {data_end}"
            ));
        }
        let key = e.1;
        if i > 0 && compare_keys(index.last_key(i - 1), key) != Ordering::Less {
            return Err(format!(
                "block {i}: last key not above the previous block's"
            ));
        }
        index.entries.push(IndexEntry {
            handle: e.0,
            key_start: index.keys.len(),
            key_len: key.len() as u16,
        });
        index.prefixes.push(user_key_prefix(user_key(key)));
        index.keys.extend_from_slice(key);
    }
    if expect_offset != data_end {
        return Err(format!(
            "data blocks end at {expect_offset}, the data region at {data_end}"
        ));
    }
    if !r.is_empty() {
        return Err(format!("{} bytes after the last entry", r.remaining()));
    }
    Ok(index)
}

fn decode_entry<'a>(
    r: &mut Reader<'a>,
    i: usize,
    expect_offset: u64,
) -> std::result::Result<(BlockHandle, &'a [u8]), String> {
    let truncated = || format!("entry {i} truncated");
    let offset = r.u64().ok_or_else(truncated)?;
    let stored_len = r.u32().ok_or_else(truncated)?;
    let key_len = r.u16().ok_or_else(truncated)?;
    let key = r.bytes(usize::from(key_len)).ok_or_else(truncated)?;
    if offset != expect_offset {
        return Err(format!(
            "block {i} at {offset}, expected {expect_offset} (blocks must be adjacent)"
        ));
    }
    if !(BLOCK_TRAILER_LEN + 1..=MAX_STORED_BLOCK_LEN).contains(&(stored_len as usize)) {
        return Err(format!(
            "block {i} stored length {stored_len} not in [{}, {MAX_STORED_BLOCK_LEN}]",
            BLOCK_TRAILER_LEN + 1
        ));
    }
    if !is_valid_internal_key(key) {
        return Err(format!(
            "block {i}: last key of {key_len} bytes is not an internal key"
        ));
    }
    Ok((BlockHandle { offset, stored_len }, key))
}

#[cfg(test)]
mod tests {
    use super::super::index_builder::IndexBuilder;
    use super::*;
    use crate::key::key_with_version;

    fn sample() -> (Vec<u8>, u64) {
        let mut b = IndexBuilder::new();
        let mut off = 0;
        for i in 0..5u8 {
            let len = 10 + u32::from(i);
            b.add(
                &key_with_version(&[b'k', i * 2], 1),
                BlockHandle {
                    offset: off,
                    stored_len: len,
                },
            );
            off += u64::from(len);
        }
        (b.finish(), off)
    }

    #[test]
    fn round_trips_and_finds_the_one_block() {
        // Proves decode(encode) gives the handles and keys back, and `find` returns the first
        // block whose last key is >= the probe.
        let (bytes, end) = sample();
        let idx = BlockIndex::decode(&bytes, Path::new("i"), 0, end).unwrap();
        assert_eq!(idx.len(), 5);
        assert_eq!(
            idx.handle(1),
            Some(BlockHandle {
                offset: 10,
                stored_len: 11
            })
        );
        assert_eq!(idx.last_key(4), &key_with_version(&[b'k', 8], 1)[..]);
        assert_eq!(idx.find(&key_with_version(b"a", 1)), 0);
        assert_eq!(idx.find(&key_with_version(&[b'k', 2], 1)), 1);
        assert_eq!(idx.find(&key_with_version(&[b'k', 3], 1)), 2);
        assert_eq!(idx.find(&key_with_version(&[b'k', 2], 0)), 2);
        assert_eq!(idx.find(&key_with_version(b"z", 1)), 5);
    }

    proptest::proptest! {
        #[test]
        fn find_equals_a_binary_search_over_the_keys(
            users in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(&b"\x00ab\xff"[..]), 0..12),
                1..60),
            probe_user in proptest::collection::vec(proptest::sample::select(&b"\x00ab\xff"[..]), 0..12),
            probe_ver in 0u64..4,
        ) {
            // Proves `find` (prefix numbers first, bytes on a tie) equals a binary search by
            // `compare_keys`, with keys sharing long prefixes, shorter than 8 bytes, or
            // prefixes of one another.
            let mut keys: Vec<Vec<u8>> = users
                .iter()
                .enumerate()
                .map(|(i, u)| key_with_version(u, (i % 3) as u64))
                .collect();
            keys.sort_by(|a, b| compare_keys(a, b));
            keys.dedup();
            let mut b = IndexBuilder::new();
            for (i, k) in keys.iter().enumerate() {
                let handle = BlockHandle { offset: i as u64 * 100, stored_len: 100 };
                b.add(k, handle);
            }
            let end = keys.len() as u64 * 100;
            let idx = BlockIndex::decode(&b.finish(), Path::new("i"), 0, end).unwrap();
            let probe = key_with_version(&probe_user, probe_ver);
            let model = keys.partition_point(|k| compare_keys(k, &probe).is_lt());
            proptest::prop_assert_eq!(idx.find(&probe), model);
        }
    }

    #[test]
    fn every_index_check_fires() {
        // Proves a wrong data end, a gap between blocks, a huge count, trailing bytes and
        // unordered keys are each Corruption at the region offset.
        let (good, end) = sample();
        let p = Path::new("i");
        let is_corrupt =
            |r: Result<BlockIndex>| matches!(r, Err(Error::Corruption { offset: 9, .. }));
        assert!(is_corrupt(BlockIndex::decode(&good, p, 9, end + 1)));
        assert!(is_corrupt(BlockIndex::decode(&good, p, 9, end - 1)));
        let mut gap = good.clone();
        gap[4 + 22 + 7] = 1; // high byte of block 1's offset
        assert!(is_corrupt(BlockIndex::decode(&gap, p, 9, end)));
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(is_corrupt(BlockIndex::decode(&huge, p, 9, end)));
        let mut oversized = good.clone();
        oversized[4 + 8..4 + 12].copy_from_slice(&u32::MAX.to_le_bytes()); // block 0's length
        assert!(is_corrupt(BlockIndex::decode(&oversized, p, 9, u64::MAX)));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(is_corrupt(BlockIndex::decode(&trailing, p, 9, end)));
        let mut unordered = good.clone();
        unordered[4 + 14] = b'z'; // block 0's key "k\0" -> "z\0"
        assert!(is_corrupt(BlockIndex::decode(&unordered, p, 9, end)));
        assert!(is_corrupt(BlockIndex::decode(&[0, 0, 0, 0], p, 9, 0)));
    }
}

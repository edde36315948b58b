//! A decoded, validated data block.
//!
//! ```text
//! data_block := entry{n} ‖ offset u32 LE {n} ‖ n u32 LE
//! entry      := overlap u16 LE ‖ diff_len u16 LE ‖ diff ‖ value_struct
//! ```
//!
//! [`Block::decode`] checks every entry once (bounds, key validity, ascending order, value
//! struct) so that lookups and iteration over a decoded block cannot fail. Format page:
//! docs/format/table.md (data block).

use std::cmp::Ordering;
use std::path::Path;

use super::block_builder::{COUNT_LEN, ENTRY_HEADER_LEN, OFFSET_LEN};
use super::compression::MAX_BLOCK_BYTES;
use crate::coding;
use crate::error::{Error, Result};
use crate::key::{
    compare_keys, is_valid_internal_key, user_key, user_key_prefix, version, VERSION_LEN,
};
use crate::value::ValueRef;

/// Where one entry's parts lie in the block bytes (validated by [`Block::decode`]).
#[derive(Clone, Copy, Debug)]
struct EntryPos {
    /// Start of the key diff.
    diff_start: u32,
    /// Length of the key diff.
    diff_len: u16,
    /// Bytes shared with the first key.
    overlap: u16,
    /// End of the value struct (start of the next entry).
    value_end: u32,
}

impl EntryPos {
    fn value_start(&self) -> usize {
        self.diff_start as usize + usize::from(self.diff_len)
    }
}

/// A decoded data block: immutable, shared as `Arc<Block>` by iterators (and later a cache).
///
/// Invariants (established by [`Block::decode`]): at least one entry; every `EntryPos` lies
/// inside `data`; keys are valid internal keys in strictly ascending `compare_keys` order;
/// every value struct decodes.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    entries: Vec<EntryPos>,
    /// [`user_key_prefix`] of every entry's key: a seek compares these dense numbers and
    /// reads an entry's bytes only on a tie, so it touches a few cache lines of this array
    /// instead of one line of `entries` and one of `data` per step.
    prefixes: Vec<u64>,
}

impl Block {
    /// Decodes and validates the raw bytes of a data block read from `file` at `offset` (the
    /// stored block's file offset, used in errors).
    pub fn decode(data: Vec<u8>, file: &Path, offset: u64) -> Result<Block> {
        let bad = |reason: String| Error::corruption(file, offset, format!("data block: {reason}"));
        let offsets_start = offsets_start(&data).map_err(bad)?;
        let n = (data.len() - COUNT_LEN - offsets_start) / OFFSET_LEN;
        // `n <= data.len() / 4`: the allocation is justified by the input.
        let mut entries = Vec::with_capacity(n);
        let mut first_key_len = 0usize;
        for i in 0..n {
            let start = entry_offset(&data, offsets_start, i);
            let end = match i + 1 < n {
                true => entry_offset(&data, offsets_start, i + 1),
                false => offsets_start,
            };
            let e = parse_entry(&data, start, end, first_key_len)
                .map_err(|r| bad(format!("entry {i} at byte {start}: {r}")))?;
            if i == 0 {
                first_key_len = usize::from(e.diff_len);
            }
            entries.push(e);
        }
        let mut block = Block {
            data,
            entries,
            prefixes: Vec::new(),
        };
        block.prefixes = block.check_keys_and_values().map_err(bad)?;
        Ok(block)
    }

    /// Number of entries (at least 1).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false for a decoded block; present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of memory the block holds (for cache accounting).
    pub fn size_bytes(&self) -> usize {
        self.data.len()
            + self.entries.len() * (std::mem::size_of::<EntryPos>() + std::mem::size_of::<u64>())
    }

    /// Writes the key of entry `i` into `out`. REQUIRES: `i < len()`.
    pub fn key_at(&self, i: usize, out: &mut Vec<u8>) {
        out.clear();
        let (shared, own) = self.key_parts(i);
        out.extend_from_slice(shared);
        out.extend_from_slice(own);
    }

    /// The value struct of entry `i`. REQUIRES: `i < len()`.
    pub fn value_at(&self, i: usize) -> ValueRef<'_> {
        let decoded = self.entries.get(i).and_then(|e| {
            let start = e.value_start();
            ValueRef::decode(self.data.get(start..e.value_end as usize)?)
        });
        debug_assert!(decoded.is_some(), "value {i} was validated at decode");
        decoded.unwrap_or(ValueRef {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: &[],
        })
    }

    /// Index of the first entry with key `>= key` (`len()` if none).
    pub fn seek(&self, key: &[u8]) -> usize {
        let prefix = user_key_prefix(user_key(key));
        self.partition(|i| self.compare_with_prefix(i, prefix, key) == Ordering::Less)
    }

    /// Index of the last entry with key `<= key`, or `None` if every key is greater.
    pub fn seek_for_prev(&self, key: &[u8]) -> Option<usize> {
        let prefix = user_key_prefix(user_key(key));
        self.partition(|i| self.compare_with_prefix(i, prefix, key) != Ordering::Greater)
            .checked_sub(1)
    }

    /// [`Block::compare_at`], decided by the prefixes when they differ (`prefix` is `key`'s).
    fn compare_with_prefix(&self, i: usize, prefix: u64, key: &[u8]) -> Ordering {
        match self.prefixes.get(i) {
            Some(&p) if p != prefix => p.cmp(&prefix),
            _ => self.compare_at(i, key),
        }
    }

    /// `compare_keys(key of entry i, key)` without assembling the entry's key: a seek
    /// compares about log2(entries) keys, and copying each one (two small memcpys into a
    /// scratch buffer) was the largest single cost of a cached read (13% in a perf profile).
    /// REQUIRES: `i < len()`.
    pub fn compare_at(&self, i: usize, key: &[u8]) -> Ordering {
        let (shared, own) = self.key_parts(i);
        let user_len = (shared.len() + own.len()).saturating_sub(VERSION_LEN);
        let (probe_user, probe_suffix) = key.split_at(key.len().saturating_sub(VERSION_LEN));
        if shared.len() <= user_len {
            let (own_user, own_suffix) = own.split_at(user_len - shared.len());
            cmp_concat(shared, own_user, probe_user).then_with(|| own_suffix.cmp(probe_suffix))
        } else {
            // The bytes shared with the first key reach into the version suffix: two versions
            // of one user key.
            let (user, shared_suffix) = shared.split_at(user_len);
            user.cmp(probe_user)
                .then_with(|| cmp_concat(shared_suffix, own, probe_suffix))
        }
    }

    /// True if entry `i` has `key`'s user key. REQUIRES: `i < len()`.
    pub fn same_user_key_at(&self, i: usize, key: &[u8]) -> bool {
        let (shared, own) = self.key_parts(i);
        let user_len = (shared.len() + own.len()).saturating_sub(VERSION_LEN);
        let probe_user = &key[..key.len().saturating_sub(VERSION_LEN)];
        if user_len != probe_user.len() {
            return false;
        }
        let cut = shared.len().min(user_len);
        let (probe_shared, probe_own) = probe_user.split_at(cut);
        shared[..cut] == *probe_shared && own[..user_len - cut] == *probe_own
    }

    /// The version of entry `i`'s key. REQUIRES: `i < len()`.
    pub fn version_at(&self, i: usize) -> u64 {
        let (shared, own) = self.key_parts(i);
        if own.len() >= VERSION_LEN {
            return version(own);
        }
        // The suffix starts in the shared bytes (decode checked the key is >= 8 bytes).
        let mut suffix = [0u8; VERSION_LEN];
        let tail = &shared[shared.len().saturating_sub(VERSION_LEN - own.len())..];
        suffix[..tail.len()].copy_from_slice(tail);
        suffix[tail.len()..tail.len() + own.len()].copy_from_slice(own);
        version(&suffix)
    }

    /// Entry `i`'s key in two parts: the bytes it shares with the first key, then its own.
    fn key_parts(&self, i: usize) -> (&[u8], &[u8]) {
        let (Some(e), Some(first)) = (self.entries.get(i), self.entries.first()) else {
            debug_assert!(false, "entry {i} out of range");
            return (&[], &[]);
        };
        (
            self.bytes(first.diff_start as usize, usize::from(e.overlap)),
            self.bytes(e.diff_start as usize, usize::from(e.diff_len)),
        )
    }

    /// Binary search: the number of leading entries that satisfy `pred` (which must be true
    /// for a prefix of the entries and false after).
    fn partition(&self, pred: impl Fn(usize) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// `len` bytes at `start`; empty (and a debug assertion) if out of range, which decode
    /// rules out.
    fn bytes(&self, start: usize, len: usize) -> &[u8] {
        let b = start
            .checked_add(len)
            .and_then(|end| self.data.get(start..end));
        debug_assert!(b.is_some(), "validated range {start}+{len} out of block");
        b.unwrap_or(&[])
    }

    /// Second decode pass: keys valid and strictly ascending, values decodable. Returns the
    /// keys' prefixes.
    fn check_keys_and_values(&self) -> std::result::Result<Vec<u64>, String> {
        let (mut prev, mut cur) = (Vec::new(), Vec::new());
        let mut prefixes = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            self.key_at(i, &mut cur);
            if !is_valid_internal_key(&cur) {
                return Err(format!(
                    "entry {i}: key of {} bytes is not an internal key",
                    cur.len()
                ));
            }
            if i > 0 && compare_keys(&prev, &cur) != Ordering::Less {
                return Err(format!("entry {i}: key not above the previous key"));
            }
            let e = &self.entries[i];
            let value = self.data.get(e.value_start()..e.value_end as usize);
            if value.and_then(ValueRef::decode).is_none() {
                return Err(format!("entry {i}: malformed value struct"));
            }
            prefixes.push(user_key_prefix(user_key(&cur)));
            std::mem::swap(&mut prev, &mut cur);
        }
        Ok(prefixes)
    }
}

/// Lexicographic order of the concatenation `a ‖ b` against `y`.
fn cmp_concat(a: &[u8], b: &[u8], y: &[u8]) -> Ordering {
    let n = a.len().min(y.len());
    match a[..n].cmp(&y[..n]) {
        Ordering::Equal if a.len() > y.len() => Ordering::Greater,
        Ordering::Equal => b.cmp(&y[n..]),
        other => other,
    }
}

/// Validates the count and offsets array; returns where the offsets array starts.
fn offsets_start(data: &[u8]) -> std::result::Result<usize, String> {
    if data.len() > MAX_BLOCK_BYTES {
        // Also keeps every position within the u32 offsets.
        return Err(format!(
            "{} bytes is over the {MAX_BLOCK_BYTES}-byte block limit",
            data.len()
        ));
    }
    let count_at = data
        .len()
        .checked_sub(COUNT_LEN)
        .ok_or_else(|| format!("{} bytes is shorter than the entry count", data.len()))?;
    let n = coding::get_u32(data, count_at).unwrap_or(0) as usize;
    if n == 0 {
        return Err("entry count is 0".into());
    }
    let offsets_len = n
        .checked_mul(OFFSET_LEN)
        .filter(|&l| l <= count_at)
        .ok_or_else(|| format!("entry count {n} does not fit in {} bytes", data.len()))?;
    let start = count_at - offsets_len;
    let mut prev: Option<usize> = None;
    for i in 0..n {
        let o = entry_offset(data, start, i);
        let ok = match prev {
            None => o == 0,
            Some(p) => o > p,
        };
        if !ok || o >= start {
            return Err(format!(
                "offset {i} = {o} is out of order or past the entries"
            ));
        }
        prev = Some(o);
    }
    Ok(start)
}

/// Offset `i` of the offsets array starting at `start` (0 if unreadable; callers validated).
fn entry_offset(data: &[u8], start: usize, i: usize) -> usize {
    coding::get_u32(data, start + i * OFFSET_LEN).unwrap_or(0) as usize
}

/// Parses the header of the entry occupying `data[start..end]`.
fn parse_entry(
    data: &[u8],
    start: usize,
    end: usize,
    first_key_len: usize,
) -> std::result::Result<EntryPos, String> {
    let header_end = start + ENTRY_HEADER_LEN;
    if header_end > end {
        return Err("entry shorter than its header".into());
    }
    let overlap = coding::get_u16(data, start).unwrap_or(u16::MAX);
    let diff_len = coding::get_u16(data, start + 2).unwrap_or(u16::MAX);
    if usize::from(overlap) > first_key_len {
        return Err(format!(
            "overlap {overlap} exceeds the first key's {first_key_len} bytes"
        ));
    }
    if header_end + usize::from(diff_len) > end {
        return Err(format!("key diff of {diff_len} bytes runs past the entry"));
    }
    // Positions are below `data.len() <= MAX_BLOCK_BYTES`, so they fit in u32.
    Ok(EntryPos {
        diff_start: header_end as u32,
        diff_len,
        overlap,
        value_end: end as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::super::block_builder::BlockBuilder;
    use super::*;
    use crate::key::{key_with_version, same_user_key};
    use crate::value::{meta, ValueStruct};
    use proptest::prelude::*;

    /// Sorted, distinct internal keys with heavy prefix sharing: user keys over a 3-letter
    /// alphabet (so many are prefixes of others) and a few versions each.
    pub(crate) fn sorted_keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(
            (
                proptest::collection::vec(prop::sample::select(&b"ab\xff"[..]), 0..5),
                0u64..4,
            ),
            1..120,
        )
        .prop_map(|mut v| {
            // One user key with many versions.
            v.extend((0..20).map(|ver| (b"ab".to_vec(), ver * 1000)));
            let mut keys: Vec<Vec<u8>> = v
                .into_iter()
                .map(|(u, ver)| key_with_version(&u, ver))
                .collect();
            keys.sort_by(|a, b| compare_keys(a, b));
            keys.dedup();
            keys
        })
    }

    fn value_for(i: usize) -> ValueStruct {
        let m = [0, meta::DELETE, meta::MERGE, meta::VALUE_POINTER][i % 4];
        let len = if m == meta::VALUE_POINTER { 12 } else { i % 7 };
        ValueStruct {
            meta: m,
            user_meta: i as u8,
            expires_at: (i as u64) << 20,
            value: vec![b'v'; len],
        }
    }

    fn build(keys: &[Vec<u8>]) -> Vec<u8> {
        let mut b = BlockBuilder::new();
        for (i, k) in keys.iter().enumerate() {
            let v = value_for(i);
            b.add(
                k,
                &ValueRef {
                    meta: v.meta,
                    user_meta: v.user_meta,
                    expires_at: v.expires_at,
                    value: &v.value,
                },
            );
        }
        b.finish().to_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn block_round_trips_and_seeks(keys in sorted_keys(), probe_user in
                proptest::collection::vec(prop::sample::select(&b"ab\xff"[..]), 0..5),
                probe_ver in 0u64..25_000) {
            // Proves decode(build(keys)) yields the keys and values in order, and seek /
            // seek_for_prev equal a binary search over the key list.
            let block = Block::decode(build(&keys), Path::new("b"), 0).unwrap();
            prop_assert_eq!(block.len(), keys.len());
            let mut k = Vec::new();
            for (i, want) in keys.iter().enumerate() {
                block.key_at(i, &mut k);
                prop_assert_eq!(&k, want);
                prop_assert_eq!(block.value_at(i).to_owned(), value_for(i));
            }
            let probe = key_with_version(&probe_user, probe_ver);
            let model = keys.partition_point(|k| compare_keys(k, &probe).is_lt());
            prop_assert_eq!(block.seek(&probe), model);
            let model_prev = keys.partition_point(|k| compare_keys(k, &probe).is_le()).checked_sub(1);
            prop_assert_eq!(block.seek_for_prev(&probe), model_prev);
            for (i, want) in keys.iter().enumerate() {
                prop_assert_eq!(block.compare_at(i, &probe), compare_keys(want, &probe));
                prop_assert_eq!(block.same_user_key_at(i, &probe), same_user_key(want, &probe));
                prop_assert_eq!(block.version_at(i), version(want));
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            // Proves arbitrary bytes are decoded or refused as Corruption, never a panic.
            match Block::decode(bytes, Path::new("b"), 5) {
                Ok(b) => prop_assert!(!b.is_empty()),
                Err(e) => {
                    let ok = matches!(e, Error::Corruption { offset: 5, .. });
                    prop_assert!(ok, "{:?}", e);
                }
            }
        }

        #[test]
        fn fuzz_target_body_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            // Proves the block_decode fuzz target's body accepts or refuses arbitrary bytes.
            crate::fuzzing::block_decode(&bytes);
        }

        #[test]
        fn mutated_blocks_never_panic(keys in sorted_keys(), at in any::<prop::sample::Index>(),
                                      byte: u8, cut in any::<prop::sample::Index>()) {
            // Proves a valid block with one byte changed, or truncated, decodes to a block whose
            // every entry is readable, or is refused.
            let good = build(&keys);
            let mut bad = good.clone();
            let i = at.index(bad.len());
            bad[i] = byte;
            let truncated = good[..cut.index(good.len())].to_vec();
            for bytes in [bad, truncated] {
                if let Ok(b) = Block::decode(bytes, Path::new("b"), 0) {
                    let mut k = Vec::new();
                    for j in 0..b.len() { b.key_at(j, &mut k); let _ = b.value_at(j); }
                }
            }
        }
    }

    #[test]
    fn each_structural_check_fires() {
        // Proves zero count, out-of-order offsets, an overlap beyond the first key, unordered
        // keys and a bad value struct are each reported as Corruption.
        let k = |u: &[u8]| key_with_version(u, 1);
        let good = build(&[k(b"a"), k(b"b")]);
        let n = good.len();
        let mut zero = good.clone();
        zero[n - 4..].copy_from_slice(&0u32.to_le_bytes());
        let mut offs = good.clone();
        offs[n - 12..n - 8].copy_from_slice(&5u32.to_le_bytes());
        let mut overlap = good.clone();
        let second = u32::from_le_bytes(good[n - 8..n - 4].try_into().unwrap()) as usize;
        overlap[second..second + 2].copy_from_slice(&200u16.to_le_bytes());
        let mut value = good.clone();
        value[second - 2 - 1] = 0x20; // meta byte of entry 0 (value "" + varint + user_meta)
        let unordered = {
            let mut v = build(&[k(b"a"), k(b"b")]);
            v[4] = b'c'; // first key "a" -> "c" > "b"
            v
        };
        for (name, bytes) in [
            ("zero", zero),
            ("offsets", offs),
            ("overlap", overlap),
            ("value", value),
            ("order", unordered),
        ] {
            let r = Block::decode(bytes, Path::new("b"), 3);
            assert!(
                matches!(r, Err(Error::Corruption { offset: 3, .. })),
                "{name}: {r:?}"
            );
        }
    }
}

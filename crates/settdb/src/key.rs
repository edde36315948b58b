//! Internal keys: a user key followed by its version.
//!
//! ```text
//! internal_key := user_key ‖ suffix
//! suffix       := u64 big-endian (u64::MAX - version)      8 bytes
//! ```
//!
//! The suffix is the one big-endian integer in SettDB: inverted and big-endian, so that for one
//! user key the bytes of newer versions sort first. Ordering is by user key ascending, then by
//! version descending. It is *not* a plain byte compare of the whole internal key: when one
//! user key is a prefix of another (`a` and `ab`) the suffix of the shorter one would be
//! compared against the longer key's bytes. [`compare_keys`] splits the two parts first.
//! Format page: docs/format/key.md.

use std::cmp::Ordering;

use crate::error::{Error, Result};

/// Bytes of the version suffix.
pub const VERSION_LEN: usize = 8;

/// Largest user key accepted (block entry headers store key lengths in u16, with room for the
/// suffix). Same limit as Badger.
pub const MAX_KEY_SIZE: usize = 65_000;

/// User keys starting with this prefix are reserved for SettDB's own records.
pub const INTERNAL_KEY_PREFIX: &[u8] = b"!settdb!";

/// Largest internal key: a maximal user key plus its suffix.
pub const MAX_INTERNAL_KEY_SIZE: usize = MAX_KEY_SIZE + VERSION_LEN;

/// Appends `version` as the internal-key suffix.
#[inline]
pub fn append_version(out: &mut Vec<u8>, version: u64) {
    out.extend_from_slice(&(u64::MAX - version).to_be_bytes());
}

/// Builds the internal key of `user_key` at `version`.
#[inline]
pub fn key_with_version(user_key: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(user_key.len() + VERSION_LEN);
    out.extend_from_slice(user_key);
    append_version(&mut out, version);
    out
}

/// The user-key part of an internal key. An input shorter than the suffix is returned whole;
/// decoders reject such keys before they reach here, this only keeps the function total.
#[inline]
pub fn user_key(internal_key: &[u8]) -> &[u8] {
    &internal_key[..internal_key.len().saturating_sub(VERSION_LEN)]
}

/// The version of an internal key (0 for an input shorter than the suffix).
#[inline]
pub fn version(internal_key: &[u8]) -> u64 {
    match internal_key.len().checked_sub(VERSION_LEN) {
        Some(at) => {
            let mut b = [0u8; VERSION_LEN];
            b.copy_from_slice(&internal_key[at..]);
            u64::MAX - u64::from_be_bytes(b)
        }
        None => 0,
    }
}

/// True if `internal_key` is long enough to hold a suffix and its user key is within bounds.
#[inline]
pub fn is_valid_internal_key(internal_key: &[u8]) -> bool {
    (VERSION_LEN..=MAX_INTERNAL_KEY_SIZE).contains(&internal_key.len())
}

/// Orders internal keys: user key ascending, then version descending.
#[inline]
pub fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    let (ua, sa) = a.split_at(a.len().saturating_sub(VERSION_LEN));
    let (ub, sb) = b.split_at(b.len().saturating_sub(VERSION_LEN));
    ua.cmp(ub).then_with(|| sa.cmp(sb))
}

/// The first 8 bytes of a user key as a big-endian number, zero-padded: a search aid. If
/// `user_key_prefix(a) < user_key_prefix(b)` then `a < b` (at the first byte where the
/// padded prefixes differ, `a` has a smaller byte or has ended), and likewise for `>`; equal
/// prefixes decide nothing. Blocks and indexes keep one per key, so a binary search compares
/// dense numbers and reads a key's bytes only when the prefixes tie.
#[inline]
pub fn user_key_prefix(user_key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = user_key.len().min(8);
    b[..n].copy_from_slice(&user_key[..n]);
    u64::from_be_bytes(b)
}

/// True if both internal keys have the same user key.
#[inline]
pub fn same_user_key(a: &[u8], b: &[u8]) -> bool {
    user_key(a) == user_key(b)
}

/// An owned internal key ordered by [`compare_keys`], for ordered collections.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InternalKey(pub Vec<u8>);

impl InternalKey {
    /// Builds the internal key of `user_key` at `version`.
    pub fn new(user_key_bytes: &[u8], version_number: u64) -> Self {
        InternalKey(key_with_version(user_key_bytes, version_number))
    }

    /// The user-key part.
    pub fn user_key(&self) -> &[u8] {
        user_key(&self.0)
    }

    /// The version.
    pub fn version(&self) -> u64 {
        version(&self.0)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_keys(&self.0, &other.0)
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for InternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.user_key().escape_ascii(), self.version())
    }
}

/// Refuses keys a user may not write or read: empty, longer than 65,000 bytes, or starting
/// with SettDB's reserved prefix `!settdb!`. Every read and write checks this; a tool can check
/// a key before it opens a database.
pub fn validate_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::EmptyKey);
    }
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::InvalidKey {
            reason: "longer than 65,000 bytes",
        });
    }
    if key.starts_with(INTERNAL_KEY_PREFIX) {
        return Err(Error::InvalidKey {
            reason: "starts with the reserved prefix !settdb!",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn user_key_prefix_order_implies_key_order(
            a in proptest::collection::vec(prop::sample::select(&b"\x00\x01ab\xff"[..]), 0..12),
            b in proptest::collection::vec(prop::sample::select(&b"\x00\x01ab\xff"[..]), 0..12),
        ) {
            // Proves unequal prefixes order user keys as the keys do (zero bytes, keys that
            // are prefixes of others and keys shorter than 8 bytes included).
            let (pa, pb) = (user_key_prefix(&a), user_key_prefix(&b));
            if pa != pb {
                prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
        }
    }

    #[test]
    fn user_key_prefix_is_the_first_eight_bytes_big_endian() {
        // Proves the prefix is the key's first 8 bytes, zero-padded, so it does decide the
        // order of keys that differ early (a constant would decide nothing).
        assert_eq!(user_key_prefix(b"ab"), 0x6162_0000_0000_0000);
        assert_eq!(
            user_key_prefix(b"0123456789"),
            u64::from_be_bytes(*b"01234567")
        );
        assert_eq!(user_key_prefix(b""), 0);
        assert!(user_key_prefix(b"a") < user_key_prefix(b"b"));
    }

    #[test]
    fn prefix_user_keys_order_by_user_key_first() {
        // Proves `a@v` < `ab@w` for every pair of versions, which whole-key memcmp gets wrong.
        for (va, vb) in [(0, 0), (0, u64::MAX), (u64::MAX, 0), (7, 3)] {
            let a = key_with_version(b"a", va);
            let ab = key_with_version(b"ab", vb);
            assert_eq!(compare_keys(&a, &ab), Ordering::Less, "a@{va} vs ab@{vb}");
            assert_eq!(compare_keys(&ab, &a), Ordering::Greater);
        }
    }

    #[test]
    fn newer_versions_sort_first() {
        // Proves version-descending order within one user key.
        let k = |v| key_with_version(b"k", v);
        assert_eq!(compare_keys(&k(10), &k(9)), Ordering::Less);
        assert_eq!(compare_keys(&k(9), &k(9)), Ordering::Equal);
        assert_eq!(compare_keys(&k(0), &k(u64::MAX)), Ordering::Greater);
    }

    proptest! {
        #[test]
        fn order_matches_model(a in proptest::collection::vec(any::<u8>(), 0..6), va: u64,
                               b in proptest::collection::vec(any::<u8>(), 0..6), vb: u64) {
            // Proves the comparator equals the model order (user key asc, version desc).
            let model = a.cmp(&b).then(vb.cmp(&va));
            let ka = key_with_version(&a, va);
            let kb = key_with_version(&b, vb);
            prop_assert_eq!(compare_keys(&ka, &kb), model);
            prop_assert_eq!(user_key(&ka), &a[..]);
            prop_assert_eq!(version(&ka), va);
        }

        #[test]
        fn comparator_total_on_garbage(a in proptest::collection::vec(any::<u8>(), 0..12),
                                       b in proptest::collection::vec(any::<u8>(), 0..12)) {
            // Proves the comparator never panics and is antisymmetric on arbitrary bytes.
            prop_assert_eq!(compare_keys(&a, &b), compare_keys(&b, &a).reverse());
        }
    }
}

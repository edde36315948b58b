//! [`PrefixRange`]: the user keys starting with a prefix, as an interval `[prefix, end)`.
//!
//! Every key `k` with `prefix <= k < end` starts with `prefix`, and every key starting with
//! `prefix` lies there, where `end` is the prefix with its trailing `0xff` bytes dropped and
//! its last byte incremented (no `end` when the prefix is empty or all `0xff`: the interval is
//! unbounded above). The interval form is what table pruning and reverse positioning need.

/// The user keys starting with one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PrefixRange {
    prefix: Vec<u8>,
    /// The smallest user key above every key starting with `prefix`.
    end: Option<Vec<u8>>,
}

impl PrefixRange {
    /// The keys starting with `prefix` (every key for an empty prefix).
    pub(crate) fn new(prefix: &[u8]) -> Self {
        PrefixRange {
            prefix: prefix.to_vec(),
            end: successor(prefix),
        }
    }

    /// The prefix (the smallest key of the range).
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The smallest user key above the range; `None` if unbounded.
    pub(crate) fn end(&self) -> Option<&[u8]> {
        self.end.as_deref()
    }

    /// True if `user_key` starts with the prefix.
    pub(crate) fn contains(&self, user_key: &[u8]) -> bool {
        // The empty prefix is the common case: no call into memcmp per entry for it.
        self.prefix.is_empty() || user_key.starts_with(&self.prefix)
    }

    /// True if some key starting with the prefix lies in the user-key range `[lo, hi]`.
    pub(crate) fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        hi >= self.prefix.as_slice() && self.end.as_deref().is_none_or(|end| lo < end)
    }
}

/// The smallest byte string above every string starting with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut end = prefix[..=keep].to_vec();
    end[keep] += 1;
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn successor_drops_trailing_ff() {
        // Proves the end of a few hand-picked prefixes, including the unbounded cases.
        assert_eq!(successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff, 0xff]), None);
        assert_eq!(successor(b""), None);
    }

    proptest! {
        #[test]
        fn interval_equals_starts_with(prefix in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xfe), Just(0xff)], 0..4),
                                       keys in proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xfe), Just(0xff)], 0..5), 1..20)) {
            // Proves `[prefix, end)` holds exactly the keys starting with the prefix, and that
            // `overlaps` is true exactly when some such key lies in `[lo, hi]`.
            let r = PrefixRange::new(&prefix);
            for k in &keys {
                let in_interval = k.as_slice() >= r.prefix() && r.end().is_none_or(|e| k.as_slice() < e);
                prop_assert_eq!(in_interval, r.contains(k));
            }
            let (lo, hi) = (keys.iter().min().unwrap(), keys.iter().max().unwrap());
            if keys.iter().any(|k| r.contains(k)) {
                prop_assert!(r.overlaps(lo, hi));
            }
            if !r.overlaps(lo, hi) {
                prop_assert!(!r.contains(lo) && !r.contains(hi));
            }
        }
    }
}

//! Which versions a compaction keeps: a pure state machine fed entries in merge order
//! (user key ascending, version descending).
//!
//! Rules (Badger's, with per-key tombstone dropping):
//! - Versions above `discard_ts` are always kept: a live snapshot may read them.
//! - Merge-operator operands are always kept (the merge operator folds them later).
//! - Among versions at or below `discard_ts`, newest first, the first one that is deleted or
//!   expired, carries DISCARD_EARLIER_VERSIONS, or is the `num_versions_to_keep`-th, is the last
//!   one considered; every older version is dropped.
//! - That last version is kept if it is a live value. If it is a tombstone or expired, it is
//!   kept only while a deeper level may still hold an older version of the key (else that
//!   version would reappear); otherwise it is dropped too. Badger asks this once per compaction
//!   for the whole key range, so tombstones at the last level are never dropped (its #2329);
//!   here it is asked per key, and the answer may use bloom filters, so tombstones go as soon as
//!   nothing below can hold the key.

use crate::key::{user_key, version};
use crate::value::{is_expired, meta, ValueRef};

/// Parameters of one compaction's version retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Versions above this are always kept.
    pub discard_ts: u64,
    /// Versions kept at or below `discard_ts` (>= 1).
    pub num_versions_to_keep: u32,
    /// Unix seconds now, for expiry.
    pub now_secs: u64,
}

/// What to do with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write it to the output.
    Keep,
    /// Leave it out: its bytes (and value-log record, if any) are dead.
    Drop,
}

/// The state machine; one per compaction (or per subcompaction).
#[derive(Debug)]
pub struct Retention {
    policy: RetentionPolicy,
    current_user_key: Vec<u8>,
    has_current: bool,
    versions_seen: u32,
    skip_rest: bool,
}

impl Retention {
    /// A fresh state machine.
    pub fn new(policy: RetentionPolicy) -> Self {
        debug_assert!(policy.num_versions_to_keep >= 1);
        Retention {
            policy,
            current_user_key: Vec::new(),
            has_current: false,
            versions_seen: 0,
            skip_rest: false,
        }
    }

    /// Decides for the next entry. `deeper_may_hold(user_key)` answers whether a level below
    /// the compaction's output may hold a version of the key; it is called only for a
    /// tombstone or expired entry that would otherwise end the key.
    pub fn decide(
        &mut self,
        key: &[u8],
        value: ValueRef<'_>,
        deeper_may_hold: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Decision {
        let uk = user_key(key);
        if !self.has_current || self.current_user_key != uk {
            self.current_user_key.clear();
            self.current_user_key.extend_from_slice(uk);
            self.has_current = true;
            self.versions_seen = 0;
            self.skip_rest = false;
        }
        if self.skip_rest {
            return Decision::Drop;
        }
        if version(key) > self.policy.discard_ts || value.meta & meta::MERGE != 0 {
            return Decision::Keep;
        }
        self.versions_seen += 1;
        let dead =
            value.meta & meta::DELETE != 0 || is_expired(value.expires_at, self.policy.now_secs);
        let last_wanted = value.meta & meta::DISCARD_EARLIER_VERSIONS != 0
            || self.versions_seen >= self.policy.num_versions_to_keep;
        if !dead && !last_wanted {
            return Decision::Keep;
        }
        self.skip_rest = true;
        if !dead || deeper_may_hold(uk) {
            Decision::Keep
        } else {
            Decision::Drop
        }
    }

    /// True once every older version of the key last decided will be dropped (the last
    /// version considered has been seen), so a caller walking one key's versions can stop.
    pub fn drops_older_versions(&self) -> bool {
        self.skip_rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::key_with_version;
    use proptest::prelude::*;

    fn v(meta_bits: u8, expires_at: u64) -> ValueRef<'static> {
        ValueRef {
            meta: meta_bits,
            user_meta: 0,
            expires_at,
            value: b"x",
        }
    }

    fn run(
        policy: RetentionPolicy,
        entries: &[(&[u8], u64, u8, u64)],
        deeper: bool,
    ) -> Vec<(Vec<u8>, u64)> {
        let mut r = Retention::new(policy);
        let mut kept = Vec::new();
        for &(k, ver, m, exp) in entries {
            let key = key_with_version(k, ver);
            if r.decide(&key, v(m, exp), &mut |_| deeper) == Decision::Keep {
                kept.push((k.to_vec(), ver));
            }
        }
        kept
    }

    const P: RetentionPolicy = RetentionPolicy {
        discard_ts: 10,
        num_versions_to_keep: 1,
        now_secs: 1000,
    };

    #[test]
    fn versions_above_discard_ts_always_kept() {
        // Proves a live snapshot's versions survive even behind a tombstone below discard_ts.
        let e: &[(&[u8], u64, u8, u64)] = &[
            (b"a", 12, 0, 0),
            (b"a", 11, meta::DELETE, 0),
            (b"a", 9, 0, 0),
            (b"a", 8, 0, 0),
        ];
        assert_eq!(
            run(P, e, false),
            vec![(b"a".to_vec(), 12), (b"a".to_vec(), 11), (b"a".to_vec(), 9)]
        );
    }

    #[test]
    fn tombstone_dropped_only_when_nothing_deeper() {
        // Proves the per-key rule: a tombstone below discard_ts stays while a deeper level may
        // hold the key, and goes (with everything older) when none can (Badger #2329).
        let e: &[(&[u8], u64, u8, u64)] = &[(b"a", 5, meta::DELETE, 0), (b"a", 3, 0, 0)];
        assert_eq!(run(P, e, true), vec![(b"a".to_vec(), 5)]);
        assert_eq!(run(P, e, false), vec![]);
    }

    #[test]
    fn expired_counts_as_deleted_and_discard_bit_ends_key() {
        // Proves expiry ends a key like a delete, and DISCARD_EARLIER_VERSIONS keeps only itself.
        let e: &[(&[u8], u64, u8, u64)] = &[
            (b"a", 5, 0, 999),
            (b"a", 4, 0, 0),
            (b"b", 6, meta::DISCARD_EARLIER_VERSIONS, 0),
            (b"b", 2, 0, 0),
        ];
        let p = RetentionPolicy {
            num_versions_to_keep: 5,
            ..P
        };
        assert_eq!(run(p, e, false), vec![(b"b".to_vec(), 6)]);
    }

    #[test]
    fn drops_older_versions_from_the_last_version_considered() {
        // Proves the early stop value-log GC relies on: false while versions above discard_ts
        // or before the num_versions_to_keep-th are decided, true from the last one considered
        // (every older version of the key is then dropped), false again for the next key.
        let p = RetentionPolicy {
            num_versions_to_keep: 2,
            ..P
        };
        let mut r = Retention::new(p);
        let mut stops = Vec::new();
        for &(k, ver) in &[(b"a", 12u64), (b"a", 9), (b"a", 8), (b"a", 7), (b"b", 5)] {
            let d = r.decide(&key_with_version(k, ver), v(0, 0), &mut |_| true);
            stops.push((ver, d, r.drops_older_versions()));
        }
        assert_eq!(
            stops,
            vec![
                (12, Decision::Keep, false),
                (9, Decision::Keep, false),
                (8, Decision::Keep, true),
                (7, Decision::Drop, true),
                (5, Decision::Keep, false),
            ]
        );
    }

    #[test]
    fn merge_operands_never_dropped() {
        // Proves merge operands survive below discard_ts and do not count as versions.
        let e: &[(&[u8], u64, u8, u64)] = &[
            (b"a", 5, meta::MERGE, 0),
            (b"a", 4, meta::MERGE, 0),
            (b"a", 3, 0, 0),
            (b"a", 2, 0, 0),
        ];
        assert_eq!(run(P, e, false).len(), 3);
    }

    proptest! {
        #[test]
        fn matches_model(keep in 1u32..4, discard_ts in 0u64..12,
                         versions in proptest::collection::btree_map(1u64..15, 0u8..4, 1..10),
                         deeper: bool) {
            // Proves the state machine equals a direct statement of the rules for one key with
            // random versions that are plain, deleted, discard-earlier or expired.
            let mut entries: Vec<(u64, u8, u64)> = versions.iter().rev().map(|(&ver, &kind)| match kind {
                0 => (ver, 0, 0),
                1 => (ver, meta::DELETE, 0),
                2 => (ver, meta::DISCARD_EARLIER_VERSIONS, 0),
                _ => (ver, 0, 1),
            }).collect();
            entries.sort_by_key(|e| std::cmp::Reverse(e.0));
            let policy = RetentionPolicy { discard_ts, num_versions_to_keep: keep, now_secs: 1000 };
            let input: Vec<(&[u8], u64, u8, u64)> = entries.iter().map(|&(ver, m, e)| (&b"k"[..], ver, m, e)).collect();
            let got: Vec<u64> = run(policy, &input, deeper).into_iter().map(|(_, ver)| ver).collect();
            // Model.
            let mut want = Vec::new();
            let mut seen = 0;
            for &(ver, m, e) in &entries {
                if ver > discard_ts { want.push(ver); continue; }
                seen += 1;
                let dead = m & meta::DELETE != 0 || e != 0;
                let last = m & meta::DISCARD_EARLIER_VERSIONS != 0 || seen >= keep;
                if dead || last {
                    if !dead || deeper { want.push(ver); }
                    break;
                }
                want.push(ver);
            }
            prop_assert_eq!(got, want);
        }
    }
}

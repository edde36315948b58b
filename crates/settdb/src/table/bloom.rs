//! The table's Bloom filter over user keys.
//!
//! ```text
//! filter := bits[m_bytes] ‖ probes u8          m_bytes >= 1, 1 <= probes <= MAX_PROBES
//! probe i of user key k tests bit (h1 + i·h2) mod (8·m_bytes), bit b = byte b/8, bit b%8 (LSB
//! first), with h = xxh3_64(k), h1 = low 32 bits of h, h2 = high 32 bits of h
//! ```
//!
//! Kirsch–Mitzenmacher double hashing: one 64-bit hash gives all probes. Format page:
//! docs/format/table.md (filter region).

use std::path::Path;

use crate::error::{Error, Result};

/// Most probes a filter may use (beyond ~30 a filter is pointless; caps the per-lookup cost).
pub const MAX_PROBES: u8 = 30;
/// Bytes of the probe count at the end of the filter.
pub const PROBES_LEN: usize = 1;
/// Smallest filter the writer builds, in bits (tiny tables would otherwise get filters so
/// small that rounding dominates the false-positive rate).
const MIN_FILTER_BITS: u64 = 64;

/// The filter hash of a user key.
#[inline]
pub fn bloom_hash(user_key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user_key)
}

/// Bits per key for false-positive rate `p` in (0, 1): `−ln p / (ln 2)²`.
pub fn bits_per_key(p: f64) -> f64 {
    -p.ln() / (std::f64::consts::LN_2 * std::f64::consts::LN_2)
}

/// The probe count minimising the false-positive rate at `bits_per_key`: `bits × ln 2`.
pub fn probes_for(bits_per_key: f64) -> u8 {
    let k = (bits_per_key * std::f64::consts::LN_2).round();
    k.clamp(1.0, f64::from(MAX_PROBES)) as u8
}

/// A decoded filter.
#[derive(Debug, Clone)]
pub struct BloomFilter {
    bits: Vec<u8>,
    probes: u8,
}

impl BloomFilter {
    /// Encodes a filter over the given key hashes for false-positive rate `p` in (0, 1).
    pub fn build(hashes: &[u64], p: f64) -> Vec<u8> {
        debug_assert!(p > 0.0 && p < 1.0);
        let bpk = bits_per_key(p);
        let probes = probes_for(bpk);
        let want_bits = ((hashes.len() as f64) * bpk).ceil() as u64;
        let m_bytes = want_bits.max(MIN_FILTER_BITS).div_ceil(8) as usize;
        let mut out = vec![0u8; m_bytes + PROBES_LEN];
        let m = (m_bytes as u64) * 8;
        for &h in hashes {
            for bit in probe_bits(h, probes, m) {
                out[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        out[m_bytes] = probes;
        out
    }

    /// Estimated encoded size for `keys` keys at rate `p` (for table-size estimates).
    pub fn estimated_size_bytes(keys: usize, p: f64) -> usize {
        ((keys as f64) * bits_per_key(p) / 8.0).ceil() as usize + PROBES_LEN
    }

    /// Decodes a filter region's payload read from `file` at `offset`.
    pub fn decode(mut bytes: Vec<u8>, file: &Path, offset: u64) -> Result<Self> {
        let bad = |r: String| Error::corruption(file, offset, format!("bloom filter: {r}"));
        let Some(probes) = bytes.pop() else {
            return Err(bad("empty".into()));
        };
        if bytes.is_empty() {
            return Err(bad("no filter bits".into()));
        }
        if !(1..=MAX_PROBES).contains(&probes) {
            return Err(bad(format!("probe count {probes} not in 1..={MAX_PROBES}")));
        }
        Ok(BloomFilter {
            bits: bytes,
            probes,
        })
    }

    /// False if `user_key` is certainly absent.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.may_contain_hash(bloom_hash(user_key))
    }

    /// False if the key with filter hash `h` is certainly absent.
    pub fn may_contain_hash(&self, h: u64) -> bool {
        let m = (self.bits.len() as u64) * 8;
        probe_bits(h, self.probes, m).all(|bit| {
            let byte = self.bits.get((bit / 8) as usize).copied().unwrap_or(0);
            byte & (1 << (bit % 8)) != 0
        })
    }

    /// Bytes of memory held.
    pub fn size_bytes(&self) -> usize {
        self.bits.len()
    }
}

/// The bit positions probed for hash `h` in a filter of `m > 0` bits.
fn probe_bits(h: u64, probes: u8, m: u64) -> impl Iterator<Item = u64> {
    let h1 = h & 0xffff_ffff;
    let h2 = h >> 32;
    // h1 + i·h2 < 2^32 + 30·2^32: no overflow.
    (0..u64::from(probes)).map(move |i| (h1 + i * h2) % m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn false_positive_rate_within_twice_the_target() {
        // Proves the measured FP rate over 100k absent keys is at most 2x the configured rate
        // for 1% and 0.1%, with 10k present keys, and that no present key is missed.
        for p in [0.01, 0.001] {
            let present: Vec<u64> = (0..10_000u32)
                .map(|i| bloom_hash(format!("present-{i}").as_bytes()))
                .collect();
            let f =
                BloomFilter::decode(BloomFilter::build(&present, p), Path::new("f"), 0).unwrap();
            assert!(present.iter().all(|&h| f.may_contain_hash(h)));
            let fp = (0..100_000u32)
                .filter(|i| f.may_contain(format!("absent-{i}").as_bytes()))
                .count();
            let rate = fp as f64 / 100_000.0;
            assert!(rate <= 2.0 * p, "p={p}: measured {rate}");
        }
    }

    #[test]
    fn parameters_follow_the_formula() {
        // Proves 1% gives ~9.6 bits per key and 7 probes, and extreme rates stay in range.
        assert!((bits_per_key(0.01) - 9.585).abs() < 0.01);
        assert_eq!(probes_for(bits_per_key(0.01)), 7);
        assert_eq!(probes_for(bits_per_key(0.9)), 1);
        assert_eq!(probes_for(bits_per_key(1e-300)), MAX_PROBES);
    }

    #[test]
    fn bad_filters_are_refused() {
        // Proves an empty filter, a filter with no bits, and bad probe counts are Corruption.
        for bytes in [vec![], vec![3], vec![0xff, 0], vec![0xff, 31]] {
            assert!(matches!(
                BloomFilter::decode(bytes, Path::new("f"), 4),
                Err(Error::Corruption { offset: 4, .. })
            ));
        }
    }

    proptest! {
        #[test]
        fn no_false_negatives(keys in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..12), 1..200), p in 0.0001f64..0.5) {
            // Proves every added key is reported as possibly present, at any rate and size.
            let hashes: Vec<u64> = keys.iter().map(|k| bloom_hash(k)).collect();
            let f = BloomFilter::decode(BloomFilter::build(&hashes, p), Path::new("f"), 0).unwrap();
            for k in &keys {
                prop_assert!(f.may_contain(k));
            }
        }

        #[test]
        fn random_filters_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                      probe: Vec<u8>) {
            // Proves any decodable bytes answer queries without panicking.
            if let Ok(f) = BloomFilter::decode(bytes, Path::new("f"), 0) {
                let _ = f.may_contain(&probe);
            }
        }
    }
}

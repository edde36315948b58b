//! [`ValueThreshold`]: the size from which the writer sends a value to the value log, fixed
//! (`value_threshold`) or, with `vlog_percentile` in (0, 1), following the sizes written
//! (Badger's dynamic threshold): the threshold is the given percentile of the value sizes
//! seen, kept within `[value_threshold, max_value_threshold]`. With 0.99, the largest 1% of
//! values go to the value log and the rest stay in the LSM tree.
//!
//! The sizes go into a histogram of [`BUCKETS`] equal-width buckets over that interval (sizes
//! outside it count in the first or last bucket); the percentile is recomputed every
//! [`RECOMPUTE_EVERY`] values, and the counts are halved when they grow large so the threshold
//! follows the recent sizes. Only the writer thread observes, so the histogram has one
//! writer; readers of the threshold load one atomic. It is not persisted: an open starts from
//! `value_threshold` (as Badger). Reads never need it: a value pointer says where each value is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Histogram buckets over `[min, max]`.
const BUCKETS: usize = 1024;
/// Values observed between two recomputations of the percentile.
const RECOMPUTE_EVERY: u64 = 1024;
/// Total count at which every bucket is halved.
const HALVE_AT: u64 = 1 << 20;

#[derive(Debug)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    since_recompute: u64,
}

/// The writer's value threshold (module doc).
#[derive(Debug)]
pub struct ValueThreshold {
    current: AtomicU64,
    min: u64,
    max: u64,
    /// `None`: fixed at `min`.
    percentile: Option<f64>,
    hist: Mutex<Histogram>,
}

impl ValueThreshold {
    /// A threshold starting at `min`; dynamic within `[min, max]` when `percentile` is in
    /// (0, 1), fixed at `min` when it is 0 (or `max <= min`).
    pub fn new(min: u64, max: u64, percentile: f64) -> Self {
        let dynamic = percentile > 0.0 && percentile < 1.0 && max > min;
        ValueThreshold {
            current: AtomicU64::new(min),
            min,
            max,
            percentile: dynamic.then_some(percentile),
            hist: Mutex::new(Histogram {
                counts: vec![0; if dynamic { BUCKETS } else { 0 }],
                total: 0,
                since_recompute: 0,
            }),
        }
    }

    /// Values of this many bytes or more go to the value log.
    pub fn get(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// True if the threshold follows the sizes written.
    pub fn is_dynamic(&self) -> bool {
        self.percentile.is_some()
    }

    /// Records the sizes of values written (deletes excluded); may move the threshold.
    pub fn observe(&self, sizes: impl Iterator<Item = usize>) {
        let Some(p) = self.percentile else {
            return;
        };
        let mut h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        let width = (self.max - self.min).div_ceil(BUCKETS as u64).max(1);
        for size in sizes {
            let b = (size as u64).saturating_sub(self.min) / width;
            h.counts[(b as usize).min(BUCKETS - 1)] += 1;
            h.total += 1;
            h.since_recompute += 1;
        }
        if h.since_recompute < RECOMPUTE_EVERY {
            return;
        }
        h.since_recompute = 0;
        let rank = (h.total as f64 * p).ceil() as u64;
        let mut seen = 0;
        let mut bucket = BUCKETS - 1;
        for (i, &c) in h.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                bucket = i;
                break;
            }
        }
        // The bucket's upper edge: every size counted up to it stays below the threshold.
        let t = (self.min + (bucket as u64 + 1) * width).clamp(self.min, self.max);
        self.current.store(t, Ordering::Relaxed);
        if h.total >= HALVE_AT {
            h.counts.iter_mut().for_each(|c| *c /= 2);
            h.total = h.counts.iter().sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_threshold_never_moves() {
        // Proves percentile 0 (and a degenerate interval) keep the threshold at value_threshold
        // whatever is written.
        for t in [
            ValueThreshold::new(1024, 1 << 20, 0.0),
            ValueThreshold::new(1024, 1024, 0.9),
        ] {
            t.observe(std::iter::repeat_n(500_000, 10_000));
            assert_eq!(t.get(), 1024);
            assert!(!t.is_dynamic());
        }
    }

    #[test]
    fn the_threshold_follows_the_percentile_within_its_bounds() {
        // Proves: 99% of values at 2,000 bytes and 1% at 100,000 put the 0.99 threshold just
        // above 2,000 (the 1% go to the value log, the 99% stay inline); sizes under the
        // minimum keep it at the minimum; sizes over the maximum cap it at the maximum; it
        // waits for RECOMPUTE_EVERY values before moving.
        let t = ValueThreshold::new(1024, 1 << 20, 0.99);
        assert!(t.is_dynamic());
        let first = ValueThreshold::new(1024, 1 << 20, 0.99);
        first.observe(std::iter::repeat_n(5_000, 1023));
        assert_eq!(first.get(), 1024, "not recomputed yet");
        first.observe(std::iter::once(5_000));
        let got = first.get();
        assert!(got > 5_000, "recomputed at the 1024th value: {got}");
        let mixed = (0..10_000).map(|i| if i % 100 == 0 { 100_000 } else { 2_000 });
        t.observe(mixed);
        let got = t.get();
        assert!(got > 2_000 && got <= 2_000 + 1024 + 1, "{got}");
        let small = ValueThreshold::new(1024, 1 << 20, 0.5);
        small.observe(std::iter::repeat_n(10, 5_000));
        assert_eq!(
            small.get(),
            1024 + (((1 << 20) - 1024) as u64).div_ceil(1024)
        );
        let big = ValueThreshold::new(1024, 1 << 20, 0.5);
        big.observe(std::iter::repeat_n(50 << 20, 5_000));
        assert_eq!(big.get(), 1 << 20);
    }

    #[test]
    fn old_sizes_fade() {
        // Proves the halving: after a long run of large values, a short burst of small ones
        // changes nothing, and a longer run brings the threshold back down.
        // Fed in groups of 1,000, as the writer does.
        let t = ValueThreshold::new(1024, 1 << 20, 0.9);
        for _ in 0..2_000 {
            t.observe(std::iter::repeat_n(500_000, 1_000));
        }
        assert!(t.get() > 400_000);
        // A short burst of small values (a tenth of the history) does not move it yet.
        for _ in 0..100 {
            t.observe(std::iter::repeat_n(3_000, 1_000));
        }
        assert!(t.get() > 400_000, "{}", t.get());
        for _ in 0..3_000 {
            t.observe(std::iter::repeat_n(3_000, 1_000));
        }
        assert!(t.get() < 5_000, "{}", t.get());
    }
}

//! The driver protocol's shared parts (docs/bench/protocol.md): record keys, the value pool,
//! YCSB's key distributions, latency histograms and the `RESULT` line. The Go and C++ drivers
//! implement the same definitions, so every store reads and writes identical keys.

use std::fmt::Write as _;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

/// Key length of every record.
pub const KEY_LEN: usize = 16;

/// splitmix64's output for `x` (the first output of a generator seeded with `x`).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Record `i`'s key: `be64(splitmix64(i)) ++ be64(i)`, unique and in random order.
pub fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&splitmix64(i).to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// 16 MiB of random bytes values are sliced from (incompressible; made once, not timed).
#[derive(Debug, Clone)]
pub struct ValuePool {
    bytes: bytes::Bytes,
    value_size: usize,
}

impl ValuePool {
    pub fn new(value_size: usize, seed: u64) -> Self {
        let mut pool = vec![0u8; (16 << 20).max(value_size * 64)];
        SmallRng::seed_from_u64(seed ^ 0xfeed).fill_bytes(&mut pool);
        ValuePool {
            bytes: pool.into(),
            value_size,
        }
    }

    /// A value at a random offset (shares the pool's buffer).
    pub fn value(&self, rng: &mut impl Rng) -> bytes::Bytes {
        let off = rng.random_range(0..=self.bytes.len() - self.value_size);
        self.bytes.slice(off..off + self.value_size)
    }
}

/// zeta(10^10, 0.99): YCSB's precomputed constant for its scrambled Zipfian.
const ZETAN_1E10: f64 = 26.469_028_201_783_02;
const THETA: f64 = 0.99;

/// Gray et al.'s Zipfian generator over `n` items, as YCSB's `ZipfianGenerator`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    zetan: f64,
    alpha: f64,
    eta: f64,
}

impl Zipf {
    pub fn with_zeta(n: u64, zetan: f64) -> Self {
        let n = n as f64;
        let zeta2 = 1.0 + 0.5f64.powf(THETA);
        Zipf {
            n,
            zetan,
            alpha: 1.0 / (1.0 - THETA),
            eta: (1.0 - (2.0 / n).powf(1.0 - THETA)) / (1.0 - zeta2 / zetan),
        }
    }

    /// Over `n` items, computing zeta(n) (O(n)).
    pub fn new(n: u64) -> Self {
        let zetan = (1..=n).map(|i| 1.0 / (i as f64).powf(THETA)).sum();
        Self::with_zeta(n, zetan)
    }

    /// A rank in [0, n): 0 is the most popular.
    pub fn rank(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(THETA) {
            return 1;
        }
        ((self.n * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64).min(self.n as u64 - 1)
    }
}

/// YCSB's 64-bit FNV-1a over the 8 bytes of `v`, least significant first, top bit cleared.
pub fn fnv64(mut v: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for _ in 0..8 {
        h ^= v & 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
        v >>= 8;
    }
    h & (u64::MAX >> 1)
}

/// How a workload picks record indexes.
#[derive(Debug, Clone)]
pub enum Dist {
    Uniform(u64),
    /// YCSB's scrambled Zipfian over [0, n).
    Zipf(u64, Zipf),
}

impl Dist {
    pub fn new(kind: DistKind, n: u64) -> Self {
        match kind {
            DistKind::Uniform => Dist::Uniform(n),
            DistKind::Zipf => Dist::Zipf(n, Zipf::with_zeta(10_000_000_000, ZETAN_1E10)),
        }
    }

    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        match self {
            Dist::Uniform(n) => rng.random_range(0..*n),
            Dist::Zipf(n, z) => fnv64(z.rank(rng)) % n,
        }
    }
}

/// The `--dist` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DistKind {
    Uniform,
    Zipf,
}

/// Per-thread latency recorder (microseconds, 3 significant digits).
#[derive(Debug)]
pub struct Latency(hdrhistogram::Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        // 1 ns to 100 s; slower operations saturate at 100 s.
        Latency(
            hdrhistogram::Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .expect("bounds and 3 significant digits are valid"),
        )
    }
}

impl Latency {
    /// Records one operation that took `d` (nanosecond resolution).
    pub fn record(&mut self, d: std::time::Duration) {
        self.0
            .saturating_record(d.as_nanos().min(u64::MAX as u128) as u64);
    }

    pub fn merge(&mut self, other: &Latency) {
        // Histograms that auto-resize never refuse an add.
        let _ = self.0.add(&other.0);
    }

    /// The `q` quantile in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Clone for Latency {
    fn clone(&self) -> Self {
        Latency(self.0.clone())
    }
}

/// One workload's outcome: the protocol's `RESULT` line.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub ops: u64,
    pub secs: f64,
    pub missing: Option<u64>,
    pub inserts: Option<u64>,
    pub bytes: Option<u64>,
    pub writes: Option<u64>,
    pub latency: Option<Latency>,
    pub gc_secs: Option<f64>,
}

impl Outcome {
    pub fn line(&self) -> String {
        let mut s = format!("RESULT ops={} secs={:.4}", self.ops, self.secs);
        for (name, v) in [
            ("missing", self.missing),
            ("inserts", self.inserts),
            ("bytes", self.bytes),
            ("writes", self.writes),
        ] {
            if let Some(v) = v {
                let _ = write!(s, " {name}={v}");
            }
        }
        if let Some(l) = self.latency.as_ref().filter(|l| !l.is_empty()) {
            let _ = write!(
                s,
                " p50_us={:.1} p99_us={:.1} p999_us={:.1}",
                l.quantile_us(0.5),
                l.quantile_us(0.99),
                l.quantile_us(0.999)
            );
        }
        if let Some(g) = self.gc_secs {
            let _ = write!(s, " gc_secs={g:.3}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_protocol_vectors() {
        let hex = |k: [u8; 16]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(key(0)), "e220a8397b1dcdaf0000000000000000");
        assert_eq!(hex(key(1)), "910a2dec89025cc10000000000000001");
    }

    #[test]
    fn fnv64_matches_ycsb() {
        // FNV-1a of eight zero bytes, top bit cleared.
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for _ in 0..8 {
            h = h.wrapping_mul(0x100_0000_01B3);
        }
        assert_eq!(fnv64(0), h & (u64::MAX >> 1));
        assert_ne!(fnv64(1), fnv64(256));
    }

    #[test]
    fn latency_quantiles_are_in_microseconds() {
        let mut l = Latency::default();
        for us in 1..=1000u64 {
            l.record(std::time::Duration::from_micros(us));
        }
        assert!(
            (l.quantile_us(0.5) - 500.0).abs() < 1.0,
            "{}",
            l.quantile_us(0.5)
        );
        assert!((l.quantile_us(0.99) - 990.0).abs() < 1.0);
        let mut m = Latency::default();
        m.record(std::time::Duration::from_secs(2));
        l.merge(&m);
        assert!(l.quantile_us(1.0) > 1_990_000.0);
    }

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let z = Zipf::new(1000);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[z.rank(&mut rng) as usize] += 1;
        }
        let max = counts.iter().copied().max().unwrap();
        assert_eq!(counts[0], max, "rank 0 is the most popular");
        // zipf(0.99) over 1000 items gives rank 0 about 1/zeta(1000) = 13% of draws.
        assert!((10_000..16_000).contains(&counts[0]), "{}", counts[0]);
        let d = Dist::new(DistKind::Zipf, 777);
        assert!((0..10_000).all(|_| d.next(&mut rng) < 777));
    }
}

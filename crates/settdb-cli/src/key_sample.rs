//! [`KeySample`]: keys drawn uniformly at random from a whole database, for `bench read`.
//!
//! One pass of a key-only iterator (`prefetch_values` off: no value-log reads) in a read-only
//! transaction, with reservoir sampling (Vitter's algorithm R): after `i` keys, each of them
//! is in the sample with the same probability `size / i`. So the sample spreads over the
//! whole key space whatever its size (Badger instead keeps the first keys its stream hands
//! out, which cluster in a few key ranges), and it holds only keys that exist now.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use settdb::{Db, IteratorOptions};

/// Keys the sampler reads between two updates of the progress counter.
const PROGRESS_EVERY: u64 = 4096;

/// A uniform sample of a database's keys.
#[derive(Debug)]
pub struct KeySample {
    keys: Vec<Box<[u8]>>,
    /// Keys in the database when sampled.
    seen: u64,
}

impl KeySample {
    /// Samples up to `size` keys of `db`, counting keys read in `progress`.
    pub fn collect(db: &Db, size: usize, progress: &AtomicU64) -> settdb::Result<KeySample> {
        let mut rng = rand::rng();
        let mut sample = KeySample {
            keys: Vec::with_capacity(size.min(1 << 20)),
            seen: 0,
        };
        let txn = db.new_transaction(false)?;
        let mut it = txn.iter(IteratorOptions::default().with_prefetch_values(false))?;
        it.rewind()?;
        while it.valid() {
            sample.offer(it.item().key(), size, &mut rng);
            if sample.seen.is_multiple_of(PROGRESS_EVERY) {
                progress.fetch_add(PROGRESS_EVERY, Ordering::Relaxed);
            }
            it.next()?;
        }
        Ok(sample)
    }

    /// Algorithm R's step for the next key of the stream.
    fn offer(&mut self, key: &[u8], size: usize, rng: &mut impl Rng) {
        let i = self.seen;
        self.seen += 1;
        if self.keys.len() < size {
            self.keys.push(key.into());
        } else if let Ok(j) = usize::try_from(rng.random_range(0..=i)) {
            if j < size {
                self.keys[j] = key.into();
            }
        }
    }

    /// The sampled keys (in no useful order).
    pub fn keys(&self) -> &[Box<[u8]>] {
        &self.keys
    }

    /// How many keys the database had.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn reservoir_is_uniform_and_small_streams_are_kept_whole() {
        // Proves a stream shorter than the sample is kept whole, and that over many runs every
        // position of a longer stream is picked about equally often (chi-square-like bound).
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut whole = KeySample {
            keys: Vec::new(),
            seen: 0,
        };
        for k in 0u8..3 {
            whole.offer(&[k], 10, &mut rng);
        }
        assert_eq!(whole.keys().len(), 3);
        let mut hits = [0u32; 20];
        for _ in 0..5000 {
            let mut s = KeySample {
                keys: Vec::new(),
                seen: 0,
            };
            for k in 0u8..20 {
                s.offer(&[k], 5, &mut rng);
            }
            assert_eq!((s.keys().len(), s.seen()), (5, 20));
            for k in s.keys() {
                hits[usize::from(k[0])] += 1;
            }
        }
        // Each key is expected 5000 * 5 / 20 = 1250 times.
        assert!(hits.iter().all(|&h| (1100..1400).contains(&h)), "{hits:?}");
    }

    #[test]
    fn collect_samples_a_database() {
        // Proves collect reads every key of a database and samples only keys that exist.
        let db = Db::open(settdb::Options::in_memory()).unwrap();
        for i in 0..100u32 {
            db.set(format!("k{i:03}"), "v").unwrap();
        }
        db.delete("k050").unwrap();
        let counter = AtomicU64::new(0);
        let s = KeySample::collect(&db, 10, &counter).unwrap();
        assert_eq!((s.seen(), s.keys().len()), (99, 10));
        assert!(s
            .keys()
            .iter()
            .all(|k| k.starts_with(b"k") && &k[..] != b"k050"));
        db.close().unwrap();
    }
}

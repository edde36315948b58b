//! Test helpers of the value log: generated write groups, appending them, checking them.

use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::{ValueLog, ValueLogOptions, VlogRecovery};
use crate::io::{SimStorage, Storage};
use crate::key::key_with_version;
use crate::log::RecordRef;
use crate::value::ValuePointer;

/// The value directory of the simulated tests.
pub(crate) const DIR: &str = "/db/vlog";

/// A seed for a randomised test, printed so a failure can be replayed with
/// `SETTDB_TEST_SEED=<seed>`.
pub(crate) fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("SETTDB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            t.map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{test}: SETTDB_TEST_SEED={seed}");
    seed
}

/// Writable options with the given rotation limits.
pub(crate) fn opts(max_file_size_bytes: u64, max_entries: u32) -> ValueLogOptions {
    ValueLogOptions {
        max_file_size_bytes,
        max_entries,
        read_only: false,
        keys: None,
        mmap: false,
    }
}

/// The same options, read-only.
pub(crate) fn read_only(o: ValueLogOptions) -> ValueLogOptions {
    ValueLogOptions {
        read_only: true,
        ..o
    }
}

/// Opens the value log in [`DIR`] of `storage`.
pub(crate) fn open_sim(
    storage: &SimStorage,
    o: ValueLogOptions,
) -> crate::Result<(ValueLog, VlogRecovery)> {
    let s: Arc<dyn Storage> = Arc::new(storage.clone());
    ValueLog::open(s, Path::new(DIR), o)
}

/// One record of a test group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Entry {
    pub fn as_record(&self) -> RecordRef<'_> {
        RecordRef {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            key: &self.key,
            value: &self.value,
        }
    }
}

/// A group as appended: its entries and the pointers `append` returned.
#[derive(Clone, Debug)]
pub(crate) struct Written {
    pub entries: Vec<Entry>,
    pub ptrs: Vec<ValuePointer>,
}

/// Group number `g`: 1 ..= `max_records` entries, values of 0 ..= `max_value` bytes with a
/// tenth of them empty.
pub(crate) fn gen_group(
    rng: &mut StdRng,
    g: u64,
    max_records: usize,
    max_value: usize,
) -> Vec<Entry> {
    let n = rng.random_range(1..=max_records);
    (0..n)
        .map(|i| {
            let len = if rng.random_ratio(1, 10) {
                0
            } else {
                rng.random_range(0..=max_value)
            };
            let mut value = vec![0u8; len];
            rng.fill_bytes(&mut value);
            let key = key_with_version(format!("g{g}-r{i}").as_bytes(), g * 100 + i as u64);
            Entry { key, value }
        })
        .collect()
}

/// Appends `entries` as one group.
pub(crate) fn append(vlog: &ValueLog, entries: Vec<Entry>) -> crate::Result<Written> {
    let recs: Vec<RecordRef<'_>> = entries.iter().map(Entry::as_record).collect();
    let mut ptrs = Vec::new();
    vlog.append(&recs, &mut ptrs)?;
    assert_eq!(ptrs.len(), entries.len());
    Ok(Written { entries, ptrs })
}

/// Asserts every pointer of `w` reads back its own entry.
pub(crate) fn assert_reads(vlog: &ValueLog, w: &Written) {
    for (e, vp) in w.entries.iter().zip(&w.ptrs) {
        let got = vlog
            .read(*vp, &e.key)
            .unwrap_or_else(|err| panic!("{vp:?}: {err}"));
        assert_eq!(got.key(), &e.key[..]);
        assert!(got.value() == &e.value[..], "{vp:?} read back other bytes");
    }
}

/// A seeded random generator.
pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

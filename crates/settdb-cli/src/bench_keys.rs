//! [`BenchKeys`]: the keys of `bench write`, reproducible from a seed, and the
//! `BENCH_KEYS_SEED` file through which `bench read` finds them again.
//!
//! There is no iterator API yet, so `bench read` cannot sample keys from the database
//! itself; it regenerates them from this file instead (Badger samples by iterating; that,
//! and `--full-scan`, come with the iterator API).
//!
//! ```text
//! BENCH_KEYS_SEED := "# ..." comment lines, then one "name value" line each, any order:
//!   format 1           the version of this file and of the key generator below
//!   seed <u64>         key i = for word w = 0, 1, ...: the little-endian bytes of
//!                      splitmix64(splitmix64(seed ^ splitmix64(i)) + w), cut to key_size
//!   keys <u64>         how many keys were written (indices 0..keys)
//!   key_size <usize>   bytes per key
//!   sorted <bool>      with `sorted true`, the first 8 bytes are i big-endian
//! ```

use std::path::Path;

use crate::cli_error::{CliError, CliResult};

/// Name of the file `bench write` leaves in the database directory.
pub const SEED_FILE_NAME: &str = "BENCH_KEYS_SEED";
/// Version of the file and of the key generator.
const FORMAT_VERSION: u32 = 1;
/// Bytes of the index prefix of sorted keys.
pub const SORTED_PREFIX_LEN: usize = 8;
/// Largest file read back: a seed file is a few lines.
const MAX_FILE_LEN: u64 = 4096;

/// The keys of one `bench write` run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchKeys {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of keys written.
    pub count: u64,
    /// Bytes per key.
    pub key_size: usize,
    /// Keys ordered by index (an 8-byte big-endian index prefix).
    pub sorted: bool,
}

impl BenchKeys {
    /// Writes key `i` into `out` (of `key_size` bytes).
    pub fn fill_key(&self, i: u64, out: &mut [u8]) {
        debug_assert_eq!(out.len(), self.key_size);
        let base = splitmix64(self.seed ^ splitmix64(i));
        for (word_no, chunk) in (0u64..).zip(out.chunks_mut(8)) {
            let bytes = splitmix64(base.wrapping_add(word_no)).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        if self.sorted {
            debug_assert!(self.key_size >= SORTED_PREFIX_LEN);
            out[..SORTED_PREFIX_LEN].copy_from_slice(&i.to_be_bytes());
        }
    }

    /// Key `i` as a new vector.
    pub fn key(&self, i: u64) -> Vec<u8> {
        let mut k = vec![0u8; self.key_size];
        self.fill_key(i, &mut k);
        k
    }

    /// Writes the seed file into `dir` (replacing an older one).
    pub fn write_file(&self, dir: &Path) -> CliResult {
        let text = format!(
            "# written by `settdb bench write`; `settdb bench read` regenerates the keys from it\n\
             format {FORMAT_VERSION}\nseed {}\nkeys {}\nkey_size {}\nsorted {}\n",
            self.seed, self.count, self.key_size, self.sorted
        );
        let path = dir.join(SEED_FILE_NAME);
        std::fs::write(&path, text)
            .map_err(|e| CliError::new(format!("cannot write {}: {e}", path.display())))
    }

    /// Reads the seed file of `dir`.
    pub fn read_file(dir: &Path) -> CliResult<BenchKeys> {
        let path = dir.join(SEED_FILE_NAME);
        let text = match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_LEN => Err(format!("{} bytes is too long", m.len())),
            Ok(_) => std::fs::read_to_string(&path).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::new(format!(
                    "{} has no {SEED_FILE_NAME} file: `bench read` reads the keys that \
                     `settdb bench write --dir {}` wrote (sampling keys by iteration comes with \
                     the iterator API)",
                    dir.display(),
                    dir.display()
                )))
            }
            Err(e) => Err(e.to_string()),
        };
        text.and_then(|t| parse(&t))
            .map_err(|why| CliError::new(format!("{}: {why}", path.display())))
    }
}

/// Parses the text of a seed file.
fn parse(text: &str) -> Result<BenchKeys, String> {
    let (mut format, mut seed, mut count, mut key_size, mut sorted) =
        (None, None, None, None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once(' ')
            .ok_or_else(|| format!("line {line:?} is not `name value`"))?;
        let bad = || format!("bad value in line {line:?}");
        match name {
            "format" => format = Some(value.parse::<u32>().map_err(|_| bad())?),
            "seed" => seed = Some(value.parse::<u64>().map_err(|_| bad())?),
            "keys" => count = Some(value.parse::<u64>().map_err(|_| bad())?),
            "key_size" => key_size = Some(value.parse::<usize>().map_err(|_| bad())?),
            "sorted" => sorted = Some(value.parse::<bool>().map_err(|_| bad())?),
            _ => {} // later versions may add lines
        }
    }
    match format {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "format {v}; this settdb reads format {FORMAT_VERSION}"
            ))
        }
        None => return Err("no `format` line".into()),
    }
    let keys = BenchKeys {
        seed: seed.ok_or("no `seed` line")?,
        count: count.ok_or("no `keys` line")?,
        key_size: key_size.ok_or("no `key_size` line")?,
        sorted: sorted.unwrap_or(false),
    };
    if keys.key_size == 0 || keys.key_size > settdb::key::MAX_KEY_SIZE {
        return Err(format!("key_size {} is out of range", keys.key_size));
    }
    if keys.sorted && keys.key_size < SORTED_PREFIX_LEN {
        return Err("sorted keys need key_size of at least 8".into());
    }
    Ok(keys)
}

/// SplitMix64's output function: a fast, well-mixed bijection of u64.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_file_round_trips_and_bad_files_are_refused() {
        // Proves write_file/read_file invert each other and damaged text is an error, not a panic.
        let dir = tempfile::tempdir().unwrap();
        let keys = BenchKeys {
            seed: 42,
            count: 1000,
            key_size: 16,
            sorted: true,
        };
        keys.write_file(dir.path()).unwrap();
        assert_eq!(BenchKeys::read_file(dir.path()).unwrap(), keys);
        for bad in [
            "",
            "format 2\nseed 1\nkeys 1\nkey_size 4",
            "format 1\nseed x\nkeys 1\nkey_size 4",
            "format 1\nseed 1\nkeys 1\nkey_size 0",
            "format 1\nseed 1\nkeys 1\nkey_size 4\nsorted true",
            "format 1 seed",
            "format 1\nseed 1\nkeys 1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_reproducible_distinct_and_sorted_when_asked() {
        // Proves the generator is a function of (seed, i), spreads keys, and orders sorted ones.
        let k = |sorted| BenchKeys {
            seed: 7,
            count: 100,
            key_size: 13,
            sorted,
        };
        assert_eq!(k(false).key(5), k(false).key(5));
        let all: std::collections::BTreeSet<Vec<u8>> = (0..100).map(|i| k(false).key(i)).collect();
        assert_eq!(all.len(), 100);
        let sorted: Vec<Vec<u8>> = (0..100).map(|i| k(true).key(i)).collect();
        assert!(sorted.windows(2).all(|w| w[0] < w[1]));
    }
}

//! Table metadata: the meta region's payload.
//!
//! ```text
//! meta := smallest_len u16 ‖ smallest ‖ biggest_len u16 ‖ biggest
//!       ‖ max_version u64 ‖ entry_count u64 ‖ user_key_count u64
//!       ‖ data_bytes u64 ‖ stale_data_bytes u64 ‖ compression u8 ‖ has_bloom u8     (all LE)
//! ```
//!
//! Format page: docs/format/table.md (meta region).

use std::cmp::Ordering;
use std::path::Path;

use crate::coding::{self, Reader};
use crate::error::{Error, Result};
use crate::key::{compare_keys, is_valid_internal_key, version};
use crate::options::Compression;

/// Facts about a whole table, written after its data and checked on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// First internal key.
    pub smallest: Vec<u8>,
    /// Last internal key.
    pub biggest: Vec<u8>,
    /// Largest version of any entry.
    pub max_version: u64,
    /// Entries in the table.
    pub entry_count: u64,
    /// Distinct user keys (the keys in the bloom filter).
    pub user_key_count: u64,
    /// Sum of the raw (uncompressed) data block sizes.
    pub data_bytes: u64,
    /// Bytes of kept-but-shadowed entries, set by compaction.
    pub stale_data_bytes: u64,
    /// The compression the writer was configured with.
    pub compression: Compression,
    /// True if the table has a filter region.
    pub has_bloom: bool,
}

impl TableMeta {
    /// Appends the encoding. REQUIRES: keys are internal keys (at most 65,008 bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        debug_assert!(self.check().is_ok(), "{:?}", self.check());
        for key in [&self.smallest, &self.biggest] {
            coding::put_u16(out, key.len() as u16);
            out.extend_from_slice(key);
        }
        for v in [
            self.max_version,
            self.entry_count,
            self.user_key_count,
            self.data_bytes,
            self.stale_data_bytes,
        ] {
            coding::put_u64(out, v);
        }
        out.push(self.compression.to_byte());
        out.push(u8::from(self.has_bloom));
    }

    /// Decodes and checks the meta payload read from `file` at `offset`.
    pub fn decode(payload: &[u8], file: &Path, offset: u64) -> Result<Self> {
        let bad = |r: String| Error::corruption(file, offset, format!("table meta: {r}"));
        let meta = decode_fields(payload).map_err(|r| bad(r.to_string()))?;
        meta.check().map_err(bad)?;
        Ok(meta)
    }

    /// The checks a meta record passes on both sides of the disk.
    fn check(&self) -> std::result::Result<(), String> {
        if !is_valid_internal_key(&self.smallest) || !is_valid_internal_key(&self.biggest) {
            return Err("smallest or biggest is not an internal key".into());
        }
        if compare_keys(&self.smallest, &self.biggest) == Ordering::Greater {
            return Err("smallest key is above the biggest".into());
        }
        if self.user_key_count == 0 || self.user_key_count > self.entry_count {
            return Err(format!(
                "{} user keys for {} entries",
                self.user_key_count, self.entry_count
            ));
        }
        if self.max_version < version(&self.smallest).max(version(&self.biggest)) {
            return Err(format!(
                "max_version {} below a boundary key's",
                self.max_version
            ));
        }
        Ok(())
    }
}

fn decode_fields(payload: &[u8]) -> std::result::Result<TableMeta, &'static str> {
    let mut r = Reader::new(payload);
    let short = "truncated";
    let key = |r: &mut Reader<'_>| -> std::result::Result<Vec<u8>, &'static str> {
        let n = r.u16().ok_or(short)?;
        Ok(r.bytes(usize::from(n)).ok_or(short)?.to_vec())
    };
    let smallest = key(&mut r)?;
    let biggest = key(&mut r)?;
    let mut nums = [0u64; 5];
    for n in &mut nums {
        *n = r.u64().ok_or(short)?;
    }
    let compression = Compression::from_byte(r.u8().ok_or(short)?).ok_or("unknown compression")?;
    let has_bloom = match r.u8().ok_or(short)? {
        0 => false,
        1 => true,
        _ => return Err("has_bloom is neither 0 nor 1"),
    };
    if !r.is_empty() {
        return Err("bytes after the last field");
    }
    let [max_version, entry_count, user_key_count, data_bytes, stale_data_bytes] = nums;
    Ok(TableMeta {
        smallest,
        biggest,
        max_version,
        entry_count,
        user_key_count,
        data_bytes,
        stale_data_bytes,
        compression,
        has_bloom,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::key_with_version;
    use proptest::prelude::*;

    fn sample() -> TableMeta {
        TableMeta {
            smallest: key_with_version(b"a", 3),
            biggest: key_with_version(b"z", 9),
            max_version: 9,
            entry_count: 10,
            user_key_count: 4,
            data_bytes: 1234,
            stale_data_bytes: 55,
            compression: Compression::Lz4,
            has_bloom: true,
        }
    }

    #[test]
    fn round_trips() {
        // Proves every field survives encode/decode.
        let mut b = Vec::new();
        sample().encode(&mut b);
        assert_eq!(TableMeta::decode(&b, Path::new("m"), 0).unwrap(), sample());
    }

    #[test]
    fn inconsistent_meta_is_refused() {
        // Proves swapped boundary keys, zero user keys, a low max version, a bad flag and
        // trailing bytes are each Corruption.
        let enc = |m: TableMeta| {
            let mut b = Vec::new();
            for key in [&m.smallest, &m.biggest] {
                coding::put_u16(&mut b, key.len() as u16);
                b.extend_from_slice(key);
            }
            for v in [
                m.max_version,
                m.entry_count,
                m.user_key_count,
                m.data_bytes,
                0,
            ] {
                coding::put_u64(&mut b, v);
            }
            b.extend_from_slice(&[1, 0]);
            b
        };
        let mut swapped = sample();
        std::mem::swap(&mut swapped.smallest, &mut swapped.biggest);
        let zero_users = TableMeta {
            user_key_count: 0,
            ..sample()
        };
        let low_version = TableMeta {
            max_version: 2,
            ..sample()
        };
        let mut bad_flag = enc(sample());
        *bad_flag.last_mut().unwrap() = 2;
        let mut trailing = enc(sample());
        trailing.push(0);
        for bytes in [
            enc(swapped),
            enc(zero_users),
            enc(low_version),
            bad_flag,
            trailing,
        ] {
            assert!(matches!(
                TableMeta::decode(&bytes, Path::new("m"), 8),
                Err(Error::Corruption { offset: 8, .. })
            ));
        }
        assert!(TableMeta::decode(&enc(sample()), Path::new("m"), 8).is_ok());
    }

    proptest! {
        #[test]
        fn random_meta_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            // Proves arbitrary bytes are decoded or refused.
            let _ = TableMeta::decode(&bytes, Path::new("m"), 0);
        }
    }
}

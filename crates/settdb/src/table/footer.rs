//! The fixed-size footer at the end of every table.
//!
//! ```text
//! footer (64 bytes) := filter_offset u64 ‖ filter_len u64 ‖ index_offset u64 ‖ index_len u64
//!                    ‖ meta_offset u64 ‖ meta_len u64 ‖ format_version u32
//!                    ‖ crc32c u32 (over bytes [0, 52)) ‖ magic u64 ("SettTabl")   (all LE)
//! ```
//!
//! The footer is 64 bytes in every format version, so the checks run magic → crc → version
//! and each failure is reported as what it is. Version 1 is a plaintext table; version 2 an
//! encrypted one, whose 32-byte sealing block sits right before the footer:
//!
//! ```text
//! sealing (32 bytes) := key_id u64 ‖ salt [12] ‖ reserved [8] = 0 ‖ crc32c u32 (over [0, 28))
//! ```
//!
//! Format page: docs/format/table.md (footer).

use std::path::Path;

use super::block_frame::BLOCK_TRAILER_LEN;
use super::bloom::PROBES_LEN;
use crate::checksum::crc32c;
use crate::coding;
use crate::crypto::SALT_LEN;
use crate::error::{Error, Result};

/// Format version of a plaintext table.
pub const FORMAT_VERSION: u32 = 1;
/// Format version of an encrypted table (a sealing block before the footer).
pub const ENCRYPTED_FORMAT_VERSION: u32 = 2;
/// Bytes of the sealing block of an encrypted table.
pub const SEALING_LEN: usize = 32;
/// The magic number, the bytes "SettTabl" read as a little-endian u64.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"SettTabl");

/// Bytes of the six region fields.
const REGIONS_LEN: usize = 6 * 8;
/// Position of the format version.
pub const VERSION_AT: usize = REGIONS_LEN;
/// Position of the crc32c (which covers `[0, CRC_AT)`).
pub const CRC_AT: usize = VERSION_AT + 4;
/// Position of the magic.
pub const MAGIC_AT: usize = CRC_AT + 4;
/// Bytes of the footer.
pub const FOOTER_LEN: usize = MAGIC_AT + 8;

/// Smallest index or meta region: a trailer and one payload byte.
const MIN_REGION_LEN: u64 = BLOCK_TRAILER_LEN as u64 + 1;
/// Smallest filter region: a trailer, one byte of bits and the probe count.
const MIN_FILTER_REGION_LEN: u64 = BLOCK_TRAILER_LEN as u64 + 1 + PROBES_LEN as u64;

/// A byte range of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// File offset.
    pub offset: u64,
    /// Length in bytes (0: absent).
    pub len: u64,
}

/// Which data key and salt an encrypted table is sealed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealing {
    /// The data key's id in the key registry (>= 1).
    pub key_id: u64,
    /// The salt of the table's file key.
    pub salt: [u8; SALT_LEN],
}

impl Sealing {
    /// The 32 bytes of the sealing block.
    pub fn encode(&self) -> [u8; SEALING_LEN] {
        let mut b = Vec::with_capacity(SEALING_LEN);
        coding::put_u64(&mut b, self.key_id);
        b.extend_from_slice(&self.salt);
        b.extend_from_slice(&[0; 8]);
        let crc = crc32c(&b);
        coding::put_u32(&mut b, crc);
        let mut out = [0u8; SEALING_LEN];
        out.copy_from_slice(&b);
        out
    }

    /// Decodes the sealing block read at `offset` of `file`.
    pub fn decode(bytes: &[u8], file: &Path, offset: u64) -> Result<Sealing> {
        let bad = |r: &str| Error::corruption(file, offset, format!("table sealing block: {r}"));
        if bytes.len() != SEALING_LEN {
            return Err(bad("cut short"));
        }
        let stored = coding::get_u32(bytes, SEALING_LEN - 4).unwrap_or(0);
        let computed = crc32c(bytes.get(..SEALING_LEN - 4).unwrap_or_default());
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                file: file.to_path_buf(),
                offset,
                stored,
                computed,
            });
        }
        let key_id = coding::get_u64(bytes, 0).unwrap_or(0);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(bytes.get(8..8 + SALT_LEN).unwrap_or(&[0; SALT_LEN]));
        if key_id == 0 || bytes.get(20..28).is_none_or(|r| r.iter().any(|&b| b != 0)) {
            return Err(bad("key id 0 or reserved bytes not zero"));
        }
        Ok(Sealing { key_id, salt })
    }
}

/// The decoded footer: where the metadata regions are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// The bloom filter (len 0 if the table has none).
    pub filter: Region,
    /// The block index.
    pub index: Region,
    /// The table metadata.
    pub meta: Region,
    /// The key and salt of an encrypted table (format version 2).
    pub sealing: Option<Sealing>,
}

impl Footer {
    /// The table's tail: the sealing block of an encrypted table, then the 64 footer bytes.
    pub fn encode(&self) -> Vec<u8> {
        match &self.sealing {
            None => self.encode_version(FORMAT_VERSION).to_vec(),
            Some(s) => {
                let mut out = s.encode().to_vec();
                out.extend_from_slice(&self.encode_version(ENCRYPTED_FORMAT_VERSION));
                out
            }
        }
    }

    /// The footer bytes with an arbitrary version (tests write future versions).
    pub(crate) fn encode_version(&self, version: u32) -> [u8; FOOTER_LEN] {
        let mut b = Vec::with_capacity(FOOTER_LEN);
        for r in [self.filter, self.index, self.meta] {
            coding::put_u64(&mut b, r.offset);
            coding::put_u64(&mut b, r.len);
        }
        coding::put_u32(&mut b, version);
        let crc = crc32c(&b);
        coding::put_u32(&mut b, crc);
        coding::put_u64(&mut b, TABLE_MAGIC);
        let mut out = [0u8; FOOTER_LEN];
        out.copy_from_slice(&b);
        out
    }

    /// Decodes the last [`FOOTER_LEN`] bytes of a plaintext table (see [`Footer::decode_tail`]).
    #[cfg(test)]
    pub fn decode(bytes: &[u8], file: &Path, footer_offset: u64) -> Result<Footer> {
        Footer::decode_tail(bytes, None, file, footer_offset)
    }

    /// Decodes the last [`FOOTER_LEN`] bytes of `file`, which start at `footer_offset`, and
    /// checks magic, crc, version and the region layout. `sealing` holds the
    /// [`SEALING_LEN`] bytes before the footer (`None` if the file is too short for them); a
    /// version 2 footer needs them.
    pub fn decode_tail(
        bytes: &[u8],
        sealing: Option<&[u8]>,
        file: &Path,
        footer_offset: u64,
    ) -> Result<Footer> {
        let bad = |at: u64, r: String| Error::corruption(file, at, format!("table footer: {r}"));
        if bytes.len() != FOOTER_LEN {
            return Err(bad(
                footer_offset,
                format!("{} bytes, expected {FOOTER_LEN}", bytes.len()),
            ));
        }
        let field = |at: usize| coding::get_u64(bytes, at).unwrap_or(0);
        let magic = field(MAGIC_AT);
        if magic != TABLE_MAGIC {
            return Err(bad(
                footer_offset + MAGIC_AT as u64,
                format!("bad magic {magic:#018x}"),
            ));
        }
        let stored = coding::get_u32(bytes, CRC_AT).unwrap_or(0);
        let computed = crc32c(bytes.get(..CRC_AT).unwrap_or(&[]));
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                file: file.to_path_buf(),
                offset: footer_offset,
                stored,
                computed,
            });
        }
        let version = coding::get_u32(bytes, VERSION_AT).unwrap_or(0);
        if version == 0 {
            return Err(bad(footer_offset, "format version 0".into()));
        }
        if version > ENCRYPTED_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: file.to_path_buf(),
                found: version,
                supported: ENCRYPTED_FORMAT_VERSION,
            });
        }
        let (sealing, regions_end) = if version == ENCRYPTED_FORMAT_VERSION {
            let at = footer_offset.saturating_sub(SEALING_LEN as u64);
            let Some(b) = sealing.filter(|_| footer_offset >= SEALING_LEN as u64) else {
                return Err(bad(
                    at,
                    "encrypted table too short for its sealing block".into(),
                ));
            };
            (Some(Sealing::decode(b, file, at)?), at)
        } else {
            (None, footer_offset)
        };
        let region = |i: usize| Region {
            offset: field(16 * i),
            len: field(16 * i + 8),
        };
        let footer = Footer {
            filter: region(0),
            index: region(1),
            meta: region(2),
            sealing,
        };
        footer
            .check_layout(regions_end)
            .map_err(|r| bad(footer_offset, r))?;
        Ok(footer)
    }

    /// Where the data blocks end: the first metadata region.
    pub fn data_end(&self) -> u64 {
        if self.filter.len > 0 {
            self.filter.offset
        } else {
            self.index.offset
        }
    }

    /// Regions fit before the footer, have their minimum sizes, do not overlap, and tile the
    /// space between the data blocks and the footer.
    fn check_layout(&self, footer_offset: u64) -> std::result::Result<(), String> {
        let named = [
            ("filter", self.filter),
            ("index", self.index),
            ("meta", self.meta),
        ];
        for (name, r) in named {
            let end = r.offset.checked_add(r.len);
            if end.is_none_or(|e| e > footer_offset) {
                return Err(format!("{name} region {}+{} is outside the file's {footer_offset} bytes before the footer", r.offset, r.len));
            }
            let min = if name == "filter" {
                MIN_FILTER_REGION_LEN
            } else {
                MIN_REGION_LEN
            };
            if r.len < min && !(name == "filter" && r.len == 0) {
                return Err(format!(
                    "{name} region of {} bytes is below the minimum {min}",
                    r.len
                ));
            }
        }
        let mut present: Vec<(&str, Region)> =
            named.into_iter().filter(|(_, r)| r.len > 0).collect();
        present.sort_by_key(|(_, r)| r.offset);
        for w in present.windows(2) {
            let ((a, ra), (b, rb)) = (w[0], w[1]);
            if ra.offset + ra.len > rb.offset {
                return Err(format!("{a} and {b} regions overlap"));
            }
        }
        // Written order is filter, index, meta, each starting where the previous ends.
        let ordered = (self.filter.len == 0
            || self.filter.offset + self.filter.len == self.index.offset)
            && self.index.offset + self.index.len == self.meta.offset
            && self.meta.offset + self.meta.len == footer_offset;
        if !ordered {
            return Err("regions are not adjacent in the order filter, index, meta, footer".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        Footer {
            filter: Region {
                offset: 100,
                len: 20,
            },
            index: Region {
                offset: 120,
                len: 30,
            },
            meta: Region {
                offset: 150,
                len: 50,
            },
            sealing: None,
        }
    }

    #[test]
    fn round_trips_and_sizes_are_derived() {
        // Proves the footer is 64 bytes with the magic last, and decode(encode) is identity.
        assert_eq!(FOOTER_LEN, 64);
        let b = sample().encode();
        assert_eq!(&b[56..], b"SettTabl");
        assert_eq!(Footer::decode(&b, Path::new("t"), 200).unwrap(), sample());
        let no_filter = Footer {
            filter: Region::default(),
            ..sample()
        };
        assert_eq!(
            Footer::decode(&no_filter.encode(), Path::new("t"), 200)
                .unwrap()
                .data_end(),
            120
        );
    }

    #[test]
    fn an_encrypted_tail_round_trips_and_its_sealing_block_is_checked() {
        // Proves an encrypted table's tail (sealing block + version-2 footer) decodes back,
        // with the regions ending before the sealing block; a damaged sealing block is a
        // checksum mismatch at its offset, key id 0 corruption.
        let mut f = sample();
        f.meta.len = 18; // regions end at 168 = 200 - 32
        f.sealing = Some(Sealing {
            key_id: 3,
            salt: [7; SALT_LEN],
        });
        let tail = f.encode();
        assert_eq!(tail.len(), SEALING_LEN + FOOTER_LEN);
        let (seal, foot) = tail.split_at(SEALING_LEN);
        let p = Path::new("t");
        assert_eq!(Footer::decode_tail(foot, Some(seal), p, 200).unwrap(), f);
        let mut bad = seal.to_vec();
        bad[9] ^= 1;
        assert!(matches!(
            Footer::decode_tail(foot, Some(&bad), p, 200),
            Err(Error::ChecksumMismatch { offset: 168, .. })
        ));
        let zero = Sealing {
            key_id: 0,
            salt: [1; SALT_LEN],
        }
        .encode();
        assert!(matches!(
            Footer::decode_tail(foot, Some(&zero), p, 200),
            Err(Error::Corruption { offset: 168, .. })
        ));
        assert!(Footer::decode_tail(foot, None, p, 200).is_err());
    }

    #[test]
    fn each_footer_check_fires() {
        // Proves magic, crc, version (newer and 0) and each layout rule give their own error.
        let p = Path::new("t");
        let mut magic = sample().encode();
        magic[60] ^= 1;
        assert!(matches!(
            Footer::decode(&magic, p, 200),
            Err(Error::Corruption { offset: 256, .. })
        ));
        let mut crc = sample().encode();
        crc[3] ^= 1;
        assert!(matches!(
            Footer::decode(&crc, p, 200),
            Err(Error::ChecksumMismatch { offset: 200, .. })
        ));
        assert!(matches!(
            Footer::decode(&sample().encode_version(3), p, 200),
            Err(Error::UnsupportedVersion {
                found: 3,
                supported: 2,
                ..
            })
        ));
        // Version 2 needs its sealing block.
        assert!(matches!(
            Footer::decode(&sample().encode_version(2), p, 200),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            Footer::decode(&sample().encode_version(0), p, 200),
            Err(Error::Corruption { .. })
        ));
        let layouts = [
            (
                "past the end",
                Footer {
                    meta: Region {
                        offset: 150,
                        len: 51,
                    },
                    ..sample()
                },
            ),
            (
                "overflow",
                Footer {
                    meta: Region {
                        offset: u64::MAX,
                        len: 2,
                    },
                    ..sample()
                },
            ),
            (
                "overlap",
                Footer {
                    filter: Region {
                        offset: 100,
                        len: 25,
                    },
                    ..sample()
                },
            ),
            (
                "gap",
                Footer {
                    filter: Region {
                        offset: 100,
                        len: 15,
                    },
                    ..sample()
                },
            ),
            (
                "order",
                Footer {
                    index: Region {
                        offset: 170,
                        len: 30,
                    },
                    meta: Region {
                        offset: 120,
                        len: 50,
                    },
                    ..sample()
                },
            ),
            (
                "tiny",
                Footer {
                    filter: Region {
                        offset: 118,
                        len: 2,
                    },
                    ..sample()
                },
            ),
        ];
        for (name, f) in layouts {
            let r = Footer::decode(&f.encode(), p, 200);
            assert!(
                matches!(r, Err(Error::Corruption { offset: 200, .. })),
                "{name}: {r:?}"
            );
        }
    }
}

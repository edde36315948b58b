//! The framing of every stored block: data blocks and the filter, index and meta regions.
//!
//! ```text
//! stored_block := payload ‖ compression u8 ‖ crc32c u32 LE      (crc over payload ‖ compression)
//!               | sealed ‖ tag [16] ‖ compression u8 ‖ crc32c     (encrypted table; crc over all before it)
//! payload      := raw bytes                                      when compression = 0
//!               | uncompressed_len u32 LE ‖ compressed bytes     otherwise
//! sealed       := payload encrypted under the table's file key, nonce = the block's file offset,
//!                 the compression byte authenticated
//! ```
//!
//! Format page: docs/format/table.md (stored block).

use std::path::Path;

use super::compression::{self, Compressor, MAX_BLOCK_BYTES};
use crate::checksum::crc32c;
use crate::coding;
use crate::crypto::{FileCipher, TAG_LEN};
use crate::error::{Error, Result};
use crate::options::Compression;

/// Bytes of the compression type.
pub const COMPRESSION_TYPE_LEN: usize = 1;
/// Bytes of the crc32c.
pub const CHECKSUM_LEN: usize = 4;
/// Bytes after the payload: compression type and crc32c.
pub const BLOCK_TRAILER_LEN: usize = COMPRESSION_TYPE_LEN + CHECKSUM_LEN;
/// Bytes of the `uncompressed_len` prefix of a compressed payload.
pub const COMPRESSED_LEN_PREFIX: usize = 4;

/// Appends `raw` as a stored block to `out`, compressed by `compressor` if that saves at least
/// 1/8 of the raw size (LevelDB's rule: smaller savings do not pay for the decompression).
/// With `seal = (cipher, offset)` the payload is encrypted as the block at file offset
/// `offset` and its tag follows it. Returns the stored length.
pub fn append_stored_block(
    out: &mut Vec<u8>,
    raw: &[u8],
    compressor: Option<&mut Compressor>,
    seal: Option<(&FileCipher, u64)>,
) -> Result<usize> {
    debug_assert!(raw.len() <= MAX_BLOCK_BYTES || compressor.is_none());
    let start = out.len();
    let mut kind = Compression::None;
    if let Some(c) = compressor.filter(|c| c.kind() != Compression::None) {
        if c.should_try() {
            let k = c.kind();
            if let Some(z) = c.compress(raw)? {
                if COMPRESSED_LEN_PREFIX + z.len() <= raw.len() - raw.len() / 8 {
                    let len = u32::try_from(raw.len())
                        .map_err(|_| Error::InvalidRequest("block larger than 4 GiB"))?;
                    coding::put_u32(out, len);
                    out.extend_from_slice(z);
                    kind = k;
                }
            }
            c.record(kind != Compression::None);
        }
    }
    if kind == Compression::None {
        out.extend_from_slice(raw);
    }
    if let Some((cipher, offset)) = seal {
        let aad = [kind.to_byte()];
        let tag = cipher.seal(offset, &aad, out.get_mut(start..).unwrap_or_default())?;
        out.extend_from_slice(&tag);
    }
    out.push(kind.to_byte());
    let crc = crc32c(&out[start..]);
    coding::put_u32(out, crc);
    Ok(out.len() - start)
}

/// Decodes a stored block read from `file` at `offset`: checks the trailer, the checksum (when
/// `verify`), and returns the raw payload, decompressed. `allow_compressed = false` refuses any
/// compression (the metadata regions are always stored raw). In an encrypted table
/// (`cipher`) the checksum is checked and the payload authenticated and decrypted whatever
/// `verify` says; bytes whose checksum holds but that do not authenticate are
/// [`Error::Authentication`].
pub fn decode_stored_block(
    file: &Path,
    offset: u64,
    mut stored: Vec<u8>,
    verify: bool,
    allow_compressed: bool,
    cipher: Option<&FileCipher>,
) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::corruption(file, offset, reason);
    let Some(payload_len) = stored.len().checked_sub(BLOCK_TRAILER_LEN) else {
        return Err(bad(format!(
            "stored block of {} bytes is shorter than its {BLOCK_TRAILER_LEN}-byte trailer",
            stored.len()
        )));
    };
    let type_byte = stored.get(payload_len).copied().unwrap_or(u8::MAX);
    // An encrypted block's checksum is always checked (cheap beside AES-GCM): damage is then a
    // checksum mismatch, and only bytes changed with their checksum made right are
    // Authentication.
    if verify || cipher.is_some() {
        let stored_crc = coding::get_u32(&stored, payload_len + COMPRESSION_TYPE_LEN).unwrap_or(0);
        let computed = crc32c(
            stored
                .get(..payload_len + COMPRESSION_TYPE_LEN)
                .unwrap_or(&[]),
        );
        if stored_crc != computed {
            return Err(Error::ChecksumMismatch {
                file: file.to_path_buf(),
                offset,
                stored: stored_crc,
                computed,
            });
        }
    }
    let kind = Compression::from_byte(type_byte)
        .ok_or_else(|| bad(format!("unknown compression type {type_byte}")))?;
    stored.truncate(payload_len);
    if let Some(cipher) = cipher {
        let Some(sealed_len) = payload_len.checked_sub(TAG_LEN) else {
            return Err(bad(format!(
                "encrypted block of {payload_len} bytes is shorter than its tag"
            )));
        };
        let (sealed, tag) = stored.split_at_mut(sealed_len);
        if !cipher.open(offset, &[type_byte], sealed, tag) {
            return Err(Error::authentication(file, offset));
        }
        stored.truncate(sealed_len);
    }
    if kind == Compression::None {
        return Ok(stored);
    }
    if !allow_compressed {
        return Err(bad(format!(
            "metadata block has compression type {type_byte}; only 0 is allowed"
        )));
    }
    decompress_payload(kind, &stored).map_err(|r| bad(format!("{kind:?} block: {r}")))
}

/// Splits `uncompressed_len ‖ compressed`, checks the length against the bound, decompresses.
fn decompress_payload(kind: Compression, payload: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let len = coding::get_u32(payload, 0).ok_or("payload shorter than its length prefix")?;
    let compressed = payload.get(COMPRESSED_LEN_PREFIX..).unwrap_or(&[]);
    let len = usize::try_from(len).map_err(|_| "length does not fit in memory")?;
    let cap = compression::max_uncompressed_len(kind, compressed.len());
    if len > cap {
        return Err(format!(
            "claims {len} uncompressed bytes from {} compressed; the cap is {cap}",
            compressed.len()
        ));
    }
    compression::decompress(kind, compressed, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KINDS: [Compression; 4] = [
        Compression::None,
        Compression::Snappy,
        Compression::Zstd(1),
        Compression::Lz4,
    ];

    /// 4 KiB of pseudo-random (incompressible) bytes from `seed`.
    fn random_block(seed: u32) -> Vec<u8> {
        let mut x = seed;
        (0..4096)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn compresses_only_when_it_saves_an_eighth() {
        // Proves compressible input is stored compressed and random input is stored raw.
        let rng_bytes = random_block(12345);
        for kind in KINDS {
            let mut c = Compressor::new(kind).unwrap();
            let mut out = Vec::new();
            append_stored_block(&mut out, &[b'a'; 4096], Some(&mut c), None).unwrap();
            let expect = if kind == Compression::None {
                0
            } else {
                kind.to_byte()
            };
            assert_eq!(out[out.len() - BLOCK_TRAILER_LEN], expect, "{kind:?}");
            let mut out = Vec::new();
            append_stored_block(&mut out, &rng_bytes, Some(&mut c), None).unwrap();
            assert_eq!(out[out.len() - BLOCK_TRAILER_LEN], 0, "{kind:?} random");
        }
    }

    use crate::table::compression::SKIP_BLOCKS;

    /// The compression byte of the one stored block in `out`.
    fn stored_kind(out: &[u8]) -> u8 {
        out[out.len() - BLOCK_TRAILER_LEN]
    }

    #[test]
    fn incompressible_data_stops_the_tries_for_a_while() {
        // Proves a compressor gives up after GIVE_UP_AFTER blocks in a row that do not
        // compress (a compressible block right after is stored raw, untried), tries again
        // after SKIP_BLOCKS, and compresses from then on; one block that compresses resets
        // the count of misses.
        let random = random_block(99);
        let easy = [b'a'; 4096];
        let mut c = Compressor::new(Compression::Snappy).unwrap();
        let store = |c: &mut Compressor, raw: &[u8]| {
            let mut out = Vec::new();
            append_stored_block(&mut out, raw, Some(c), None).unwrap();
            stored_kind(&out)
        };
        let snappy = Compression::Snappy.to_byte();
        // Seven misses, a hit (resets), seven misses: still trying.
        for _ in 0..7 {
            assert_eq!(store(&mut c, &random), 0);
        }
        assert_eq!(store(&mut c, &easy), snappy);
        for _ in 0..7 {
            assert_eq!(store(&mut c, &random), 0);
        }
        assert_eq!(
            store(&mut c, &easy),
            snappy,
            "a miss streak of 7 still tries"
        );
        for _ in 0..8 {
            assert_eq!(store(&mut c, &random), 0);
        }
        // Given up: the next SKIP_BLOCKS blocks are stored raw, compressible or not.
        for i in 0..SKIP_BLOCKS {
            assert_eq!(store(&mut c, &easy), 0, "skipped block {i}");
        }
        assert_eq!(store(&mut c, &easy), snappy, "tried again after the window");
        // After a window, one more miss gives up at once.
        for _ in 0..8 {
            assert_eq!(store(&mut c, &random), 0);
        }
        for _ in 0..SKIP_BLOCKS {
            assert_eq!(store(&mut c, &easy), 0);
        }
        assert_eq!(store(&mut c, &random), 0, "the try after the window misses");
        assert_eq!(store(&mut c, &easy), 0, "and gives up again at once");
    }

    #[test]
    fn every_bad_trailer_is_a_typed_error() {
        // Proves short input, a flipped bit, an unknown type, and compression in a metadata
        // block are each refused with the right error at the given offset.
        let p = Path::new("t");
        let mut c = Compressor::new(Compression::Snappy).unwrap();
        let mut good = Vec::new();
        append_stored_block(&mut good, &[b'z'; 500], Some(&mut c), None).unwrap();
        assert!(matches!(
            decode_stored_block(p, 7, vec![1, 2], true, true, None),
            Err(Error::Corruption { offset: 7, .. })
        ));
        let mut flipped = good.clone();
        flipped[3] ^= 0x10;
        assert!(matches!(
            decode_stored_block(p, 9, flipped, true, true, None),
            Err(Error::ChecksumMismatch { offset: 9, .. })
        ));
        assert!(matches!(
            decode_stored_block(p, 9, good.clone(), true, false, None),
            Err(Error::Corruption { .. })
        ));
        let mut unknown = Vec::new();
        unknown.extend_from_slice(b"abc");
        unknown.push(9);
        let crc = crc32c(&unknown);
        coding::put_u32(&mut unknown, crc);
        assert!(matches!(
            decode_stored_block(p, 0, unknown, true, true, None),
            Err(Error::Corruption { .. })
        ));
        assert_eq!(
            decode_stored_block(p, 0, good, true, true, None).unwrap(),
            vec![b'z'; 500]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn frames_round_trip(raw in proptest::collection::vec(0u8..3, 1..2000), k in 0usize..4) {
            // Proves append then decode returns the raw bytes for every codec.
            let mut c = Compressor::new(KINDS[k]).unwrap();
            let mut out = Vec::new();
            let n = append_stored_block(&mut out, &raw, Some(&mut c), None).unwrap();
            prop_assert_eq!(n, out.len());
            prop_assert_eq!(decode_stored_block(Path::new("t"), 0, out, true, true, None).unwrap(), raw);
        }

        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                     t in 0u8..5, fix_crc: bool) {
            // Proves random payloads with any type byte (and a valid crc, to get past it) are
            // decoded or refused, never a panic or an unbounded allocation.
            let mut stored = bytes;
            stored.push(t);
            let crc = crc32c(&stored);
            coding::put_u32(&mut stored, if fix_crc { crc } else { crc ^ 1 });
            let _ = decode_stored_block(Path::new("t"), 0, stored, true, true, None);
        }
    }

    #[test]
    fn sealed_blocks_round_trip_and_any_change_is_refused() {
        // Proves an encrypted stored block decodes back to its raw bytes (compressed or not)
        // only at its own offset, and that every flipped byte is refused: a checksum mismatch
        // even when checksums are not verified, and with the checksum recomputed an error
        // (authentication, or an unknown compression byte).
        let cipher = FileCipher::new(1, &[5; 32], [6; 12]).unwrap();
        let p = Path::new("t");
        for compress in [false, true] {
            let raw = [b'q'; 700];
            let mut c = Compressor::new(Compression::Snappy).unwrap();
            let mut out = Vec::new();
            let comp = if compress { Some(&mut c) } else { None };
            append_stored_block(&mut out, &raw, comp, Some((&cipher, 4096))).unwrap();
            assert!(
                !out.windows(8).any(|w| w == [b'q'; 8]),
                "plaintext in the block"
            );
            let ok = decode_stored_block(p, 4096, out.clone(), true, true, Some(&cipher));
            assert_eq!(ok.unwrap(), raw);
            assert!(matches!(
                decode_stored_block(p, 4097, out.clone(), false, true, Some(&cipher)),
                Err(Error::Authentication { offset: 4097, .. })
            ));
            for i in 0..out.len() {
                let mut bad = out.clone();
                bad[i] ^= 0x20;
                // Damage is a checksum mismatch even with verification off.
                assert!(matches!(
                    decode_stored_block(p, 4096, bad.clone(), false, true, Some(&cipher)),
                    Err(Error::ChecksumMismatch { offset: 4096, .. })
                ));
                let n = bad.len() - CHECKSUM_LEN;
                if i < n {
                    let crc = crc32c(&bad[..n]);
                    bad[n..].copy_from_slice(&crc.to_le_bytes());
                    let r = decode_stored_block(p, 4096, bad, false, true, Some(&cipher));
                    assert!(r.is_err(), "byte {i}");
                }
            }
        }
    }
}

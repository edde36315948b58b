//! Block compression codecs (Snappy raw, ZSTD bulk, LZ4 block) and the bounds every
//! decompression respects before it allocates.
//!
//! A compressed payload is `uncompressed_len u32 ‖ compressed bytes` (see `block_frame.rs`);
//! this file only turns bytes into bytes. Format page: docs/format/table.md (stored block).

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::options::Compression;

/// Largest raw (uncompressed) data block a writer produces, and so the cap on any
/// decompression's output. A block holds at most `max(block_size, one entry)` bytes; an entry is
/// a key of at most `MAX_INTERNAL_KEY_SIZE` bytes plus an inline value well under this.
pub const MAX_BLOCK_BYTES: usize = 16 << 20;

/// Snappy cannot expand more than ~21x (a 3-byte copy op emits at most 64 bytes).
const SNAPPY_MAX_EXPANSION: usize = 32;
/// LZ4 cannot expand more than ~255x (each extra length byte adds at most 255).
const LZ4_MAX_EXPANSION: usize = 256;
/// Constant part of the LZ4 bound (a tiny input's first sequence emits up to 19 bytes).
const LZ4_EXPANSION_SLACK: usize = 64;
/// ZSTD cannot expand more than 32768x: a block decodes to at most 128 KiB and the smallest
/// block (RLE) is 4 bytes.
const ZSTD_MAX_EXPANSION: usize = 32 << 10;

/// Consecutive blocks that did not compress enough after which a [`Compressor`] stops trying.
const GIVE_UP_AFTER: u32 = 8;
/// Blocks stored without a try once a compressor gave up; then it tries one again (and gives
/// up again at once if that one does not compress either).
pub const SKIP_BLOCKS: u32 = 32;

/// Compresses blocks with one algorithm, reusing its output buffer and ZSTD context across
/// blocks so the write path allocates nothing per block.
///
/// It also stops trying on data that does not compress: values that are already compressed
/// or encrypted by the application make every try a loss (Snappy's failed tries were a fifth
/// of compaction's CPU on incompressible 128 B values). After [`GIVE_UP_AFTER`] blocks in a
/// row that did not save enough, the next [`SKIP_BLOCKS`] are stored raw untried, then one is
/// tried again. A table builder has its own compressor, so each table starts by trying;
/// what data that turns compressible mid-table costs is at most [`SKIP_BLOCKS`] raw blocks.
pub struct Compressor {
    kind: Compression,
    snappy: snap::raw::Encoder,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    out: Vec<u8>,
    /// Blocks in a row that did not compress enough.
    misses: u32,
    /// Blocks still to store without a try.
    skip: u32,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor for `kind` (`Compression::None` compresses nothing).
    pub fn new(kind: Compression) -> Result<Self> {
        let zstd = match kind {
            Compression::Zstd(level) => Some(
                zstd::bulk::Compressor::new(level)
                    .map_err(|e| Error::Compression(format!("zstd level {level}: {e}")))?,
            ),
            _ => None,
        };
        Ok(Compressor {
            kind,
            snappy: snap::raw::Encoder::new(),
            zstd,
            out: Vec::new(),
            misses: 0,
            skip: 0,
        })
    }

    /// Whether the next block should be tried, counting it against a skip window if not.
    pub fn should_try(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// Records whether a tried block compressed enough to be stored compressed.
    pub fn record(&mut self, saved: bool) {
        if saved {
            self.misses = 0;
            return;
        }
        // The streak is kept through a skip window, so one more miss after it gives up again.
        self.misses = self.misses.saturating_add(1);
        if self.misses >= GIVE_UP_AFTER {
            self.skip = SKIP_BLOCKS;
        }
    }

    /// The algorithm.
    pub fn kind(&self) -> Compression {
        self.kind
    }

    /// Compresses `raw`; `None` for `Compression::None`. The slice lives until the next call.
    pub fn compress(&mut self, raw: &[u8]) -> Result<Option<&[u8]>> {
        let n = match self.kind {
            Compression::Snappy => {
                let bound = snap::raw::max_compress_len(raw.len());
                grow(&mut self.out, bound);
                self.snappy
                    .compress(raw, &mut self.out)
                    .map_err(|e| Error::Compression(format!("snappy: {e}")))?
            }
            Compression::Lz4 => {
                let bound = lz4_flex::block::get_maximum_output_size(raw.len());
                grow(&mut self.out, bound);
                lz4_flex::block::compress_into(raw, &mut self.out)
                    .map_err(|e| Error::Compression(format!("lz4: {e}")))?
            }
            Compression::Zstd(_) => {
                let Some(z) = self.zstd.as_mut() else {
                    return Err(Error::Compression("zstd context missing".into()));
                };
                self.out.clear();
                self.out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
                z.compress_to_buffer(raw, &mut self.out)
                    .map_err(|e| Error::Compression(format!("zstd: {e}")))?
            }
            Compression::None => return Ok(None),
        };
        Ok(self.out.get(..n))
    }
}

/// Makes `buf` at least `len` bytes long (zero-filling only the growth).
fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

/// Largest output `kind` may claim for `compressed_len` input bytes: [`MAX_BLOCK_BYTES`], and
/// what the format can physically expand to, so a tiny payload cannot make us allocate much.
pub fn max_uncompressed_len(kind: Compression, compressed_len: usize) -> usize {
    let physical = match kind {
        Compression::Snappy => compressed_len.saturating_mul(SNAPPY_MAX_EXPANSION),
        Compression::Lz4 => compressed_len
            .saturating_mul(LZ4_MAX_EXPANSION)
            .saturating_add(LZ4_EXPANSION_SLACK),
        Compression::None => compressed_len,
        Compression::Zstd(_) => compressed_len.saturating_mul(ZSTD_MAX_EXPANSION),
    };
    physical.min(MAX_BLOCK_BYTES)
}

thread_local! {
    // A ZSTD decompression context costs an allocation of ~100 KiB; reuse one per thread.
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses `compressed` that must expand to exactly `uncompressed_len` bytes.
///
/// REQUIRES: the caller checked `uncompressed_len <= max_uncompressed_len(..)`, so the output
/// allocation is bounded. On bad input returns the reason (the caller names file and offset).
pub fn decompress(
    kind: Compression,
    compressed: &[u8],
    uncompressed_len: usize,
) -> std::result::Result<Vec<u8>, String> {
    debug_assert!(uncompressed_len <= max_uncompressed_len(kind, compressed.len()));
    let out = match kind {
        Compression::Snappy => decompress_snappy(compressed, uncompressed_len)?,
        Compression::Lz4 => {
            let mut out = vec![0u8; uncompressed_len];
            let n = lz4_flex::block::decompress_into(compressed, &mut out)
                .map_err(|e| format!("lz4: {e}"))?;
            out.truncate(n);
            out
        }
        Compression::Zstd(_) => decompress_zstd(compressed, uncompressed_len)?,
        Compression::None => compressed.to_vec(),
    };
    if out.len() != uncompressed_len {
        return Err(format!(
            "decompressed to {} bytes, header says {uncompressed_len}",
            out.len()
        ));
    }
    Ok(out)
}

fn decompress_snappy(compressed: &[u8], len: usize) -> std::result::Result<Vec<u8>, String> {
    let claimed = snap::raw::decompress_len(compressed).map_err(|e| format!("snappy: {e}"))?;
    if claimed != len {
        return Err(format!(
            "snappy header says {claimed} bytes, block header says {len}"
        ));
    }
    let mut out = vec![0u8; len];
    let n = snap::raw::Decoder::new()
        .decompress(compressed, &mut out)
        .map_err(|e| format!("snappy: {e}"))?;
    out.truncate(n);
    Ok(out)
}

fn decompress_zstd(compressed: &[u8], len: usize) -> std::result::Result<Vec<u8>, String> {
    ZSTD_DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot =
                Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd context: {e}"))?);
        }
        match slot.as_mut() {
            // `capacity = len` bounds the allocation; a frame that expands further is an error.
            Some(d) => d
                .decompress(compressed, len)
                .map_err(|e| format!("zstd: {e}")),
            None => Err("zstd context missing".to_string()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_kinds() -> [Compression; 4] {
        [
            Compression::None,
            Compression::Snappy,
            Compression::Zstd(3),
            Compression::Lz4,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn codecs_round_trip(raw in proptest::collection::vec(0u8..4, 0..3000)) {
            // Proves each codec restores its input exactly and stays within its claimed bound.
            for kind in all_kinds() {
                let mut c = Compressor::new(kind).unwrap();
                let compressed = match c.compress(&raw).unwrap() {
                    Some(b) => b.to_vec(),
                    None => raw.clone(),
                };
                prop_assert!(raw.len() <= max_uncompressed_len(kind, compressed.len()));
                prop_assert_eq!(decompress(kind, &compressed, raw.len()).unwrap(), raw.clone());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                len in 0usize..5000) {
            // Proves arbitrary input with an arbitrary claimed length is decoded or refused.
            for kind in all_kinds() {
                let len = len.min(max_uncompressed_len(kind, bytes.len()));
                if let Ok(out) = decompress(kind, &bytes, len) {
                    prop_assert_eq!(out.len(), len);
                }
            }
        }
    }

    #[test]
    fn wrong_claimed_length_is_refused() {
        // Proves a length header that disagrees with the stream is an error, both directions.
        let raw = vec![7u8; 1000];
        for kind in [Compression::Snappy, Compression::Zstd(1), Compression::Lz4] {
            let mut c = Compressor::new(kind).unwrap();
            let z = c.compress(&raw).unwrap().unwrap().to_vec();
            assert!(decompress(kind, &z, 999).is_err(), "{kind:?} short");
            assert!(decompress(kind, &z, 1001).is_err(), "{kind:?} long");
        }
    }
}

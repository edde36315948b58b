//! The newest small batches of the active value-log file, kept in memory for reads.
//!
//! Sealed files are read through mappings; the active file is never mapped (DESIGN.md: mmap
//! only for immutable, fully synced files), so a read of a value written moments ago was a
//! `pread` (a system call, a page-cache lookup and a kernel copy: a fifth of YCSB D, which
//! reads the newest keys). The writer keeps a copy of each small batch it wrote (at most
//! [`BATCH_MAX_BYTES`], the size of interactive commits; a bulk load's batches are not copied)
//! in chunks of one shared buffer, the newest [`KEPT_BYTES`] of them, and a read of a record
//! that lies wholly inside one kept batch copies it from there. The bytes are the file's bytes
//! as written (sealed records of an encrypted file stay sealed), so the record is decoded and
//! checked exactly as one read from the file.
//!
//! A batch is added only after its write returned, and before the file's readable end
//! covers it, so every kept byte is one the file holds; the copy is dropped when the file
//! rotates (it is then mapped, or read with `pread`). Damage the disk does to a kept batch is
//! therefore found by the reads after the rotation, or by recovery at the next open, as the
//! page cache hides it from `pread` until it drops the pages. Memory: at most [`KEPT_BYTES`]
//! plus one partly used chunk per database.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use bytes::{Bytes, BytesMut};

/// Batches larger than this are not kept (bulk loads: their copy would cost the writer more
/// than later reads of them gain).
pub(crate) const BATCH_MAX_BYTES: usize = 64 << 10;

/// Bytes of batches kept at most (the newest first kept, the oldest dropped).
pub(crate) const KEPT_BYTES: usize = 8 << 20;

/// Size of the buffers the copies are carved from (one allocation per this many bytes).
const CHUNK_BYTES: usize = 256 << 10;

#[derive(Debug, Default)]
struct Kept {
    /// (file offset, bytes) of each kept batch, by ascending offset.
    batches: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

/// The kept batches of one file (module doc). One writer adds; any thread reads.
#[derive(Debug, Default)]
pub(crate) struct RecentBatches {
    /// True while any batch is kept: a read of a sealed file (read with `pread` when it is
    /// not mapped) then takes no lock. A reader that sees it false just as a batch is added
    /// reads that batch from the file, which holds it already.
    holds: AtomicBool,
    kept: RwLock<Kept>,
    /// The writer's buffer the copies are split from.
    spare: std::sync::Mutex<BytesMut>,
}

impl RecentBatches {
    /// Keeps a copy of `batch`, written at `offset`, if it is small enough.
    /// REQUIRES: the file's writer, after the write returned; offsets ascending.
    pub(crate) fn add(&self, offset: u64, batch: &[u8]) {
        if batch.is_empty() || batch.len() > BATCH_MAX_BYTES {
            return;
        }
        let copy = {
            let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
            if spare.capacity() - spare.len() < batch.len() {
                *spare = BytesMut::with_capacity(CHUNK_BYTES.max(batch.len()));
            }
            spare.extend_from_slice(batch);
            spare.split().freeze()
        };
        let mut kept = self.kept.write().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(kept
            .batches
            .back()
            .is_none_or(|(o, b)| o + b.len() as u64 <= offset));
        kept.bytes += copy.len();
        kept.batches.push_back((offset, copy));
        self.holds.store(true, Ordering::Release);
        while kept.bytes > KEPT_BYTES {
            match kept.batches.pop_front() {
                Some((_, b)) => kept.bytes -= b.len(),
                None => break,
            }
        }
    }

    /// Calls `f` with the `len` bytes at `offset` if one kept batch holds all of them.
    pub(crate) fn read_with<R>(
        &self,
        offset: u64,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        if !self.holds.load(Ordering::Acquire) {
            return None;
        }
        let kept = self.kept.read().unwrap_or_else(PoisonError::into_inner);
        let (first, _) = kept.batches.front()?;
        if offset < *first {
            return None;
        }
        let i = kept.batches.partition_point(|(o, _)| *o <= offset);
        let (start, bytes) = kept.batches.get(i.checked_sub(1)?)?;
        let from = usize::try_from(offset - start).ok()?;
        bytes.get(from..from.checked_add(len)?).map(f)
    }

    /// Drops every kept batch (the file rotated).
    pub(crate) fn clear(&self) {
        self.holds.store(false, Ordering::Release);
        *self.kept.write().unwrap_or_else(PoisonError::into_inner) = Kept::default();
        *self.spare.lock().unwrap_or_else(PoisonError::into_inner) = BytesMut::new();
    }

    /// Bytes kept.
    #[cfg(test)]
    pub(crate) fn kept_bytes(&self) -> usize {
        self.kept
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `n` batches of `size` bytes each, as (offset, bytes).
    fn batches(n: usize, size: usize) -> Vec<(u64, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let bytes = (0..size).map(|j| (i * 31 + j) as u8).collect();
                (20 + (i * size) as u64, bytes)
            })
            .collect()
    }

    #[test]
    fn serves_ranges_within_one_kept_batch_only() {
        let r = RecentBatches::default();
        let all = batches(4, 1000);
        for (o, b) in &all {
            r.add(*o, b);
        }
        let copy = |o: u64, len: usize| r.read_with(o, len, <[u8]>::to_vec);
        for (o, b) in &all {
            assert_eq!(copy(*o, b.len()).as_deref(), Some(&b[..]));
            assert_eq!(copy(o + 10, 5).as_deref(), Some(&b[10..15]));
            assert_eq!(copy(o + 999, 1).as_deref(), Some(&b[999..]));
        }
        assert_eq!(copy(19, 2), None, "before the first batch");
        assert_eq!(copy(20 + 990, 20), None, "across two batches");
        assert_eq!(copy(20 + 3999, 2), None, "past the last batch");
        assert_eq!(copy(20 + 4000, 1), None);
        assert_eq!(copy(u64::MAX, 1), None);
        r.clear();
        assert_eq!(copy(20, 1), None, "nothing after a rotation");
        assert_eq!(r.kept_bytes(), 0);
    }

    #[test]
    fn keeps_the_newest_bytes_within_the_bound_and_skips_large_batches() {
        let r = RecentBatches::default();
        let exact = 32 << 10;
        let fill = batches(KEPT_BYTES / exact, exact);
        for (o, b) in &fill {
            r.add(*o, b);
        }
        assert_eq!(
            r.kept_bytes(),
            KEPT_BYTES,
            "exactly the bound is kept whole"
        );
        assert_eq!(
            r.read_with(fill[0].0, 3, <[u8]>::to_vec).as_deref(),
            Some(&fill[0].1[..3])
        );
        r.clear();
        let size = 48 << 10;
        let all = batches(KEPT_BYTES / size + 10, size);
        for (o, b) in &all {
            r.add(*o, b);
        }
        assert!(r.kept_bytes() <= KEPT_BYTES);
        assert!(
            r.kept_bytes() > KEPT_BYTES - size,
            "drops only what it must"
        );
        let (last_o, last) = all.last().unwrap();
        assert_eq!(
            r.read_with(*last_o, size, <[u8]>::to_vec).as_deref(),
            Some(&last[..])
        );
        let (first_o, _) = all[0];
        assert_eq!(
            r.read_with(first_o, 1, |_| ()),
            None,
            "the oldest was dropped"
        );
        let kept_before = r.kept_bytes();
        let end = last_o + size as u64;
        r.add(end, &vec![7; BATCH_MAX_BYTES + 1]);
        assert_eq!(r.kept_bytes(), kept_before, "a large batch is not copied");
        assert_eq!(r.read_with(end, 1, |_| ()), None);
        r.add(end + BATCH_MAX_BYTES as u64 + 1, &[9; BATCH_MAX_BYTES]);
        assert_eq!(
            r.read_with(end + BATCH_MAX_BYTES as u64 + 1, 2, <[u8]>::to_vec),
            Some(vec![9, 9]),
            "a batch of exactly the limit is kept"
        );
    }
}

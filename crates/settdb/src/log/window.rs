//! A read-ahead window over a log file: byte ranges served from one reused buffer.
//!
//! Replay and the forward scan read through it so that small batches cost no syscall each
//! and memory stays bounded: the buffer holds at most `max(READ_CHUNK_BYTES, largest range
//! asked)` bytes, and never more than the file has.

use crate::error::{Error, Result};
use crate::io::StorageFile;

/// Bytes read from the file at a time when a range is not already in the window.
pub(crate) const READ_CHUNK_BYTES: usize = 256 * 1024;

/// A cursor-free cache of one contiguous region of a file.
///
/// Invariant: `buf` holds the file bytes `[start, start + buf.len())`, all below `file_len`.
#[derive(Debug)]
pub(crate) struct Window<'f> {
    file: &'f dyn StorageFile,
    file_len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'f> Window<'f> {
    /// A window over `file`, whose length the caller read once as `file_len` (replay works
    /// on that snapshot of the length).
    pub fn new(file: &'f dyn StorageFile, file_len: u64) -> Self {
        Window {
            file,
            file_len,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The file length this window works with.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The file (for error messages).
    pub fn file(&self) -> &'f dyn StorageFile {
        self.file
    }

    /// The `len` bytes at `offset`. REQUIRES: `offset + len <= file_len` (callers check it
    /// against untrusted lengths first; a violation is an error, not a panic).
    pub fn get(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        let len64 = len as u64;
        let end = offset.checked_add(len64).filter(|&e| e <= self.file_len);
        let Some(end) = end else {
            return Err(Error::corruption(
                self.file.path(),
                offset,
                format!("read of {len} bytes past the end of the file"),
            ));
        };
        let cached_end = self.start + self.buf.len() as u64;
        if offset < self.start || end > cached_end {
            self.refill(offset, len)?;
        }
        let from = usize::try_from(offset - self.start).unwrap_or(usize::MAX);
        Ok(self
            .buf
            .get(from..from.saturating_add(len))
            .unwrap_or_default())
    }

    /// At least `min` bytes at `offset` (fewer only at the end of the file; none at it), and
    /// every further byte the window already holds. For sequential scans: they refill once
    /// per chunk however often they call, since a cached range is never read again.
    pub fn get_some(&mut self, offset: u64, min: usize) -> Result<&[u8]> {
        let left = self.file_len.saturating_sub(offset);
        let min = usize::try_from(left).map_or(min, |l| l.min(min));
        let cached_end = self.start + self.buf.len() as u64;
        if offset < self.start || offset.saturating_add(min as u64) > cached_end {
            self.get(offset, min)?;
        }
        let from = usize::try_from(offset - self.start).unwrap_or(usize::MAX);
        Ok(self.buf.get(from..).unwrap_or_default())
    }

    /// Reads at least `len` bytes at `offset`, a whole chunk when the file has it.
    fn refill(&mut self, offset: u64, len: usize) -> Result<()> {
        let left = self.file_len - offset;
        let want = usize::try_from(left).map_or(len.max(READ_CHUNK_BYTES), |l| {
            l.min(len.max(READ_CHUNK_BYTES))
        });
        // Drop the old bytes first so a failed read cannot leave a mislabelled window.
        self.buf.clear();
        self.start = offset;
        self.buf.resize(want, 0);
        if let Err(e) = self.file.read_at(offset, &mut self.buf) {
            self.buf.clear();
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::MemFile;

    #[test]
    fn serves_ranges_and_refuses_past_the_end() {
        // Proves ranges read back the file's bytes across chunk refills, reads are bounded by
        // the file, get_some serves the whole cached rest, and a range past the end is an error.
        let data: Vec<u8> = (0..(READ_CHUNK_BYTES * 2 + 10)).map(|i| i as u8).collect();
        let f = MemFile::new(data.clone());
        let mut w = Window::new(&f, data.len() as u64);
        assert_eq!(w.get(5, 3).unwrap(), &data[5..8]);
        let far = READ_CHUNK_BYTES as u64 + 7;
        assert_eq!(
            w.get(far, 100).unwrap(),
            &data[far as usize..far as usize + 100]
        );
        assert_eq!(w.get(1, 2).unwrap(), &data[1..3]);
        assert_eq!(
            w.get_some(data.len() as u64 - 4, 100).unwrap(),
            &data[data.len() - 4..]
        );
        assert!(w.get_some(data.len() as u64, 100).unwrap().is_empty());
        assert!(f.max_read() <= READ_CHUNK_BYTES);
        w.get(0, 4).unwrap();
        let some = w.get_some(10, 4).unwrap().len();
        assert_eq!(
            some,
            READ_CHUNK_BYTES - 10,
            "serves what is cached, not just 4 bytes"
        );
        assert!(matches!(
            w.get(data.len() as u64 - 1, 2),
            Err(Error::Corruption { .. })
        ));
        assert!(w.get(u64::MAX, 2).is_err());
        let tiny = MemFile::new(data[..20].to_vec());
        let mut small = Window::new(&tiny, 20);
        assert_eq!(small.get(3, 4).unwrap(), &data[3..7]);
        assert_eq!(tiny.max_read(), 17, "a refill never reads past the file");
    }
}

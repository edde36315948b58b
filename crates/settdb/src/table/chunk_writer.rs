//! Buffers a table's bytes and writes them to the file in large chunks.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::StorageFile;

/// Bytes buffered before one `write_at` (one syscall per ~64 blocks of 4 KiB, not per block).
pub const WRITE_CHUNK_BYTES: usize = 256 << 10;

/// Appends to a file through a buffer of about [`WRITE_CHUNK_BYTES`].
///
/// After a failed write every later call fails (the bytes on disk are unknown; durability
/// rule 8).
#[derive(Debug)]
pub struct ChunkWriter {
    file: Arc<dyn StorageFile>,
    buf: Vec<u8>,
    /// Bytes already written to the file.
    flushed: u64,
    failed: Option<String>,
}

impl ChunkWriter {
    /// A writer appending to `file` from offset 0.
    pub fn new(file: Arc<dyn StorageFile>) -> Self {
        ChunkWriter {
            file,
            buf: Vec::with_capacity(WRITE_CHUNK_BYTES + (WRITE_CHUNK_BYTES >> 2)),
            flushed: 0,
            failed: None,
        }
    }

    /// The file offset of the next byte appended.
    pub fn offset(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// The buffer to append to; call [`ChunkWriter::maybe_flush`] after appending.
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Writes the buffer out if it reached a chunk.
    pub fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= WRITE_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out everything buffered.
    pub fn flush(&mut self) -> Result<()> {
        self.check()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_at(self.flushed, &self.buf) {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Flushes and makes the file durable.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        if let Err(e) = self.file.sync_data() {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        Ok(())
    }

    /// Fails if an earlier write failed.
    pub fn check(&self) -> Result<()> {
        match &self.failed {
            Some(e) => Err(Error::Poisoned(format!(
                "table {}: {e}",
                self.file.path().display()
            ))),
            None => Ok(()),
        }
    }
}

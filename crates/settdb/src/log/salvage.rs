//! [`salvage`]: every intact batch of a damaged log, for `settdb repair`.
//!
//! Replay stops at the first bad byte, since what follows may be a torn tail. Salvage is for a
//! log already known to be damaged: it hands out every batch that passes its checks wherever
//! it lies, so an operator loses only the damaged batches, never the intact ones after them.
//! A batch is recognised by its magic and its header checksum, which is seeded with the log's
//! kind and file id (the id comes from the file name: the file header may be the damage); each
//! header stores the offset it was written at, so a copy of a batch (say, inside a value, or a
//! region copied over another) is handed out once, at its first intact copy, and only batches
//! in ascending written-offset order are taken.

use super::batch::{check_batch, LogCipher, Placement, ReplayBatch, Scratch};
use super::format::{
    BatchHeader, LogKind, BATCH_HEADER_LEN, BATCH_MAGIC_BYTES, FIRST_BATCH_OFFSET,
};
use super::seal::is_seal;
use super::window::Window;
use crate::error::Result;
use crate::io::StorageFile;

/// What [`salvage`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Salvaged {
    /// Intact batches handed out (the seal not counted).
    pub batches: u64,
    /// Records in them.
    pub records: u64,
    /// Bytes after the file header that belong to no intact batch (the damage, and any torn
    /// tail).
    pub lost_bytes: u64,
    /// True if the log ends in an intact seal.
    pub sealed: bool,
}

/// Calls `f` with every intact batch of the log in `file` (kind `kind`, id `file_id`), in
/// file order, skipping damaged bytes (in an encrypted log, `cipher`: also records or batches that do not
/// authenticate). Errors: I/O errors, and any error of `f`.
pub fn salvage(
    file: &dyn StorageFile,
    kind: LogKind,
    file_id: u64,
    cipher: Option<LogCipher<'_>>,
    mut f: impl FnMut(&ReplayBatch<'_>) -> Result<()>,
) -> Result<Salvaged> {
    let mut win = Window::new(file, file.len()?);
    let mut out = Salvaged::default();
    let mut scratch = Scratch::default();
    let mut pos = FIRST_BATCH_OFFSET;
    // Written offsets below this were handed out already (or lie before a batch that was).
    let mut next_written = FIRST_BATCH_OFFSET;
    let mut covered = FIRST_BATCH_OFFSET.min(win.file_len());
    while pos + BATCH_HEADER_LEN as u64 <= win.file_len() {
        if let Some(end) = take_batch(
            &mut win,
            (kind, file_id),
            pos,
            next_written,
            (&mut scratch, cipher),
            |b| {
                if is_seal(b) {
                    out.sealed = true;
                    return Ok(());
                }
                out.sealed = false;
                out.batches += 1;
                out.records += b.len() as u64;
                f(b)
            },
        )? {
            covered += end.1 - pos;
            next_written = end.0;
            pos = end.1;
            continue;
        }
        pos = next_candidate(&mut win, pos + 1)?;
    }
    out.lost_bytes = win.file_len().saturating_sub(covered);
    Ok(out)
}

/// If an intact batch written at or after `next_written` starts at `pos`, hands it to `f` and
/// returns (its written end, its end here).
fn take_batch(
    win: &mut Window<'_>,
    id: (LogKind, u64),
    pos: u64,
    next_written: u64,
    (scratch, cipher): (&mut Scratch, Option<LogCipher<'_>>),
    f: impl FnOnce(&ReplayBatch<'_>) -> Result<()>,
) -> Result<Option<(u64, u64)>> {
    let head = win.get(pos, BATCH_HEADER_LEN)?;
    match BatchHeader::decode(head, id.0, id.1) {
        Ok(h) if h.batch_offset >= next_written => {}
        _ => return Ok(None),
    }
    let batch = match check_batch(win, id, pos, Placement::Anywhere, scratch, cipher)? {
        Ok(b) => b,
        Err(_) => return Ok(None),
    };
    // The stored offset is checksummed but still bytes from disk: no overflow.
    let written_end = batch
        .written_offset()
        .saturating_add(batch.end() - batch.offset());
    let end = batch.end();
    f(&batch)?;
    Ok(Some((written_end, end)))
}

/// The next offset at or after `from` where a batch magic starts (or the end of the file).
fn next_candidate(win: &mut Window<'_>, mut from: u64) -> Result<u64> {
    while from + BATCH_HEADER_LEN as u64 <= win.file_len() {
        let chunk = win.get_some(from, BATCH_HEADER_LEN)?;
        match chunk
            .windows(BATCH_MAGIC_BYTES.len())
            .position(|w| w == BATCH_MAGIC_BYTES)
        {
            Some(i) => return Ok(from + i as u64),
            // Keep the last 3 bytes: a magic may straddle the chunk boundary.
            None => from += (chunk.len().saturating_sub(BATCH_MAGIC_BYTES.len() - 1)).max(1) as u64,
        }
    }
    Ok(win.file_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testing::{build, recs, MemFile, TestRec};

    /// Salvages `bytes` of WAL 1; returns (first record index of each batch, the result).
    fn run(bytes: Vec<u8>) -> (Vec<u64>, Salvaged) {
        let mut firsts = Vec::new();
        let out = salvage(&MemFile::new(bytes), LogKind::Wal, 1, None, |b| {
            let (_, r) = b.get(0).unwrap();
            firsts.push(TestRec::from_ref(&r).expires_at / 3);
            Ok(())
        })
        .unwrap();
        (firsts, out)
    }

    fn five() -> crate::log::testing::Built {
        build(
            LogKind::Wal,
            &[
                (recs(0, 2), true),
                (recs(2, 3), true),
                (recs(5, 2), true),
                (recs(7, 1), true),
                (recs(8, 2), true),
            ],
        )
    }

    #[test]
    fn an_intact_log_is_salvaged_whole() {
        // Proves salvage hands out every batch once and loses no byte of an intact log.
        let b = five();
        let (firsts, out) = run(b.bytes());
        assert_eq!(firsts, vec![0, 2, 5, 7, 8]);
        assert_eq!(out.lost_bytes, 0);
        assert_eq!((out.batches, out.records, out.sealed), (5, 10, false));
    }

    #[test]
    fn every_batch_but_the_damaged_one_is_salvaged() {
        // Proves damage costs only the batch it hits, wherever it is, header included, and
        // the bytes counted lost are that batch's.
        let b = five();
        for i in 0..5 {
            let bytes = b.bytes();
            let (start, end) = (b.offsets[i], b.offsets[i + 1]);
            for at in [start, start + 5, (start + end) / 2, end - 1] {
                let mut damaged = bytes.clone();
                damaged[at as usize] ^= 0x20;
                let (firsts, out) = run(damaged);
                let want: Vec<u64> = [0, 2, 5, 7, 8]
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, &f)| f)
                    .collect();
                assert_eq!(firsts, want, "batch {i}, byte {at}");
                assert_eq!(out.lost_bytes, end - start, "batch {i}, byte {at}");
                assert_eq!(out.batches, 4, "batch {i}, byte {at}");
            }
        }
    }

    #[test]
    fn shifted_and_copied_batches_are_handed_out_once() {
        // Proves inserted bytes (a region copied into the middle) cost nothing but the copy:
        // the shifted batches are found, and the copies of earlier batches are not handed
        // out twice.
        let b = five();
        let bytes = b.bytes();
        let at = b.offsets[2] as usize;
        let copy = bytes[b.offsets[0] as usize..b.offsets[2] as usize].to_vec();
        let mut inserted = bytes.clone();
        inserted.splice(at..at, copy.iter().copied());
        let (firsts, out) = run(inserted);
        assert_eq!(firsts, vec![0, 2, 5, 7, 8]);
        assert_eq!(out.lost_bytes, copy.len() as u64);
        let mut header = bytes.clone();
        header[3] ^= 1;
        assert_eq!(run(header).0, vec![0, 2, 5, 7, 8], "a damaged file header");
    }

    #[test]
    fn the_seal_is_reported_not_handed_out() {
        // Proves a sealed log's seal batch is not handed out as data and is reported, and a
        // damaged seal is just lost bytes.
        use crate::io::{FsStorage, OpenMode, Storage};
        use crate::log::{LogHeader, LogWriter, RecordRef};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.mem");
        let mut w = LogWriter::create(&FsStorage, &path, LogHeader::new(LogKind::Wal, 1)).unwrap();
        let recs = recs(0, 3);
        let refs: Vec<RecordRef<'_>> = recs.iter().map(TestRec::as_ref).collect();
        w.append_batch(&refs, &mut Vec::new()).unwrap();
        w.seal().unwrap();
        let bytes = FsStorage
            .open(&path, OpenMode::Read)
            .and_then(|f| f.read_vec_at(0, f.len()? as usize))
            .unwrap();
        let (firsts, out) = run(bytes.clone());
        assert_eq!(
            (firsts, out.batches, out.sealed, out.lost_bytes),
            (vec![0], 1, true, 0)
        );
        let mut damaged = bytes;
        let last = damaged.len() - 2;
        damaged[last] ^= 1;
        let (firsts, out) = run(damaged);
        assert_eq!((firsts, out.batches, out.sealed), (vec![0], 1, false));
        assert_eq!(out.lost_bytes, crate::log::seal_batch_len());
    }
}

//! Recovery: replaying a log's valid batches and deciding where it ends.
//!
//! ```text
//! log_file := file_header batch* (seal | tail)   tail := nothing | zeros | torn batch
//! ```
//!
//! Replay reads batches in order and hands out whole valid batches. At the first position `P`
//! that is not a valid batch it tells a torn tail (end of log) from corruption (DESIGN.md rules
//! 4 and 6): by the `synced_offset` of later intact batches, found wherever damage moved them
//! (each header stores the offset it was written at), and by whether the damage can be what a
//! power loss leaves. It never writes (rule 7) and reads through a bounded [`Window`].
//! Normative page: docs/format/log.md.

use std::convert::Infallible;
use std::ops::ControlFlow;

use super::batch::{check_batch, LogCipher, Placement, ReplayBatch, Scratch};
use super::format::{BatchHeader, LogHeader, LogKind, BATCH_HEADER_LEN, BATCH_MAGIC_BYTES};
use super::format::{FILE_HEADER_LEN, FIRST_BATCH_OFFSET};
use super::seal::is_seal;
use super::window::Window;
use crate::crypto::KeyRegistry;
use crate::error::{Error, Result};
use crate::io::StorageFile;

/// The unit a power loss keeps or loses whole: damage followed by an intact batch is explained
/// by a crash only if it holds a sector (or the rest of one) that reads as zeros: a sector the
/// disk never wrote (see log.md, "Reading: replay").
pub const SECTOR_BYTES: u64 = 512;

/// Why replay stopped where it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The last batch ends exactly at the end of the file.
    CleanEnd,
    /// Every byte from `offset` to the end of the file is zero (never-synced space the file
    /// system zero-filled): the log ends at `offset`.
    ZeroTail {
        /// Where the zeros start.
        offset: u64,
    },
    /// The bytes at `offset` are not a valid batch, nothing after them proves they had been
    /// synced, and they are what a crash can leave: a write the crash interrupted. The log
    /// ends at `offset`.
    TornTail {
        /// Where the torn batch starts.
        offset: u64,
    },
    /// The file is shorter than a header, or all zeros: a crash between its creation and the
    /// header's sync. It holds nothing and nothing can refer to it (not an error).
    Unborn,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::CleanEnd => write!(f, "clean end"),
            StopReason::ZeroTail { offset } => write!(f, "zero-filled tail from offset {offset}"),
            StopReason::TornTail { offset } => write!(f, "torn tail from offset {offset}"),
            StopReason::Unborn => write!(f, "unborn (no durable header)"),
        }
    }
}

/// What replay found: where the valid log ends and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayEnd {
    /// The file header; `None` when the file is [`StopReason::Unborn`].
    pub header: Option<LogHeader>,
    /// Offset just past the last valid batch, seal included (the header's end if none, 0 if
    /// unborn): where an appending writer continues ([`super::LogWriter::open_append`]).
    pub valid_end: u64,
    /// Why replay stopped.
    pub stop: StopReason,
    /// True if the log ends in its seal ([`super::LogWriter::seal`]): it was complete.
    pub sealed: bool,
    /// Valid batches handed out (the seal is not one).
    pub batches: u64,
    /// Records handed out.
    pub records: u64,
}

/// Replays `file`, expecting a log of kind `expected`: calls `f` once per valid batch, in
/// file order (never for the seal), and returns where the log ends.
///
/// Errors: [`Error::Corruption`] / [`Error::ChecksumMismatch`] for a damaged header, for
/// damage a later batch proves was synced, for damage followed by intact batches that no
/// crash explains, and for anything after a seal; [`Error::UnsupportedVersion`] for another
/// format version; I/O errors; and any error `f` returns (which stops replay at once). Replay
/// never writes; the caller truncates a torn or zero tail by reopening with
/// `LogWriter::open_append`.
///
/// Damage to the last batches of an unsealed log with no intact batch after them is
/// indistinguishable from a torn write: a caller that knows an offset was durable must check
/// `valid_end` against it.
pub fn replay(
    file: &dyn StorageFile,
    expected: LogKind,
    f: impl FnMut(&ReplayBatch<'_>) -> Result<()>,
) -> Result<ReplayEnd> {
    replay_with(file, expected, None, f)
}

/// [`replay`] of a log that may be encrypted: `keys` is the database's key registry (`None`
/// for a plaintext database, where an encrypted log is [`Error::EncryptionKeyRequired`]). A
/// record whose checksum holds but whose encrypted bytes do not authenticate is
/// [`Error::Authentication`] at its offset, never a torn tail.
pub fn replay_with(
    file: &dyn StorageFile,
    expected: LogKind,
    keys: Option<&KeyRegistry>,
    mut f: impl FnMut(&ReplayBatch<'_>) -> Result<()>,
) -> Result<ReplayEnd> {
    // `f` never stops the replay: the break type is uninhabited.
    let flow = replay_flow(file, expected, keys, |b| {
        f(b).map(|()| ControlFlow::<Infallible>::Continue(()))
    })?;
    match flow {
        ControlFlow::Continue(end) => Ok(end),
        ControlFlow::Break(never) => match never {},
    }
}

/// [`replay_with`] that `f` may stop (`ControlFlow::Break`): then no later batch is read or
/// checked, and the result is `None` (the log's end was not reached). A reader that wants the
/// first records of a large file (value-log GC's sample) reads only those batches.
pub fn replay_until(
    file: &dyn StorageFile,
    expected: LogKind,
    keys: Option<&KeyRegistry>,
    f: impl FnMut(&ReplayBatch<'_>) -> Result<ControlFlow<()>>,
) -> Result<Option<ReplayEnd>> {
    Ok(match replay_flow(file, expected, keys, f)? {
        ControlFlow::Continue(end) => Some(end),
        ControlFlow::Break(()) => None,
    })
}

/// The replay itself: `Break(b)` as soon as `f` breaks with `b`, else the end of the log.
fn replay_flow<B>(
    file: &dyn StorageFile,
    expected: LogKind,
    keys: Option<&KeyRegistry>,
    mut f: impl FnMut(&ReplayBatch<'_>) -> Result<ControlFlow<B>>,
) -> Result<ControlFlow<B, ReplayEnd>> {
    let mut win = Window::new(file, file.len()?);
    let Some(header) = read_header_in(&mut win, expected)? else {
        return Ok(ControlFlow::Continue(ReplayEnd {
            header: None,
            valid_end: 0,
            stop: StopReason::Unborn,
            sealed: false,
            batches: 0,
            records: 0,
        }));
    };
    let file_cipher = header.cipher(keys, file.path())?;
    let cipher = file_cipher.as_ref().map(|c| LogCipher::of(&header, c));
    let id = (header.kind, header.file_id);
    let mut end = ReplayEnd {
        header: Some(header),
        valid_end: FIRST_BATCH_OFFSET,
        stop: StopReason::CleanEnd,
        sealed: false,
        batches: 0,
        records: 0,
    };
    let mut scratch = Scratch::default();
    let mut pos = FIRST_BATCH_OFFSET;
    let mut prev_synced = FIRST_BATCH_OFFSET;
    while pos < win.file_len() {
        if end.sealed {
            let why = "bytes follow the seal of a complete log";
            return Err(Error::corruption(file.path(), pos, why));
        }
        let checked = check_batch(&mut win, id, pos, Placement::InPlace, &mut scratch, cipher)?;
        let reason = match checked {
            Ok(batch) => {
                if batch.synced_offset() < prev_synced {
                    let why = format!(
                        "batch synced_offset {} is below the previous batch's {prev_synced}",
                        batch.synced_offset()
                    );
                    return Err(Error::corruption(file.path(), pos, why));
                }
                prev_synced = batch.synced_offset();
                if is_seal(&batch) {
                    end.sealed = true;
                } else {
                    let flow = f(&batch)?;
                    end.batches += 1;
                    end.records += batch.len() as u64;
                    if let ControlFlow::Break(b) = flow {
                        return Ok(ControlFlow::Break(b));
                    }
                }
                pos = batch.end();
                continue;
            }
            Err(reason) => reason,
        };
        end.stop = classify_tail(&mut win, id, pos, &reason, cipher)?;
        break;
    }
    end.valid_end = pos;
    Ok(ControlFlow::Continue(end))
}

/// Reads and checks the header; `None` when the file is unborn.
pub(crate) fn read_header_in(win: &mut Window<'_>, expected: LogKind) -> Result<Option<LogHeader>> {
    if win.file_len() < FILE_HEADER_LEN as u64 {
        return Ok(None);
    }
    let bytes: [u8; FILE_HEADER_LEN] = win
        .get(0, FILE_HEADER_LEN)?
        .try_into()
        .map_err(|_| Error::corruption(win.file().path(), 0, "short header read"))?;
    if bytes.iter().all(|&b| b == 0) {
        // The header is synced before any batch is written, so data after a zero header
        // cannot be a crash artefact.
        if zeros_from(win, FIRST_BATCH_OFFSET)? {
            return Ok(None);
        }
        let why = "the header is all zeros but later bytes are not";
        return Err(Error::corruption(win.file().path(), 0, why));
    }
    LogHeader::decode(&bytes, win.file().path(), expected).map(Some)
}

/// Decides what the invalid bytes at `p` are: a zero tail, a torn tail, or (returned as
/// `Err`) corruption. Corruption when an intact batch of this log, written at or after `p`,
/// lies after `p` (wherever inserted or removed bytes moved it) and either its header records
/// `p` as synced, or the bytes between `p` and it hold no lost sector: a crash loses whole
/// sectors (read back as zeros), never changes bytes, before data it did write.
fn classify_tail(
    win: &mut Window<'_>,
    id: (LogKind, u64),
    p: u64,
    reason: &str,
    cipher: Option<LogCipher<'_>>,
) -> Result<StopReason> {
    if zeros_from(win, p)? {
        return Ok(StopReason::ZeroTail { offset: p });
    }
    let path = win.file().path();
    match find_evidence(win, id, p, cipher)? {
        Evidence::None => Ok(StopReason::TornTail { offset: p }),
        Evidence::Synced { at, synced } => Err(Error::corruption(
            path,
            p,
            format!(
                "invalid batch ({reason}), but the intact batch at offset {at} records the log \
                 as synced up to {synced}: these bytes were durable, not a torn write"
            ),
        )),
        Evidence::Intact { at } => Err(Error::corruption(
            path,
            p,
            format!(
                "invalid batch ({reason}), and an intact batch follows at offset {at}: the \
                 bytes between are not what a crash leaves (no lost sector reading as zeros)"
            ),
        )),
    }
}

/// What the bytes after a damaged position say about it.
enum Evidence {
    /// No intact batch of this log written at or after the damage lies after it.
    None,
    /// The intact batch at `at` records the damaged bytes as synced.
    Synced { at: u64, synced: u64 },
    /// The intact batch at `at` follows damage that holds no whole zero sector.
    Intact { at: u64 },
}

/// Scans forward from `p + 1` for intact batches of this log whose header says they were
/// written at or after `p` (a copy of an earlier batch, inside a value, proves nothing).
/// Candidates are found by their magic bytes and their header checked first, so only a
/// header that passes its checksum costs a full batch check. Runs only on damage.
fn find_evidence(
    win: &mut Window<'_>,
    id: (LogKind, u64),
    p: u64,
    cipher: Option<LogCipher<'_>>,
) -> Result<Evidence> {
    let mut scratch = Scratch::default();
    let mut first_intact: Option<u64> = None;
    let mut q = p + 1;
    while q + BATCH_HEADER_LEN as u64 <= win.file_len() {
        let chunk = win.get_some(q, BATCH_HEADER_LEN)?;
        let Some(i) = chunk
            .windows(BATCH_MAGIC_BYTES.len())
            .position(|w| w == BATCH_MAGIC_BYTES)
        else {
            // Keep the last 3 bytes: a magic may straddle the chunk boundary.
            q += (chunk.len().saturating_sub(BATCH_MAGIC_BYTES.len() - 1)).max(1) as u64;
            continue;
        };
        let candidate = q + i as u64;
        q = candidate + 1;
        if candidate + BATCH_HEADER_LEN as u64 > win.file_len() {
            break;
        }
        let head = win.get(candidate, BATCH_HEADER_LEN)?;
        let Ok(h) = BatchHeader::decode(head, id.0, id.1) else {
            continue;
        };
        if h.batch_offset < p {
            continue; // a copy of a batch from before the damage
        }
        let checked = check_batch(
            win,
            id,
            candidate,
            Placement::Anywhere,
            &mut scratch,
            cipher,
        )?;
        let batch = match checked {
            Ok(batch) => batch,
            Err(_) => continue,
        };
        if batch.synced_offset() > p {
            return Ok(Evidence::Synced {
                at: candidate,
                synced: batch.synced_offset(),
            });
        }
        q = batch.end();
        if first_intact.is_none() {
            first_intact = Some(candidate);
            if !has_unwritten_piece(win, p, candidate)? {
                return Ok(Evidence::Intact { at: candidate });
            }
        }
    }
    Ok(Evidence::None)
}

/// True if the damaged bytes `[from, to)` (an intact batch starts at `to`) hold what a power
/// loss leaves: a disk sector the crash lost reads as zeros, so some piece of the range between
/// sector boundaries, from `from` or a boundary up to the next boundary, is all zeros. (The
/// piece ending at `to` does not count: its sector also holds the intact batch's bytes, so it
/// was written.)
fn has_unwritten_piece(win: &mut Window<'_>, from: u64, to: u64) -> Result<bool> {
    let mut a = from;
    loop {
        let b = (a / SECTOR_BYTES + 1) * SECTOR_BYTES;
        if b > to {
            return Ok(false);
        }
        let len = (b - a) as usize;
        if win.get(a, len)?.iter().all(|&x| x == 0) {
            return Ok(true);
        }
        a = b;
    }
}

/// True if every byte from `offset` to the end of the file is zero.
fn zeros_from(win: &mut Window<'_>, mut offset: u64) -> Result<bool> {
    while offset < win.file_len() {
        let chunk = win.get_some(offset, 1)?;
        debug_assert!(!chunk.is_empty(), "get_some below the end returns a byte");
        if chunk.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        offset += chunk.len() as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FsStorage, OpenMode, Storage};
    use crate::log::format::BatchHeader;
    use crate::log::testing::{build, recs, replay_all, replay_bytes, Built, MemFile, TestRec};
    use crate::log::{read_record, LogWriter, RecordPos};
    use crate::value::{meta, ValuePointer};
    use proptest::prelude::*;

    const WAL: LogKind = LogKind::Wal;

    /// Batches of 3, 1 and 4 records, each synced after it is written when `sync` says so.
    fn three(sync: [bool; 3]) -> Built {
        build(
            WAL,
            &[
                (recs(0, 3), sync[0]),
                (recs(3, 1), sync[1]),
                (recs(4, 4), sync[2]),
            ],
        )
    }

    /// The records of batches `0..n` of `three`, as replay should hand them out.
    fn expected(b: &Built, n: usize) -> Vec<(u64, Vec<(RecordPos, TestRec)>)> {
        let all = [recs(0, 3), recs(3, 1), recs(4, 4)];
        (0..n)
            .map(|i| {
                let rs = b.positions[i].iter().copied().zip(all[i].iter().cloned());
                (b.offsets[i], rs.collect())
            })
            .collect()
    }

    fn corruption_at(r: &Result<ReplayEnd>) -> Option<u64> {
        match r {
            Err(Error::Corruption { offset, .. }) => Some(*offset),
            _ => None,
        }
    }

    #[test]
    fn clean_log_replays_every_batch() {
        // Proves a log written by the writer replays all batches, positions and counts exactly.
        let b = three([true, false, true]);
        let file = FsStorage.open(&b.path, OpenMode::Read).unwrap();
        let (end, seen) = replay_all(file.as_ref(), WAL);
        let end = end.unwrap();
        assert_eq!(seen, expected(&b, 3));
        assert_eq!(end.stop, StopReason::CleanEnd);
        assert_eq!(
            (end.valid_end, end.batches, end.records),
            (b.offsets[3], 3, 8)
        );
        assert_eq!(end.header, Some(LogHeader::new(WAL, 1)));
    }

    #[test]
    fn truncation_anywhere_in_the_last_batch_is_a_torn_tail() {
        // Proves cutting the file at every byte of the last batch keeps the earlier batches
        // and ends the log at the last batch, never an error.
        let b = three([true, true, false]);
        let bytes = b.bytes();
        let (p, end) = (b.offsets[2], b.offsets[3]);
        for cut in p..end {
            let (r, seen) = replay_bytes(bytes[..cut as usize].to_vec(), WAL);
            let r = r.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            let stop = if cut == p {
                StopReason::CleanEnd
            } else {
                StopReason::TornTail { offset: p }
            };
            assert_eq!(
                (r.stop, r.valid_end, r.batches),
                (stop, p, 2),
                "cut at {cut}"
            );
            assert_eq!(seen, expected(&b, 2));
        }
    }

    #[test]
    fn zero_filled_tail_ends_the_log() {
        // Proves a file extended with zeros (whole or half-zeroed last batch) reads as the end
        // of the log, and a partly zeroed batch is a torn tail.
        let b = three([true, true, true]);
        let end = b.offsets[3];
        std::fs::OpenOptions::new()
            .write(true)
            .open(&b.path)
            .unwrap()
            .set_len(end + 5000)
            .unwrap();
        let file = FsStorage.open(&b.path, OpenMode::Read).unwrap();
        let r = replay_all(file.as_ref(), WAL).0.unwrap();
        assert_eq!(
            (r.stop, r.valid_end, r.batches),
            (StopReason::ZeroTail { offset: end }, end, 3)
        );
        let mut bytes = b.bytes();
        let p = b.offsets[2] as usize;
        bytes[p..].fill(0);
        let r = replay_bytes(bytes.clone(), WAL).0.unwrap();
        assert_eq!(r.stop, StopReason::ZeroTail { offset: p as u64 });
        bytes[p..p + 10].copy_from_slice(&b.bytes()[p..p + 10]);
        let r = replay_bytes(bytes, WAL).0.unwrap();
        assert_eq!(r.stop, StopReason::TornTail { offset: p as u64 });
    }

    #[test]
    fn damage_in_a_synced_batch_is_corruption_at_its_offset() {
        // Proves a bit flip at every byte of a batch that a later valid batch records as
        // synced is Corruption naming the damaged batch's offset (rule 4), not a torn tail.
        let b = three([true, true, true]);
        let bytes = b.bytes();
        for (victim, later) in [(0, 1), (1, 2)] {
            let (p, q) = (b.offsets[victim], b.offsets[victim + 1]);
            for at in p..q {
                let mut m = bytes.clone();
                m[at as usize] ^= 1 << (at % 8);
                let (r, seen) = replay_bytes(m, WAL);
                assert_eq!(corruption_at(&r), Some(p), "flip at {at}: {r:?}");
                assert_eq!(seen, expected(&b, victim));
                let msg = r.unwrap_err().to_string();
                let evidence = format!("intact batch at offset {}", b.offsets[later]);
                assert!(msg.contains(&evidence), "{msg}");
            }
        }
    }

    #[test]
    fn damage_in_the_last_batch_is_a_torn_tail() {
        // Proves a bit flip anywhere in the last batch ends the log there: nothing after it
        // says it was synced.
        let b = three([true, true, false]);
        let bytes = b.bytes();
        let p = b.offsets[2];
        for at in p..b.offsets[3] {
            let mut m = bytes.clone();
            m[at as usize] ^= 0x80 >> (at % 8);
            let (r, seen) = replay_bytes(m, WAL);
            assert_eq!(
                r.unwrap().stop,
                StopReason::TornTail { offset: p },
                "flip at {at}"
            );
            assert_eq!(seen, expected(&b, 2));
        }
    }

    #[test]
    fn a_hole_before_only_unsynced_batches_is_a_torn_tail() {
        // Proves the crash model: a whole zeroed sector inside an unsynced batch, or its bytes
        // up to a sector boundary zeroed, with later intact batches that never recorded it as
        // synced, is what a power loss leaves (a torn tail: they are dropped with it); one sync
        // after them turns the same hole into corruption; and a flipped bit instead of the hole
        // is corruption either way (a crash never changes bytes).
        let big = |first: u64| vec![TestRec::new(first, 1500)];
        let layout = |synced_third: bool| {
            build(
                WAL,
                &[
                    (recs(0, 2), true),
                    (big(2), false),
                    (recs(4, 2), synced_third),
                    (recs(6, 1), false),
                ],
            )
        };
        let b = layout(false);
        let p = b.offsets[1];
        let sector = p.div_ceil(SECTOR_BYTES) * SECTOR_BYTES;
        assert!(
            sector + SECTOR_BYTES <= b.offsets[2],
            "the big batch spans a sector"
        );
        let mut hole = b.bytes();
        hole[sector as usize..(sector + SECTOR_BYTES) as usize].fill(0);
        let (r, seen) = replay_bytes(hole.clone(), WAL);
        let r = r.unwrap();
        assert_eq!(
            (r.stop, r.valid_end, r.batches),
            (StopReason::TornTail { offset: p }, p, 1)
        );
        assert_eq!(seen.len(), 1);
        let mut flip = b.bytes();
        flip[p as usize + 40] ^= 4;
        let r = replay_bytes(flip, WAL).0;
        assert_eq!(corruption_at(&r), Some(p));
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("not what a crash leaves"));
        let mut rest_of_sector = b.bytes();
        rest_of_sector[p as usize..sector as usize].fill(0);
        let r = replay_bytes(rest_of_sector, WAL).0.unwrap();
        assert_eq!(r.stop, StopReason::TornTail { offset: p });

        let b = layout(true);
        let mut hole = b.bytes();
        hole[sector as usize..(sector + SECTOR_BYTES) as usize].fill(0);
        let r = replay_bytes(hole, WAL).0;
        assert_eq!(corruption_at(&r), Some(p));
        assert!(r.unwrap_err().to_string().contains("synced up to"));
    }

    #[test]
    fn batches_moved_by_inserted_or_removed_bytes_are_evidence() {
        // Proves batches are recognised wherever damage moved them: bytes inserted before
        // batches (a copied region) or removed from the middle, with intact batches after,
        // are corruption, even when no batch was synced (no sync_writes) and wherever the
        // damage sits; a copy of an earlier batch after a torn tail proves nothing.
        let b = build(
            WAL,
            &[
                (recs(0, 2), false),
                (recs(2, 3), false),
                (recs(5, 2), false),
                (recs(7, 1), false),
            ],
        );
        let bytes = b.bytes();
        for at in [b.offsets[1], b.offsets[1] + 7, b.offsets[2] - 1] {
            let mut inserted = bytes.clone();
            let copy = bytes[b.offsets[0] as usize..b.offsets[1] as usize].to_vec();
            inserted.splice(at as usize..at as usize, copy);
            assert!(
                replay_bytes(inserted, WAL).0.unwrap_err().is_corruption(),
                "at {at}"
            );
            let mut removed = bytes.clone();
            removed.drain(at as usize..at as usize + 5);
            assert!(
                replay_bytes(removed, WAL).0.unwrap_err().is_corruption(),
                "at {at}"
            );
        }
        let mut copied_after = bytes.clone();
        let last = b.offsets[3] as usize;
        copied_after[last + 3] ^= 1;
        copied_after.extend_from_slice(&bytes[b.offsets[0] as usize..b.offsets[1] as usize]);
        let r = replay_bytes(copied_after, WAL).0.unwrap();
        assert_eq!(
            r.stop,
            StopReason::TornTail {
                offset: last as u64
            }
        );
    }

    #[test]
    fn a_sealed_log_reports_any_damage_and_any_cut() {
        // Proves the seal: a sealed log replays as sealed and hands out no seal batch; a flip
        // anywhere before the seal is corruption (the seal records everything as synced); a cut
        // anywhere leaves a log that does not end sealed; bytes after the seal are corruption.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.mem");
        let mut w = LogWriter::create(&FsStorage, &path, LogHeader::new(WAL, 1)).unwrap();
        let mut pos = Vec::new();
        for i in 0..3 {
            let rs = recs(i * 3, 3);
            let refs: Vec<_> = rs.iter().map(TestRec::as_ref).collect();
            w.append_batch(&refs, &mut pos).unwrap();
        }
        let data_end = w.offset();
        w.seal().unwrap();
        assert!(w
            .append_batch(&[TestRec::new(1, 1).as_ref()], &mut pos)
            .is_err());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, data_end + crate::log::seal_batch_len());
        let (r, seen) = replay_bytes(bytes.clone(), WAL);
        let r = r.unwrap();
        assert!(r.sealed);
        assert_eq!(
            (r.batches, seen.len(), r.valid_end),
            (3, 3, bytes.len() as u64)
        );
        let file = FsStorage.open(&path, OpenMode::Read).unwrap();
        assert!(crate::log::ends_sealed(file.as_ref(), WAL, 1).unwrap());
        for at in FILE_HEADER_LEN..bytes.len() {
            let mut m = bytes.clone();
            m[at] ^= 0x10;
            let flipped = MemFile::new(m.clone());
            assert!(!crate::log::ends_sealed(&flipped, WAL, 1).unwrap() || at < data_end as usize);
            match replay_bytes(m, WAL).0 {
                Err(e) => assert!(e.is_corruption() && at < data_end as usize, "{at}: {e}"),
                // A damaged seal itself ends the log after every batch: nothing is lost, and
                // a log that must be sealed is reported by its caller.
                Ok(r) => assert!(at >= data_end as usize && !r.sealed && r.batches == 3),
            }
            let cut = MemFile::new(bytes[..at].to_vec());
            assert!(
                !crate::log::ends_sealed(&cut, WAL, 1).unwrap(),
                "cut at {at}"
            );
            let r = replay(&cut, WAL, |_| Ok(())).unwrap();
            assert!(!r.sealed, "cut at {at}");
        }
        let mut after = bytes.clone();
        after.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            corruption_at(&replay_bytes(after, WAL).0),
            Some(bytes.len() as u64)
        );
    }

    #[test]
    fn unborn_files_are_reported_not_errors() {
        // Proves short, empty and all-zero files are Unborn, and a zero header followed by
        // data is Corruption at 0.
        for bytes in [vec![], vec![7u8; 20], vec![0u8; 48], vec![0u8; 300]] {
            let r = replay_bytes(bytes.clone(), WAL).0.unwrap();
            assert_eq!(
                (r.stop, r.header, r.valid_end),
                (StopReason::Unborn, None, 0),
                "{bytes:?}"
            );
        }
        let mut zero_header = vec![0u8; 300];
        zero_header[200] = 1;
        assert_eq!(corruption_at(&replay_bytes(zero_header, WAL).0), Some(0));
        let dir = tempfile::tempdir().unwrap();
        let f = FsStorage
            .open(&dir.path().join("e.mem"), OpenMode::CreateNew)
            .unwrap();
        assert_eq!(
            replay_all(f.as_ref(), WAL).0.unwrap().stop,
            StopReason::Unborn
        );
    }

    #[test]
    fn header_problems_are_typed_errors() {
        // Proves bad magic/kind are Corruption at 0, a flipped header byte ChecksumMismatch at
        // 0, and a newer version UnsupportedVersion, all through replay of a real log.
        let b = three([true, true, true]);
        let bytes = b.bytes();
        let mut m = bytes.clone();
        m[0] ^= 1;
        assert_eq!(corruption_at(&replay_bytes(m, WAL).0), Some(0));
        let mut m = bytes.clone();
        m[12] ^= 1;
        assert!(matches!(
            replay_bytes(m, WAL).0,
            Err(Error::ChecksumMismatch { offset: 0, .. })
        ));
        assert_eq!(
            corruption_at(&replay_bytes(bytes.clone(), LogKind::ValueLog).0),
            Some(0)
        );
        let mut m = bytes;
        m[4] = 9;
        let crc = crate::checksum::crc32c(&m[..44]);
        m[44..48].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            replay_bytes(m, WAL).0,
            Err(Error::UnsupportedVersion {
                found: 9,
                supported: 2,
                ..
            })
        ));
    }

    #[test]
    fn decreasing_synced_offset_is_corruption() {
        // Proves a checksummed batch whose synced_offset goes backwards is reported: no
        // writer produces it.
        let b = build(
            WAL,
            &[(recs(0, 1), true), (recs(1, 1), true), (recs(2, 1), false)],
        );
        let mut m = b.bytes();
        let p = b.offsets[2];
        let range = p as usize..p as usize + BATCH_HEADER_LEN;
        let old = BatchHeader::decode(&m[range.clone()], WAL, 1).unwrap();
        let mut h = Vec::new();
        BatchHeader {
            synced_offset: FIRST_BATCH_OFFSET,
            ..old
        }
        .encode(WAL, 1, &mut h);
        m[range].copy_from_slice(&h);
        assert_eq!(corruption_at(&replay_bytes(m, WAL).0), Some(p));
    }

    #[test]
    fn huge_length_fields_never_allocate_past_the_file() {
        // Proves a sealed batch header claiming 4 GiB or 4 billion records is a torn tail and
        // no read is larger than the file.
        let header = LogHeader::new(WAL, 1).encode();
        for (count, body_len) in [(1, u32::MAX), (u32::MAX, 100), (u32::MAX, u32::MAX)] {
            let mut bytes = header.to_vec();
            BatchHeader {
                count,
                body_len,
                batch_offset: 48,
                synced_offset: 48,
            }
            .encode(WAL, 1, &mut bytes);
            bytes.extend_from_slice(&[0xab; 100]);
            let f = MemFile::new(bytes.clone());
            let r = replay(&f, WAL, |_| Ok(())).unwrap();
            assert_eq!(r.stop, StopReason::TornTail { offset: 48 });
            assert!(f.max_read() <= bytes.len());
        }
    }

    #[test]
    fn forward_scan_reads_each_chunk_once() {
        // Proves the scan after a torn batch stays linear on a tail packed with batch magic
        // bytes (every 4 bytes a candidate): a handful of chunk reads, none over a chunk.
        let b = three([true, true, false]);
        let mut m = b.bytes();
        let p = b.offsets[2];
        m[p as usize] ^= 1;
        let packed = 3 * crate::log::window::READ_CHUNK_BYTES / BATCH_MAGIC_BYTES.len();
        for _ in 0..packed {
            m.extend_from_slice(&BATCH_MAGIC_BYTES);
        }
        let f = MemFile::new(m);
        let r = replay(&f, WAL, |_| Ok(())).unwrap();
        assert_eq!(r.stop, StopReason::TornTail { offset: p });
        assert!(f.max_read() <= crate::log::window::READ_CHUNK_BYTES);
        assert!(f.reads() <= 12, "{} reads", f.reads());
    }

    #[test]
    fn callback_error_aborts_replay() {
        // Proves an Err from the callback stops replay at once and is returned unchanged.
        let b = three([true, true, true]);
        let mut calls = 0;
        let f = MemFile::new(b.bytes());
        let r = replay(&f, WAL, |_| {
            calls += 1;
            Err(Error::Closed)
        });
        assert!(matches!(r, Err(Error::Closed)));
        assert_eq!(calls, 1);
    }

    /// A record from proptest parts, with meta bits made valid.
    fn test_rec(
        m: u8,
        um: u8,
        exp: u64,
        user_key: Vec<u8>,
        version: u64,
        value: Vec<u8>,
    ) -> TestRec {
        let mut meta_bits = m & meta::ALL;
        if value.len() != ValuePointer::ENCODED_LEN {
            meta_bits &= !meta::VALUE_POINTER;
        }
        let key = crate::key::key_with_version(&user_key, version);
        TestRec {
            meta: meta_bits,
            user_meta: um,
            expires_at: exp,
            key,
            value,
        }
    }

    fn arb_rec() -> impl Strategy<Value = TestRec> {
        let key = proptest::collection::vec(any::<u8>(), 0..20);
        let value = proptest::collection::vec(any::<u8>(), 0..300);
        (
            any::<u8>(),
            any::<u8>(),
            any::<u64>(),
            key,
            any::<u64>(),
            value,
        )
            .prop_map(|(m, um, exp, k, v, val)| test_rec(m, um, exp, k, v, val))
    }

    fn arb_batches() -> impl Strategy<Value = Vec<(Vec<TestRec>, bool)>> {
        let batch = (proptest::collection::vec(arb_rec(), 1..6), any::<bool>());
        proptest::collection::vec(batch, 1..5)
    }

    /// A valid three-batch log, built once for the mutation tests.
    fn sample_log() -> &'static [u8] {
        static LOG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        LOG.get_or_init(|| three([true, true, false]).bytes())
    }

    #[test]
    fn fuzz_body_accepts_a_valid_log_and_its_damage() {
        // Proves the fuzz target's checks hold on a valid log of each kind (records read back
        // by position) and on every single-byte corruption of one.
        for (selector, kind) in [(0u8, WAL), (1u8, LogKind::ValueLog)] {
            let b = build(kind, &[(recs(0, 2), true), (recs(2, 3), false)]);
            let mut input = vec![selector];
            input.extend_from_slice(&b.bytes());
            crate::fuzzing::log_replay(&input);
            for at in 1..input.len() {
                let mut m = input.clone();
                m[at] = m[at].wrapping_add(0x5b);
                crate::fuzzing::log_replay(&m);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn round_trip_with_positions(batches in arb_batches()) {
            // Proves random batches replay exactly, with the writer's positions, and that
            // read_record at each position returns the record.
            let b = build(WAL, &batches);
            let file = FsStorage.open(&b.path, OpenMode::Read).unwrap();
            let (end, seen) = replay_all(file.as_ref(), WAL);
            let end = end.unwrap();
            prop_assert_eq!(end.stop, StopReason::CleanEnd);
            prop_assert_eq!(seen.len(), batches.len());
            for (i, ((recs, _), (offset, got))) in batches.iter().zip(&seen).enumerate() {
                prop_assert_eq!(*offset, b.offsets[i]);
                let want: Vec<_> = b.positions[i].iter().copied().zip(recs.iter().cloned()).collect();
                prop_assert_eq!(got, &want);
                for (pos, rec) in want {
                    let owned = read_record(file.as_ref(), pos).unwrap();
                    prop_assert_eq!(TestRec::from_ref(&owned.as_record()), rec);
                }
            }
        }

        #[test]
        fn mutated_logs_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4),
                                    cut in any::<prop::sample::Index>(), do_cut: bool,
                                    zeros in 0usize..64) {
            // Proves replay of a mutated valid log returns Ok or a typed error, hands out
            // only batches identical to the originals, and never reads more than the file.
            let original = sample_log();
            let mut m = original.to_vec();
            for (at, x) in &flips {
                let i = at.index(m.len());
                m[i] ^= x;
            }
            if do_cut {
                m.truncate(cut.index(m.len() + 1));
            }
            m.resize(m.len() + zeros, 0);
            let f = MemFile::new(m.clone());
            let (r, seen) = replay_all(&f, WAL);
            prop_assert!(f.max_read() <= m.len().max(1));
            match r {
                Ok(end) => prop_assert!(end.valid_end <= m.len() as u64),
                Err(e) => prop_assert!(e.is_corruption() || matches!(e, Error::UnsupportedVersion { .. }), "{e}"),
            }
            let (clean, good) = replay_bytes(original.to_vec(), WAL);
            prop_assert!(clean.is_ok());
            for batch in &seen {
                prop_assert!(good.contains(batch));
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400),
                                    with_header: bool) {
            // Proves arbitrary bytes, alone or behind a valid header, replay and decode to a
            // value or a typed error.
            let mut data = if with_header { LogHeader::new(WAL, 1).encode().to_vec() } else { Vec::new() };
            data.extend_from_slice(&bytes);
            let f = MemFile::new(data.clone());
            if let Err(e) = replay(&f, WAL, |_| Ok(())) {
                prop_assert!(e.is_corruption() || matches!(e, Error::UnsupportedVersion { .. }), "{e}");
            }
            prop_assert!(f.max_read() <= data.len().max(1));
            let _ = crate::log::decode_record(&bytes);
        }

        #[test]
        fn fuzz_body_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                  selector: u8, with_header: bool) {
            // Proves the fuzz target's body holds on random inputs, with and without a valid
            // header in front of them.
            let mut data = vec![selector];
            if with_header {
                let kind = if selector & 1 == 0 { WAL } else { LogKind::ValueLog };
                data.extend_from_slice(&LogHeader::new(kind, 1).encode());
            }
            data.extend_from_slice(&bytes);
            crate::fuzzing::log_replay(&data);
        }
    }
}

//! Recovery: replaying a log's valid batches and deciding where it ends.
//!
//! ```text
//! log_file := file_header batch* tail      tail := nothing | zeros | torn batch
//! ```
//!
//! Replay reads batches in order and hands out whole valid batches. At the first position `P`
//! that is not a valid batch it tells a torn tail (end of log) from corruption by the
//! `synced_offset` of later valid batches (DESIGN.md rules 4 and 6). It never writes (rule 7)
//! and reads through a bounded [`Window`]. Normative page: docs/format/log.md.

use super::batch::{check_batch, ReplayBatch, Slot};
use super::format::{BatchHeader, LogHeader, LogKind, BATCH_HEADER_LEN, BATCH_MAGIC_BYTES};
use super::format::{FILE_HEADER_LEN, FIRST_BATCH_OFFSET};
use super::window::Window;
use crate::error::{Error, Result};
use crate::io::StorageFile;

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
    /// The bytes at `offset` are not a valid batch and no later valid batch says they were
    /// synced: a write the crash interrupted. The log ends at `offset`.
    TornTail {
        /// Where the torn batch starts.
        offset: u64,
    },
    /// The file is shorter than a header, or all zeros: a crash between its creation and the
    /// header's sync. It holds nothing and nothing can refer to it (not an error).
    Unborn,
}

/// What replay found: where the valid log ends and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayEnd {
    /// The file header; `None` when the file is [`StopReason::Unborn`].
    pub header: Option<LogHeader>,
    /// Offset just past the last valid batch (the header's end if none, 0 if unborn): where
    /// an appending writer continues ([`super::LogWriter::open_append`]).
    pub valid_end: u64,
    /// Why replay stopped.
    pub stop: StopReason,
    /// Valid batches handed out.
    pub batches: u64,
    /// Records handed out.
    pub records: u64,
}

/// Replays `file`, expecting a log of kind `expected`: calls `f` once per valid batch, in
/// file order, and returns where the log ends.
///
/// Errors: [`Error::Corruption`] / [`Error::ChecksumMismatch`] for a damaged header or damage
/// in bytes that had been synced, [`Error::UnsupportedVersion`] for a newer format, I/O
/// errors, and any error `f` returns (which stops replay at once). Replay never writes; the
/// caller truncates a torn or zero tail by reopening with `LogWriter::open_append`.
///
/// Damage to the last synced batches with no valid batch after them is indistinguishable from
/// a torn write: a caller that knows an offset was durable must check `valid_end` against it.
pub fn replay(
    file: &dyn StorageFile,
    expected: LogKind,
    mut f: impl FnMut(&ReplayBatch<'_>) -> Result<()>,
) -> Result<ReplayEnd> {
    let mut win = Window::new(file, file.len()?);
    let Some(header) = read_header_in(&mut win, expected)? else {
        return Ok(ReplayEnd {
            header: None,
            valid_end: 0,
            stop: StopReason::Unborn,
            batches: 0,
            records: 0,
        });
    };
    let mut end = ReplayEnd {
        header: Some(header),
        valid_end: FIRST_BATCH_OFFSET,
        stop: StopReason::CleanEnd,
        batches: 0,
        records: 0,
    };
    let mut slots = Vec::new();
    let mut pos = FIRST_BATCH_OFFSET;
    let mut prev_synced = FIRST_BATCH_OFFSET;
    while pos < win.file_len() {
        let reason = match check_batch(&mut win, header.file_id, pos, &mut slots)? {
            Ok(batch) => {
                if batch.synced_offset() < prev_synced {
                    let why = format!(
                        "batch synced_offset {} is below the previous batch's {prev_synced}",
                        batch.synced_offset()
                    );
                    return Err(Error::corruption(file.path(), pos, why));
                }
                f(&batch)?;
                prev_synced = batch.synced_offset();
                end.batches += 1;
                end.records += batch.len() as u64;
                pos = batch.end();
                continue;
            }
            Err(reason) => reason,
        };
        end.stop = classify_tail(&mut win, header.file_id, pos, &reason)?;
        break;
    }
    end.valid_end = pos;
    Ok(end)
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
/// `Err`) corruption of synced bytes.
fn classify_tail(win: &mut Window<'_>, file_id: u64, p: u64, reason: &str) -> Result<StopReason> {
    if zeros_from(win, p)? {
        return Ok(StopReason::ZeroTail { offset: p });
    }
    match find_synced_successor(win, file_id, p)? {
        None => Ok(StopReason::TornTail { offset: p }),
        Some((q, synced)) => Err(Error::corruption(
            win.file().path(),
            p,
            format!(
                "invalid batch ({reason}), but the valid batch at offset {q} records the log \
                 as synced up to {synced}: these bytes were durable, not a torn write"
            ),
        )),
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

/// Scans forward from `p + 1` for a valid batch whose `synced_offset` is past `p`; returns its
/// offset and `synced_offset`. Candidates are found by their magic bytes and their header
/// checked first, so only a header that passes its checksum costs a full batch check.
fn find_synced_successor(win: &mut Window<'_>, file_id: u64, p: u64) -> Result<Option<(u64, u64)>> {
    let mut slots: Vec<Slot> = Vec::new();
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
        let Ok(h) = BatchHeader::decode(head, file_id, candidate) else {
            continue;
        };
        if h.synced_offset <= p {
            continue; // unsynced evidence says nothing about p
        }
        if let Ok(batch) = check_batch(win, file_id, candidate, &mut slots)? {
            return Ok(Some((candidate, batch.synced_offset())));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FsStorage, OpenMode, Storage};
    use crate::log::format::BatchHeader;
    use crate::log::testing::{build, recs, replay_all, replay_bytes, Built, MemFile, TestRec};
    use crate::log::{read_record, RecordPos};
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
                let evidence = format!("valid batch at offset {}", b.offsets[later]);
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
    fn damage_before_only_unsynced_batches_is_a_torn_tail() {
        // Proves later valid batches whose synced_offset <= P are dropped with the torn tail,
        // and that one sync after them turns the same damage into corruption.
        let b = build(
            WAL,
            &[
                (recs(0, 2), true),
                (recs(2, 2), false),
                (recs(4, 2), false),
                (recs(6, 1), false),
            ],
        );
        let p = b.offsets[1];
        let mut m = b.bytes();
        m[p as usize + 30] ^= 4;
        let (r, seen) = replay_bytes(m, WAL);
        let r = r.unwrap();
        assert_eq!(
            (r.stop, r.valid_end, r.batches),
            (StopReason::TornTail { offset: p }, p, 1)
        );
        assert_eq!(seen.len(), 1);

        let b = build(
            WAL,
            &[
                (recs(0, 2), true),
                (recs(2, 2), false),
                (recs(4, 2), true),
                (recs(6, 1), false),
            ],
        );
        let p = b.offsets[1];
        let mut m = b.bytes();
        m[p as usize + 30] ^= 4;
        assert_eq!(corruption_at(&replay_bytes(m, WAL).0), Some(p));
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
                supported: 1,
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
        let old = BatchHeader::decode(&m[p as usize..p as usize + 24], 1, p).unwrap();
        let mut h = Vec::new();
        BatchHeader {
            synced_offset: FIRST_BATCH_OFFSET,
            ..old
        }
        .encode(1, p, &mut h);
        m[p as usize..p as usize + 24].copy_from_slice(&h);
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
                synced_offset: 48,
            }
            .encode(1, 48, &mut bytes);
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

//! Replay: the bytes of a MANIFEST to the [`Manifest`] they describe, with torn-tail detection.
//!
//! The rules (normative in docs/format/manifest.md, "Reading"): the writer syncs each record
//! before it writes the next, so only the last record can be incomplete after a crash, and a
//! crash leaves it cut by the end of the file or with unwritten (zero) bytes, never changed
//! bytes. Only such a record ends the log without an error; any other damage is corruption
//! (DESIGN rule 4), including a complete last record that fails its checksum.

use std::path::Path;

use super::change::{decode_change_set, ManifestChange};
use super::format::{
    decode_file_header, decode_record_header, FileHeaderError, RecordHeader, FILE_HEADER_LEN,
    MANIFEST_FORMAT_VERSION, RECORD_HEADER_LEN,
};
use super::state::Manifest;
use crate::checksum::crc32c;
use crate::error::{Error, Result};
use crate::io::StorageFile;

/// The unit a power loss keeps or loses whole (as the logs' `SECTOR_BYTES`).
const SECTOR_BYTES: usize = 512;

/// The result of a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The state after the last valid record.
    pub manifest: Manifest,
    /// Offset where the valid log ends (header and complete records).
    pub valid_len: u64,
    /// Length of the bytes replayed; above `valid_len` when a torn or zero tail was dropped.
    pub file_len: u64,
}

impl Replayed {
    /// True if bytes after the valid log were dropped (a torn record or a zero tail).
    pub fn tail_dropped(&self) -> bool {
        self.file_len > self.valid_len
    }
}

/// What is at a record offset.
enum Step {
    /// A complete record with a matching body checksum and a decodable change set.
    Record {
        changes: Vec<ManifestChange>,
        end: usize,
    },
    /// The valid log ends here (clean end, torn tail or zero tail).
    End,
}

/// Replays the whole MANIFEST `bytes` (read from `file`, named in errors) for a database with
/// `max_levels` levels opened with `external_magic`. Pure: never panics on any input.
pub fn replay(
    bytes: &[u8],
    file: &Path,
    max_levels: usize,
    external_magic: u16,
) -> Result<Replayed> {
    check_file_header(bytes, file, external_magic)?;
    let mut manifest = Manifest::new(max_levels);
    let mut pos = FILE_HEADER_LEN;
    while let Step::Record { changes, end } = step(bytes, pos, file)? {
        manifest.try_apply(&changes).map_err(|why| {
            Error::corruption(
                file,
                pos as u64,
                format!("change set does not apply: {why}"),
            )
        })?;
        pos = end;
    }
    Ok(Replayed {
        manifest,
        valid_len: pos as u64,
        file_len: bytes.len() as u64,
    })
}

/// Reads all of `file` and replays it.
pub fn replay_file(
    file: &dyn StorageFile,
    max_levels: usize,
    external_magic: u16,
) -> Result<Replayed> {
    let len = file.len()?;
    let len = usize::try_from(len).map_err(|_| {
        Error::corruption(file.path(), 0, format!("{len} bytes do not fit in memory"))
    })?;
    let bytes = file.read_vec_at(0, len)?;
    replay(&bytes, file.path(), max_levels, external_magic)
}

fn check_file_header(bytes: &[u8], file: &Path, external_magic: u16) -> Result<()> {
    let header = decode_file_header(bytes).map_err(|e| {
        let why = match e {
            FileHeaderError::Short => "file is shorter than its header".to_string(),
            FileHeaderError::BadMagic(m) => format!("bad magic {m:#010x}: not a MANIFEST"),
            FileHeaderError::BadChecksum => "file header checksum mismatch".to_string(),
        };
        Error::corruption(file, 0, why)
    })?;
    if header.format_version == 0 {
        return Err(Error::corruption(file, 0, "format version 0"));
    }
    if header.format_version != MANIFEST_FORMAT_VERSION {
        // Newer: laid out differently. Older (1): a development build's, without the records
        // of WALs, value-log files and operations this build relies on.
        return Err(Error::UnsupportedVersion {
            file: file.to_path_buf(),
            found: u32::from(header.format_version),
            supported: u32::from(MANIFEST_FORMAT_VERSION),
        });
    }
    if header.external_magic != external_magic {
        return Err(Error::InvalidOptions(format!(
            "{} was written with external magic version {}, but the database is opened with {}",
            file.display(),
            header.external_magic,
            external_magic
        )));
    }
    Ok(())
}

/// Classifies the bytes at record offset `pos`.
fn step(bytes: &[u8], pos: usize, file: &Path) -> Result<Step> {
    let rest = bytes.get(pos..).unwrap_or_default();
    if rest.len() < RECORD_HEADER_LEN {
        return Ok(Step::End); // clean end, or a record header cut by the end of the file
    }
    let Some(RecordHeader { body_len, body_crc }) = decode_record_header(rest, pos as u64) else {
        return unreadable_header(bytes, pos, file);
    };
    let Some(body) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + body_len) else {
        return Ok(Step::End); // the length runs past the end: the record was cut
    };
    let end = pos + RECORD_HEADER_LEN + body_len;
    let computed = crc32c(body);
    if computed != body_crc {
        // A complete last record with a sector the disk never wrote (zeros) is what a crash
        // leaves; anything else (a flipped bit, garbage, a record with data after it) is not.
        let after = bytes.get(end..).unwrap_or_default();
        if all_zero(after) && has_unwritten_sector(bytes, pos, end) {
            return Ok(Step::End);
        }
        return Err(Error::ChecksumMismatch {
            file: file.to_path_buf(),
            offset: pos as u64,
            stored: body_crc,
            computed,
        });
    }
    match decode_change_set(body) {
        Ok(changes) => Ok(Step::Record { changes, end }),
        // The checksum proves these are the bytes a writer produced: not a crash artefact.
        Err(why) => Err(Error::corruption(
            file,
            pos as u64,
            format!("change set does not decode: {why}"),
        )),
    }
}

/// A record header that fails its checksum: the end of the log if the record is the last
/// thing in the file and what a crash leaves (everything from it zero, or its first
/// sector-bounded piece unwritten, or its header cut by a sector boundary with only zeros
/// after); corruption otherwise (a damaged header, or a record moved from elsewhere).
fn unreadable_header(bytes: &[u8], pos: usize, file: &Path) -> Result<Step> {
    let rest = bytes.get(pos..).unwrap_or_default();
    let boundary = (pos / SECTOR_BYTES + 1) * SECTOR_BYTES;
    let first_piece = bytes
        .get(pos..boundary.min(bytes.len()))
        .unwrap_or_default();
    let cut_by_sector =
        boundary < pos + RECORD_HEADER_LEN && all_zero(bytes.get(boundary..).unwrap_or_default());
    if all_zero(rest) || all_zero(first_piece) || cut_by_sector {
        return Ok(Step::End);
    }
    Err(Error::corruption(
        file,
        pos as u64,
        "record header checksum mismatch (damaged, or bytes inserted or removed before it)",
    ))
}

/// True if one of the pieces `[pos, end)` splits into at `SECTOR_BYTES` boundaries is all
/// zeros: a crash keeps or loses each such piece of an unsynced write whole, and a lost one
/// reads as zeros (the space past the durable end of the file).
fn has_unwritten_sector(bytes: &[u8], pos: usize, end: usize) -> bool {
    let mut a = pos;
    while a < end {
        let b = ((a / SECTOR_BYTES + 1) * SECTOR_BYTES).min(end);
        if all_zero(bytes.get(a..b).unwrap_or_default()) {
            return true;
        }
        a = b;
    }
    false
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding;
    use crate::manifest::change::encode_change_set;
    use crate::manifest::format::{encode_file_header, encode_record};
    use crate::manifest::test_support::{
        build_history, manifest_after, manifest_bytes, raw_history_strategy, LEVELS,
    };
    use crate::options::Compression;
    use proptest::prelude::*;

    const FILE: &str = "MANIFEST";

    fn run(bytes: &[u8]) -> Result<Replayed> {
        replay(bytes, Path::new(FILE), LEVELS, 0)
    }

    fn create(id: u64, level: u8) -> ManifestChange {
        ManifestChange::create(id, level, Compression::Lz4, id % 3)
    }

    /// Four change sets; the second moves a table, the third deletes one.
    fn sample_sets() -> Vec<Vec<ManifestChange>> {
        vec![
            vec![create(1, 0), create(2, 0)],
            vec![ManifestChange::delete(1), create(1, 2), create(3, 1)],
            vec![ManifestChange::delete(2)],
            vec![create(300, 3)],
        ]
    }

    fn corruption_offset(e: &Error) -> Option<u64> {
        match e {
            Error::Corruption { offset, .. } | Error::ChecksumMismatch { offset, .. } => {
                Some(*offset)
            }
            _ => None,
        }
    }

    proptest! {
        #[test]
        fn replay_equals_model(raw in raw_history_strategy(12)) {
            // Proves random valid histories replay to the model state (independent BTreeMap
            // and the Manifest built by apply) and that the whole file is the valid log.
            let (sets, states) = build_history(&raw);
            let (bytes, _) = manifest_bytes(&sets, 0);
            let r = run(&bytes).unwrap();
            prop_assert_eq!(r.valid_len, bytes.len() as u64);
            prop_assert!(!r.tail_dropped());
            let empty = Default::default();
            prop_assert_eq!(r.manifest.tables(), states.last().unwrap_or(&empty));
            prop_assert_eq!(&r.manifest, &manifest_after(&sets));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                    with_header: bool) {
            // Proves arbitrary input (raw, or after a valid header) gives Ok or a typed error,
            // and passes the manifest_replay fuzz body's checks.
            let mut input = if with_header { encode_file_header(0).to_vec() } else { vec![] };
            input.extend_from_slice(&bytes);
            crate::fuzzing::manifest_replay(&input);
            match run(&input) {
                Ok(r) => prop_assert!(r.valid_len <= input.len() as u64),
                Err(e) => prop_assert!(e.is_corruption(), "{e}"),
            }
        }

        #[test]
        fn one_mutation_gives_a_prefix_state_or_a_typed_error(
            raw in raw_history_strategy(6), at: prop::sample::Index, xor in 1u8..,
            cut: prop::sample::Index, mode in 0u8..3,
        ) {
            // Proves a flipped byte, a truncation or an inserted byte anywhere in a valid
            // MANIFEST replays to the state after some prefix of its records, or is refused
            // with a typed error; never a panic and never an edit that was not written.
            let (sets, _) = build_history(&raw);
            let (mut bytes, _) = manifest_bytes(&sets, 0);
            match mode {
                0 => { let i = at.index(bytes.len()); bytes[i] ^= xor; }
                1 => bytes.truncate(cut.index(bytes.len() + 1)),
                _ => bytes.insert(at.index(bytes.len() + 1), xor),
            }
            match run(&bytes) {
                Ok(r) => {
                    let prefixes: Vec<_> = (0..=sets.len()).map(|k| manifest_after(&sets[..k])).collect();
                    prop_assert!(prefixes.contains(&r.manifest));
                }
                Err(e) => prop_assert!(
                    e.is_corruption() || matches!(e, Error::UnsupportedVersion { .. } | Error::InvalidOptions(_)),
                    "{e}"
                ),
            }
        }
    }

    #[test]
    fn torn_last_record_at_every_offset_is_dropped() {
        // Proves cutting the last record at each byte replays to the state before it (the
        // valid log ends where the record started), and so does the record's space left as
        // zeros from its start (never written); zeros from the middle of a sector are not
        // what a crash leaves: corruption.
        let sets = sample_sets();
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        let last = *offsets.last().unwrap();
        let before = manifest_after(&sets[..sets.len() - 1]);
        for cut in last..bytes.len() {
            let r = run(&bytes[..cut]).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            assert_eq!(
                (&r.manifest, r.valid_len),
                (&before, last as u64),
                "cut {cut}"
            );
            assert_eq!(r.tail_dropped(), cut > last);
            let mut zeroed = bytes[..cut].to_vec();
            zeroed.resize(bytes.len() + 100, 0);
            if zeroed[..bytes.len()] == bytes[..] {
                // The zeros re-created the cut-off zero bytes: the record is whole.
                assert_eq!(run(&zeroed).unwrap().manifest, manifest_after(&sets));
                continue;
            }
            match run(&zeroed) {
                Ok(r) => {
                    assert_eq!(cut, last, "zeros from {cut}");
                    assert_eq!((&r.manifest, r.valid_len), (&before, last as u64));
                }
                Err(e) => assert!(cut > last && e.is_corruption(), "cut {cut}: {e}"),
            }
        }
    }

    #[test]
    fn unwritten_sectors_of_the_last_record_are_a_torn_tail() {
        // Proves the crash model at sector granularity: a large last record (a rewrite's
        // snapshot) whose second or a later sector is zero, or whose header straddles a sector
        // boundary with zeros from it, is dropped; a zeroed piece that is not a whole sector
        // piece is corruption.
        let mut big: Vec<ManifestChange> = (1..300).map(|i| create(i, (i % 4) as u8)).collect();
        big.push(ManifestChange::delete(7));
        let sets = vec![vec![create(1000, 0)], big];
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        let last = offsets[1];
        assert!(
            bytes.len() > 2 * SECTOR_BYTES + last,
            "the last record spans sectors"
        );
        let before = manifest_after(&sets[..1]);
        let mut hole = bytes.clone();
        hole[SECTOR_BYTES..2 * SECTOR_BYTES].fill(0);
        assert_eq!(run(&hole).unwrap().manifest, before);
        let mut partial = bytes.clone();
        partial[SECTOR_BYTES + 1..2 * SECTOR_BYTES].fill(0);
        assert!(run(&partial).unwrap_err().is_corruption());

        // A header cut by a sector boundary: its first bytes written, zeros from the boundary.
        let mut straddle = vec![0u8; 700];
        straddle[..FILE_HEADER_LEN].copy_from_slice(&encode_file_header(0));
        straddle[SECTOR_BYTES - 5..SECTOR_BYTES].copy_from_slice(&[9, 9, 9, 9, 9]);
        let at = SECTOR_BYTES - 5;
        assert!(matches!(
            unreadable_header(&straddle, at, Path::new(FILE)),
            Ok(Step::End)
        ));
        straddle[SECTOR_BYTES + 100] = 1;
        assert!(unreadable_header(&straddle, at, Path::new(FILE)).is_err());
    }

    #[test]
    fn bit_flip_in_the_last_record_is_corruption() {
        // Proves every single-bit flip of the last record is corruption at its offset: a
        // complete record a crash did not cut is never dropped as a torn tail (the loss the
        // issue found: the tables it listed were then deleted).
        let sets = sample_sets();
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        let last = *offsets.last().unwrap();
        for bit in last * 8..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let e = run(&bad).expect_err("a flipped bit must be reported");
            assert_eq!(corruption_offset(&e), Some(last as u64), "bit {bit}: {e}");
        }
    }

    #[test]
    fn records_moved_by_inserted_or_copied_bytes_are_corruption() {
        // Proves records are bound to their offsets: bytes inserted before valid records, and a
        // valid record copied over another, are corruption, not a shorter or a replayed log.
        let sets = sample_sets();
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        let mut inserted = bytes.clone();
        inserted.splice(offsets[1]..offsets[1], [0xAA; 9]);
        assert_eq!(
            corruption_offset(&run(&inserted).unwrap_err()),
            Some(offsets[1] as u64)
        );
        let mut copied = bytes.clone();
        let (a, len) = (offsets[2], offsets[3] - offsets[2]);
        let second = bytes[offsets[3]..offsets[3] + len].to_vec();
        copied[a..a + len].copy_from_slice(&second);
        assert!(run(&copied).unwrap_err().is_corruption());
    }

    #[test]
    fn zeroed_middle_record_is_corruption() {
        // Proves a record whose bytes were zeroed (a lost sector) with valid records after it is
        // corruption at its offset, not a zero tail.
        let sets = sample_sets();
        let (mut bytes, offsets) = manifest_bytes(&sets, 0);
        bytes[offsets[1]..offsets[2]].fill(0);
        let e = run(&bytes).unwrap_err();
        assert_eq!(corruption_offset(&e), Some(offsets[1] as u64), "{e}");
    }

    #[test]
    fn garbage_after_a_damaged_record_is_corruption() {
        // Proves a bad-checksum record followed by non-zero bytes that are not a record is
        // still corruption: only zeros or the end of the file may follow a torn record.
        let sets = sample_sets();
        let (mut bytes, offsets) = manifest_bytes(&sets, 0);
        let last = *offsets.last().unwrap();
        bytes[last + RECORD_HEADER_LEN] ^= 0x40;
        bytes.extend_from_slice(&[0, 0, 9]);
        let e = run(&bytes).unwrap_err();
        assert!(matches!(e, Error::ChecksumMismatch { offset, .. } if offset == last as u64));
    }

    #[test]
    fn checksummed_but_invalid_edits_are_corruption_even_last() {
        // Proves a record with a valid checksum that does not apply (a duplicate create) or
        // does not decode is corruption, even as the last record: no crash produces a
        // checksummed bad edit.
        let (mut bytes, _) = manifest_bytes(&sample_sets(), 0);
        let dup_at = bytes.len();
        let mut body = Vec::new();
        encode_change_set(&mut body, &[create(3, 0)]);
        encode_record(&mut bytes, &body, dup_at as u64);
        let e = run(&bytes).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { offset, reason, .. }
            if *offset == dup_at as u64 && reason.contains("table 3")),
            "{e}"
        );

        let (mut bytes, _) = manifest_bytes(&sample_sets(), 0);
        let bad_at = bytes.len();
        encode_record(&mut bytes, &[1, 99, 1], bad_at as u64); // unknown op 99
        let e = run(&bytes).unwrap_err();
        assert!(matches!(e, Error::Corruption { offset, .. } if offset == bad_at as u64));
    }

    #[test]
    fn header_errors_are_typed() {
        // Proves each bad header maps to its error: corruption at 0, unsupported version,
        // external-magic mismatch naming both values.
        let (good, _) = manifest_bytes(&sample_sets(), 0);
        let at0 = |b: &[u8]| corruption_offset(&run(b).unwrap_err());
        assert_eq!(at0(&[]), Some(0));
        assert_eq!(at0(&good[..FILE_HEADER_LEN - 1]), Some(0));
        let mut bad = good.clone();
        bad[1] ^= 1;
        assert_eq!(at0(&bad), Some(0));
        let mut bad = good.clone();
        bad[FILE_HEADER_LEN - 1] ^= 1;
        assert_eq!(at0(&bad), Some(0));
        let with_version = |v: u16| {
            let mut h = good.clone();
            h[4..6].copy_from_slice(&v.to_le_bytes());
            let crc = crc32c(&h[..8]);
            coding::set_u32(&mut h, 8, crc);
            h
        };
        assert_eq!(at0(&with_version(0)), Some(0));
        for v in [1, 3] {
            assert!(matches!(
                run(&with_version(v)),
                Err(Error::UnsupportedVersion { found, supported: 2, .. }) if found == u32::from(v)
            ));
        }
        let (other, _) = manifest_bytes(&sample_sets(), 513);
        match run(&other) {
            Err(Error::InvalidOptions(msg)) => assert!(msg.contains("513") && msg.contains(" 0")),
            r => panic!("expected InvalidOptions, got {r:?}"),
        }
        assert_eq!(
            replay(&other, Path::new(FILE), LEVELS, 513)
                .unwrap()
                .manifest,
            manifest_after(&sample_sets())
        );
    }

    #[test]
    fn level_past_max_levels_is_corruption() {
        // Proves a create at a level the database does not have is refused on replay.
        let (bytes, offsets) = manifest_bytes(&sample_sets(), 0);
        let e = replay(&bytes, Path::new(FILE), 3, 0).unwrap_err();
        assert_eq!(corruption_offset(&e), Some(offsets[3] as u64));
    }

    #[test]
    fn fuzz_target_body_runs() {
        // Proves the manifest_replay fuzz body (crate::fuzzing) accepts a valid MANIFEST, a torn
        // one, and junk.
        let (good, _) = manifest_bytes(&sample_sets(), 0);
        for input in [&[][..], &good[..], &good[..good.len() - 3], &[0u8; 40][..]] {
            crate::fuzzing::manifest_replay(input);
        }
    }
}

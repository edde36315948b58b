//! Replay: the bytes of a MANIFEST to the [`Manifest`] they describe, with torn-tail detection.
//!
//! The rules (normative in docs/format/manifest.md, "Reading"): a record that a crash could have
//! cut (the last one, followed by nothing or zeros) ends the log without an error; a damaged
//! record that anything but zeros follows is corruption (DESIGN rule 4).

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
    if header.format_version > MANIFEST_FORMAT_VERSION {
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
        return Ok(Step::End); // clean end, or a record header cut by a crash
    }
    let Some(RecordHeader { body_len, body_crc }) = decode_record_header(rest) else {
        return unreadable_header(bytes, pos, file);
    };
    let Some(body) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + body_len) else {
        return Ok(Step::End); // the length runs past the end: the record was cut
    };
    let end = pos + RECORD_HEADER_LEN + body_len;
    // A damaged last record is a torn tail; one that anything but zeros follows is not.
    // Evaluated only on damage, so that replay stays linear.
    let last = || all_zero(bytes.get(end..).unwrap_or_default());
    let computed = crc32c(body);
    if computed != body_crc {
        if last() {
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
        Err(_) if last() => Ok(Step::End),
        Err(why) => Err(Error::corruption(
            file,
            pos as u64,
            format!("change set does not decode: {why}"),
        )),
    }
}

/// A record header that fails its checksum: a zero tail, a torn tail, or corruption if a valid
/// record follows it.
fn unreadable_header(bytes: &[u8], pos: usize, file: &Path) -> Result<Step> {
    let rest = bytes.get(pos..).unwrap_or_default();
    if all_zero(rest) || !valid_record_after(bytes, pos) {
        return Ok(Step::End);
    }
    Err(Error::corruption(
        file,
        pos as u64,
        "record header checksum mismatch, and valid records follow it",
    ))
}

/// True if a complete record with a matching body checksum starts anywhere after `pos`.
/// Only runs on a damaged header, so its linear scan costs nothing on the common path.
fn valid_record_after(bytes: &[u8], pos: usize) -> bool {
    (pos + 1..bytes.len()).any(|at| {
        let rest = bytes.get(at..).unwrap_or_default();
        decode_record_header(rest).is_some_and(|h| {
            rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + h.body_len)
                .is_some_and(|body| crc32c(body) == h.body_crc)
        })
    })
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
        // Proves cutting the last record at each byte (with or without zeros after the cut)
        // replays to the state before it, and the valid log ends where the record started.
        let sets = sample_sets();
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        let last = *offsets.last().unwrap();
        let before = manifest_after(&sets[..sets.len() - 1]);
        for cut in last..bytes.len() {
            for zeros in [0, 7, 4096] {
                let mut torn = bytes[..cut].to_vec();
                torn.resize(cut + zeros, 0);
                let r = run(&torn).unwrap_or_else(|e| panic!("cut {cut}+{zeros}: {e}"));
                if torn.get(..bytes.len()) == Some(&bytes[..]) {
                    // The zeros re-created the cut-off zero bytes: the record is whole.
                    assert_eq!(r.manifest, manifest_after(&sets), "cut {cut}+{zeros}");
                    continue;
                }
                assert_eq!(r.manifest, before, "cut {cut}+{zeros}");
                assert_eq!(r.valid_len, last as u64);
                assert_eq!(r.tail_dropped(), cut + zeros > last);
            }
        }
    }

    #[test]
    fn zero_tail_ends_the_log() {
        // Proves a zero-filled region after the last record (a file extended but never written)
        // is the end of the log, not an error.
        let sets = sample_sets();
        let (mut bytes, _) = manifest_bytes(&sets, 0);
        let end = bytes.len() as u64;
        bytes.resize(bytes.len() + 5000, 0);
        let r = run(&bytes).unwrap();
        assert_eq!(r.manifest, manifest_after(&sets));
        assert_eq!((r.valid_len, r.file_len), (end, end + 5000));
    }

    #[test]
    fn bit_flip_in_a_middle_record_is_corruption_at_its_offset() {
        // Proves every single-bit flip (header or body) of each non-last record is reported as
        // corruption naming that record's offset, never dropped as a torn tail.
        let sets = sample_sets();
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        for (k, &start) in offsets.iter().enumerate().take(offsets.len() - 1) {
            for bit in start * 8..offsets[k + 1] * 8 {
                let mut bad = bytes.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let e = run(&bad).expect_err("a damaged middle record must be reported");
                assert_eq!(corruption_offset(&e), Some(start as u64), "bit {bit}: {e}");
            }
        }
    }

    #[test]
    fn bit_flip_in_the_last_record_is_a_torn_tail() {
        // Proves every single-bit flip of the last record drops it (a crash could explain it).
        let sets = sample_sets();
        let (bytes, offsets) = manifest_bytes(&sets, 0);
        let last = *offsets.last().unwrap();
        let before = manifest_after(&sets[..sets.len() - 1]);
        for bit in last * 8..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let r = run(&bad).unwrap_or_else(|e| panic!("bit {bit}: {e}"));
            assert_eq!((r.manifest, r.valid_len), (before.clone(), last as u64));
        }
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
        // does not decode is corruption when followed by data, and a non-applying one even
        // when it is the last record: no crash produces a checksummed bad edit.
        let (mut bytes, _) = manifest_bytes(&sample_sets(), 0);
        let dup_at = bytes.len();
        let mut body = Vec::new();
        encode_change_set(&mut body, &[create(3, 0)]);
        encode_record(&mut bytes, &body);
        let e = run(&bytes).unwrap_err();
        assert!(
            matches!(&e, Error::Corruption { offset, reason, .. }
            if *offset == dup_at as u64 && reason.contains("table 3")),
            "{e}"
        );

        let (mut bytes, _) = manifest_bytes(&sample_sets(), 0);
        let bad_at = bytes.len();
        encode_record(&mut bytes, &[1, 9, 1]); // unknown op 9
        let tail_ok = run(&bytes).unwrap();
        assert_eq!(tail_ok.valid_len, bad_at as u64);
        encode_record(&mut bytes, &[0]);
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
        assert!(matches!(
            run(&with_version(2)),
            Err(Error::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
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

//! Encrypted logs (docs/format/encryption.md): sealed records round-trip through replay,
//! value-pointer reads and salvage; checksum-preserving tampering is an authentication error
//! (never a torn tail, never a value); the seal stays plaintext; a reopened encrypted log takes
//! only its seal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::testing::{recs, MemFile, TestRec};
use super::*;
use crate::checksum::crc32c;
use crate::crypto::{KeyRegistry, RegistryOptions, TAG_LEN};
use crate::error::{Error, Result};
use crate::io::{FsStorage, MemStorage, OpenMode, Storage};

fn registry() -> Arc<KeyRegistry> {
    let s: Arc<dyn Storage> = Arc::new(MemStorage::new());
    let opts = RegistryOptions {
        rotation: Duration::from_secs(3600),
        read_only: false,
        clock: Arc::new(|| 1),
    };
    KeyRegistry::open(s, Path::new("/k"), &[3; 32], false, opts)
        .unwrap()
        .unwrap()
}

struct Sealed {
    _dir: tempfile::TempDir,
    path: PathBuf,
    batches: Vec<Vec<TestRec>>,
    positions: Vec<Vec<RecordPos>>,
    /// Offset where each batch starts, then the end.
    offsets: Vec<u64>,
}

/// An encrypted log of `kind` with `n` synced batches of 3 records (value sizes vary, some
/// records are value pointers), sealed if `seal`.
fn build_sealed(keys: &KeyRegistry, kind: LogKind, n: u64, seal: bool) -> Sealed {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000007.log");
    let cipher = keys.cipher_for_new_file().unwrap();
    let header = LogHeader::encrypted(kind, 7, &cipher);
    let mut w = LogWriter::create_in(&FsStorage, &path, header, Some(cipher)).unwrap();
    let (mut batches, mut positions, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..n {
        offsets.push(w.offset());
        let rs = recs(b * 3, 3);
        let refs: Vec<RecordRef<'_>> = rs.iter().map(TestRec::as_ref).collect();
        let mut pos = Vec::new();
        w.append_batch(&refs, &mut pos).unwrap();
        w.sync().unwrap();
        batches.push(rs);
        positions.push(pos);
    }
    offsets.push(w.offset());
    if seal {
        w.seal().unwrap();
    }
    Sealed {
        _dir: dir,
        path,
        batches,
        positions,
        offsets,
    }
}

fn replay_keys(
    bytes: &[u8],
    kind: LogKind,
    keys: &KeyRegistry,
) -> (Result<ReplayEnd>, Vec<TestRec>) {
    let mut seen = Vec::new();
    let end = replay_with(&MemFile::new(bytes.to_vec()), kind, Some(keys), |b| {
        seen.extend(b.iter().map(|(_, r)| TestRec::from_ref(&r)));
        Ok(())
    });
    (end, seen)
}

fn all(s: &Sealed) -> Vec<TestRec> {
    s.batches.iter().flatten().cloned().collect()
}

#[test]
fn sealed_records_round_trip_and_hide_every_key_and_value() {
    // Proves replay with the registry returns exactly the records written (both kinds, with
    // and without the seal), each record reads back by its position, and no key or value is
    // in the file; without a registry the log is EncryptionKeyRequired.
    let keys = registry();
    for kind in [LogKind::Wal, LogKind::ValueLog] {
        for seal in [false, true] {
            let s = build_sealed(&keys, kind, 5, seal);
            let bytes = std::fs::read(&s.path).unwrap();
            let (end, seen) = replay_keys(&bytes, kind, &keys);
            let end = end.unwrap();
            assert_eq!(seen, all(&s));
            assert_eq!(end.sealed, seal);
            assert_eq!(end.header.unwrap().key_id, 1);
            for r in all(&s) {
                assert!(!bytes.windows(r.key.len()).any(|w| w == r.key.as_slice()));
                if r.value.len() >= 8 {
                    assert!(!bytes
                        .windows(r.value.len())
                        .any(|w| w == r.value.as_slice()));
                }
            }
            let file = FsStorage.open(&s.path, OpenMode::Read).unwrap();
            let header = read_header(file.as_ref(), kind).unwrap().unwrap();
            let cipher = header.cipher(Some(&keys), &s.path).unwrap().unwrap();
            // A WAL seals whole batches (flags bit 1), a value log each record.
            assert_eq!(header.sealed_batches, kind == LogKind::Wal);
            assert_eq!(bytes[7], if kind == LogKind::Wal { 3 } else { 1 });
            for (b, pos) in s.batches.iter().zip(&s.positions) {
                for (r, p) in b.iter().zip(pos) {
                    let got = read_record_at(file.as_ref(), bytes.len() as u64, *p, Some(&cipher));
                    match kind {
                        LogKind::ValueLog => {
                            assert_eq!(TestRec::from_ref(&got.unwrap().as_record()), *r)
                        }
                        // No record of a sealed batch reads on its own.
                        LogKind::Wal => assert!(got.is_err()),
                    }
                    // Without the cipher the bytes are not a record.
                    assert!(read_record_at(file.as_ref(), bytes.len() as u64, *p, None).is_err());
                }
            }
            assert_eq!(seal, ends_sealed(file.as_ref(), kind, 7).unwrap());
            assert!(matches!(
                replay(&MemFile::new(bytes.clone()), kind, |_| Ok(())),
                Err(Error::EncryptionKeyRequired { .. })
            ));
        }
    }
}

/// Flips one byte of record `r` of batch `b` at `at` bytes past its head and recomputes the
/// record's checksum, as an attacker who knows the format would.
fn tamper(bytes: &mut [u8], pos: RecordPos, at_from_end: usize) {
    let start = pos.offset as usize;
    let end = start + pos.len as usize;
    bytes[end - 4 - at_from_end] ^= 0x08;
    let crc = crc32c(&bytes[start..end - 4]);
    bytes[end - 4..end].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn checksum_preserving_tampering_is_an_authentication_error_never_a_torn_tail() {
    // Proves a changed byte of the sealed key/value or of the tag, with the record checksum
    // recomputed, is Error::Authentication at the record's offset from replay (even in the
    // last batch of an unsealed log, which a torn write could otherwise explain) and from a
    // pointer read; salvage skips that batch and keeps the others.
    let keys = registry();
    let s = build_sealed(&keys, LogKind::ValueLog, 4, false);
    let good = std::fs::read(&s.path).unwrap();
    for b in [0usize, 3] {
        for at in [1, TAG_LEN - 1, TAG_LEN + 2] {
            let pos = s.positions[b][1];
            let mut bad = good.clone();
            tamper(&mut bad, pos, at);
            let (end, _) = replay_keys(&bad, LogKind::ValueLog, &keys);
            match end {
                Err(Error::Authentication { offset, .. }) => assert_eq!(offset, pos.offset),
                other => panic!("batch {b} byte -{at}: {other:?}"),
            }
            let file = MemFile::new(bad.clone());
            let cipher = LogHeader::decode(
                &good[..FILE_HEADER_LEN].try_into().unwrap(),
                &s.path,
                LogKind::ValueLog,
            )
            .unwrap()
            .cipher(Some(&keys), &s.path)
            .unwrap();
            assert!(matches!(
                read_record_at(&file, bad.len() as u64, pos, cipher.as_ref()),
                Err(Error::Authentication { offset, .. }) if offset == pos.offset
            ));
            let mut kept = 0;
            let header = read_header(&file, LogKind::ValueLog).unwrap().unwrap();
            let sealing = cipher.as_ref().map(|c| LogCipher::of(&header, c));
            let found = salvage(&file, LogKind::ValueLog, 7, sealing, |batch| {
                kept += batch.len();
                Ok(())
            })
            .unwrap();
            assert_eq!(kept, 9, "salvage keeps the 3 intact batches");
            assert_eq!(found.batches, 3);
        }
    }
    // A plain flip (checksum not fixed) in a synced batch is still corruption, in the last
    // batch a torn tail: as for plaintext logs.
    let mut flipped = good.clone();
    flipped[s.positions[1][0].offset as usize + 8] ^= 1;
    let (end, _) = replay_keys(&flipped, LogKind::ValueLog, &keys);
    assert!(end.unwrap_err().is_corruption());
    let mut torn = good.clone();
    torn.truncate(s.offsets[4] as usize - 3);
    let (end, seen) = replay_keys(&torn, LogKind::ValueLog, &keys);
    assert_eq!(end.unwrap().valid_end, s.offsets[3]);
    assert_eq!(seen.len(), 9);
}

#[test]
fn a_reopened_encrypted_log_takes_only_its_plaintext_seal() {
    // Proves open_append of an encrypted log (recovery's seal of the newest value-log file)
    // refuses record appends, which would seal new bytes at offsets a torn record may have
    // used, and writes the seal in plaintext, which replay and ends_sealed accept.
    let keys = registry();
    let s = build_sealed(&keys, LogKind::ValueLog, 2, false);
    let mut bytes = std::fs::read(&s.path).unwrap();
    bytes.extend_from_slice(&[0xab; 40]); // a torn tail
    std::fs::write(&s.path, &bytes).unwrap();
    let file = FsStorage.open(&s.path, OpenMode::Read).unwrap();
    let end = replay_with(file.as_ref(), LogKind::ValueLog, Some(&keys), |_| Ok(())).unwrap();
    let mut w = LogWriter::open_append(&FsStorage, &s.path, LogKind::ValueLog, &end).unwrap();
    let rs = recs(100, 1);
    let refs: Vec<RecordRef<'_>> = rs.iter().map(TestRec::as_ref).collect();
    assert!(matches!(
        w.append_batch(&refs, &mut Vec::new()),
        Err(Error::InvalidRequest(_))
    ));
    w.seal().unwrap();
    let bytes = std::fs::read(&s.path).unwrap();
    assert_eq!(bytes.len() as u64, s.offsets[2] + seal_batch_len());
    let (end, seen) = replay_keys(&bytes, LogKind::ValueLog, &keys);
    assert!(end.unwrap().sealed);
    assert_eq!(seen, all(&s));
}

#[test]
fn a_batch_large_enough_to_seal_on_two_threads_round_trips() {
    // Proves the two-thread sealing of a large batch (over PARALLEL_SEAL_BYTES) seals every
    // record at its own offset: replay and each pointer read return the records written.
    let keys = registry();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000009.vlog");
    let cipher = keys.cipher_for_new_file().unwrap();
    let header = LogHeader::encrypted(LogKind::ValueLog, 9, &cipher);
    let mut w = LogWriter::create_in(&FsStorage, &path, header, Some(cipher.clone())).unwrap();
    let rs: Vec<TestRec> = (0..600u64)
        .map(|i| TestRec::new(i, 700 + (i as usize % 13) * 37))
        .collect();
    let refs: Vec<RecordRef<'_>> = rs.iter().map(TestRec::as_ref).collect();
    let mut pos = Vec::new();
    w.append_batch(&refs, &mut pos).unwrap();
    w.sync().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 2 * (256 << 10));
    let (end, seen) = replay_keys(&bytes, LogKind::ValueLog, &keys);
    assert_eq!(end.unwrap().records, 600);
    assert_eq!(seen, rs);
    let file = MemFile::new(bytes.clone());
    for (r, p) in rs.iter().zip(&pos) {
        let got = read_record_at(&file, bytes.len() as u64, *p, Some(&cipher)).unwrap();
        assert_eq!(TestRec::from_ref(&got.as_record()), *r);
    }
}

#[test]
fn a_header_must_name_the_ciphers_key_and_salt_and_one_huge_record_seals() {
    // Proves create_in refuses a header whose key id or salt is not the cipher's (the file
    // could never be read back), and that a batch of one record over the two-thread threshold
    // (nothing to split) seals and replays.
    let keys = registry();
    let dir = tempfile::tempdir().unwrap();
    let cipher = keys.cipher_for_new_file().unwrap();
    let mut other_salt = LogHeader::encrypted(LogKind::Wal, 1, &cipher);
    other_salt.base_iv[0] ^= 1;
    let mut other_key = LogHeader::encrypted(LogKind::Wal, 1, &cipher);
    other_key.key_id += 1;
    for (i, h) in [other_salt, other_key, LogHeader::new(LogKind::Wal, 1)]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("bad{i}.log"));
        assert!(matches!(
            LogWriter::create_in(&FsStorage, &path, h, Some(cipher.clone())),
            Err(Error::InvalidRequest(_))
        ));
    }
    let path = dir.path().join("000011.vlog");
    let header = LogHeader::encrypted(LogKind::ValueLog, 11, &cipher);
    let mut w = LogWriter::create_in(&FsStorage, &path, header, Some(cipher)).unwrap();
    let rs = vec![TestRec::new(1, 400 << 10)];
    let refs: Vec<RecordRef<'_>> = rs.iter().map(TestRec::as_ref).collect();
    w.append_batch(&refs, &mut Vec::new()).unwrap();
    w.sync().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (end, seen) = replay_keys(&bytes, LogKind::ValueLog, &keys);
    assert_eq!(end.unwrap().records, 1);
    assert_eq!(seen, rs);
}

/// Flips one byte of the sealed batch `[start, end)` `at_from_end` bytes before its checksum
/// and recomputes that checksum, as an attacker who knows the format would.
fn tamper_batch(bytes: &mut [u8], start: u64, end: u64, at_from_end: usize) {
    let (start, end) = (start as usize + BATCH_HEADER_LEN, end as usize);
    bytes[end - 4 - at_from_end] ^= 0x08;
    let crc = crc32c(&bytes[start..end - 4]);
    bytes[end - 4..end].copy_from_slice(&crc.to_le_bytes());
}

fn salvage_all(bytes: &[u8], keys: &KeyRegistry) -> (Vec<TestRec>, Salvaged) {
    let file = MemFile::new(bytes.to_vec());
    let header = read_header(&file, LogKind::Wal).unwrap().unwrap();
    let cipher = header.cipher(Some(keys), Path::new("w")).unwrap().unwrap();
    let mut seen = Vec::new();
    let found = salvage(
        &file,
        LogKind::Wal,
        7,
        Some(LogCipher::of(&header, &cipher)),
        |b| {
            seen.extend(b.iter().map(|(_, r)| TestRec::from_ref(&r)));
            Ok(())
        },
    )
    .unwrap();
    (seen, found)
}

#[test]
fn a_tampered_sealed_batch_is_an_authentication_error_and_a_torn_one_a_torn_tail() {
    // Proves, for a WAL that seals whole batches: a changed byte of the encrypted records or
    // of the tag, with the batch checksum recomputed, is Error::Authentication at the batch's
    // offset (even in the last batch of an unsealed log, which a torn write could otherwise
    // explain), and salvage keeps every other batch; a changed batch header (its checksum
    // recomputed: the header is the associated data) is caught the same way; a plain flip in a
    // synced batch is corruption, and a cut last batch a torn tail.
    let keys = registry();
    let s = build_sealed(&keys, LogKind::Wal, 4, false);
    let good = std::fs::read(&s.path).unwrap();
    for b in [0usize, 3] {
        for at in [1, TAG_LEN - 1, TAG_LEN + 2, TAG_LEN + 30] {
            let mut bad = good.clone();
            tamper_batch(&mut bad, s.offsets[b], s.offsets[b + 1], at);
            let (end, _) = replay_keys(&bad, LogKind::Wal, &keys);
            match end {
                Err(Error::Authentication { offset, .. }) => assert_eq!(offset, s.offsets[b]),
                other => panic!("batch {b} byte -{at}: {other:?}"),
            }
            let (kept, found) = salvage_all(&bad, &keys);
            assert_eq!(kept.len(), 9, "salvage keeps the 3 intact batches");
            assert_eq!(found.batches, 3);
        }
    }
    // The synced offset in batch 2's header, changed and its header checksum recomputed.
    let mut bad = good.clone();
    let h = s.offsets[2] as usize;
    bad[h + 20] = bad[h + 20].wrapping_sub(1);
    let crc = crc32c(&[&[1u8][..], &7u64.to_le_bytes(), &bad[h..h + 28]].concat());
    bad[h + 28..h + 32].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        replay_keys(&bad, LogKind::Wal, &keys).0,
        Err(Error::Authentication { offset, .. }) if offset == s.offsets[2]
    ));
    let mut flipped = good.clone();
    flipped[s.offsets[1] as usize + BATCH_HEADER_LEN + 5] ^= 1;
    let (end, _) = replay_keys(&flipped, LogKind::Wal, &keys);
    assert!(end.unwrap_err().is_corruption());
    for cut in [1, 3, TAG_LEN + 6] {
        let mut torn = good.clone();
        torn.truncate(s.offsets[4] as usize - cut);
        let (end, seen) = replay_keys(&torn, LogKind::Wal, &keys);
        assert_eq!(end.unwrap().valid_end, s.offsets[3]);
        assert_eq!(seen.len(), 9);
    }
}

#[test]
fn sealed_batches_moved_by_damage_are_found_and_opened_at_their_written_offset() {
    // Proves salvage (and so repair) finds batches of a batch-sealed WAL that inserted bytes
    // moved, and opens each with the nonce of the offset it was written at.
    let keys = registry();
    let s = build_sealed(&keys, LogKind::Wal, 4, true);
    let good = std::fs::read(&s.path).unwrap();
    let mut moved = good[..s.offsets[1] as usize].to_vec();
    moved.extend_from_slice(&[0x5a; 13]);
    moved.extend_from_slice(&good[s.offsets[1] as usize..]);
    let (seen, found) = salvage_all(&moved, &keys);
    assert_eq!(seen, all(&s));
    assert!(found.sealed);
    assert_eq!(found.lost_bytes, 13);
}

#[test]
fn a_wal_sealed_record_by_record_still_replays_and_flags_are_checked() {
    // Proves a WAL written before batches were sealed whole (flags 1: each record sealed)
    // still replays record for record, and that flags 3 (sealed batches) is refused in a
    // value-log header as corruption.
    let keys = registry();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000007.mem");
    let cipher = keys.cipher_for_new_file().unwrap();
    let mut header = LogHeader::encrypted(LogKind::Wal, 7, &cipher);
    header.sealed_batches = false;
    let mut w = LogWriter::create_in(&FsStorage, &path, header, Some(cipher)).unwrap();
    let rs = recs(0, 5);
    let refs: Vec<RecordRef<'_>> = rs.iter().map(TestRec::as_ref).collect();
    w.append_batch(&refs, &mut Vec::new()).unwrap();
    w.seal().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[7], 1);
    let (end, seen) = replay_keys(&bytes, LogKind::Wal, &keys);
    assert!(end.unwrap().sealed);
    assert_eq!(seen, rs);
    let vlog_cipher = keys.cipher_for_new_file().unwrap();
    let mut vlog_header = LogHeader::encrypted(LogKind::ValueLog, 8, &vlog_cipher);
    vlog_header.sealed_batches = true;
    assert!(matches!(
        vlog_header.check_writable(),
        Err(Error::InvalidRequest(_))
    ));
    let mut b = LogHeader::encrypted(LogKind::ValueLog, 8, &vlog_cipher).encode();
    b[7] = 3;
    let crc = crc32c(&b[..FILE_HEADER_LEN - 4]);
    b[FILE_HEADER_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        LogHeader::decode(&b, Path::new("8.vlog"), LogKind::ValueLog),
        Err(Error::Corruption { offset: 0, .. })
    ));
}

#[test]
fn an_authentic_sealed_batch_whose_records_do_not_decode_is_corruption() {
    // Proves a sealed batch that authenticates but whose plaintext is not valid records (only
    // a writer bug could seal such bytes) is Corruption at its offset in replay, never a torn
    // tail and never Authentication, and salvage skips it and keeps the other batches.
    let keys = registry();
    let s = build_sealed(&keys, LogKind::Wal, 3, false);
    let mut bytes = std::fs::read(&s.path).unwrap();
    let header = LogHeader::decode(
        &bytes[..FILE_HEADER_LEN].try_into().unwrap(),
        &s.path,
        LogKind::Wal,
    )
    .unwrap();
    let cipher = header.cipher(Some(&keys), &s.path).unwrap().unwrap();
    // The last batch: a torn write could explain damage there, so only the check that an
    // authentic batch is not a torn one makes this corruption.
    let (start, end) = (s.offsets[2] as usize, s.offsets[3] as usize);
    let (head, rest) = bytes[start..end].split_at_mut(BATCH_HEADER_LEN);
    let sealed_len = rest.len() - TAG_LEN - 4;
    let (body, tail) = rest.split_at_mut(sealed_len);
    assert!(cipher.open(s.offsets[2], head, body, &tail[..TAG_LEN]));
    body[body.len() - 1] ^= 1; // the last record's checksum: no longer records
    let tag = cipher.seal(s.offsets[2], head, body).unwrap();
    tail[..TAG_LEN].copy_from_slice(&tag);
    let crc = crc32c(&rest[..sealed_len + TAG_LEN]);
    rest[sealed_len + TAG_LEN..].copy_from_slice(&crc.to_le_bytes());
    match replay_keys(&bytes, LogKind::Wal, &keys).0 {
        Err(Error::Corruption { offset, .. }) => assert_eq!(offset, s.offsets[2]),
        other => panic!("expected Corruption at batch 2, got {other:?}"),
    }
    let (kept, found) = salvage_all(&bytes, &keys);
    assert_eq!((kept.len(), found.batches), (6, 2));
}

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
            for (b, pos) in s.batches.iter().zip(&s.positions) {
                for (r, p) in b.iter().zip(pos) {
                    let got = read_record_at(file.as_ref(), bytes.len() as u64, *p, Some(&cipher))
                        .unwrap();
                    assert_eq!(TestRec::from_ref(&got.as_record()), *r);
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
            let found = salvage(&file, LogKind::ValueLog, 7, cipher.as_ref(), |batch| {
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

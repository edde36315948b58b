//! Encryption at rest through the public API (issue 10): no plaintext in any file after flush,
//! compaction and GC; wrong, missing and unexpected keys refused without changing a byte;
//! rotation of data keys by age and of the master key; unique (data key, salt) per file; and
//! tampering that keeps the checksums right is an authentication error, never a wrong value.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{small_options, value_for};
use settdb::io::FsStorage;
use settdb::{Db, Error, IteratorOptions, Options};

const KEY: [u8; 32] = [0x42; 32];
const MARKER: &[u8] = b"PLAINTEXT-MARKER";

fn opts(dir: &Path, key: &[u8]) -> Options {
    small_options(dir, Arc::new(FsStorage::new()))
        .with_encryption_key(key.to_vec())
        .with_value_threshold(128)
        .with_auto_value_log_gc(false)
}

/// Every file under `dir` (recursively), with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p, bytes);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Keys and values that carry the marker; inline (64 B) and value-log (600 B) values, with
/// overwrites and deletes so compaction and GC have work.
fn write_marked(db: &Db, rounds: u64) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut model = BTreeMap::new();
    for round in 0..rounds {
        let mut batch = db.new_write_batch().unwrap();
        for i in 0..400u64 {
            let mut key = MARKER.to_vec();
            key.extend_from_slice(format!("-{i:04}").as_bytes());
            if (i + round) % 13 == 0 {
                batch.delete(key.clone()).unwrap();
                model.insert(key, None);
                continue;
            }
            let len = if i % 2 == 0 { 64 } else { 600 };
            let mut v = MARKER.to_vec();
            v.extend(value_for(&key, round, len));
            batch.set(key.clone(), v.clone()).unwrap();
            model.insert(key, Some(v));
        }
        batch.flush().unwrap();
    }
    model
}

fn check_model(db: &Db, model: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for (k, v) in model {
        assert_eq!(
            db.get(k).unwrap(),
            v.clone(),
            "key {}",
            String::from_utf8_lossy(k)
        );
    }
    let txn = db.new_transaction(false).unwrap();
    let mut it = txn.iter(IteratorOptions::default()).unwrap();
    it.rewind().unwrap();
    let mut n = 0;
    while it.valid() {
        let item = it.item();
        let value = item.value().unwrap();
        assert_eq!(
            model.get(item.key()).cloned().flatten().as_deref(),
            Some(&value[..])
        );
        // The size known without reading the value log counts no tag.
        assert_eq!(item.value_size(), value.len() as u64);
        n += 1;
        it.next().unwrap();
    }
    assert_eq!(n, model.values().filter(|v| v.is_some()).count());
}

#[test]
fn no_user_byte_is_left_in_plaintext_after_flush_compaction_and_gc() {
    // Proves the marker written in every key and value appears in no file of an encrypted
    // database while the WAL is live, after flushes and compactions, and after value-log GC;
    // and that the same workload without a key does leave it in the files (the check can
    // fail).
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), &KEY)).unwrap();
    let model = write_marked(&db, 6);
    db.sync().unwrap();
    let live: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|(_, b)| contains(b, MARKER))
        .map(|(p, _)| p)
        .collect();
    assert!(live.is_empty(), "plaintext with the WAL live in {live:?}");
    db.flush().unwrap();
    db.compact_until_settled().unwrap();
    db.flatten().unwrap();
    // GC reads sealed records and rewrites them into new sealed files.
    let mut rewrote = 0;
    while let settdb::GcOutcome::Rewrote(r) = db.run_value_log_gc(0.1).unwrap() {
        rewrote += r.files_retired.len();
    }
    assert!(
        rewrote > 0,
        "GC rewrote nothing: the test does not cover it"
    );
    check_model(&db, &model);
    db.close().unwrap();
    let all = files(dir.path());
    let kinds: HashSet<String> = all
        .keys()
        .filter_map(|p| p.extension().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    for k in ["sst", "vlog", "mem"] {
        assert!(kinds.contains(k), "no .{k} file to check: {kinds:?}");
    }
    for (p, b) in &all {
        assert!(!contains(b, MARKER), "plaintext marker in {}", p.display());
    }
    let db = Db::open(opts(dir.path(), &KEY)).unwrap();
    check_model(&db, &model);
    db.close().unwrap();

    let plain = tempfile::tempdir().unwrap();
    let db = Db::open(opts(plain.path(), &[])).unwrap();
    write_marked(&db, 2);
    db.close().unwrap();
    assert!(files(plain.path()).values().any(|b| contains(b, MARKER)));
}

#[test]
fn wrong_missing_and_unexpected_keys_are_refused_and_change_no_byte() {
    // Proves: a wrong key is WrongEncryptionKey, no key is EncryptionKeyRequired, a key for a
    // plaintext database is NotEncrypted, a key of a bad length is InvalidOptions; none of
    // them changes, adds or removes a byte of any file; the right key still opens it all.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), &KEY)).unwrap();
    let model = write_marked(&db, 2);
    db.close().unwrap();
    let before = files(dir.path());
    let started = Instant::now();
    let wrong = Db::open(opts(dir.path(), &[0x41; 32]));
    let wrong_took = started.elapsed();
    assert!(
        matches!(wrong, Err(Error::WrongEncryptionKey { .. })),
        "{wrong:?}"
    );
    eprintln!("wrong key refused in {wrong_took:?}");
    assert!(matches!(
        Db::open(opts(dir.path(), &[0x42; 16])),
        Err(Error::WrongEncryptionKey { .. })
    ));
    assert!(matches!(
        Db::open(opts(dir.path(), &[])),
        Err(Error::EncryptionKeyRequired { .. })
    ));
    assert!(matches!(
        Db::open(opts(dir.path(), &[1; 20])),
        Err(Error::InvalidOptions(_))
    ));
    assert!(matches!(
        Db::open(opts(dir.path(), &[0x41; 32]).with_read_only(true)),
        Err(Error::WrongEncryptionKey { .. })
    ));
    assert!(matches!(
        settdb::verify(&opts(dir.path(), &[0x41; 32])),
        Err(Error::WrongEncryptionKey { .. })
    ));
    assert!(matches!(
        settdb::repair(&opts(dir.path(), &[0x41; 32])),
        Err(Error::WrongEncryptionKey { .. })
    ));
    assert_eq!(
        files(dir.path()),
        before,
        "a refused open changed the files"
    );
    let db = Db::open(opts(dir.path(), &KEY)).unwrap();
    check_model(&db, &model);
    db.close().unwrap();

    let plain = tempfile::tempdir().unwrap();
    Db::open(opts(plain.path(), &[])).unwrap().close().unwrap();
    let before = files(plain.path());
    assert!(matches!(
        Db::open(opts(plain.path(), &KEY)),
        Err(Error::NotEncrypted { .. })
    ));
    assert_eq!(files(plain.path()), before);
}

/// The (data key id, salt) of every encrypted log header and table sealing block in `dir`.
fn file_keys(dir: &Path) -> Vec<(PathBuf, u64, Vec<u8>)> {
    let mut out = Vec::new();
    for (p, b) in files(dir) {
        let ext = p.extension().map(|e| e.to_string_lossy().into_owned());
        match ext.as_deref() {
            Some(ext @ ("mem" | "vlog")) if b.len() >= 48 => {
                // A WAL seals whole batches (flags bit 1 with bit 0), a value log each record.
                let flags = if ext == "mem" { 3 } else { 1 };
                assert_eq!(b[7], flags, "{} is not flagged encrypted", p.display());
                let id = u64::from_le_bytes(b[16..24].try_into().unwrap());
                out.push((p, id, b[24..36].to_vec()));
            }
            Some("sst") => {
                let n = b.len();
                let version = u32::from_le_bytes(b[n - 16..n - 12].try_into().unwrap());
                assert_eq!(version, 2, "{} is not an encrypted table", p.display());
                let seal = &b[n - 96..n - 64];
                let id = u64::from_le_bytes(seal[..8].try_into().unwrap());
                out.push((p, id, seal[8..20].to_vec()));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn data_keys_rotate_by_age_and_every_file_has_its_own_salt() {
    // Proves that with a 1-second rotation period, files made after the period are sealed
    // under a newer data key (older files keep theirs and stay readable after a reopen), and
    // that no two files of the database share a (data key, salt): their nonces never meet.
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), &KEY).with_encryption_key_rotation_duration(Duration::from_secs(1));
    let mut model = BTreeMap::new();
    // Every (data key, salt) ever seen, with the file that had it.
    let mut seen: BTreeMap<(u64, Vec<u8>), PathBuf> = BTreeMap::new();
    let mut of_file: BTreeMap<PathBuf, (u64, Vec<u8>)> = BTreeMap::new();
    let mut key_ids = HashSet::new();
    for round in 0..3u64 {
        let db = Db::open(o.clone()).unwrap();
        for i in 0..300u64 {
            let k = format!("r{round}-{i:04}").into_bytes();
            let v = value_for(&k, round, if i % 2 == 0 { 40 } else { 400 });
            db.set(k.clone(), v.clone()).unwrap();
            model.insert(k, Some(v));
        }
        db.flush().unwrap();
        db.close().unwrap();
        for (p, id, salt) in file_keys(dir.path()) {
            key_ids.insert(id);
            // A file seen in an earlier round keeps its key and salt; no other file, now or
            // earlier (since deleted), ever had them.
            let first = of_file
                .entry(p.clone())
                .or_insert_with(|| (id, salt.clone()));
            assert_eq!(
                *first,
                (id, salt.clone()),
                "{} changed its key",
                p.display()
            );
            let owner = seen.entry((id, salt)).or_insert_with(|| p.clone());
            assert_eq!(*owner, p, "two files share a data key and salt");
        }
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert!(key_ids.len() >= 3, "data keys used: {key_ids:?}");
    let db = Db::open(o).unwrap();
    check_model(&db, &model);
    // Every key a file uses is listed, oldest first, with increasing ids and creation times.
    let listed = db.encryption_keys();
    assert!(key_ids.iter().all(|id| listed.iter().any(|k| k.id == *id)));
    assert!(listed
        .windows(2)
        .all(|w| w[0].id < w[1].id && w[0].created_at <= w[1].created_at));
    db.close().unwrap();
    let plain = tempfile::tempdir().unwrap();
    let db = Db::open(opts(plain.path(), &[])).unwrap();
    assert!(db.encryption_keys().is_empty());
    db.close().unwrap();
}

#[test]
fn rotating_the_master_key_rewrites_only_the_registry() {
    // Proves rotate_encryption_key re-seals KEYREGISTRY only: every other file is unchanged,
    // the old key is refused afterwards, the new key opens everything; a wrong old key and a
    // plaintext database are refused.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), &KEY)).unwrap();
    let model = write_marked(&db, 2);
    db.close().unwrap();
    let before = files(dir.path());
    let new_key = [0x17; 16];
    assert!(matches!(
        settdb::rotate_encryption_key(&opts(dir.path(), &[9; 32]), &new_key),
        Err(Error::WrongEncryptionKey { .. })
    ));
    assert_eq!(files(dir.path()), before);
    let n = settdb::rotate_encryption_key(&opts(dir.path(), &KEY), &new_key).unwrap();
    assert!(n >= 1);
    let after = files(dir.path());
    for (p, b) in &before {
        let name = p.file_name().unwrap().to_string_lossy();
        if name == "KEYREGISTRY" {
            assert_ne!(after.get(p), Some(b), "the registry was not rewritten");
        } else if name != "LOCK" {
            assert_eq!(after.get(p), Some(b), "{name} changed");
        }
    }
    assert!(matches!(
        Db::open(opts(dir.path(), &KEY)),
        Err(Error::WrongEncryptionKey { .. })
    ));
    let db = Db::open(opts(dir.path(), &new_key)).unwrap();
    check_model(&db, &model);
    db.close().unwrap();
    let plain = tempfile::tempdir().unwrap();
    Db::open(opts(plain.path(), &[])).unwrap().close().unwrap();
    assert!(matches!(
        settdb::rotate_encryption_key(&opts(plain.path(), &KEY), &new_key),
        Err(Error::NotEncrypted { .. }) | Err(Error::InvalidOptions(_))
    ));
}

/// crc32c, as the files use it (Castagnoli), bitwise.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn tampering_that_keeps_checksums_right_is_an_authentication_error() {
    // Proves an attacker who flips a byte of a table block or of a value-log record's
    // ciphertext and recomputes its crc32c gets an Authentication error naming the file and
    // the unit's offset from reads and verify, never a different value.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(opts(dir.path(), &KEY).with_value_threshold(100)).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..200u64 {
        let k = format!("k{i:04}").into_bytes();
        let v = value_for(&k, 1, 300);
        db.set(k.clone(), v.clone()).unwrap();
        model.insert(k, Some(v));
    }
    db.flush().unwrap();
    db.close().unwrap();
    let all = files(dir.path());
    // The first table block: its stored length is the index's first handle; simplest, the
    // first record of the first value-log file and the first block of a table, each found
    // from the format (block 0 at offset 0; first vlog record after 48 + 32 bytes).
    let table = all
        .keys()
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .unwrap()
        .clone();
    let vlog = all
        .keys()
        .find(|p| p.extension().is_some_and(|e| e == "vlog"))
        .unwrap()
        .clone();
    for (path, unit_at) in [(table.clone(), 0usize), (vlog.clone(), 80usize)] {
        let good = all[&path].clone();
        let mut bad = good.clone();
        if path == table {
            // Block 0: find its end by scanning for the crc that matches (stored_block :=
            // sealed ‖ tag ‖ compression ‖ crc32c over all before it).
            let end = (21..good.len())
                .find(|&e| {
                    crc32c(&good[..e - 4]) == u32::from_le_bytes(good[e - 4..e].try_into().unwrap())
                })
                .unwrap();
            bad[3] ^= 0x01;
            let crc = crc32c(&bad[..end - 4]);
            bad[end - 4..end].copy_from_slice(&crc.to_le_bytes());
        } else {
            // The first record: meta, user_meta, key_len, value_len, expires_at (varints)...
            let key_len = usize::from(good[unit_at + 2]);
            let mut p = unit_at + 3;
            let mut value_len = 0usize;
            let mut shift = 0;
            loop {
                let b = good[p];
                value_len |= usize::from(b & 0x7f) << shift;
                p += 1;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            p += 1; // expires_at 0
            let end = p + key_len + value_len + 16 + 4;
            bad[p + key_len + 5] ^= 0x01;
            let crc = crc32c(&bad[unit_at..end - 4]);
            bad[end - 4..end].copy_from_slice(&crc.to_le_bytes());
            // The batch header checksums only its own bytes, so the batch stays intact.
        }
        std::fs::write(&path, &bad).unwrap();
        let r = Db::open(opts(dir.path(), &KEY).with_read_only(true));
        let mut auth_errors = 0;
        match r {
            Err(Error::Authentication { file, offset }) => {
                assert_eq!(file, path);
                assert_eq!(offset, unit_at as u64);
                auth_errors += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(db) => {
                for (k, v) in &model {
                    match db.get(k) {
                        Ok(got) => assert_eq!(&got, v),
                        Err(Error::Authentication { file, offset }) => {
                            assert_eq!(file, path);
                            assert_eq!(offset, unit_at as u64);
                            auth_errors += 1;
                        }
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
                db.close().unwrap();
            }
        }
        assert!(
            auth_errors > 0,
            "tampering in {} went unnoticed",
            path.display()
        );
        let report = settdb::verify(&opts(dir.path(), &KEY)).unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|e| matches!(e, Error::Authentication { .. })),
            "verify missed it: {:?}",
            report.problems
        );
        std::fs::write(&path, &good).unwrap();
    }
}

//! Mapped value-log reads (`Options::value_log_mmap`, on by default) when the disk cannot
//! give a mapped page back: a sealed value-log file truncated by another program while the
//! database is open makes reads of the lost part raise SIGBUS. Each such read must be a
//! typed error naming the file, every value still on disk must read back exactly, and the
//! process must live on. Its own test binary: the first caught fault turns mapped reads off
//! for the rest of the process.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{small_options, value_for};
use settdb::io::{FsStorage, Storage};
use settdb::{Db, Error};

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn vlog_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "vlog"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_value_log_file_truncated_under_its_mapping_gives_errors_not_a_crash() {
    // Proves: reads of values in the truncated part of a mapped file fail with a typed error
    // naming that file (the SIGBUS is caught and the read made again with pread), reads of
    // the part still on disk and of other files return their exact values, and scans report
    // the error instead of skipping the lost values.
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
    let opts = small_options(dir.path(), storage)
        .with_auto_value_log_gc(false)
        .with_value_log_mmap(true);
    let mut model = BTreeMap::new();
    {
        let db = Db::open(opts.clone()).unwrap();
        for i in 0..3000 {
            let v = value_for(&key(i), 1, 1000);
            db.set(key(i), v.clone()).unwrap();
            model.insert(key(i), v);
        }
        db.close().unwrap();
    }
    let db = Db::open(opts).unwrap();
    // Reopened, every file but the newest is sealed and mapped; read them all once.
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
    let files = vlog_files(dir.path());
    assert!(files.len() >= 3, "{} value-log files", files.len());
    // Cut the first file to half its length, well inside a page boundary's reach.
    let victim = &files[0];
    let len = std::fs::metadata(victim).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let victim_name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let (mut ok, mut failed) = (0, 0);
    for (k, v) in &model {
        match db.get(k) {
            Ok(got) => {
                assert_eq!(got.as_ref(), Some(v), "key {}", String::from_utf8_lossy(k));
                ok += 1;
            }
            Err(e) => {
                let shown = e.to_string();
                assert!(
                    shown.contains(&victim_name),
                    "error names another file: {shown}"
                );
                assert!(
                    matches!(e, Error::Io { .. } | Error::Corruption { .. }),
                    "unexpected error kind: {e:?}"
                );
                failed += 1;
            }
        }
    }
    assert!(failed > 0, "no read met the truncated part");
    assert!(ok > failed, "{ok} reads succeeded, {failed} failed");
    // A scan that reaches a lost value reports it.
    let scanned: Result<Vec<_>, _> = db
        .iter(settdb::IteratorOptions::default())
        .unwrap()
        .map(|item| item.and_then(|i| i.value()))
        .collect();
    assert!(
        scanned.is_err(),
        "a scan over lost values returned no error"
    );
    drop(db);
}

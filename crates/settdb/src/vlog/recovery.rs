//! Recovery of a value-log directory: which files exist and where each one's valid bytes end.
//!
//! ```text
//! value_dir := (NNNNNN.vlog)*   every file but the newest complete and sealed; the newest
//!                               may be empty, sealed, or end in a torn or zero tail
//! ```
//!
//! Pure validation: nothing here writes (DESIGN.md rule 7). Normative page:
//! docs/format/vlog.md ("Recovery").

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::file_name::{parse_vlog_file_name, vlog_file_name};
use super::vlog_file::VlogFile;
use crate::crypto::KeyRegistry;
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage, StorageFile};
use crate::log::{
    ends_sealed, read_header, replay_with, seal_batch_len, LogHeader, LogKind, ReplayEnd,
    StopReason, FIRST_BATCH_OFFSET,
};

/// How recovery checked one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCheck {
    /// An older file: its header was checked and it ends in its seal, so it is valid to its
    /// full length (it was sealed before a newer file was created). Not replayed.
    Sealed,
    /// The newest file, replayed; why its replay stopped ([`StopReason::Unborn`] for a file
    /// whose header never became durable).
    Replayed(StopReason),
}

/// What recovery found for one value-log file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveredFile {
    /// The file id.
    pub id: u32,
    /// Its length in bytes when it was opened.
    pub file_len: u64,
    /// Offset past its last valid data batch (its seal excluded): a value pointer into this
    /// file is valid only if it ends at or below it. 0 for an unborn file.
    pub valid_end: u64,
    /// How the file was checked.
    pub check: FileCheck,
}

impl RecoveredFile {
    /// True if the file holds no batch (header only, a torn first batch, or unborn).
    pub fn is_empty(&self) -> bool {
        self.valid_end <= FIRST_BATCH_OFFSET
    }

    /// True if the file's header never became durable.
    #[cfg(test)]
    pub fn is_unborn(&self) -> bool {
        self.check == FileCheck::Replayed(StopReason::Unborn)
    }

    /// Bytes past the valid end that are not its seal (a torn or zero tail of the newest
    /// file).
    pub fn tail_bytes(&self) -> u64 {
        let seal = match self.check {
            FileCheck::Sealed | FileCheck::Replayed(StopReason::CleanEnd) => {
                self.file_len - self.valid_end
            }
            _ => 0,
        };
        self.file_len.saturating_sub(self.valid_end + seal)
    }
}

/// What [`super::ValueLog::open`] found in the value directory, for the engine: the valid end
/// of every file, against which it checks the value pointers of replayed WALs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VlogRecovery {
    /// Every value-log file found, in id order.
    pub files: Vec<RecoveredFile>,
}

impl VlogRecovery {
    /// What was found for file `id`.
    #[cfg(test)]
    pub fn get(&self, id: u32) -> Option<&RecoveredFile> {
        self.files
            .binary_search_by_key(&id, |f| f.id)
            .ok()
            .and_then(|i| self.files.get(i))
    }

    /// The valid end of file `id`, if it exists.
    #[cfg(test)]
    pub fn valid_end(&self, id: u32) -> Option<u64> {
        self.get(id).map(|f| f.valid_end)
    }

    /// The newest file (the only one recovery replayed).
    pub fn newest(&self) -> Option<&RecoveredFile> {
        self.files.last()
    }
}

/// Everything recovery found and opened, handed to the value log.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// The report for the engine.
    pub report: VlogRecovery,
    /// Every file with a header, open for reading, readable up to its valid end.
    pub open: BTreeMap<u32, Arc<VlogFile>>,
    /// The newest file's id and replay end, when it has a header (sealing truncates it
    /// there).
    pub newest_end: Option<(u32, ReplayEnd)>,
}

/// Which value-log files recovery opens.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Files<'a> {
    /// The files the MANIFEST lists (the engine): each one was durable before it was listed,
    /// so an unborn one is corruption.
    Listed(&'a [u32]),
    /// Every `.vlog` file in the directory (a value log used without a MANIFEST, in tests and
    /// tools): an unborn newest file is a crash between its creation and its header's sync.
    InDirectory,
}

/// Checks the value-log files of `dir` (`files`); writes nothing. A missing `dir` holds no
/// files. Errors: a malformed `.vlog` name, a damaged header, a header naming another file id,
/// an older file that is not sealed, a listed file that is unborn, corruption in the newest
/// file's synced bytes (replay), I/O errors.
pub(crate) fn recover_dir(
    storage: &dyn Storage,
    dir: &Path,
    files: Files<'_>,
    keys: Option<&KeyRegistry>,
) -> Result<Recovered> {
    let mut out = Recovered::default();
    let ids = match files {
        Files::Listed(ids) => {
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids
        }
        Files::InDirectory => list_dir(storage, dir)?,
    };
    let newest = ids.last().copied();
    for id in ids {
        let path = dir.join(vlog_file_name(id));
        let file = storage.open(&path, OpenMode::Read)?;
        let (found, header) = if Some(id) == newest {
            let end = replay_with(file.as_ref(), LogKind::ValueLog, keys, |_| Ok(()))?;
            if end.header.is_none() && matches!(files, Files::Listed(_)) {
                let why = "a listed value-log file is unborn: it was durable before it was listed";
                return Err(Error::corruption(&path, 0, why));
            }
            out.newest_end = end.header.is_some().then_some((id, end));
            (replayed(id, file.len()?, &end), end.header)
        } else {
            check_older(id, file.as_ref())?
        };
        if let Some(h) = header {
            check_id(&h, id, &path)?;
            let cipher = h.cipher(keys, &path)?;
            let vf = VlogFile::new(id, file, found.valid_end, cipher);
            out.open.insert(id, Arc::new(vf));
        }
        out.report.files.push(found);
    }
    Ok(out)
}

fn list_dir(storage: &dyn Storage, dir: &Path) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    if storage.exists(dir)? {
        for name in storage.list_dir(dir)? {
            if let Some(id) = parse_vlog_file_name(dir, &name)? {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// The report of the newest file from its replay.
fn replayed(id: u32, file_len: u64, end: &ReplayEnd) -> RecoveredFile {
    let seal = if end.sealed { seal_batch_len() } else { 0 };
    RecoveredFile {
        id,
        file_len,
        valid_end: end.valid_end - seal,
        check: FileCheck::Replayed(end.stop),
    }
}

/// Checks a file older than the newest: a header, and the seal at its end (it was sealed when
/// the next file was created, so a file that was cut, grew or was damaged at its end is not).
fn check_older(id: u32, file: &dyn StorageFile) -> Result<(RecoveredFile, Option<LogHeader>)> {
    let Some(header) = read_header(file, LogKind::ValueLog)? else {
        let why = "an older value-log file is unborn; it was sealed before a newer file existed";
        return Err(Error::corruption(file.path(), 0, why));
    };
    check_id(&header, id, file.path())?;
    let file_len = file.len()?;
    if !ends_sealed(file, LogKind::ValueLog, header.file_id)? {
        let why = format!(
            "an older value-log file of {file_len} bytes does not end in its seal: it was cut, \
             grew, or its end is damaged"
        );
        return Err(Error::corruption(file.path(), file_len, why));
    }
    let found = RecoveredFile {
        id,
        file_len,
        valid_end: file_len - seal_batch_len(),
        check: FileCheck::Sealed,
    };
    Ok((found, Some(header)))
}

/// Refuses a header whose file id is not the one in the file's name (a copied or renamed file:
/// its batch checksums are seeded with the other id, and pointers name this one).
fn check_id(header: &LogHeader, id: u32, path: &Path) -> Result<()> {
    if header.file_id != u64::from(id) {
        let why = format!(
            "header names value-log file {} but the file is named for {id}",
            header.file_id
        );
        return Err(Error::corruption(path, 0, why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
    use crate::log::{LogWriter, FILE_HEADER_LEN, FIRST_RECORD_OFFSET};
    use crate::vlog::testing::{append, gen_group, open_sim, opts, read_only, rng, DIR};

    /// A value directory with files 1..=3, each holding two groups, all synced.
    fn three_files() -> SimStorage {
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 4)).unwrap();
        let mut r = rng(20);
        for g in 0..6 {
            append(&vlog, gen_group(&mut r, g, 2, 40)).unwrap();
        }
        vlog.close().unwrap();
        assert_eq!(vlog.file_ids(), vec![1, 2, 3]);
        sim
    }

    fn path(id: u32) -> std::path::PathBuf {
        Path::new(DIR).join(vlog_file_name(id))
    }

    fn corruption_at(sim: &SimStorage) -> (std::path::PathBuf, u64) {
        match recover_dir(sim, Path::new(DIR), Files::InDirectory, None) {
            Err(Error::Corruption { file, offset, .. }) => (file, offset),
            other => panic!("expected Corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_clean_directory_reports_every_file_and_ignores_foreign_names() {
        // Proves older files are Sealed at their length, the newest is replayed, foreign
        // names are skipped, and a missing directory holds nothing.
        let sim = three_files();
        sim.set_bytes(&Path::new(DIR).join("DISCARD"), b"x")
            .unwrap();
        sim.set_bytes(&Path::new(DIR).join("000009.vlog.tmp"), b"x")
            .unwrap();
        let rec = recover_dir(&sim, Path::new(DIR), Files::InDirectory, None).unwrap();
        let checks: Vec<_> = rec.report.files.iter().map(|f| (f.id, f.check)).collect();
        assert_eq!(
            checks,
            vec![
                (1, FileCheck::Sealed),
                (2, FileCheck::Sealed),
                (3, FileCheck::Replayed(StopReason::CleanEnd)),
            ]
        );
        for f in &rec.report.files {
            assert_eq!(f.valid_end + seal_batch_len(), f.file_len);
            assert_eq!(f.tail_bytes(), 0);
            assert_eq!(rec.open[&f.id].readable_end(), f.valid_end);
            assert_eq!(rec.report.valid_end(f.id), Some(f.valid_end));
        }
        let none = recover_dir(&sim, Path::new("/nowhere"), Files::InDirectory, None).unwrap();
        assert!(none.report.files.is_empty() && none.open.is_empty());
    }

    #[test]
    fn damaged_older_files_and_names_are_corruption() {
        // Proves an unborn older file, one cut short (no longer ending in its seal), one whose
        // header names another id, a WAL under a .vlog name and a malformed name are each
        // Corruption naming the file (and the offset of the damage).
        type Case = (&'static str, fn(&SimStorage), std::path::PathBuf, u64);
        let cases: [Case; 5] = [
            (
                "unborn",
                |s| s.set_bytes(&path(1), &[0; 30]).unwrap(),
                path(1),
                0,
            ),
            (
                "short",
                |s| {
                    let b = s.durable_bytes(&path(2)).unwrap();
                    s.set_bytes(&path(2), &b[..60]).unwrap();
                },
                path(2),
                60,
            ),
            (
                "renamed",
                |s| {
                    let b = s.durable_bytes(&path(1)).unwrap();
                    s.set_bytes(&path(2), &b).unwrap();
                },
                path(2),
                0,
            ),
            (
                "wal",
                |s| {
                    let h = LogHeader::new(LogKind::Wal, 1);
                    s.set_bytes(&path(1), &h.encode()).unwrap();
                },
                path(1),
                0,
            ),
            (
                "name",
                |s| s.set_bytes(&Path::new(DIR).join("7.vlog"), b"").unwrap(),
                Path::new(DIR).join("7.vlog"),
                0,
            ),
        ];
        for (what, damage, file, offset) in cases {
            let sim = three_files();
            damage(&sim);
            assert_eq!(corruption_at(&sim), (file, offset), "{what}");
        }
    }

    #[test]
    fn an_unborn_newest_file_is_ignored_then_removed() {
        // Proves a newest file whose header never landed is reported Unborn and not opened,
        // read-only leaves it, and a writing open removes it and starts past its id.
        let sim = three_files();
        sim.set_bytes(&path(4), &[0; FILE_HEADER_LEN - 1]).unwrap();
        let rec = recover_dir(&sim, Path::new(DIR), Files::InDirectory, None).unwrap();
        let newest = rec.report.newest().unwrap();
        assert!(newest.is_unborn() && newest.is_empty());
        assert_eq!(newest.id, 4);
        assert!(!rec.open.contains_key(&4));
        let (ro, _) = open_sim(&sim, read_only(opts(1 << 20, 4))).unwrap();
        assert_eq!(ro.file_ids(), vec![1, 2, 3]);
        assert!(sim.live_bytes(&path(4)).is_some());
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 4)).unwrap();
        assert!(sim.durable_bytes(&path(4)).is_none());
        assert_eq!(vlog.active_file_id(), Some(5));
        assert_eq!(vlog.file_ids(), vec![1, 2, 3, 5]);
    }

    #[test]
    fn an_interrupted_start_never_leaves_an_unborn_older_file() {
        // Proves the removal of an unborn newest file is durable before the next file can be:
        // with a directory sync failing during start (the removal's, or the new file's) and
        // then any crash, the next open succeeds.
        for after in [0, 1] {
            let sim = three_files();
            sim.set_bytes(&path(4), &[]).unwrap();
            sim.inject(
                Fault::new(FaultOp::SyncDir, FaultKind::Eio)
                    .after(after)
                    .times(1),
            );
            assert!(open_sim(&sim, opts(1 << 20, 4)).is_err());
            for mode in [CrashMode::Subset, CrashMode::Prefix, CrashMode::TornTail] {
                for seed in 0..20 {
                    let crashed = sim.crash(mode, seed);
                    let (vlog, _) = open_sim(&crashed, opts(1 << 20, 4)).unwrap();
                    assert_eq!(&vlog.file_ids()[..3], &[1, 2, 3]);
                }
            }
        }
    }

    #[test]
    fn a_torn_newest_file_is_sealed_at_its_valid_end() {
        // Proves a torn tail on the newest file is reported (valid end below the length),
        // left alone read-only, and truncated and sealed durably when opened for writing, so
        // the file is complete and sealed once it is no longer the newest.
        let sim = three_files();
        let mut b = sim.durable_bytes(&path(3)).unwrap();
        b.truncate(b.len() - seal_batch_len() as usize); // as if the process had crashed
        let valid = b.len() as u64;
        b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
        sim.set_bytes(&path(3), &b).unwrap();
        let rec = recover_dir(&sim, Path::new(DIR), Files::InDirectory, None).unwrap();
        let newest = rec.report.newest().unwrap();
        assert_eq!((newest.valid_end, newest.tail_bytes()), (valid, 7));
        assert_eq!(
            newest.check,
            FileCheck::Replayed(StopReason::TornTail { offset: valid })
        );
        drop(open_sim(&sim, read_only(opts(1 << 20, 4))).unwrap());
        assert_eq!(sim.live_bytes(&path(3)).unwrap().len() as u64, valid + 7);
        drop(open_sim(&sim, opts(1 << 20, 4)).unwrap());
        let sealed = valid + seal_batch_len();
        assert_eq!(sim.durable_bytes(&path(3)).unwrap().len() as u64, sealed);
        let rec = recover_dir(&sim, Path::new(DIR), Files::InDirectory, None).unwrap();
        assert_eq!(rec.report.get(3).unwrap().check, FileCheck::Sealed);
        assert_eq!(rec.report.get(3).unwrap().valid_end, valid);
    }

    #[test]
    fn damage_in_the_newest_files_synced_bytes_is_corruption() {
        // Proves a damaged batch followed by a batch that records it as synced is Corruption
        // at the damaged batch (replay's rule 4), not a torn tail silently cut.
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new(DIR)).unwrap();
        let hdr = LogHeader::new(LogKind::ValueLog, 1);
        let mut w = LogWriter::create(&sim, &path(1), hdr).unwrap();
        let mut r = rng(21);
        let mut pos = Vec::new();
        for g in 0..2 {
            let es = gen_group(&mut r, g, 1, 10);
            let recs: Vec<_> = es.iter().map(|e| e.as_record()).collect();
            w.append_batch(&recs, &mut pos).unwrap();
            w.sync().unwrap();
        }
        sim.corrupt(&path(1), FIRST_RECORD_OFFSET + 3, 0x40)
            .unwrap();
        assert_eq!(corruption_at(&sim), (path(1), FIRST_BATCH_OFFSET));
    }

    /// Every group of [`three_files`] with its pointers (regenerated from the same seed).
    fn three_files_with_groups() -> (SimStorage, Vec<crate::vlog::testing::Written>) {
        let sim = SimStorage::new();
        let (vlog, _) = open_sim(&sim, opts(1 << 20, 4)).unwrap();
        let mut r = rng(20);
        let groups = (0..6)
            .map(|g| append(&vlog, gen_group(&mut r, g, 2, 40)).unwrap())
            .collect();
        vlog.close().unwrap();
        (sim, groups)
    }

    proptest::proptest! {
        #[test]
        fn random_file_bytes_never_panic(
            older in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            newest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            // Proves arbitrary bytes as an older and as the newest file are a recovery or a
            // typed error, and a recovered file is never readable past its length.
            let sim = SimStorage::new();
            sim.create_dir_all(Path::new(DIR)).unwrap();
            sim.set_bytes(&path(1), &older).unwrap();
            sim.set_bytes(&path(2), &newest).unwrap();
            if let Ok(rec) = recover_dir(&sim, Path::new(DIR), Files::InDirectory, None) {
                for f in &rec.report.files {
                    proptest::prop_assert!(f.valid_end <= f.file_len);
                }
            }
        }

        #[test]
        fn a_flipped_bit_never_reads_as_a_wrong_value(file in 1u32..=3, at: proptest::sample::Index, bit in 0u8..8) {
            // Proves that after any single bit flip in any file, open fails with a typed
            // error or every pointer reads its own value or fails with a typed corruption
            // error: never another value.
            let (sim, groups) = three_files_with_groups();
            let len = sim.durable_bytes(&path(file)).unwrap().len();
            sim.corrupt(&path(file), at.index(len) as u64, 1 << bit).unwrap();
            let Ok((vlog, _)) = open_sim(&sim, read_only(opts(1 << 20, 4))) else {
                return Ok(());
            };
            for w in &groups {
                for (e, vp) in w.entries.iter().zip(&w.ptrs) {
                    match vlog.read(*vp, &e.key) {
                        Ok(got) => proptest::prop_assert_eq!(got.value(), &e.value[..]),
                        Err(err) => proptest::prop_assert!(err.is_corruption(), "{err}"),
                    }
                }
            }
        }
    }
}

//! Recovery of a value-log directory: which files exist and where each one's valid bytes end.
//!
//! ```text
//! value_dir := (NNNNNN.vlog)*   every file but the newest complete; the newest may be
//!                               unborn, empty, or end in a torn or zero tail
//! ```
//!
//! Pure validation: nothing here writes (DESIGN.md rule 7). Normative page:
//! docs/format/vlog.md ("Recovery").

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::file_name::{parse_vlog_file_name, vlog_file_name};
use super::vlog_file::VlogFile;
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage, StorageFile};
use crate::log::{
    read_header, replay, LogHeader, LogKind, ReplayEnd, StopReason, FIRST_BATCH_OFFSET,
    FIRST_RECORD_OFFSET, MIN_RECORD_LEN,
};

/// Smallest length of a file holding one batch: header, batch header, smallest record.
const MIN_NON_EMPTY_FILE_LEN: u64 = FIRST_RECORD_OFFSET + MIN_RECORD_LEN as u64;

/// How recovery checked one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCheck {
    /// An older file: its header was checked and it is taken as valid to its full length (it
    /// was synced completely before a newer file was created). Not replayed.
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
    /// Offset past its last valid batch: a value pointer into this file is valid only if it
    /// ends at or below it. 0 for an unborn file.
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
    pub fn is_unborn(&self) -> bool {
        self.check == FileCheck::Replayed(StopReason::Unborn)
    }

    /// Bytes past the valid end (a torn or zero tail of the newest file).
    pub fn tail_bytes(&self) -> u64 {
        self.file_len.saturating_sub(self.valid_end)
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
    pub fn get(&self, id: u32) -> Option<&RecoveredFile> {
        self.files
            .binary_search_by_key(&id, |f| f.id)
            .ok()
            .and_then(|i| self.files.get(i))
    }

    /// The valid end of file `id`, if it exists.
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

/// Lists `dir` and checks every value-log file in it; writes nothing. A missing `dir` holds no
/// files. Errors: a malformed `.vlog` name, a damaged header, a header naming another file id,
/// an older file that is unborn or too short to hold a batch, corruption in the newest file's
/// synced bytes (replay), I/O errors.
pub(crate) fn recover_dir(storage: &dyn Storage, dir: &Path) -> Result<Recovered> {
    let mut out = Recovered::default();
    if !storage.exists(dir)? {
        return Ok(out);
    }
    let mut ids = Vec::new();
    for name in storage.list_dir(dir)? {
        if let Some(id) = parse_vlog_file_name(dir, &name)? {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    let newest = ids.last().copied();
    for id in ids {
        let path = dir.join(vlog_file_name(id));
        let file = storage.open(&path, OpenMode::Read)?;
        let (found, header) = if Some(id) == newest {
            let end = replay(file.as_ref(), LogKind::ValueLog, |_| Ok(()))?;
            out.newest_end = end.header.is_some().then_some((id, end));
            (replayed(id, file.len()?, &end), end.header)
        } else {
            check_older(id, file.as_ref())?
        };
        if let Some(h) = header {
            check_id(&h, id, &path)?;
            let vf = VlogFile::new(id, file, found.valid_end);
            out.open.insert(id, Arc::new(vf));
        }
        out.report.files.push(found);
    }
    Ok(out)
}

/// The report of the newest file from its replay.
fn replayed(id: u32, file_len: u64, end: &ReplayEnd) -> RecoveredFile {
    RecoveredFile {
        id,
        file_len,
        valid_end: end.valid_end,
        check: FileCheck::Replayed(end.stop),
    }
}

/// Checks a file older than the newest: a header, and a length that is the header alone or
/// holds at least one batch.
fn check_older(id: u32, file: &dyn StorageFile) -> Result<(RecoveredFile, Option<LogHeader>)> {
    let Some(header) = read_header(file, LogKind::ValueLog)? else {
        let why = "an older value-log file is unborn; it was synced before a newer file existed";
        return Err(Error::corruption(file.path(), 0, why));
    };
    let file_len = file.len()?;
    if file_len > FIRST_BATCH_OFFSET && file_len < MIN_NON_EMPTY_FILE_LEN {
        let why = format!(
            "an older value-log file of {file_len} bytes is too short to hold a batch: torn"
        );
        return Err(Error::corruption(file.path(), FIRST_BATCH_OFFSET, why));
    }
    let found = RecoveredFile {
        id,
        file_len,
        valid_end: file_len,
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

//! The writer side of the value log: the active file, rotation, and poisoning.
//!
//! ```text
//! active file := file_header batch*        one batch per write group (log.md)
//! rotation    := seal(active) ; create(active id + 1)     only between groups
//! ```
//!
//! Normative page: docs/format/vlog.md ("Writing").

use std::path::Path;
use std::sync::Arc;

use super::file_name::vlog_file_name;
use super::vlog_file::VlogFile;
use crate::crypto::KeyRegistry;
use crate::error::{Error, Result};
use crate::io::Storage;
use crate::log::{LogHeader, LogKind, LogWriter, RecordPos, RecordRef};
use crate::log::{BATCH_HEADER_LEN, FIRST_BATCH_OFFSET};
use crate::value::ValuePointer;

/// Largest offset a value pointer holds: no batch may end past it.
pub(crate) const MAX_POINTER_END: u64 = u32::MAX as u64;

/// When the writer starts a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RotationLimits {
    /// Rotate once the active file's end reaches this many bytes.
    pub max_file_size_bytes: u64,
    /// Rotate before a group that would take the file past this many records.
    pub max_entries: u32,
}

/// Whether a group goes into the active file or a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Append to the active file.
    Active,
    /// Rotate first, then append to the new file.
    NewFile,
}

/// Decides where a group of `records` records and `batch_len` bytes goes, given the active
/// file's end `offset` and its `entries` records. Pure. A file holding no batch is never
/// rotated (so a group bigger than a file still gets one), and a group never spans files.
/// Errors: [`Error::ValueTooLarge`] if the group would end past `u32::MAX` even in a new file.
pub(crate) fn place_group(
    offset: u64,
    entries: u64,
    records: u64,
    batch_len: u64,
    limits: RotationLimits,
) -> Result<Placement> {
    let fits = |start: u64| start.saturating_add(batch_len) <= MAX_POINTER_END;
    let has_batch = offset > FIRST_BATCH_OFFSET;
    let full = offset >= limits.max_file_size_bytes
        || entries.saturating_add(records) > u64::from(limits.max_entries)
        || !fits(offset);
    let placement = if has_batch && full {
        Placement::NewFile
    } else {
        Placement::Active
    };
    let start = match placement {
        Placement::Active => offset,
        Placement::NewFile => FIRST_BATCH_OFFSET,
    };
    if !fits(start) {
        return Err(Error::ValueTooLarge {
            size_bytes: batch_len,
            max_size_bytes: MAX_POINTER_END - FIRST_BATCH_OFFSET,
        });
    }
    Ok(placement)
}

/// Bytes of records one value-log batch holds at most (a larger record is a batch of its own):
/// a write group's values go in as many batches as this needs, so the log writer's buffer
/// (batch header included) stays within the capacity it keeps between batches. One batch per
/// group regrew a 16 MiB buffer for every group of 1,000 16 KiB values, a page fault per 4 KiB
/// page (8% of the writer thread in a 16 KiB load). A group need not be one batch: the WAL batch that points
/// into it is what commits it.
pub(crate) const BATCH_RECORD_BYTES: usize = LogWriter::RETAINED_BUFFER_BYTES - BATCH_HEADER_LEN;

/// `records` cut into consecutive runs of at most [`BATCH_RECORD_BYTES`] encoded bytes
/// (`sealed`: with their tags), each at least one record: the batches a group is written as.
fn batches<'r, 'a>(
    records: &'r [RecordRef<'a>],
    sealed: bool,
) -> impl Iterator<Item = &'r [RecordRef<'a>]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .take_while(|r| {
                bytes += r.encoded_len_in(sealed);
                bytes <= BATCH_RECORD_BYTES
            })
            .count()
            .max(1);
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        Some(batch)
    })
}

/// Validates `records` and returns the bytes their batches take (`sealed`: an encrypted log).
fn batch_len(records: &[RecordRef<'_>], sealed: bool) -> Result<u64> {
    for r in records {
        r.validate()?;
    }
    Ok(batches(records, sealed)
        .map(|b| {
            let body: usize = b.iter().map(|r| r.encoded_len_in(sealed)).sum();
            (BATCH_HEADER_LEN + body) as u64
        })
        .sum())
}

/// [`batch_len`] of a plaintext log, for tests of the value log.
#[cfg(test)]
pub(crate) fn batch_len_for_tests(records: &[RecordRef<'_>]) -> u64 {
    batch_len(records, false).unwrap()
}

/// The one writer of the value log (DESIGN.md rule 10).
///
/// Invariants: `active` is the file with the highest id; every older file was synced to its
/// end before `active` was created; `entries` counts the records in `active`. Once
/// `poisoned` is set, every append, sync and rotation fails with [`Error::Poisoned`] (rule 8).
/// Concurrency: owned by the value log behind a mutex that only the writer thread (appends)
/// and syncing threads take.
#[derive(Debug)]
pub(crate) struct VlogWriter {
    storage: Arc<dyn Storage>,
    limits: RotationLimits,
    /// Seals every new file under its current data key when the database is encrypted.
    keys: Option<Arc<KeyRegistry>>,
    log: LogWriter,
    active: Arc<VlogFile>,
    entries: u64,
    positions: Vec<RecordPos>,
    poisoned: Option<String>,
}

impl VlogWriter {
    /// Creates file `id` in `dir` durably (file and directory synced) as the active file.
    pub(crate) fn create(
        storage: Arc<dyn Storage>,
        dir: &Path,
        id: u32,
        limits: RotationLimits,
        keys: Option<Arc<KeyRegistry>>,
    ) -> Result<Self> {
        let (log, active) = create_file(storage.as_ref(), dir, id, keys.as_deref())?;
        Ok(VlogWriter {
            storage,
            limits,
            keys,
            log,
            active,
            entries: 0,
            positions: Vec::new(),
            poisoned: None,
        })
    }

    /// The active file.
    pub(crate) fn active(&self) -> &Arc<VlogFile> {
        &self.active
    }

    /// Where `records` go; validates them first (nothing is written, nothing poisoned).
    pub(crate) fn place(&self, records: &[RecordRef<'_>]) -> Result<Placement> {
        self.check_poisoned()?;
        let len = batch_len(records, self.log.is_encrypted())?;
        place_group(
            self.log.offset(),
            self.entries,
            records.len() as u64,
            len,
            self.limits,
        )
    }

    /// Seals the active file, then creates the next one and makes it active;
    /// returns it, for the caller to publish to readers before any pointer into it escapes.
    /// Any failure poisons the writer.
    pub(crate) fn rotate(&mut self, dir: &Path) -> Result<Arc<VlogFile>> {
        self.check_poisoned()?;
        let sealed = self.active.id();
        let Some(next) = sealed.checked_add(1) else {
            let e = Error::InvalidRequest("value-log file ids are exhausted");
            return Err(self.poison("rotation", e));
        };
        self.seal()?;
        self.active.forget_written();
        debug_assert_eq!(
            self.log.synced_offset(),
            self.active.readable_end() + crate::log::seal_batch_len()
        );
        match create_file(self.storage.as_ref(), dir, next, self.keys.as_deref()) {
            Ok((log, active)) => {
                self.log = log;
                self.active = active;
                self.entries = 0;
                Ok(Arc::clone(&self.active))
            }
            Err(e) => Err(self.poison("file creation", e)),
        }
    }

    /// Appends `records` as one batch to the active file and fills `out` (cleared first) with
    /// their pointers in order, then publishes the new end to readers. REQUIRES: `place`
    /// returned [`Placement::Active`] for these records (after a rotation, if it asked for
    /// one). A write failure poisons the writer.
    pub(crate) fn append(
        &mut self,
        records: &[RecordRef<'_>],
        out: &mut Vec<ValuePointer>,
    ) -> Result<()> {
        self.check_poisoned()?;
        out.clear();
        out.reserve(records.len());
        let id = self.active.id();
        for batch in batches(records, self.log.is_encrypted()) {
            if let Err(e) = self.log.append_batch(batch, &mut self.positions) {
                return Err(match self.log.poisoned() {
                    Some(_) => self.poison("write", e),
                    // Refused before this batch was written: the log holds whole batches only
                    // (any earlier batch of the group is records nothing points to).
                    None => e,
                });
            }
            if let Some((at, bytes)) = self.log.last_batch() {
                self.active.keep_written(at, bytes);
            }
            for pos in &self.positions {
                // place_group kept every batch end within u32, so this never fails.
                let vp = pos.value_pointer(id).ok_or(Error::InvalidRequest(
                    "a value-log record offset passed u32::MAX",
                ))?;
                out.push(vp);
            }
        }
        self.entries += records.len() as u64;
        self.active.publish_end(self.log.offset());
        Ok(())
    }

    /// Makes every append so far durable; a no-op when nothing is new. A failure poisons.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        match self.log.sync() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.poison("sync", e)),
        }
    }

    /// Notes a sync of the active file made by a background writeback (see
    /// [`LogWriter::note_synced`]).
    pub(crate) fn note_synced(&mut self, offset: u64) {
        self.log.note_synced(offset);
    }

    /// Seals the active file (a clean close, or a rotation): syncs it, then appends the log's
    /// seal batch ([`LogWriter::seal`]) and syncs again. The seal's batch header records that
    /// everything before it was durable, so recovery reports damage anywhere in the file as
    /// corruption instead of taking it for a torn tail and cutting synced values off, and a
    /// sealed file that was cut no longer ends in its seal. A file with no batch is only
    /// synced (it holds nothing to protect, and is removed at the next open).
    pub(crate) fn seal(&mut self) -> Result<()> {
        self.sync()?;
        if self.log.offset() == crate::log::FIRST_BATCH_OFFSET {
            return Ok(());
        }
        // The seal is not data: readers' end (value-pointer validity) stays before it.
        if let Err(e) = self.log.seal() {
            return Err(self.poison("seal", e));
        }
        Ok(())
    }

    /// The first failure, if poisoned.
    #[cfg(test)]
    pub(crate) fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(first) => Err(Error::Poisoned(first.clone())),
            None => Ok(()),
        }
    }

    /// Records the first failure and hands back its error.
    pub(crate) fn poison(&mut self, op: &str, e: Error) -> Error {
        if self.poisoned.is_none() {
            self.poisoned = Some(format!("value log {op} failed: {e}"));
        }
        e
    }
}

/// Creates value-log file `id` in `dir` durably; its writer and its reader view.
fn create_file(
    storage: &dyn Storage,
    dir: &Path,
    id: u32,
    keys: Option<&KeyRegistry>,
) -> Result<(LogWriter, Arc<VlogFile>)> {
    let path = dir.join(vlog_file_name(id));
    let cipher = keys.map(KeyRegistry::cipher_for_new_file).transpose()?;
    let header = match &cipher {
        Some(c) => LogHeader::encrypted(LogKind::ValueLog, u64::from(id), c),
        None => LogHeader::new(LogKind::ValueLog, u64::from(id)),
    };
    let log = LogWriter::create_in(storage, &path, header, cipher.clone())?;
    let file = VlogFile::new(id, Arc::clone(log.file()), log.offset(), cipher);
    Ok((log, Arc::new(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RotationLimits = RotationLimits {
        max_file_size_bytes: 1000,
        max_entries: 10,
    };

    #[test]
    fn groups_go_to_a_new_file_only_when_the_active_one_is_full() {
        // Proves each rotation trigger (size, entries, u32 end) by example, and that a file
        // holding no batch takes any group that fits a pointer.
        let at = FIRST_BATCH_OFFSET;
        let place =
            |offset, entries, records, len| place_group(offset, entries, records, len, LIMITS);
        assert_eq!(place(at, 0, 1, 100).unwrap(), Placement::Active);
        assert_eq!(place(999, 5, 5, 100).unwrap(), Placement::Active);
        assert_eq!(place(1000, 5, 1, 100).unwrap(), Placement::NewFile);
        assert_eq!(place(500, 5, 6, 100).unwrap(), Placement::NewFile);
        assert_eq!(place(at, 0, 50, 1 << 30).unwrap(), Placement::Active);
        let big = MAX_POINTER_END - 500;
        assert_eq!(place(600, 1, 1, big).unwrap(), Placement::NewFile);
        assert_eq!(place(at, 0, 1, big).unwrap(), Placement::Active);
    }

    #[test]
    fn batches_are_greedy_runs_within_the_limit_covering_every_record_once() {
        // Proves `batches` cuts records into consecutive non-empty runs that together are the
        // input, each within BATCH_RECORD_BYTES unless it is one larger record, each as long
        // as it can be (the next record would pass the limit), counting tags when sealed; and
        // `batch_len` is their bytes plus one header each.
        let key = [7u8; 16];
        let sizes = [
            10usize,
            1 << 20,
            3 << 20,
            2 << 20,
            5 << 20,
            100,
            100,
            4 << 20,
            1,
        ];
        let values: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![1u8; n]).collect();
        let recs: Vec<RecordRef<'_>> = values
            .iter()
            .map(|v| RecordRef {
                meta: 0,
                user_meta: 0,
                expires_at: 0,
                key: &key,
                value: v,
            })
            .collect();
        for sealed in [false, true] {
            let len =
                |b: &[RecordRef<'_>]| -> usize { b.iter().map(|r| r.encoded_len_in(sealed)).sum() };
            let cut: Vec<&[RecordRef<'_>]> = batches(&recs, sealed).collect();
            let mut at = 0;
            for b in &cut {
                assert!(!b.is_empty());
                assert_eq!(b.as_ptr(), recs[at..].as_ptr(), "not consecutive");
                assert!(len(b) <= BATCH_RECORD_BYTES || b.len() == 1);
                at += b.len();
                if let Some(next) = recs.get(at) {
                    let with_next = len(b) + next.encoded_len_in(sealed);
                    assert!(with_next > BATCH_RECORD_BYTES, "batch could take one more");
                }
            }
            assert_eq!(at, recs.len());
            let expected: usize = cut.iter().map(|b| BATCH_HEADER_LEN + len(b)).sum();
            assert_eq!(batch_len(&recs, sealed).unwrap(), expected as u64);
            assert_eq!(
                cut.len(),
                7,
                "{:?}",
                cut.iter().map(|b| b.len()).collect::<Vec<_>>()
            );
        }
        assert!(batches(&[], false).next().is_none());
        // Two records whose encodings fit the writer's retained buffer but not with a batch
        // header: they go as two batches.
        let retained = LogWriter::RETAINED_BUFFER_BYTES;
        let probe = vec![2u8; retained / 2];
        let probe = RecordRef {
            value: &probe,
            ..recs[0]
        };
        let overhead = probe.encoded_len() - probe.value.len();
        let v = vec![2u8; (retained - 16) / 2 - overhead];
        let pair = [RecordRef {
            value: &v,
            ..recs[0]
        }; 2];
        let both: usize = pair.iter().map(|r| r.encoded_len()).sum();
        assert!(
            both <= retained && both + BATCH_HEADER_LEN > retained,
            "{both}"
        );
        assert_eq!(batches(&pair, false).count(), 2);
    }

    #[test]
    fn a_group_past_u32_offsets_is_refused() {
        // Proves a batch that cannot end within u32 even at the start of a new file is
        // ValueTooLarge, whatever the active file holds, including at the exact boundary.
        let exact = MAX_POINTER_END - FIRST_BATCH_OFFSET;
        let place = |offset, len| place_group(offset, 1, 1, len, LIMITS);
        assert_eq!(place(FIRST_BATCH_OFFSET, exact).unwrap(), Placement::Active);
        assert_eq!(place(2000, exact).unwrap(), Placement::NewFile);
        for offset in [FIRST_BATCH_OFFSET, 2000, MAX_POINTER_END] {
            assert!(matches!(
                place(offset, exact + 1),
                Err(Error::ValueTooLarge { .. })
            ));
        }
        assert!(matches!(
            place(2000, u64::MAX),
            Err(Error::ValueTooLarge { .. })
        ));
    }
}

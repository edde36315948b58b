//! The seal: the last batch of a log that was complete when it was closed or rotated
//! (DESIGN.md rule 12).
//!
//! ```text
//! seal_batch  := batch_header(count = 1, batch_offset = P, synced_offset = P) seal_record
//! seal_record := meta 0 | user_meta 0 | key_len | value_len 0 | expires_at 0
//!                | "!settdb!seal" ‖ version 0 (8 bytes) | record_crc          SEAL_BATCH_LEN bytes
//! ```
//!
//! The writer syncs the log before it writes the seal, so the seal's `synced_offset` is its own
//! offset: every byte before it was durable. Replay therefore reports damage anywhere before a
//! seal as corruption (log.md, "Reading: replay"), and a log that must be sealed but does not
//! end in a seal was cut. Nothing is ever written after a seal. Normative page:
//! docs/format/log.md ("Sealing").

use super::batch::ReplayBatch;
use super::format::{BatchHeader, LogKind, BATCH_HEADER_LEN, FIRST_BATCH_OFFSET};
use super::record::{decode_record, RecordRef};
use crate::error::Result;
use crate::io::StorageFile;
use crate::key::{self, INTERNAL_KEY_PREFIX};

/// User key of the seal record (internal: no user key can start with the reserved prefix).
const SEAL_USER_KEY: &[u8] = b"!settdb!seal";

const _: () = assert!(SEAL_USER_KEY.len() > INTERNAL_KEY_PREFIX.len());

/// The seal record's internal key (user key at version 0).
pub(crate) fn seal_key() -> Vec<u8> {
    key::key_with_version(SEAL_USER_KEY, 0)
}

/// The seal record, borrowing `key` (from [`seal_key`]).
pub(crate) fn seal_record(key: &[u8]) -> RecordRef<'_> {
    RecordRef {
        meta: 0,
        user_meta: 0,
        expires_at: 0,
        key,
        value: &[],
    }
}

/// Bytes of a seal batch, header included.
pub fn seal_batch_len() -> u64 {
    let key = seal_key();
    BATCH_HEADER_LEN as u64 + seal_record(&key).encoded_len() as u64
}

pub(crate) fn is_seal_record(r: &RecordRef<'_>) -> bool {
    r.meta == 0
        && r.user_meta == 0
        && r.expires_at == 0
        && r.value.is_empty()
        && r.key == seal_key().as_slice()
}

/// True if `batch` is a seal.
pub(crate) fn is_seal(batch: &ReplayBatch<'_>) -> bool {
    batch.len() == 1 && batch.get(0).is_some_and(|(_, r)| is_seal_record(&r))
}

/// True if the log in `file` (of `kind`, id `file_id`, header already checked) ends in a valid
/// seal written where it lies, found by reading only its last [`seal_batch_len`] bytes: the
/// check for a sealed file that is not replayed at open (an older value-log file). A file that
/// was cut, grew, or whose last bytes were damaged is not sealed.
pub fn ends_sealed(file: &dyn StorageFile, kind: LogKind, file_id: u64) -> Result<bool> {
    let len = file.len()?;
    let seal_len = seal_batch_len();
    if len < FIRST_BATCH_OFFSET + seal_len {
        return Ok(false);
    }
    let at = len - seal_len;
    let bytes = file.read_vec_at(at, seal_len as usize)?;
    let Some((head, body)) = bytes.split_at_checked(BATCH_HEADER_LEN) else {
        return Ok(false);
    };
    let Ok(header) = BatchHeader::decode(head, kind, file_id) else {
        return Ok(false);
    };
    if header.batch_offset != at || header.synced_offset != at || header.count != 1 {
        return Ok(false);
    }
    Ok(matches!(decode_record(body), Ok((r, used)) if used == body.len() && is_seal_record(&r)))
}

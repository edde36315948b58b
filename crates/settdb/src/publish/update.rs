//! [`Update`]: one committed write as a subscription delivers it, and [`Publishable`], what
//! the writer hands the publisher for each entry it applied.

use bytes::Bytes;

/// One committed write of a key, as a subscription delivers it (`Db::subscribe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The user key (no version suffix).
    pub key: Bytes,
    /// The value written, whole even when it went to the value log; empty for a delete.
    pub value: Bytes,
    /// The version (commit timestamp) it was written at.
    pub version: u64,
    /// Expiry in unix seconds; 0 never.
    pub expires_at: u64,
    /// The user meta byte (Badger delivers it as `KV.Meta`).
    pub user_meta: u8,
    /// True for a delete (a tombstone).
    pub is_delete: bool,
}

/// Bytes an update counts against a subscription's buffer: key, value and a fixed overhead.
pub(crate) const UPDATE_OVERHEAD_BYTES: u64 = 48;

impl Update {
    /// Bytes this update counts against a subscription's buffer.
    pub(crate) fn charge_bytes(&self) -> u64 {
        (self.key.len() + self.value.len()) as u64 + UPDATE_OVERHEAD_BYTES
    }
}

/// An entry the writer applied, as the publisher reads it. Implemented by the write path's
/// entry type, so the publisher needs nothing of that layer.
pub(crate) trait Publishable {
    /// The user key.
    fn user_key(&self) -> &[u8];
    /// The update to deliver (called only for an entry some subscription matches).
    fn to_update(&self) -> Update;
}

//! `Entry`: a key and value with the options a write can carry (TTL, user meta, discard
//! earlier versions).

use std::time::Duration;

use bytes::Bytes;

use crate::into_bytes::IntoBytes;
use crate::value::meta;

/// A write: key, value and options. Build with [`Entry::new`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
    pub(crate) user_meta: u8,
    pub(crate) expires_at: u64,
    pub(crate) meta: u8,
}

impl Entry {
    /// An entry setting `key` to `value`.
    pub fn new(key: impl IntoBytes, value: impl IntoBytes) -> Self {
        Entry {
            key: key.into_bytes(),
            value: value.into_bytes(),
            user_meta: 0,
            expires_at: 0,
            meta: 0,
        }
    }

    /// Expires the entry `ttl` from now (whole seconds, rounded up; reads and iterators stop
    /// seeing it then, and compaction drops it).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        self.expires_at = crate::clock::now_secs().saturating_add(secs.max(1));
        self
    }

    /// Expires the entry at unix time `expires_at` (seconds; 0 never).
    #[must_use]
    pub fn with_expires_at(mut self, expires_at: u64) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// Attaches a byte of user metadata, returned by reads as `user_meta`.
    #[must_use]
    pub fn with_user_meta(mut self, user_meta: u8) -> Self {
        self.user_meta = user_meta;
        self
    }

    /// Lets compaction discard every older version of the key once no reader needs them.
    #[must_use]
    pub fn with_discard(mut self) -> Self {
        self.meta |= meta::DISCARD_EARLIER_VERSIONS;
        self
    }

    /// A tombstone for `key` (for [`Db::write`](crate::Db::write); transactions and batches
    /// have `delete`).
    pub fn delete(key: impl IntoBytes) -> Self {
        Entry {
            key: key.into_bytes(),
            value: Bytes::new(),
            user_meta: 0,
            expires_at: 0,
            meta: meta::DELETE,
        }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// Expiry, unix seconds (0 never).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The user meta byte.
    pub fn user_meta(&self) -> u8 {
        self.user_meta
    }

    /// Bytes this entry counts against a transaction's size limit
    /// ([`Options::entry_charge`](crate::Options)).
    pub(crate) fn charge(&self, opts: &crate::Options) -> u64 {
        opts.entry_charge(self.key.len(), self.value.len())
    }
}

//! [`Item`]: one version of one key as a [`crate::DbIterator`] yields it (Badger's `Item`).
//!
//! An item owns copies of its key and metadata and either its inline value or the value
//! pointer into the value log plus a handle on the log, so it stays readable after the
//! iterator moved on or was dropped. A value-log value is read (record checksum and owner key
//! checked) once, eagerly when the iterator prefetches values or on the first call to
//! [`Item::value`] / [`Item::value_with`], and kept. A failed read is returned as the error it
//! is, every time it is asked for (Badger instead logs and returns an empty value).

use std::fmt;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use crate::coding::uvarint_len;
use crate::error::{Error, Result};
use crate::key::{key_with_version, VERSION_LEN};
use crate::log::{Arena, OwnedRecord, RecordRef};
use crate::value::{is_expired, meta, ValuePointer, ValueRef};
use crate::vlog::VlogPin;

/// One version of one key.
#[derive(Clone, Default)]
pub struct Item {
    key: Vec<u8>,
    version: u64,
    meta: u8,
    user_meta: u8,
    expires_at: u64,
    /// Deleted or expired at the iterator's clock (taken when it was created).
    deleted_or_expired: bool,
    /// The value when stored inline; empty when `pointer` is set.
    inline: Vec<u8>,
    /// Where the value lives in the value log, if it does.
    pointer: Option<ValuePointer>,
    /// The log `pointer` points into; `Some` exactly when `pointer` is.
    vlog: Option<VlogPin>,
    /// The record read through `pointer`, once read. Kept whole: borrowing its value needs
    /// no move of the value to the front of the buffer.
    resolved: OnceLock<OwnedRecord>,
}

/// An item with no key and no value: what an iterator that is not valid shows.
pub(crate) static EMPTY_ITEM: Item = Item {
    key: Vec::new(),
    version: 0,
    meta: 0,
    user_meta: 0,
    expires_at: 0,
    deleted_or_expired: false,
    inline: Vec::new(),
    pointer: None,
    vlog: None,
    resolved: OnceLock::new(),
};

/// What [`Item::fill`] copies from one merged entry.
pub(crate) struct EntryView<'a> {
    /// The user key.
    pub user_key: &'a [u8],
    /// The version reported by [`Item::version`].
    pub version: u64,
    /// The value struct as stored.
    pub value: ValueRef<'a>,
    /// The decoded pointer when `value` holds one (checked by the caller).
    pub pointer: Option<(ValuePointer, &'a VlogPin)>,
}

impl Item {
    /// A new item for one version of `user_key` (a point read or a pending write), holding
    /// `pointer`'s pin (moved in, not cloned) when the value is in the value log.
    pub(crate) fn from_entry(
        user_key: &[u8],
        version: u64,
        value: ValueRef<'_>,
        pointer: Option<(ValuePointer, VlogPin)>,
        now_secs: u64,
    ) -> Item {
        let mut item = Item::default();
        item.fill_fields(user_key, version, &value, now_secs);
        match pointer {
            Some((vp, pin)) => {
                item.pointer = Some(vp);
                item.vlog = Some(pin);
            }
            None => item.set_inline(&value),
        }
        item
    }

    /// Overwrites this item with `e`, reusing the key and value buffers.
    pub(crate) fn fill(&mut self, e: EntryView<'_>, now_secs: u64) {
        self.fill_fields(e.user_key, e.version, &e.value, now_secs);
        match e.pointer {
            Some((vp, vlog)) => {
                self.pointer = Some(vp);
                if !self.vlog.as_ref().is_some_and(|v| v.same_as(vlog)) {
                    self.vlog = Some(vlog.clone());
                }
            }
            None => self.set_inline(&e.value),
        }
    }

    /// Everything but where the value lives.
    fn fill_fields(&mut self, user_key: &[u8], version: u64, value: &ValueRef<'_>, now_secs: u64) {
        self.key.clear();
        self.key.extend_from_slice(user_key);
        self.version = version;
        self.meta = value.meta;
        self.user_meta = value.user_meta;
        self.expires_at = value.expires_at;
        self.deleted_or_expired =
            value.meta & meta::DELETE != 0 || is_expired(value.expires_at, now_secs);
        self.inline.clear();
        self.resolved = OnceLock::new();
    }

    /// The value is `value`'s bytes, held inline.
    fn set_inline(&mut self, value: &ValueRef<'_>) {
        debug_assert_eq!(value.meta & meta::VALUE_POINTER, 0);
        self.pointer = None;
        self.vlog = None;
        self.inline.extend_from_slice(value.value);
    }

    /// Reads a value-log value now, keeping it; a failure is left for [`Item::value`] to
    /// report (the read is retried there).
    pub(crate) fn prefetch(&self) {
        if self.pointer.is_some() {
            let _ = self.resolve();
        }
    }

    /// The user key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The version (commit timestamp). A transaction's pending write reports the
    /// transaction's read timestamp.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Expiry in unix seconds; 0 means never.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The byte the writer attached to this version, opaque to SettDB.
    pub fn user_meta(&self) -> u8 {
        self.user_meta
    }

    /// The internal meta bits ([`crate::value::meta`]).
    pub fn meta(&self) -> u8 {
        self.meta
    }

    /// True for a delete, or a version expired when the iterator was created. Only
    /// [`crate::IteratorOptions::all_versions`] iterators yield such items.
    pub fn is_deleted_or_expired(&self) -> bool {
        self.deleted_or_expired
    }

    /// True if the writer asked for every older version of this key to be discarded.
    pub fn discard_earlier_versions(&self) -> bool {
        self.meta & meta::DISCARD_EARLIER_VERSIONS != 0
    }

    /// Bytes this version takes: key plus inline value, or the value-log record's length.
    pub fn estimated_size(&self) -> u64 {
        match self.pointer {
            Some(vp) => u64::from(vp.len),
            None => (self.key.len() + self.inline.len()) as u64,
        }
    }

    /// Length of the value in bytes, known without reading the value log (derived from the
    /// record length in the value pointer).
    pub fn value_size(&self) -> u64 {
        match self.pointer {
            Some(vp) => record_value_len(
                u64::from(vp.len)
                    - self
                        .vlog
                        .as_ref()
                        .map_or(0, VlogPin::record_overhead)
                        .min(u64::from(vp.len)),
                (self.key.len() + VERSION_LEN) as u64,
                self.expires_at,
            ),
            None => self.inline.len() as u64,
        }
    }

    /// A copy of the value. Errors: reading the value log (I/O, [`Error::ChecksumMismatch`],
    /// [`Error::Corruption`] for a record that is not this key's).
    pub fn value(&self) -> Result<Vec<u8>> {
        self.value_with(<[u8]>::to_vec)
    }

    /// The value, moved out of the item when it was already read (no copy).
    pub fn into_value(self) -> Result<Vec<u8>> {
        if self.pointer.is_none() {
            return Ok(self.inline);
        }
        self.resolve()?;
        let mut this = self;
        Ok(this
            .resolved
            .take()
            .map(OwnedRecord::into_value)
            .unwrap_or_default())
    }

    /// The value as [`Bytes`]: a value-log value not read before is read into `arena` and
    /// handed over there (no copy of its own, and not kept by the item); otherwise a copy.
    /// What streams put in their lists. Errors as [`Item::value`].
    pub(crate) fn value_in(&self, arena: &mut BytesMut) -> Result<Bytes> {
        if self.pointer.is_none() || self.resolved.get().is_some() {
            return self.value_with(Bytes::copy_from_slice);
        }
        let (vp, vlog) = self.pointer_and_log()?;
        let record = vlog.read_in(vp, &key_with_version(&self.key, self.version), Arena(arena))?;
        Ok(record.into_value_bytes())
    }

    /// Calls `f` with the value borrowed in place. Errors as [`Item::value`].
    pub fn value_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        match self.pointer {
            None => Ok(f(&self.inline)),
            Some(_) => Ok(f(self.resolve()?)),
        }
    }

    /// The value-log value, read on first use.
    fn resolve(&self) -> Result<&[u8]> {
        if let Some(r) = self.resolved.get() {
            return Ok(r.value());
        }
        let (vp, vlog) = self.pointer_and_log()?;
        let record = vlog.read(vp, &key_with_version(&self.key, self.version))?;
        Ok(self.resolved.get_or_init(|| record).value())
    }

    /// The value pointer and the log it points into (an item holds both or neither).
    fn pointer_and_log(&self) -> Result<(ValuePointer, &VlogPin)> {
        let (Some(vp), Some(vlog)) = (self.pointer, self.vlog.as_ref()) else {
            debug_assert!(false, "a value-log read without a pointer and its log");
            return Err(Error::InvalidRequest("item has no value-log value"));
        };
        Ok((vp, vlog))
    }
}

/// The value length of a value-log record of `record_len` bytes holding an internal key of
/// `key_len` bytes and `expires_at` (record layout: docs/format/log.md). The value length is
/// stored as a varint before it, so `record_len` fixes it: `len + uvarint_len(len)` grows
/// strictly with `len`. A length no value fits (a damaged pointer) gives the closest guess.
fn record_value_len(record_len: u64, key_len: u64, expires_at: u64) -> u64 {
    let empty = RecordRef {
        meta: 0,
        user_meta: 0,
        expires_at,
        key: &[],
        value: &[],
    }
    .encoded_len() as u64;
    // `empty` counts one-byte lengths for the empty key and value.
    let fixed = empty - 2 * uvarint_len(0) as u64 + uvarint_len(key_len) as u64 + key_len;
    let rest = record_len.saturating_sub(fixed);
    (1..=10u64)
        .filter_map(|n| rest.checked_sub(n))
        .find(|&len| uvarint_len(len) as u64 + len == rest)
        .unwrap_or(rest.saturating_sub(1))
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("key", &self.key.escape_ascii().to_string())
            .field("version", &self.version)
            .field("meta", &format_args!("{:#04x}", self.meta))
            .field("user_meta", &self.user_meta)
            .field("expires_at", &self.expires_at)
            .field("value_size", &self.value_size())
            .field("pointer", &self.pointer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inline_item(key: &[u8], version: u64, value: ValueRef<'_>, now: u64) -> Item {
        let mut item = Item::default();
        item.fill(
            EntryView {
                user_key: key,
                version,
                value,
                pointer: None,
            },
            now,
        );
        item
    }

    #[test]
    fn inline_item_reports_what_was_filled() {
        // Proves the accessors of an inline item, and that refilling replaces every field.
        let v = ValueRef {
            meta: meta::DISCARD_EARLIER_VERSIONS,
            user_meta: 7,
            expires_at: 0,
            value: b"hello",
        };
        let mut item = inline_item(b"k", 3, v, 100);
        assert_eq!(
            (item.key(), item.version(), item.user_meta()),
            (&b"k"[..], 3, 7)
        );
        assert!(item.discard_earlier_versions() && !item.is_deleted_or_expired());
        assert_eq!(item.value().unwrap(), b"hello");
        assert_eq!(item.value_with(|v| v.len()).unwrap(), 5);
        assert_eq!((item.value_size(), item.estimated_size()), (5, 6));
        let dead = ValueRef {
            meta: 0,
            user_meta: 0,
            expires_at: 100,
            value: b"",
        };
        item.fill(
            EntryView {
                user_key: b"other",
                version: 9,
                value: dead,
                pointer: None,
            },
            100,
        );
        assert!(item.is_deleted_or_expired() && !item.discard_earlier_versions());
        assert_eq!((item.key(), item.expires_at()), (&b"other"[..], 100));
        assert_eq!(item.clone().into_value().unwrap(), b"");
    }

    proptest! {
        #[test]
        fn value_len_inverts_the_record_length(key_len in 8usize..300, value_len in 0usize..70_000,
                                               expires_at in prop_oneof![Just(0u64), any::<u64>()]) {
            // Proves value_size's inversion equals the encoder's record length for any sizes.
            let key = vec![b'k'; key_len];
            let value = vec![0u8; value_len];
            let rec = RecordRef { meta: 0, user_meta: 0, expires_at, key: &key, value: &value };
            let got = record_value_len(rec.encoded_len() as u64, key_len as u64, expires_at);
            prop_assert_eq!(got, value_len as u64);
        }
    }
}

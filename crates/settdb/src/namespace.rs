//! Key namespaces (Badger's `NamespaceOffset`) and the set of banned ones.
//!
//! ```text
//! namespace of a user key := u64 big-endian at key[offset .. offset + 8]
//!                            (none when namespaces are off or the key is shorter)
//! ban record              := user key "!settdb!banned" ‖ ns u64 big-endian, version 1,
//!                            empty value
//! ```
//!
//! With `Options::namespace_offset >= 0`, a key of at least `offset + 8` bytes belongs to the
//! namespace stored at that offset (Badger asks for one byte more: `len > offset + 8`; a key
//! that ends with its namespace is in it here). Writes to a key of a banned namespace fail with
//! [`Error::BannedKey`], point reads fail the same way, and iterators skip its keys. A ban is
//! a record under SettDB's internal prefix (Badger's `!badger!banned` + ns, at version 1), read
//! back at open; it never deletes the namespace's data.
//!
//! Concurrency: the banned set is swapped whole (`ArcSwap`), so readers check it without a
//! lock; `banning` serializes bans (the record's write, then the publication).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::error::{Error, Result};

/// Bytes of a namespace in a key.
pub(crate) const NAMESPACE_LEN: usize = 8;

/// User-key prefix of the ban records (under SettDB's internal prefix `!settdb!`).
pub(crate) const BANNED_PREFIX: &[u8] = b"!settdb!banned";

/// Version the ban records are written at (as Badger): every read timestamp sees them.
pub(crate) const BAN_VERSION: u64 = 1;

/// The namespace of `key` with namespaces at `offset`, if the key is long enough.
pub(crate) fn namespace_of(key: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(NAMESPACE_LEN)?;
    let bytes: [u8; NAMESPACE_LEN] = key.get(offset..end)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The user key of the ban record of `ns`.
pub(crate) fn ban_record_key(ns: u64) -> Vec<u8> {
    [BANNED_PREFIX, &ns.to_be_bytes()[..]].concat()
}

/// The namespace a ban record's user key names; `None` for any other key.
pub(crate) fn banned_by_record(user_key: &[u8]) -> Option<u64> {
    let ns = user_key.strip_prefix(BANNED_PREFIX)?;
    Some(u64::from_be_bytes(ns.try_into().ok()?))
}

/// Where namespaces sit in keys, and which are banned. One per database, shared by the read
/// and the commit side.
#[derive(Debug)]
pub(crate) struct Namespaces {
    /// `None`: namespaces are off (`namespace_offset < 0`).
    offset: Option<usize>,
    /// The banned namespaces; swapped whole on a ban.
    banned: ArcSwap<BTreeSet<u64>>,
    /// Held across a ban's write and its publication.
    banning: Mutex<()>,
}

impl Namespaces {
    /// Namespaces at `namespace_offset` (negative: off), none banned yet.
    pub(crate) fn new(namespace_offset: i64) -> Self {
        Namespaces {
            offset: usize::try_from(namespace_offset).ok(),
            banned: ArcSwap::from_pointee(BTreeSet::new()),
            banning: Mutex::new(()),
        }
    }

    /// True if namespaces are on.
    pub(crate) fn enabled(&self) -> bool {
        self.offset.is_some()
    }

    /// The banned namespace `key` belongs to, if any.
    pub(crate) fn banned_namespace(&self, key: &[u8]) -> Option<u64> {
        let ns = namespace_of(key, self.offset?)?;
        let banned = self.banned.load();
        (!banned.is_empty() && banned.contains(&ns)).then_some(ns)
    }

    /// True if `key` belongs to a banned namespace.
    pub(crate) fn is_banned(&self, key: &[u8]) -> bool {
        self.banned_namespace(key).is_some()
    }

    /// `Err(BannedKey)` if `key` belongs to a banned namespace.
    pub(crate) fn check(&self, key: &[u8]) -> Result<()> {
        match self.banned_namespace(key) {
            Some(namespace) => Err(Error::BannedKey { namespace }),
            None => Ok(()),
        }
    }

    /// True if `ns` is banned.
    pub(crate) fn contains(&self, ns: u64) -> bool {
        self.banned.load().contains(&ns)
    }

    /// Publishes bans of `namespaces` (their records are durable, or being loaded at open).
    pub(crate) fn publish(&self, namespaces: impl IntoIterator<Item = u64>) {
        let mut next = BTreeSet::clone(&self.banned.load());
        next.extend(namespaces);
        self.banned.store(Arc::new(next));
    }

    /// The banned namespaces, ascending.
    pub(crate) fn banned(&self) -> Vec<u64> {
        self.banned.load().iter().copied().collect()
    }

    /// The lock a ban holds across its write and [`Namespaces::publish`].
    pub(crate) fn lock_banning(&self) -> MutexGuard<'_, ()> {
        self.banning.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_the_eight_big_endian_bytes_at_the_offset() {
        // Proves the namespace is read big-endian at the offset, and that a key ending with
        // its namespace is in it while a shorter one is in none.
        let key = [b"abc".as_slice(), &1234u64.to_be_bytes(), b"-k"].concat();
        assert_eq!(namespace_of(&key, 3), Some(1234));
        assert_eq!(namespace_of(&key[..11], 3), Some(1234));
        assert_eq!(namespace_of(&key[..10], 3), None);
        assert_eq!(namespace_of(b"key0", 0), None);
        assert_eq!(namespace_of(b"x", usize::MAX), None);
    }

    #[test]
    fn ban_records_round_trip_and_other_keys_are_not_records() {
        // Proves the record key names its namespace and nothing else parses as a record.
        for ns in [0, 1, 1234, u64::MAX] {
            let key = ban_record_key(ns);
            assert!(key.starts_with(crate::key::INTERNAL_KEY_PREFIX));
            assert_eq!(banned_by_record(&key), Some(ns));
        }
        assert_eq!(banned_by_record(b"!settdb!banned"), None);
        assert_eq!(banned_by_record(b"!settdb!banned123456789"), None);
        assert_eq!(banned_by_record(b"!settdb!seal"), None);
    }

    #[test]
    fn bans_apply_only_with_an_offset_and_only_to_their_namespace() {
        // Proves the check: off without an offset, a typed error naming the namespace for a
        // banned key, nothing for other namespaces or short keys.
        let key = |ns: u64| [&ns.to_be_bytes()[..], b"rest"].concat();
        let off = Namespaces::new(-1);
        off.publish([7]);
        assert!(!off.is_banned(&key(7)));
        let on = Namespaces::new(0);
        assert!(on.check(&key(7)).is_ok());
        on.publish([7]);
        assert!(matches!(
            on.check(&key(7)),
            Err(Error::BannedKey { namespace: 7 })
        ));
        assert!(on.check(&key(8)).is_ok());
        assert!(on.check(b"short").is_ok());
        assert_eq!(on.banned(), [7]);
    }
}

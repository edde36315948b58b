//! Sequences (Badger's `GetSequence`): unique, increasing `u64`s handed out from memory, with
//! a range of numbers (a lease) reserved in the database at a time.
//!
//! ```text
//! value under the sequence's key := lease_end u64 big-endian        8 bytes
//! ```
//!
//! `lease_end` is the first number no lease has reserved yet: Badger's layout, so a Badger
//! backup of the key (or a SettDB one restored into Badger) continues the sequence. Design
//! notes and the uniqueness argument: docs/design/sequence-and-merge.md.
//!
//! - A lease is one read-write transaction: read `lease_end` (0 if absent), write
//!   `lease_end + bandwidth`. Two leases of the same key that overlap in time conflict (each
//!   read the key the other wrote), and the loser retries, so no two leases share a number.
//! - A lease is made durable before a number of it is handed out (a sync when `sync_writes` is
//!   off), so a crash cannot bring back a `lease_end` below a number already handed out.
//! - [`Sequence::release`] writes back the first unused number only while this handle holds
//!   the newest lease (the stored `lease_end` is its own); otherwise the unused numbers are
//!   skipped. Dropping without `release` skips the rest of the lease: numbers are never
//!   handed out twice, but may be skipped.

use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::into_bytes::IntoBytes;
use crate::key::validate_key;
use crate::transaction::Txn;

/// Bytes of the stored lease end.
const LEASE_LEN: usize = 8;

/// Transactions a lease or release tries before giving up with [`Error::Conflict`]: each
/// conflict means another handle leased the same key meanwhile, so the database makes
/// progress; the bound only stops one handle from retrying forever.
const MAX_ATTEMPTS: u32 = 1000;

/// Longest pause between two tries, in microseconds. Retrying at once lets a handle lose to
/// the same faster rivals again and again (seen: 64 losses in a row with 4 handles on 2
/// busy cores); a growing, jittered pause lets the loser's next try land alone.
const MAX_BACKOFF_MICROS: u64 = 2000;

/// The part of a lease not handed out yet: `next..leased`.
#[derive(Debug, Clone, Copy)]
struct Lease {
    /// The next number to hand out.
    next: u64,
    /// The end of this handle's lease (exclusive); `next <= leased`.
    leased: u64,
}

/// A sequence of unique, increasing numbers stored under one key ([`Db::get_sequence`]).
///
/// `Send + Sync`: share it between threads (`&Sequence` or an `Arc`); calls are serialized
/// by an internal lock, which [`Sequence::next`] also holds while it takes a new lease. It
/// holds a clone of the [`Db`], so the database stays open until it is dropped too (an
/// explicit [`Db::close`] still closes it: later calls fail with `Closed`).
#[derive(Debug)]
pub struct Sequence {
    db: Db,
    key: Bytes,
    bandwidth: u64,
    /// GUARDED: the current lease; held across the lease and release transactions.
    lease: Mutex<Lease>,
}

impl Db {
    /// A sequence stored under `key` that leases `bandwidth` numbers at a time (Badger's
    /// `GetSequence`). It takes its first lease now: the first number it hands out is the
    /// value stored under `key` (an 8-byte big-endian number; 0 if absent). Several
    /// sequences may use the same key, from any threads: no number is handed out twice.
    /// Call [`Sequence::release`] before closing, or the rest of the lease is skipped.
    ///
    /// Errors: [`Error::ZeroBandwidth`]; invalid keys as [`crate::Txn::set`];
    /// [`Error::InvalidRequest`] in managed mode, read-only, or with `detect_conflicts` off
    /// (two leases could then reserve the same numbers); [`Error::BadSequenceValue`] if
    /// `key` holds something else; those of a transaction.
    ///
    /// ```
    /// # use settdb::{Db, Options};
    /// # let db = Db::open(Options::new("").with_in_memory(true))?;
    /// let seq = db.get_sequence("ids", 100)?;
    /// assert_eq!(seq.next()?, 0);
    /// assert_eq!(seq.next()?, 1);
    /// seq.release()?; // stores 2: the next handle starts there
    /// assert_eq!(db.get_sequence("ids", 100)?.next()?, 2);
    /// # Ok::<(), settdb::Error>(())
    /// ```
    pub fn get_sequence(&self, key: impl IntoBytes, bandwidth: u64) -> Result<Sequence> {
        let key = key.into_bytes();
        if bandwidth == 0 {
            return Err(Error::ZeroBandwidth);
        }
        validate_key(&key)?;
        self.check_sequence_allowed()?;
        let seq = Sequence {
            db: self.clone(),
            key,
            bandwidth,
            lease: Mutex::new(Lease { next: 0, leased: 0 }),
        };
        {
            let mut lease = seq.lock();
            seq.take_lease(&mut lease)?;
        }
        Ok(seq)
    }

    /// Refuses the modes in which leases cannot be transactions that conflict.
    fn check_sequence_allowed(&self) -> Result<()> {
        if self.is_managed() {
            return Err(Error::InvalidRequest(
                "sequences need a normal database: managed mode has no commit timestamps to lease with",
            ));
        }
        if self.options().read_only {
            return Err(Error::InvalidRequest(
                "sequences need a writable database: a lease is a write",
            ));
        }
        if !self.options().detect_conflicts {
            return Err(Error::InvalidRequest(
                "sequences need detect_conflicts: without it two leases could reserve the same numbers",
            ));
        }
        Ok(())
    }
}

impl Sequence {
    fn lock(&self) -> MutexGuard<'_, Lease> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key the lease end is stored under.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Numbers reserved per lease.
    pub fn bandwidth(&self) -> u64 {
        self.bandwidth
    }

    /// The next number: unique among every handle of this key, and larger than every number
    /// this handle handed out before. Takes a new lease (a transaction, and a sync when
    /// `sync_writes` is off) when the current one is used up; other callers wait meanwhile.
    ///
    /// Errors: those of the lease transaction ([`Error::Closed`], I/O, ...);
    /// [`Error::Conflict`] only if other handles leased this key on every one of many tries;
    /// [`Error::SequenceExhausted`] past `u64::MAX`.
    #[allow(clippy::should_implement_trait)] // fallible and shared: not an `Iterator`
    pub fn next(&self) -> Result<u64> {
        let mut lease = self.lock();
        if lease.next >= lease.leased {
            self.take_lease(&mut lease)?;
        }
        debug_assert!(lease.next < lease.leased);
        let n = lease.next;
        lease.next += 1;
        Ok(n)
    }

    /// Gives back the unused rest of the lease: stores the next number, if this handle holds
    /// the newest lease of the key (if another handle leased after it, the rest is skipped
    /// instead). The sequence stays usable: the next call to [`Sequence::next`] leases again.
    ///
    /// Errors: those of the transaction; [`Error::BadSequenceValue`] if the key was
    /// overwritten with something else.
    pub fn release(&self) -> Result<()> {
        let mut lease = self.lock();
        if lease.next == lease.leased {
            return Ok(());
        }
        self.retry(|| self.try_release(*lease))?;
        lease.leased = lease.next;
        Ok(())
    }

    /// Reserves `bandwidth` numbers from the stored lease end; durable before it returns.
    /// REQUIRES: the lease lock (`lease` is its guard's content).
    fn take_lease(&self, lease: &mut Lease) -> Result<()> {
        let (start, end) = self.retry(|| self.try_lease())?;
        if !self.db.options().sync_writes && !self.db.options().in_memory {
            // A lease lost in a crash would hand out its numbers again after reopen.
            self.db.sync()?;
        }
        debug_assert!(start < end);
        *lease = Lease {
            next: start,
            leased: end,
        };
        Ok(())
    }

    /// One lease transaction: returns the reserved range `start..end`.
    fn try_lease(&self) -> Result<(u64, u64)> {
        let mut txn = self.db.new_transaction(true)?;
        let start = self.stored(&mut txn)?.unwrap_or(0);
        let end = start
            .checked_add(self.bandwidth)
            .ok_or(Error::SequenceExhausted {
                next: start,
                bandwidth: self.bandwidth,
            })?;
        txn.set(self.key.clone(), end.to_be_bytes().to_vec())?;
        txn.commit()?;
        Ok((start, end))
    }

    /// One release transaction: stores `lease.next` if the stored lease end is still ours.
    fn try_release(&self, lease: Lease) -> Result<()> {
        let mut txn = self.db.new_transaction(true)?;
        if self.stored(&mut txn)? == Some(lease.leased) {
            txn.set(self.key.clone(), lease.next.to_be_bytes().to_vec())?;
            txn.commit()?;
        }
        Ok(())
    }

    /// The stored lease end, read in `txn` (so a concurrent lease conflicts with it).
    fn stored(&self, txn: &mut Txn) -> Result<Option<u64>> {
        let Some(item) = txn.get(&self.key)? else {
            return Ok(None);
        };
        let value = item.value()?;
        let bytes: [u8; LEASE_LEN] =
            value
                .as_slice()
                .try_into()
                .map_err(|_| Error::BadSequenceValue {
                    size_bytes: value.len() as u64,
                })?;
        Ok(Some(u64::from_be_bytes(bytes)))
    }

    /// Runs `attempt` again while it fails with a conflict, at most [`MAX_ATTEMPTS`] times,
    /// pausing longer after each conflict.
    fn retry<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut tries = 1;
        loop {
            match attempt() {
                Err(Error::Conflict) if tries < MAX_ATTEMPTS => {
                    std::thread::sleep(backoff(tries));
                    tries += 1;
                }
                other => return other,
            }
        }
    }
}

/// The pause after the `tries`-th conflict: up to `50 µs * tries`, at most
/// [`MAX_BACKOFF_MICROS`], jittered by the clock's nanoseconds (rivals that conflicted
/// together should not retry together).
fn backoff(tries: u32) -> std::time::Duration {
    let cap = (50 * u64::from(tries)).min(MAX_BACKOFF_MICROS);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    std::time::Duration::from_micros(1 + nanos % cap)
}

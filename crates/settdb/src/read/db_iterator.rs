//! [`DbIterator`]: a cursor over the keys of one snapshot at a read timestamp (Badger's
//! `Iterator`), plus a [`std::iter::Iterator`] adaptor yielding owned [`Item`]s.
//!
//! The sources ([`super::sources`]) are merged by [`MergeIterator`] into one stream of
//! internal keys, user key ascending and, within a key, version descending. The cursor turns
//! that stream into items as Badger's `parseItem` does:
//! - skipped: internal keys (under [`INTERNAL_KEY_PREFIX`]; kept for SettDB's own scans that
//!   ask for them), keys of banned namespaces ([`crate::namespace`]), versions above `read_ts`,
//!   and versions at or below `since_ts` (when it is not 0); a pending write is always visible;
//! - `all_versions`: every visible version is an item, deleted and expired ones included,
//!   except versions whose value lives in a value-log file GC retired before the iterator was
//!   created: GC retires a file only once each of its values is moved (the moved copy is the
//!   one seen) or dead (expired, or shadowed so that compaction may drop it: no reader can
//!   ask for it), so such a version is garbage compaction has not reached yet;
//! - otherwise: the newest visible version of each key is its item, and a key whose newest
//!   visible version is deleted or expired yields nothing. In reverse the versions of a key
//!   come oldest first, so the cursor walks all of them and keeps the last visible one.
//!
//! Invariant: the merged stream is positioned at the first entry not yet consumed, in the
//! iteration's direction; the current item was built from entries before it. A forward cursor
//! only ever moves the merge forward and a reverse one only backward, so the merge never
//! switches direction.
//!
//! Prefix: the cursor stays within the keys starting with the prefix; `rewind` starts at the
//! first of them (forward) or the last (reverse), and `seek` to a key outside them starts at
//! the nearest one in the iteration's direction (Badger instead ends the iteration, and in
//! reverse needs the caller to append `0xff` bytes to the prefix).
//!
//! Prefetch: with `prefetch_values` the current item's value is read from the value log as
//! soon as the cursor lands on it (no read-ahead and no per-item threads: Badger's
//! `PrefetchSize` has no counterpart). Expiry is judged against the clock when the iterator was created, so the items
//! of one iterator do not change while it runs.

use std::fmt;
use std::sync::Arc;

use super::item::{EntryView, Item, EMPTY_ITEM};
use super::iterator_options::IteratorOptions;
use super::prefix_range::PrefixRange;
use super::sources::{ReadSnapshot, PENDING_VERSION};
use crate::error::{Error, Result};
use crate::key::{append_version, user_key, version, INTERNAL_KEY_PREFIX};
use crate::namespace::Namespaces;
use crate::table::{KvIterator, MergeIterator, VecIterator};
use crate::value::meta;

/// A cursor over the items of one snapshot at one read timestamp.
///
/// Holds the snapshot it reads (memtables, tables, value log), so writes, flushes and
/// compactions that happen while it lives change nothing it yields, and the table files it
/// reads stay on disk until it is dropped.
///
/// Use: [`DbIterator::rewind`] or [`DbIterator::seek`], then [`DbIterator::item`] and
/// [`DbIterator::next`] while [`DbIterator::valid`]. Or use it as an [`Iterator`] of
/// `Result<Item>` (`for item in db.iter(opts)? { ... }`), which rewinds first if the cursor was
/// never positioned and ends after the first error. Method-call syntax `it.next()` means the
/// cursor step; the `Iterator` one is reached through the trait (`for`, adaptors,
/// `Iterator::next(&mut it)`).
///
/// Errors from positioning calls (I/O, corruption of a table or memtable entry) leave the
/// cursor invalid until the next `rewind` or `seek`.
pub struct DbIterator {
    merged: MergeIterator,
    snapshot: ReadSnapshot,
    opts: IteratorOptions,
    prefix: PrefixRange,
    read_ts: u64,
    /// Unix seconds at creation: the clock for expiry.
    now_secs: u64,
    /// An entry at [`PENDING_VERSION`] is a pending write (only when pending writes were given).
    has_pending: bool,
    /// The current item; meaningful only when `valid`.
    item: Item,
    valid: bool,
    /// The item being built; swapped with `item` when found, so both buffers are reused.
    scratch: Item,
    /// True once `rewind` or `seek` was called.
    positioned: bool,
    /// An error met while the `Iterator` adaptor advanced past an item it handed out.
    deferred: Option<Error>,
    /// Reused buffer for internal seek keys.
    seek_key: Vec<u8>,
    /// Keys of the namespaces banned here are skipped (`None`: namespaces are off).
    namespaces: Option<Arc<Namespaces>>,
    /// Internal keys are items too (SettDB's own scans of its records).
    internal_access: bool,
}

/// How the cursor treats the merged entry under it.
enum Entry {
    /// Past the prefix: the iteration is over.
    Stop,
    /// Not visible: internal key, or version outside `(since_ts, read_ts]`.
    Skip,
    /// Visible, with the version its item reports.
    Visible(u64),
}

impl DbIterator {
    /// A cursor over `snapshot` (plus a transaction's `pending` writes, which shadow committed
    /// versions: see [`super::sources`]) at `read_ts`, judging expiry at `now_secs`. Not
    /// positioned: call `rewind` or `seek` first.
    pub(crate) fn new(
        snapshot: ReadSnapshot,
        read_ts: u64,
        now_secs: u64,
        opts: IteratorOptions,
        pending: Option<VecIterator>,
    ) -> Self {
        let prefix = PrefixRange::new(&opts.prefix);
        let has_pending = pending.is_some();
        let merged = MergeIterator::new(snapshot.sources(pending, &prefix, opts.since_ts, true));
        DbIterator {
            merged,
            snapshot,
            opts,
            prefix,
            read_ts,
            now_secs,
            has_pending,
            item: Item::default(),
            valid: false,
            scratch: Item::default(),
            positioned: false,
            deferred: None,
            seek_key: Vec::new(),
            namespaces: None,
            internal_access: false,
        }
    }

    /// Skips the keys of the namespaces `namespaces` bans (checked as the cursor moves, so a
    /// ban takes effect in open iterators too).
    pub(crate) fn with_namespaces(mut self, namespaces: Arc<Namespaces>) -> Self {
        self.namespaces = namespaces.enabled().then_some(namespaces);
        self
    }

    /// Yields internal keys too (never for a user's iterator).
    pub(crate) fn with_internal_access(mut self) -> Self {
        self.internal_access = true;
        self
    }

    /// The read timestamp: versions above it are invisible.
    pub fn read_ts(&self) -> u64 {
        self.read_ts
    }

    /// Positions at the first item (the last in reverse) within the prefix.
    pub fn rewind(&mut self) -> Result<()> {
        self.start_positioning();
        let landed = self.position_at_start();
        self.land(landed)
    }

    /// Positions at the first item whose key is `>= key` (reverse: the last `<= key`), within
    /// the prefix. An empty `key` rewinds.
    pub fn seek(&mut self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return self.rewind();
        }
        self.start_positioning();
        let landed = if !self.opts.reverse {
            // Every key in the prefix is >= the prefix: start there if `key` is below it.
            let target = key.max(self.prefix.prefix());
            self.seek_key.clear();
            self.seek_key.extend_from_slice(target);
            // The newest possible version first, so pending writes are not stepped over.
            append_version(&mut self.seek_key, PENDING_VERSION);
            self.merged.seek(&self.seek_key)
        } else if self.prefix.end().is_some_and(|end| key >= end) {
            self.position_at_prefix_end()
        } else {
            self.seek_key.clear();
            self.seek_key.extend_from_slice(key);
            // Version 0 sorts after every version of `key`: all of them are included.
            append_version(&mut self.seek_key, 0);
            self.merged.seek_for_prev(&self.seek_key)
        };
        self.land(landed)
    }

    /// True if positioned at an item.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// True if positioned at an item whose key starts with `prefix`.
    pub fn valid_for_prefix(&self, prefix: &[u8]) -> bool {
        self.valid && self.item.key().starts_with(prefix)
    }

    /// The current item. When not [`DbIterator::valid`], an empty item (no key, no value).
    pub fn item(&self) -> &Item {
        if self.valid {
            &self.item
        } else {
            &EMPTY_ITEM
        }
    }

    /// Moves to the next item (the previous key in reverse). Errors: [`Error::InvalidRequest`]
    /// when not valid; I/O and corruption from the sources.
    #[allow(clippy::should_implement_trait)] // the cursor step; the trait is implemented too
    pub fn next(&mut self) -> Result<()> {
        if !self.valid {
            return Err(Error::InvalidRequest(
                "next on an iterator that is not positioned at an item",
            ));
        }
        self.advance()
    }

    fn start_positioning(&mut self) {
        self.positioned = true;
        self.valid = false;
        self.deferred = None;
    }

    /// Moves the merge to where the iteration starts.
    fn position_at_start(&mut self) -> Result<()> {
        if self.opts.reverse {
            return self.position_at_prefix_end();
        }
        if self.prefix.prefix().is_empty() {
            return self.merged.seek_to_first();
        }
        self.seek_key.clear();
        self.seek_key.extend_from_slice(self.prefix.prefix());
        append_version(&mut self.seek_key, PENDING_VERSION);
        self.merged.seek(&self.seek_key)
    }

    /// Moves the merge (backward) to the last entry whose user key is in the prefix range.
    fn position_at_prefix_end(&mut self) -> Result<()> {
        let Some(end) = self.prefix.end() else {
            return self.merged.seek_to_last();
        };
        self.seek_key.clear();
        self.seek_key.extend_from_slice(end);
        append_version(&mut self.seek_key, PENDING_VERSION);
        self.merged.seek_for_prev(&self.seek_key)?;
        // Only an entry `end@u64::MAX` can be <= the seek key and not below `end`; pending
        // writes outside the prefix were dropped, so it never exists today, but the check costs nothing.
        while self.merged.valid() && user_key(self.merged.key()) >= end {
            self.merged.prev()?;
        }
        Ok(())
    }

    /// Builds the first item after a positioning of the merge.
    fn land(&mut self, positioned: Result<()>) -> Result<()> {
        positioned?;
        self.advance()
    }

    /// Finds the next item from the merge's position and makes it current.
    fn advance(&mut self) -> Result<()> {
        let found = if self.opts.reverse {
            self.find_reverse()
        } else {
            self.find_forward()
        };
        self.valid = matches!(found, Ok(true));
        if self.valid {
            std::mem::swap(&mut self.item, &mut self.scratch);
            if self.opts.prefetch_values {
                self.item.prefetch();
            }
        }
        found.map(|_| ())
    }

    fn classify(&self) -> Entry {
        let key = self.merged.key();
        let uk = user_key(key);
        if !self.prefix.contains(uk) {
            return Entry::Stop;
        }
        if is_internal(uk) {
            if !self.internal_access {
                return Entry::Skip;
            }
        } else if self.namespaces.as_ref().is_some_and(|n| n.is_banned(uk)) {
            return Entry::Skip;
        }
        let v = version(key);
        if v == PENDING_VERSION && self.has_pending {
            return Entry::Visible(self.read_ts);
        }
        if v > self.read_ts || (self.opts.since_ts > 0 && v <= self.opts.since_ts) {
            return Entry::Skip;
        }
        Entry::Visible(v)
    }

    /// Forward: the newest version of a key comes first. Leaves the merge past the item's key
    /// (past the item alone with `all_versions`).
    fn find_forward(&mut self) -> Result<bool> {
        loop {
            if !self.merged.valid() {
                return Ok(false);
            }
            let v = match self.classify() {
                Entry::Stop => return Ok(false),
                Entry::Skip => {
                    self.merged.next()?;
                    continue;
                }
                Entry::Visible(v) => v,
            };
            if self.opts.all_versions && self.value_was_retired() {
                self.merged.next()?;
                continue;
            }
            self.fill_scratch(v)?;
            self.merged.next()?;
            if self.opts.all_versions {
                return Ok(true);
            }
            self.skip_older_versions()?;
            if !self.scratch.is_deleted_or_expired() {
                return Ok(true);
            }
        }
    }

    /// Moves the merge past the older versions of the current item's key: one step at a time
    /// for the first [`MAX_SEQUENTIAL_SKIPS`], then one seek past the key. A key updated
    /// thousands of times has that many versions in the memtables and L0 until compaction
    /// drops them, and a scan that steps over each (a merge step and a key comparison per
    /// version) cost YCSB E 30% against fjall after the update-heavy workloads; the seek costs
    /// a few binary searches whatever the count (RocksDB's `max_sequential_skip_in_iterations`).
    fn skip_older_versions(&mut self) -> Result<()> {
        let mut steps = 0;
        while self.merged.valid() && user_key(self.merged.key()) == self.scratch.key() {
            if steps == MAX_SEQUENTIAL_SKIPS {
                self.seek_key.clear();
                self.seek_key.extend_from_slice(self.scratch.key());
                // The key's oldest possible version: the merge lands on it or past the key.
                append_version(&mut self.seek_key, 0);
                self.merged.seek(&self.seek_key)?;
                steps = 0;
                continue;
            }
            self.merged.next()?;
            steps += 1;
        }
        Ok(())
    }

    /// Reverse: the versions of a key come oldest first, so without `all_versions` every one is
    /// looked at and the last visible (the newest) is the candidate. Leaves the merge before the
    /// item's key (before the item alone with `all_versions`).
    fn find_reverse(&mut self) -> Result<bool> {
        loop {
            if !self.merged.valid() {
                return Ok(false);
            }
            let v = match self.classify() {
                Entry::Stop => return Ok(false),
                Entry::Skip => {
                    self.merged.prev()?;
                    continue;
                }
                Entry::Visible(v) => v,
            };
            if self.opts.all_versions && self.value_was_retired() {
                self.merged.prev()?;
                continue;
            }
            self.fill_scratch(v)?;
            self.merged.prev()?;
            if self.opts.all_versions {
                return Ok(true);
            }
            while self.merged.valid() && user_key(self.merged.key()) == self.scratch.key() {
                if let Entry::Visible(v) = self.classify() {
                    self.fill_scratch(v)?;
                }
                self.merged.prev()?;
            }
            if !self.scratch.is_deleted_or_expired() {
                return Ok(true);
            }
        }
    }

    /// True if the merge's current entry points into a value-log file GC retired (module doc).
    fn value_was_retired(&self) -> bool {
        let value = self.merged.value();
        if value.meta & meta::VALUE_POINTER == 0 {
            return false;
        }
        match (value.value_pointer(), &self.snapshot.vlog) {
            (Some(vp), Some(pin)) => pin.names_retired_file(&vp),
            _ => false,
        }
    }

    /// Copies the merge's current entry into `scratch`, reporting `version`.
    fn fill_scratch(&mut self, version: u64) -> Result<()> {
        let key = self.merged.key();
        let value = self.merged.value();
        let pointer = if value.meta & meta::VALUE_POINTER != 0 {
            let bad = |why: &str| {
                let key = user_key(key).escape_ascii();
                Error::corruption(&*self.snapshot.dir, 0, format!("{why} (key \"{key}\")"))
            };
            let vp = value
                .value_pointer()
                .ok_or_else(|| bad("malformed value pointer in the LSM tree"))?;
            let vlog = self
                .snapshot
                .vlog
                .as_ref()
                .ok_or_else(|| bad("value pointer in a database without a value log"))?;
            Some((vp, vlog))
        } else {
            None
        };
        let entry = EntryView {
            user_key: user_key(key),
            version,
            value,
            pointer,
        };
        self.scratch.fill(entry, self.now_secs);
        Ok(())
    }
}

/// Older versions of a key a forward iteration steps over before it seeks past the key.
const MAX_SEQUENTIAL_SKIPS: u32 = 8;

/// True for keys under [`INTERNAL_KEY_PREFIX`]; the first byte rules out nearly every user
/// key without a call into memcmp.
fn is_internal(user_key: &[u8]) -> bool {
    user_key.first() == INTERNAL_KEY_PREFIX.first() && user_key.starts_with(INTERNAL_KEY_PREFIX)
}

impl Iterator for DbIterator {
    type Item = Result<Item>;

    /// The current item, moved out (no copy), then a step; rewinds first if the cursor was
    /// never positioned. An error is yielded once, then the iteration ends.
    fn next(&mut self) -> Option<Result<Item>> {
        if let Some(e) = self.deferred.take() {
            return Some(Err(e));
        }
        if !self.positioned {
            if let Err(e) = self.rewind() {
                return Some(Err(e));
            }
        }
        if !self.valid {
            return None;
        }
        let item = std::mem::take(&mut self.item);
        if let Err(e) = self.advance() {
            self.deferred = Some(e);
        }
        Some(Ok(item))
    }
}

impl fmt::Debug for DbIterator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbIterator")
            .field("read_ts", &self.read_ts)
            .field("opts", &self.opts)
            .field("sources", &self.merged.num_sources())
            .field("valid", &self.valid)
            .field("item", &self.item())
            .finish_non_exhaustive()
    }
}

//! [`Stream`]: every key of one snapshot, read by several threads in parallel and handed to one
//! callback in batches (Badger's `Stream`). Backups are built on it.
//!
//! How the work is split: the key space is cut at the first keys of the tables of the level
//! that holds the most tables (the bottom level of a settled database), so each range is about
//! one table's worth of data, and a table holding at least a 16th of that level is cut inside
//! at its block boundaries (a freshly written database may be a few large L0 tables, which
//! would leave all the work to one thread); the ranges are handed out largest first to
//! `num_threads` producer threads. Each producer iterates its range with its own iterator at
//! the stream's read timestamp (all versions, values not prefetched), reads values into a
//! shared arena, turns each key into [`Kv`]s with `key_to_list`, and sends batches of about
//! [`PRODUCER_BATCH_BYTES`] through a bounded channel; the calling thread gathers them into
//! lists of up to `max_batch_bytes` and calls `send`. So memory is bounded by the channel's
//! capacity times the producers' batch size, and `send` is never called from two threads.
//!
//! Order: within a range keys come in order; ranges arrive in any order (as in Badger).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use crate::backup::pb::{Kv, KvList};
use crate::backup::{one_byte, DROPPED_META};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::key::user_key;
use crate::levels::LevelsSnapshot;
use crate::log::{Arena, RecordAlloc};
use crate::read::{DbIterator, Item, IteratorOptions};
use crate::transaction::Txn;
use crate::value::meta;

/// Bytes a producer gathers before sending them to the `send` side.
pub const PRODUCER_BATCH_BYTES: usize = 4 << 20;

/// Ranges the key space is cut into at least, when its tables allow: several per producer
/// thread (up to 8 threads by default), so that threads finishing early take over the rest.
/// Not derived from the thread count, so that a stream's ranges (and a backup's stream ids)
/// do not depend on the machine.
const MIN_RANGES: usize = 16;

/// Default soft cap on the bytes of one list handed to `send` (Badger's `MaxSize`: 100 MB).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 100 << 20;

/// Decides whether a key is streamed, from its newest visible version.
pub type ChooseKey<'a> = Box<dyn Fn(&Item) -> bool + Send + Sync + 'a>;

/// Turns one key's versions into the KVs to stream (Badger's `KeyToList`).
pub type KeyToList<'a> = Box<dyn Fn(&mut KeyVersions<'_>) -> Result<Vec<Kv>> + Send + Sync + 'a>;

/// The versions of one key, newest first, as `key_to_list` sees them: a cursor that never
/// leaves the key.
pub struct KeyVersions<'it> {
    it: &'it mut DbIterator,
    key: Vec<u8>,
    started: bool,
    /// The producer's buffer that keys and values handed out as [`Bytes`] are read into.
    arena: &'it mut BytesMut,
}

impl std::fmt::Debug for KeyVersions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersions")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl KeyVersions<'_> {
    /// The user key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The next version of the key (the newest on the first call), deleted and expired ones
    /// included; `None` after the oldest visible one.
    pub fn next_version(&mut self) -> Result<Option<&Item>> {
        if self.started {
            if !self.it.valid() {
                return Ok(None);
            }
            self.it.next()?;
        }
        self.started = true;
        if self.it.valid() && self.it.item().key() == self.key.as_slice() {
            Ok(Some(self.it.item()))
        } else {
            Ok(None)
        }
    }

    /// The user key as [`Bytes`], copied into the stream's shared buffer (no allocation of
    /// its own).
    pub fn key_bytes(&mut self) -> Bytes {
        Arena(self.arena).copy_of(&self.key).freeze()
    }

    /// The value of the version [`KeyVersions::next_version`] returned last, as [`Bytes`]:
    /// a value-log value is read into the stream's shared buffer and handed over there (no
    /// allocation or copy of its own); an inline one is copied. Call it only after
    /// `next_version` returned a version. The buffer (1 MiB) is freed once every value read
    /// into it is dropped, so a value kept long after its neighbours keeps it all: copy a
    /// value that outlives the list it was read for.
    ///
    /// Errors: as [`Item::value`]; [`Error::InvalidRequest`] when no version is current.
    pub fn current_value(&mut self) -> Result<Bytes> {
        if !(self.started && self.it.valid() && self.it.item().key() == self.key.as_slice()) {
            return Err(Error::InvalidRequest(
                "current_value without a version from next_version",
            ));
        }
        self.it.item().value_in(self.arena)
    }
}

/// Badger's default `KeyToList` (`Stream.ToList`): the key's versions newest first, each with
/// its value, up to the first deleted or expired one (not included) or the first that
/// discards earlier versions (included); only the newest when `versions_to_keep` is 1.
pub fn live_versions(versions: &mut KeyVersions<'_>, versions_to_keep: u32) -> Result<Vec<Kv>> {
    let key = versions.key_bytes();
    let mut out = Vec::new();
    while let Some(item) = versions.next_version()? {
        if item.is_deleted_or_expired() {
            break;
        }
        let (user_meta, version, expires_at) =
            (item.user_meta(), item.version(), item.expires_at());
        let last = versions_to_keep == 1 || item.discard_earlier_versions();
        out.push(Kv {
            key: key.clone(),
            value: versions.current_value()?,
            user_meta: one_byte(user_meta),
            version,
            expires_at,
            ..Kv::default()
        });
        if last {
            break;
        }
    }
    Ok(out)
}

/// Badger's backup `KeyToList`: every version newest first with its meta (transaction bits
/// and the value-pointer bit cleared), deleted and expired versions without a value and ending
/// the key; a version that discards earlier versions is followed by a delete marker one
/// version below it, and ends the key.
pub fn backup_key_to_list(versions: &mut KeyVersions<'_>) -> Result<Vec<Kv>> {
    let key = versions.key_bytes();
    let mut out = Vec::new();
    while let Some(item) = versions.next_version()? {
        let dead = item.is_deleted_or_expired();
        let discard = item.discard_earlier_versions();
        let version = item.version();
        let kv = Kv {
            key: key.clone(),
            user_meta: one_byte(item.user_meta()),
            version,
            expires_at: item.expires_at(),
            meta: one_byte(item.meta() & !DROPPED_META),
            ..Kv::default()
        };
        out.push(Kv {
            value: if dead {
                Bytes::new()
            } else {
                versions.current_value()?
            },
            ..kv
        });
        if discard {
            out.push(Kv {
                key: key.clone(),
                version: version.saturating_sub(1),
                meta: one_byte(meta::DELETE),
                ..Kv::default()
            });
            break;
        }
        if dead {
            break;
        }
    }
    Ok(out)
}

impl Db {
    /// A parallel read of every key at a new read timestamp, handed to one callback in
    /// batches (Badger's `NewStream`); configure it and call [`Stream::run`]. Normal mode.
    pub fn stream(&self) -> Stream<'_> {
        Stream::new(self, None)
    }

    /// [`Db::stream`] at `read_ts` (Badger's `NewStreamAt`). Managed mode.
    pub fn stream_at(&self, read_ts: u64) -> Stream<'_> {
        Stream::new(self, Some(read_ts))
    }
}

/// A parallel read of one snapshot ([`Db::stream`], [`Db::stream_at`]); configure it, then
/// [`Stream::run`].
pub struct Stream<'db> {
    db: &'db Db,
    read_ts: Option<u64>,
    prefix: Vec<u8>,
    num_threads: usize,
    since_ts: u64,
    max_batch_bytes: usize,
    choose_key: Option<ChooseKey<'db>>,
    key_to_list: Option<KeyToList<'db>>,
    done_markers: bool,
}

impl std::fmt::Debug for Stream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("read_ts", &self.read_ts)
            .field("prefix", &self.prefix)
            .field("num_threads", &self.num_threads)
            .field("since_ts", &self.since_ts)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .finish_non_exhaustive()
    }
}

/// What a finished [`Stream::run`] went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// The read timestamp the stream read at.
    pub read_ts: u64,
    /// Keys handed to `key_to_list`.
    pub keys: u64,
    /// KVs handed to `send`.
    pub kvs: u64,
    /// Lists handed to `send`.
    pub batches: u64,
    /// The largest version among the KVs sent (0 if none).
    pub max_version: u64,
}

impl<'db> Stream<'db> {
    pub(crate) fn new(db: &'db Db, read_ts: Option<u64>) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        Stream {
            db,
            read_ts,
            prefix: Vec::new(),
            num_threads: threads.clamp(1, 8),
            since_ts: 0,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            choose_key: None,
            key_to_list: None,
            done_markers: false,
        }
    }

    /// Only keys starting with `prefix` (Badger's `Prefix`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Producer threads (Badger's `NumGo`); default: the machine's cores, at most 8. At least 1.
    #[must_use]
    pub fn num_threads(mut self, n: usize) -> Self {
        self.num_threads = n.max(1);
        self
    }

    /// Only versions strictly above `ts` (Badger v4's `SinceTs`).
    #[must_use]
    pub fn since_ts(mut self, ts: u64) -> Self {
        self.since_ts = ts;
        self
    }

    /// Soft cap on the bytes of one list handed to `send` (Badger's `MaxSize`); a single
    /// key's KVs are never split.
    #[must_use]
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes.max(1);
        self
    }

    /// After the last KV of each range, sends a KV with only `stream_id` and `stream_done`
    /// set (Badger's `SendDoneMarkers`): a [`crate::StreamWriter`] then finishes that
    /// stream's table at once. Off by default (backups never hold them).
    #[must_use]
    pub fn done_markers(mut self, on: bool) -> Self {
        self.done_markers = on;
        self
    }

    /// Streams only the keys for which `f` returns true, given the newest visible version
    /// (Badger's `ChooseKey`).
    #[must_use]
    pub fn choose_key(mut self, f: impl Fn(&Item) -> bool + Send + Sync + 'db) -> Self {
        self.choose_key = Some(Box::new(f));
        self
    }

    /// Turns each key's versions into KVs (Badger's `KeyToList`); default [`live_versions`]
    /// with the database's `num_versions_to_keep`.
    #[must_use]
    pub fn key_to_list(
        mut self,
        f: impl Fn(&mut KeyVersions<'_>) -> Result<Vec<Kv>> + Send + Sync + 'db,
    ) -> Self {
        self.key_to_list = Some(Box::new(f));
        self
    }

    /// Reads the snapshot and calls `send` with lists of KVs, on the calling thread, until
    /// every key is sent. Stops at the first error (of a producer or of `send`) and returns
    /// it.
    pub fn run(self, mut send: impl FnMut(KvList) -> Result<()>) -> Result<StreamSummary> {
        let max_bytes = self.max_batch_bytes;
        self.run_inner(&Ok, |rx, summary| gather(rx, max_bytes, summary, &mut send))
    }

    /// As [`Stream::run`], but each producer thread turns its batches (about
    /// [`PRODUCER_BATCH_BYTES`] of KVs, one range's keys in order) into `T` with `map`, and
    /// `send` gets them one by one, ungathered: work like encoding is then spread over the
    /// producers, and only what `send` does runs on the calling thread.
    pub fn run_mapped<T: Send>(
        self,
        map: &(dyn Fn(KvList) -> Result<T> + Sync),
        mut send: impl FnMut(T) -> Result<()>,
    ) -> Result<StreamSummary> {
        self.run_inner(map, |rx, summary| {
            for msg in rx {
                let batch = msg?;
                summary.add(&batch);
                send(batch.payload)?;
            }
            Ok(())
        })
    }

    fn run_inner<T: Send>(
        self,
        map: &(dyn Fn(KvList) -> Result<T> + Sync),
        consume: impl FnOnce(&Receiver<Result<Batch<T>>>, &mut StreamSummary) -> Result<()>,
    ) -> Result<StreamSummary> {
        // The read transaction registers the read timestamp, so compaction keeps what the
        // snapshot sees while the stream runs.
        let txn: Txn = match self.read_ts {
            Some(ts) => self.db.new_transaction_at(ts, false)?,
            None if self.db.is_managed() => {
                return Err(Error::InvalidRequest(
                    "a managed database streams (and backs up) at a read timestamp it picks: \
                     use stream_at(read_ts)",
                ))
            }
            None => self.db.new_transaction(false)?,
        };
        let read_ts = txn.read_ts();
        let ranges = Mutex::new(ranges_for(&self.db.levels(), &self.prefix, MIN_RANGES));
        let stop = AtomicBool::new(false);
        let default_list: KeyToList<'_> = {
            let keep = self.db.options().num_versions_to_keep;
            Box::new(move |v: &mut KeyVersions<'_>| live_versions(v, keep))
        };
        let key_to_list = self.key_to_list.as_ref().unwrap_or(&default_list);
        let producer = Producer {
            db: self.db,
            read_ts,
            opts: IteratorOptions::default()
                .with_all_versions(true)
                .with_prefetch_values(false)
                .with_prefix(self.prefix.clone())
                .with_since_ts(self.since_ts),
            choose_key: self.choose_key.as_ref(),
            key_to_list,
            ranges: &ranges,
            stop: &stop,
            done_markers: self.done_markers,
            map,
        };
        let (tx, rx) = sync_channel::<Result<Batch<T>>>(2 * self.num_threads);
        let mut summary = StreamSummary {
            read_ts,
            ..StreamSummary::default()
        };
        let outcome = std::thread::scope(|s| {
            for _ in 0..self.num_threads {
                let tx = tx.clone();
                let producer = &producer;
                s.spawn(move || producer.run(&tx));
            }
            drop(tx);
            let r = consume(&rx, &mut summary);
            // On an error, the producers see `stop` (or a closed channel) and end.
            stop.store(true, Ordering::Release);
            drop(rx);
            r
        });
        drop(txn);
        outcome.map(|()| summary)
    }
}

/// A producer's batch: one range's keys in order, as `T`, with what the summary counts.
struct Batch<T> {
    payload: T,
    keys: u64,
    kvs: u64,
    max_version: u64,
}

impl StreamSummary {
    fn add<T>(&mut self, b: &Batch<T>) {
        self.keys += b.keys;
        self.kvs += b.kvs;
        self.batches += 1;
        self.max_version = self.max_version.max(b.max_version);
    }
}

/// The calling thread's side of [`Stream::run`]: gathers the producers' lists up to
/// `max_bytes` and sends them.
fn gather(
    rx: &Receiver<Result<Batch<KvList>>>,
    max_bytes: usize,
    summary: &mut StreamSummary,
    send: &mut impl FnMut(KvList) -> Result<()>,
) -> Result<()> {
    let mut pending = KvList::default();
    let mut pending_bytes = 0usize;
    let mut flush = |pending: &mut KvList, bytes: &mut usize, summary: &mut StreamSummary| {
        if pending.kv.is_empty() {
            return Ok(());
        }
        *bytes = 0;
        summary.batches += 1;
        send(std::mem::take(pending))
    };
    for msg in rx {
        let b = msg?;
        summary.keys += b.keys;
        summary.kvs += b.kvs;
        summary.max_version = summary.max_version.max(b.max_version);
        let list = b.payload;
        let bytes = list_bytes(&list);
        if pending_bytes > 0 && pending_bytes + bytes > max_bytes {
            flush(&mut pending, &mut pending_bytes, summary)?;
        }
        pending.kv.extend(list.kv);
        pending_bytes += bytes;
        if pending_bytes >= max_bytes {
            flush(&mut pending, &mut pending_bytes, summary)?;
        }
    }
    flush(&mut pending, &mut pending_bytes, summary)
}

fn kv_bytes(kv: &Kv) -> usize {
    kv.key.len() + kv.value.len() + kv.user_meta.len() + kv.meta.len() + 24
}

fn list_bytes(list: &KvList) -> usize {
    list.kv.iter().map(kv_bytes).sum()
}

/// What every producer thread shares.
struct Producer<'a, 'db, T> {
    db: &'a Db,
    read_ts: u64,
    opts: IteratorOptions,
    choose_key: Option<&'a ChooseKey<'db>>,
    key_to_list: &'a KeyToList<'db>,
    ranges: &'a Mutex<Vec<KeyRange>>,
    stop: &'a AtomicBool,
    done_markers: bool,
    map: &'a (dyn Fn(KvList) -> Result<T> + Sync),
}

impl<T> Producer<'_, '_, T> {
    fn run(&self, tx: &SyncSender<Result<Batch<T>>>) {
        loop {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let next = self.ranges.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(range) = next else { return };
            if let Err(e) = self.stream_range(&range, tx) {
                self.stop.store(true, Ordering::Release);
                let _ = tx.send(Err(e));
                return;
            }
        }
    }

    /// Streams the keys of `range`; `Ok` also when the receiver went away (the stream is
    /// ending for another reason).
    /// Maps `list` into a batch for the channel.
    fn batch(&self, list: KvList, keys: u64) -> Result<Batch<T>> {
        let kvs = list.kv.iter().filter(|kv| !kv.stream_done).count() as u64;
        let max_version = list.kv.iter().map(|kv| kv.version).max().unwrap_or(0);
        Ok(Batch {
            payload: (self.map)(list)?,
            keys,
            kvs,
            max_version,
        })
    }

    fn stream_range(&self, range: &KeyRange, tx: &SyncSender<Result<Batch<T>>>) -> Result<()> {
        let mut it = self.db.iter_at(self.read_ts, self.opts.clone())?;
        it.seek(&range.start)?;
        let mut arena = BytesMut::new();
        let mut batch = KvList::default();
        let (mut bytes, mut keys) = (0usize, 0u64);
        while it.valid() {
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let key = it.item().key().to_vec();
            if range.end.as_ref().is_some_and(|end| key >= *end) {
                break;
            }
            if self.choose_key.is_none_or(|choose| choose(it.item())) {
                let mut versions = KeyVersions {
                    it: &mut it,
                    key,
                    started: false,
                    arena: &mut arena,
                };
                let mut kvs = (self.key_to_list)(&mut versions)?;
                for kv in &mut kvs {
                    kv.stream_id = range.id;
                }
                keys += 1;
                bytes += kvs.iter().map(kv_bytes).sum::<usize>();
                batch.kv.extend(kvs);
                let key = versions.key;
                skip_key(&mut it, &key)?;
            } else {
                skip_key(&mut it, &key)?;
            }
            if bytes >= PRODUCER_BATCH_BYTES {
                let b = self.batch(std::mem::take(&mut batch), keys)?;
                if tx.send(Ok(b)).is_err() {
                    return Ok(());
                }
                (bytes, keys) = (0, 0);
            }
        }
        if self.done_markers {
            batch.kv.push(Kv {
                stream_id: range.id,
                stream_done: true,
                ..Kv::default()
            });
        }
        if !batch.kv.is_empty() {
            let b = self.batch(batch, keys)?;
            let _ = tx.send(Ok(b));
        }
        Ok(())
    }
}

/// Moves `it` past every remaining version of `key`.
fn skip_key(it: &mut DbIterator, key: &[u8]) -> Result<()> {
    while it.valid() && it.item().key() == key {
        it.next()?;
    }
    Ok(())
}

/// A range of user keys `[start, end)` (`end: None`: to the last key) and the table bytes it
/// is estimated to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    /// The stream id of the KVs read from this range (1-based, as Badger numbers them).
    pub(crate) id: u32,
    pub(crate) start: Vec<u8>,
    pub(crate) end: Option<Vec<u8>>,
    pub(crate) bytes: u64,
}

/// Cuts the key space at `splits` (first keys of tables, with the bytes from each split to
/// the next), keeps the ranges that can hold keys starting with `prefix`, and orders them so
/// that `pop` hands out the largest first.
pub(crate) fn ranges_from_splits(mut splits: Vec<(Vec<u8>, u64)>, prefix: &[u8]) -> Vec<KeyRange> {
    splits.sort();
    splits.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    let mut ranges = Vec::with_capacity(splits.len() + 1);
    let mut start = Vec::new();
    let mut bytes = 0;
    for (key, size) in splits {
        if !key.is_empty() && key > start {
            ranges.push(KeyRange {
                id: 0,
                start: std::mem::replace(&mut start, key),
                end: None,
                bytes,
            });
            bytes = 0;
        }
        bytes += size;
    }
    ranges.push(KeyRange {
        id: 0,
        start,
        end: None,
        bytes,
    });
    for (i, r) in ranges.iter_mut().enumerate() {
        r.id = u32::try_from(i + 1).unwrap_or(u32::MAX);
    }
    for i in 1..ranges.len() {
        let next_start = ranges[i].start.clone();
        ranges[i - 1].end = Some(next_start);
    }
    ranges.retain(|r| may_hold_prefix(r, prefix));
    // `pop` takes from the back: smallest first in the vector.
    ranges.sort_by(|a, b| a.bytes.cmp(&b.bytes).then_with(|| b.start.cmp(&a.start)));
    ranges
}

/// True if some key starting with `prefix` may lie in `range`.
fn may_hold_prefix(range: &KeyRange, prefix: &[u8]) -> bool {
    if prefix.is_empty() {
        return true;
    }
    // Keys with the prefix are >= prefix; the range must end above it.
    if range.end.as_deref().is_some_and(|end| end <= prefix) {
        return false;
    }
    // A range starting above every key with the prefix holds none of them.
    range.start.as_slice() <= prefix || range.start.starts_with(prefix)
}

/// Key ranges for a stream over keys starting with `prefix`: the key space cut at the first
/// user keys of the tables of the level holding the most tables, and a table holding at
/// least a `pieces`-th of that level's bytes also at block boundaries inside it.
pub(crate) fn ranges_for(levels: &LevelsSnapshot, prefix: &[u8], pieces: usize) -> Vec<KeyRange> {
    let level = (0..levels.level_count())
        .max_by_key(|&l| (levels.tables(l).len(), l))
        .unwrap_or(0);
    let tables = levels.tables(level);
    // A table holding at least a `pieces`-th of the level is cut at its block boundaries
    // into `pieces` parts: a database of a few large tables (all of it in L0 after a bulk
    // write) would otherwise be one range, read by one thread. Every part count is the same
    // so that overlapping L0 tables, cut alike, still give `pieces` ranges and not fewer.
    let total: u64 = tables.iter().map(|t| t.table().size_bytes()).sum();
    let piece = (total / pieces.max(1) as u64).max(1);
    let mut splits = Vec::with_capacity(tables.len());
    for t in tables {
        let t = t.table();
        // An index that cannot be read only costs the finer cuts; reading the table reports it.
        let cuts = if t.size_bytes() >= piece {
            t.split_keys(pieces).unwrap_or_default()
        } else {
            Vec::new()
        };
        // Only the order ranges are handed out in depends on the byte estimates.
        let share = t.size_bytes() / (cuts.len() as u64 + 1);
        splits.push((user_key(t.smallest()).to_vec(), share));
        splits.extend(cuts.into_iter().map(|k| (k, share)));
    }
    ranges_from_splits(splits, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Vec<u8> {
        x.as_bytes().to_vec()
    }

    #[test]
    fn ranges_cover_the_key_space_once_and_come_largest_first() {
        // Proves the ranges tile the key space ([], a), [a, m), [m, ..) without gaps or
        // overlaps, sizes summed per range, and pop order largest first.
        let splits = vec![(s("m"), 5), (s("a"), 10), (s("m"), 2)];
        let mut r = ranges_from_splits(splits, b"");
        let mut order = Vec::new();
        while let Some(x) = r.pop() {
            order.push(x);
        }
        assert_eq!(order[0].bytes, 10);
        assert_eq!(order[0].start, s("a"));
        assert_eq!(order[0].end, Some(s("m")));
        assert_eq!(order[1].bytes, 7);
        assert_eq!(
            (order[1].start.clone(), order[1].end.clone()),
            (s("m"), None)
        );
        assert_eq!(
            (order[2].start.clone(), order[2].end.clone()),
            (s(""), Some(s("a")))
        );
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn ranges_that_cannot_hold_the_prefix_are_left_out() {
        // Proves a prefix keeps the ranges its keys can fall in: [c, f) holds "d..", [f, ..)
        // and [.., c) do not.
        let r = ranges_from_splits(vec![(s("c"), 1), (s("f"), 1)], b"d");
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].start.clone(), r[0].end.clone()),
            (s("c"), Some(s("f")))
        );
        // A range starting inside the prefix is kept; one ending exactly at it is not.
        let r = ranges_from_splits(vec![(s("d"), 1), (s("da"), 1)], b"d");
        let starts: Vec<_> = r.iter().map(|x| x.start.clone()).collect();
        assert!(starts.contains(&s("d")) && starts.contains(&s("da")));
        assert!(!starts.contains(&s("")));
    }
}

//! [`StreamWriter`]: bulk loading of sorted streams straight into tables at the last level
//! (Badger's `StreamWriter`), bypassing memtables, WAL and compaction. Large values still go
//! to the value log. Used by `settdb restore` into an empty database and `settdb stream`.
//!
//! Input: lists of KVs (the backup format's), each carrying a stream id; the KVs of one stream
//! come sorted (key ascending, versions newest first), and different streams cover disjoint
//! key ranges, which is what [`crate::Stream`] and Badger's streams produce. Each stream has
//! its own table builder, so streams may interleave freely; a `stream_done` KV ends its
//! stream's current table.
//!
//! Atomic across a crash (durability rules 5 and 11): the load is one MANIFEST operation,
//! begun before the first table exists; every table is synced, then the value log and the
//! directory, and one MANIFEST edit adds all tables to the last level and ends the operation.
//! A crash before that edit leaves the database as it was: the next open finds the operation
//! unfinished with its (empty) source intact and removes its tables. Values appended to the
//! value log by a load that did not finish stay as records no key points at; value-log GC
//! finds them dead and reclaims them. A load that fails or is cancelled removes its tables
//! and ends the operation at once.
//!
//! The database is held still for the whole load (writes queued meanwhile wait, compactions
//! and value-log GC pause) and must be empty when it starts.

use std::collections::HashMap;
use std::sync::Arc;

use crate::backup::pb::KvList;
use crate::backup::{check_kv, CheckedKv};
use crate::bulk_drop::{held_still, DropContext};
use crate::error::{Error, Result};
use crate::io::OpenMode;
use crate::key::{compare_keys, key_with_version};
use crate::levels::{LevelTable, Levels, LevelsEdit};
use crate::log::RecordRef;
use crate::manifest::{OpIds, OpSource};
use crate::options::Options;
use crate::table::{TableBuilder, TableBuilderOptions};
use crate::value::{meta, ValuePointer, ValueRef};
use crate::vlog::ValueLog;
use crate::write::{Signal, BYTES_PER_SYNC};

/// Streams with an open table builder at most; the least recently written one's table is
/// finished when another stream needs a builder (its later keys start a new table).
const MAX_OPEN_STREAMS: usize = 16;

/// Value-log bytes appended as one group at most: within the log writer's retained buffer
/// (4 MiB), so each group reuses its memory instead of faulting in a new buffer.
const VLOG_GROUP_BYTES: u64 = 4 << 20;

/// Bytes a value-log record takes beyond its key and value, at most (header varints, expiry,
/// checksum, an encrypted record's tag).
const RECORD_OVERHEAD: u64 = 48;

/// What a bulk load wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkLoadSummary {
    /// KVs written.
    pub kvs: u64,
    /// Tables written.
    pub tables: u64,
    /// Bytes of the tables.
    pub table_bytes: u64,
    /// Value bytes written to the value log.
    pub value_log_bytes: u64,
    /// The largest version written (0 if none).
    pub max_version: u64,
}

/// What a [`StreamWriter`] writes with; no reference to `Db`.
pub(crate) struct StreamWriterContext<'a> {
    pub(crate) opts: &'a Options,
    pub(crate) levels: &'a Levels,
    pub(crate) vlog: Option<&'a Arc<ValueLog>>,
    /// Raised to have the value log's appended bytes written back in the background, as the
    /// write path does, so the load's final sync does not write them all at once.
    pub(crate) writeback: &'a Signal,
}

/// One stream's table in progress.
struct OpenStream {
    /// The internal key last added (the next must sort after it).
    last_key: Vec<u8>,
    builder: Option<(u64, TableBuilder)>,
    /// When it was last written (for choosing which builder to finish).
    last_used: u64,
}

/// A bulk load in progress (module doc); created by [`crate::Db::bulk_load`].
pub struct StreamWriter<'a> {
    ctx: StreamWriterContext<'a>,
    builder_opts: TableBuilderOptions,
    last_level: usize,
    ids: OpIds,
    streams: HashMap<u32, OpenStream>,
    tables: Vec<Arc<LevelTable>>,
    clock: u64,
    summary: BulkLoadSummary,
    /// Set once a write failed: the load can only be cancelled.
    failed: bool,
    /// Set when the edit that ends the load failed: it may be durable.
    edit_uncertain: bool,
}

impl std::fmt::Debug for StreamWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("streams", &self.streams.len())
            .field("tables", &self.tables.len())
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl<'a> StreamWriter<'a> {
    /// Begins a load: one MANIFEST operation with no source.
    pub(crate) fn begin(ctx: StreamWriterContext<'a>) -> Result<Self> {
        let ids = ctx.levels.begin_op(8, OpSource::Tables(Vec::new()))?;
        let table_size = ctx
            .opts
            .base_table_size
            .saturating_mul(ctx.opts.table_size_multiplier.max(1));
        let last_level = ctx.opts.max_levels.saturating_sub(1).max(1);
        Ok(StreamWriter {
            builder_opts: TableBuilderOptions::from_options(ctx.opts, table_size),
            ctx,
            last_level,
            ids,
            streams: HashMap::new(),
            tables: Vec::new(),
            clock: 0,
            summary: BulkLoadSummary::default(),
            failed: false,
            edit_uncertain: false,
        })
    }

    /// Writes the KVs of `list` (module doc for the order they must come in).
    ///
    /// Errors: [`Error::InvalidRequest`] for a stream whose KVs are out of order; the checks
    /// of [`crate::Db::load`] on each KV ([`Error::BadBackup`] at offset 0); I/O errors. After
    /// an error the load can only end in failure: nothing it wrote is kept.
    pub fn write(&mut self, list: KvList) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidRequest("the bulk load failed earlier"));
        }
        let r = self.write_inner(list);
        self.failed = r.is_err();
        r
    }

    fn write_inner(&mut self, list: KvList) -> Result<()> {
        let mut entries: Vec<(u32, CheckedKv)> = Vec::with_capacity(list.kv.len());
        for (i, kv) in list.kv.into_iter().enumerate() {
            let stream = kv.stream_id;
            if kv.stream_done {
                self.finish_stream(stream)?;
                continue;
            }
            entries.push((stream, check_kv(kv, 0, i)?));
        }
        let ikeys: Vec<Vec<u8>> = entries
            .iter()
            .map(|(_, e)| key_with_version(&e.key, e.version))
            .collect();
        let pointers = self.append_values(&entries, &ikeys)?;
        let mut next_ptr = pointers.iter();
        for ((stream, e), ikey) in entries.iter().zip(&ikeys) {
            let ptr = if self.goes_to_value_log(e) {
                let p = next_ptr.next().ok_or(Error::InvalidRequest(
                    "bulk load: the value log returned fewer pointers than values",
                ))?;
                Some(p.encode())
            } else {
                None
            };
            let value = match &ptr {
                Some(p) => ValueRef {
                    meta: e.meta | meta::VALUE_POINTER,
                    user_meta: e.user_meta,
                    expires_at: e.expires_at,
                    value: p,
                },
                None => ValueRef {
                    meta: e.meta,
                    user_meta: e.user_meta,
                    expires_at: e.expires_at,
                    value: &e.value,
                },
            };
            self.add(*stream, ikey, value)?;
            self.summary.kvs += 1;
            self.summary.max_version = self.summary.max_version.max(e.version);
        }
        Ok(())
    }

    fn goes_to_value_log(&self, e: &CheckedKv) -> bool {
        self.ctx.vlog.is_some()
            && e.meta & meta::DELETE == 0
            && self.ctx.opts.goes_to_value_log(e.value.len())
    }

    /// Appends the large values of `entries` (internal keys `ikeys`) to the value log, in
    /// groups; their pointers in order.
    fn append_values(
        &mut self,
        entries: &[(u32, CheckedKv)],
        ikeys: &[Vec<u8>],
    ) -> Result<Vec<ValuePointer>> {
        let Some(vlog) = self.ctx.vlog else {
            return Ok(Vec::new());
        };
        let keys: Vec<(&Vec<u8>, &CheckedKv)> = entries
            .iter()
            .zip(ikeys)
            .filter(|((_, e), _)| self.goes_to_value_log(e))
            .map(|((_, e), k)| (k, e))
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        // A group also fits one value-log file, so files keep to their size.
        let cap = VLOG_GROUP_BYTES.min(self.ctx.opts.value_log_file_size);
        let mut group: Vec<RecordRef<'_>> = Vec::new();
        let mut group_bytes = 0u64;
        let mut ptrs = Vec::new();
        for (k, e) in &keys {
            let len = e.value.len() as u64;
            // The record's bytes: value, key and a header (lengths, expiry, checksum, tag).
            let record = len + k.len() as u64 + RECORD_OVERHEAD;
            if !group.is_empty() && group_bytes + record > cap {
                self.append_group(vlog, &group, &mut ptrs)?;
                out.append(&mut ptrs);
                group.clear();
                group_bytes = 0;
            }
            group.push(RecordRef {
                meta: e.meta,
                user_meta: e.user_meta,
                expires_at: e.expires_at,
                key: k,
                value: &e.value,
            });
            group_bytes += record;
            self.summary.value_log_bytes += len;
        }
        if !group.is_empty() {
            self.append_group(vlog, &group, &mut ptrs)?;
            out.append(&mut ptrs);
        }
        Ok(out)
    }

    /// Appends one group and asks for a background writeback once enough is unsynced.
    fn append_group(
        &self,
        vlog: &ValueLog,
        group: &[RecordRef<'_>],
        ptrs: &mut Vec<ValuePointer>,
    ) -> Result<()> {
        vlog.append(group, ptrs)?;
        if vlog.unwritten_back_bytes() >= BYTES_PER_SYNC {
            self.ctx.writeback.raise();
        }
        Ok(())
    }

    fn add(&mut self, stream: u32, key: &[u8], value: ValueRef<'_>) -> Result<()> {
        self.clock += 1;
        self.streams.entry(stream).or_insert_with(|| OpenStream {
            last_key: Vec::new(),
            builder: None,
            last_used: 0,
        });
        let needs_builder = self
            .streams
            .get(&stream)
            .is_some_and(|s| s.builder.is_none());
        // Counted only when a table starts (not per entry: a backup has a stream per range).
        let open_builders = || {
            self.streams
                .values()
                .filter(|s| s.builder.is_some())
                .count()
        };
        if needs_builder && open_builders() >= MAX_OPEN_STREAMS {
            let lru = self
                .streams
                .iter()
                .filter(|(_, s)| s.builder.is_some())
                .min_by_key(|(_, s)| s.last_used)
                .map(|(&id, _)| id);
            if let Some(id) = lru {
                self.finish_stream(id)?;
            }
        }
        let clock = self.clock;
        let s = self.streams.get_mut(&stream).expect("inserted above");
        if !s.last_key.is_empty() && compare_keys(&s.last_key, key).is_ge() {
            return Err(Error::InvalidRequest(
                "bulk load: the KVs of a stream must come sorted by key, newest version first \
                 (use load for unsorted backups)",
            ));
        }
        s.last_used = clock;
        s.last_key.clear();
        s.last_key.extend_from_slice(key);
        let split = s
            .builder
            .as_ref()
            .is_some_and(|(_, b)| b.should_split_before(key));
        if split {
            if let Some((id, b)) = s.builder.take() {
                let t = finish_table(self.ctx.levels, id, b)?;
                self.tables.push(t);
            }
        }
        let s = self.streams.get_mut(&stream).expect("inserted above");
        if s.builder.is_none() {
            let id = self.ctx.levels.new_table_id(&mut self.ids)?;
            let file = self
                .ctx
                .levels
                .storage()
                .open(&self.ctx.levels.table_path(id), OpenMode::CreateNew)?;
            let cipher = self.ctx.levels.new_table_cipher()?;
            s.builder = Some((
                id,
                TableBuilder::new(file, self.builder_opts)?.with_cipher(cipher),
            ));
        }
        match s.builder.as_mut() {
            Some((_, b)) => b.add(key, value),
            None => Ok(()),
        }
    }

    /// Finishes `stream`'s current table, if any.
    fn finish_stream(&mut self, stream: u32) -> Result<()> {
        let builder = self.streams.get_mut(&stream).and_then(|s| s.builder.take());
        if let Some((id, b)) = builder {
            let t = finish_table(self.ctx.levels, id, b)?;
            self.tables.push(t);
        }
        Ok(())
    }

    /// Finishes every table, makes the values and tables durable, and adds the tables to the
    /// last level in one MANIFEST edit. Errors: [`Error::InvalidRequest`] if two streams'
    /// key ranges overlap; I/O errors. On an error nothing of the load is kept.
    pub(crate) fn finish(&mut self) -> Result<BulkLoadSummary> {
        if self.failed {
            return Err(Error::InvalidRequest("the bulk load failed earlier"));
        }
        let streams: Vec<u32> = self.streams.keys().copied().collect();
        for s in streams {
            self.finish_stream(s)?;
        }
        self.tables
            .sort_by(|a, b| compare_keys(a.table().smallest(), b.table().smallest()));
        if self.tables.windows(2).any(|w| {
            compare_keys(w[0].table().biggest(), w[1].table().smallest()).is_ge()
                || w[0].biggest_user_key() == w[1].smallest_user_key()
        }) {
            return Err(Error::InvalidRequest(
                "bulk load: two streams' key ranges overlap (use load for such a backup)",
            ));
        }
        if let Some(vlog) = self.ctx.vlog {
            vlog.sync()?;
        }
        if !self.tables.is_empty() {
            self.ctx.levels.storage().sync_dir(self.ctx.levels.dir())?;
        }
        self.summary.tables = self.tables.len() as u64;
        self.summary.table_bytes = self.tables.iter().map(|t| t.size_bytes()).sum();
        let level = self.last_level;
        let edit = self.ctx.levels.apply_edit(&LevelsEdit {
            added: self.tables.iter().map(|t| (level, t.clone())).collect(),
            removed: Vec::new(),
            end_op: Some(self.ids.op_id()),
            delete_wal: None,
        });
        if let Err(e) = edit {
            // The edit may be on disk even though it failed (a failed sync): removing the
            // tables could leave a MANIFEST naming missing files. They stay; the next open
            // keeps them if the edit is durable and removes them (the operation unfinished)
            // if not.
            self.tables.clear();
            self.edit_uncertain = true;
            return Err(e);
        }
        // The tables belong to the levels now: nothing for a cancel to remove.
        self.tables.clear();
        self.failed = true;
        Ok(self.summary)
    }

    /// Removes what the load wrote and ends its operation (unless its ending edit may have
    /// reached the MANIFEST: then the next open decides).
    pub(crate) fn cancel(mut self) -> Result<()> {
        for s in self.streams.values_mut() {
            if let Some((id, b)) = s.builder.take() {
                drop(b);
                let _ = self
                    .ctx
                    .levels
                    .storage()
                    .remove_file(&self.ctx.levels.table_path(id));
            }
        }
        for t in self.tables.drain(..) {
            t.mark_obsolete();
        }
        if self.edit_uncertain {
            return Ok(());
        }
        self.ctx.levels.apply_edit(&LevelsEdit {
            added: Vec::new(),
            removed: Vec::new(),
            end_op: Some(self.ids.op_id()),
            delete_wal: None,
        })
    }
}

/// Runs a bulk load ([`crate::Db::bulk_load`]) with the database held still; `raise` is told
/// the largest version written once the load is in the levels.
pub(crate) fn run<T>(
    hold: &DropContext<'_>,
    ctx: StreamWriterContext<'_>,
    raise: &dyn Fn(u64),
    f: impl FnOnce(&mut StreamWriter<'_>) -> Result<T>,
) -> Result<(T, BulkLoadSummary)> {
    held_still(hold, false, |_pause| {
        let levels = ctx.levels.snapshot();
        if (0..levels.level_count()).any(|l| !levels.tables(l).is_empty()) {
            return Err(Error::InvalidRequest(
                "bulk load needs an empty database (it holds tables): use load, or drop_all first",
            ));
        }
        drop(levels);
        let mut w = StreamWriter::begin(ctx)?;
        let outcome = f(&mut w).and_then(|t| w.finish().map(|s| (t, s)));
        match outcome {
            Ok((t, summary)) => {
                raise(summary.max_version);
                Ok((t, summary))
            }
            Err(e) => {
                // The load's own error is the one to report; a failed clean-up leaves files
                // the next open removes (the operation is unfinished).
                let _ = w.cancel();
                Err(e)
            }
        }
    })
}

/// Finishes and opens table `id`; on failure removes its file (the load is failing: nothing
/// of it is kept).
fn finish_table(levels: &Levels, id: u64, builder: TableBuilder) -> Result<Arc<LevelTable>> {
    let r = builder.finish().and_then(|_| levels.open_new_table(id));
    if r.is_err() {
        let _ = levels.storage().remove_file(&levels.table_path(id));
    }
    r
}

//! Options: Badger v4's knobs and defaults, in snake_case, validated before anything opens.
//!
//! One deliberate change from Badger: the default value threshold is 1 KiB (values of 1 KiB
//! and more go to the value log), where key-value separation pays, instead of v4's 1 MiB.

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::{FsStorage, Storage};
use crate::key::MAX_KEY_SIZE;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Bytes one skiplist node costs beyond its key and value (for batch-count limits, as Badger's
/// `maxBatchCount = maxBatchSize / nodeSize`).
pub const SKIPLIST_NODE_OVERHEAD_BYTES: u64 = 96;

/// Smallest and largest accepted value-log file sizes: `[1 MiB, 2 GiB)`, as Badger.
pub const VALUE_LOG_FILE_SIZE_MIN: u64 = MIB;
/// See [`VALUE_LOG_FILE_SIZE_MIN`]; offsets in value pointers are u32, so 2 GiB leaves room.
pub const VALUE_LOG_FILE_SIZE_MAX: u64 = 2 * GIB;

/// Block compression of tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Blocks stored as they are.
    None,
    /// Snappy (Badger's default).
    #[default]
    Snappy,
    /// Zstandard at the given level (1..=22; negative levels are fast modes).
    Zstd(i32),
    /// LZ4 block format.
    Lz4,
}

impl Compression {
    /// The byte stored on disk for this algorithm (in block trailers and the manifest).
    pub fn to_byte(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Snappy => 1,
            Compression::Zstd(_) => 2,
            Compression::Lz4 => 3,
        }
    }

    /// The algorithm for a byte read from disk; the ZSTD level does not matter for decoding.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Compression::None),
            1 => Some(Compression::Snappy),
            2 => Some(Compression::Zstd(1)),
            3 => Some(Compression::Lz4),
            _ => None,
        }
    }
}

/// When table checksums are verified, in addition to every block read of a data structure
/// SettDB always checks (index, footer, metadata). Badger's `ChecksumVerificationMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChecksumVerificationMode {
    /// Data-block checksums are not checked on read (they are by `verify`).
    NoVerification,
    /// Every block checked once when a table is opened.
    OnTableRead,
    /// Each data block checked when it is read from disk (not from cache).
    #[default]
    OnBlockRead,
    /// Both.
    OnTableAndBlockRead,
}

/// Everything that configures a database. Build with [`Options::new`] and the `with_*`
/// methods; [`Options::validate`] runs on open.
///
/// Badger options with no counterpart here: `VerifyValueChecksum` (SettDB verifies every
/// value-log record it reads, always: a damaged value is an error, never returned),
/// `Logger` (SettDB logs through `tracing`), `NumGoroutines` (a parameter of
/// [`crate::Db::stream`]), and the v2 options Badger v3 and v4 removed (`KeepL0InMemory`,
/// `LoadBloomsOnOpen`, `MaxTableSize`, `LevelOneSize`, `TableLoadingMode`, `Truncate`,
/// `LogRotatesToFlush`, `KeepBlockIndicesInCache`, `KeepBlocksInCache`; v2's
/// `ValueLogLoadingMode` is [`Options::value_log_mmap`]).
///
/// ```
/// use settdb::{Compression, Db, Options};
/// # fn main() -> settdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let opts = Options::new(dir.path())
///     .with_sync_writes(true) // every commit durable when it returns
///     .with_compression(Compression::Zstd(1))
///     .with_value_threshold(1024) // values of 1 KiB or more go to the value log
///     .with_block_cache_size(64 << 20);
/// let db = Db::open(opts)?;
/// db.close()?;
///
/// // In memory only: nothing touches the disk, everything is gone on close.
/// let mem = Db::open(Options::new("").with_in_memory(true))?;
/// mem.set("k", "v")?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Options {
    /// Directory of the LSM tree (tables, manifest, memtable WALs).
    pub dir: PathBuf,
    /// Directory of the value log (defaults to `dir`).
    pub value_dir: PathBuf,
    /// Sync the WAL and value log before a write is acknowledged.
    pub sync_writes: bool,
    /// Versions of a key kept below the discard timestamp.
    pub num_versions_to_keep: u32,
    /// Open without writing a byte; takes a shared lock.
    pub read_only: bool,
    /// Block compression of tables.
    pub compression: Compression,
    /// Keep everything in memory, no files.
    pub in_memory: bool,
    /// Emit metrics through the [`metrics`](https://docs.rs/metrics) facade (the application
    /// installs a recorder or exporter; the library only emits). Off by default; when off the
    /// cost is one branch on this flag per event. [`crate::Db::stats`] is kept either way.
    ///
    /// Emitted (all prefixed `settdb_`; docs/design/observability.md says what each counts):
    /// counters `settdb_puts_total`, `settdb_written_bytes_{user,wal,vlog,table}_total`,
    /// `settdb_read_bytes_{vlog,table}_total`, `settdb_gets_total`,
    /// `settdb_get_memtable_hits_total`, `settdb_get_level_hits_total{level}`,
    /// `settdb_get_misses_total`, `settdb_bloom_{filtered,passed,false_positives}_total`,
    /// `settdb_flushes_total`, `settdb_compactions_total{level}`,
    /// `settdb_compaction_bytes_{in,out}_total{level}`, `settdb_write_stalls_total{cause}`,
    /// `settdb_write_stall_micros_total{cause}`, `settdb_vlog_gc_runs_total`,
    /// `settdb_vlog_gc_files_rewritten_total`, `settdb_vlog_gc_bytes_reclaimed_total`,
    /// `settdb_cache_{hits,misses}_total{cache}`; gauges `settdb_pending_writes`,
    /// `settdb_level_tables{level}`, `settdb_level_size_bytes{level}`; histograms (seconds)
    /// `settdb_get_seconds`, `settdb_write_group_seconds`, `settdb_flush_seconds`,
    /// `settdb_compaction_seconds`.
    pub metrics_enabled: bool,
    /// Size of one memtable in bytes.
    pub mem_table_size: u64,
    /// Target size of tables at the base level.
    pub base_table_size: u64,
    /// Target size of the base level (the level L0 compacts into). 256 MiB by default, where
    /// Badger has 10 MiB: with 64 MiB memtables, five L0 tables (about 190 MB of 128 B
    /// entries) were merged into a base level whose target was smaller than one of them, so
    /// the base level ran far over target and every L0 compaction rewrote all of it.
    /// RocksDB's advice is a base level about the size of L0 when it compacts. Measured on a
    /// 10M x 128 B load: 8.7 GB written instead of 12.1 GB (write amplification about 6.1
    /// instead of 8.4), 19.9 s instead of 22.1 s, and 2-thread reads right after it went
    /// from 74K/s and 144K/s to 90K/s and 280K/s in its first two 3-second windows (the
    /// backlog clears sooner); 1M-key loads and reads do not change.
    pub base_level_size: u64,
    /// Growth of level targets per level.
    pub level_size_multiplier: u64,
    /// Growth of table sizes per level below the base level.
    pub table_size_multiplier: u64,
    /// Number of levels, L0 included.
    pub max_levels: usize,
    /// A value threshold that follows the sizes written (Badger's `VLogPercentile`): with p in
    /// (0, 1), the threshold becomes the p-th percentile of the value sizes seen, kept within
    /// `[value_threshold, max_value_threshold()]`; with 0.99 the largest 1% of values go to
    /// the value log and the rest stay in the LSM tree. It starts at `value_threshold` at each
    /// open. Default 0: the threshold is `value_threshold`, fixed. Transaction size limits
    /// then count values below `max_value_threshold()` at their full size, since any of them
    /// may stay inline.
    pub vlog_percentile: f64,
    /// Values of this many bytes or more are stored in the value log.
    pub value_threshold: u64,
    /// Memtables in memory (one mutable plus immutable ones waiting to flush).
    pub num_memtables: usize,
    /// Target uncompressed size of a table block.
    pub block_size: usize,
    /// False-positive rate of table bloom filters (0 disables them).
    pub bloom_false_positive: f64,
    /// Bytes of the block cache (Badger's default: 256 MiB): data blocks verified, decrypted,
    /// decompressed and decoded, shared by every table. Point reads and iterators fill it;
    /// compaction and verification do not. 0 turns it off (every read decodes its block from
    /// the file system's page cache).
    pub block_cache_size: u64,
    /// Bytes of the index cache (default 0, as Badger). With 0 every open table keeps its block
    /// index and bloom filter in memory; with more, they are loaded through a cache of this
    /// size, so memory stays bounded however many tables there are (at the price of reading
    /// an evicted index again).
    pub index_cache_size: u64,
    /// L0 tables that make L0 compaction urgent.
    pub num_level_zero_tables: usize,
    /// L0 tables at which writes stall.
    pub num_level_zero_tables_stall: usize,
    /// Size at which a value-log file is rotated.
    pub value_log_file_size: u64,
    /// Entries at which a value-log file is rotated.
    pub value_log_max_entries: u32,
    /// Read sealed value-log files through a read-only memory mapping instead of a `pread` per
    /// value (Badger v2's `ValueLogLoadingMode = MemoryMap`, Badger v4's only way). `None`
    /// (the default) maps them in an on-disk database; `Some(true)` is refused with
    /// `in_memory` (no files to map). It saves the system call and the page-cache lookup:
    /// about a fifth of a cached 1 KiB point read, and 40% of a scan of 1 KiB values.
    /// A mapping turns an I/O error (a failing disk) or another program truncating the file
    /// into a `SIGBUS`; SettDB catches it (a process-wide `SIGBUS` handler, installed with
    /// the first mapping, that passes every other `SIGBUS` on to the handler before it), and
    /// the read is made again with `pread`, which returns the typed error. After the first
    /// such fault, the process reads every value with `pread`. An application that installs
    /// its own `SIGBUS` handler after opening a database must pass on the signals it does not
    /// expect, or a failing disk ends the process. The active file is read with `pread`,
    /// except its newest small batches, which the writer keeps in memory (8 MiB at most)
    /// until the file rotates, with or without this option.
    pub value_log_mmap: Option<bool>,
    /// Compaction threads (0 disables compaction; 1 is refused, as in Badger, because L0→L0
    /// and L0→Lbase need two).
    pub num_compactors: usize,
    /// The nice value (0 to 19) the compaction and value-log GC threads lower themselves to,
    /// so that the application's threads, and the engine's writer and flusher, come first
    /// when the CPU is busy; on an idle machine background work still uses every free cycle
    /// (RocksDB's `LowerThreadPoolCPUPriority`). 0 (the default) leaves them alone. Linux
    /// only, where a nice value is per thread; elsewhere a nonzero value is refused because
    /// it would apply to the whole process.
    ///
    /// A trade, not a gain: measured on 2 cores, 2-thread random reads of a 10M-key database
    /// just after its load (compaction still catching up) ran at 117K/s with 10 against
    /// 84K/s with 0, but the backlog took about 20 s of reading to clear instead of 10, and
    /// reads are fastest (290K/s) once it is clear, so over the first 25 s the default read
    /// more. Raise it when the application's latency-sensitive threads must not share a core
    /// with compaction; L0 still stalls writes at `num_level_zero_tables_stall`, which then
    /// lets compaction run.
    pub background_nice: i32,
    /// Compact L0 when closing.
    pub compact_l0_on_close: bool,
    /// Automatic value-log GC on a background thread. `None` (the default): on, except in
    /// managed mode (where the caller owns the discard timestamp); read-only and in-memory
    /// databases have nothing to collect. `Some(true)` turns it on in managed mode too
    /// (refused for read-only and in-memory databases); `Some(false)` turns it off.
    pub auto_value_log_gc: Option<bool>,
    /// The space amplification of the value log automatic GC keeps it under: sealed
    /// value-log bytes over their live bytes (as the discard statistics estimate them). Must
    /// be above 1.0; the default 1.5 means a value log at most half again the live values.
    pub value_log_gc_space_amp: f64,
    /// Bytes of live values automatic GC moves per second at most, so foreground writes keep
    /// the disk (0: no limit). [`crate::Db::run_value_log_gc`] is never limited.
    pub value_log_gc_rate_bytes: u64,
    /// The space amplification up to which automatic GC yields the CPU to the rest of the
    /// process. Below it, GC pauses between files while the process's other threads keep
    /// all but half a core busy (measured from the process's CPU time over 25 ms while GC
    /// waits; a file whose rewrite they interrupt is given up and taken again later), so it
    /// does not take a core from the application's readers and writers; at or
    /// above it (the same estimate as the target's), or while a call waits for GC to end
    /// (`run_value_log_gc`, `drop_all`, `drop_prefix`), GC runs regardless (still at
    /// `value_log_gc_rate_bytes`), so a process that keeps every core busy cannot grow the
    /// value log without bound. Must be at least `value_log_gc_space_amp` (equal: GC never
    /// yields). Default 2.0. Measured on 2 cores (YCSB E, 2 threads, on a value log just over
    /// the 1.5 target): 141-155K operations in 5 s with a 4.1 ms p99.9 when GC did not yield,
    /// 201-203K and 0.23-0.25 ms when it does (203-204K with GC off). On systems without
    /// POSIX CPU-time clocks (not Unix) GC never yields.
    pub value_log_gc_busy_space_amp: f64,
    /// Rewrite a last-level table into itself when at least a tenth of it is stale
    /// (tombstones, expired values and old versions that no snapshot reads any more) and no
    /// level needs compacting, so deletes and TTLs give their space back even when nothing
    /// new is written over them (Badger's Lmax compaction; on by default here, off in
    /// Badger).
    pub lmax_compaction: bool,
    /// Level of ZSTD compression when [`Compression::Zstd`] is chosen by name only.
    pub zstd_compression_level: i32,
    /// Master key for encryption at rest: empty (the default) for a plaintext database, or
    /// 16, 24 or 32 bytes (AES-128, -192, -256). With a key, every table, WAL and value-log
    /// record is encrypted and authenticated (AES-GCM) under a data key from the database's
    /// key registry (`KEYREGISTRY`, sealed under this key). A database created with a key
    /// must always be opened with it; one created without cannot be opened with one. Not
    /// with `in_memory` (nothing is written to encrypt). Change it with `settdb rotate`.
    pub encryption_key: Vec<u8>,
    /// Age at which a new data key is made for new files (Badger's default: 10 days). Older
    /// files keep the key they were sealed with.
    pub encryption_key_rotation_duration: std::time::Duration,
    /// Skip the directory lock (for tools that know what they do).
    pub bypass_lock_guard: bool,
    /// When table checksums are verified.
    pub checksum_verification_mode: ChecksumVerificationMode,
    /// Track reads for serializable conflict detection.
    pub detect_conflicts: bool,
    /// Byte offset of an 8-byte big-endian namespace in keys (Badger's `NamespaceOffset`);
    /// negative (default -1): no namespaces. A key of at least `offset + 8` bytes belongs to the
    /// namespace at that offset; [`crate::Db::ban_namespace`] bans one (writes and point reads
    /// of its keys fail with [`crate::Error::BannedKey`], iterators skip them).
    pub namespace_offset: i64,
    /// Extra magic a host application stamps into its files.
    pub external_magic_version: u16,
    /// The file system (the real one unless a test substitutes the simulated one).
    pub storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("dir", &self.dir)
            .field("value_dir", &self.value_dir)
            .field("sync_writes", &self.sync_writes)
            .field("in_memory", &self.in_memory)
            .field("read_only", &self.read_only)
            .field("mem_table_size", &self.mem_table_size)
            .field("value_threshold", &self.value_threshold)
            .field("compression", &self.compression)
            .field("encryption", &!self.encryption_key.is_empty())
            .finish_non_exhaustive()
    }
}

impl Options {
    /// Badger's defaults (except a 1 KiB value threshold) for a database in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Options {
            value_dir: dir.clone(),
            dir,
            sync_writes: false,
            num_versions_to_keep: 1,
            read_only: false,
            compression: Compression::Snappy,
            in_memory: false,
            metrics_enabled: false,
            mem_table_size: 64 * MIB,
            base_table_size: 2 * MIB,
            base_level_size: 256 * MIB,
            level_size_multiplier: 10,
            table_size_multiplier: 2,
            max_levels: 7,
            vlog_percentile: 0.0,
            value_threshold: KIB,
            num_memtables: 5,
            block_size: 4 * KIB as usize,
            bloom_false_positive: 0.01,
            block_cache_size: 256 << 20,
            index_cache_size: 0,
            num_level_zero_tables: 5,
            num_level_zero_tables_stall: 15,
            value_log_file_size: GIB - 1,
            value_log_max_entries: 1_000_000,
            value_log_mmap: None,
            num_compactors: 4,
            background_nice: 0,
            compact_l0_on_close: false,
            auto_value_log_gc: None,
            value_log_gc_space_amp: 1.5,
            value_log_gc_rate_bytes: 256 * MIB,
            value_log_gc_busy_space_amp: 2.0,
            lmax_compaction: true,
            zstd_compression_level: 1,
            encryption_key: Vec::new(),
            encryption_key_rotation_duration: std::time::Duration::from_secs(10 * 24 * 3600),
            bypass_lock_guard: false,
            checksum_verification_mode: ChecksumVerificationMode::default(),
            detect_conflicts: true,
            namespace_offset: -1,
            external_magic_version: 0,
            storage: Arc::new(FsStorage::new()),
        }
    }

    /// Options for a database with no files at all.
    pub fn in_memory() -> Self {
        let mut o = Options::new("");
        o.in_memory = true;
        o.value_dir = PathBuf::new();
        o
    }

    /// Options that keep every value in the LSM tree (threshold at its maximum).
    pub fn lsm_only(dir: impl Into<PathBuf>) -> Self {
        let o = Options::new(dir);
        let t = o.max_value_threshold();
        o.with_value_threshold(t)
    }

    setter!(/// Sets [`Options::value_dir`].
        with_value_dir, value_dir: PathBuf);
    setter!(/// Sets [`Options::sync_writes`].
        with_sync_writes, sync_writes: bool);
    setter!(/// Sets [`Options::num_versions_to_keep`].
        with_num_versions_to_keep, num_versions_to_keep: u32);
    setter!(/// Sets [`Options::read_only`].
        with_read_only, read_only: bool);
    setter!(/// Sets [`Options::compression`].
        with_compression, compression: Compression);
    setter!(/// Sets [`Options::in_memory`].
        with_in_memory, in_memory: bool);
    setter!(/// Sets [`Options::metrics_enabled`].
        with_metrics_enabled, metrics_enabled: bool);
    setter!(/// Sets [`Options::mem_table_size`].
        with_mem_table_size, mem_table_size: u64);
    setter!(/// Sets [`Options::base_table_size`].
        with_base_table_size, base_table_size: u64);
    setter!(/// Sets [`Options::base_level_size`].
        with_base_level_size, base_level_size: u64);
    setter!(/// Sets [`Options::level_size_multiplier`].
        with_level_size_multiplier, level_size_multiplier: u64);
    setter!(/// Sets [`Options::table_size_multiplier`].
        with_table_size_multiplier, table_size_multiplier: u64);
    setter!(/// Sets [`Options::max_levels`].
        with_max_levels, max_levels: usize);
    setter!(/// Sets [`Options::vlog_percentile`].
        with_vlog_percentile, vlog_percentile: f64);
    setter!(/// Sets [`Options::value_threshold`].
        with_value_threshold, value_threshold: u64);
    setter!(/// Sets [`Options::num_memtables`].
        with_num_memtables, num_memtables: usize);
    setter!(/// Sets [`Options::block_size`].
        with_block_size, block_size: usize);
    setter!(/// Sets [`Options::bloom_false_positive`].
        with_bloom_false_positive, bloom_false_positive: f64);
    setter!(/// Sets [`Options::block_cache_size`].
        with_block_cache_size, block_cache_size: u64);
    setter!(/// Sets [`Options::index_cache_size`].
        with_index_cache_size, index_cache_size: u64);
    setter!(/// Sets [`Options::num_level_zero_tables`].
        with_num_level_zero_tables, num_level_zero_tables: usize);
    setter!(/// Sets [`Options::num_level_zero_tables_stall`].
        with_num_level_zero_tables_stall, num_level_zero_tables_stall: usize);
    setter!(/// Sets [`Options::value_log_file_size`].
        with_value_log_file_size, value_log_file_size: u64);
    setter!(/// Sets [`Options::value_log_max_entries`].
        with_value_log_max_entries, value_log_max_entries: u32);
    /// Sets [`Options::value_log_mmap`] to `Some(on)`.
    #[must_use]
    pub fn with_value_log_mmap(mut self, on: bool) -> Self {
        self.value_log_mmap = Some(on);
        self
    }
    /// Sets [`Options::auto_value_log_gc`] to `Some(on)`.
    #[must_use]
    pub fn with_auto_value_log_gc(mut self, on: bool) -> Self {
        self.auto_value_log_gc = Some(on);
        self
    }
    setter!(/// Sets [`Options::value_log_gc_space_amp`].
        with_value_log_gc_space_amp, value_log_gc_space_amp: f64);
    setter!(/// Sets [`Options::value_log_gc_rate_bytes`].
        with_value_log_gc_rate_bytes, value_log_gc_rate_bytes: u64);
    setter!(/// Sets [`Options::value_log_gc_busy_space_amp`].
        with_value_log_gc_busy_space_amp, value_log_gc_busy_space_amp: f64);
    setter!(/// Sets [`Options::num_compactors`].
        with_num_compactors, num_compactors: usize);
    setter!(/// Sets [`Options::background_nice`].
        with_background_nice, background_nice: i32);
    setter!(/// Sets [`Options::compact_l0_on_close`].
        with_compact_l0_on_close, compact_l0_on_close: bool);
    setter!(/// Sets [`Options::lmax_compaction`].
        with_lmax_compaction, lmax_compaction: bool);
    setter!(/// Sets [`Options::zstd_compression_level`].
        with_zstd_compression_level, zstd_compression_level: i32);
    setter!(/// Sets [`Options::encryption_key`].
        with_encryption_key, encryption_key: Vec<u8>);
    setter!(/// Sets [`Options::encryption_key_rotation_duration`].
        with_encryption_key_rotation_duration, encryption_key_rotation_duration: std::time::Duration);
    setter!(/// Sets [`Options::bypass_lock_guard`].
        with_bypass_lock_guard, bypass_lock_guard: bool);
    setter!(/// Sets [`Options::checksum_verification_mode`].
        with_checksum_verification_mode, checksum_verification_mode: ChecksumVerificationMode);
    setter!(/// Sets [`Options::detect_conflicts`].
        with_detect_conflicts, detect_conflicts: bool);
    setter!(/// Sets [`Options::namespace_offset`].
        with_namespace_offset, namespace_offset: i64);
    setter!(/// Sets [`Options::external_magic_version`].
        with_external_magic_version, external_magic_version: u16);
    setter!(/// Sets [`Options::storage`] (tests use `io::SimStorage`).
        with_storage, storage: Arc<dyn Storage>);

    /// Sets both [`Options::dir`] and [`Options::value_dir`].
    #[must_use]
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self.value_dir = self.dir.clone();
        self
    }

    /// Largest write batch in bytes: 15% of the memtable, as Badger.
    pub fn max_batch_size(&self) -> u64 {
        self.mem_table_size * 15 / 100
    }

    /// Largest write batch in entries.
    pub fn max_batch_count(&self) -> u64 {
        self.max_batch_size() / SKIPLIST_NODE_OVERHEAD_BYTES
    }

    /// Bytes an entry counts against a batch's or transaction's size limit: what it costs the
    /// memtable and its WAL. A value the value log will hold counts as its 12-byte pointer (as
    /// in Badger), so a value of any size up to the value-log file size fits a transaction.
    pub(crate) fn entry_charge(&self, key_len: usize, value_len: usize) -> u64 {
        // With a dynamic threshold, a value below its ceiling may stay inline.
        let surely_in_vlog = self.goes_to_value_log(value_len)
            && (self.vlog_percentile == 0.0 || value_len as u64 >= self.max_value_threshold());
        let stored = if surely_in_vlog {
            crate::value::ValuePointer::ENCODED_LEN
        } else {
            value_len
        };
        (key_len + crate::key::VERSION_LEN + stored + 16) as u64
    }

    /// True if a value of `value_len` bytes may be stored in the value log (the write path's
    /// rule with a fixed threshold; a dynamic one is never below it, so this is an upper bound
    /// for the value-log bytes of a write; a delete's empty value never is, as no threshold
    /// is 0).
    pub(crate) fn goes_to_value_log(&self, value_len: usize) -> bool {
        !self.in_memory && value_len > 0 && value_len as u64 >= self.value_threshold
    }

    /// Largest value threshold: 1 MiB, or less if a batch is smaller.
    pub fn max_value_threshold(&self) -> u64 {
        MIB.min(self.max_batch_size())
    }

    /// The ZSTD level in effect.
    pub fn effective_compression(&self) -> Compression {
        match self.compression {
            Compression::Zstd(0) => Compression::Zstd(self.zstd_compression_level),
            c => c,
        }
    }

    /// Checks every option and every combination; the message names the option.
    pub fn validate(&self) -> Result<()> {
        self.validate_paths()?;
        self.validate_sizes()?;
        self.validate_levels()?;
        self.validate_encryption()?;
        self.validate_misc()
    }

    fn validate_encryption(&self) -> Result<()> {
        if !self.encryption_key.is_empty() {
            crate::crypto::check_key_len(self.encryption_key.len())?;
        }
        if self.encryption_key_rotation_duration.is_zero() {
            return invalid("encryption_key_rotation_duration must be at least 1 second");
        }
        Ok(())
    }

    fn validate_paths(&self) -> Result<()> {
        if self.in_memory {
            if !self.dir.as_os_str().is_empty() || !self.value_dir.as_os_str().is_empty() {
                return invalid("in_memory requires dir and value_dir to be empty");
            }
            if self.read_only {
                return invalid("in_memory and read_only cannot be combined");
            }
            if !self.encryption_key.is_empty() {
                return invalid(
                    "encryption_key cannot be combined with in_memory: an in-memory database \
                     writes no files to encrypt",
                );
            }
            if self.value_log_mmap == Some(true) {
                return invalid(
                    "value_log_mmap cannot be combined with in_memory: an in-memory database \
                     has no value-log files to map",
                );
            }
        } else if self.dir.as_os_str().is_empty() {
            return invalid("dir must be set (or use in_memory)");
        } else if self.value_dir.as_os_str().is_empty() {
            return invalid("value_dir must be set (defaults to dir)");
        }
        Ok(())
    }

    fn validate_sizes(&self) -> Result<()> {
        if self.mem_table_size < MIB {
            return invalid(format!(
                "mem_table_size {} is below 1 MiB",
                self.mem_table_size
            ));
        }
        if !(VALUE_LOG_FILE_SIZE_MIN..VALUE_LOG_FILE_SIZE_MAX).contains(&self.value_log_file_size) {
            return invalid(format!(
                "value_log_file_size {} must be in [1 MiB, 2 GiB)",
                self.value_log_file_size
            ));
        }
        if self.value_log_max_entries == 0 {
            return invalid("value_log_max_entries must be at least 1");
        }
        if self.value_threshold > self.max_value_threshold() {
            return invalid(format!(
                "value_threshold {} is over the maximum {} (1 MiB or 15% of mem_table_size)",
                self.value_threshold,
                self.max_value_threshold()
            ));
        }
        if !(256..=(1 << 20)).contains(&self.block_size) {
            return invalid(format!(
                "block_size {} must be in [256, 1 MiB]",
                self.block_size
            ));
        }
        if self.base_table_size < 64 * KIB || self.base_level_size < self.base_table_size {
            return invalid(
                "base_table_size must be >= 64 KiB and base_level_size >= base_table_size",
            );
        }
        if (MAX_KEY_SIZE as u64) >= self.max_batch_size() {
            return invalid("mem_table_size too small to hold a maximal key in one batch");
        }
        Ok(())
    }

    fn validate_levels(&self) -> Result<()> {
        if !(2..=32).contains(&self.max_levels) {
            return invalid(format!("max_levels {} must be in [2, 32]", self.max_levels));
        }
        if self.level_size_multiplier < 2 || self.table_size_multiplier < 1 {
            return invalid("level_size_multiplier must be >= 2 and table_size_multiplier >= 1");
        }
        if self.num_level_zero_tables == 0 {
            return invalid("num_level_zero_tables must be at least 1");
        }
        if self.num_level_zero_tables_stall <= self.num_level_zero_tables {
            return invalid(format!(
                "num_level_zero_tables_stall ({}) must be greater than num_level_zero_tables ({})",
                self.num_level_zero_tables_stall, self.num_level_zero_tables
            ));
        }
        if self.num_compactors == 1 {
            return invalid("num_compactors must be 0 (compaction off) or at least 2");
        }
        if !(0..=19).contains(&self.background_nice) {
            return invalid(format!(
                "background_nice {} is outside 0..=19 (background threads can only be lowered)",
                self.background_nice
            ));
        }
        if self.background_nice != 0 && !cfg!(target_os = "linux") {
            return invalid(
                "background_nice must be 0 on this OS: its nice value is per process, not per \
                 thread, so it would slow the application too",
            );
        }
        if self.num_memtables == 0 {
            return invalid("num_memtables must be at least 1");
        }
        Ok(())
    }

    fn validate_misc(&self) -> Result<()> {
        if self.num_versions_to_keep == 0 {
            return invalid("num_versions_to_keep must be at least 1");
        }
        if !(0.0..1.0).contains(&self.bloom_false_positive) {
            return invalid("bloom_false_positive must be in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.vlog_percentile) {
            return invalid("vlog_percentile must be in [0, 1) (0: a fixed value threshold)");
        }
        if !(self.value_log_gc_space_amp > 1.0 && self.value_log_gc_space_amp.is_finite()) {
            return invalid("value_log_gc_space_amp must be a finite number above 1.0");
        }
        if !(self.value_log_gc_busy_space_amp >= self.value_log_gc_space_amp
            && self.value_log_gc_busy_space_amp.is_finite())
        {
            return invalid(format!(
                "value_log_gc_busy_space_amp ({}) must be a finite number at least \
                 value_log_gc_space_amp ({})",
                self.value_log_gc_busy_space_amp, self.value_log_gc_space_amp
            ));
        }
        if self.auto_value_log_gc == Some(true) && (self.read_only || self.in_memory) {
            return invalid(
                "auto_value_log_gc = true needs a writable on-disk database (read_only and \
                 in_memory have no value log to collect)",
            );
        }
        if let Compression::Zstd(level) = self.effective_compression() {
            if !(-7..=22).contains(&level) {
                return invalid(format!("zstd level {level} must be in [-7, 22]"));
            }
        }
        crate::unbuilt::refuse_unbuilt(self)
    }
}

impl Options {
    /// True if automatic value-log GC runs for a database opened with these options
    /// ([`Options::auto_value_log_gc`]).
    pub(crate) fn runs_auto_value_log_gc(&self, managed: bool) -> bool {
        !self.read_only && !self.in_memory && self.auto_value_log_gc.unwrap_or(!managed)
    }

    /// True if sealed value-log files are read through mappings ([`Options::value_log_mmap`]).
    pub(crate) fn maps_value_log(&self) -> bool {
        !self.in_memory && self.value_log_mmap.unwrap_or(true)
    }
}

fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::InvalidOptions(msg.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_badgers_and_valid() {
        // Proves the defaults match Badger v4 (but the 1 KiB threshold) and pass validation.
        let o = Options::new("/tmp/x");
        o.validate().unwrap();
        assert_eq!(o.mem_table_size, 64 * MIB);
        assert_eq!(o.value_threshold, KIB);
        assert_eq!(o.num_level_zero_tables_stall, 15);
        assert_eq!(o.value_log_file_size, GIB - 1);
        assert_eq!(o.max_batch_size(), 64 * MIB * 15 / 100);
        assert_eq!(o.max_batch_count(), o.max_batch_size() / 96);
        assert_eq!(o.value_dir, o.dir);
        Options::in_memory().validate().unwrap();
        Options::lsm_only("/tmp/y").validate().unwrap();
        assert_eq!(o.value_log_gc_busy_space_amp, 2.0);
        // Equal to the target: GC never yields, a valid choice.
        let never_yields = Options::new("/tmp/x").with_value_log_gc_busy_space_amp(1.5);
        never_yields.validate().unwrap();
    }

    #[test]
    fn value_log_values_count_as_their_pointer() {
        // Proves the batch charge: a value at or above the threshold costs a 12-byte pointer
        // (it goes to the value log), below it its bytes; an in-memory database has no value
        // log, so every value costs its bytes.
        let o = Options::new("/tmp/x").with_value_threshold(100);
        assert_eq!(o.entry_charge(3, 99), 3 + 8 + 99 + 16);
        assert_eq!(o.entry_charge(3, 100), 3 + 8 + 12 + 16);
        assert_eq!(o.entry_charge(3, 100 << 20), 3 + 8 + 12 + 16);
        let m = Options::in_memory().with_value_threshold(100);
        assert_eq!(m.entry_charge(3, 100 << 20), 3 + 8 + (100 << 20) + 16);
    }

    #[test]
    fn bad_combinations_are_refused_with_the_option_named() {
        // Proves each rule rejects with a message naming the offending option.
        let base = || Options::new("/tmp/x");
        let cases: Vec<(Options, &str)> = vec![
            (base().with_num_compactors(1), "num_compactors"),
            (base().with_background_nice(-1), "background_nice"),
            (base().with_background_nice(20), "background_nice"),
            (
                base().with_value_log_gc_space_amp(1.0),
                "value_log_gc_space_amp",
            ),
            (
                base().with_value_log_gc_busy_space_amp(1.4),
                "value_log_gc_busy_space_amp",
            ),
            (
                base().with_value_log_gc_busy_space_amp(f64::INFINITY),
                "value_log_gc_busy_space_amp",
            ),
            (
                base()
                    .with_value_log_gc_space_amp(3.0)
                    .with_value_log_gc_busy_space_amp(2.0),
                "value_log_gc_busy_space_amp",
            ),
            (
                base().with_value_log_gc_space_amp(f64::NAN),
                "value_log_gc_space_amp",
            ),
            (
                base().with_read_only(true).with_auto_value_log_gc(true),
                "auto_value_log_gc",
            ),
            (
                Options::in_memory().with_auto_value_log_gc(true),
                "auto_value_log_gc",
            ),
            (
                base().with_num_level_zero_tables_stall(5),
                "num_level_zero_tables_stall",
            ),
            (base().with_value_log_file_size(1000), "value_log_file_size"),
            (
                base().with_value_log_file_size(2 * GIB),
                "value_log_file_size",
            ),
            (base().with_value_threshold(2 * MIB), "value_threshold"),
            (base().with_encryption_key(vec![0; 15]), "encryption_key"),
            (
                Options::in_memory().with_encryption_key(vec![0; 16]),
                "encryption_key",
            ),
            (
                Options::in_memory().with_value_log_mmap(true),
                "value_log_mmap",
            ),
            (
                base().with_encryption_key_rotation_duration(std::time::Duration::ZERO),
                "encryption_key_rotation_duration",
            ),
            (
                base().with_bloom_false_positive(1.5),
                "bloom_false_positive",
            ),
            (base().with_max_levels(1), "max_levels"),
            (base().with_num_versions_to_keep(0), "num_versions_to_keep"),
            (base().with_compression(Compression::Zstd(40)), "zstd"),
            (base().with_in_memory(true), "in_memory"),
            (Options::new(""), "dir"),
            (base().with_mem_table_size(1000), "mem_table_size"),
        ];
        for (o, word) in cases {
            match o.validate() {
                Err(Error::InvalidOptions(msg)) => {
                    assert!(msg.contains(word), "{msg} lacks {word}")
                }
                other => panic!("expected InvalidOptions naming {word}, got {other:?}"),
            }
        }
    }

    #[test]
    fn compression_byte_round_trips() {
        // Proves every algorithm's on-disk byte maps back to the same algorithm.
        for c in [
            Compression::None,
            Compression::Snappy,
            Compression::Zstd(1),
            Compression::Lz4,
        ] {
            assert_eq!(Compression::from_byte(c.to_byte()), Some(c));
        }
        assert_eq!(Compression::from_byte(9), None);
    }
}

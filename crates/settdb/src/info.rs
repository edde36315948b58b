//! What an application may ask about the shape of its database (Badger's `Tables`, `Levels`,
//! `EstimateSize`, `KeySplits`): plain structs built from one snapshot of the levels, never a
//! window into the engine's own types ([`crate::inspect`] is that, for tools).

use crate::compaction::priority::{level_targets, LevelShape, TargetOptions};
use crate::db::Db;
use crate::error::Result;
use crate::key::user_key;
use crate::levels::LevelTable;
use crate::read::PrefixRange;

/// One table of the LSM tree (Badger's `TableInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableInfo {
    /// The table's file id (`NNNNNN.sst`).
    pub id: u64,
    /// The level holding it.
    pub level: usize,
    /// Its smallest and largest user keys.
    pub smallest: Vec<u8>,
    /// See `smallest`.
    pub biggest: Vec<u8>,
    /// Distinct user keys.
    pub key_count: u64,
    /// Entries (every version of every key).
    pub entry_count: u64,
    /// Bytes of the file.
    pub on_disk_bytes: u64,
    /// Bytes of its data blocks before compression.
    pub uncompressed_bytes: u64,
    /// Bytes of versions compaction may drop (older versions, deletes, expired entries).
    pub stale_bytes: u64,
    /// Its newest version.
    pub max_version: u64,
}

/// One level of the LSM tree (Badger's `LevelInfo`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LevelInfo {
    /// The level (0 is where memtables are flushed).
    pub level: usize,
    /// Tables in it.
    pub tables: usize,
    /// Bytes of its tables.
    pub bytes: u64,
    /// The size compaction keeps it under (L0: none, 0).
    pub target_bytes: u64,
    /// The size of the tables compaction writes into it.
    pub target_table_bytes: u64,
    /// True for the level L0 is compacted into.
    pub is_base_level: bool,
    /// Bytes over target: size / target (L0: tables over `num_level_zero_tables`); compaction
    /// works on levels at 1 or more.
    pub score: f64,
    /// Bytes of versions compaction may drop.
    pub stale_bytes: u64,
}

/// Bytes the tables give to a prefix ([`Db::estimate_size`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SizeEstimate {
    /// Bytes on disk (compressed).
    pub on_disk_bytes: u64,
    /// Bytes before compression.
    pub uncompressed_bytes: u64,
}

impl Db {
    /// Every table, level by level (L0 newest first, deeper levels in key order).
    pub fn tables(&self) -> Vec<TableInfo> {
        let levels = self.levels();
        (0..levels.level_count())
            .flat_map(|level| {
                levels
                    .tables(level)
                    .iter()
                    .map(move |t| table_info(level, t))
            })
            .collect()
    }

    /// Every level with its size, target and score, as compaction sees them now.
    ///
    /// ```
    /// # fn main() -> settdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = settdb::Db::open(settdb::Options::new(dir.path()))?;
    /// db.set("k", "v")?;
    /// db.flush()?;
    /// let l0 = &db.level_info()[0];
    /// assert_eq!((l0.level, l0.tables), (0, 1));
    /// assert_eq!(db.tables()[0].key_count, 1);
    /// # Ok(()) }
    /// ```
    pub fn level_info(&self) -> Vec<LevelInfo> {
        let levels = self.levels();
        let opts = self.options();
        let n = levels.level_count();
        let shape = LevelShape {
            level_sizes_bytes: levels.level_sizes_bytes(),
            compacting_bytes: vec![0; n],
            l0_tables: levels.tables(0).len(),
        };
        let targets = level_targets(&shape, &TargetOptions::from_options(opts));
        (0..n)
            .map(|level| {
                let tables = levels.tables(level);
                let bytes = levels.level_size_bytes(level);
                let target_bytes = if level == 0 {
                    0
                } else {
                    targets.level_bytes[level]
                };
                let score = if level == 0 {
                    tables.len() as f64 / opts.num_level_zero_tables.max(1) as f64
                } else {
                    bytes as f64 / target_bytes.max(1) as f64
                };
                LevelInfo {
                    level,
                    tables: tables.len(),
                    bytes,
                    target_bytes,
                    target_table_bytes: targets.table_bytes[level],
                    is_base_level: level == targets.base_level,
                    score,
                    stale_bytes: tables.iter().map(|t| t.table().stale_data_bytes()).sum(),
                }
            })
            .collect()
    }

    /// Bytes the tables hold for keys starting with `prefix`: whole tables inside the prefix,
    /// and for a table only partly inside, its blocks that can hold such keys (Badger counts
    /// only whole tables, which says 0 for a prefix smaller than a table). Memtables and the
    /// value log are not counted. Reads table indexes (from the index cache when one is set).
    pub fn estimate_size(&self, prefix: impl AsRef<[u8]>) -> Result<SizeEstimate> {
        let range = PrefixRange::new(prefix.as_ref());
        let levels = self.levels();
        let mut est = SizeEstimate::default();
        for level in 0..levels.level_count() {
            for t in levels.tables(level) {
                let (lo, hi) = (t.smallest_user_key(), t.biggest_user_key());
                if !range.overlaps(lo, hi) {
                    continue;
                }
                let table = t.table();
                let on_disk = if range.contains(lo) && range.contains(hi) {
                    table.size_bytes()
                } else {
                    blocks_in(table, &range)?
                };
                est.on_disk_bytes += on_disk;
                // Blocks' raw sizes are not indexed: scale by the table's compression ratio.
                let ratio = table.data_bytes() as f64 / table.size_bytes().max(1) as f64;
                est.uncompressed_bytes += (on_disk as f64 * ratio.max(1.0)) as u64;
            }
        }
        Ok(est)
    }

    /// The user keys where tables begin, across every level, sorted and distinct, limited to
    /// keys starting with `prefix` (Badger's `KeySplits`): cut points that spread a parallel
    /// job over the key space by the data's own shape.
    pub fn key_splits(&self, prefix: impl AsRef<[u8]>) -> Vec<Vec<u8>> {
        let prefix = prefix.as_ref();
        let levels = self.levels();
        let mut keys: Vec<Vec<u8>> = (0..levels.level_count())
            .flat_map(|l| levels.tables(l).iter())
            .map(|t| t.smallest_user_key().to_vec())
            .filter(|k| k.starts_with(prefix))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

fn table_info(level: usize, t: &LevelTable) -> TableInfo {
    let table = t.table();
    TableInfo {
        id: t.id(),
        level,
        smallest: t.smallest_user_key().to_vec(),
        biggest: t.biggest_user_key().to_vec(),
        key_count: table.user_key_count(),
        entry_count: table.entry_count(),
        on_disk_bytes: table.size_bytes(),
        uncompressed_bytes: table.data_bytes(),
        stale_bytes: table.stale_data_bytes(),
        max_version: table.max_version(),
    }
}

/// Stored bytes of the blocks of `table` whose keys can start with `range`'s prefix. Block `i`
/// holds the keys after block `i - 1`'s last key up to its own last key.
fn blocks_in(table: &crate::table::Table, range: &PrefixRange) -> Result<u64> {
    let indexes = table.indexes()?;
    let index = &indexes.index;
    let mut lo = user_key(table.smallest());
    let mut bytes = 0;
    for i in 0..index.len() {
        let hi = user_key(index.last_key(i));
        if range.overlaps(lo, hi) {
            bytes += index.handle(i).map_or(0, |h| u64::from(h.stored_len));
        }
        lo = hi;
    }
    Ok(bytes)
}

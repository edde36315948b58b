//! The block cache and the index cache, shared by every table of one database.
//!
//! - Block cache: verified, decrypted, decompressed and decoded data blocks (`Arc<Block>`),
//!   keyed by (table cache id, block index), weighted by their bytes. Point reads and user
//!   iterators fill it; compaction and verification read around it (RocksDB's
//!   `fill_cache = false`), so a compaction never evicts the blocks readers use.
//! - Index cache: a table's block index and bloom filter, when `index_cache_size > 0`; with 0
//!   (the default, Badger's too) every open table keeps them in memory instead.
//!
//! Both are `quick_cache::sync::Cache`: sharded, lock-light, weighted by bytes, and scan
//! resistant (a Clock-PRO / S3-FIFO policy, so one full scan does not flush the blocks that
//! point reads keep hitting). Chosen over moka, whose per-entry bookkeeping (TinyLFU sketch,
//! deques, an async maintenance step) costs more per hit on a path that is otherwise a few
//! hundred nanoseconds; quick_cache's hit is one hash probe in one shard. Measured with
//! `settdb bench read -g 2 -d 8s` over 1M x 128 B on 2 cores shared with other builds (so only
//! the gap, not the figures, means much; two runs each): all blocks cached, quick_cache 235K
//! and 385K reads/s at p99 5.8 and 7.5 µs, moka 0.12 221K and 262K at p99 32 and 22 µs; a
//! 16 MiB cache (12% hits, an eviction per miss), quick_cache 141K and 314K at p99 11 and
//! 12 µs, moka 137K and 106K at p99 71 and 98 µs.
//!
//! Keys cannot collide across tables or databases: each open [`super::Table`] draws its cache
//! id from a process-wide counter ([`next_cache_id`]), so a stale entry of a deleted table is
//! never served for another (it ages out of the cache instead). The counter is a u64: at a
//! million table opens a second it would wrap after more than 500,000 years, so ids never
//! repeat.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::block::Block;
use super::bloom::BloomFilter;
use super::index::BlockIndex;

/// Bytes counted for an entry beyond its payload (key, `Arc` header, table slot).
const ENTRY_OVERHEAD: u64 = 64;

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// A cache id no other table of this process has (see the module docs).
pub(crate) fn next_cache_id() -> u64 {
    NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed)
}

/// A table's index and bloom filter: what the index cache holds.
#[derive(Debug)]
pub struct TableIndexes {
    /// The block index.
    pub index: BlockIndex,
    /// The bloom filter, if the table has one.
    pub filter: Option<BloomFilter>,
}

impl TableIndexes {
    /// Bytes of memory it holds.
    pub fn size_bytes(&self) -> usize {
        self.index.size_bytes() + self.filter.as_ref().map_or(0, BloomFilter::size_bytes)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct BlockWeight;

impl Weighter<(u64, u32), Arc<Block>> for BlockWeight {
    fn weight(&self, _key: &(u64, u32), block: &Arc<Block>) -> u64 {
        block.size_bytes() as u64 + ENTRY_OVERHEAD
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct IndexWeight;

impl Weighter<u64, Arc<TableIndexes>> for IndexWeight {
    fn weight(&self, _key: &u64, v: &Arc<TableIndexes>) -> u64 {
        v.size_bytes() as u64 + ENTRY_OVERHEAD
    }
}

/// What one cache did since the database opened, and holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their entry. For the block cache, only the lookups of readers that
    /// fill it (point reads, iterators) count: compaction and verification use cached blocks
    /// but are not counted.
    pub hits: u64,
    /// Lookups that did not (the entry was then read from its file).
    pub misses: u64,
    /// Entries inserted.
    pub inserts: u64,
    /// Entries inserted that the cache no longer holds (evicted to stay within capacity, or
    /// replaced by a concurrent insert of the same entry).
    pub evictions: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes held now (payload plus a fixed overhead per entry).
    pub bytes: u64,
    /// The capacity in bytes (0: the cache is off).
    pub capacity: u64,
}

impl CacheStats {
    /// What the cache did since `before` (an earlier snapshot of it): hits, misses, inserts
    /// and evictions counted from then; entries, bytes and capacity as now.
    pub fn since(&self, before: &CacheStats) -> CacheStats {
        CacheStats {
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
            inserts: self.inserts.saturating_sub(before.inserts),
            evictions: self.evictions.saturating_sub(before.evictions),
            ..*self
        }
    }

    /// Hits over lookups, in [0, 1] (0 when nothing was looked up).
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

/// The statistics of both caches ([`crate::Db::cache_metrics`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheMetrics {
    /// The block cache (`block_cache_size`).
    pub block: CacheStats,
    /// The index cache (`index_cache_size`; off by default: indexes stay in memory).
    pub index: CacheStats,
}

/// Stripes of a hit or miss counter: every lookup counts, from every reading thread, and
/// one shared atomic made the counter's cache line bounce between cores on each read.
const STRIPES: usize = 8;

/// One counter stripe on its own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A counter incremented from many threads: each thread adds to its own stripe (threads are
/// spread over the stripes as they first count), and a read sums the stripes.
#[derive(Debug, Default)]
struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

static NEXT_STRIPE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MY_STRIPE: usize = (NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) as usize) % STRIPES;
}

impl StripedCounter {
    fn add(&self, n: u64) {
        let i = MY_STRIPE.with(|s| *s);
        if let Some(s) = self.stripes.get(i) {
            s.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

#[derive(Debug, Default)]
struct Counters {
    hits: StripedCounter,
    misses: StripedCounter,
    inserts: AtomicU64,
}

impl Counters {
    fn hit(&self, found: bool) {
        let c = if found { &self.hits } else { &self.misses };
        c.add(1);
    }

    fn stats(&self, entries: u64, bytes: u64, capacity: u64) -> CacheStats {
        let inserts = self.inserts.load(Ordering::Relaxed);
        CacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            inserts,
            evictions: inserts.saturating_sub(entries),
            entries,
            bytes,
            capacity,
        }
    }
}

/// The two caches of a database; either may be off (capacity 0).
pub struct TableCaches {
    blocks: Option<Cache<(u64, u32), Arc<Block>, BlockWeight>>,
    indexes: Option<Cache<u64, Arc<TableIndexes>, IndexWeight>>,
    block_counters: Counters,
    index_counters: Counters,
}

impl std::fmt::Debug for TableCaches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCaches")
            .field("metrics", &self.metrics())
            .finish()
    }
}

/// Entries a cache of `bytes` is sized for, at `per_entry` bytes each (quick_cache allocates
/// its table for an estimated count; the weight limit is what bounds memory).
fn estimated_items(bytes: u64, per_entry: u64) -> usize {
    usize::try_from(bytes / per_entry.max(1))
        .unwrap_or(usize::MAX)
        .clamp(16, 1 << 24)
}

impl TableCaches {
    /// Caches of `block_bytes` and `index_bytes` (0: that cache is off).
    pub fn new(block_bytes: u64, index_bytes: u64) -> TableCaches {
        TableCaches {
            blocks: (block_bytes > 0).then(|| {
                Cache::with_weighter(estimated_items(block_bytes, 4096), block_bytes, BlockWeight)
            }),
            indexes: (index_bytes > 0).then(|| {
                Cache::with_weighter(
                    estimated_items(index_bytes, 16 << 10),
                    index_bytes,
                    IndexWeight,
                )
            }),
            block_counters: Counters::default(),
            index_counters: Counters::default(),
        }
    }

    /// True if the block cache is on.
    pub fn caches_blocks(&self) -> bool {
        self.blocks.is_some()
    }

    /// True if the index cache is on (tables then keep no index in memory).
    pub fn caches_indexes(&self) -> bool {
        self.indexes.is_some()
    }

    /// Block `idx` of the table with cache id `table`, if cached; counted as a hit or miss
    /// when `counted` (the lookups of readers that fill the cache; compaction's and
    /// verification's are not, so the hit ratio is the readers').
    pub fn block(&self, table: u64, idx: u32, counted: bool) -> Option<Arc<Block>> {
        let cache = self.blocks.as_ref()?;
        let found = cache.get(&(table, idx));
        if counted {
            self.block_counters.hit(found.is_some());
        }
        found
    }

    /// Caches block `idx` of table `table`.
    pub fn insert_block(&self, table: u64, idx: u32, block: Arc<Block>) {
        if let Some(cache) = &self.blocks {
            cache.insert((table, idx), block);
            self.block_counters.inserts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The indexes of table `table`, if cached (counted as a hit or miss).
    pub fn indexes(&self, table: u64) -> Option<Arc<TableIndexes>> {
        let cache = self.indexes.as_ref()?;
        let found = cache.get(&table);
        self.index_counters.hit(found.is_some());
        found
    }

    /// Caches the indexes of table `table`.
    pub fn insert_indexes(&self, table: u64, v: Arc<TableIndexes>) {
        if let Some(cache) = &self.indexes {
            cache.insert(table, v);
            self.index_counters.inserts.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Both caches' statistics now.
    pub fn metrics(&self) -> CacheMetrics {
        let block = match &self.blocks {
            Some(c) => self
                .block_counters
                .stats(c.len() as u64, c.weight(), c.capacity()),
            None => CacheStats::default(),
        };
        let index = match &self.indexes {
            Some(c) => self
                .index_counters
                .stats(c.len() as u64, c.weight(), c.capacity()),
            None => CacheStats::default(),
        };
        CacheMetrics { block, index }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> Arc<Block> {
        // A valid one-entry block padded by its value: build it through the builder.
        let mut b = super::super::block_builder::BlockBuilder::new();
        let key = crate::key::key_with_version(b"k", 1);
        let v = vec![7u8; n];
        let value = crate::value::ValueRef {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: &v,
        };
        b.add(&key, &value);
        let raw = b.finish().to_vec();
        Arc::new(Block::decode(raw, std::path::Path::new("t"), 0).unwrap())
    }

    #[test]
    fn hits_misses_and_weight_stay_within_capacity() {
        // Proves a miss then a hit are counted, entries of different tables never meet, and
        // the weight stays within capacity however many blocks go in (evictions counted).
        let c = TableCaches::new(64 << 10, 0);
        assert!(c.caches_blocks() && !c.caches_indexes());
        assert!(c.block(1, 0, true).is_none());
        c.insert_block(1, 0, block(100));
        assert!(c.block(1, 0, true).is_some());
        assert!(c.block(2, 0, true).is_none(), "another table's block 0");
        let m = c.metrics().block;
        assert_eq!((m.hits, m.misses, m.inserts), (1, 2, 1));
        // Uncounted lookups (compaction, verification) find the same blocks, count nothing.
        assert!(c.block(1, 0, false).is_some() && c.block(9, 0, false).is_none());
        assert_eq!(c.metrics().block, m);
        for i in 0..1000u32 {
            c.insert_block(3, i, block(1000));
            assert!(c.metrics().block.bytes <= 64 << 10);
        }
        let m = c.metrics().block;
        assert!(m.evictions > 900, "{m:?}");
        assert_eq!(m.capacity, 64 << 10);
        assert!(m.hit_ratio() > 0.0 && m.hit_ratio() < 1.0);
        assert!(c.indexes(1).is_none());
        assert_eq!(c.metrics().index, CacheStats::default());
    }

    #[test]
    fn since_counts_from_the_earlier_snapshot_and_keeps_what_is_held_now() {
        // A cache of two blocks' weight: the third insert evicts, so `before` holds a hit, a
        // miss, inserts and an eviction, and each counter must be taken from it.
        let c = TableCaches::new(2 * (block(100).size_bytes() as u64 + ENTRY_OVERHEAD), 0);
        for i in 0..3 {
            c.insert_block(1, i, block(100));
        }
        let held = (0..3).find(|&i| c.block(1, i, false).is_some()).unwrap();
        assert!(c.block(1, held, true).is_some());
        assert!(c.block(1, 9, true).is_none());
        let before = c.metrics().block;
        assert!(
            before.hits > 0 && before.misses > 0 && before.evictions > 0,
            "{before:?}"
        );
        assert!(c.block(1, held, true).is_some());
        assert!(c.block(1, 8, true).is_none());
        let now = c.metrics().block;
        let d = now.since(&before);
        assert_eq!((d.hits, d.misses, d.inserts, d.evictions), (1, 1, 0, 0));
        assert_eq!(
            (d.entries, d.bytes, d.capacity),
            (now.entries, now.bytes, now.capacity)
        );
        assert_eq!(d.hit_ratio(), 0.5);
    }

    #[test]
    fn cache_ids_are_unique() {
        let a = next_cache_id();
        let b = next_cache_id();
        assert!(b > a);
    }
}

//! An open, immutable table: footer, meta, index and filter in memory; data blocks read on
//! demand through [`Table::read_block`].
//!
//! ```text
//! table := data_block{1..} ‖ filter_region? ‖ index_region ‖ meta_region ‖ footer (64 bytes)
//! ```
//!
//! Format page: docs/format/table.md.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

use super::block::Block;
use super::block_frame::decode_stored_block;
use super::bloom::BloomFilter;
use super::cache::{next_cache_id, TableIndexes};
use super::footer::{Footer, Region, FOOTER_LEN, SEALING_LEN};
use super::index::{BlockHandle, BlockIndex};
use super::meta::TableMeta;
use super::table_options::TableOpenOptions;
use crate::crypto::FileCipher;
use crate::error::{Error, Result};
use crate::io::StorageFile;
use crate::key::{compare_keys, is_valid_internal_key, user_key};
use crate::value::ValueRef;

/// An open table. Immutable after [`Table::open`]; shared as `Arc<Table>` by readers and
/// iterators on any thread (reads are positional, there is no cursor state).
pub struct Table {
    id: u64,
    /// This open table's key in the caches (unique in the process: cache.rs).
    cache_id: u64,
    file: Arc<dyn StorageFile>,
    size_bytes: u64,
    footer: Footer,
    meta: TableMeta,
    /// Index and filter, held here unless the index cache is on (then they are loaded through
    /// it on demand).
    resident: Option<Arc<TableIndexes>>,
    block_count: usize,
    opts: TableOpenOptions,
    /// The cipher of an encrypted table.
    cipher: Option<FileCipher>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("id", &self.id)
            .field("path", &self.file.path())
            .field("size_bytes", &self.size_bytes)
            .field("blocks", &self.block_count)
            .field("entries", &self.meta.entry_count)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Opens and validates the table in `file`: footer, meta, index and filter are read, their
    /// checksums verified and their consistency checked; with `OnTableRead` or
    /// `OnTableAndBlockRead` every data block is verified too.
    pub fn open(file: Arc<dyn StorageFile>, id: u64, opts: TableOpenOptions) -> Result<Arc<Table>> {
        let path = file.path().to_path_buf();
        let size_bytes = file.len()?;
        let footer_offset = size_bytes.checked_sub(FOOTER_LEN as u64).ok_or_else(|| {
            Error::corruption(
                &path,
                0,
                format!("table of {size_bytes} bytes is shorter than its {FOOTER_LEN}-byte footer"),
            )
        })?;
        let tail_offset = footer_offset.saturating_sub(SEALING_LEN as u64);
        let tail = file.read_vec_at(tail_offset, (size_bytes - tail_offset) as usize)?;
        let (sealing, footer_bytes) = tail.split_at(tail.len() - FOOTER_LEN);
        let sealing = (sealing.len() == SEALING_LEN).then_some(sealing);
        let footer = Footer::decode_tail(footer_bytes, sealing, &path, footer_offset)?;
        let cipher = match (&footer.sealing, &opts.keys) {
            (None, _) => None,
            (Some(s), Some(keys)) => {
                Some(keys.file_cipher(s.key_id, s.salt, &path, tail_offset)?)
            }
            (Some(_), None) => {
                return Err(Error::EncryptionKeyRequired {
                    dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
                })
            }
        };
        let meta_raw = read_region(file.as_ref(), footer.meta, cipher.as_ref())?;
        let meta = TableMeta::decode(&meta_raw, &path, footer.meta.offset)?;
        let indexes = Arc::new(read_indexes(file.as_ref(), &footer, cipher.as_ref())?);
        check_meta_against_index(&meta, &footer, &indexes.index, &path)?;
        let cache_id = next_cache_id();
        let cached = opts.caches.as_ref().filter(|c| c.caches_indexes());
        if let Some(caches) = cached {
            caches.insert_indexes(cache_id, indexes.clone());
        }
        let table = Table {
            id,
            cache_id,
            file,
            size_bytes,
            footer,
            meta,
            block_count: indexes.index.len(),
            resident: cached.is_none().then_some(indexes),
            opts,
            cipher,
        };
        if table.opts.verify_at_open() {
            table.verify_data_blocks()?;
        }
        Ok(Arc::new(table))
    }

    /// Calls `f` with the table's index and filter: the resident ones, or through the index
    /// cache (read, verified and decoded from the file on a miss).
    fn with_indexes<T>(&self, f: impl FnOnce(&TableIndexes) -> T) -> Result<T> {
        if let Some(r) = &self.resident {
            return Ok(f(r));
        }
        let loaded = self.indexes()?;
        Ok(f(&loaded))
    }

    /// The table's index and filter (see `Table::with_indexes`).
    pub fn indexes(&self) -> Result<Arc<TableIndexes>> {
        if let Some(r) = &self.resident {
            return Ok(r.clone());
        }
        let caches = self.opts.caches.as_ref().ok_or(Error::InvalidRequest(
            "a table without resident indexes needs the index cache",
        ))?;
        if let Some(v) = caches.indexes(self.cache_id) {
            return Ok(v);
        }
        let v = Arc::new(read_indexes(
            self.file.as_ref(),
            &self.footer,
            self.cipher.as_ref(),
        )?);
        caches.insert_indexes(self.cache_id, v.clone());
        Ok(v)
    }

    /// The data key id an encrypted table is sealed with; 0 for a plaintext one.
    pub fn key_id(&self) -> u64 {
        self.footer.sealing.map_or(0, |s| s.key_id)
    }

    /// The table's id (its file number).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// First internal key.
    pub fn smallest(&self) -> &[u8] {
        &self.meta.smallest
    }

    /// Last internal key.
    pub fn biggest(&self) -> &[u8] {
        &self.meta.biggest
    }

    /// Largest version of any entry.
    pub fn max_version(&self) -> u64 {
        self.meta.max_version
    }

    /// Number of entries.
    pub fn entry_count(&self) -> u64 {
        self.meta.entry_count
    }

    /// Number of distinct user keys.
    pub fn user_key_count(&self) -> u64 {
        self.meta.user_key_count
    }

    /// Size of the file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Raw (uncompressed) bytes of the data blocks.
    pub fn data_bytes(&self) -> u64 {
        self.meta.data_bytes
    }

    /// Bytes of kept-but-shadowed entries recorded by the writer.
    pub fn stale_data_bytes(&self) -> u64 {
        self.meta.stale_data_bytes
    }

    /// The full metadata record.
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    /// True if the table has a bloom filter.
    pub fn has_bloom(&self) -> bool {
        self.meta.has_bloom
    }

    /// False if `user_key` is certainly not in the table (always true without a filter, and
    /// when the filter cannot be loaded: the read that follows reports why).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.with_indexes(|ix| ix.filter.as_ref().is_none_or(|f| f.may_contain(user_key)))
            .unwrap_or(true)
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.block_count
    }

    /// The index of the block that holds the first entry `>= key` (`block_count()` if none).
    pub fn find_block(&self, key: &[u8]) -> Result<usize> {
        self.with_indexes(|ix| ix.index.find(key))
    }

    /// The user keys that cut the table's blocks into `parts` runs of about equal block
    /// count (the user key of the last entry before each cut), in order; fewer when the table
    /// has fewer blocks than `parts` or neighbouring cuts fall in one user key. For splitting
    /// work over threads (streams); a cut may fall among one key's versions, and a range that
    /// starts at the returned user key holds them all.
    pub fn split_keys(&self, parts: usize) -> Result<Vec<Vec<u8>>> {
        self.with_indexes(|ix| {
            let blocks = ix.index.len();
            // At most a cut per block boundary; then `j * blocks / parts >= j >= 1`.
            let parts = parts.min(blocks);
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for j in 1..parts {
                let key = user_key(ix.index.last_key(j * blocks / parts - 1));
                if keys.last().is_none_or(|k| k.as_slice() < key) {
                    keys.push(key.to_vec());
                }
            }
            keys
        })
    }

    /// Where data block `idx` lies in the file.
    pub fn block_handle(&self, idx: usize) -> Result<Option<BlockHandle>> {
        self.with_indexes(|ix| ix.index.handle(idx))
    }

    /// Bytes of memory the table holds for its index and filter (0 when the index cache holds
    /// them).
    pub fn memory_bytes(&self) -> usize {
        self.resident.as_ref().map_or(0, |r| r.size_bytes())
    }

    /// Data block `idx`, verified, decrypted, decompressed and decoded: the one place data
    /// blocks are read. Served from the block cache when it holds it, else read from the file
    /// (the checksum verified unless the verification mode says not to; decoding always
    /// validates the block) and cached.
    pub fn read_block(&self, idx: usize) -> Result<Arc<Block>> {
        self.read_block_with(idx, true)
    }

    /// [`Table::read_block`]; `fill_cache = false` (compaction, verification) uses a cached
    /// block but does not cache one it had to read.
    pub fn read_block_with(&self, idx: usize, fill_cache: bool) -> Result<Arc<Block>> {
        let caches = self.opts.caches.as_ref().filter(|c| c.caches_blocks());
        let key = u32::try_from(idx).map_err(|_| Error::InvalidRequest("block index over u32"))?;
        if let Some(c) = caches {
            if let Some(b) = c.block(self.cache_id, key, fill_cache) {
                return Ok(b);
            }
        }
        let block = Arc::new(self.load_block(idx, self.opts.verify_on_block_read())?);
        if let (Some(c), true) = (caches, fill_cache) {
            c.insert_block(self.cache_id, key, block.clone());
        }
        Ok(block)
    }

    /// Verifies every checksum of the file: metadata regions and every data block.
    pub fn verify_checksums(&self) -> Result<()> {
        for r in [self.footer.filter, self.footer.index, self.footer.meta] {
            if r.len > 0 {
                read_region(self.file.as_ref(), r, self.cipher.as_ref())?;
            }
        }
        self.verify_data_blocks()
    }

    /// The newest entry of `key`'s user key at or below `key`'s version: the first entry
    /// `>= key` if it has the same user key. `key` is an internal key (user key @ read version).
    /// The entry is returned in place, in its block: nothing is copied until the caller asks.
    pub fn get(&self, key: &[u8]) -> Result<Option<BlockEntry>> {
        Ok(match self.probe(key)? {
            Probe::Found(e) => Some(e),
            Probe::FilteredOut | Probe::Absent => None,
        })
    }

    /// [`Table::get`], saying whether the bloom filter ruled the table out (no block read).
    pub fn probe(&self, key: &[u8]) -> Result<Probe> {
        if !is_valid_internal_key(key) {
            return Err(Error::InvalidRequest("Table::get needs an internal key"));
        }
        // One look at the indexes (one index-cache lookup when they are not resident).
        let idx = self.with_indexes(|ix| {
            let absent = ix
                .filter
                .as_ref()
                .is_some_and(|f| !f.may_contain(user_key(key)));
            (!absent).then(|| ix.index.find(key))
        })?;
        let Some(idx) = idx else {
            return Ok(Probe::FilteredOut);
        };
        if idx >= self.block_count {
            return Ok(Probe::Absent);
        }
        let block = self.read_block(idx)?;
        let pos = block.seek(key);
        if pos >= block.len() {
            debug_assert!(false, "block {idx}'s last key is >= the probe");
            return Ok(Probe::Absent);
        }
        if !block.same_user_key_at(pos, key) {
            return Ok(Probe::Absent);
        }
        Ok(Probe::Found(BlockEntry { block, pos }))
    }

    /// Reads and decodes block `idx`, verifying its checksum if `verify`.
    fn load_block(&self, idx: usize, verify: bool) -> Result<Block> {
        let BlockHandle { offset, stored_len } = self
            .block_handle(idx)?
            .ok_or(Error::InvalidRequest("block index out of range"))?;
        // The index was validated to lie inside the data region, so this read is bounded.
        let stored = self.file.read_vec_at(offset, stored_len as usize)?;
        let raw = decode_stored_block(
            self.path(),
            offset,
            stored,
            verify,
            true,
            self.cipher.as_ref(),
        )?;
        let block = Block::decode(raw, self.path(), offset)?;
        let mut last = Vec::new();
        block.key_at(block.len().saturating_sub(1), &mut last);
        if !self.with_indexes(|ix| last == ix.index.last_key(idx))? {
            return Err(Error::corruption(
                self.path(),
                offset,
                format!("block {idx}'s last key differs from its index entry"),
            ));
        }
        Ok(block)
    }

    /// Reads and verifies every data block; checks entry count and smallest key against meta.
    fn verify_data_blocks(&self) -> Result<()> {
        let mut entries = 0u64;
        for i in 0..self.block_count {
            let block = self.load_block(i, true)?;
            if i == 0 {
                let mut first = Vec::new();
                block.key_at(0, &mut first);
                if compare_keys(&first, &self.meta.smallest) != Ordering::Equal {
                    return Err(Error::corruption(
                        self.path(),
                        0,
                        "first key differs from the meta's smallest key",
                    ));
                }
            }
            entries += block.len() as u64;
        }
        if entries != self.meta.entry_count {
            return Err(Error::corruption(
                self.path(),
                self.footer.meta.offset,
                format!(
                    "blocks hold {entries} entries, meta says {}",
                    self.meta.entry_count
                ),
            ));
        }
        Ok(())
    }
}

/// What [`Table::probe`] found.
#[derive(Clone, Debug)]
pub enum Probe {
    /// The bloom filter says the user key is not in the table (nothing read).
    FilteredOut,
    /// The filter let the key through (or there is none), and no version at or below the
    /// probe's is in the table.
    Absent,
    /// The newest such version.
    Found(BlockEntry),
}

/// One entry of a data block, found by [`Table::get`]; holds the block (usually shared with
/// the block cache) so the entry is read in place.
#[derive(Clone, Debug)]
pub struct BlockEntry {
    block: Arc<Block>,
    /// REQUIRES: `pos < block.len()`.
    pos: usize,
}

impl BlockEntry {
    /// The entry's version.
    pub fn version(&self) -> u64 {
        self.block.version_at(self.pos)
    }

    /// The entry's value struct.
    pub fn value(&self) -> ValueRef<'_> {
        self.block.value_at(self.pos)
    }

    /// The entry's internal key (a copy; tests check it against the version).
    #[cfg(test)]
    pub fn key(&self) -> Vec<u8> {
        let mut k = Vec::new();
        self.block.key_at(self.pos, &mut k);
        k
    }

    /// The key and value struct, copied (tests compare them with a model).
    #[cfg(test)]
    pub fn to_pair(&self) -> (Vec<u8>, crate::value::ValueStruct) {
        (self.key(), self.value().to_owned())
    }
}

/// Reads, verifies and decodes the index and filter regions.
fn read_indexes(
    file: &dyn StorageFile,
    footer: &Footer,
    cipher: Option<&FileCipher>,
) -> Result<TableIndexes> {
    let path = file.path();
    let index_raw = read_region(file, footer.index, cipher)?;
    let index = BlockIndex::decode(&index_raw, path, footer.index.offset, footer.data_end())?;
    let filter = match footer.filter.len {
        0 => None,
        _ => {
            let raw = read_region(file, footer.filter, cipher)?;
            Some(BloomFilter::decode(raw, path, footer.filter.offset)?)
        }
    };
    Ok(TableIndexes { index, filter })
}

/// Cross-checks the meta record with the index and the filter region.
fn check_meta_against_index(
    meta: &TableMeta,
    footer: &Footer,
    index: &BlockIndex,
    path: &Path,
) -> Result<()> {
    let bad = |r: &str| {
        Err(Error::corruption(
            path,
            footer.meta.offset,
            format!("table meta: {r}"),
        ))
    };
    if meta.biggest != index.last_key(index.len().saturating_sub(1)) {
        return bad("biggest key differs from the last index key");
    }
    if meta.entry_count < index.len() as u64 {
        return bad("fewer entries than data blocks");
    }
    if meta.has_bloom != (footer.filter.len > 0) {
        return bad("has_bloom disagrees with the filter region");
    }
    Ok(())
}

/// Reads a metadata region (always checksum-verified, never compressed). The footer check
/// bounded `region` by the file size, so the allocation is justified by the file.
fn read_region(
    file: &dyn StorageFile,
    region: Region,
    cipher: Option<&FileCipher>,
) -> Result<Vec<u8>> {
    let len = usize::try_from(region.len)
        .map_err(|_| Error::corruption(file.path(), region.offset, "region larger than memory"))?;
    let stored = file.read_vec_at(region.offset, len)?;
    decode_stored_block(file.path(), region.offset, stored, true, false, cipher)
}

#[cfg(test)]
mod tests {
    use super::super::footer::TABLE_MAGIC;
    use super::super::test_support::*;
    use super::super::{KvIterator, TableBuilder, TableBuilderOptions, TableIterator};
    use super::*;
    use crate::io::{FsStorage, OpenMode, Storage};
    use crate::key::key_with_version;
    use crate::key::same_user_key;
    use crate::options::{ChecksumVerificationMode, Compression};
    use crate::value::ValueStruct;
    use proptest::prelude::*;

    #[test]
    fn split_keys_cut_the_blocks_into_equal_runs() {
        // Proves split_keys(parts) returns, in order, the user key of the last entry of block
        // j * blocks / parts - 1 for each j in 1..parts (read from the blocks themselves), no
        // cut for one part, and at most blocks - 1 cuts when parts exceeds the block count.
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Entry> = (0..2000u32)
            .map(|i| {
                (
                    key_with_version(format!("key{i:05}").as_bytes(), 1),
                    ValueStruct {
                        meta: 0,
                        user_meta: 0,
                        expires_at: 0,
                        value: b"v".to_vec(),
                    },
                )
            })
            .collect();
        let (t, _) = build(dir.path(), &entries, small_blocks(Compression::None));
        let blocks = t.block_count();
        assert!(blocks > 40, "{blocks} blocks");
        let last_user_key = |b: usize| {
            let block = t.read_block(b).unwrap();
            let mut k = Vec::new();
            block.key_at(block.len() - 1, &mut k);
            crate::key::user_key(&k).to_vec()
        };
        for parts in [2usize, 3, 4, 7, 16] {
            let want: Vec<Vec<u8>> = (1..parts)
                .map(|j| last_user_key(j * blocks / parts - 1))
                .collect();
            assert_eq!(t.split_keys(parts).unwrap(), want, "parts {parts}");
        }
        assert!(t.split_keys(1).unwrap().is_empty());
        let all = t.split_keys(blocks * 3).unwrap();
        assert_eq!(all.len(), blocks - 1);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }

    /// The model answer of `seek`: index of the first entry >= key.
    fn model_seek(entries: &[Entry], key: &[u8]) -> usize {
        entries.partition_point(|e| compare_keys(&e.0, key).is_lt())
    }

    fn check_seeks(t: &Arc<Table>, entries: &[Entry], probe: &[u8]) {
        let mut it = TableIterator::new(t.clone());
        let i = model_seek(entries, probe);
        it.seek(probe).unwrap();
        assert_eq!(it.valid(), i < entries.len());
        if i < entries.len() {
            assert_eq!(it.key(), &entries[i].0[..]);
            it.next().unwrap();
            assert_eq!(it.valid(), i + 1 < entries.len());
            if it.valid() {
                assert_eq!(it.key(), &entries[i + 1].0[..]);
            }
        }
        let j = entries
            .partition_point(|e| compare_keys(&e.0, probe).is_le())
            .checked_sub(1);
        it.seek_for_prev(probe).unwrap();
        assert_eq!(it.valid(), j.is_some());
        if let Some(j) = j {
            assert_eq!(it.key(), &entries[j].0[..]);
            it.prev().unwrap();
            assert_eq!(it.valid(), j > 0);
            if j > 0 {
                assert_eq!(it.key(), &entries[j - 1].0[..]);
            }
        }
        let want = entries
            .get(i)
            .filter(|e| same_user_key(&e.0, probe))
            .cloned();
        assert_eq!(t.get(probe).unwrap().map(|e| e.to_pair()), want);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn table_round_trips_for_every_compression(
            entries in entries(300), c in 0usize..4,
            probes in proptest::collection::vec((super::super::test_support::user_key(), prop_oneof![0u64..7, Just(u64::MAX)]), 1..24),
        ) {
            // Proves build → open → iterate both ways returns the input, and seek,
            // seek_for_prev, next/prev after them and get equal a sorted-Vec model, with small
            // blocks so every walk crosses block boundaries; for each compression.
            let dir = tempfile::tempdir().unwrap();
            let (t, s) = build(dir.path(), &entries, small_blocks(ALL_COMPRESSIONS[c]));
            prop_assert_eq!(s.entry_count, entries.len() as u64);
            prop_assert_eq!(t.smallest(), &entries[0].0[..]);
            prop_assert_eq!(t.biggest(), &entries[entries.len() - 1].0[..]);
            let max_version = entries.iter().map(|e| crate::key::version(&e.0)).max().unwrap();
            prop_assert_eq!(t.max_version(), max_version);
            prop_assert_eq!(t.size_bytes(), s.size_bytes);
            prop_assert_eq!(t.block_count(), s.block_count as usize);
            let mut it = TableIterator::new(t.clone());
            prop_assert_eq!(&collect_forward(&mut it).unwrap(), &entries);
            prop_assert_eq!(&collect_backward(&mut it).unwrap(), &entries);
            for (u, v) in probes {
                check_seeks(&t, &entries, &key_with_version(&u, v));
            }
            for (k, _) in entries.iter().step_by(7) {
                check_seeks(&t, &entries, k);
            }
            t.verify_checksums().unwrap();
        }
    }

    #[test]
    fn get_returns_the_newest_version_at_or_below_the_read_version() {
        // Proves get(k@rv) picks the newest version <= rv, None below the oldest, and that the
        // bloom filter rules out absent user keys (without a filter everything "may" match).
        let dir = tempfile::tempdir().unwrap();
        let v = |s: &str| ValueStruct {
            value: s.as_bytes().to_vec(),
            ..Default::default()
        };
        let entries = vec![
            (key_with_version(b"a", 3), v("a3")),
            (key_with_version(b"k", 9), v("k9")),
            (key_with_version(b"k", 5), v("k5")),
            (key_with_version(b"k", 1), v("k1")),
            (key_with_version(b"ka", 2), v("ka2")),
        ];
        let (t, _) = build(dir.path(), &entries, small_blocks(Compression::Snappy));
        let get = |u: &[u8], rv| {
            t.get(&key_with_version(u, rv))
                .unwrap()
                .map(|e| (e.version(), e.key(), e.value().value.to_vec()))
                .map(|(ver, key, value)| {
                    assert_eq!(key, key_with_version(u, ver));
                    value
                })
        };
        assert_eq!(get(b"k", 100), Some(b"k9".to_vec()));
        assert_eq!(get(b"k", 7), Some(b"k5".to_vec()));
        assert_eq!(get(b"k", 5), Some(b"k5".to_vec()));
        assert_eq!(get(b"k", 0), None);
        assert_eq!(get(b"ka", 2), Some(b"ka2".to_vec()));
        assert_eq!(get(b"b", 9), None);
        assert!(t.has_bloom() && t.may_contain(b"k") && t.may_contain(b"ka"));
        let absent = (0..1000)
            .filter(|i| t.may_contain(format!("x{i}").as_bytes()))
            .count();
        assert!(absent < 100, "{absent} of 1000 absent keys pass the filter");
        assert!(matches!(t.get(b"short"), Err(Error::InvalidRequest(_))));
        let no_bloom = TableBuilderOptions {
            bloom_false_positive: 0.0,
            ..small_blocks(Compression::None)
        };
        let (t, _) = build(dir.path(), &entries, no_bloom);
        assert!(!t.has_bloom() && t.may_contain(b"zzz"));
        assert_eq!(
            t.get(&key_with_version(b"k", 6))
                .unwrap()
                .unwrap()
                .value()
                .value,
            b"k5"
        );
    }

    /// A valid multi-block table's bytes.
    fn table_bytes(dir: &Path) -> Vec<u8> {
        let entries: Vec<Entry> = (0..200u32)
            .map(|i| {
                (
                    key_with_version(format!("key{i:05}").as_bytes(), 1),
                    ValueStruct {
                        value: vec![b'v'; (i % 50) as usize],
                        ..Default::default()
                    },
                )
            })
            .collect();
        let (t, _) = build(dir, &entries, small_blocks(Compression::Lz4));
        assert!(t.block_count() > 10);
        std::fs::read(t.path()).unwrap()
    }

    fn open_bytes(dir: &Path, bytes: &[u8], mode: ChecksumVerificationMode) -> Result<Arc<Table>> {
        let name = format!("m{}.sst", crc32c::crc32c(bytes));
        let _ = std::fs::remove_file(dir.join(&name));
        Table::open(
            file_with(dir, &name, bytes),
            7,
            TableOpenOptions {
                checksum_verification_mode: mode,
                keys: None,
                caches: None,
            },
        )
    }

    fn rewrite_footer(bytes: &mut [u8], version: u32, edit: impl FnOnce(&mut Footer)) {
        let at = bytes.len() - FOOTER_LEN;
        let mut f = Footer::decode(&bytes[at..], Path::new("x"), at as u64).unwrap();
        edit(&mut f);
        bytes[at..].copy_from_slice(&f.encode_version(version));
    }

    #[test]
    fn every_open_check_fires() {
        // Proves truncation at many offsets, bad magic, bad footer crc, a newer version, a
        // region past the end, overlapping regions and an index pointing outside the data
        // each fail open with the documented error (and never an I/O error from a bad read).
        let dir = tempfile::tempdir().unwrap();
        let good = table_bytes(dir.path());
        let n = good.len();
        let mode = ChecksumVerificationMode::OnBlockRead;
        open_bytes(dir.path(), &good, mode).unwrap();
        let cuts: Vec<usize> = (0..n.saturating_sub(300))
            .step_by(97)
            .chain(n.saturating_sub(300)..n)
            .collect();
        for cut in cuts {
            let e = open_bytes(dir.path(), &good[..cut], mode).unwrap_err();
            assert!(e.is_corruption(), "cut at {cut}: {e}");
        }
        let mut magic = good.clone();
        magic[n - 1] ^= 0x40;
        assert!(matches!(open_bytes(dir.path(), &magic, mode),
            Err(Error::Corruption { offset, .. }) if offset == (n - 8) as u64));
        let mut crc = good.clone();
        crc[n - FOOTER_LEN + 20] ^= 1;
        assert!(matches!(open_bytes(dir.path(), &crc, mode),
            Err(Error::ChecksumMismatch { offset, .. }) if offset == (n - FOOTER_LEN) as u64));
        let mut newer = good.clone();
        rewrite_footer(&mut newer, 3, |_| {});
        assert!(matches!(
            open_bytes(dir.path(), &newer, mode),
            Err(Error::UnsupportedVersion { found: 3, .. })
        ));
        let mut past_end = good.clone();
        rewrite_footer(&mut past_end, 1, |f| f.index.len += 1000);
        let mut overlap = good.clone();
        rewrite_footer(&mut overlap, 1, |f| f.filter.len += 1);
        for (name, bytes) in [("past end", past_end), ("overlap", overlap)] {
            let e = open_bytes(dir.path(), &bytes, mode).unwrap_err();
            assert!(
                matches!(e, Error::Corruption { offset, .. } if offset == (n - FOOTER_LEN) as u64),
                "{name}: {e}"
            );
        }
        // Index entry 3 moved 1 byte: blocks no longer adjacent. Checksums resealed.
        let mut index = good.clone();
        let at = n - FOOTER_LEN;
        let f = Footer::decode(&good[at..], Path::new("x"), at as u64).unwrap();
        let mut pos = f.index.offset as usize + 4;
        for _ in 0..3 {
            pos += 14 + u16::from_le_bytes([index[pos + 12], index[pos + 13]]) as usize;
        }
        index[pos] ^= 1;
        reseal(&mut index);
        let e = open_bytes(dir.path(), &index, mode).unwrap_err();
        assert!(
            matches!(e, Error::Corruption { offset, .. } if offset == f.index.offset),
            "{e}"
        );
        assert_eq!(
            u64::from_le_bytes(good[n - 8..].try_into().unwrap()),
            TABLE_MAGIC
        );
    }

    #[test]
    fn data_block_bit_flip_is_a_checksum_mismatch_at_its_offset() {
        // Proves a flipped bit in data block 2 is reported at that block's offset: on read with
        // OnBlockRead, at open with OnTableRead, by verify_checksums and through an iterator;
        // with NoVerification the read is Ok or Corruption, never a panic.
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = table_bytes(dir.path());
        let good = open_bytes(dir.path(), &bytes, ChecksumVerificationMode::OnBlockRead).unwrap();
        let h = good.block_handle(2).unwrap().unwrap();
        bytes[h.offset as usize + 3] ^= 0x08;
        let is_mismatch = |r: Result<_>| matches!(r, Err(Error::ChecksumMismatch { offset, .. }) if offset == h.offset);
        let t = open_bytes(dir.path(), &bytes, ChecksumVerificationMode::OnBlockRead).unwrap();
        assert!(t.read_block(1).is_ok());
        assert!(is_mismatch(t.read_block(2).map(|_| ())));
        assert!(is_mismatch(t.verify_checksums()));
        let mut it = TableIterator::new(t.clone());
        assert!(is_mismatch(collect_forward(&mut it).map(|_| ())));
        assert!(!it.valid());
        assert!(is_mismatch(
            open_bytes(dir.path(), &bytes, ChecksumVerificationMode::OnTableRead).map(|_| ())
        ));
        let t = open_bytes(dir.path(), &bytes, ChecksumVerificationMode::NoVerification).unwrap();
        if let Err(e) = t.read_block(2) {
            assert!(
                matches!(e, Error::Corruption { offset, .. } if offset == h.offset),
                "{e}"
            );
        }
    }

    #[test]
    fn open_time_verification_checks_counts_against_blocks() {
        // Proves a table whose meta entry count disagrees with its blocks opens with
        // OnBlockRead (metadata is consistent in itself) but is refused by OnTableRead.
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = table_bytes(dir.path());
        let n = bytes.len();
        let f = Footer::decode(
            &bytes[n - FOOTER_LEN..],
            Path::new("x"),
            (n - FOOTER_LEN) as u64,
        )
        .unwrap();
        let meta_at = f.meta.offset as usize;
        let key_len = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
        let biggest_at = meta_at + 2 + key_len(meta_at);
        let entry_count_at = biggest_at + 2 + key_len(biggest_at) + 8;
        bytes[entry_count_at] += 1;
        reseal(&mut bytes);
        assert!(open_bytes(dir.path(), &bytes, ChecksumVerificationMode::OnBlockRead).is_ok());
        let e = open_bytes(dir.path(), &bytes, ChecksumVerificationMode::OnTableRead).unwrap_err();
        assert!(e.to_string().contains("entries"), "{e}");
    }

    fn valid_table_in_memory() -> Vec<u8> {
        let file = MemFile::new(Vec::new());
        let mut b = TableBuilder::new(file.clone(), small_blocks(Compression::Snappy)).unwrap();
        for i in 0..60u32 {
            let v = ValueStruct {
                value: vec![b'q'; (i % 30) as usize],
                ..Default::default()
            };
            b.add(
                &key_with_version(format!("k{:03}", i / 3).as_bytes(), u64::from(9 - i % 3)),
                vref(&v),
            )
            .unwrap();
        }
        b.finish().unwrap();
        let n = file.len().unwrap() as usize;
        file.read_vec_at(0, n).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_bytes_never_panic_on_open(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                            with_magic: bool) {
            // Proves arbitrary bytes (optionally ending in a sealed footer with the magic) open
            // and iterate or fail with a typed error (the fuzz target's body).
            let mut bytes = bytes;
            if with_magic && bytes.len() >= FOOTER_LEN {
                let n = bytes.len();
                bytes[n - 8..].copy_from_slice(&TABLE_MAGIC.to_le_bytes());
                reseal(&mut bytes);
            }
            crate::fuzzing::table_open(&bytes);
        }

        #[test]
        fn mutated_tables_never_panic(edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
                                      cut in any::<prop::sample::Index>(), truncate: bool, seal: bool) {
            // Proves a valid table with random bytes changed (with checksums recomputed, so the
            // decoders behind them run) or truncated opens and iterates or fails typed.
            let mut bytes = valid_table_in_memory();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            if seal {
                reseal(&mut bytes);
            }
            crate::fuzzing::table_open(&bytes);
        }
    }

    #[test]
    fn fs_and_memory_files_agree() {
        // Proves the in-memory fixture builds the same bytes the real file system does.
        let dir = tempfile::tempdir().unwrap();
        let mem = valid_table_in_memory();
        let fs = FsStorage::new()
            .open(&dir.path().join("t"), OpenMode::CreateNew)
            .unwrap();
        let mut b = TableBuilder::new(fs.clone(), small_blocks(Compression::Snappy)).unwrap();
        for i in 0..60u32 {
            let v = ValueStruct {
                value: vec![b'q'; (i % 30) as usize],
                ..Default::default()
            };
            b.add(
                &key_with_version(format!("k{:03}", i / 3).as_bytes(), u64::from(9 - i % 3)),
                vref(&v),
            )
            .unwrap();
        }
        b.finish().unwrap();
        assert_eq!(std::fs::read(dir.path().join("t")).unwrap(), mem);
    }
}

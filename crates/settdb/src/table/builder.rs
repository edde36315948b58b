//! Writes a table front to back: data blocks as they fill, then filter, index, meta, footer.
//!
//! ```text
//! table := data_block{1..} ‖ filter_region? ‖ index_region ‖ meta_region ‖ footer (64 bytes)
//! ```
//!
//! Memory is bounded by one write chunk, one block, the index, and 8 bytes per distinct user
//! key for the filter, not by the table size. Format page: docs/format/table.md.

use std::sync::Arc;

use super::block_builder::{entry_len, BlockBuilder, COUNT_LEN, OFFSET_LEN};
use super::block_frame::append_stored_block;
use super::bloom::{bloom_hash, BloomFilter};
use super::chunk_writer::ChunkWriter;
use super::compression::{Compressor, MAX_BLOCK_BYTES};
use super::footer::{Footer, Region, Sealing, FOOTER_LEN};
use super::index::BlockHandle;
use super::index_builder::IndexBuilder;
use super::meta::TableMeta;
use super::table_options::TableBuilderOptions;
use crate::crypto::FileCipher;
use crate::error::{Error, Result};
use crate::io::StorageFile;
use crate::key::{compare_keys, is_valid_internal_key, same_user_key, user_key, version};
use crate::value::{meta, ValuePointer, ValueRef};

/// Rough size of the meta region beyond its two keys (for size estimates).
const META_FIXED_ESTIMATE: usize = 64;

/// What [`TableBuilder::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSummary {
    /// Bytes of the file.
    pub size_bytes: u64,
    /// First internal key.
    pub smallest: Vec<u8>,
    /// Last internal key.
    pub biggest: Vec<u8>,
    /// Largest version of any entry.
    pub max_version: u64,
    /// Entries written.
    pub entry_count: u64,
    /// Distinct user keys written.
    pub user_key_count: u64,
    /// Raw (uncompressed) bytes of the data blocks.
    pub data_bytes: u64,
    /// Data blocks written.
    pub block_count: u32,
    /// Stored bytes of the index region.
    pub index_bytes: u64,
    /// Stored bytes of the filter region (0: no filter).
    pub filter_bytes: u64,
    /// The stale-data count recorded in the meta block.
    pub stale_data_bytes: u64,
}

/// Streams sorted entries into a new table file.
///
/// Not thread-safe by design: one builder per output file, driven by one flush or compaction.
/// Invariant: entries added so far are valid internal keys in strictly ascending order.
#[derive(Debug)]
pub struct TableBuilder {
    opts: TableBuilderOptions,
    writer: ChunkWriter,
    compressor: Compressor,
    block: BlockBuilder,
    index: IndexBuilder,
    /// Filter hashes of the distinct user keys (only when a filter is configured).
    key_hashes: Vec<u64>,
    smallest: Vec<u8>,
    last_key: Vec<u8>,
    max_version: u64,
    entry_count: u64,
    user_key_count: u64,
    data_bytes: u64,
    stale_data_bytes: u64,
    /// The cipher of an encrypted table.
    cipher: Option<FileCipher>,
}

impl TableBuilder {
    /// A builder writing into `file`, which must be empty.
    pub fn new(file: Arc<dyn StorageFile>, opts: TableBuilderOptions) -> Result<Self> {
        opts.validate()?;
        if file.len()? != 0 {
            return Err(Error::InvalidRequest(
                "a table must be built into an empty file",
            ));
        }
        Ok(TableBuilder {
            opts,
            writer: ChunkWriter::new(file),
            compressor: Compressor::new(opts.compression)?,
            block: BlockBuilder::new(),
            index: IndexBuilder::new(),
            key_hashes: Vec::new(),
            smallest: Vec::new(),
            last_key: Vec::new(),
            max_version: 0,
            entry_count: 0,
            user_key_count: 0,
            data_bytes: 0,
            stale_data_bytes: 0,
            cipher: None,
        })
    }

    /// Seals every block and region of the table with `cipher` (an encrypted database's
    /// tables); `None` leaves it plaintext. Call before the first `add`.
    pub fn with_cipher(mut self, cipher: Option<FileCipher>) -> Self {
        debug_assert!(self.entry_count == 0);
        self.cipher = cipher;
        self
    }

    /// Adds an entry. Keys must be valid internal keys in strictly ascending `compare_keys`
    /// order; a violation (or a malformed value) is `InvalidRequest` and a debug assertion.
    pub fn add(&mut self, key: &[u8], value: ValueRef<'_>) -> Result<()> {
        self.writer.check()?;
        if let Err(e) = self.check_entry(key, &value) {
            debug_assert!(false, "TableBuilder::add misuse: {e}");
            return Err(e);
        }
        if !self.block.is_empty() && self.block.size_after(key, &value) > self.opts.block_size {
            self.finish_block()?;
        }
        let new_user_key = self.last_key.is_empty() || !same_user_key(&self.last_key, key);
        if new_user_key {
            self.user_key_count += 1;
            if self.opts.bloom_false_positive > 0.0 {
                self.key_hashes.push(bloom_hash(user_key(key)));
            }
        }
        if self.entry_count == 0 {
            self.smallest.extend_from_slice(key);
        }
        self.block.add(key, &value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.max_version = self.max_version.max(version(key));
        self.entry_count += 1;
        Ok(())
    }

    /// Bytes the table would have if finished now (the open block counted uncompressed).
    pub fn estimated_size(&self) -> u64 {
        let filter = match self.opts.bloom_false_positive > 0.0 {
            true => BloomFilter::estimated_size_bytes(
                self.key_hashes.len(),
                self.opts.bloom_false_positive,
            ),
            false => 0,
        };
        let rest = self.block.size_bytes()
            + self.index.size_bytes()
            + filter
            + 2 * self.last_key.len()
            + META_FIXED_ESTIMATE
            + FOOTER_LEN;
        self.writer.offset() + rest as u64
    }

    /// True if no entry was added.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// True once the table reached its target size and `next_key` starts a new user key: all
    /// versions of one user key stay in one table (reads and compaction rely on it).
    pub fn should_split_before(&self, next_key: &[u8]) -> bool {
        !self.last_key.is_empty()
            && self.estimated_size() >= self.opts.target_table_size_bytes
            && !same_user_key(&self.last_key, next_key)
    }

    /// Sets the stale-data count recorded in the meta block.
    pub fn set_stale_data_bytes(&mut self, bytes: u64) {
        self.stale_data_bytes = bytes;
    }

    /// Writes the last block, the filter, index, meta and footer, and syncs the file. The
    /// caller then syncs the directory before anything refers to the table (rule 1).
    pub fn finish(mut self) -> Result<TableSummary> {
        self.writer.check()?;
        if self.entry_count == 0 {
            return Err(Error::InvalidRequest(
                "cannot finish a table with no entries",
            ));
        }
        if !self.block.is_empty() {
            self.finish_block()?;
        }
        let filter = match self.opts.bloom_false_positive > 0.0 {
            true => self.write_region(&BloomFilter::build(
                &self.key_hashes,
                self.opts.bloom_false_positive,
            ))?,
            false => Region::default(),
        };
        let index = self.write_region(&self.index.finish())?;
        let meta = self.meta();
        let mut raw = Vec::new();
        meta.encode(&mut raw);
        let meta_region = self.write_region(&raw)?;
        let footer = Footer {
            filter,
            index,
            meta: meta_region,
            sealing: self.cipher.as_ref().map(|c| Sealing {
                key_id: c.key_id,
                salt: c.salt,
            }),
        };
        self.writer.buf_mut().extend_from_slice(&footer.encode());
        let size_bytes = self.writer.offset();
        self.writer.sync()?;
        Ok(TableSummary {
            size_bytes,
            smallest: meta.smallest,
            biggest: meta.biggest,
            max_version: meta.max_version,
            entry_count: meta.entry_count,
            user_key_count: meta.user_key_count,
            data_bytes: meta.data_bytes,
            block_count: self.index.block_count(),
            index_bytes: index.len,
            filter_bytes: filter.len,
            stale_data_bytes: meta.stale_data_bytes,
        })
    }

    /// Refuses invalid keys, out-of-order keys, malformed values and oversized entries.
    fn check_entry(&self, key: &[u8], value: &ValueRef<'_>) -> Result<()> {
        if !is_valid_internal_key(key) {
            return Err(Error::InvalidRequest(
                "table key is not a valid internal key",
            ));
        }
        if !self.last_key.is_empty() && compare_keys(&self.last_key, key).is_ge() {
            return Err(Error::InvalidRequest(
                "table keys must be added in strictly ascending order",
            ));
        }
        if value.meta & !meta::ALL != 0 {
            return Err(Error::InvalidRequest("value has unknown meta bits"));
        }
        if value.meta & meta::VALUE_POINTER != 0 && value.value.len() != ValuePointer::ENCODED_LEN {
            return Err(Error::InvalidRequest(
                "value-pointer entry is not a 12-byte pointer",
            ));
        }
        if entry_len(0, key, value) + OFFSET_LEN + COUNT_LEN > MAX_BLOCK_BYTES {
            return Err(Error::InvalidRequest("entry too large for a table block"));
        }
        Ok(())
    }

    /// Compresses and frames the open block into the write buffer and indexes it.
    fn finish_block(&mut self) -> Result<()> {
        debug_assert!(!self.block.is_empty());
        let offset = self.writer.offset();
        let raw = self.block.finish();
        debug_assert!(raw.len() <= MAX_BLOCK_BYTES);
        self.data_bytes += raw.len() as u64;
        let seal = self.cipher.as_ref().map(|c| (c, offset));
        let stored =
            append_stored_block(self.writer.buf_mut(), raw, Some(&mut self.compressor), seal)?;
        let stored_len =
            u32::try_from(stored).map_err(|_| Error::InvalidRequest("stored block over 4 GiB"))?;
        self.index
            .add(self.block.last_key(), BlockHandle { offset, stored_len });
        self.block.reset();
        self.writer.maybe_flush()
    }

    /// Appends an uncompressed metadata region.
    fn write_region(&mut self, raw: &[u8]) -> Result<Region> {
        let offset = self.writer.offset();
        let seal = self.cipher.as_ref().map(|c| (c, offset));
        let len = append_stored_block(self.writer.buf_mut(), raw, None, seal)?;
        self.writer.maybe_flush()?;
        Ok(Region {
            offset,
            len: len as u64,
        })
    }

    fn meta(&self) -> TableMeta {
        TableMeta {
            smallest: self.smallest.clone(),
            biggest: self.last_key.clone(),
            max_version: self.max_version,
            entry_count: self.entry_count,
            user_key_count: self.user_key_count,
            data_bytes: self.data_bytes,
            stale_data_bytes: self.stale_data_bytes,
            compression: self.opts.compression,
            has_bloom: self.opts.bloom_false_positive > 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Table, TableIterator, TableOpenOptions};
    use super::*;
    use crate::key::key_with_version;
    use crate::options::Compression;
    use crate::value::ValueStruct;
    use proptest::prelude::*;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn opts(target: u64) -> TableBuilderOptions {
        TableBuilderOptions {
            target_table_size_bytes: target,
            ..small_blocks(Compression::Snappy)
        }
    }

    /// Builds tables from `entries`, starting a new one whenever the builder asks to split.
    fn split_into_tables(entries: &[Entry], target: u64) -> Vec<Arc<Table>> {
        let mut tables = Vec::new();
        let mut file = MemFile::new(Vec::new());
        let mut b = TableBuilder::new(file.clone(), opts(target)).unwrap();
        for (k, v) in entries {
            if b.should_split_before(k) {
                b.finish().unwrap();
                tables.push(
                    Table::open(file, tables.len() as u64, TableOpenOptions::default()).unwrap(),
                );
                file = MemFile::new(Vec::new());
                b = TableBuilder::new(file.clone(), opts(target)).unwrap();
            }
            b.add(k, vref(v)).unwrap();
        }
        b.finish().unwrap();
        tables.push(Table::open(file, tables.len() as u64, TableOpenOptions::default()).unwrap());
        tables
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn splits_never_separate_versions_of_a_key(entries in entries(400), target in 300u64..3000) {
            // Proves splitting at should_split_before keeps every user key's versions in one
            // table, loses nothing, and splits once the target is reached.
            let tables = split_into_tables(&entries, target);
            let mut all = Vec::new();
            for w in tables.windows(2) {
                prop_assert!(!crate::key::same_user_key(w[0].biggest(), w[1].smallest()));
            }
            for t in &tables {
                all.extend(collect_forward(&mut TableIterator::new(t.clone())).unwrap());
            }
            prop_assert_eq!(&all, &entries);
            let total: u64 = tables.iter().map(|t| t.size_bytes()).sum();
            if total > 4 * target + 4096 {
                prop_assert!(tables.len() > 1, "{} bytes in one table, target {}", total, target);
            }
        }
    }

    #[test]
    fn a_thousand_versions_stay_in_one_table() {
        // Proves a key whose versions alone exceed the target is never split, and the next
        // user key then starts a new table.
        let v = ValueStruct {
            value: vec![b'x'; 100],
            ..Default::default()
        };
        let mut entries: Vec<Entry> = (0..1000u64)
            .rev()
            .map(|ver| (key_with_version(b"hot", ver), v.clone()))
            .collect();
        entries.push((key_with_version(b"next", 1), v));
        let tables = split_into_tables(&entries, 1024);
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].entry_count(), 1000);
        assert_eq!(tables[0].user_key_count(), 1);
    }

    #[test]
    fn summary_matches_the_opened_table() {
        // Proves finish's summary (sizes, keys, counts, stale bytes) equals what open reads.
        let file = MemFile::new(Vec::new());
        let mut b = TableBuilder::new(file.clone(), opts(1 << 20)).unwrap();
        assert!(b.is_empty());
        for i in 0..500u32 {
            let v = ValueStruct {
                value: vec![b'v'; (i % 40) as usize],
                ..Default::default()
            };
            b.add(
                &key_with_version(format!("k{:04}", i / 2).as_bytes(), u64::from(7 - i % 2)),
                vref(&v),
            )
            .unwrap();
        }
        assert!(!b.is_empty());
        b.set_stale_data_bytes(4321);
        let est = b.estimated_size();
        let s = b.finish().unwrap();
        let t = Table::open(file.clone(), 3, TableOpenOptions::default()).unwrap();
        assert_eq!(
            (t.id(), t.size_bytes(), t.entry_count(), t.user_key_count()),
            (3, s.size_bytes, 500, 250)
        );
        assert_eq!(
            (t.smallest(), t.biggest()),
            (&s.smallest[..], &s.biggest[..])
        );
        assert_eq!(
            (t.max_version(), t.stale_data_bytes(), t.data_bytes()),
            (7, 4321, s.data_bytes)
        );
        assert_eq!(t.block_count(), s.block_count as usize);
        assert!(s.filter_bytes > 0 && s.index_bytes > 0);
        assert!(
            est.abs_diff(s.size_bytes) < s.size_bytes / 2,
            "estimate {est} vs {}",
            s.size_bytes
        );
    }

    #[derive(Debug)]
    struct CountingFile {
        inner: Arc<MemFile>,
        writes: AtomicUsize,
    }

    impl StorageFile for CountingFile {
        fn path(&self) -> &Path {
            self.inner.path()
        }
        fn read_at(&self, o: u64, b: &mut [u8]) -> Result<()> {
            self.inner.read_at(o, b)
        }
        fn write_at(&self, o: u64, b: &[u8]) -> Result<()> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.inner.write_at(o, b)
        }
        fn len(&self) -> Result<u64> {
            self.inner.len()
        }
        fn set_len(&self, l: u64) -> Result<()> {
            self.inner.set_len(l)
        }
        fn sync_data(&self) -> Result<()> {
            self.inner.sync_data()
        }
    }

    #[test]
    fn writes_go_out_in_large_chunks() {
        // Proves a ~2 MiB table of 4 KiB blocks takes about size/256 KiB writes, not one per block.
        let file = Arc::new(CountingFile {
            inner: MemFile::new(Vec::new()),
            writes: AtomicUsize::new(0),
        });
        let o = TableBuilderOptions {
            block_size: 4096,
            compression: Compression::None,
            ..opts(1 << 30)
        };
        let mut b = TableBuilder::new(file.clone(), o).unwrap();
        let v = ValueStruct {
            value: vec![b'v'; 200],
            ..Default::default()
        };
        for i in 0..10_000u32 {
            b.add(&key_with_version(&i.to_be_bytes(), 1), vref(&v))
                .unwrap();
        }
        let s = b.finish().unwrap();
        let writes = file.writes.load(Ordering::Relaxed);
        let chunks = s.size_bytes as usize / super::super::chunk_writer::WRITE_CHUNK_BYTES;
        assert!(
            s.block_count > 400 && writes <= chunks + 2,
            "{writes} writes for {} blocks",
            s.block_count
        );
    }

    #[test]
    fn misuse_is_refused() {
        // Proves an empty finish, a non-empty file and invalid options are errors.
        let b = TableBuilder::new(MemFile::new(Vec::new()), opts(1)).unwrap();
        assert!(matches!(b.finish(), Err(Error::InvalidRequest(_))));
        assert!(matches!(
            TableBuilder::new(MemFile::new(vec![1]), opts(1)),
            Err(Error::InvalidRequest(_))
        ));
        for bad in [
            TableBuilderOptions {
                block_size: 0,
                ..opts(1)
            },
            TableBuilderOptions {
                bloom_false_positive: 1.0,
                ..opts(1)
            },
        ] {
            assert!(matches!(
                TableBuilder::new(MemFile::new(Vec::new()), bad),
                Err(Error::InvalidOptions(_))
            ));
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        // Proves out-of-order, duplicate and short keys, unknown meta bits, a malformed pointer
        // and an oversized entry are InvalidRequest in release builds and a debug assertion in
        // debug builds, and that the builder stays usable afterwards.
        let mut b = TableBuilder::new(MemFile::new(Vec::new()), opts(1)).unwrap();
        let ok = ValueRef {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: b"v",
        };
        b.add(&key_with_version(b"m", 5), ok).unwrap();
        let big = vec![0u8; MAX_BLOCK_BYTES];
        let cases = [
            (key_with_version(b"a", 5), ok),
            (key_with_version(b"m", 5), ok),
            (b"short".to_vec(), ok),
            (key_with_version(b"z", 1), ValueRef { meta: 0x20, ..ok }),
            (
                key_with_version(b"z", 1),
                ValueRef {
                    meta: meta::VALUE_POINTER,
                    ..ok
                },
            ),
            (key_with_version(b"z", 1), ValueRef { value: &big, ..ok }),
        ];
        for (k, v) in cases {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.add(&k, v)));
            match r {
                Err(panic) if cfg!(debug_assertions) => {
                    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                    assert!(msg.contains("misuse"), "{msg}");
                }
                Ok(Err(Error::InvalidRequest(_))) if !cfg!(debug_assertions) => {}
                other => panic!("{k:?}: {:?}", other.map(|r| r.map(|_| ()))),
            }
        }
        b.add(&key_with_version(b"m", 4), ok).unwrap();
        assert_eq!(b.finish().unwrap().entry_count, 2);
    }
}

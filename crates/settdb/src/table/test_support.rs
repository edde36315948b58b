//! Fixtures shared by the table tests: files, random sorted entries, table builds, and a
//! byte-level re-sealer for corruption tests. The fuzz bodies are in `crate::fuzzing`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::block_frame::BLOCK_TRAILER_LEN;
use super::footer::FOOTER_LEN;
use super::index::BlockIndex;
use super::{KvIterator, Table, TableBuilder, TableBuilderOptions, TableOpenOptions, TableSummary};
use crate::checksum::crc32c;
use crate::error::{Error, Result};
use crate::io::{FsStorage, OpenMode, Storage, StorageFile};
use crate::key::{compare_keys, key_with_version};
use crate::options::Compression;
use crate::value::{meta, ValueRef, ValueStruct};

/// One entry: internal key and value.
pub type Entry = (Vec<u8>, ValueStruct);

/// Every compression the format knows.
pub const ALL_COMPRESSIONS: [Compression; 4] = [
    Compression::None,
    Compression::Snappy,
    Compression::Zstd(1),
    Compression::Lz4,
];

/// A borrowed view of a value struct.
pub fn vref(v: &ValueStruct) -> ValueRef<'_> {
    ValueRef {
        meta: v.meta,
        user_meta: v.user_meta,
        expires_at: v.expires_at,
        value: &v.value,
    }
}

/// A new, empty file `name` in `dir` on the real file system.
pub fn new_file(dir: &Path, name: &str) -> Arc<dyn StorageFile> {
    FsStorage::new()
        .open(&dir.join(name), OpenMode::CreateNew)
        .unwrap()
}

/// A file `name` in `dir` holding `bytes`, opened read-only.
pub fn file_with(dir: &Path, name: &str, bytes: &[u8]) -> Arc<dyn StorageFile> {
    std::fs::write(dir.join(name), bytes).unwrap();
    FsStorage::new()
        .open(&dir.join(name), OpenMode::Read)
        .unwrap()
}

static FILE_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Builds a table of `entries` in `dir` and opens it with `OnBlockRead` verification.
pub fn build(
    dir: &Path,
    entries: &[Entry],
    opts: TableBuilderOptions,
) -> (Arc<Table>, TableSummary) {
    let name = format!("{}.sst", FILE_SEQ.fetch_add(1, Ordering::Relaxed));
    let mut b = TableBuilder::new(new_file(dir, &name), opts).unwrap();
    for (k, v) in entries {
        b.add(k, vref(v)).unwrap();
    }
    let summary = b.finish().unwrap();
    let file = FsStorage::new()
        .open(&dir.join(&name), OpenMode::Read)
        .unwrap();
    (
        Table::open(file, 1, TableOpenOptions::default()).unwrap(),
        summary,
    )
}

/// Small-block options (many blocks from few entries) with `compression`.
pub fn small_blocks(compression: Compression) -> TableBuilderOptions {
    TableBuilderOptions {
        block_size: 200,
        bloom_false_positive: 0.01,
        compression,
        target_table_size_bytes: 1 << 20,
    }
}

/// User keys over a tiny alphabet: many share prefixes and many are prefixes of others.
pub fn user_key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop::sample::select(&b"ab\x00\xff"[..]), 0..6)
}

/// Values of every kind: plain (compressible or random), deletes, merges, value pointers.
pub fn value() -> impl Strategy<Value = ValueStruct> {
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..60),
        (0usize..150, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ];
    (
        0usize..4,
        any::<u8>(),
        prop_oneof![Just(0u64), any::<u64>()],
        bytes,
    )
        .prop_map(|(kind, um, exp, v)| {
            let m = [
                0,
                meta::DELETE,
                meta::MERGE | meta::DISCARD_EARLIER_VERSIONS,
                meta::VALUE_POINTER,
            ][kind];
            let value = if m == meta::VALUE_POINTER {
                (0..12)
                    .map(|i| v.first().copied().unwrap_or(0) ^ i)
                    .collect()
            } else {
                v
            };
            ValueStruct {
                meta: m,
                user_meta: um,
                expires_at: exp,
                value,
            }
        })
}

/// 1..max entries with distinct internal keys in `compare_keys` order (several versions per
/// user key, versions from a small range plus extremes).
pub fn entries(max: usize) -> impl Strategy<Value = Vec<Entry>> {
    let ver = prop_oneof![0u64..6, Just(u64::MAX), any::<u64>()];
    proptest::collection::vec((user_key(), ver, value()), 1..max).prop_map(|v| {
        let mut e: Vec<Entry> = v
            .into_iter()
            .map(|(u, ver, val)| (key_with_version(&u, ver), val))
            .collect();
        e.sort_by(|a, b| compare_keys(&a.0, &b.0));
        e.dedup_by(|a, b| a.0 == b.0);
        e
    })
}

/// All entries walking forward from the first.
pub fn collect_forward(it: &mut dyn KvIterator) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    it.seek_to_first()?;
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_owned()));
        it.next()?;
    }
    Ok(out)
}

/// All entries walking backward from the last, returned in ascending order.
pub fn collect_backward(it: &mut dyn KvIterator) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    it.seek_to_last()?;
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_owned()));
        it.prev()?;
    }
    out.reverse();
    Ok(out)
}

/// A writable in-memory file (no syscalls, so many cases run fast).
#[derive(Debug)]
pub struct MemFile {
    path: PathBuf,
    data: Mutex<Vec<u8>>,
}

impl MemFile {
    /// A file holding `data`.
    pub fn new(data: Vec<u8>) -> Arc<Self> {
        Arc::new(MemFile {
            path: PathBuf::from("mem.sst"),
            data: Mutex::new(data),
        })
    }
}

impl StorageFile for MemFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let data = self.data.lock().unwrap();
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buf.len())
            .and_then(|end| data.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(Error::io(
                "read",
                &self.path,
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
        }
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let mut data = self.data.lock().unwrap();
        let start = offset as usize;
        if data.len() < start + buf.len() {
            data.resize(start + buf.len(), 0);
        }
        data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn len(&self) -> Result<u64> {
        Ok(self.data.lock().unwrap().len() as u64)
    }
    fn set_len(&self, len: u64) -> Result<()> {
        self.data.lock().unwrap().resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> Result<()> {
        Ok(())
    }
}

/// Recomputes every checksum a (possibly mutated) table's footer and index lead to, so a test
/// can reach the decoders behind them. Best effort: unreadable structures are left alone.
pub fn reseal(bytes: &mut [u8]) {
    let Some(footer_at) = bytes.len().checked_sub(FOOTER_LEN) else {
        return;
    };
    let f =
        |i: usize| u64::from_le_bytes(bytes[footer_at + i..footer_at + i + 8].try_into().unwrap());
    let regions: Vec<(u64, u64)> = (0..3).map(|i| (f(16 * i), f(16 * i + 8))).collect();
    for &(off, len) in &regions {
        reseal_block(bytes, off, len);
    }
    if let Some(&(off, len)) = regions.get(1) {
        let payload = usize::try_from(off)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(o, l)| bytes.get(o..o.checked_add(l)?.checked_sub(BLOCK_TRAILER_LEN)?));
        let data_end = if regions[0].1 > 0 { regions[0].0 } else { off };
        if let Some(idx) =
            payload.and_then(|p| BlockIndex::decode(p, Path::new("x"), 0, data_end).ok())
        {
            for i in 0..idx.len() {
                let h = idx.handle(i).unwrap();
                reseal_block(bytes, h.offset, u64::from(h.stored_len));
            }
        }
    }
    let crc = crc32c(&bytes[footer_at..footer_at + 52]);
    bytes[footer_at + 52..footer_at + 56].copy_from_slice(&crc.to_le_bytes());
}

fn reseal_block(bytes: &mut [u8], off: u64, len: u64) {
    let (Ok(off), Ok(len)) = (usize::try_from(off), usize::try_from(len)) else {
        return;
    };
    let Some(end) = off
        .checked_add(len)
        .filter(|&e| e <= bytes.len() && len >= BLOCK_TRAILER_LEN)
    else {
        return;
    };
    let crc = crc32c(&bytes[off..end - 4]);
    bytes[end - 4..end].copy_from_slice(&crc.to_le_bytes());
}

#![no_main]
//! Replays arbitrary bytes as a log (memtable WAL or value log), reads every replayed record
//! back by its position, decodes the bytes as one record, and follows a value pointer taken
//! from the input. Any input must give a value or a typed error, never a panic. Format page:
//! docs/format/log.md. The same body runs as a unit test in crates/settdb/src/log/replay.rs.

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use settdb::io::StorageFile;
use settdb::log::{self, LogKind, RecordPos};
use settdb::{Error, Result};

/// The fuzz input as a read-only file.
#[derive(Debug)]
struct Bytes {
    path: PathBuf,
    data: Vec<u8>,
}

impl StorageFile for Bytes {
    fn path(&self) -> &Path {
        &self.path
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|from| self.data.get(from..from.checked_add(buf.len())?))
            .ok_or_else(|| {
                Error::io("read", &self.path, std::io::ErrorKind::UnexpectedEof.into())
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<()> {
        panic!("replay must never write");
    }
    fn len(&self) -> Result<u64> {
        Ok(self.data.len() as u64)
    }
    fn set_len(&self, _len: u64) -> Result<()> {
        panic!("replay must never truncate");
    }
    fn sync_data(&self) -> Result<()> {
        Ok(())
    }
}

fn typed(e: &Error) -> bool {
    e.is_corruption() || matches!(e, Error::UnsupportedVersion { .. })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let kind = if selector & 1 == 0 {
        LogKind::Wal
    } else {
        LogKind::ValueLog
    };
    let file = Bytes {
        path: PathBuf::from("fuzz.log"),
        data: rest.to_vec(),
    };
    let file_len = rest.len() as u64;
    let mut records = 0u64;
    let replayed = log::replay(&file, kind, |batch| {
        assert!(batch.end() <= file_len && !batch.is_empty());
        for (pos, rec) in batch.iter() {
            assert!(pos.end() <= batch.end() && settdb::key::is_valid_internal_key(rec.key));
            let again = log::read_record(&file, pos).expect("a replayed record reads back");
            assert_eq!(again.as_record(), rec);
            records += 1;
        }
        Ok(())
    });
    match replayed {
        Ok(end) => assert!(end.valid_end <= file_len && end.records == records),
        Err(e) => assert!(typed(&e), "{e}"),
    }
    if let Ok((rec, used)) = log::decode_record(rest) {
        assert!(used <= rest.len() && settdb::key::is_valid_internal_key(rec.key));
    }
    if let (Some(offset), Some(len)) = (rest.get(..8), rest.get(8..12)) {
        let pos = RecordPos {
            offset: u64::from_le_bytes(offset.try_into().unwrap_or_default()),
            len: u32::from_le_bytes(len.try_into().unwrap_or_default()),
        };
        if let Err(e) = log::read_record(&file, pos) {
            assert!(typed(&e), "{e}");
        }
    }
});

//! Badger's backup format (docs/format/backup.md): frames of an 8-byte little-endian length
//! and a protobuf [`pb::KvList`]: the frame encoder and reader, and the check of each KV a
//! database is asked to store. `Db::backup` and `Db::load` are built on them (`export.rs`).

#[allow(missing_docs, clippy::doc_markdown)]
pub mod pb;

use std::io::{Read, Write};

use bytes::Bytes;
use prost::Message;

use self::pb::{Kv, KvList};
use crate::error::{Error, Result};
use crate::key::{validate_key, INTERNAL_KEY_PREFIX};
use crate::value::meta;

/// Bytes of a frame's length prefix.
pub const FRAME_HEADER_LEN: u64 = 8;

/// Largest frame [`FrameReader`] accepts: 2 GiB. Badger cuts frames at about 100 MB, but one
/// key's versions are never split, so a frame may hold a value near Badger's 1 GiB limit; a
/// larger length is damage, refused before anything is allocated for it.
pub const MAX_FRAME_LEN: u64 = 2 << 30;

/// Meta bits a backup may carry and SettDB stores: delete, discard earlier versions, merge.
const KEPT_META: u8 = meta::DELETE | meta::DISCARD_EARLIER_VERSIONS | meta::MERGE;

/// Meta bits a backup may carry that are dropped on load: Badger's value pointer bit (the
/// value is in the frame) and the transaction framing bits.
pub(crate) const DROPPED_META: u8 = meta::VALUE_POINTER | meta::TXN | meta::FIN_TXN;

/// Writes `list` as one frame; returns the bytes written.
pub fn write_frame(w: &mut (impl Write + ?Sized), list: &KvList, offset: u64) -> Result<u64> {
    write_frame_with(w, list, offset, &mut Vec::new())
}

/// [`write_frame`], encoding in `buf` (reused across frames: a large frame then does not fault
/// in fresh memory each time).
pub fn write_frame_with(
    w: &mut (impl Write + ?Sized),
    list: &KvList,
    offset: u64,
    buf: &mut Vec<u8>,
) -> Result<u64> {
    encode_frame(list, buf)?;
    w.write_all(buf).map_err(|e| Error::BackupIo {
        op: "write",
        offset,
        source: e,
    })?;
    Ok(buf.len() as u64)
}

/// Encodes `list` as one frame into `out` (cleared first).
pub fn encode_frame(list: &KvList, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let len = list.encoded_len();
    out.reserve(FRAME_HEADER_LEN as usize + len);
    out.extend_from_slice(&(len as u64).to_le_bytes());
    list.encode(out)
        .map_err(|_| Error::InvalidRequest("a KVList did not fit its encoded length"))
}

/// One KV a database can store, as [`check_kv`] passes it: meta reduced to the bits SettDB
/// keeps, a delete's value dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckedKv {
    pub(crate) key: Bytes,
    pub(crate) version: u64,
    pub(crate) meta: u8,
    pub(crate) user_meta: u8,
    pub(crate) expires_at: u64,
    pub(crate) value: Bytes,
}

/// Checks one KV of the frame at `offset` (its `index` in the frame) for what a database can
/// store. Errors: [`Error::BadBackup`] naming the frame and the KV.
pub(crate) fn check_kv(kv: Kv, offset: u64, index: usize) -> Result<CheckedKv> {
    let at = |reason: String| bad(offset, format!("KV {index}: {reason}"));
    validate_key(&kv.key).map_err(|e| at(format!("bad key: {e}")))?;
    if kv.key.starts_with(INTERNAL_KEY_PREFIX) {
        return Err(at("a key under SettDB's internal prefix !settdb!".into()));
    }
    if kv.version == 0 {
        return Err(at("version 0 (versions start at 1)".into()));
    }
    if kv.user_meta.len() > 1 || kv.meta.len() > 1 {
        return Err(at(format!(
            "user_meta and meta are one byte each; they have {} and {}",
            kv.user_meta.len(),
            kv.meta.len()
        )));
    }
    let m = kv.meta.first().copied().unwrap_or(0);
    if m & !(KEPT_META | DROPPED_META) != 0 {
        return Err(at(format!("meta {m:#04x} has bits no format defines")));
    }
    let m = m & KEPT_META;
    let value = if m & meta::DELETE != 0 {
        Bytes::new()
    } else {
        kv.value
    };
    Ok(CheckedKv {
        key: kv.key,
        version: kv.version,
        meta: m,
        user_meta: kv.user_meta.first().copied().unwrap_or(0),
        expires_at: kv.expires_at,
        value,
    })
}

/// Reads frames one by one, checking each.
#[derive(Debug)]
pub struct FrameReader<R> {
    r: R,
    offset: u64,
    /// Buffers of frames given back by [`FrameReader::recycle`], reused so that large frames
    /// do not each fault in fresh memory.
    pool: Vec<Vec<u8>>,
}

/// Frame buffers kept for reuse at most.
pub(crate) const FRAME_POOL: usize = 4;

impl<R: Read> FrameReader<R> {
    /// A reader of the frames of `r`, from its current position (offset 0).
    pub fn new(r: R) -> Self {
        FrameReader {
            r,
            offset: 0,
            pool: Vec::new(),
        }
    }

    /// Bytes consumed so far: the offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame and its offset; `None` at a clean end (the input ends between frames).
    ///
    /// Errors ([`Error::BadBackup`], naming the frame's offset): the input ends inside a
    /// length or a frame, a length over [`MAX_FRAME_LEN`], bytes that are not a `KVList`;
    /// [`Error::BackupIo`] when reading fails.
    pub fn next_frame(&mut self) -> Result<Option<(u64, KvList)>> {
        Ok(self.next_frame_shared()?.map(|(at, list, _)| (at, list)))
    }

    /// As [`FrameReader::next_frame`], also returning the frame's bytes, which the KVs' keys
    /// and values are slices of: give them back with [`FrameReader::recycle`] once the KVs
    /// are dropped, and the next frame reuses the memory.
    pub fn next_frame_shared(&mut self) -> Result<Option<(u64, KvList, Bytes)>> {
        let at = self.offset;
        let mut len = [0u8; 8];
        let got = read_full(&mut self.r, &mut len, at)?;
        if got == 0 {
            return Ok(None);
        }
        if got < len.len() {
            return Err(bad(
                at,
                format!("the input ends inside a frame length ({got} of 8 bytes)"),
            ));
        }
        let n = u64::from_le_bytes(len);
        if n > MAX_FRAME_LEN {
            return Err(bad(
                at,
                format!("frame length {n} is over the limit of {MAX_FRAME_LEN} bytes"),
            ));
        }
        // The decoded KVs slice their keys and values out of the frame's buffer.
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        (&mut self.r)
            .take(n)
            .read_to_end(&mut buf)
            .map_err(|e| Error::BackupIo {
                op: "read",
                offset: at,
                source: e,
            })?;
        if (buf.len() as u64) < n {
            return Err(bad(
                at,
                format!(
                    "the input ends inside the frame: {} of its {n} bytes are present",
                    buf.len()
                ),
            ));
        }
        let frame = Bytes::from(buf);
        let list = KvList::decode(frame.clone())
            .map_err(|e| bad(at, format!("the frame is not a protobuf KVList: {e}")))?;
        self.offset = at + FRAME_HEADER_LEN + n;
        Ok(Some((at, list, frame)))
    }

    /// Takes back a frame's bytes from [`FrameReader::next_frame_shared`]: reused if nothing
    /// else refers to them any more.
    pub fn recycle(&mut self, frame: Bytes) {
        if self.pool.len() < FRAME_POOL {
            if let Ok(m) = frame.try_into_mut() {
                self.pool.push(Vec::from(m));
            }
        }
    }
}

/// Fills `buf` unless the input ends first; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::BackupIo {
                    op: "read",
                    offset,
                    source: e,
                })
            }
        }
    }
    Ok(got)
}

fn bad(offset: u64, reason: String) -> Error {
    Error::BadBackup { offset, reason }
}

/// Every byte value, for one-byte fields that need no allocation.
static BYTE_VALUES: [u8; 256] = {
    let mut all = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        all[i] = i as u8;
        i += 1;
    }
    all
};

/// `[b]` as [`Bytes`], without allocating.
pub fn one_byte(b: u8) -> Bytes {
    let i = usize::from(b);
    Bytes::from_static(&BYTE_VALUES[i..=i])
}

//! Backups in Badger's format (docs/format/backup.md): frames of an 8-byte little-endian
//! length and a protobuf [`pb::KvList`]; [`Db::backup`] writes them from a [`crate::Stream`],
//! [`Db::load`] reads them back into a database.

#[allow(missing_docs, clippy::doc_markdown)]
pub mod pb;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;

use self::pb::{Kv, KvList};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::key::{validate_key, INTERNAL_KEY_PREFIX};
use crate::stream::KeyVersions;
use crate::value::meta;
use crate::write::{Completion, WriteEntry};

/// Bytes of a frame's length prefix.
pub const FRAME_HEADER_LEN: u64 = 8;

/// Largest frame [`FrameReader`] accepts: 2 GiB. Badger cuts frames at about 100 MB, but one
/// key's versions are never split, so a frame may hold a value near Badger's 1 GiB limit; a
/// larger length is damage, refused before anything is allocated for it.
pub const MAX_FRAME_LEN: u64 = 2 << 30;

/// Bytes of one write of a load at most (with `max_pending_writes` writes in flight): large
/// enough that the writer's per-write costs vanish, small enough to bound memory.
const MAX_LOAD_BATCH_BYTES: u64 = 4 << 20;

/// Meta bits a backup may carry and SettDB stores: delete, discard earlier versions, merge.
const KEPT_META: u8 = meta::DELETE | meta::DISCARD_EARLIER_VERSIONS | meta::MERGE;

/// Meta bits a backup may carry that are dropped on load: Badger's value pointer bit (the
/// value is in the frame) and the transaction framing bits.
const DROPPED_META: u8 = meta::VALUE_POINTER | meta::TXN | meta::FIN_TXN;

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
const FRAME_POOL: usize = 4;

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

/// Badger's backup `KeyToList`: every version newest first with its meta (transaction bits
/// and the value-pointer bit cleared), deleted and expired versions without a value and ending
/// the key; a version that discards earlier versions is followed by a delete marker one
/// version below it, and ends the key.
pub fn backup_key_to_list(versions: &mut KeyVersions<'_>) -> Result<Vec<Kv>> {
    let key = Bytes::copy_from_slice(versions.key());
    let mut out = Vec::new();
    while let Some(item) = versions.next_version()? {
        let dead = item.is_deleted_or_expired();
        out.push(Kv {
            key: key.clone(),
            value: if dead {
                Bytes::new()
            } else {
                Bytes::from(item.value()?)
            },
            user_meta: one_byte(item.user_meta()),
            version: item.version(),
            expires_at: item.expires_at(),
            meta: one_byte(item.meta() & !DROPPED_META),
            ..Kv::default()
        });
        if item.discard_earlier_versions() {
            out.push(Kv {
                key: key.clone(),
                version: item.version().saturating_sub(1),
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

/// Progress of a backup, reported after each frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupProgress {
    /// Frames written.
    pub frames: u64,
    /// KVs written.
    pub kvs: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes the backup of `db` newer than `since` to `w`; see [`Db::backup`]. Each producer
/// thread of the stream encodes its own frames (one per producer batch, about 4 MiB); this
/// thread only writes them.
pub(crate) fn backup(
    db: &Db,
    w: &mut dyn Write,
    since: u64,
    progress: &mut dyn FnMut(&BackupProgress),
) -> Result<u64> {
    let mut done = BackupProgress::default();
    // Frame buffers go back to the producers once written: large buffers allocated afresh
    // for every frame cost more in page faults than the encoding itself.
    let pool: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    let encode = |list: KvList| -> Result<(Vec<u8>, u64)> {
        let mut frame = pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        encode_frame(&list, &mut frame)?;
        Ok((frame, list.kv.len() as u64))
    };
    let summary = db
        .stream()
        .since_ts(since)
        .key_to_list(backup_key_to_list)
        .run_mapped(&encode, |(frame, kvs)| {
            w.write_all(&frame).map_err(|e| Error::BackupIo {
                op: "write",
                offset: done.bytes,
                source: e,
            })?;
            done.bytes += frame.len() as u64;
            done.frames += 1;
            done.kvs += kvs;
            progress(&done);
            let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < FRAME_POOL {
                pool.push(frame);
            }
            Ok(())
        })?;
    w.flush().map_err(|e| Error::BackupIo {
        op: "flush",
        offset: done.bytes,
        source: e,
    })?;
    Ok(summary.max_version.max(since))
}

/// What [`Db::load`] loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Frames read.
    pub frames: u64,
    /// Versions written.
    pub kvs: u64,
    /// Bytes of the backup read.
    pub bytes: u64,
    /// The largest version loaded (0 if none).
    pub max_version: u64,
}

/// Checks one KV of the frame at `offset` and turns it into the entry to write.
pub(crate) fn entry_of(kv: Kv, offset: u64, index: usize) -> Result<WriteEntry> {
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
    Ok(WriteEntry {
        key: kv.key,
        version: kv.version,
        meta: m,
        user_meta: kv.user_meta.first().copied().unwrap_or(0),
        expires_at: kv.expires_at,
        value,
    })
}

/// Loads the frames of `r` into `db`; see [`Db::load`].
pub(crate) fn load(
    db: &Db,
    r: &mut dyn Read,
    max_pending_writes: usize,
    progress: &mut dyn FnMut(&LoadSummary),
) -> Result<LoadSummary> {
    let mut frames = FrameReader::new(r);
    let mut loader = Loader {
        db,
        batch: Vec::new(),
        batch_max_version: 0,
        batch_bytes: 0,
        batch_vlog_bytes: 0,
        in_flight: VecDeque::new(),
        max_pending: max_pending_writes.max(1),
        summary: LoadSummary::default(),
    };
    let read = loop {
        let (offset, list) = match frames.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        // The whole frame is checked before any of it is queued.
        let entries: Result<Vec<WriteEntry>> = list
            .kv
            .into_iter()
            .enumerate()
            .filter(|(_, kv)| !kv.stream_done)
            .map(|(i, kv)| entry_of(kv, offset, i))
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => break Err(e),
        };
        if let Err(e) = loader.add(entries) {
            break Err(e);
        }
        loader.summary.frames += 1;
        loader.summary.bytes = frames.offset();
        progress(&loader.summary);
    };
    // Whatever was read before an error is still written, so the database holds every whole
    // frame before it; the error is returned after.
    let finished = loader.finish();
    read.and(finished).map(|()| loader.summary)
}

struct Loader<'a> {
    db: &'a Db,
    batch: Vec<WriteEntry>,
    batch_max_version: u64,
    batch_bytes: u64,
    batch_vlog_bytes: u64,
    in_flight: VecDeque<(Arc<Completion>, u64)>,
    max_pending: usize,
    summary: LoadSummary,
}

impl Loader<'_> {
    fn add(&mut self, entries: Vec<WriteEntry>) -> Result<()> {
        let opts = self.db.options();
        for e in entries {
            let charge = opts.entry_charge(e.key.len(), e.value.len());
            let vlog = if e.meta & meta::DELETE == 0 && opts.goes_to_value_log(e.value.len()) {
                e.value.len() as u64
            } else {
                0
            };
            let full = self.batch.len() as u64 + 1 > opts.max_batch_count()
                || self.batch_bytes + charge > opts.max_batch_size().min(MAX_LOAD_BATCH_BYTES)
                || self.batch_vlog_bytes + vlog > opts.value_log_file_size;
            if full && !self.batch.is_empty() {
                self.submit()?;
            }
            // A single entry too large for one write is refused by the write path.
            self.batch_max_version = self.batch_max_version.max(e.version);
            self.batch_bytes += charge;
            self.batch_vlog_bytes += vlog;
            self.batch.push(e);
        }
        Ok(())
    }

    fn submit(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= self.max_pending {
            self.wait_oldest()?;
        }
        let n = self.batch.len() as u64;
        (self.batch_bytes, self.batch_vlog_bytes) = (0, 0);
        let completion = self.db.load_batch(std::mem::take(&mut self.batch))?;
        self.in_flight
            .push_back((completion, std::mem::take(&mut self.batch_max_version)));
        self.summary.kvs += n;
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<()> {
        if let Some((c, max_version)) = self.in_flight.pop_front() {
            c.wait()?;
            self.db.loaded_up_to(max_version);
            self.summary.max_version = self.summary.max_version.max(max_version);
        }
        Ok(())
    }

    /// Writes the last batch, waits for every write, makes them durable.
    fn finish(&mut self) -> Result<()> {
        let mut r = self.submit();
        while !self.in_flight.is_empty() {
            r = r.and(self.wait_oldest());
        }
        r.and(self.db.sync())
    }
}

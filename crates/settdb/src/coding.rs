//! Byte assembly: every integer that reaches the disk goes through here.
//!
//! Fixed-width integers are little-endian; variable-width integers are unsigned LEB128
//! (at most 10 bytes for a u64). Nothing writes a `usize` or copies a struct's memory.
//! Decoders take untrusted input and return `None` on short or malformed bytes; the caller
//! turns that into a [`crate::Error::Corruption`] naming its file and offset.

/// Longest LEB128 encoding of a u64.
pub const MAX_VARINT64_LEN: usize = 10;
/// Longest LEB128 encoding of a u32.
pub const MAX_VARINT32_LEN: usize = 5;

/// Appends `v` as a little-endian u16.
#[inline]
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as a little-endian u32.
#[inline]
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as a little-endian u64.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Reads a little-endian u16 at `pos`, if the bytes are there.
#[inline]
pub fn get_u16(buf: &[u8], pos: usize) -> Option<u16> {
    let b = buf.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Reads a little-endian u32 at `pos`, if the bytes are there.
#[inline]
pub fn get_u32(buf: &[u8], pos: usize) -> Option<u32> {
    let b = buf.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u64 at `pos`, if the bytes are there.
#[inline]
pub fn get_u64(buf: &[u8], pos: usize) -> Option<u64> {
    let b = buf.get(pos..pos.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// Writes a little-endian u32 into `buf[pos..pos + 4]`. Panics if out of range: only for
/// buffers this process sized itself.
#[inline]
#[cfg(test)]
pub fn set_u32(buf: &mut [u8], pos: usize, v: u32) {
    buf[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
}

/// Appends `v` as unsigned LEB128.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Number of bytes [`put_uvarint`] writes for `v`.
#[inline]
pub fn uvarint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Decodes an unsigned LEB128 u64 from the start of `buf`.
///
/// Returns the value and the bytes consumed, or `None` if `buf` ends inside the varint,
/// the varint is longer than 10 bytes, or it overflows 64 bits.
#[inline]
pub fn get_uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(MAX_VARINT64_LEN) {
        let low = u64::from(b & 0x7f);
        if i == MAX_VARINT64_LEN - 1 && b > 1 {
            return None; // the tenth byte may only carry the top bit of a u64
        }
        v |= low << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Decodes a LEB128 varint that must fit in a u32.
#[inline]
#[cfg(test)]
pub fn get_uvarint32(buf: &[u8]) -> Option<(u32, usize)> {
    let (v, n) = get_uvarint(buf)?;
    Some((u32::try_from(v).ok()?, n))
}

/// A cursor over untrusted bytes; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        let v = get_u16(self.buf, self.pos)?;
        self.pos += 2;
        Some(v)
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        let v = get_u32(self.buf, self.pos)?;
        self.pos += 4;
        Some(v)
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        let v = get_u64(self.buf, self.pos)?;
        self.pos += 8;
        Some(v)
    }

    /// Reads an unsigned LEB128 u64.
    pub fn uvarint(&mut self) -> Option<u64> {
        let (v, n) = get_uvarint(&self.buf[self.pos..])?;
        self.pos += n;
        Some(v)
    }

    /// Reads `n` bytes; `None` if fewer remain (so a huge `n` from disk never allocates).
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    /// Reads a varint length and then that many bytes.
    #[cfg(test)]
    pub fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_edges_round_trip() {
        // Proves the boundaries of each encoded length decode to themselves.
        for v in [
            0,
            1,
            127,
            128,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b.len(), uvarint_len(v));
            assert_eq!(get_uvarint(&b), Some((v, b.len())));
        }
    }

    #[test]
    fn varint_rejects_overlong_and_truncated() {
        // Proves malformed varints are refused rather than wrapped.
        assert_eq!(get_uvarint(&[0x80; 10]), None);
        assert_eq!(
            get_uvarint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        assert_eq!(get_uvarint(&[0x80, 0x80]), None);
        assert_eq!(get_uvarint(&[]), None);
        assert_eq!(get_uvarint32(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
    }

    proptest! {
        #[test]
        fn varint_round_trips(v: u64, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            // Proves any u64 survives encode/decode even with trailing bytes after it.
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            let n = b.len();
            b.extend_from_slice(&tail);
            prop_assert_eq!(get_uvarint(&b), Some((v, n)));
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Proves the cursor refuses, never panics, on arbitrary input.
            let mut r = Reader::new(&bytes);
            while r.len_prefixed().is_some() {}
            let _ = r.u64();
            prop_assert!(r.position() <= bytes.len());
        }

        #[test]
        fn fixed_round_trip(a: u16, b: u32, c: u64) {
            // Proves fixed-width little-endian helpers read back what they wrote.
            let mut buf = Vec::new();
            put_u16(&mut buf, a);
            put_u32(&mut buf, b);
            put_u64(&mut buf, c);
            let mut r = Reader::new(&buf);
            prop_assert_eq!((r.u16(), r.u32(), r.u64()), (Some(a), Some(b), Some(c)));
            prop_assert!(r.is_empty());
        }
    }
}

//! CRC32C (Castagnoli), the checksum of every on-disk structure.
//!
//! The `crc32c` crate uses the SSE4.2 / ARMv8 CRC instructions where the CPU has them.

/// CRC32C of `bytes`.
#[inline]
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// Extends a running CRC32C with more bytes, as if the inputs were concatenated.
#[inline]
pub fn crc32c_extend(crc: u32, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_extend() {
        // Proves the Castagnoli polynomial (RFC 3720 test vector) and that extend == concat.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(
            crc32c_extend(crc32c(b"1234"), b"56789"),
            crc32c(b"123456789")
        );
    }
}

//! AES-GCM, and the per-file keys every encrypted file is sealed with.
//!
//! ```text
//! file_key(data_key, salt) := AES_dk(salt ‖ 0u32) ‖ AES_dk(salt ‖ 1u32)   cut to the data key's length
//! nonce(offset)            := offset u64 LE ‖ 0u32                         (12 bytes)
//! ```
//!
//! Why a key per file: a nonce must never repeat under one key. Within a file, every sealed
//! unit (a log record, a table block or region) starts at its own offset and no offset is
//! ever sealed twice (a log is never appended to after a reopen: recovery only truncates it
//! and writes its seal, which is plaintext and holds no user bytes), so the offset is unique
//! by construction. Across files, each file draws a fresh random
//! 96-bit salt and seals under `file_key(data_key, salt)`, AES used as a PRF (the derivation
//! AES-GCM-SIV uses); two files share a key only if their salts collide, probability below
//! `n² / 2^97` for `n` files under one data key. Normative page: docs/format/encryption.md.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::cipher::BlockEncrypt;
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AesGcm, Nonce, Tag};

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Bytes of an AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of an AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of the random salt a file's key is derived with (held where the file's base IV was
/// reserved: log header, table footer).
pub const SALT_LEN: usize = 12;

type Aes192Gcm = AesGcm<Aes192, U12>;

/// AES-GCM with a 128, 192 or 256-bit key (the length of the key it was made from).
///
/// AES-128 and AES-256 run on `ring` (BoringSSL's AES-NI/PCLMUL assembly, which interleaves
/// AES-CTR and GHASH over several blocks): measured on the 1 KiB load, RustCrypto's `aes-gcm`
/// cost about 3.5 µs per record, mostly GHASH one block at a time, which made an encrypted
/// load 45% slower than a plaintext one. `ring` has no AES-192, so AES-192 (a 24-byte key, as
/// Badger accepts) stays on `aes-gcm`. Both implement the same AES-GCM: the bytes on disk do
/// not depend on which one sealed them.
#[derive(Clone)]
pub enum Aead {
    /// AES-128-GCM (ring; boxed: a key schedule and GHASH table are large).
    A128(Box<ring::aead::LessSafeKey>),
    /// AES-192-GCM (RustCrypto).
    A192(Box<Aes192Gcm>),
    /// AES-256-GCM (ring).
    A256(Box<ring::aead::LessSafeKey>),
}

impl std::fmt::Debug for Aead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self {
            Aead::A128(_) => 128,
            Aead::A192(_) => 192,
            Aead::A256(_) => 256,
        };
        write!(f, "Aead(AES-{bits}-GCM)")
    }
}

/// Checks a key's length: 16, 24 or 32 bytes.
pub fn check_key_len(len: usize) -> Result<()> {
    match len {
        16 | 24 | 32 => Ok(()),
        n => Err(Error::InvalidOptions(format!(
            "encryption_key must be 16, 24 or 32 bytes (AES-128/192/256); got {n} bytes"
        ))),
    }
}

impl Aead {
    /// The cipher of `key` (16, 24 or 32 bytes).
    pub fn new(key: &[u8]) -> Result<Aead> {
        check_key_len(key.len())?;
        let bad = || Error::InvalidOptions("bad AES key length".into());
        let ring_key = |alg| {
            ring::aead::UnboundKey::new(alg, key)
                .map(|k| Box::new(ring::aead::LessSafeKey::new(k)))
                .map_err(|_| bad())
        };
        Ok(match key.len() {
            16 => Aead::A128(ring_key(&ring::aead::AES_128_GCM)?),
            24 => Aead::A192(Box::new(Aes192Gcm::new_from_slice(key).map_err(|_| bad())?)),
            _ => Aead::A256(ring_key(&ring::aead::AES_256_GCM)?),
        })
    }

    /// Encrypts `buf` in place; returns the tag. `aad` is authenticated, not encrypted.
    ///
    /// Errors: [`Error::InvalidRequest`] if the AEAD refuses (a buffer over 64 GiB, which no
    /// sealed unit approaches); `buf` may then still hold plaintext and must not be written.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN]> {
        let refused = Error::InvalidRequest("AES-GCM refused to seal a unit (over 64 GiB?)");
        match self {
            Aead::A128(k) | Aead::A256(k) => {
                let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
                k.seal_in_place_separate_tag(n, ring::aead::Aad::from(aad), buf)
                    .ok()
                    .and_then(|t| t.as_ref().try_into().ok())
                    .ok_or(refused)
            }
            Aead::A192(c) => c
                .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf)
                .map(Into::into)
                .map_err(|_| refused),
        }
    }

    /// Decrypts `buf` in place if `tag` authenticates it with `aad`; `false` (and `buf`
    /// unspecified) otherwise.
    #[must_use]
    pub fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        match self {
            Aead::A128(k) | Aead::A256(k) => {
                let Ok(t) = <[u8; TAG_LEN]>::try_from(tag) else {
                    return false;
                };
                let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
                k.open_in_place_separate_tag(
                    n,
                    ring::aead::Aad::from(aad),
                    ring::aead::Tag::from(t),
                    buf,
                    0..,
                )
                .is_ok()
            }
            Aead::A192(c) => c
                .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf, Tag::from_slice(tag))
                .is_ok(),
        }
    }
}

/// The nonce of the unit at `offset` of a file.
pub fn nonce(offset: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&offset.to_le_bytes());
    n
}

/// Derives the key of one file from its data key and salt (see the module comment).
pub fn file_key(data_key: &[u8], salt: &[u8; SALT_LEN]) -> Result<Zeroizing<Vec<u8>>> {
    check_key_len(data_key.len())?;
    let mut out = Zeroizing::new(Vec::with_capacity(32));
    for counter in 0u32..2 {
        let mut block = [0u8; 16];
        block[..SALT_LEN].copy_from_slice(salt);
        block[SALT_LEN..].copy_from_slice(&counter.to_le_bytes());
        let mut b = block.into();
        match data_key.len() {
            16 => Aes128::new_from_slice(data_key).map(|c| c.encrypt_block(&mut b)),
            24 => Aes192::new_from_slice(data_key).map(|c| c.encrypt_block(&mut b)),
            _ => Aes256::new_from_slice(data_key).map(|c| c.encrypt_block(&mut b)),
        }
        .map_err(|_| Error::InvalidOptions("bad AES key length".into()))?;
        out.extend_from_slice(&b);
        b.zeroize();
    }
    out.truncate(data_key.len());
    Ok(out)
}

/// `len` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| {
        Error::io(
            "read the OS random source",
            "getrandom",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(b)
}

/// The cipher one encrypted file is sealed with: its derived key and its salt.
#[derive(Clone, Debug)]
pub struct FileCipher {
    /// Id of the data key in the key registry (never 0).
    pub key_id: u64,
    /// The file's salt, stored in the file.
    pub salt: [u8; SALT_LEN],
    aead: Aead,
}

impl FileCipher {
    /// The cipher of a file whose salt is `salt`, under data key `key_id` with bytes `data_key`.
    pub fn new(key_id: u64, data_key: &[u8], salt: [u8; SALT_LEN]) -> Result<FileCipher> {
        let aead = Aead::new(&file_key(data_key, &salt)?)?;
        Ok(FileCipher { key_id, salt, aead })
    }

    /// Encrypts `buf` (the unit at `offset`) in place; returns its tag.
    pub fn seal(&self, offset: u64, aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        self.aead.seal(&nonce(offset), aad, buf)
    }

    /// Decrypts the unit at `offset` in place; `false` if it does not authenticate.
    #[must_use]
    pub fn open(&self, offset: u64, aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool {
        self.aead.open(&nonce(offset), aad, buf, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trips_and_any_change_fails() {
        // Proves AES-GCM round-trips for each key size, and that a flipped ciphertext, tag or
        // aad byte, another offset or another salt fails authentication.
        for len in [16usize, 24, 32] {
            let dk: Vec<u8> = (0..len as u8).collect();
            let c = FileCipher::new(7, &dk, [3; SALT_LEN]).unwrap();
            let plain = b"the quick brown fox".to_vec();
            let mut buf = plain.clone();
            let tag = c.seal(100, b"aad", &mut buf).unwrap();
            assert_ne!(buf, plain);
            let mut ok = buf.clone();
            assert!(c.open(100, b"aad", &mut ok, &tag));
            assert_eq!(ok, plain);
            for i in 0..buf.len() {
                let mut bad = buf.clone();
                bad[i] ^= 1;
                assert!(!c.open(100, b"aad", &mut bad, &tag));
            }
            let mut bad_tag = tag;
            bad_tag[5] ^= 0x10;
            assert!(!c.open(100, b"aad", &mut buf.clone(), &bad_tag));
            assert!(!c.open(100, b"aae", &mut buf.clone(), &tag));
            assert!(!c.open(101, b"aad", &mut buf.clone(), &tag));
            let other = FileCipher::new(7, &dk, [4; SALT_LEN]).unwrap();
            assert!(!other.open(100, b"aad", &mut buf.clone(), &tag));
            assert!(!c.open(100, b"aad", &mut buf.clone(), &tag[..15]));
        }
    }

    #[test]
    fn ring_and_rustcrypto_seal_the_same_bytes() {
        // Proves the AES-128/256 units sealed by ring are standard AES-GCM: RustCrypto's
        // implementation produces the same ciphertext and tag and opens them.
        use aes_gcm::{Aes128Gcm, Aes256Gcm};
        let nonce = nonce(4096);
        let msg: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        for len in [16usize, 32] {
            let key: Vec<u8> = (0..len as u8).map(|b| b ^ 0x5a).collect();
            let mut ours = msg.clone();
            let tag = Aead::new(&key)
                .unwrap()
                .seal(&nonce, b"head", &mut ours)
                .unwrap();
            let mut theirs = msg.clone();
            let n = Nonce::from_slice(&nonce);
            let t: [u8; TAG_LEN] = match len {
                16 => Aes128Gcm::new_from_slice(&key)
                    .unwrap()
                    .encrypt_in_place_detached(n, b"head", &mut theirs),
                _ => Aes256Gcm::new_from_slice(&key)
                    .unwrap()
                    .encrypt_in_place_detached(n, b"head", &mut theirs),
            }
            .unwrap()
            .into();
            assert_eq!((ours, tag), (theirs, t), "AES-{}", len * 8);
        }
    }

    #[test]
    fn debug_output_names_the_algorithm_and_never_shows_key_bytes() {
        // Proves a cipher can be logged: its Debug names the AES variant and holds no key
        // byte (the derived key or the data key).
        for (len, name) in [
            (16usize, "AES-128-GCM"),
            (24, "AES-192-GCM"),
            (32, "AES-256-GCM"),
        ] {
            let dk = vec![0xab; len];
            let c = FileCipher::new(3, &dk, [0xcd; SALT_LEN]).unwrap();
            let shown = format!("{c:?}");
            assert!(shown.contains(name), "{shown}");
            assert!(
                !shown.contains("171") && !shown.to_lowercase().contains("abab"),
                "{shown}"
            );
        }
    }

    #[test]
    fn file_keys_differ_by_salt_and_data_key_and_keep_the_key_length() {
        let a = file_key(&[1; 16], &[0; SALT_LEN]).unwrap();
        let b = file_key(&[1; 16], &[1; SALT_LEN]).unwrap();
        let c = file_key(&[2; 16], &[0; SALT_LEN]).unwrap();
        assert_eq!(a.len(), 16);
        assert!(a != b && a != c && b != c);
        assert_eq!(file_key(&[1; 24], &[0; SALT_LEN]).unwrap().len(), 24);
        let k32 = file_key(&[1; 32], &[0; SALT_LEN]).unwrap();
        assert_eq!(k32.len(), 32);
        assert_ne!(k32[..16], k32[16..], "the two PRF blocks differ");
        assert!(file_key(&[1; 20], &[0; SALT_LEN]).is_err());
        assert!(Aead::new(&[0; 15]).is_err());
    }

    #[test]
    fn nonces_are_unique_per_offset() {
        let mut seen = std::collections::HashSet::new();
        for off in [0u64, 1, 48, 1 << 32, u64::MAX] {
            assert!(seen.insert(nonce(off)));
        }
    }
}

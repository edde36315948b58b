//! The key registry (`KEYREGISTRY`): the data keys, each sealed under the master key.
//!
//! ```text
//! registry := header entry{count} crc32c u32                  (crc over every byte before it)
//! header   := magic u32 "SDBK" | version u16 = 1 | flags u16 = 0 | count u32
//!             | check_nonce [12] | check_tag [16]              40 bytes
//! entry    := key_id u64 | created_at u64 | key_len u8 | nonce [12] | sealed_key [key_len] | tag [16]
//! ```
//!
//! `check_tag` is AES-GCM under the master key of nothing, with the first 12 header bytes as
//! associated data: a wrong master key fails it before any data key is tried. Each data key is
//! sealed with a random nonce (a registry holds a few keys: collisions are out of reach) and
//! the entry's id and creation time as associated data. The file is replaced whole (tmp, sync,
//! rename, directory sync: DESIGN.md rule 2), and a new data key is in the durable registry
//! before any file is sealed with it (rule 5). Normative page: docs/format/encryption.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::{Zeroize, Zeroizing};

use super::cipher::{check_key_len, random_bytes, Aead, FileCipher, NONCE_LEN, SALT_LEN, TAG_LEN};
use crate::checksum::crc32c;
use crate::coding::{self, Reader};
use crate::error::{Error, Result};
use crate::io::{OpenMode, Storage};

/// The registry's file name, in the database directory.
pub const KEY_REGISTRY_FILE_NAME: &str = "KEYREGISTRY";
/// The name the registry is written under before it replaces the old one.
pub const KEY_REGISTRY_TMP_FILE_NAME: &str = "KEYREGISTRY.tmp";

const MAGIC: u32 = u32::from_le_bytes(*b"SDBK");
const VERSION: u16 = 1;
const HEADER_LEN: usize = 4 + 2 + 2 + 4 + NONCE_LEN + TAG_LEN;
const CHECKED_HEADER_LEN: usize = 4 + 2 + 2 + 4;
const ENTRY_FIXED_LEN: usize = 8 + 8 + 1 + NONCE_LEN + TAG_LEN;
/// More keys than any registry holds (a key a day for 27 years); bounds what a corrupt count
/// can make the reader allocate.
const MAX_KEYS: u32 = 10_000;

/// A source of unix seconds (injected by tests to rotate by time).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// One data key.
#[derive(Clone)]
pub struct DataKey {
    /// Its id (1, 2, ...), recorded in every file it seals.
    pub id: u64,
    /// Unix seconds it was created at.
    pub created_at: u64,
    /// Wiped when dropped.
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// How the registry behaves.
#[derive(Clone)]
pub struct RegistryOptions {
    /// A new data key is made when the newest is this old.
    pub rotation: Duration,
    /// Never writes (no creation, no rotation).
    pub read_only: bool,
    /// The clock rotation reads.
    pub clock: Clock,
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("rotation", &self.rotation)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// The open key registry of an encrypted database.
pub struct KeyRegistry {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    master: Aead,
    opts: RegistryOptions,
    keys: Mutex<BTreeMap<u64, DataKey>>,
    /// Held across a registry rewrite (file I/O), so `keys` is only ever held briefly: readers
    /// opening files never wait for a rotation's syncs.
    rotating: Mutex<()>,
}

impl std::fmt::Debug for KeyRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRegistry")
            .field("dir", &self.dir)
            .field("keys", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl KeyRegistry {
    /// Opens the registry of `dir` for a database opened with `master_key` (empty: none).
    ///
    /// - A registry exists: without a key, [`Error::EncryptionKeyRequired`]; with one, it is
    ///   read and checked ([`Error::WrongEncryptionKey`] if the key does not open it).
    /// - No registry, no key: `Ok(None)`, a plaintext database.
    /// - No registry, a key: [`Error::NotEncrypted`] if `database_exists`; else (a new
    ///   database) the registry is created with one data key, durably, unless read-only.
    ///
    /// Reads nothing but the registry and writes nothing unless it creates it.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        master_key: &[u8],
        database_exists: bool,
        opts: RegistryOptions,
    ) -> Result<Option<Arc<KeyRegistry>>> {
        let path = dir.join(KEY_REGISTRY_FILE_NAME);
        let exists = storage.exists(&path)?;
        match (exists, master_key.is_empty()) {
            (true, true) => Err(Error::EncryptionKeyRequired { dir: dir.into() }),
            (false, true) => Ok(None),
            (false, false) if database_exists => Err(Error::NotEncrypted { dir: dir.into() }),
            (false, false) if opts.read_only => Err(Error::InvalidOptions(
                "read_only: cannot create the key registry of a new encrypted database".into(),
            )),
            (false, false) => {
                let reg = KeyRegistry::new(storage, dir, master_key, opts, BTreeMap::new())?;
                reg.add_key()?;
                Ok(Some(Arc::new(reg)))
            }
            (true, false) => {
                let master = Aead::new(master_key)?;
                let bytes = read_all(storage.as_ref(), &path)?;
                let keys = decode(&bytes, &path, &master)?;
                let reg = KeyRegistry::new(storage, dir, master_key, opts, keys)?;
                Ok(Some(Arc::new(reg)))
            }
        }
    }

    fn new(
        storage: Arc<dyn Storage>,
        dir: &Path,
        master_key: &[u8],
        opts: RegistryOptions,
        keys: BTreeMap<u64, DataKey>,
    ) -> Result<KeyRegistry> {
        Ok(KeyRegistry {
            storage,
            dir: dir.to_path_buf(),
            master: Aead::new(master_key)?,
            opts,
            keys: Mutex::new(keys),
            rotating: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, DataKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cipher for a new file: the newest data key (a new one first if the newest is
    /// older than the rotation period, made durable before it is returned) and a fresh salt.
    pub fn cipher_for_new_file(&self) -> Result<FileCipher> {
        let key = self.current_key()?;
        FileCipher::new(key.id, &key.bytes, random_bytes::<SALT_LEN>()?)
    }

    /// The cipher of an existing file sealed under `key_id` with `salt`; an unknown key id is
    /// [`Error::Corruption`] of `file` at `offset` (where the id is stored).
    pub fn file_cipher(
        &self,
        key_id: u64,
        salt: [u8; SALT_LEN],
        file: &Path,
        offset: u64,
    ) -> Result<FileCipher> {
        let keys = self.lock();
        let key = keys.get(&key_id).ok_or_else(|| {
            Error::corruption(
                file,
                offset,
                format!("sealed under data key {key_id}, which the key registry does not hold"),
            )
        })?;
        FileCipher::new(key_id, &key.bytes, salt)
    }

    /// The ids and creation times of every data key, oldest first.
    pub fn key_ids(&self) -> Vec<(u64, u64)> {
        self.lock().values().map(|k| (k.id, k.created_at)).collect()
    }

    fn current_key(&self) -> Result<DataKey> {
        let newest = self.lock().values().next_back().cloned();
        match newest {
            Some(k) if self.opts.read_only || !self.due(&k) => Ok(k),
            _ => self.add_key(),
        }
    }

    fn due(&self, k: &DataKey) -> bool {
        let now = (self.opts.clock)();
        now.saturating_sub(k.created_at) >= self.opts.rotation.as_secs()
    }

    /// Makes a new data key and writes the registry holding it (durably) before returning it.
    fn add_key(&self) -> Result<DataKey> {
        if self.opts.read_only {
            return Err(Error::InvalidRequest(
                "read-only: cannot add a data key to the key registry",
            ));
        }
        let _one = self.rotating.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = self.lock().clone();
        // Another thread may have rotated while this one waited.
        if let Some(k) = next.values().next_back() {
            if !self.due(k) {
                return Ok(k.clone());
            }
        }
        let len = match &self.master {
            super::cipher::Aead::A128(_) => 16,
            super::cipher::Aead::A192(_) => 24,
            super::cipher::Aead::A256(_) => 32,
        };
        let mut random = random_bytes::<32>()?;
        let bytes = Zeroizing::new(random[..len].to_vec());
        random.zeroize();
        let id = next.keys().next_back().map_or(1, |&i| i + 1);
        let key = DataKey {
            id,
            created_at: (self.opts.clock)(),
            bytes,
        };
        next.insert(id, key.clone());
        // Durable before any file can use the key (rule 5); only rotations change `keys`, and
        // they are serialised by `rotating`, so nothing was lost from it meanwhile.
        write_registry(self.storage.as_ref(), &self.dir, &self.master, &next)?;
        *self.lock() = next;
        Ok(key)
    }
}

/// Re-seals the registry of `dir` under `new_key` (Badger's `rotate`): only the registry
/// changes, atomically; the data keys and every other file stay as they are. Errors:
/// [`Error::WrongEncryptionKey`] if `old_key` does not open it, [`Error::EncryptionKeyRequired`]
/// style errors if there is none.
pub fn rotate_master_key(
    storage: &dyn Storage,
    dir: &Path,
    old_key: &[u8],
    new_key: &[u8],
) -> Result<usize> {
    check_key_len(new_key.len())?;
    let path = dir.join(KEY_REGISTRY_FILE_NAME);
    if !storage.exists(&path)? {
        return Err(Error::NotEncrypted { dir: dir.into() });
    }
    let old = Aead::new(old_key)?;
    let keys = decode(&read_all(storage, &path)?, &path, &old)?;
    write_registry(storage, dir, &Aead::new(new_key)?, &keys)?;
    Ok(keys.len())
}

fn read_all(storage: &dyn Storage, path: &Path) -> Result<Vec<u8>> {
    let file = storage.open(path, OpenMode::Read)?;
    let len = file.len()?;
    let max = (HEADER_LEN + MAX_KEYS as usize * (ENTRY_FIXED_LEN + 32) + 4) as u64;
    if len > max {
        return Err(Error::corruption(
            path,
            0,
            format!("key registry of {len} bytes is larger than any registry ({max})"),
        ));
    }
    file.read_vec_at(0, len as usize)
}

fn header_check_aad(header: &[u8]) -> &[u8] {
    header.get(..CHECKED_HEADER_LEN).unwrap_or_default()
}

fn entry_aad(id: u64, created_at: u64) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&id.to_le_bytes());
    a[8..].copy_from_slice(&created_at.to_le_bytes());
    a
}

fn encode(master: &Aead, keys: &BTreeMap<u64, DataKey>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    coding::put_u32(&mut out, MAGIC);
    coding::put_u16(&mut out, VERSION);
    coding::put_u16(&mut out, 0);
    coding::put_u32(&mut out, keys.len() as u32);
    let nonce = random_bytes::<NONCE_LEN>()?;
    let tag = master.seal(&nonce, header_check_aad(&out), &mut [])?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&tag);
    for k in keys.values() {
        coding::put_u64(&mut out, k.id);
        coding::put_u64(&mut out, k.created_at);
        out.push(k.bytes.len() as u8);
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut sealed = Zeroizing::new(k.bytes.to_vec());
        let tag = master.seal(&nonce, &entry_aad(k.id, k.created_at), &mut sealed)?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out.extend_from_slice(&tag);
    }
    let crc = crc32c(&out);
    coding::put_u32(&mut out, crc);
    Ok(out)
}

/// Decodes and opens a registry. Damage is [`Error::Corruption`] / [`Error::ChecksumMismatch`];
/// bytes intact but the key wrong is [`Error::WrongEncryptionKey`].
fn decode(bytes: &[u8], path: &Path, master: &Aead) -> Result<BTreeMap<u64, DataKey>> {
    let bad = |off: usize, why: String| Error::corruption(path, off as u64, why);
    let body_len = bytes
        .len()
        .checked_sub(4)
        .filter(|&n| n >= HEADER_LEN)
        .ok_or_else(|| {
            bad(
                0,
                format!("key registry of {} bytes is cut short", bytes.len()),
            )
        })?;
    let (body, crc) = bytes.split_at(body_len);
    let stored = coding::get_u32(crc, 0).unwrap_or(0);
    let computed = crc32c(body);
    if stored != computed {
        return Err(Error::ChecksumMismatch {
            file: path.into(),
            offset: body_len as u64,
            stored,
            computed,
        });
    }
    let mut r = Reader::new(body);
    if r.u32() != Some(MAGIC) {
        return Err(bad(0, "not a key registry: bad magic".into()));
    }
    let version = r.u16().unwrap_or(0);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: path.into(),
            found: u32::from(version),
            supported: u32::from(VERSION),
        });
    }
    if r.u16() != Some(0) {
        return Err(bad(6, "key registry flags are not zero".into()));
    }
    let count = r.u32().unwrap_or(0);
    if count > MAX_KEYS {
        return Err(bad(8, format!("key registry claims {count} keys")));
    }
    let nonce: [u8; NONCE_LEN] = take(&mut r).ok_or_else(|| bad(12, "cut short".into()))?;
    let tag = r
        .bytes(TAG_LEN)
        .ok_or_else(|| bad(24, "cut short".into()))?;
    if !master.open(&nonce, header_check_aad(body), &mut [], tag) {
        return Err(Error::WrongEncryptionKey { file: path.into() });
    }
    let mut keys = BTreeMap::new();
    for i in 0..count {
        let at = r.position();
        let cut = || bad(at, format!("key registry entry {i} is cut short"));
        let id = r.u64().ok_or_else(cut)?;
        let created_at = r.u64().ok_or_else(cut)?;
        let len = usize::from(r.u8().ok_or_else(cut)?);
        check_key_len(len).map_err(|_| bad(at, format!("data key {id} has {len} bytes")))?;
        let nonce: [u8; NONCE_LEN] = take(&mut r).ok_or_else(cut)?;
        let mut key = Zeroizing::new(r.bytes(len).ok_or_else(cut)?.to_vec());
        let tag = r.bytes(TAG_LEN).ok_or_else(cut)?;
        if !master.open(&nonce, &entry_aad(id, created_at), &mut key, tag) {
            return Err(Error::Authentication {
                file: path.into(),
                offset: at as u64,
            });
        }
        if id == 0
            || keys
                .insert(
                    id,
                    DataKey {
                        id,
                        created_at,
                        bytes: key,
                    },
                )
                .is_some()
        {
            return Err(bad(at, format!("data key id {id} is 0 or repeated")));
        }
    }
    if r.position() != body.len() {
        return Err(bad(r.position(), "bytes after the last data key".into()));
    }
    Ok(keys)
}

fn take<const N: usize>(r: &mut Reader<'_>) -> Option<[u8; N]> {
    r.bytes(N)?.try_into().ok()
}

/// Replaces the registry of `dir` with one holding `keys`: tmp, sync, directory sync, rename,
/// directory sync.
fn write_registry(
    storage: &dyn Storage,
    dir: &Path,
    master: &Aead,
    keys: &BTreeMap<u64, DataKey>,
) -> Result<()> {
    let bytes = encode(master, keys)?;
    storage.create_dir_all(dir)?;
    let tmp = dir.join(KEY_REGISTRY_TMP_FILE_NAME);
    if storage.exists(&tmp)? {
        storage.remove_file(&tmp)?;
    }
    let file = storage.open(&tmp, OpenMode::CreateNew)?;
    file.write_at(0, &bytes)?;
    file.sync_data()?;
    drop(file);
    // The tmp file's name is made durable before the rename: a crash that kept the rename but
    // not the tmp file's creation could otherwise leave an empty KEYREGISTRY (the simulated
    // storage's Subset crash finds exactly that), and the data keys would be lost.
    storage.sync_dir(dir)?;
    storage.rename(&tmp, &dir.join(KEY_REGISTRY_FILE_NAME))?;
    storage.sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemStorage;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn opts(now: &Arc<AtomicU64>, days: u64) -> RegistryOptions {
        let now = now.clone();
        RegistryOptions {
            rotation: Duration::from_secs(days * 86_400),
            read_only: false,
            clock: Arc::new(move || now.load(Ordering::SeqCst)),
        }
    }

    fn dir() -> PathBuf {
        PathBuf::from("/db")
    }

    #[test]
    fn create_reopen_rotate_by_time_and_by_master_key() {
        // Proves: a new encrypted database gets key 1; a file made before the period keeps
        // key 1, after it key 2 (written durably: a reopen sees both); the master key can be
        // rotated and only the new one opens the registry afterwards.
        let s: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let now = Arc::new(AtomicU64::new(1_000_000));
        let reg = KeyRegistry::open(s.clone(), &dir(), &[1; 32], false, opts(&now, 10))
            .unwrap()
            .unwrap();
        assert_eq!(reg.cipher_for_new_file().unwrap().key_id, 1);
        now.fetch_add(10 * 86_400 - 1, Ordering::SeqCst);
        assert_eq!(reg.cipher_for_new_file().unwrap().key_id, 1);
        now.fetch_add(1, Ordering::SeqCst);
        let c2 = reg.cipher_for_new_file().unwrap();
        assert_eq!(c2.key_id, 2);
        assert_eq!(reg.cipher_for_new_file().unwrap().key_id, 2);
        drop(reg);
        let reg = KeyRegistry::open(s.clone(), &dir(), &[1; 32], true, opts(&now, 10))
            .unwrap()
            .unwrap();
        assert_eq!(reg.key_ids().len(), 2);
        // The same data key opens what the old handle sealed.
        let again = reg.file_cipher(2, c2.salt, Path::new("f"), 0).unwrap();
        let mut buf = b"secret".to_vec();
        let tag = c2.seal(5, b"", &mut buf).unwrap();
        assert!(again.open(5, b"", &mut buf, &tag));
        assert!(matches!(
            reg.file_cipher(9, c2.salt, Path::new("f"), 3),
            Err(Error::Corruption { offset: 3, .. })
        ));
        drop(reg);
        assert_eq!(
            rotate_master_key(s.as_ref(), &dir(), &[1; 32], &[2; 16]).unwrap(),
            2
        );
        assert!(matches!(
            KeyRegistry::open(s.clone(), &dir(), &[1; 32], true, opts(&now, 10)),
            Err(Error::WrongEncryptionKey { .. })
        ));
        let reg = KeyRegistry::open(s.clone(), &dir(), &[2; 16], true, opts(&now, 10))
            .unwrap()
            .unwrap();
        assert!(reg.file_cipher(2, c2.salt, Path::new("f"), 0).is_ok());
        assert!(matches!(
            rotate_master_key(s.as_ref(), &dir(), &[1; 32], &[3; 16]),
            Err(Error::WrongEncryptionKey { .. })
        ));
    }

    #[test]
    fn a_registry_built_from_the_format_page_decodes() {
        // Proves the decoder reads the layout docs/format/encryption.md gives, built here by
        // hand (not by `encode`): 40-byte header whose first 12 bytes are the check tag's
        // associated data, entries sealed with `key_id ‖ created_at` as associated data.
        let master = Aead::new(&[9; 16]).unwrap();
        let mut b = Vec::new();
        b.extend_from_slice(b"SDBK");
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        let check_nonce = [7u8; NONCE_LEN];
        let tag = master.seal(&check_nonce, &b[..12], &mut []).unwrap();
        b.extend_from_slice(&check_nonce);
        b.extend_from_slice(&tag);
        assert_eq!(b.len(), 40);
        let (id, created) = (5u64, 1_700_000_000u64);
        let mut aad = id.to_le_bytes().to_vec();
        aad.extend_from_slice(&created.to_le_bytes());
        let mut key = vec![0x11u8; 16];
        let nonce = [3u8; NONCE_LEN];
        let tag = master.seal(&nonce, &aad, &mut key).unwrap();
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&created.to_le_bytes());
        b.push(16);
        b.extend_from_slice(&nonce);
        b.extend_from_slice(&key);
        b.extend_from_slice(&tag);
        let crc = crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let keys = decode(&b, Path::new("KEYREGISTRY"), &master).unwrap();
        let k = &keys[&5];
        assert_eq!(
            (k.id, k.created_at, k.bytes.to_vec()),
            (5, created, vec![0x11; 16])
        );
    }

    #[test]
    fn salts_and_data_keys_are_random() {
        // Proves every new file gets its own salt and every registry its own data key: were
        // either constant, files would share a file key and reuse nonces across files.
        let now = Arc::new(AtomicU64::new(0));
        let open = || {
            let s: Arc<dyn Storage> = Arc::new(MemStorage::new());
            KeyRegistry::open(s, &dir(), &[1; 32], false, opts(&now, 10))
                .unwrap()
                .unwrap()
        };
        let (a, b) = (open(), open());
        let salts: HashSet<[u8; SALT_LEN]> = (0..64)
            .map(|_| a.cipher_for_new_file().unwrap().salt)
            .collect();
        assert_eq!(salts.len(), 64);
        let key = |r: &KeyRegistry| r.lock().values().next().unwrap().bytes.clone();
        assert_ne!(key(&a), key(&b));
        assert!(
            key(&a).iter().any(|&x| x != key(&a)[0]),
            "a constant data key"
        );
    }

    #[test]
    fn missing_and_unexpected_keys_are_their_own_errors() {
        let s: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let now = Arc::new(AtomicU64::new(0));
        assert!(
            KeyRegistry::open(s.clone(), &dir(), &[], true, opts(&now, 10))
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            KeyRegistry::open(s.clone(), &dir(), &[1; 16], true, opts(&now, 10)),
            Err(Error::NotEncrypted { .. })
        ));
        KeyRegistry::open(s.clone(), &dir(), &[1; 16], false, opts(&now, 10)).unwrap();
        assert!(matches!(
            KeyRegistry::open(s.clone(), &dir(), &[], true, opts(&now, 10)),
            Err(Error::EncryptionKeyRequired { .. })
        ));
        assert!(matches!(
            KeyRegistry::open(s.clone(), &dir(), &[1; 15], true, opts(&now, 10)),
            Err(Error::InvalidOptions(_))
        ));
        let mut ro = opts(&now, 10);
        ro.read_only = true;
        let s2: Arc<dyn Storage> = Arc::new(MemStorage::new());
        assert!(KeyRegistry::open(s2, &dir(), &[1; 16], false, ro).is_err());
    }

    #[test]
    fn every_damaged_byte_is_an_error_never_a_key() {
        // Proves every single-byte change of the registry file is refused: a checksum
        // mismatch, or with the checksum fixed up, corruption / wrong key / authentication.
        let s: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let now = Arc::new(AtomicU64::new(0));
        let reg = KeyRegistry::open(s.clone(), &dir(), &[7; 24], false, opts(&now, 0))
            .unwrap()
            .unwrap();
        reg.cipher_for_new_file().unwrap();
        let path = dir().join(KEY_REGISTRY_FILE_NAME);
        let good = read_all(s.as_ref(), &path).unwrap();
        let master = Aead::new(&[7; 24]).unwrap();
        assert_eq!(decode(&good, &path, &master).unwrap().len(), 2);
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x40;
            assert!(decode(&b, &path, &master).is_err(), "byte {i}");
            let n = b.len() - 4;
            let crc = crc32c(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
            if i < n {
                assert!(
                    decode(&b, &path, &master).is_err(),
                    "byte {i} with crc fixed"
                );
            }
        }
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], &path, &master).is_err());
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            // Proves decoding arbitrary bytes is an error or a registry, never a panic, and
            // never allocates past the input.
            let master = Aead::new(&[1; 16]).unwrap();
            let _ = decode(&bytes, Path::new("KEYREGISTRY"), &master);
            // With the checksum made right, the parser itself sees the bytes.
            let mut fixed = bytes;
            if let Some(n) = fixed.len().checked_sub(4) {
                let crc = crc32c(&fixed[..n]);
                fixed[n..].copy_from_slice(&crc.to_le_bytes());
                let _ = decode(&fixed, Path::new("KEYREGISTRY"), &master);
            }
        }
    }

    #[test]
    fn a_data_key_is_durable_before_use_and_a_failed_rotation_leaves_the_old_registry() {
        // Proves rule 5 (a data key handed out survives any crash: the registry holding it was
        // synced, renamed and its directory synced before) and rule 2 (a rotation that fails
        // at any step of tmp, write, sync, rename, dir sync leaves, after any crash, the old
        // registry or the new one, whole, never a damaged one), over every crash mode.
        use crate::io::{CrashMode, Fault, FaultKind, FaultOp, SimStorage};
        let modes = [
            CrashMode::Prefix,
            CrashMode::Subset,
            CrashMode::TornTail,
            CrashMode::Nothing,
            CrashMode::Everything,
        ];
        let reopen = |sim: SimStorage| {
            let s: Arc<dyn Storage> = Arc::new(sim);
            let now = Arc::new(AtomicU64::new(0));
            KeyRegistry::open(s, &dir(), &[8; 16], true, opts(&now, 10))
                .map(|r| r.unwrap().key_ids().len())
        };
        for seed in 0..12u64 {
            for mode in modes {
                let sim = SimStorage::new();
                let now = Arc::new(AtomicU64::new(5));
                let s: Arc<dyn Storage> = Arc::new(sim.clone());
                let reg = KeyRegistry::open(s, &dir(), &[8; 16], false, opts(&now, 1))
                    .unwrap()
                    .unwrap();
                assert_eq!(reopen(sim.crash(mode, seed)).unwrap(), 1, "{mode:?}");
                now.fetch_add(86_400, Ordering::SeqCst);
                assert_eq!(reg.cipher_for_new_file().unwrap().key_id, 2);
                assert_eq!(reopen(sim.crash(mode, seed)).unwrap(), 2, "{mode:?}");
                // A third rotation fails at operation `k` of its rewrite.
                now.fetch_add(86_400, Ordering::SeqCst);
                for op in [
                    FaultOp::Open,
                    FaultOp::Write,
                    FaultOp::Sync,
                    FaultOp::Rename,
                    FaultOp::SyncDir,
                ] {
                    sim.inject(Fault::new(op, FaultKind::ShortWrite).times(1));
                    let r = reg.cipher_for_new_file();
                    sim.clear_faults();
                    let n = reopen(sim.crash(mode, seed)).unwrap_or_else(|e| {
                        panic!("registry damaged after a failed {op:?} ({mode:?}): {e}")
                    });
                    match r {
                        // Handed out: it must have survived.
                        Ok(c) => assert_eq!(n as u64, c.key_id, "{op:?} {mode:?}"),
                        Err(_) => assert!(n >= 2, "{op:?} {mode:?}"),
                    }
                }
            }
        }
    }
}

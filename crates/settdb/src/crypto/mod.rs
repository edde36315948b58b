//! Encryption at rest: AES-GCM per sealed unit under per-file keys, and the key registry that
//! holds the data keys under the user's master key.
//!
//! - [`FileCipher`]: the cipher one file is sealed with (its data key id and salt are stored
//!   in the file: log header, table footer).
//! - [`KeyRegistry`]: `KEYREGISTRY`, its data keys, rotation by age, master-key rotation.
//!
//! Normative page: docs/format/encryption.md.

mod cipher;
mod registry;

#[cfg_attr(not(test), allow(unused_imports))]
pub use cipher::{check_key_len, FileCipher, SALT_LEN, TAG_LEN};
#[cfg_attr(not(test), allow(unused_imports))]
pub use registry::{rotate_master_key, KeyRegistry, RegistryOptions, KEY_REGISTRY_FILE_NAME};

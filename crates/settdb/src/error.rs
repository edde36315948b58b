//! The one error type of the library.
//!
//! Every variant a caller may need to tell apart is its own variant; nothing a caller must
//! match on is hidden in a `String`. Corruption always names the file and the byte offset.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout SettDB.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in SettDB.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A transaction committed after our read timestamp wrote a key we read.
    #[error(
        "transaction conflict: a key read by this transaction was written after it started; retry"
    )]
    Conflict,

    /// The transaction or batch is over the size or count limit of one write.
    #[error("transaction too big: {count} entries / {size_bytes} bytes, limits are {max_count} entries / {max_size_bytes} bytes")]
    TxnTooBig {
        /// Entries the transaction would hold.
        count: u64,
        /// Bytes the transaction would hold.
        size_bytes: u64,
        /// Entry limit of one write.
        max_count: u64,
        /// Byte limit of one write.
        max_size_bytes: u64,
    },

    /// One write's values bound for the value log are more than one value-log file holds (a
    /// write's values go into one file, so that their pointers fit).
    #[error("one write holds {size_bytes} bytes of values for the value log; at most {max_size_bytes} (value_log_file_size) fit in one write: split it")]
    ValueLogWriteTooBig {
        /// Bytes of the write's value-log values.
        size_bytes: u64,
        /// Limit: the value-log file size.
        max_size_bytes: u64,
    },

    /// Keys must not be empty.
    #[error("key cannot be empty")]
    EmptyKey,

    /// The key is reserved (internal prefix) or longer than the maximum key size.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why the key was refused.
        reason: &'static str,
    },

    /// The value is larger than the engine can store.
    #[error("value of {size_bytes} bytes is over the limit of {max_size_bytes} bytes")]
    ValueTooLarge {
        /// Size of the refused value.
        size_bytes: u64,
        /// The limit.
        max_size_bytes: u64,
    },

    /// A write was attempted in a read-only transaction.
    #[error("cannot write in a read-only transaction")]
    ReadOnlyTxn,

    /// The transaction was already committed or discarded.
    #[error("transaction has been discarded or committed; start a new one")]
    DiscardedTxn,

    /// Bytes read from disk do not match their format.
    #[error("corruption in {file} at offset {offset}: {reason}", file = file.display())]
    Corruption {
        /// The file the bad bytes were read from.
        file: PathBuf,
        /// Byte offset of the bad structure within the file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// A checksum did not match (a kind of corruption callers may want to count).
    #[error("checksum mismatch in {file} at offset {offset}: stored {stored:#010x}, computed {computed:#010x}", file = file.display())]
    ChecksumMismatch {
        /// The file the bad bytes were read from.
        file: PathBuf,
        /// Byte offset of the checksummed structure.
        offset: u64,
        /// Checksum stored on disk.
        stored: u32,
        /// Checksum computed over the bytes read.
        computed: u32,
    },

    /// An operating-system I/O error, with the path it happened on.
    #[error("I/O error during {op} on {path}: {source}", path = path.display())]
    Io {
        /// What was being done (`"open"`, `"read"`, `"sync"`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A previous write or sync failed; the handle refuses further writes (durability rule 8).
    #[error("the database is poisoned by an earlier write failure: {0}")]
    Poisoned(String),

    /// The directory is locked by another process or handle.
    #[error("directory {} is locked by another process or handle", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// The options are invalid or contradict each other.
    #[error("invalid options: {0}")]
    InvalidOptions(String),

    /// A file was written by a newer (or unknown) format version.
    #[error("{} has format version {found}; this build reads version {supported}", file.display())]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Version this build understands.
        supported: u32,
    },

    /// Compression or decompression failed for a reason other than bad input bytes.
    #[error("compression error: {0}")]
    Compression(String),

    /// The database (or the component) is closed.
    #[error("the database is closed")]
    Closed,

    /// The directory is not a SettDB database: it has no MANIFEST and no database files.
    #[error("{} is not a SettDB database: it has no MANIFEST and no database files", dir.display())]
    NotADatabase {
        /// The directory.
        dir: PathBuf,
    },

    /// The database is encrypted (it has a key registry) but no encryption key was given.
    #[error("{} is an encrypted database: open it with its encryption key", dir.display())]
    EncryptionKeyRequired {
        /// The database directory.
        dir: PathBuf,
    },

    /// An encryption key was given for a database that is not encrypted (it has no key
    /// registry).
    #[error("{} is not an encrypted database (it has no KEYREGISTRY): open it without an encryption key", dir.display())]
    NotEncrypted {
        /// The database directory.
        dir: PathBuf,
    },

    /// The encryption key does not open the key registry (the registry's bytes are intact).
    #[error("wrong encryption key: it does not open the key registry {}", file.display())]
    WrongEncryptionKey {
        /// The key registry file.
        file: PathBuf,
    },

    /// Encrypted bytes failed authentication: they were changed after they were written.
    #[error("authentication failed in {file} at offset {offset}: the encrypted bytes were changed", file = file.display())]
    Authentication {
        /// The file the bytes were read from.
        file: PathBuf,
        /// Byte offset of the sealed unit.
        offset: u64,
    },

    /// A backup's bytes are not a valid backup: a frame cut short, a length over the limit,
    /// bytes that are not a protobuf `KVList`, or a KV SettDB cannot store.
    #[error("bad backup: frame at offset {offset}: {reason}")]
    BadBackup {
        /// Byte offset of the frame in the backup.
        offset: u64,
        /// What was wrong.
        reason: String,
    },

    /// Reading or writing a backup's bytes failed.
    #[error("I/O error during backup {op} at offset {offset}: {source}")]
    BackupIo {
        /// `"read"`, `"write"` or `"flush"`.
        op: &'static str,
        /// Byte offset in the backup where it failed.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A call is not valid in the current state (for example managed and normal calls mixed).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),

    /// A sequence was asked for with a bandwidth of 0 (Badger's `ErrZeroBandwidth`).
    #[error("sequence bandwidth must be greater than zero")]
    ZeroBandwidth,

    /// The value stored under a sequence's key is not an 8-byte big-endian number.
    #[error("the value under a sequence key is {size_bytes} bytes; a sequence stores an 8-byte big-endian number")]
    BadSequenceValue {
        /// Length of the stored value.
        size_bytes: u64,
    },

    /// The key belongs to a banned namespace ([`crate::Db::ban_namespace`]; Badger's
    /// `ErrBannedKey`).
    #[error("key is in banned namespace {namespace}")]
    BannedKey {
        /// The banned namespace.
        namespace: u64,
    },

    /// A namespace call on a database opened without `namespace_offset` (Badger's
    /// `ErrNamespaceMode`).
    #[error("namespaces are off: open the database with namespace_offset >= 0")]
    NamespaceMode,

    /// A sequence's next lease would pass `u64::MAX`.
    #[error("sequence exhausted: leasing {bandwidth} more numbers from {next} passes u64::MAX")]
    SequenceExhausted {
        /// The first number of the lease asked for.
        next: u64,
        /// The bandwidth of the lease.
        bandwidth: u64,
    },

    /// A subscription's buffer overflowed because it did not keep up with the writes
    /// (`Db::subscribe`): it ended, and this is its last item. It was given every matching
    /// update applied before the one at `first_missed_version`, and none from that one on.
    #[error("the subscriber lagged: its buffer (at most {max_buffered_batches} batches, {max_buffered_bytes} bytes) was full, so it was ended; it missed every update from version {first_missed_version} on")]
    SubscriberLagged {
        /// The version of the first update it was not given.
        first_missed_version: u64,
        /// The subscription's batch limit.
        max_buffered_batches: usize,
        /// The subscription's byte limit.
        max_buffered_bytes: u64,
    },

    /// A subscription match's ignore-bytes text (Badger's `"1, 2-3, 4-7"`) does not parse.
    #[error("invalid ignore_bytes {spec:?}: {reason}")]
    InvalidIgnoreBytes {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Builds an [`Error::Corruption`].
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Authentication`].
    pub fn authentication(file: impl Into<PathBuf>, offset: u64) -> Self {
        Error::Authentication {
            file: file.into(),
            offset,
        }
    }

    /// Builds an [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True for errors that mean bytes on disk are damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corruption { .. }
                | Error::ChecksumMismatch { .. }
                | Error::Authentication { .. }
        )
    }
}

//! [`DirArgs`]: the `--dir` and `--vlog-dir` flags every database command takes (Badger's
//! global flags), and opening the database they name with errors a user can act on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use settdb::inspect::MANIFEST_FILE_NAME;
use settdb::io::{FsStorage, LockKind, Storage, StorageLock};
use settdb::{Db, Options, LOCK_FILE_NAME};

use crate::cli_error::{CliError, CliResult};

fn not_a_database(dir: &Path) -> CliError {
    CliError::new(format!(
        "{} is not a SettDB database (it has no {MANIFEST_FILE_NAME})",
        dir.display()
    ))
}

/// Where the database lives.
#[derive(Clone, Debug, clap::Args)]
pub struct DirArgs {
    /// Database directory (tables, MANIFEST, WALs; the value log too unless --vlog-dir).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Value-log directory, when it is not the database directory.
    #[arg(long, value_name = "DIR")]
    pub vlog_dir: Option<PathBuf>,
    /// File holding the database's encryption (master) key: 16, 24 or 32 bytes (AES-128,
    /// -192, -256), raw or as text with one trailing newline. Required for an encrypted database; creates
    /// an encrypted one when the directory is new. Never give a key on the command line.
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
}

/// Reads a key file: its bytes when they are 16, 24 or 32; else, for a key typed into a text
/// file, the bytes before one trailing newline (`\n` or `\r\n`), which must then be 16, 24 or 32.
pub fn read_key_file(path: &Path) -> CliResult<Vec<u8>> {
    let mut key = std::fs::read(path)
        .map_err(|e| CliError::new(format!("cannot read key file {}: {e}", path.display())))?;
    if !matches!(key.len(), 16 | 24 | 32) {
        if key.ends_with(b"\r\n") {
            key.truncate(key.len() - 2);
        } else if key.ends_with(b"\n") {
            key.truncate(key.len() - 1);
        }
    }
    match key.len() {
        16 | 24 | 32 => Ok(key),
        n => Err(CliError::new(format!(
            "key file {} holds {n} bytes; an encryption key is 16, 24 or 32 bytes \
             (AES-128/192/256)",
            path.display()
        ))),
    }
}

impl DirArgs {
    /// The value-log directory in effect.
    pub fn value_dir(&self) -> &Path {
        self.vlog_dir.as_deref().unwrap_or(&self.dir)
    }

    /// Library options for these directories and the key of `--encryption-key-file`
    /// (everything else at its default). Fails if the key file cannot be read or is not a key.
    pub fn options(&self) -> CliResult<Options> {
        let key = match &self.encryption_key_file {
            Some(p) => read_key_file(p)?,
            None => Vec::new(),
        };
        Ok(Options::new(&self.dir)
            .with_value_dir(self.value_dir().to_path_buf())
            .with_encryption_key(key))
    }

    /// Fails unless both directories exist.
    pub fn require_existing(&self) -> CliResult {
        for dir in [self.dir.as_path(), self.value_dir()] {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(CliError::new(format!(
                        "{} is not a directory",
                        dir.display()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(CliError::new(format!(
                        "directory {} does not exist",
                        dir.display()
                    )))
                }
                Err(e) => return Err(CliError::new(format!("cannot read {}: {e}", dir.display()))),
            }
        }
        Ok(())
    }

    /// Fails unless the directories exist and hold a database (a MANIFEST).
    pub fn require_database(&self) -> CliResult {
        self.require_existing()?;
        if self.dir.join(MANIFEST_FILE_NAME).exists() {
            Ok(())
        } else {
            Err(not_a_database(&self.dir))
        }
    }

    /// For a command that inspects a possibly damaged database: fails, saying so, when the
    /// directories hold neither a MANIFEST nor any table, WAL or value-log file.
    pub fn require_database_files(&self) -> CliResult {
        if self.dir.join(MANIFEST_FILE_NAME).exists() {
            return Ok(());
        }
        let has_db_file = |dir: &Path| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries.filter_map(|e| e.ok()).any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    [".sst", ".mem", ".vlog"].iter().any(|x| name.ends_with(x))
                })
            })
        };
        if has_db_file(&self.dir) || has_db_file(self.value_dir()) {
            return Ok(());
        }
        let e = settdb::Error::NotADatabase {
            dir: self.dir.clone(),
        };
        Err(CliError::from_db(e, &self.dir))
    }

    /// For a command that writes: fails if the directory holds files but no database (it
    /// must not create one among someone else's files). A missing or empty directory, or a
    /// database, is fine.
    pub fn refuse_foreign_files(&self) -> CliResult {
        if self.dir.join(MANIFEST_FILE_NAME).exists() {
            return Ok(());
        }
        let holds_files = std::fs::read_dir(&self.dir).is_ok_and(|mut e| e.next().is_some());
        match holds_files {
            true => Err(CliError::new(format!(
                "{} is not empty and is not a SettDB database (it has no {MANIFEST_FILE_NAME}): \
                 refusing to create a database among its files; use a new or empty directory",
                self.dir.display()
            ))),
            false => Ok(()),
        }
    }

    /// Opens an existing database read-only (a shared lock: other readers may run too).
    pub fn open_read_only(&self) -> CliResult<Db> {
        self.require_existing()?;
        self.open(self.options()?.with_read_only(true))
    }

    /// Opens the database with `opts`, translating the errors.
    pub fn open(&self, opts: Options) -> CliResult<Db> {
        Db::open(opts).map_err(|e| self.error(e))
    }

    /// Translates a library error about this database.
    pub fn error(&self, err: settdb::Error) -> CliError {
        if let settdb::Error::Io { source, path, .. } = &err {
            let manifest = path.file_name().is_some_and(|n| n == MANIFEST_FILE_NAME);
            if manifest && source.kind() == std::io::ErrorKind::NotFound {
                return not_a_database(&self.dir);
            }
        }
        CliError::from_db(err, &self.dir)
    }

    /// Takes a shared lock on each directory that has a lock file, as a read-only open does,
    /// so that tools reading files directly (info, verify) never race a writer.
    pub fn lock_shared(&self) -> CliResult<Vec<Box<dyn StorageLock>>> {
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new());
        let mut locks = Vec::new();
        let mut dirs = vec![self.dir.as_path()];
        if self.value_dir() != self.dir {
            dirs.push(self.value_dir());
        }
        for dir in dirs {
            let lock = dir.join(LOCK_FILE_NAME);
            if lock.exists() {
                locks.push(
                    storage
                        .lock(&lock, LockKind::Shared)
                        .map_err(|e| self.error(e))?,
                );
            }
        }
        Ok(locks)
    }
}

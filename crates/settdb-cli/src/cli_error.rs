//! [`CliError`]: the one error a subcommand returns. `main` prints it as one line,
//! `settdb: <message>`, on stderr and exits with its code: 1 for a failure
//! ([`EXIT_FAILURE`]), 2 for bad usage ([`EXIT_USAGE`]: clap's code, also for flags that parse
//! but do not make sense together, and for options the library refuses), 3 when a
//! consistency check found the data wrong ([`EXIT_CHECK_FAILED`]: `bank test`, `bank disect`).
//!
//! Library errors are translated here into messages a newcomer can act on: a locked
//! directory says who may hold it, a missing directory says so, and corruption points at
//! `settdb verify`.

use std::fmt;
use std::path::Path;

/// Exit code of a failed command: bad directory, I/O, corruption, key not found, ...
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of bad usage: clap's, and ours for flags that parse but cannot be honoured.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a consistency check ran and found the data wrong (a bank total changed).
/// Distinct from 1 (the check could not run) and from clap's 2 (bad usage), so scripts can
/// tell a found bug from a broken setup.
pub const EXIT_CHECK_FAILED: u8 = 3;

/// A failed subcommand: the message `main` prints after `settdb: `, and the exit code.
#[derive(Debug)]
pub struct CliError {
    message: String,
    exit_code: u8,
}

/// Result of a subcommand.
pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit_code: EXIT_FAILURE,
        }
    }

    /// Bad usage (flags that cannot be honoured): exit code [`EXIT_USAGE`].
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit_code: EXIT_USAGE,
        }
    }

    /// A consistency check found the data wrong: exit code [`EXIT_CHECK_FAILED`].
    pub fn check_failed(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit_code: EXIT_CHECK_FAILED,
        }
    }

    /// Translates a library error that happened while working on the database in `dir`.
    /// Options the library refuses came from the flags: bad usage.
    pub fn from_db(err: settdb::Error, dir: &Path) -> Self {
        let message = describe_db_error(&err, dir);
        match err {
            settdb::Error::InvalidOptions(_) => CliError::usage(message),
            _ => CliError::new(message),
        }
    }

    /// The message, without the `settdb: ` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One line explaining `err` for a user of the database in `dir`.
pub fn describe_db_error(err: &settdb::Error, dir: &Path) -> String {
    use settdb::Error;
    match err {
        Error::Locked { path } => format!(
            "directory {} is locked by another process (is another settdb or program using it?)",
            path.parent().unwrap_or(dir).display(),
        ),
        Error::Io { source, path, .. }
            if source.kind() == std::io::ErrorKind::NotFound && path == dir =>
        {
            format!("directory {} does not exist", dir.display())
        }
        Error::Io { source, path, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("permission denied on {}: {err}", path.display())
        }
        Error::EncryptionKeyRequired { .. } => {
            format!("{err}: pass --encryption-key-file FILE")
        }
        Error::NotEncrypted { .. } => format!("{err} (drop --encryption-key-file)"),
        e if e.is_corruption() => format!(
            "{e} (run `settdb verify --dir {}` for a full check)",
            dir.display()
        ),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn locked_and_missing_directories_are_explained() {
        // Proves the two errors a newcomer meets first get a sentence naming the directory.
        let dir = PathBuf::from("/x");
        let locked = CliError::from_db(
            settdb::Error::Locked {
                path: dir.join("LOCK"),
            },
            &dir,
        );
        assert!(locked
            .message()
            .starts_with("directory /x is locked by another process (is another settdb"));
        let missing = CliError::from_db(
            settdb::Error::io(
                "open",
                &dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ),
            &dir,
        );
        assert_eq!(missing.message(), "directory /x does not exist");
        let corrupt = CliError::from_db(settdb::Error::corruption("/x/1.sst", 4, "bad"), &dir);
        assert!(corrupt.message().contains("settdb verify --dir /x"));
    }
}

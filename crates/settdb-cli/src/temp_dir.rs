//! [`TempDbDir`]: the temporary database directory of `bench write` and `bank test` without
//! `--dir`. Removed when the command ends, and on Ctrl-C (SIGINT) or SIGTERM too: a
//! benchmark interrupted after a second would otherwise leave a hundred megabytes behind.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::cli_error::{CliError, CliResult};

/// The temporary directories alive now, which the signal handler removes.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Exit code after SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: i32 = 130;

/// A temporary directory that is removed on drop, [`TempDbDir::close`], and on a signal.
#[derive(Debug)]
pub struct TempDbDir {
    dir: Option<tempfile::TempDir>,
}

impl TempDbDir {
    /// Creates a directory `<prefix>XXXXXX` in the system's temporary directory.
    pub fn create(prefix: &str) -> CliResult<TempDbDir> {
        install_handler()?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| CliError::new(format!("cannot create a temporary directory: {e}")))?;
        live().push(dir.path().to_path_buf());
        Ok(TempDbDir { dir: Some(dir) })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// Removes the directory now, reporting a failure.
    pub fn close(mut self) -> CliResult {
        match self.dir.take() {
            Some(d) => {
                forget(d.path());
                d.close().map_err(|e| {
                    CliError::new(format!("cannot remove the temporary directory: {e}"))
                })
            }
            None => Ok(()),
        }
    }

    /// Keeps the directory (no removal, not even on a signal) and returns its path.
    pub fn keep(mut self) -> PathBuf {
        match self.dir.take() {
            Some(d) => {
                forget(d.path());
                d.keep()
            }
            None => PathBuf::new(),
        }
    }
}

impl Drop for TempDbDir {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            forget(d.path());
        }
    }
}

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget(path: &Path) {
    live().retain(|p| p != path);
}

/// Installs the SIGINT/SIGTERM handler once: it removes the live temporary directories and
/// exits with [`EXIT_INTERRUPTED`].
fn install_handler() -> CliResult {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                for dir in live().iter() {
                    let _ = std::fs::remove_dir_all(dir);
                    eprintln!("settdb: interrupted; removed {}", dir.display());
                }
                std::process::exit(EXIT_INTERRUPTED);
            })
            .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))
        })
        .clone()
        .map_err(CliError::new)
}

//! `settdb rotate`: re-seals an encrypted database's key registry under a new master key, as
//! Badger's `rotate` does. Only `KEYREGISTRY` changes (replaced atomically); the data keys, and
//! so every table, WAL and value-log file, stay as they are. Keys come from files only.

use std::path::PathBuf;

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::{read_key_file, DirArgs};

/// Flags of `rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Database directory.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// File holding the current master key (16, 24 or 32 bytes).
    #[arg(long, value_name = "FILE")]
    pub old_key_file: PathBuf,
    /// File holding the new master key (16, 24 or 32 bytes).
    #[arg(long, value_name = "FILE")]
    pub new_key_file: PathBuf,
}

/// Runs `rotate`.
pub fn run(args: RotateArgs) -> CliResult {
    let new_key = read_key_file(&args.new_key_file)?;
    let dirs = DirArgs {
        dir: args.dir.clone(),
        vlog_dir: None,
        encryption_key_file: Some(args.old_key_file.clone()),
    };
    dirs.require_database()?;
    let opts = dirs.options()?;
    if opts.encryption_key == new_key {
        return Err(CliError::usage(
            "the new key is the old key: nothing to rotate",
        ));
    }
    let n = settdb::rotate_encryption_key(&opts, &new_key).map_err(|e| dirs.error(e))?;
    println!(
        "rotated the master key of {}: {n} data keys re-sealed in KEYREGISTRY; open it with \
         --encryption-key-file {} from now on",
        args.dir.display(),
        args.new_key_file.display()
    );
    Ok(())
}

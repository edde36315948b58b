//! `settdb set`: sets one key to a value, creating the database if the directory is new or
//! empty (never among someone else's files).

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::encoding::Encoding;

/// Flags of `set`.
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Key and value in hexadecimal instead of text.
    #[arg(long)]
    pub hex: bool,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// Runs `set`.
pub fn run(args: SetArgs) -> CliResult {
    let encoding = Encoding::from_hex_flag(args.hex);
    let key = encoding.decode(&args.key, "key")?;
    let value = encoding.decode(&args.value, "value")?;
    // A key the library refuses is bad usage, found before a database is created for it.
    settdb::validate_key(&key).map_err(|e| CliError::usage(format!("key: {e}")))?;
    args.dirs.refuse_foreign_files()?;
    let db = args.dirs.open(args.dirs.options()?)?;
    let version = db.set(key, value);
    // Close even after a failed write: it releases the lock and flushes what was written.
    let closed = db.close();
    let version = version.map_err(|e| args.dirs.error(e))?;
    closed.map_err(|e| args.dirs.error(e))?;
    println!("set {} at version {version}", args.key);
    Ok(())
}

//! `settdb delete`: deletes one key (writes a tombstone) in an existing database.

use crate::cli_error::CliResult;
use crate::db_dir::DirArgs;
use crate::encoding::Encoding;

/// Flags of `delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Key in hexadecimal instead of text.
    #[arg(long)]
    pub hex: bool,
    /// The key.
    pub key: String,
}

/// Runs `delete`.
pub fn run(args: DeleteArgs) -> CliResult {
    let key = Encoding::from_hex_flag(args.hex).decode(&args.key, "key")?;
    args.dirs.require_database()?;
    let db = args.dirs.open(args.dirs.options()?)?;
    let version = db.delete(key);
    let closed = db.close();
    let version = version.map_err(|e| args.dirs.error(e))?;
    closed.map_err(|e| args.dirs.error(e))?;
    println!("deleted {} at version {version}", args.key);
    Ok(())
}

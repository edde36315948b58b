//! `settdb get`: prints the value of one key (read-only open, so other readers may run).
//! A key that has no value is an error: `settdb: key not found`, exit code 1.

use std::io::Write;

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::encoding::Encoding;

/// Flags of `get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Key and value in hexadecimal instead of text.
    #[arg(long)]
    pub hex: bool,
    /// The key.
    pub key: String,
}

/// Runs `get`.
pub fn run(args: GetArgs) -> CliResult {
    let encoding = Encoding::from_hex_flag(args.hex);
    let key = encoding.decode(&args.key, "key")?;
    let db = args.dirs.open_read_only()?;
    let value = db.get(&key);
    let closed = db.close();
    let value = value.map_err(|e| args.dirs.error(e))?;
    closed.map_err(|e| args.dirs.error(e))?;
    let value = value.ok_or_else(|| CliError::new("key not found"))?;
    let mut out = encoding.encode(&value);
    out.push(b'\n');
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))
}

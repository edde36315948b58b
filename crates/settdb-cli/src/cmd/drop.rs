//! `settdb drop`: Badger's `DropAll` / `DropPrefix` from the command line. `--all` removes
//! every key; `--prefix P` (repeatable) every key starting with P. Tables are removed or
//! rewritten without the keys, no tombstone per key; the value-log space of `--all` comes back
//! at once, that of a prefix through value-log GC (`settdb gc`). Prints the database's size
//! before and after.

use settdb::Db;

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::encoding::Encoding;
use crate::progress::{Goal, Progress};
use crate::units::fmt_bytes;

/// Flags of `drop`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["all", "prefix"])))]
pub struct DropArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Remove every key and value.
    #[arg(long)]
    pub all: bool,
    /// Remove every key starting with this prefix (repeat for several).
    #[arg(long, value_name = "P")]
    pub prefix: Vec<String>,
    /// Prefixes in hexadecimal instead of text.
    #[arg(long)]
    pub hex: bool,
}

/// Runs `drop`.
pub fn run(args: DropArgs) -> CliResult {
    let encoding = Encoding::from_hex_flag(args.hex);
    let prefixes = args
        .prefix
        .iter()
        .map(|p| encoding.decode(p, "prefix"))
        .collect::<CliResult<Vec<Vec<u8>>>>()?;
    if prefixes.iter().any(Vec::is_empty) {
        return Err(CliError::new(
            "an empty --prefix matches every key: use --all to drop everything",
        ));
    }
    args.dirs.require_database()?;
    let db = args.dirs.open(args.dirs.options()?)?;
    print_size("before", &db);
    let progress = Progress::start("drop", Goal::Open, "");
    let dropped = if args.all {
        db.drop_all()
    } else {
        db.drop_prefix(&prefixes)
    };
    progress.finish();
    if dropped.is_ok() {
        print_size("after", &db);
    }
    let closed = db.close();
    dropped.map_err(|e| args.dirs.error(e))?;
    closed.map_err(|e| args.dirs.error(e))?;
    Ok(())
}

fn print_size(when: &str, db: &Db) {
    let size = db.size();
    println!(
        "{when}: tables {}, value log {}",
        fmt_bytes(size.lsm_bytes),
        fmt_bytes(size.vlog_bytes)
    );
}

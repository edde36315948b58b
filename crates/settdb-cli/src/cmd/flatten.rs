//! `settdb flatten`: Badger's `flatten`. Compacts every level into the last one
//! (`Db::flatten`), dropping overwritten versions and tombstones; prints the levels before
//! and after. Background compaction and value-log GC are off meanwhile (compaction as in
//! Badger), so the discard statistics it leaves are there for `settdb info --discard` and
//! `settdb gc`.

use settdb::inspect::LevelsSnapshot;

use crate::cli_error::CliResult;
use crate::compression_arg::CompressionArg;
use crate::db_dir::DirArgs;
use crate::levels_report::print_levels;
use crate::progress::{Goal, Progress};

/// Flags of `flatten`.
#[derive(Debug, clap::Args)]
pub struct FlattenArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Versions of each key to keep.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub num_versions: u32,
    /// Block compression of the tables written.
    #[arg(long, value_enum, default_value_t = CompressionArg::Snappy)]
    pub compression: CompressionArg,
}

/// Runs `flatten`.
pub fn run(args: FlattenArgs) -> CliResult {
    args.dirs.require_database()?;
    let opts = args
        .dirs
        .options()?
        .with_num_compactors(0)
        .with_auto_value_log_gc(false)
        .with_num_versions_to_keep(args.num_versions)
        .with_compression(args.compression.to_compression(1));
    let db = args.dirs.open(opts)?;
    print_snapshot("before", &db.levels());
    let progress = Progress::start("flatten", Goal::Open, "");
    let flattened = db.flatten();
    progress.finish();
    if flattened.is_ok() {
        print_snapshot("after", &db.levels());
    }
    let closed = db.close();
    flattened.map_err(|e| args.dirs.error(e))?;
    closed.map_err(|e| args.dirs.error(e))?;
    Ok(())
}

fn print_snapshot(when: &str, snapshot: &LevelsSnapshot) {
    println!("levels {when} flatten:");
    print_levels(snapshot);
}

//! `settdb repair`: runs [`settdb::repair`] (LevelDB's and RocksDB's RepairDB; Badger has
//! none): rebuilds a damaged database from every table block, WAL batch and value-log record
//! that can still be read, moves every old file into `lost/N/` (nothing is deleted), and
//! prints what was kept and what was lost. A database `verify` passes is left alone.

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::units::{fmt_bytes, plural};

/// Flags of `repair`.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
}

/// Runs `repair`.
pub fn run(args: RepairArgs) -> CliResult {
    let dirs = &args.dirs;
    dirs.require_existing()?;
    let r = settdb::repair(&dirs.options()?).map_err(|e| CliError::from_db(e, &dirs.dir))?;
    if !r.repaired {
        println!(
            "nothing to repair: verify found no problem in {}",
            dirs.dir.display()
        );
        return Ok(());
    }
    if r.resumed {
        println!("finished a repair that was interrupted while swapping files");
    }
    for p in &r.problems {
        println!("found: {p}");
    }
    for d in &r.damaged {
        println!("lost: {d}");
    }
    if let Some(lost) = &r.lost_dir {
        println!(
            "moved {} into {} (nothing was deleted; remove it once you no longer need it)",
            plural(r.moved_files.len() as u64, "old file"),
            lost.display()
        );
    }
    if !r.resumed {
        println!(
            "kept {} ({} of keys and values) in {}",
            plural(r.keys_kept, "live key"),
            fmt_bytes(r.bytes_kept),
            plural(r.versions_kept, "version")
        );
        println!(
            "lost {} of damaged data, and {}{}",
            fmt_bytes(r.bytes_lost),
            plural(r.values_lost, "value"),
            if r.values_lost > 0 {
                " (their versions are now tombstones; keys in lost-keys.txt)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

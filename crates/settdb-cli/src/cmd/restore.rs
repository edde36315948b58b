//! `settdb restore`: Badger's `restore`. Loads a backup written by `settdb backup`, `badger
//! backup` (v2 or v4) or Badger's `DB.Backup` into a database, each version at its own
//! version (`Db::load`). Refuses a directory that already holds a database unless
//! `--into-existing` (then the backup's versions are added to what is there).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use settdb::inspect::MANIFEST_FILE_NAME;

use crate::cli_error::{CliError, CliResult};
use crate::cmd::backup::kv_rate;
use crate::db_dir::DirArgs;
use crate::progress::{Goal, Progress, BYTES};
use crate::units::{fmt_bytes, plural};

/// Flags of `restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// The backup file to read (`-`: standard input).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Writes in flight at most (Badger's --max-pending-writes).
    #[arg(long, short = 'w', default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending_writes: u64,
    /// Restore into a directory that already holds a database, adding the backup's versions
    /// to its own.
    #[arg(long)]
    pub into_existing: bool,
}

/// Runs `restore`.
pub fn run(args: RestoreArgs) -> CliResult {
    if args.dirs.dir.join(MANIFEST_FILE_NAME).exists() && !args.into_existing {
        return Err(CliError::usage(format!(
            "{} already holds a database: restore into a new or empty directory, or pass \
             --into-existing to add the backup to it",
            args.dirs.dir.display()
        )));
    }
    args.dirs.refuse_foreign_files()?;
    let from_stdin = args.file.as_os_str() == "-";
    let (input, total): (Box<dyn Read>, u64) = if from_stdin {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let f = File::open(&args.file).map_err(|e| {
            CliError::new(format!("cannot open backup {}: {e}", args.file.display()))
        })?;
        let len = f.metadata().map_or(0, |m| m.len());
        (Box::new(f), len)
    };
    let mut input = BufReader::with_capacity(1 << 20, input);
    let db = args.dirs.open(args.dirs.options()?)?;
    let kvs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let goal = if total > 0 {
        Goal::Items(total)
    } else {
        Goal::Open
    };
    let progress = {
        let kvs = kvs.clone();
        Progress::start_with_detail("restore", goal, BYTES, move || {
            kv_rate(kvs.load(Ordering::Relaxed), start)
        })
    };
    let mut last = 0;
    let loaded = db.load_with_progress(&mut input, args.max_pending_writes as usize, |s| {
        progress.add(s.bytes - last);
        last = s.bytes;
        kvs.store(s.kvs, Ordering::Relaxed);
    });
    progress.finish();
    let closed = db.close();
    let name = if from_stdin {
        "standard input".to_string()
    } else {
        args.file.display().to_string()
    };
    let summary = loaded
        .map_err(|e| CliError::new(format!("restore from {name}: {}", args.dirs.error(e))))?;
    closed.map_err(|e| args.dirs.error(e))?;
    println!(
        "restored {} ({} in {}) from {name} in {:.1}s; largest version {}",
        plural(summary.kvs, "version"),
        fmt_bytes(summary.bytes),
        plural(summary.frames, "frame"),
        start.elapsed().as_secs_f64(),
        summary.max_version
    );
    Ok(())
}

//! `settdb gc`: value-log garbage collection on demand (what Badger users script around
//! `RunValueLogGC`). Rewrites, one file per call of `Db::run_value_log_gc_limited`, every
//! sealed value-log file whose discard ratio is at least `--ratio`, until none is left or
//! `--max-files` were retired; prints the value log before and after and the bytes given back.
//! Background GC and compaction are off meanwhile, so what is printed is this command's work.

use settdb::{Db, GcOutcome, GcReport, ValueLogFileInfo};

use crate::cli_error::CliResult;
use crate::db_dir::DirArgs;
use crate::progress::{Goal, Progress, BYTES};
use crate::units::{fmt_bytes, plural};

/// Flags of `gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Rewrite files at least this dead (dead bytes over the file's bytes), in (0, 1).
    #[arg(long, default_value_t = 0.5, value_parser = parse_ratio)]
    pub ratio: f64,
    /// Stop after retiring this many files (default: every candidate).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_files: Option<u64>,
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if r > 0.0 && r < 1.0 {
        Ok(r)
    } else {
        Err(format!(
            "{s} is not in (0, 1): a file's dead share is what it compares with"
        ))
    }
}

/// Runs `gc`.
pub fn run(args: GcArgs) -> CliResult {
    args.dirs.require_database()?;
    let opts = args
        .dirs
        .options()?
        .with_num_compactors(0)
        .with_auto_value_log_gc(false);
    let db = args.dirs.open(opts)?;
    let outcome = collect(&db, &args);
    let closed = db.close();
    let total = outcome.map_err(|e| args.dirs.error(e))?;
    closed.map_err(|e| args.dirs.error(e))?;
    // What is left at or above the ratio (less dead than its statistics, or read by a
    // snapshot) is in the "value log after" line.
    println!(
        "gc: {} retired, {} of live values moved, {} given back",
        plural(total.files_retired.len() as u64, "file"),
        fmt_bytes(total.bytes_moved),
        fmt_bytes(total.bytes_reclaimed()),
    );
    Ok(())
}

/// Retires files one at a time until none qualifies or the limit is reached.
fn collect(db: &Db, args: &GcArgs) -> settdb::Result<GcReport> {
    let files = db.value_log_files();
    print_value_log("before", &files, args.ratio);
    let goal = candidates(&files, args.ratio)
        .map(|f| f.size_bytes)
        .sum::<u64>();
    let limit = args.max_files.unwrap_or(u64::MAX);
    let progress = Progress::start("gc", Goal::Items(goal), BYTES);
    let mut total = GcReport::default();
    let run = loop {
        if total.files_retired.len() as u64 >= limit {
            break Ok(());
        }
        match db.run_value_log_gc_limited(args.ratio, 1) {
            Ok(GcOutcome::NothingToRewrite) => break Ok(()),
            Ok(GcOutcome::Rewrote(r)) => {
                progress.add(r.bytes_retired);
                total.files_retired.extend(&r.files_retired);
                total.bytes_retired += r.bytes_retired;
                total.values_moved += r.values_moved;
                total.bytes_moved += r.bytes_moved;
            }
            Err(e) => break Err(e),
        }
    };
    progress.finish();
    run?;
    print_value_log("after", &db.value_log_files(), args.ratio);
    Ok(total)
}

fn candidates(files: &[ValueLogFileInfo], ratio: f64) -> impl Iterator<Item = &ValueLogFileInfo> {
    files
        .iter()
        .filter(move |f| !f.active && f.discard_ratio() >= ratio)
}

fn print_value_log(when: &str, files: &[ValueLogFileInfo], ratio: f64) {
    let bytes: u64 = files.iter().map(|f| f.size_bytes).sum();
    let dead: u64 = files.iter().map(|f| f.discard_bytes).sum();
    println!(
        "value log {when}: {}, {} ({} known dead); {} at or above ratio {ratio}",
        plural(files.len() as u64, "file"),
        fmt_bytes(bytes),
        fmt_bytes(dead),
        plural(candidates(files, ratio).count() as u64, "sealed file"),
    );
}

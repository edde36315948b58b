//! `settdb verify`: runs [`settdb::verify`], which checks every checksum of the database's
//! files without opening it (the MANIFEST and the directory against it, every table block,
//! every value-log record, every value pointer of each key's newest version, every WAL, the
//! DISCARD statistics) and reports every problem, not only the first.
//!
//! Prints a summary; exits 1 if anything is damaged or lost. Takes a shared lock (no writer
//! can run) and writes nothing, so it works on read-only media.

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::disk_usage::DiskUsage;
use crate::progress::{Goal, Progress, BYTES};
use crate::units::{fmt_bytes, plural};

/// Flags of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
}

/// Runs `verify`.
pub fn run(args: VerifyArgs) -> CliResult {
    let dirs = &args.dirs;
    dirs.require_existing()?;
    let mut scanned = vec![dirs.dir.as_path()];
    scanned.extend(dirs.vlog_dir.as_deref());
    let total = DiskUsage::scan(&scanned).map_or(0, |u| u.total_bytes());
    let progress = Progress::start("verify", Goal::Items(total), BYTES);
    let report = settdb::verify_with_progress(&dirs.options()?, &|n| progress.add(n))
        .map_err(|e| CliError::from_db(e, &dirs.dir));
    progress.finish();
    let report = report?;
    print_summary(&report);
    if report.is_ok() {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "{} found in {} (listed above; `settdb repair --dir {}` salvages what is readable)",
            plural(report.problems.len() as u64, "problem"),
            dirs.dir.display(),
            dirs.dir.display()
        )))
    }
}

fn print_summary(r: &settdb::VerifyReport) {
    println!(
        "verified {} ({}, {})",
        plural(r.tables, "table"),
        fmt_bytes(r.table_bytes),
        plural(r.blocks, "block")
    );
    println!(
        "verified {} ({}, {})",
        plural(r.vlog_files, "value-log file"),
        fmt_bytes(r.vlog_bytes),
        plural(r.vlog_records, "record")
    );
    println!(
        "replayed {} ({})",
        plural(r.wals, "WAL"),
        fmt_bytes(r.wal_bytes)
    );
    for n in &r.notes {
        println!("note: {n}");
    }
    if r.problems.is_empty() {
        println!("OK: no corruption found");
    } else {
        for p in &r.problems {
            println!("CORRUPT: {p}");
        }
    }
}

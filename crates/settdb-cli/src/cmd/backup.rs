//! `settdb backup`: Badger's `backup`. Writes every version newer than `--since` (deletes,
//! expiry and user meta included) in Badger's backup format (docs/format/backup.md), which
//! `settdb restore` and `badger restore` both read. Opens the database read-only.
//!
//! The file is written as `F.partial` and renamed to `F` once complete and synced, so a
//! backup cut short never looks like a whole one. `--file -` writes to stdout (messages go to
//! stderr). Prints the version to pass as the next `--since` for an incremental backup.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::progress::{Goal, Progress, BYTES};
use crate::units::{fmt_bytes, fmt_count, plural};
use crate::writeback::{WritebackFile, WRITEBACK_BYTES};

/// Flags of `backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// The backup file to write (`-`: standard output).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Only versions newer than this (the number an earlier backup printed): an incremental
    /// backup.
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// Read sealed value-log files through memory mappings (Options::value_log_mmap, on by
    /// default, as Badger does: no system call per value; a file the disk cannot read is
    /// read again with pread, which reports the error); `--value-log-mmap false` reads each
    /// value with pread.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub value_log_mmap: bool,
}

/// Runs `backup`.
pub fn run(args: BackupArgs) -> CliResult {
    args.dirs.require_database()?;
    let db = args.dirs.open(
        args.dirs
            .options()?
            .with_read_only(true)
            .with_value_log_mmap(args.value_log_mmap),
    )?;
    let to_stdout = args.file.as_os_str() == "-";
    let partial = partial_path(&args.file);
    let kvs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let progress = {
        let kvs = kvs.clone();
        Progress::start_with_detail("backup", Goal::Open, BYTES, move || {
            kv_rate(kvs.load(Ordering::Relaxed), start)
        })
    };
    let mut last = settdb::BackupProgress::default();
    let mut report = |p: &settdb::BackupProgress| {
        progress.add(p.bytes - last.bytes);
        kvs.store(p.kvs, Ordering::Relaxed);
        last = *p;
    };
    let result = if to_stdout {
        let mut out = BufWriter::new(std::io::stdout().lock());
        db.backup_with_progress(&mut out, args.since, &mut report)
            .map_err(|e| args.dirs.error(e))
    } else {
        write_file(&db, &partial, &args, &mut report)
    };
    progress.finish();
    let closed = db.close().map_err(|e| args.dirs.error(e));
    let next = match result.and_then(|n| closed.map(|()| n)) {
        Ok(n) => n,
        Err(e) => {
            if !to_stdout {
                let _ = std::fs::remove_file(&partial);
            }
            return Err(e);
        }
    };
    if !to_stdout {
        std::fs::rename(&partial, &args.file).map_err(|e| {
            CliError::new(format!(
                "cannot rename {} to {}: {e}",
                partial.display(),
                args.file.display()
            ))
        })?;
        // The rename is durable only once the directory is synced (DESIGN.md rule 2).
        let dir = match args.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| CliError::new(format!("cannot sync directory {}: {e}", dir.display())))?;
    }
    let secs = start.elapsed().as_secs_f64();
    let line = format!(
        "backed up {} ({}) in {secs:.1}s; next incremental backup: --since {next}",
        plural(last.kvs, "version"),
        fmt_bytes(last.bytes),
    );
    if to_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(())
}

/// "N KVs, R/s" for the progress line.
pub fn kv_rate(n: u64, start: Instant) -> String {
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    format!(
        "{} keys, {}/s",
        fmt_count(n),
        fmt_count((n as f64 / secs) as u64)
    )
}

fn partial_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_os_string();
    name.push(".partial");
    PathBuf::from(name)
}

fn write_file(
    db: &settdb::Db,
    partial: &Path,
    args: &BackupArgs,
    report: &mut impl FnMut(&settdb::BackupProgress),
) -> CliResult<u64> {
    let cannot = |what: &str, e: std::io::Error| {
        CliError::new(format!("cannot {what} {}: {e}", partial.display()))
    };
    let file = File::create(partial).map_err(|e| cannot("create", e))?;
    // The disk writes the backup while it is produced, not all of it at the final sync.
    let file = WritebackFile::new(file, WRITEBACK_BYTES).map_err(|e| cannot("write", e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let next = db
        .backup_with_progress(&mut out, args.since, report)
        .map_err(|e| args.dirs.error(e))?;
    let file = out
        .into_inner()
        .map_err(|e| cannot("write", e.into_error()))?;
    file.finish().map_err(|e| cannot("sync", e))?;
    Ok(next)
}

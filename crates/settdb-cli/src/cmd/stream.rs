//! `settdb stream`: Badger's `stream`. Copies a database into a new one (`--out-dir`): a
//! parallel read of one snapshot of the source (`Db::stream`, opened read-only) bulk-loaded
//! into the new database's last level (`Db::bulk_load`), with the new database's own
//! compression (and encryption key, `--out-encryption-key-file`). Every version a backup would
//! hold is copied: the newest versions of every key back to its first delete, with expiry
//! and user meta. All or nothing: a failure leaves the new database empty.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::cli_error::{CliError, CliResult};
use crate::cmd::backup::kv_rate;
use crate::compression_arg::CompressionArg;
use crate::db_dir::{read_key_file, DirArgs};
use crate::progress::{Goal, Progress};
use crate::units::{fmt_bytes, plural};

/// Flags of `stream`.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// The directory of the new database (new or empty).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Block compression of the new database's tables.
    #[arg(long, value_enum, default_value_t = CompressionArg::Snappy)]
    pub compression: CompressionArg,
    /// Encrypt the new database with the key in this file (16, 24 or 32 bytes).
    #[arg(long, value_name = "FILE")]
    pub out_encryption_key_file: Option<PathBuf>,
}

/// Runs `stream`.
pub fn run(args: StreamArgs) -> CliResult {
    args.dirs.require_database()?;
    let out = DirArgs {
        dir: args.out_dir.clone(),
        vlog_dir: None,
        encryption_key_file: args.out_encryption_key_file.clone(),
    };
    if out.dir.join(settdb::inspect::MANIFEST_FILE_NAME).exists() {
        return Err(CliError::usage(format!(
            "{} already holds a database: stream into a new or empty directory",
            out.dir.display()
        )));
    }
    out.refuse_foreign_files()?;
    if let Some(k) = &args.out_encryption_key_file {
        read_key_file(k)?;
    }
    let src = args.dirs.open_read_only()?;
    let dst = out.open(
        out.options()?
            .with_compression(args.compression.to_compression(1)),
    )?;
    let kvs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let progress = {
        let kvs = kvs.clone();
        Progress::start_with_detail("stream", Goal::Open, "", move || {
            kv_rate(kvs.load(Ordering::Relaxed), start)
        })
    };
    let copied = dst.bulk_load(|w| {
        src.stream()
            .done_markers(true)
            .key_to_list(settdb::backup_key_to_list)
            .run(|list| {
                kvs.fetch_add(
                    list.kv.iter().filter(|kv| !kv.stream_done).count() as u64,
                    Ordering::Relaxed,
                );
                w.write(list)
            })
    });
    progress.finish();
    let closed_src = src.close();
    let closed_dst = dst.close();
    let (_, summary) = copied.map_err(|e| CliError::new(format!("stream: {e}")))?;
    closed_src.map_err(|e| args.dirs.error(e))?;
    closed_dst.map_err(|e| out.error(e))?;
    println!(
        "streamed {} into {} ({}, {} of values in the value log) in {:.1}s",
        plural(summary.kvs, "version"),
        out.dir.display(),
        plural(summary.tables, "table"),
        fmt_bytes(summary.value_log_bytes),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

//! `settdb restore`: Badger's `restore`. Loads a backup written by `settdb backup`, `badger
//! backup` (v2 or v4) or Badger's `DB.Backup` into a database, each version at its own
//! version. Into a new database the backup's streams are bulk-loaded straight into tables
//! (`Db::bulk_load`: all or nothing); a backup whose streams are not sorted (for example
//! several backups concatenated) is then loaded through the write path instead (`Db::load`),
//! which `--load` asks for directly. Refuses a directory that already holds a database unless
//! `--into-existing` (then the backup's versions are added to what is there, with `load`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use settdb::backup::pb::KvList;
use settdb::backup::FrameReader;
use settdb::inspect::MANIFEST_FILE_NAME;
use settdb::LoadSummary;

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
    /// Load through the write path even into a new database (no bulk load).
    #[arg(long)]
    pub load: bool,
}

/// Runs `restore`.
pub fn run(args: RestoreArgs) -> CliResult {
    let exists = args.dirs.dir.join(MANIFEST_FILE_NAME).exists();
    if exists && !args.into_existing {
        return Err(CliError::usage(format!(
            "{} already holds a database: restore into a new or empty directory, or pass \
             --into-existing to add the backup to it",
            args.dirs.dir.display()
        )));
    }
    args.dirs.refuse_foreign_files()?;
    let from_stdin = args.file.as_os_str() == "-";
    let name = if from_stdin {
        "standard input".to_string()
    } else {
        args.file.display().to_string()
    };
    let db = args.dirs.open(args.dirs.options()?)?;
    let start = Instant::now();
    let mut outcome = if exists || args.load {
        load(&db, &args)
    } else {
        bulk(&db, &args)
    };
    if let Err(Fallback(why)) = &outcome {
        if from_stdin {
            let _ = db.close();
            return Err(CliError::new(format!(
                "restore from {name}: {why}; standard input cannot be read twice: run again \
                 with --load"
            )));
        }
        eprintln!("settdb: {why}: loading through the write path instead");
        outcome = load(&db, &args);
    }
    let closed = db.close();
    let (summary, how) = outcome.map_err(|e| match e {
        Fallback(why) => CliError::new(format!("restore from {name}: {why}")),
        Failed(e) => CliError::new(format!("restore from {name}: {}", args.dirs.error(e))),
    })?;
    closed.map_err(|e| args.dirs.error(e))?;
    println!(
        "restored {} ({} in {}) from {name} in {:.1}s ({how}); largest version {}",
        plural(summary.kvs, "version"),
        fmt_bytes(summary.bytes),
        plural(summary.frames, "frame"),
        start.elapsed().as_secs_f64(),
        summary.max_version
    );
    Ok(())
}

/// Why a restore did not finish: the bulk load refused the backup's order (the load path can
/// still take it), or anything else.
enum Outcome {
    Fallback(String),
    Failed(settdb::Error),
}
use Outcome::{Failed, Fallback};

fn open_input(args: &RestoreArgs) -> Result<(Box<dyn Read + Send>, u64), Outcome> {
    if args.file.as_os_str() == "-" {
        return Ok((
            Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            0,
        ));
    }
    let f = File::open(&args.file).map_err(|e| {
        Failed(settdb::Error::BackupIo {
            op: "open",
            offset: 0,
            source: e,
        })
    })?;
    let len = f.metadata().map_or(0, |m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
}

fn progress_for(total: u64) -> (Progress, Arc<AtomicU64>) {
    let kvs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let goal = if total > 0 {
        Goal::Items(total)
    } else {
        Goal::Open
    };
    let shown = kvs.clone();
    let p = Progress::start_with_detail("restore", goal, BYTES, move || {
        kv_rate(shown.load(Ordering::Relaxed), start)
    });
    (p, kvs)
}

fn load(db: &settdb::Db, args: &RestoreArgs) -> Result<(LoadSummary, &'static str), Outcome> {
    let (mut input, total) = open_input(args)?;
    let (progress, kvs) = progress_for(total);
    let mut last = 0;
    let loaded = db.load_with_progress(&mut input, args.max_pending_writes as usize, |s| {
        progress.add(s.bytes - last);
        last = s.bytes;
        kvs.store(s.kvs, Ordering::Relaxed);
    });
    progress.finish();
    loaded.map(|s| (s, "loaded")).map_err(Failed)
}

fn bulk(db: &settdb::Db, args: &RestoreArgs) -> Result<(LoadSummary, &'static str), Outcome> {
    let (input, total) = open_input(args)?;
    let (progress, kvs) = progress_for(total);
    let mut summary = LoadSummary::default();
    // Frames are read and decoded on their own thread, while this one writes the previous
    // ones (a bounded channel of two frames in between).
    // The frame's bytes travel with it and come back once written, for reuse.
    type Msg = settdb::Result<(KvList, u64, Bytes)>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(2);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Bytes>();
    let result = std::thread::scope(|s| {
        s.spawn(move || {
            let mut frames = FrameReader::new(input);
            loop {
                while let Ok(b) = back_rx.try_recv() {
                    frames.recycle(b);
                }
                let msg = match frames.next_frame_shared() {
                    Ok(Some((_, list, bytes))) => Ok((list, frames.offset(), bytes)),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                let stop = msg.is_err();
                if tx.send(msg).is_err() || stop {
                    break;
                }
            }
        });
        db.bulk_load(|w| {
            // Owned by this closure: dropped when it returns, so the reader stops sending.
            for msg in rx {
                let (list, offset, bytes) = msg?;
                let n = list.kv.iter().filter(|kv| !kv.stream_done).count() as u64;
                w.write(list)?;
                let _ = back_tx.send(bytes);
                summary.frames += 1;
                summary.kvs += n;
                progress.add(offset - summary.bytes);
                summary.bytes = offset;
                kvs.store(summary.kvs, Ordering::Relaxed);
            }
            Ok(())
        })
    });
    progress.finish();
    match result {
        Ok(((), s)) => {
            summary.max_version = s.max_version;
            Ok((summary, "bulk-loaded into tables"))
        }
        Err(settdb::Error::InvalidRequest(why)) if why.contains("use load") => {
            Err(Fallback(why.to_string()))
        }
        Err(e) => Err(Failed(e)),
    }
}

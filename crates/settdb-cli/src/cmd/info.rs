//! `settdb info`: Badger's `info`. First the MANIFEST against the directory, read straight
//! from the files (works on a damaged directory), and the files per kind; then the database
//! opened read-only: tables and bytes per level, the value log, a key count estimate, with
//! `--show-tables` every table, with `--discard` every value-log file's dead bytes, and with
//! `--stats` the engine's statistics (`Db::stats`). Exits 1 if the MANIFEST is unreadable,
//! lists a missing file, or the database does not open.

use settdb::{Db, IteratorOptions};

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::disk_usage::DiskUsage;
use crate::encoding::{encode_hex, escape_text, Encoding};
use crate::levels_report::{all_totals, print_levels, print_tables};
use crate::manifest_check::ManifestCheck;
use crate::units::{fmt_bytes, fmt_count, plural};

/// Flags of `info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// List every table: id, level, size, entries, newest version, key range.
    #[arg(long)]
    pub show_tables: bool,
    /// List every value-log file: size, bytes known dead (what GC would give back), ratio.
    #[arg(long)]
    pub discard: bool,
    /// List keys with every version: version, set / deleted / expired, value size.
    #[arg(long)]
    pub show_keys: bool,
    /// With --show-keys: only keys starting with this prefix.
    #[arg(long, requires = "show_keys")]
    pub prefix: Option<String>,
    /// Keys and --prefix in hexadecimal instead of escaped text.
    #[arg(long)]
    pub hex: bool,
    /// Print the engine's statistics (`Db::stats`) of this read-only open: levels, caches,
    /// and the counters (bytes, gets, flushes, compactions, stalls, GC) since it opened.
    #[arg(long)]
    pub stats: bool,
}

/// Prints whether the database is encrypted and, if it is, its data keys.
fn print_encryption(db: &Db, dirs: &DirArgs) {
    let keys = db.encryption_keys();
    if keys.is_empty() {
        println!("encryption: none");
        return;
    }
    // The key file opened the database a moment ago; its length is the AES variant.
    let aes = dirs
        .encryption_key_file
        .as_deref()
        .and_then(|f| crate::db_dir::read_key_file(f).ok())
        .map_or("AES-GCM".to_string(), |k| {
            format!("AES-{}-GCM", k.len() * 8)
        });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!(
        "encryption: {aes}, {} in KEYREGISTRY (new files use the newest):",
        plural(keys.len() as u64, "data key")
    );
    for k in &keys {
        let age = now.saturating_sub(k.created_at) as f64 / 86_400.0;
        println!(
            "  data key {:>4}  created at unix {}  ({age:.1} days ago)",
            k.id, k.created_at
        );
    }
}

/// Runs `info`.
pub fn run(args: InfoArgs) -> CliResult {
    let dirs = &args.dirs;
    dirs.require_existing()?;
    dirs.require_database_files()?;
    // Shared, as a read-only open: a writer cannot change the files while we read them.
    let _locks = dirs.lock_shared()?;
    println!("directory {}", dirs.dir.display());
    if dirs.value_dir() != dirs.dir {
        println!("value-log directory {}", dirs.value_dir().display());
    }
    let io_err =
        |e: std::io::Error| CliError::new(format!("cannot list {}: {e}", dirs.dir.display()));
    let check = ManifestCheck::run(&dirs.dir).map_err(io_err)?;
    check.print();
    let usage = DiskUsage::scan(&[&dirs.dir, dirs.value_dir()]).map_err(io_err)?;
    println!(
        "files: sst {}, vlog {}, mem (WALs) {}, other {}",
        usage.sst, usage.vlog, usage.mem, usage.other
    );
    let opened = dirs.open_read_only();
    if let Ok(db) = &opened {
        print_open(db, &usage, args.show_tables);
        if args.discard {
            print_discard(db);
        }
        if args.show_keys {
            show_keys(
                db,
                args.prefix.as_deref(),
                Encoding::from_hex_flag(args.hex),
            )?;
        }
        print_encryption(db, dirs);
        println!("caches (this open; `settdb bench read` shows them under load):");
        super::bench_read::print_caches(&settdb::CacheMetrics::default(), &db.cache_metrics());
        if args.stats {
            crate::stats_report::print_stats(&db.stats());
        }
    }
    let closed = opened.and_then(|db| db.close().map_err(|e| dirs.error(e)));
    if let Err(e) = &closed {
        println!("the database does not open: {e}");
    }
    if !check.is_consistent() {
        return Err(CliError::new(format!(
            "the MANIFEST does not match the directory: {}",
            check.problems().join("; ")
        )));
    }
    closed.map_err(|e| CliError::new(format!("cannot open the database: {e}")))
}

/// Every version of every key (under `prefix`), as the database's newest snapshot sees it.
fn show_keys(db: &Db, prefix: Option<&str>, encoding: Encoding) -> CliResult {
    let prefix = match prefix {
        Some(p) => encoding.decode(p, "prefix")?,
        None => Vec::new(),
    };
    let opts = IteratorOptions::default()
        .with_prefix(prefix)
        .with_all_versions(true)
        .with_prefetch_values(false);
    println!("keys (every version):");
    let shown = db
        .view(|txn| {
            let mut n = 0u64;
            for item in txn.iter(opts)? {
                let item = item?;
                let state = if item.meta() & settdb::value::meta::DELETE != 0 {
                    "deleted"
                } else if item.is_deleted_or_expired() {
                    "expired"
                } else {
                    "set"
                };
                let key = match encoding {
                    Encoding::Hex => encode_hex(item.key()),
                    Encoding::Text => {
                        let mut k = String::new();
                        escape_text(item.key(), &mut k);
                        k
                    }
                };
                println!(
                    "  {key}\tv{}\t{state}\t{} B",
                    item.version(),
                    item.value_size()
                );
                n += 1;
            }
            Ok(n)
        })
        .map_err(|e| CliError::new(format!("cannot list keys: {e}")))?;
    println!("{}", plural(shown, "version"));
    Ok(())
}

/// Each value-log file with its dead bytes (`--discard`).
fn print_discard(db: &Db) {
    let files = db.value_log_files();
    println!("value-log files (dead: bytes compaction dropped, what GC gives back):");
    println!(
        "  {:<12}  {:>10}  {:>10}  {:>6}",
        "file", "size", "dead", "ratio"
    );
    for f in &files {
        println!(
            "  {:<12}  {:>10}  {:>10}  {:>5.1}%{}",
            settdb::inspect::vlog_file_name(f.file_id),
            fmt_bytes(f.size_bytes),
            fmt_bytes(f.discard_bytes),
            100.0 * f.discard_ratio(),
            if f.active {
                "  (active: never collected)"
            } else {
                ""
            }
        );
    }
    let size: u64 = files.iter().map(|f| f.size_bytes).sum();
    let dead: u64 = files.iter().map(|f| f.discard_bytes).sum();
    println!(
        "  {}: {}, {} dead",
        plural(files.len() as u64, "file"),
        fmt_bytes(size),
        fmt_bytes(dead)
    );
}

/// What the open database reports.
fn print_open(db: &Db, usage: &DiskUsage, show_tables: bool) {
    let snapshot = db.levels();
    println!("levels (database opened read-only):");
    print_levels(&snapshot);
    let vlog_bytes = db.size().vlog_bytes;
    println!(
        "value log: {}, {} of valid records",
        plural(usage.vlog.files, "file"),
        fmt_bytes(vlog_bytes)
    );
    // Each file may end in its seal (written when it was rotated or closed): not data.
    let seals = usage.vlog.files * settdb::inspect::seal_batch_len();
    if usage.vlog.bytes > vlog_bytes + seals {
        println!(
            "  {} on disk past the valid records is ignored: the torn tail of a crash, or damage \
             (`settdb verify` tells which)",
            fmt_bytes(usage.vlog.bytes - vlog_bytes)
        );
    }
    println!(
        "keys (estimate): {} (distinct keys per table, summed: a key in several tables counts \
         once in each; keys only in WALs are not counted)",
        fmt_count(all_totals(&snapshot).keys)
    );
    println!("newest version: {}", db.max_version());
    if show_tables {
        println!("tables:");
        print_tables(&snapshot);
    }
}

//! `settdb`: the command-line tool of SettDB (Badger's `badger` tool in our idiom).
//!
//! This file only parses and dispatches; each subcommand lives in its own file under `cmd/`.
//! Exit codes: 0 success; 1 failure, printed as one line `settdb: <message>` on stderr (a
//! missing or locked directory, a key not found, corruption found, ...); 2 bad usage (clap's
//! message); 3 a consistency check found wrong data (`bank test`, `bank disect`). Progress goes
//! to stderr, results to stdout.

mod bank_accounts;
mod bank_replay;
mod bench_keys;
mod cli_error;
mod cmd;
mod compression_arg;
mod db_dir;
mod disk_usage;
mod encoding;
mod key_sample;
mod levels_report;
mod logging;
mod manifest_check;
mod progress;
mod stats_report;
mod temp_dir;
mod units;
mod writeback;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cmd::{
    backup, bank, bench, delete, drop, dump, flatten, gc, get, info, repair, restore, rotate, scan,
    set, stream, verify,
};

/// SettDB command-line tool.
#[derive(Debug, Parser)]
#[command(
    name = "settdb",
    version,
    about = "SettDB: an embedded key-value store (Badger's design in Rust)",
    after_help = "Start with: settdb bench write -m 1"
)]
struct Cli {
    /// Log the engine's events to stderr: -v info (open, close, flushes, compactions, GC),
    /// -vv debug (recovery details). `RUST_LOG` overrides the filter. Before the subcommand
    /// (`settdb -v info ...`): after it, `-v` is `bench write`'s value size (Badger's flag).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose_short: u8,
    /// The same as -v, accepted after any subcommand too (`settdb info --verbose ...`);
    /// repeat for debug.
    #[arg(long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks: `bench write`, then `bench read` on the same --dir.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Badger's bank test: concurrent transfers while a checker verifies the total; `bank
    /// disect` bisects a failed run's history.
    #[command(subcommand)]
    Bank(bank::BankCommand),
    /// Show levels, tables, value log and the MANIFEST against the directory.
    Info(info::InfoArgs),
    /// Print the value of a key (exit code 1 if it has none).
    Get(get::GetArgs),
    /// Set a key to a value.
    Set(set::SetArgs),
    /// Print keys and values in key order (one snapshot): --prefix, --reverse, --limit.
    Scan(scan::ScanArgs),
    /// Delete a key.
    Delete(delete::DeleteArgs),
    /// Remove every key (--all) or every key under a prefix (--prefix), no tombstones.
    Drop(drop::DropArgs),
    /// Compact every level into the last one.
    Flatten(flatten::FlattenArgs),
    /// Value-log GC: rewrite files at least --ratio dead and give their space back.
    Gc(gc::GcArgs),
    /// Check every checksum of every table, value-log file and WAL.
    Verify(verify::VerifyArgs),
    /// Write a backup in Badger's format (`badger restore` reads it too); --since for an
    /// incremental one.
    Backup(backup::BackupArgs),
    /// Load a backup (from `settdb backup` or `badger backup`) into a new database.
    Restore(restore::RestoreArgs),
    /// Print a backup file's frames and entries.
    Dump(dump::DumpArgs),
    /// Copy a database into a new one (parallel read, bulk load; new compression or key).
    Stream(stream::StreamArgs),
    /// Rebuild a damaged database from what can still be read; old files go to lost/N/.
    Repair(repair::RepairArgs),
    /// Change an encrypted database's master key (re-seals KEYREGISTRY only).
    Rotate(rotate::RotateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::install(cli.verbose_short.saturating_add(cli.verbose));
    let outcome = match cli.command {
        Command::Bench(c) => bench::run(c),
        Command::Bank(c) => bank::run(c),
        Command::Info(a) => info::run(a),
        Command::Get(a) => get::run(a),
        Command::Set(a) => set::run(a),
        Command::Scan(a) => scan::run(a),
        Command::Delete(a) => delete::run(a),
        Command::Drop(a) => drop::run(a),
        Command::Flatten(a) => flatten::run(a),
        Command::Gc(a) => gc::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Backup(a) => backup::run(a),
        Command::Restore(a) => restore::run(a),
        Command::Dump(a) => dump::run(a),
        Command::Stream(a) => stream::run(a),
        Command::Repair(a) => repair::run(a),
        Command::Rotate(a) => rotate::run(a),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("settdb: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}

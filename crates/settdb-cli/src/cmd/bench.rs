//! `settdb bench`: the benchmark group (Badger's `benchmark`); each benchmark is its own file.

use crate::cli_error::CliResult;

use super::{bench_read, bench_write};

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Write random (or sorted) keys in batches from several threads; print entries/s, MB/s,
    /// peak memory and bytes on disk per file kind.
    Write(bench_write::BenchWriteArgs),
    /// Random point reads of keys `bench write` wrote, from several threads for a duration;
    /// print reads/s and latency percentiles.
    Read(bench_read::BenchReadArgs),
}

/// Runs one benchmark.
pub fn run(cmd: BenchCommand) -> CliResult {
    match cmd {
        BenchCommand::Write(a) => bench_write::run(a),
        BenchCommand::Read(a) => bench_read::run(a),
    }
}

//! `settdb`: the command-line tool of SettDB.
//!
//! The subcommands (bench, bank, info, get/set/scan, flatten, verify) arrive with the engine;
//! today the binary only identifies itself.

use clap::Parser;

/// SettDB command-line tool.
#[derive(Debug, Parser)]
#[command(
    name = "settdb",
    version,
    about = "SettDB: an embedded key-value store (Badger's design in Rust)"
)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "settdb {}: the engine and its subcommands are not built yet; see README.md",
        env!("CARGO_PKG_VERSION")
    );
}

//! `settdb bank`: Badger's bank test, a consistency test of transactions; `test` runs it,
//! `disect` bisects the history it leaves after a failure. Each is its own file.

use crate::cli_error::CliResult;

use super::{bank_disect, bank_test};

/// The bank test's commands.
#[derive(Debug, clap::Subcommand)]
pub enum BankCommand {
    /// Move money between accounts in concurrent transactions while a checker sums them all;
    /// exit 3 at the first wrong total.
    Test(bank_test::BankTestArgs),
    /// Find the first read timestamp whose total is wrong in a `bank test` directory, and
    /// the accounts its transaction changed; exit 3 if there is one.
    Disect(bank_disect::BankDisectArgs),
}

/// Runs one bank command.
pub fn run(cmd: BankCommand) -> CliResult {
    match cmd {
        BankCommand::Test(a) => bank_test::run(a),
        BankCommand::Disect(a) => bank_disect::run(a),
    }
}

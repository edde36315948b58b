//! `settdb bank disect`: after a failed `bank test`, finds the first read timestamp whose
//! snapshot does not add up (Badger's `bank disect`).
//!
//! Opens the directory read-only in managed mode (`Db::open_managed`), so any past snapshot
//! can be read with `new_transaction_at(ts)`; `bank test` kept every version for this. One
//! scan of every version gives the accounts (their number sets the expected total), the
//! newest version, and the first version at which every account exists. If the newest
//! snapshot adds up, every total is taken to be correct; otherwise a binary search between
//! the first complete snapshot (correct) and the newest (wrong) finds a timestamp `ts` whose
//! total is wrong while `ts - 1`'s is right, and the accounts that differ between the two are
//! printed: the transaction committed at `ts` broke the invariant. A wrong total exits 3.
//!
//! The search assumes that once wrong, totals stay wrong (a broken transfer is never undone
//! exactly); with a transient error in between it still finds a correct→wrong step, maybe
//! not the first.

use std::collections::BTreeMap;

use settdb::{Db, IteratorOptions};

use crate::bank_accounts::{balances_by_scan, bank_options, BankAccounts, Total, KEY_PREFIX};
use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::encoding::display_key;
use crate::units::fmt_count;

/// Flags of `bank disect`.
#[derive(Debug, clap::Args)]
pub struct BankDisectArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
}

/// What one scan of every version found.
#[derive(Debug)]
struct History {
    accounts: u64,
    /// The oldest timestamp at which every account has a version.
    complete_ts: u64,
    max_ts: u64,
}

/// The balances of one snapshot.
type Balances = BTreeMap<Vec<u8>, Option<u64>>;

/// What the search found.
enum Finding {
    AllCorrect {
        max_ts: u64,
    },
    FirstWrong {
        ts: u64,
        before: Balances,
        after: Balances,
    },
}

/// Runs `bank disect`.
pub fn run(args: BankDisectArgs) -> CliResult {
    let dirs = &args.dirs;
    dirs.require_database()?;
    let opts = bank_options(dirs.options()?).with_read_only(true);
    let db = Db::open_managed(opts).map_err(|e| dirs.error(e))?;
    let outcome = disect(&db);
    let closed = db.close();
    let (bank, finding) = outcome?;
    closed.map_err(|e| dirs.error(e))?;
    report(bank, finding)
}

fn disect(db: &Db) -> CliResult<(BankAccounts, Finding)> {
    let dir = &db.options().dir;
    let err = |e| CliError::from_db(e, dir);
    let history = history(db).map_err(err)?;
    let n = u32::try_from(history.accounts)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            CliError::new(format!(
                "{} holds {} accounts: not a bank test database",
                dir.display(),
                fmt_count(history.accounts)
            ))
        })?;
    let bank = BankAccounts { n };
    println!(
        "bank disect: {} accounts (expected total {}), versions up to {}, all accounts exist \
         from read_ts {}",
        fmt_count(history.accounts),
        fmt_count(bank.expected_total()),
        history.max_ts,
        history.complete_ts
    );
    let (mut lo, mut hi) = (history.complete_ts, history.max_ts);
    if probe(db, bank, hi).map_err(err)?.0 {
        return Ok((bank, Finding::AllCorrect { max_ts: hi }));
    }
    if !probe(db, bank, lo).map_err(err)?.0 {
        hi = lo;
    } else {
        // Invariant: lo's total is correct, hi's is wrong.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if probe(db, bank, mid).map_err(err)?.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    let before = balances_at(db, hi.saturating_sub(1)).map_err(err)?;
    let after = balances_at(db, hi).map_err(err)?;
    Ok((
        bank,
        Finding::FirstWrong {
            ts: hi,
            before,
            after,
        },
    ))
}

/// One pass over every version of every account.
fn history(db: &Db) -> settdb::Result<History> {
    let txn = db.new_transaction_at(u64::MAX, false)?;
    let opts = IteratorOptions::default()
        .with_prefix(KEY_PREFIX.to_vec())
        .with_all_versions(true)
        .with_prefetch_values(false);
    let mut it = txn.iter(opts)?;
    let mut h = History {
        accounts: 0,
        complete_ts: 0,
        max_ts: 0,
    };
    // Versions of a key come newest first: the last one seen is the key's oldest.
    let mut key: Vec<u8> = Vec::new();
    let mut oldest = 0;
    it.rewind()?;
    while it.valid() {
        let item = it.item();
        if item.key() != key.as_slice() {
            h.complete_ts = h.complete_ts.max(oldest);
            h.accounts += 1;
            key = item.key().to_vec();
        }
        oldest = item.version();
        h.max_ts = h.max_ts.max(item.version());
        it.next()?;
    }
    h.complete_ts = h.complete_ts.max(oldest);
    Ok(h)
}

/// Every balance at `read_ts`.
fn balances_at(db: &Db, read_ts: u64) -> settdb::Result<Balances> {
    let txn = db.new_transaction_at(read_ts, false)?;
    balances_by_scan(&txn)
}

/// The total of `balances`, with a problem for a value that is not a balance or a wrong
/// number of accounts.
fn total_of(bank: BankAccounts, balances: &Balances, read_ts: u64) -> Total {
    let mut total = Total {
        sum: 0,
        read_ts,
        problem: None,
    };
    for (key, balance) in balances {
        match balance {
            Some(b) => total.sum = total.sum.saturating_add(*b),
            None => {
                total.problem.get_or_insert_with(|| {
                    format!("account {} does not hold a balance", display_key(key, 40))
                });
            }
        }
    }
    if balances.len() as u64 != u64::from(bank.n) {
        total
            .problem
            .get_or_insert_with(|| format!("{} accounts", balances.len()));
    }
    total
}

/// Whether the total at `read_ts` is correct, logged on stderr.
fn probe(db: &Db, bank: BankAccounts, read_ts: u64) -> settdb::Result<(bool, Total)> {
    let total = total_of(bank, &balances_at(db, read_ts)?, read_ts);
    let ok = bank.is_correct(&total);
    eprintln!(
        "  read_ts {read_ts}: total {}{}",
        fmt_count(total.sum),
        if ok { "" } else { " WRONG" }
    );
    Ok((ok, total))
}

fn report(bank: BankAccounts, finding: Finding) -> CliResult {
    let (ts, before, after) = match finding {
        Finding::AllCorrect { max_ts } => {
            println!("all totals correct up to {max_ts}");
            return Ok(());
        }
        Finding::FirstWrong { ts, before, after } => (ts, before, after),
    };
    let (t_before, t_after) = (
        total_of(bank, &before, ts.saturating_sub(1)),
        total_of(bank, &after, ts),
    );
    println!(
        "first wrong total at read_ts {ts}: {} instead of {}{} (at read_ts {}: {})",
        fmt_count(t_after.sum),
        fmt_count(bank.expected_total()),
        t_after
            .problem
            .as_ref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default(),
        t_before.read_ts,
        fmt_count(t_before.sum),
    );
    println!(
        "accounts that differ between read_ts {} and {ts}:",
        t_before.read_ts
    );
    let show = |b: Option<&Option<u64>>| match b {
        None => "(missing)".to_string(),
        Some(None) => "(not a balance)".to_string(),
        Some(Some(v)) => v.to_string(),
    };
    let keys: std::collections::BTreeSet<&Vec<u8>> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (b, a) = (before.get(key), after.get(key));
        if b != a {
            println!("  {}  {} -> {}", display_key(key, 60), show(b), show(a));
        }
    }
    Err(CliError::check_failed(format!(
        "the bank total is wrong at read_ts {ts}"
    )))
}

//! [`BankAccounts`]: the accounts of the bank test (Badger's `badger bank`), shared by
//! `bank test` and `bank disect`: keys `account:<i>` (decimal `i`, no padding, as Badger),
//! balances as ASCII decimal, each starting at [`INITIAL_BALANCE`]. The invariant the test
//! checks: every snapshot sums to `accounts × INITIAL_BALANCE`.

use std::collections::BTreeMap;

use settdb::{IteratorOptions, Options, Txn};

use crate::encoding::display_key;

/// Prefix of every account key.
pub const KEY_PREFIX: &[u8] = b"account:";
/// Balance of each account after set-up.
pub const INITIAL_BALANCE: u64 = 100;
/// Money one transfer moves.
pub const TRANSFER_AMOUNT: u64 = 5;

/// How one snapshot adds up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Total {
    /// Sum of the balances that parsed (saturating).
    pub sum: u64,
    /// The read timestamp of the snapshot.
    pub read_ts: u64,
    /// What else was wrong: a missing account, a value that is not a balance.
    pub problem: Option<String>,
}

/// `n` accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankAccounts {
    /// Number of accounts, `account:0` to `account:<n-1>`.
    pub n: u32,
}

impl BankAccounts {
    /// The key of account `i`.
    pub fn key(i: u32) -> Vec<u8> {
        let mut k = KEY_PREFIX.to_vec();
        k.extend_from_slice(i.to_string().as_bytes());
        k
    }

    /// What every snapshot must sum to.
    pub fn expected_total(&self) -> u64 {
        u64::from(self.n) * INITIAL_BALANCE
    }

    /// True if `total` is the invariant's.
    pub fn is_correct(&self, total: &Total) -> bool {
        total.problem.is_none() && total.sum == self.expected_total()
    }

    /// Sums every account by a point read each (`txn.get`).
    pub fn total_by_get(&self, txn: &mut Txn) -> settdb::Result<Total> {
        let mut total = Total {
            sum: 0,
            read_ts: txn.read_ts(),
            problem: None,
        };
        for i in 0..self.n {
            match read_balance(txn, &BankAccounts::key(i), false)? {
                Ok(b) => total.sum = total.sum.saturating_add(b),
                Err(why) => {
                    total.problem.get_or_insert(why);
                }
            }
        }
        Ok(total)
    }

    /// Sums every account by one prefix scan; fewer or more accounts than `n` is a problem.
    pub fn total_by_scan(&self, txn: &Txn) -> settdb::Result<Total> {
        let mut total = Total {
            sum: 0,
            read_ts: txn.read_ts(),
            problem: None,
        };
        let mut seen = 0u64;
        let mut it = txn.iter(IteratorOptions::default().with_prefix(KEY_PREFIX.to_vec()))?;
        it.rewind()?;
        while it.valid() {
            let item = it.item();
            match item.value_with(parse_balance)? {
                Some(b) => total.sum = total.sum.saturating_add(b),
                None => {
                    total
                        .problem
                        .get_or_insert_with(|| not_a_balance(item.key()));
                }
            }
            seen += 1;
            it.next()?;
        }
        if seen != u64::from(self.n) {
            total.problem.get_or_insert_with(|| {
                format!("the scan found {seen} accounts instead of {}", self.n)
            });
        }
        Ok(total)
    }
}

/// Every account's balance a snapshot sees, by key (`None`: the value is not a balance).
pub fn balances_by_scan(txn: &Txn) -> settdb::Result<BTreeMap<Vec<u8>, Option<u64>>> {
    let mut out = BTreeMap::new();
    let mut it = txn.iter(IteratorOptions::default().with_prefix(KEY_PREFIX.to_vec()))?;
    it.rewind()?;
    while it.valid() {
        let item = it.item();
        out.insert(item.key().to_vec(), item.value_with(parse_balance)?);
        it.next()?;
    }
    Ok(out)
}

/// Reads the balance of `key`, by `txn.get` or (`by_iterator`) by a fresh key-only iterator
/// and a seek, as Badger's test does to exercise both read paths. `Ok(Err(why))` when the
/// account is missing or its value is not a balance: the data is wrong, not the read.
pub fn read_balance(
    txn: &mut Txn,
    key: &[u8],
    by_iterator: bool,
) -> settdb::Result<Result<u64, String>> {
    let parsed = if by_iterator {
        let mut it = txn.iter(IteratorOptions::default().with_prefetch_values(false))?;
        it.seek(key)?;
        if !it.valid() || it.item().key() != key {
            return Ok(Err(missing(key)));
        }
        it.item().value_with(parse_balance)?
    } else {
        match txn.get(key)? {
            Some(item) => item.value_with(parse_balance)?,
            None => return Ok(Err(missing(key))),
        }
    };
    Ok(parsed.ok_or_else(|| not_a_balance(key)))
}

/// Options of a bank database: every version kept (so `bank disect` can read any past
/// snapshot), and, as Badger's test, small memtables and tables and every value in the value
/// log, so flushes, compactions and value-log reads happen under the load.
pub fn bank_options(base: Options) -> Options {
    base.with_num_versions_to_keep(u32::MAX)
        .with_mem_table_size(1 << 20)
        .with_base_table_size(256 << 10)
        .with_base_level_size(1 << 20)
        .with_num_level_zero_tables(2)
        .with_num_level_zero_tables_stall(8)
        .with_num_memtables(2)
        .with_value_threshold(1)
        .with_value_log_file_size(16 << 20)
}

/// The balance `value` spells, if it is one.
fn parse_balance(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn missing(key: &[u8]) -> String {
    format!("account {} is missing", display_key(key, 40))
}

fn not_a_balance(key: &[u8]) -> String {
    format!("account {} does not hold a balance", display_key(key, 40))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_balances_and_totals_by_both_paths() {
        // Proves keys are Badger's, both totals agree on a set-up bank, and a missing account
        // and a value that is not a number are reported as problems, not errors.
        assert_eq!(BankAccounts::key(17), b"account:17");
        assert_eq!(parse_balance(b"95"), Some(95));
        assert_eq!(parse_balance(b"-5"), None);
        let db = settdb::Db::open(Options::in_memory()).unwrap();
        let bank = BankAccounts { n: 3 };
        for i in 0..3 {
            db.set(BankAccounts::key(i), "100").unwrap();
        }
        let totals = db
            .view(|txn| Ok((bank.total_by_get(txn)?, bank.total_by_scan(txn)?)))
            .unwrap();
        assert!(bank.is_correct(&totals.0) && bank.is_correct(&totals.1));
        assert_eq!(totals.0.sum, 300);
        db.set(BankAccounts::key(1), "lots").unwrap();
        db.delete(BankAccounts::key(2)).unwrap();
        let (by_get, by_scan) = db
            .view(|txn| Ok((bank.total_by_get(txn)?, bank.total_by_scan(txn)?)))
            .unwrap();
        assert_eq!(by_get.sum, 100);
        assert!(by_get.problem.unwrap().contains("account:1 does not hold"));
        assert!(by_scan.problem.unwrap().contains("account:1 does not hold"));
        let mut txn = db.new_transaction(false).unwrap();
        let got = read_balance(&mut txn, &BankAccounts::key(2), true).unwrap();
        assert_eq!(got, Err("account account:2 is missing".to_string()));
        assert_eq!(read_balance(&mut txn, b"account:0", true).unwrap(), Ok(100));
        db.close().unwrap();
    }
}

//! [`ReplayCheck`]: `bank test --check-subscriber`. A subscription to every account key,
//! taken before the set-up, is replayed on its own thread into a model of the balances; the
//! checks are those a faithful change feed must pass:
//! - updates come in commit order (a batch starts above the version the one before ended);
//! - every update is a balance (no delete, no other value);
//! - once every account was seen, the replayed total is the bank's after each batch (a batch
//!   holds whole transactions, so a transfer never shows half done);
//! - at the end, the model equals the database's last snapshot, account by account.
//!
//! The first problem stops the replay; [`ReplayCheck::finish`] reports it.

use std::collections::{BTreeMap, HashMap};
use std::thread::JoinHandle;

use settdb::{Db, Match, SubscribeOptions, Update};

use crate::bank_accounts::{BankAccounts, KEY_PREFIX};
use crate::encoding::display_key;

/// Buffer limits of the replay's subscription: generous, so only a replay that fell far
/// behind lags (which fails the run: the feed would have gaps).
const MAX_BUFFERED_BATCHES: usize = 1 << 20;
const MAX_BUFFERED_BYTES: u64 = 1 << 30;

/// What the replay saw (printed in the summary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Updates replayed.
    pub updates: u64,
    /// Batches replayed.
    pub batches: u64,
    /// Batches after which the replayed total was checked (every account seen).
    pub totals_checked: u64,
}

/// The replay's model of the accounts.
#[derive(Debug)]
struct Replay {
    bank: BankAccounts,
    balances: HashMap<Vec<u8>, u64>,
    sum: u64,
    last_version: u64,
    summary: ReplaySummary,
}

impl Replay {
    fn new(bank: BankAccounts) -> Self {
        Replay {
            bank,
            balances: HashMap::new(),
            sum: 0,
            last_version: 0,
            summary: ReplaySummary::default(),
        }
    }

    /// Applies one batch; `Err(why)` at the first update that breaks a check.
    fn apply(&mut self, batch: &[Update]) -> Result<(), String> {
        let first = batch.first().map_or(0, |u| u.version);
        if first <= self.last_version {
            return Err(format!(
                "a batch starts at version {first}, not above the previous batch's {}",
                self.last_version
            ));
        }
        for u in batch {
            self.apply_one(u)?;
        }
        self.summary.batches += 1;
        if self.balances.len() as u64 == u64::from(self.bank.n) {
            if self.sum != self.bank.expected_total() {
                return Err(format!(
                    "the replayed total is {} instead of {} after version {}",
                    self.sum,
                    self.bank.expected_total(),
                    self.last_version
                ));
            }
            self.summary.totals_checked += 1;
        }
        Ok(())
    }

    fn apply_one(&mut self, u: &Update) -> Result<(), String> {
        let key = display_key(&u.key, 40);
        if u.version < self.last_version {
            return Err(format!(
                "{key} at version {} after version {}",
                u.version, self.last_version
            ));
        }
        self.last_version = u.version;
        let balance = std::str::from_utf8(&u.value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|_| !u.is_delete)
            .ok_or_else(|| format!("{key} at version {} is not a balance", u.version))?;
        let old = self.balances.insert(u.key.to_vec(), balance).unwrap_or(0);
        self.sum = self.sum - old + balance;
        self.summary.updates += 1;
        Ok(())
    }

    /// The model against the database's snapshot `db`.
    fn compare(&self, db: &BTreeMap<Vec<u8>, Option<u64>>) -> Result<(), String> {
        if self.sum != self.bank.expected_total() {
            return Err(format!(
                "the replayed total is {} instead of {}",
                self.sum,
                self.bank.expected_total()
            ));
        }
        for (key, balance) in db {
            let replayed = self.balances.get(key).copied();
            if replayed != *balance {
                return Err(format!(
                    "{} is {} in the database but {} in the replay",
                    display_key(key, 40),
                    balance.map_or("not a balance".into(), |b| b.to_string()),
                    replayed.map_or("missing".into(), |b| b.to_string()),
                ));
            }
        }
        if self.balances.len() != db.len() {
            return Err(format!(
                "the replay holds {} accounts, the database {}",
                self.balances.len(),
                db.len()
            ));
        }
        Ok(())
    }
}

/// The replay thread (module doc).
#[derive(Debug)]
pub struct ReplayCheck {
    thread: JoinHandle<Result<Replay, String>>,
}

impl ReplayCheck {
    /// Subscribes to every account key of `db` and starts replaying. Call before the
    /// accounts are set up.
    pub fn start(db: &Db, bank: BankAccounts) -> settdb::Result<ReplayCheck> {
        let limits = SubscribeOptions::default()
            .with_max_buffered_batches(MAX_BUFFERED_BATCHES)
            .with_max_buffered_bytes(MAX_BUFFERED_BYTES);
        let sub = db.subscribe_with([Match::prefix(KEY_PREFIX)], limits)?;
        let thread = std::thread::Builder::new()
            .name("bank-replay".into())
            .spawn(move || {
                let mut replay = Replay::new(bank);
                for item in sub {
                    let batch = item.map_err(|e| e.to_string())?;
                    replay.apply(&batch)?;
                }
                Ok(replay)
            })
            .map_err(|e| settdb::Error::io("spawn thread", "bank-replay", e))?;
        Ok(ReplayCheck { thread })
    }

    /// After the database closed (which ends the subscription once everything applied was
    /// delivered): the replay's outcome, compared with `last` (the database's last snapshot,
    /// by account) if given.
    pub fn finish(
        self,
        last: Option<&BTreeMap<Vec<u8>, Option<u64>>>,
    ) -> Result<ReplaySummary, String> {
        let replay = self
            .thread
            .join()
            .map_err(|_| "the replay thread panicked".to_string())??;
        if let Some(db) = last {
            replay.compare(db)?;
        }
        Ok(replay.summary)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn update(i: u32, balance: u64, version: u64) -> Update {
        Update {
            key: Bytes::from(BankAccounts::key(i)),
            value: Bytes::from(balance.to_string()),
            version,
            expires_at: 0,
            user_meta: 0,
            is_delete: false,
        }
    }

    #[test]
    fn replay_checks_order_totals_and_the_final_snapshot() {
        // Proves each check of the replay: a correct feed passes and matches the snapshot; a
        // half transfer, a batch out of order, a delete and a differing snapshot each fail.
        let bank = BankAccounts { n: 2 };
        let mut r = Replay::new(bank);
        r.apply(&[update(0, 100, 1), update(1, 100, 1)]).unwrap();
        r.apply(&[update(0, 95, 2), update(1, 105, 2)]).unwrap();
        assert_eq!(r.summary.totals_checked, 2);
        let snap: BTreeMap<Vec<u8>, Option<u64>> = [
            (BankAccounts::key(0), Some(95)),
            (BankAccounts::key(1), Some(105)),
        ]
        .into();
        r.compare(&snap).unwrap();
        let mut other = snap.clone();
        other.insert(BankAccounts::key(1), Some(100));
        assert!(r.compare(&other).unwrap_err().contains("account:1 is 100"));
        assert!(r
            .apply(&[update(0, 90, 2)])
            .unwrap_err()
            .contains("not above"));
        let half = r.apply(&[update(0, 90, 3)]).unwrap_err();
        assert!(half.contains("total is 195 instead of 200"), "{half}");
        let mut del = update(1, 0, 9);
        del.is_delete = true;
        del.value = Bytes::new();
        assert!(Replay::new(bank)
            .apply(&[del])
            .unwrap_err()
            .contains("not a balance"));
    }
}

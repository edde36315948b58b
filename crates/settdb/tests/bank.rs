//! Badger's bank test: concurrent transfers between accounts under `update`, while a checker
//! sums every account in `view` transactions, continuously; the total must never change.
//! Runs ~20 s (`SETTDB_BANK_SECS` to change), on real files with small sizes so flushes and
//! compactions happen under the load.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{seed, small_options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::FsStorage;
use settdb::{Db, Error, IteratorOptions, Txn};

const ACCOUNTS: u32 = 1000;
const INITIAL: u64 = 100;

fn account(i: u32) -> String {
    format!("account:{i:06}")
}

/// Reads a balance, randomly by get or by a fresh iterator seek (as Badger's test does).
fn balance(txn: &mut Txn, i: u32, by_iterator: bool) -> settdb::Result<u64> {
    let key = account(i);
    let bytes = if by_iterator {
        let mut it = txn.iter(IteratorOptions::default().with_prefetch_values(false))?;
        it.seek(key.as_bytes())?;
        if !it.valid() || it.item().key() != key.as_bytes() {
            return Err(Error::InvalidRequest("account missing"));
        }
        it.item().value()?
    } else {
        txn.get(key.as_bytes())?
            .ok_or(Error::InvalidRequest("account missing"))?
            .value()?
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::InvalidRequest("balance not UTF-8"))?;
    text.parse()
        .map_err(|_| Error::InvalidRequest("balance not a number"))
}

fn transfer(db: &Db, rng: &mut StdRng) -> settdb::Result<bool> {
    let from = rng.random_range(0..ACCOUNTS);
    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
    let (via_a, via_b) = (rng.random_bool(0.5), rng.random_bool(0.5));
    db.update(|txn| {
        let (a, b) = (balance(txn, from, via_a)?, balance(txn, to, via_b)?);
        if a < 5 {
            return Ok(false);
        }
        txn.set(account(from), (a - 5).to_string())?;
        txn.set(account(to), (b + 5).to_string())?;
        Ok(true)
    })
}

fn total(db: &Db, by_scan: bool) -> settdb::Result<u64> {
    db.view(|txn| {
        if by_scan {
            let mut sum = 0;
            for item in txn.iter(IteratorOptions::default().with_prefix(b"account:".to_vec()))? {
                let v = item?.value()?;
                sum += String::from_utf8_lossy(&v)
                    .parse::<u64>()
                    .unwrap_or(u64::MAX / 4);
            }
            Ok(sum)
        } else {
            (0..ACCOUNTS).map(|i| balance(txn, i, false)).sum()
        }
    })
}

#[test]
fn bank_total_never_changes() {
    // Proves snapshot isolation and serializable commits under concurrency: the sum over all
    // accounts read in one view transaction is always the initial total.
    bank(&[], 20);
}

#[test]
fn bank_total_never_changes_encrypted() {
    // Proves the same on an encrypted database (issue 10).
    bank(&[0x61; 16], 8);
}

fn bank(key: &[u8], default_secs: u64) {
    let secs: u64 = std::env::var("SETTDB_BANK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_secs);
    let base_seed = seed(77);
    let dir = tempfile::tempdir().unwrap();
    let o = small_options(dir.path(), Arc::new(FsStorage::new())).with_encryption_key(key.to_vec());
    let db = Db::open(o).unwrap();
    let mut wb = db.new_write_batch().unwrap();
    for i in 0..ACCOUNTS {
        wb.set(account(i), INITIAL.to_string()).unwrap();
    }
    wb.flush().unwrap();
    let expected = u64::from(ACCOUNTS) * INITIAL;
    let stop = Arc::new(AtomicBool::new(false));
    let (done, conflicts, checks) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (db, stop, done, conflicts) =
                (db.clone(), stop.clone(), done.clone(), conflicts.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(base_seed + w);
                while !stop.load(Ordering::Relaxed) {
                    match transfer(&db, &mut rng) {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(Error::Conflict) => conflicts.fetch_add(1, Ordering::Relaxed),
                        Err(e) => panic!("transfer failed: {e}"),
                    };
                }
            })
        })
        .collect();
    let checker = {
        let (db, stop, checks) = (db.clone(), stop.clone(), checks.clone());
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(base_seed + 100);
            while !stop.load(Ordering::Relaxed) {
                let sum = total(&db, rng.random_bool(0.5)).unwrap();
                if sum != expected {
                    stop.store(true, Ordering::Relaxed);
                    panic!(
                        "bad total {sum}, expected {expected} (check {})",
                        checks.load(Ordering::Relaxed)
                    );
                }
                checks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    checker.join().unwrap();
    assert_eq!(total(&db, true).unwrap(), expected);
    let (d, c, k) = (
        done.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed),
        checks.load(Ordering::Relaxed),
    );
    eprintln!("bank: {d} transfers, {c} conflicts, {k} checks in {secs} s");
    assert!(
        d > 100 && k > 10,
        "too little work to mean anything: {d} transfers, {k} checks"
    );
    db.close().unwrap();
}

//! The README's example, compiled by `cargo test` so it cannot drift from the API.
//! Run it with `cargo run -p settdb --example quickstart`.

use std::time::Duration;

use settdb::{Db, Entry, Options};

fn main() -> settdb::Result<()> {
    let dir = std::env::temp_dir().join("settdb-quickstart");
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(Options::new(&dir))?;

    // Transactions: serializable, with snapshot reads. Retry on Error::Conflict.
    db.update(|txn| {
        txn.set("greeting", "hello")?;
        txn.set_entry(Entry::new("session", "abc").with_ttl(Duration::from_secs(60)))
    })?;
    // Reads give Ok(None) for a key that is missing, deleted or expired.
    let greeting = db.view(|txn| txn.get("greeting")?.map(|item| item.value()).transpose())?;
    assert_eq!(greeting.as_deref(), Some(&b"hello"[..]));
    assert!(db.get("missing")?.is_none());

    // Many writes at high throughput (not atomic as a whole).
    let mut batch = db.new_write_batch()?;
    for i in 0..10_000 {
        batch.set(format!("key{i:05}"), vec![0u8; 100])?;
    }
    batch.flush()?;

    // Ranges and prefixes are double-ended iterators: here the three largest keys under
    // "key", walking down from the end of the prefix.
    let last_three: Vec<Vec<u8>> = db.view(|txn| {
        txn.prefix("key")?
            .rev()
            .take(3)
            .map(|item| Ok(item?.key().to_vec()))
            .collect()
    })?;
    assert_eq!(last_three, [b"key09999", b"key09998", b"key09997"]);
    let in_range = db.view(|txn| Ok(txn.range("key00100".."key00200")?.count()))?;
    assert_eq!(in_range, 100);
    println!(
        "ok: 10000 keys, the largest: {}",
        String::from_utf8_lossy(&last_three[0])
    );
    db.close()
}

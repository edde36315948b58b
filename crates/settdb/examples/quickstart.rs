//! The README's example, compiled by `cargo test` so it cannot drift from the API.
//! Run it with `cargo run -p settdb --example quickstart`.

use std::time::Duration;

use settdb::{Db, Entry, IteratorOptions, Options};

fn main() -> settdb::Result<()> {
    let dir = std::env::temp_dir().join("settdb-quickstart");
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(Options::new(&dir))?;

    // Transactions: serializable, with snapshot reads. Retry on Error::Conflict.
    db.update(|txn| {
        txn.set("greeting", "hello")?;
        txn.set_entry(Entry::new("session", "abc").with_ttl(Duration::from_secs(60)))
    })?;
    let greeting = db.view(|txn| txn.get("greeting")?.map(|item| item.value()).transpose())?;
    assert_eq!(greeting.as_deref(), Some(&b"hello"[..]));
    assert!(db.view(|txn| txn.get("missing"))?.is_none());

    // Many writes at high throughput.
    let mut batch = db.new_write_batch()?;
    for i in 0..10_000 {
        batch.set(format!("key{i:05}"), vec![0u8; 100])?;
    }
    batch.flush()?;

    // Iteration, here over a prefix in reverse.
    let last_three: Vec<Vec<u8>> = db.view(|txn| {
        let opts = IteratorOptions::default()
            .with_prefix(b"key".to_vec())
            .with_reverse(true);
        txn.iter(opts)?
            .take(3)
            .map(|item| Ok(item?.key().to_vec()))
            .collect()
    })?;
    assert_eq!(last_three[0], b"key09999");
    println!(
        "ok: {} keys, newest first: {:?}",
        10_000,
        String::from_utf8_lossy(&last_three[0])
    );
    db.close()
}

//! Key namespaces (`Options::namespace_offset`, `Db::ban_namespace`): writes and point reads
//! of a banned namespace fail with `BannedKey`, iterators skip it in every direction and mode,
//! bans survive reopen (values in the value log too) and `drop_all`; Badger's
//! TestBannedPrefixes, TestIterateWithBanned and TestBannedAtZeroOffset translated.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::small_options;
use settdb::io::SimStorage;
use settdb::{Db, Error, IteratorOptions, Options};

fn opts(storage: &Arc<SimStorage>, offset: i64) -> Options {
    small_options(Path::new("/db"), storage.clone()).with_namespace_offset(offset)
}

/// Badger's keys: three insignificant bytes, the namespace, a suffix.
fn key(ns: u64, suffix: &str) -> Vec<u8> {
    [&[0u8; 3][..], &ns.to_be_bytes(), suffix.as_bytes()].concat()
}

fn ns_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[3..11].try_into().unwrap())
}

#[test]
fn badger_banned_prefixes() {
    // Proves Badger's TestBannedPrefixes: with every value in the value log and a small value
    // log, reads and writes of banned namespaces fail with BannedKey and others succeed, after
    // each ban and after reopen.
    let storage = Arc::new(SimStorage::new());
    let o = opts(&storage, 3)
        .with_value_threshold(1)
        .with_value_log_max_entries(2);
    let db = Db::open(o.clone()).unwrap();
    let mut keys = Vec::new();
    for ns in [1234u64, 3456, 5678, 7890, 901_234] {
        for i in 0..10 {
            keys.push(key(ns, &format!("-key{i:02}")));
        }
    }
    for k in &keys {
        db.update(|txn| txn.set(k.clone(), "value")).unwrap();
    }
    let validate = |db: &Db, banned: &[u64]| {
        for k in &keys {
            let mut txn = db.new_transaction(true).unwrap();
            let read = txn.get(k).map(|_| ());
            let write = txn.set(k.clone(), "value");
            if banned.contains(&ns_of(k)) {
                assert!(
                    matches!(read, Err(Error::BannedKey { namespace }) if namespace == ns_of(k))
                );
                assert!(matches!(write, Err(Error::BannedKey { .. })));
            } else {
                read.unwrap();
                write.unwrap();
            }
        }
    };
    validate(&db, &[]);
    db.ban_namespace(1234).unwrap();
    validate(&db, &[1234]);
    db.ban_namespace(5678).unwrap();
    validate(&db, &[1234, 5678]);
    assert!(db.value_log_files().len() > 1);
    db.close().unwrap();
    drop(db);

    let db = Db::open(o).unwrap();
    assert_eq!(db.banned_namespaces(), [1234, 5678]);
    validate(&db, &[1234, 5678]);
    db.close().unwrap();
}

#[test]
fn badger_iterate_with_banned() {
    // Proves Badger's TestIterateWithBanned: iterators (forward, reverse, all versions,
    // prefix) yield exactly the model's keys minus the banned namespaces, after each ban; a
    // prefix inside a banned namespace yields nothing.
    let db = Db::open(opts(&Arc::new(SimStorage::new()), 3).with_num_versions_to_keep(u32::MAX))
        .unwrap();
    const N: usize = 40;
    const V: usize = 3;
    let ns = |c: u8| u64::from(c) * 1000;
    let mut model = Vec::new(); // every key, ascending, once per version
    for c in b'a'..=b'z' {
        for j in 0..N {
            for _ in 0..V {
                let k = key(ns(c), &format!("-{j:04}"));
                db.update(|txn| txn.set(k.clone(), k.clone())).unwrap();
                model.push(k);
            }
        }
    }
    let check = |opts: IteratorOptions, banned: &[u64]| {
        let txn = db.new_transaction(false).unwrap();
        let got: Vec<Vec<u8>> = txn
            .iter(opts.clone())
            .unwrap()
            .map(|i| i.unwrap().key().to_vec())
            .collect();
        let mut want: Vec<Vec<u8>> = model
            .iter()
            .filter(|k| !banned.contains(&ns_of(k)) && k.starts_with(&opts.prefix))
            .cloned()
            .collect();
        if !opts.all_versions {
            want.dedup();
        }
        if opts.reverse {
            want.reverse();
        }
        assert_eq!(got.len(), want.len(), "{opts:?} banned {banned:?}");
        assert!(got == want, "{opts:?} banned {banned:?}");
    };
    let all = IteratorOptions::default().with_all_versions(true);
    let rev_all = all.clone().with_reverse(true);
    let prefix = |c: u8| IteratorOptions::default().with_prefix(key(ns(c), ""));
    check(IteratorOptions::default(), &[]);
    check(rev_all.clone(), &[]);
    check(prefix(b'f'), &[]);

    let mut banned = Vec::new();
    for c in [b'a', b'b', b'd', b'g', b'r', b'z'] {
        db.ban_namespace(ns(c)).unwrap();
        banned.push(ns(c));
        check(IteratorOptions::default(), &banned);
        check(all.clone(), &banned);
        check(rev_all.clone(), &banned);
        check(IteratorOptions::default().with_reverse(true), &banned);
        check(prefix(b'f'), &banned);
        check(prefix(b'f').with_all_versions(true), &banned);
    }
    check(prefix(b'g'), &banned);
    check(
        prefix(b'g').with_reverse(true).with_all_versions(true),
        &banned,
    );
    let txn = db.new_transaction(false).unwrap();
    assert_eq!(txn.iter(prefix(b'g')).unwrap().count(), 0);
}

#[test]
fn badger_banned_at_zero_offset() {
    // Proves Badger's TestBannedAtZeroOffset: with offset 0 and keys shorter than 8 bytes (in
    // no namespace), reads and writes work.
    let db = Db::open(opts(&Arc::new(SimStorage::new()), 0)).unwrap();
    db.update(|txn| {
        for i in 0..10 {
            txn.set(format!("key{i}"), format!("val{i}"))?;
        }
        Ok(())
    })
    .unwrap();
    db.view(|txn| {
        for i in 0..10 {
            let item = txn.get(format!("key{i}"))?.unwrap();
            assert_eq!(item.value()?, format!("val{i}").as_bytes());
        }
        Ok(())
    })
    .unwrap();
}

#[test]
fn every_write_and_read_path_refuses_a_banned_key() {
    // Proves the check is on every path: Db::set/delete/get, Txn::delete, WriteBatch; a key
    // that ends with its namespace is in it, a shorter one is in none; Db::iter skips.
    let db = Db::open(opts(&Arc::new(SimStorage::new()), 0)).unwrap();
    let exact = 7u64.to_be_bytes().to_vec();
    let longer = [&exact[..], b"x"].concat();
    let short = exact[..7].to_vec();
    for k in [&exact, &longer, &short] {
        db.set(k.clone(), "v").unwrap();
    }
    db.ban_namespace(7).unwrap();
    db.ban_namespace(7).unwrap(); // again: nothing changes
    assert_eq!(db.banned_namespaces(), [7]);
    for k in [&exact, &longer] {
        assert!(matches!(db.get(k), Err(Error::BannedKey { namespace: 7 })));
        assert!(matches!(
            db.set(k.clone(), "v"),
            Err(Error::BannedKey { .. })
        ));
        assert!(matches!(db.delete(k.clone()), Err(Error::BannedKey { .. })));
        let mut txn = db.new_transaction(true).unwrap();
        assert!(matches!(
            txn.delete(k.clone()),
            Err(Error::BannedKey { .. })
        ));
        let mut batch = db.new_write_batch().unwrap();
        assert!(matches!(
            batch.set(k.clone(), "v"),
            Err(Error::BannedKey { .. })
        ));
    }
    assert_eq!(db.get(&short).unwrap(), Some(b"v".to_vec()));
    let keys: Vec<Vec<u8>> = db
        .iter(IteratorOptions::default())
        .unwrap()
        .map(|i| i.unwrap().key().to_vec())
        .collect();
    assert_eq!(keys, [short]);
}

#[test]
fn bans_survive_reopen_and_drop_all() {
    // Proves a ban is read back at open (read-only too) and is still in force, and on disk,
    // after drop_all.
    let storage = Arc::new(SimStorage::new());
    let k = [&9u64.to_be_bytes()[..], b"k"].concat();
    let db = Db::open(opts(&storage, 0)).unwrap();
    db.set(k.clone(), "v").unwrap();
    db.ban_namespace(9).unwrap();
    db.ban_namespace(11).unwrap();
    db.drop_all().unwrap();
    assert!(matches!(
        db.set(k.clone(), "v"),
        Err(Error::BannedKey { .. })
    ));
    db.close().unwrap();
    drop(db);

    let db = Db::open(opts(&storage, 0)).unwrap();
    assert_eq!(db.banned_namespaces(), [9, 11]);
    assert!(matches!(db.get(&k), Err(Error::BannedKey { .. })));
    db.close().unwrap();
    drop(db);
    let ro = Db::open(opts(&storage, 0).with_read_only(true)).unwrap();
    assert_eq!(ro.banned_namespaces(), [9, 11]);
    assert!(matches!(ro.ban_namespace(1), Err(Error::InvalidRequest(_))));
}

#[test]
fn a_ban_without_namespaces_is_a_typed_error() {
    // Proves ban_namespace with namespaces off is NamespaceMode (Badger's ErrNamespaceMode),
    // and the default options ban nothing.
    let db = Db::open(opts(&Arc::new(SimStorage::new()), -1)).unwrap();
    assert!(matches!(db.ban_namespace(1), Err(Error::NamespaceMode)));
    assert!(db.banned_namespaces().is_empty());
    let k = [&1u64.to_be_bytes()[..], b"k"].concat();
    db.set(k.clone(), "v").unwrap();
    assert_eq!(db.get(&k).unwrap(), Some(b"v".to_vec()));
}

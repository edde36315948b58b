//! The `settdb` binary end to end: each subcommand's happy path and its error paths (bad
//! flags exit 2 with clap's message; a missing, locked, foreign or damaged directory is one
//! `settdb: ...` line and exit 1).

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn settdb() -> Command {
    cargo_bin_cmd!("settdb")
}

fn dir_arg(dir: &Path) -> String {
    dir.display().to_string()
}

/// A fresh directory holding 10,000 benchmark keys.
fn bench_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    settdb()
        .args(["bench", "write", "-m", "0.01", "--seed", "7", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    dir
}

/// A fresh directory holding 2,000 benchmark keys with 2 KiB values (in the value log).
fn value_log_bench_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    settdb()
        .args(["bench", "write", "-m", "0.002", "-v", "2048", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    dir
}

/// The table files in `dir`.
fn tables(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    out.sort();
    out
}

#[test]
fn bench_write_then_read_info_verify_and_flatten() {
    // Proves the main job end to end: write prints its numbers, read samples the keys from the
    // database and finds every one, info and verify see a healthy database, flatten moves it
    // down.
    let dir = tempfile::tempdir().unwrap();
    settdb()
        .args([
            "bench",
            "write",
            "-m",
            "0.01",
            "-k",
            "16",
            "--compression",
            "zstd",
            "--dir",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("10,000 entries (16 B keys, 128 B values, zstd"))
        .stdout(contains("entries/s"))
        .stdout(contains("MB/s"))
        .stdout(contains("peak memory"))
        .stdout(
            contains("sst ")
                .and(contains("vlog "))
                .and(contains("mem ")),
        );
    settdb()
        .args(["bench", "read", "-d", "1s", "-g", "2", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("over 10,000 keys sampled from 10,000"))
        .stdout(contains("reads/s"))
        .stdout(contains("p50 ").and(contains("p99 ")))
        .stdout(contains("(0 missing)"));
    settdb()
        .args(["info", "--show-tables", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("every listed table has its file"))
        .stdout(contains("keys (estimate): 10,000"))
        .stdout(contains("encryption: none"))
        .stdout(contains("key range"));
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("OK: no corruption found"));
    settdb()
        .args(["flatten", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("levels after flatten"));
}

#[test]
fn bench_write_without_dir_removes_its_temporary_directory() {
    // Proves the zero-set-up path: no --dir writes into a temporary directory, named in the
    // report, that no longer exists afterwards.
    let out = settdb()
        .args(["bench", "write", "-m", "0.001"])
        .assert()
        .success()
        .stdout(contains("(temporary, removed now"))
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("directory"))
        .unwrap();
    let path = line.split_whitespace().nth(1).unwrap();
    assert!(!Path::new(path).exists(), "{path} was left behind");
}

#[test]
fn set_get_delete_round_trip_in_text_and_hex() {
    // Proves set then get returns the value (as text and as hex), and delete makes get exit 1
    // with "key not found".
    let dir = tempfile::tempdir().unwrap();
    let d = dir_arg(dir.path());
    settdb()
        .args(["set", "--dir", &d, "hello", "world"])
        .assert()
        .success();
    settdb()
        .args(["get", "--dir", &d, "hello"])
        .assert()
        .success()
        .stdout("world\n");
    settdb()
        .args(["set", "--dir", &d, "--hex", "00ff", "0xCAFE"])
        .assert()
        .success();
    settdb()
        .args(["get", "--dir", &d, "--hex", "00ff"])
        .assert()
        .success()
        .stdout("cafe\n");
    settdb()
        .args(["get", "--dir", &d, "--hex", "68656c6c6f"])
        .assert()
        .success()
        .stdout("776f726c64\n");
    settdb()
        .args(["delete", "--dir", &d, "hello"])
        .assert()
        .success();
    settdb()
        .args(["get", "--dir", &d, "hello"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("settdb: key not found\n");
    settdb()
        .args(["get", "--dir", &d, "--hex", "0g"])
        .assert()
        .code(2)
        .stderr(contains("settdb: key \"0g\" is not hexadecimal"));
}

#[test]
fn bad_flags_exit_2_with_clap_message() {
    // Proves usage errors are clap's (exit code 2, "error:" on stderr), for each kind.
    let cases: &[&[&str]] = &[
        &["bench", "write", "--bogus"],
        &["bench", "write", "-m", "lots"],
        &["bench", "write", "-m", "-1"],
        &["bench", "write", "--compression", "gzip"],
        &["bench", "read", "--dir", "x", "-d", "5x"],
        &["get", "--dir", "x"],
        &["info"],
        &["scan"],
        &["bank", "test", "-a", "1"],
        &["bank", "test", "-d", "soon"],
        &["bank", "disect"],
        &["frobnicate"],
    ];
    for args in cases {
        settdb()
            .args(*args)
            .assert()
            .code(2)
            .stderr(contains("error:"));
    }
}

#[test]
fn missing_and_foreign_directories_are_explained() {
    // Proves info, get and verify on a directory that does not exist, and get on one that is
    // not a database, each fail with one explaining line and exit 1 (no panic).
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    for cmd in [&["info"][..], &["get", "k"], &["verify"], &["delete", "k"]] {
        settdb()
            .args(cmd)
            .arg("--dir")
            .arg(&missing)
            .assert()
            .code(1)
            .stderr(format!(
                "settdb: directory {} does not exist\n",
                missing.display()
            ));
    }
    settdb()
        .args(["get", "k", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("is not a SettDB database"));
    settdb()
        .args(["bench", "read", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("is not a SettDB database"));
}

#[test]
fn locked_directory_is_explained() {
    // Proves a directory held by an open Db (in this process) makes get, set, info and verify
    // fail with the locked message instead of waiting or panicking.
    let dir = tempfile::tempdir().unwrap();
    let db = settdb::Db::open(settdb::Options::new(dir.path())).unwrap();
    for cmd in [
        &["get", "k"][..],
        &["set", "k", "v"],
        &["info"],
        &["verify"],
    ] {
        settdb()
            .args(cmd)
            .arg("--dir")
            .arg(dir.path())
            .assert()
            .code(1)
            .stderr(
                contains("is locked by another process (is another settdb or program using it?)")
                    .and(predicate::str::starts_with("settdb: directory ")),
            );
    }
    db.close().unwrap();
    settdb()
        .args(["get", "k", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr("settdb: key not found\n");
}

#[test]
fn corrupt_table_fails_verify_and_info() {
    // Proves a flipped data block is found by verify (exit 1, the table named), and a table
    // whose footer is cut off or whose file is gone makes info exit 1 after its report.
    let dir = bench_dir();
    let sst = tables(dir.path()).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    for b in &mut bytes[1000..1004] {
        *b ^= 0xff;
    }
    std::fs::write(&sst, &bytes).unwrap();
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("CORRUPT").and(contains("checksum mismatch")))
        .stderr(contains("settdb: 1 problem found"));
    std::fs::write(&sst, &bytes[..bytes.len() - 10]).unwrap();
    settdb()
        .args(["info", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("MANIFEST (").and(contains("the database does not open")))
        .stderr(contains("settdb: cannot open the database: corruption in"));
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("footer"));
    std::fs::remove_file(&sst).unwrap();
    std::fs::write(dir.path().join("000999.sst"), b"stray").unwrap();
    settdb()
        .args(["info", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("MISSING").and(contains("not in the MANIFEST: 000999.sst")))
        .stderr(contains(
            "settdb: the MANIFEST does not match the directory",
        ));
}

#[test]
fn damaged_value_log_is_reported_as_corruption() {
    // Proves damage in the middle of a cleanly closed value-log file is reported as
    // corruption by verify and refused by info (the close sealed the file, so recovery knows
    // the bytes were durable), and that nothing is deleted on the way.
    let dir = value_log_bench_dir();
    let vlog = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "vlog"))
        .unwrap();
    let mut bytes = std::fs::read(&vlog).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&vlog, &bytes).unwrap();
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(
            contains("CORRUPT: corruption in")
                .and(contains(".vlog at offset"))
                .and(contains("these bytes were durable")),
        );
    settdb()
        .args(["info", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("corruption"));
    assert_eq!(
        std::fs::read(&vlog).unwrap(),
        bytes,
        "the damaged file was changed"
    );
}

#[test]
fn bench_read_keys_only_and_full_scan() {
    // Proves --keys-only point reads find every sampled key without reading values, and
    // --full-scan visits every key with its value (and without, with --keys-only); a small
    // --sample-size samples that many of all the keys.
    let dir = value_log_bench_dir();
    settdb()
        .args(["bench", "read", "--keys-only", "-d", "1s", "-g", "2"])
        .args(["--sample-size", "500", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("reads (keys only) from 2 threads"))
        .stdout(contains("over 500 keys sampled from 2,000"))
        .stdout(contains("MB/s of keys"))
        .stdout(contains("(0 missing)"));
    settdb()
        .args(["bench", "read", "--full-scan", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains(
            "bench read --full-scan: 2,000 keys, 4.2 MB of keys and values",
        ))
        .stdout(contains("keys/s").and(contains("MB/s")));
    settdb()
        .args(["bench", "read", "--full-scan", "--keys-only", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("2,000 keys, 64.0 kB of keys only"));
}

/// A database with a few text keys, a binary one, a deleted and an overwritten key.
fn scan_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = settdb::Db::open(settdb::Options::new(dir.path())).unwrap();
    for (k, v) in [
        ("user:1", "ann"),
        ("user:2", "bob"),
        ("user:3", "cy"),
        ("zz", "tab\there"),
        ("gone", "x"),
    ] {
        db.set(k, v).unwrap();
    }
    db.set("user:2", "bo").unwrap();
    // An open reader keeps the version the delete shadows through the flush at close.
    let hold = db.new_transaction(false).unwrap();
    db.delete("gone").unwrap();
    db.set(vec![0xffu8, 0x00], vec![0x80u8, b'\n']).unwrap();
    db.close().unwrap();
    drop(hold);
    dir
}

#[test]
fn scan_prints_keys_and_values_with_prefix_reverse_limit_and_hex() {
    // Proves scan's output for each flag on a known database: key order, deletes hidden,
    // escaping of tabs and non-UTF-8 bytes, prefix, reverse, limit, hex, keys-only and
    // every version.
    let dir = scan_dir();
    let scan = |args: &[&str]| {
        let out = settdb()
            .arg("scan")
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        scan(&[]),
        "user:1\tann\nuser:2\tbo\nuser:3\tcy\nzz\ttab\\there\n\\xff\\x00\t\\x80\\n\n"
    );
    assert_eq!(
        scan(&["--prefix", "user:"]),
        "user:1\tann\nuser:2\tbo\nuser:3\tcy\n"
    );
    assert_eq!(
        scan(&["--prefix", "user:", "--reverse", "--limit", "2"]),
        "user:3\tcy\nuser:2\tbo\n"
    );
    assert_eq!(scan(&["--limit", "0"]), "");
    assert_eq!(scan(&["--hex", "--prefix", "ff"]), "ff00\t800a\n");
    assert_eq!(
        scan(&["--hex", "--prefix", "7573", "--keys-only", "--limit", "1"]),
        "757365723a31\n"
    );
    let versions = scan(&["--all-versions", "--prefix", "g"]);
    let lines: Vec<&str> = versions.lines().collect();
    assert_eq!(lines.len(), 2, "{versions}");
    assert!(lines[0].starts_with("gone\t") && lines[0].ends_with("\tdeleted"));
    assert!(lines[1].starts_with("gone\t") && lines[1].ends_with("\tset\tx"));
    assert_eq!(scan(&["--prefix", "nothing"]), "");
}

#[test]
fn scan_errors_are_explained() {
    // Proves scan on a missing directory, a locked one and with a bad hex prefix fails with
    // one line and exit 1, and a bad --limit is a usage error (exit 2).
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    settdb()
        .args(["scan", "--dir"])
        .arg(&missing)
        .assert()
        .code(1)
        .stderr(format!(
            "settdb: directory {} does not exist\n",
            missing.display()
        ));
    let db = settdb::Db::open(settdb::Options::new(dir.path())).unwrap();
    settdb()
        .args(["scan", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("is locked by another process"));
    db.close().unwrap();
    settdb()
        .args(["scan", "--hex", "--prefix", "xyz", "--dir"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(contains("prefix \"xyz\" is not hexadecimal"));
    settdb()
        .args(["scan", "--limit", "many", "--dir"])
        .arg(dir.path())
        .assert()
        .code(2);
}

#[test]
fn bank_test_passes_and_disect_finds_every_total_correct() {
    // Proves the bank test end to end on a fresh directory: transfers and checks happen, the
    // run passes, the directory is kept, and disect (managed, read-only) agrees; a used
    // directory and a database without accounts are refused.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("bank");
    settdb()
        .args(["bank", "test", "-a", "100", "-c", "4", "-d", "3s", "--dir"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains("bank test: 100 accounts, 4 workers"))
        .stdout(contains("correct totals of 10,000"))
        .stdout(contains("bank disect --dir"));
    settdb()
        .args(["bank", "disect", "--dir"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains(
            "bank disect: 100 accounts (expected total 10,000)",
        ))
        .stdout(contains("all totals correct up to "));
    // The directory now holds a bank: a second test there is refused.
    settdb()
        .args(["bank", "test", "-d", "1s", "--dir"])
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(contains(
            "is not empty: bank test needs a new or empty directory",
        ));
    // A database without accounts is not a bank.
    let other = parent.path().join("other");
    settdb()
        .args(["set", "k", "v", "--dir"])
        .arg(&other)
        .assert()
        .success();
    settdb()
        .args(["bank", "disect", "--dir"])
        .arg(&other)
        .assert()
        .code(1)
        .stderr(contains("holds 0 accounts: not a bank test database"));
}

#[test]
fn bank_test_catches_an_injected_fault_and_disect_finds_its_transaction() {
    // Proves the failure path: a transfer that credits without debiting (the hidden fault
    // injection) makes the test stop with exit 3 and the wrong total, and disect finds the
    // read_ts of that transaction and the one account it changed (+5), also exit 3.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("bank");
    let d = dir_arg(&dir);
    settdb()
        .args([
            "bank", "test", "-a", "50", "-c", "2", "-d", "20s", "--dir", &d,
        ])
        .args(["--inject-fault-after", "100"])
        .assert()
        .code(3)
        .stdout(contains("FAILED: total 5,005 instead of 5,000 at read_ts "))
        .stderr(contains(
            "settdb: bank test failed: total 5005 instead of 5000",
        ));
    let out = settdb()
        .args(["bank", "disect", "--dir", &d])
        .assert()
        .code(3)
        .stdout(contains("first wrong total at read_ts "))
        .stderr(contains("settdb: the bank total is wrong at read_ts "))
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let diffs: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("accounts that differ"))
        .skip(1)
        .collect();
    assert_eq!(diffs.len(), 1, "{text}");
    let (before, after) = diffs[0].split_once(" -> ").unwrap();
    let before: u64 = before.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(after.parse::<u64>().unwrap(), before + 5, "{text}");
}

#[test]
fn info_show_keys_lists_every_version_under_a_prefix() {
    // Proves info --show-keys --prefix lists each version of the matching keys with its state,
    // and leaves out keys outside the prefix.
    let dir = tempfile::tempdir().unwrap();
    for (cmd, args) in [
        ("set", vec!["app:a", "1"]),
        ("set", vec!["app:a", "22"]),
        ("set", vec!["other", "x"]),
        ("delete", vec!["app:a"]),
    ] {
        settdb()
            .arg(cmd)
            .arg("--dir")
            .arg(dir.path())
            .args(args)
            .assert()
            .success();
    }
    settdb()
        .args(["info", "--show-keys", "--prefix", "app:", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(
            contains("app:a\tv4\tdeleted")
                .and(contains("app:a\tv2\tset\t2 B"))
                .and(contains("3 versions")),
        )
        .stdout(contains("  other\tv").not());
}

#[test]
fn repair_rebuilds_a_database_that_lost_its_manifest() {
    // Proves `settdb repair`: on a database verify passes it changes nothing; after the
    // MANIFEST is deleted, verify fails, repair rebuilds it (old files kept in lost/1), and
    // verify passes with every key there.
    let dir = value_log_bench_dir();
    settdb()
        .args(["info", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("past the valid records").not());
    settdb()
        .args(["repair", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("nothing to repair"));
    std::fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("MANIFEST is missing"));
    settdb()
        .args(["repair", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("kept 2,000 live keys").and(contains("lost/1")));
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("OK: no corruption found"));
    assert!(dir.path().join("lost/1/000001.sst").exists());
}

#[test]
fn flags_that_cannot_be_honoured_exit_2() {
    // Proves bad usage exits 2 in every form: flags clap accepts but that contradict each
    // other (-k 4 --sorted) or that the library refuses (-t over the maximum), and a key that
    // is not hexadecimal with --hex (these exited 1, as a failure, before).
    for args in [
        vec!["bench", "write", "-k", "4", "--sorted", "-m", "0.001"],
        vec!["bench", "write", "-t", "99999999", "-m", "0.001"],
    ] {
        settdb()
            .args(&args)
            .assert()
            .code(2)
            .stderr(contains("settdb: "));
    }
    let dir = tempfile::tempdir().unwrap();
    settdb()
        .args(["set", "--hex", "--dir"])
        .arg(dir.path())
        .args(["zz", "00"])
        .assert()
        .code(2)
        .stderr(contains("not hexadecimal"));
    settdb()
        .args(["set", "--dir"])
        .arg(dir.path().join("new"))
        .args(["!settdb!x", "v"])
        .assert()
        .code(2)
        .stderr(contains("reserved prefix"));
    assert!(
        !dir.path().join("new").exists(),
        "no database created for a refused key"
    );
}

#[test]
fn writing_commands_refuse_a_directory_of_someone_elses_files() {
    // Proves set and bench write never create a database among a user's files, and verify
    // says the directory is not a database (not "CORRUPT").
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    for args in [vec!["set", "a", "b"], vec!["bench", "write", "-m", "0.001"]] {
        settdb()
            .args(&args)
            .arg("--dir")
            .arg(dir.path())
            .assert()
            .code(1)
            .stderr(contains("is not empty and is not a SettDB database"));
    }
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(contains("CORRUPT").not())
        .stderr(contains("is not a SettDB database"));
    settdb()
        .args(["info", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("is not a SettDB database"));
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "only notes.txt");
}

#[test]
fn an_interrupted_benchmark_removes_its_temporary_directory() {
    // Proves SIGINT and SIGTERM remove the temporary directory of `bench write` and `bank
    // test` (runs without --dir once left 100 MB behind per second of benchmark).
    for (cmd, signal) in [
        (vec!["bench", "write", "-m", "50"], "INT"),
        (vec!["bench", "write", "-m", "50"], "TERM"),
        (vec!["bank", "test", "-d", "60s"], "INT"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("settdb"))
            .args(&cmd)
            .env("TMPDIR", tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_dir(tmp.path()).unwrap().count() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{cmd:?}: no temporary directory"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        // The shell's built-in kill: no procps needed on a fresh machine.
        let killed = std::process::Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", child.id())])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{cmd:?} {signal}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{cmd:?} {signal}: left {left:?}");
    }
}

/// A directory where the same 1,000 keys with 8 KiB values were written three times and
/// flattened: two thirds of the value log is dead.
fn overwritten_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        settdb()
            .args(["bench", "write", "-m", "0.001", "-v", "8192", "--seed", "3"])
            .args(["--writers", "1", "--no-auto-gc", "--dir"])
            .arg(dir.path())
            .assert()
            .success();
    }
    settdb()
        .args(["flatten", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    dir
}

fn vlog_bytes_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "vlog"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn gc_gives_back_the_dead_value_log_and_info_shows_it() {
    // Proves `info --discard` lists the dead bytes compaction found, `gc` retires the dead
    // files (the value log on disk shrinks to about the live third), a second `gc` has
    // nothing to do, and the database still verifies and reads.
    let dir = overwritten_dir();
    settdb()
        .args(["info", "--discard", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("value-log files (dead:"))
        .stdout(contains("000001.vlog"))
        .stdout(contains("100.0%"));
    let before = vlog_bytes_on_disk(dir.path());
    settdb()
        .args(["gc", "--ratio", "0.5", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("value log before: "))
        .stdout(contains("gc: 2 files retired"));
    let after = vlog_bytes_on_disk(dir.path());
    assert!(
        after * 2 < before,
        "value log {before} -> {after} bytes on disk"
    );
    settdb()
        .args(["gc", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("gc: 0 files retired"));
    settdb()
        .args(["verify", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    settdb()
        .args(["bench", "read", "-d", "1s", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
}

#[test]
fn gc_refuses_bad_ratios_limits_and_directories() {
    // Proves a ratio outside (0, 1) or a --max-files of 0 exits 2 with clap's message, and
    // a missing or foreign directory exits 1 with one line.
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        ["--ratio", "0"],
        ["--ratio", "1"],
        ["--ratio", "x"],
        ["--max-files", "0"],
    ] {
        settdb()
            .arg("gc")
            .args(bad)
            .arg("--dir")
            .arg(dir.path())
            .assert()
            .code(2);
    }
    settdb()
        .args(["gc", "--dir"])
        .arg(dir.path().join("missing"))
        .assert()
        .code(1)
        .stderr(contains("does not exist"));
    settdb()
        .args(["gc", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("is not a SettDB database"));
}

#[test]
fn gc_max_files_stops_after_that_many() {
    // Proves --max-files 1 retires one file even when two qualify.
    let dir = overwritten_dir();
    settdb()
        .args(["gc", "--max-files", "1", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("gc: 1 file retired"));
}

#[test]
fn bank_test_with_gc_passes_and_reports_the_collector() {
    // Proves `bank test --gc` runs the collector beside the transfers, passes, and says
    // why `bank disect` cannot replay such a run.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("bank");
    settdb()
        .args([
            "bank", "test", "-a", "50", "-c", "2", "-d", "2s", "--gc", "--dir",
        ])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains("correct totals of 5,000"))
        .stdout(contains("  gc         "))
        .stdout(contains("rerun without --gc to bisect"));
}

#[test]
fn drop_prefix_and_all_remove_keys_without_tombstones() {
    // Proves `drop --prefix` removes exactly the keys under it (others still read),
    // `drop --all` empties the database, and a missing choice, an empty prefix or a foreign
    // directory is refused.
    let dir = tempfile::tempdir().unwrap();
    for (k, v) in [("a/1", "x"), ("a/2", "y"), ("b/1", "z")] {
        settdb()
            .args(["set", k, v, "--dir"])
            .arg(dir.path())
            .assert()
            .success();
    }
    settdb()
        .args(["drop", "--prefix", "a/", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("before: tables"))
        .stdout(contains("after: tables"));
    settdb()
        .args(["get", "a/1", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1);
    settdb()
        .args(["get", "b/1", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(contains("z"));
    settdb()
        .args(["drop", "--all", "--dir"])
        .arg(dir.path())
        .assert()
        .success();
    settdb()
        .args(["get", "b/1", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1);
    settdb()
        .args(["drop", "--dir"])
        .arg(dir.path())
        .assert()
        .code(2);
    settdb()
        .args(["drop", "--prefix", "", "--dir"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(contains("use --all"));
    let foreign = tempfile::tempdir().unwrap();
    settdb()
        .args(["drop", "--all", "--dir"])
        .arg(foreign.path())
        .assert()
        .code(1)
        .stderr(contains("is not a SettDB database"));
}

#[test]
fn encrypted_database_needs_its_key_file_and_rotate_changes_it() {
    // Proves --encryption-key-file creates and opens an encrypted database (bench write, set,
    // get, scan, verify, info, bank test), that no key, a wrong key and a key for a plaintext
    // database are one clear line and exit 1, that a key file of a bad length is refused,
    // and that `rotate` moves the database to the new key (the old one is then wrong).
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let k1 = keys.path().join("k1");
    let k2 = keys.path().join("k2");
    let bad = keys.path().join("bad");
    std::fs::write(&k1, [0x0a; 32]).unwrap(); // raw bytes, ending in a newline byte
    std::fs::write(&k2, "0123456789abcdef\n").unwrap(); // typed text, 16 bytes
    std::fs::write(&bad, "short\n").unwrap();
    let db = dir.path().join("db");
    settdb()
        .args(["bench", "write", "-m", "0.002", "-v", "600", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&k1)
        .assert()
        .success();
    settdb()
        .args(["set", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&k1)
        .args(["secret-key", "secret-value"])
        .assert()
        .success();
    for f in std::fs::read_dir(&db).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!bytes.windows(12).any(|w| w == b"secret-value"));
    }
    settdb()
        .args(["get", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&k1)
        .arg("secret-key")
        .assert()
        .success()
        .stdout("secret-value\n");
    settdb()
        .args(["get", "--dir"])
        .arg(&db)
        .arg("secret-key")
        .assert()
        .code(1)
        .stderr(contains("is an encrypted database").and(contains("--encryption-key-file")));
    settdb()
        .args(["get", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&k2)
        .arg("secret-key")
        .assert()
        .code(1)
        .stderr(contains("wrong encryption key"));
    settdb()
        .args(["get", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&bad)
        .arg("secret-key")
        .assert()
        .failure()
        .stderr(contains("holds 5 bytes"));
    for cmd in [&["verify"][..], &["info"], &["scan", "--limit", "3"]] {
        settdb()
            .args(cmd)
            .arg("--dir")
            .arg(&db)
            .arg("--encryption-key-file")
            .arg(&k1)
            .assert()
            .success();
    }
    settdb()
        .args(["info", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&k1)
        .assert()
        .success()
        .stdout(
            contains("encryption: AES-256-GCM, 1 data key in KEYREGISTRY")
                .and(contains("data key    1  created at unix")),
        );
    settdb()
        .args(["rotate", "--dir"])
        .arg(&db)
        .arg("--old-key-file")
        .arg(&k2)
        .arg("--new-key-file")
        .arg(&k1)
        .assert()
        .code(1)
        .stderr(contains("wrong encryption key"));
    settdb()
        .args(["rotate", "--dir"])
        .arg(&db)
        .arg("--old-key-file")
        .arg(&k1)
        .arg("--new-key-file")
        .arg(&k2)
        .assert()
        .success()
        .stdout(contains("rotated the master key"));
    settdb()
        .args(["get", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&k2)
        .arg("secret-key")
        .assert()
        .success()
        .stdout("secret-value\n");
    settdb()
        .args(["get", "--dir"])
        .arg(&db)
        .arg("--encryption-key-file")
        .arg(&k1)
        .arg("secret-key")
        .assert()
        .code(1)
        .stderr(contains("wrong encryption key"));
    let plain = dir.path().join("plain");
    settdb()
        .args(["set", "--dir"])
        .arg(&plain)
        .args(["a", "b"])
        .assert()
        .success();
    settdb()
        .args(["get", "--dir"])
        .arg(&plain)
        .arg("--encryption-key-file")
        .arg(&k1)
        .arg("a")
        .assert()
        .code(1)
        .stderr(contains("not an encrypted database"));
    settdb()
        .args([
            "bank",
            "test",
            "-a",
            "50",
            "-c",
            "2",
            "-d",
            "2s",
            "--encryption-key-file",
        ])
        .arg(&k1)
        .assert()
        .success();
}

#[test]
fn backup_restore_dump_round_trip_and_refusals() {
    // Proves backup -> restore gives the same keys (scan output equal), an incremental backup
    // after no writes is empty, stdout backups equal file backups, restore refuses a
    // directory holding a database, and a damaged backup is one line naming the frame offset
    // (from restore and from dump), leaving no half-written file behind for backup.
    let src = bench_dir();
    let t = tempfile::tempdir().unwrap();
    let bak = t.path().join("full.bak");
    let out = settdb()
        .args(["backup", "--dir", &dir_arg(src.path()), "--file"])
        .arg(&bak)
        .assert()
        .success()
        .stdout(contains("backed up 10,000 versions"))
        .get_output()
        .stdout
        .clone();
    let since = String::from_utf8_lossy(&out)
        .rsplit("--since ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(!t.path().join("full.bak.partial").exists());
    let stdout_copy = settdb()
        .args(["backup", "--dir", &dir_arg(src.path()), "--file", "-"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        stdout_copy.len() as u64,
        std::fs::metadata(&bak).unwrap().len()
    );
    let dst = t.path().join("restored");
    settdb()
        .args(["restore", "--dir", &dir_arg(&dst), "--file"])
        .arg(&bak)
        .assert()
        .success()
        .stdout(contains("restored 10,000 versions"))
        .stdout(contains("bulk-loaded into tables"));
    let scan = |d: &Path| {
        settdb()
            .args(["scan", "--hex", "--dir", &dir_arg(d)])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    assert_eq!(scan(&dst), scan(src.path()));
    settdb()
        .args([
            "backup",
            "--dir",
            &dir_arg(src.path()),
            "--since",
            &since,
            "--file",
        ])
        .arg(t.path().join("incr.bak"))
        .assert()
        .success()
        .stdout(contains("backed up 0 versions"));
    settdb()
        .args(["restore", "--dir", &dir_arg(&dst), "--file"])
        .arg(&bak)
        .assert()
        .code(2)
        .stderr(contains("already holds a database"));
    let bytes = std::fs::read(&bak).unwrap();
    // The backup holds several frames (one per range batch); the cut lands in the last one.
    let (mut at, mut last) = (0usize, 0usize);
    while at < bytes.len() {
        last = at;
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        at += 8 + usize::try_from(len).unwrap();
    }
    let cut = t.path().join("cut.bak");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    settdb()
        .args(["restore", "--dir", &dir_arg(&t.path().join("r2")), "--file"])
        .arg(&cut)
        .assert()
        .code(1)
        .stderr(contains(format!(
            "frame at offset {last}: the input ends inside the frame"
        )));
    settdb()
        .args(["dump", "--frames-only", "--file"])
        .arg(&cut)
        .assert()
        .code(1)
        .stderr(contains(format!("frame at offset {last}")));
    settdb()
        .args(["dump", "--frames-only", "--file"])
        .arg(&bak)
        .assert()
        .success()
        .stdout(contains("10000 KVs"));
}

#[test]
fn info_stats_prints_the_levels_and_the_counters() {
    // Proves `info --stats` prints Db::stats: the counters by name and each level with its
    // tables (one L0 table after one set), and plain `info` does not.
    let dir = tempfile::tempdir().unwrap();
    settdb()
        .args(["set", "--dir", &dir_arg(dir.path()), "k", "v"])
        .assert()
        .success();
    settdb()
        .args(["info", "--stats", "--dir", &dir_arg(dir.path())])
        .assert()
        .success()
        .stdout(contains("stats (since this open):"))
        .stdout(contains("  puts: 0"))
        .stdout(contains("  compaction_bytes_in: 0"))
        .stdout(contains("  level 0: tables 1 size_bytes"))
        .stdout(contains("  block_cache: hits"));
    settdb()
        .args(["info", "--dir", &dir_arg(dir.path())])
        .assert()
        .success()
        .stdout(contains("stats (since this open)").not());
}

#[test]
fn verbose_logs_engine_events_to_stderr_and_is_quiet_without_it() {
    // Proves the global flag: `-v` before a subcommand and `--verbose` after one print the
    // engine's INFO events (open, flush, close) on stderr, `--verbose --verbose` adds DEBUG
    // (recovery), and without it stderr stays empty; stdout is the same either way.
    let dir = tempfile::tempdir().unwrap();
    let d = dir_arg(dir.path());
    settdb()
        .args(["-v", "set", "--dir", &d, "k", "v"])
        .assert()
        .success()
        .stdout("set k at version 1\n")
        .stderr(contains("INFO").and(contains("opened the database")))
        .stderr(contains("flushed a memtable to L0").and(contains("closed the database")))
        .stderr(contains("DEBUG").not());
    settdb()
        .args(["get", "--dir", &d, "k", "--verbose", "--verbose"])
        .assert()
        .success()
        .stderr(contains("DEBUG").and(contains("open: WAL replayed")));
    settdb()
        .args(["set", "--dir", &d, "k2", "v"])
        .assert()
        .success()
        .stderr("");
    settdb()
        .args(["get", "--dir", &d, "k2"])
        .assert()
        .success()
        .stderr("");
}

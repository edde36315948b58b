//! `settdb bank test --check-subscriber` end to end: the subscription's replay of every
//! account update matches the bank's total after every batch and the database at the end,
//! with and without value-log GC moving values under it.

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::str::contains;

#[test]
fn bank_test_with_check_subscriber_replays_every_update() {
    // Proves the replay passes and is reported (updates, batches, totals checked, equal to
    // the database), and that GC rewrites running beside it (--gc) are not delivered as
    // updates (they would break the replay's version order).
    for gc in [false, true] {
        let parent = tempfile::tempdir().unwrap();
        let mut cmd = cargo_bin_cmd!("settdb");
        cmd.args(["bank", "test", "-a", "50", "-c", "2", "-d", "2s"])
            .args(["--check-subscriber", "--dir"])
            .arg(parent.path().join("bank"));
        if gc {
            cmd.arg("--gc");
        }
        cmd.assert()
            .success()
            .stdout(contains("correct totals of 5,000"))
            .stdout(contains("  subscriber "))
            .stdout(contains("equal to the database at the end"));
    }
}

//! Interop with Go Badger (Debian's v2.2007: the `badger` tool and, for histories with
//! versions, deletes, TTLs, user meta and discard markers, tests/badger-history built from
//! Debian's Badger sources). Each direction goes through real files and both programs:
//!   Badger -> `badger backup` / `DB.Backup` -> `settdb restore` -> `settdb backup`;
//!   SettDB's backup -> `badger restore` / `DB.Load` -> Badger's backup;
//! and the KVs of every backup are compared: keys, values, versions, expiry, user meta and
//! meta, with the two fields that legitimately differ normalized (Badger numbers its streams;
//! Badger sets meta bit 0x02 when the value lived in its value log, which load ignores).
//!
//! Needs `badger`, `go` and `golang-github-dgraph-io-badger-dev` (.ci/run installs them);
//! without them the tests fail saying so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use settdb::backup::FrameReader;

const BADGER_SOURCES: &str = "/usr/share/gocode/src/github.com/dgraph-io/badger";

fn require(cmd: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{cmd}` is not installed: the Badger interop tests need Debian's badger, golang-go and \
         golang-github-dgraph-io-badger-dev (apt-get install them; .ci/run does)"
    );
}

/// The badger-history driver, built once per test process.
fn history_tool() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        require("go");
        assert!(
            Path::new(BADGER_SOURCES).is_dir(),
            "{BADGER_SOURCES} is missing: apt-get install golang-github-dgraph-io-badger-dev"
        );
        let out =
            std::env::temp_dir().join(format!("settdb-badger-history-{}", std::process::id()));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/badger-history");
        let o = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(src)
            .env("GOPATH", "/usr/share/gocode")
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", std::env::temp_dir().join("settdb-gocache"))
            .output()
            .expect("run go build");
        assert!(
            o.status.success(),
            "go build failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn history(args: &[&str], dir: &Path, file: Option<&Path>) {
    let mut c = Command::new(history_tool());
    c.args(args).arg("-dir").arg(dir);
    if let Some(f) = file {
        c.arg("-file").arg(f);
    }
    run(&mut c);
}

fn badger(args: &[&str], dir: &Path, file: &Path) {
    require("badger");
    run(Command::new("badger")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .arg("-f")
        .arg(file));
}

fn settdb(args: &[&str], dir: &Path, file: &Path) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_settdb"));
    run(c.args(args).arg("--dir").arg(dir).arg("--file").arg(file));
}

/// One KV, normalized: (key, version, value, user_meta, meta without 0x02, expires_at).
type NormKv = (Vec<u8>, u64, Vec<u8>, Vec<u8>, Vec<u8>, u64);

fn kvs(file: &Path) -> Vec<NormKv> {
    let f = std::fs::File::open(file).unwrap();
    let mut r = FrameReader::new(std::io::BufReader::new(f));
    let mut out = Vec::new();
    while let Some((_, list)) = r.next_frame().unwrap() {
        for kv in list.kv {
            assert!(!kv.stream_done, "a backup holds a stream_done KV");
            let meta = kv.meta.iter().map(|m| m & !0x02).collect();
            out.push((
                kv.key.to_vec(),
                kv.version,
                kv.value.to_vec(),
                kv.user_meta.to_vec(),
                meta,
                kv.expires_at,
            ));
        }
    }
    out.sort();
    out
}

fn assert_same(a: &Path, b: &Path) {
    let (x, y) = (kvs(a), kvs(b));
    assert!(!x.is_empty(), "{} holds no KV", a.display());
    if let Some(i) = (0..x.len().min(y.len())).find(|&i| x[i] != y[i]) {
        panic!(
            "{} and {} differ at KV {i}: {:?} vs {:?}",
            a.display(),
            b.display(),
            x[i],
            y[i]
        );
    }
    assert_eq!(
        x.len(),
        y.len(),
        "{} vs {}: KV counts",
        a.display(),
        b.display()
    );
}

#[test]
fn a_badger_history_round_trips_through_settdb_and_back() {
    // Proves a Badger database with versions, deletes, discard markers, TTLs, user meta and
    // values in Badger's value log restores into SettDB with the same KVs (SettDB's backup of
    // it equals Badger's), and SettDB's backup loads into Badger, whose own backup then
    // equals SettDB's; also through the `badger backup` tool.
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    history(
        &["-mode", "write", "-n", "3000", "-seed", "5"],
        &p("g1"),
        None,
    );
    history(&["-mode", "backup"], &p("g1"), Some(&p("g1.bak")));
    badger(&["backup"], &p("g1"), &p("c1.bak"));
    assert_same(&p("g1.bak"), &p("c1.bak"));
    let deleted = kvs(&p("g1.bak")).iter().filter(|kv| kv.4 == [1]).count();
    assert!(
        deleted > 50,
        "the history has deletes and discard markers ({deleted})"
    );
    settdb(&["restore"], &p("s1"), &p("c1.bak"));
    settdb(&["backup"], &p("s1"), &p("s1.bak"));
    assert_same(&p("g1.bak"), &p("s1.bak"));
    history(&["-mode", "load"], &p("g2"), Some(&p("s1.bak")));
    history(&["-mode", "backup"], &p("g2"), Some(&p("g2.bak")));
    assert_same(&p("s1.bak"), &p("g2.bak"));
}

#[test]
fn a_badger_benchmark_database_restores_both_ways_with_the_tools() {
    // Proves `badger benchmark write` -> `badger backup` -> `settdb restore` -> `settdb backup`
    // -> `badger restore` -> `badger backup` keeps every KV, and that SettDB reads the values
    // Badger wrote.
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n);
    require("badger");
    run(Command::new("badger")
        .args([
            "benchmark",
            "write",
            "-k",
            "16",
            "-v",
            "1500",
            "-m",
            "0.005",
            "--dir",
        ])
        .arg(p("b1")));
    badger(&["backup"], &p("b1"), &p("b1.bak"));
    settdb(&["restore"], &p("s1"), &p("b1.bak"));
    settdb(&["backup"], &p("s1"), &p("s1.bak"));
    assert_same(&p("b1.bak"), &p("s1.bak"));
    badger(&["restore"], &p("b2"), &p("s1.bak"));
    badger(&["backup"], &p("b2"), &p("b2.bak"));
    assert_same(&p("s1.bak"), &p("b2.bak"));
    assert_eq!(kvs(&p("b1.bak")).len(), 5000);
    // A restored value read through `settdb get`.
    let (key, _, value, ..) = kvs(&p("b1.bak")).swap_remove(17);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut c = Command::new(env!("CARGO_BIN_EXE_settdb"));
    let o = c
        .args(["get", "--hex", "--dir"])
        .arg(p("s1"))
        .arg(&hex)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8_lossy(&o.stdout);
    let want: String = value.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(printed.trim(), want);
}

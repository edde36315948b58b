//! End-to-end checks of the harness at a tiny scale (correctness of the plumbing, never
//! timings): every in-process store runs every workload of the protocol without a missed key,
//! and `compare` writes its report.

use std::path::Path;
use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_settdb-bench"))
}

fn run(engine: &str, workload: &str, dir: &Path, records: u64, extra: &[&str]) -> String {
    let out = bench()
        .args(["run", "--engine", engine, "--workload", workload, "--dir"])
        .arg(dir)
        .args([
            "--records",
            &records.to_string(),
            "--value-size",
            "100",
            "--secs",
            "0.1",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{engine} {workload}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one RESULT line: {stdout}");
    assert!(stdout.starts_with("RESULT ops="), "{stdout}");
    stdout
}

fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .map(|v| v.parse::<f64>().unwrap() as u64)
}

#[test]
fn every_store_runs_every_workload_without_missing_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    for engine in ["settdb", "fjall", "redb", "sled"] {
        let dir = tmp.path().join(engine);
        let load = run(engine, "load", &dir, 3000, &[]);
        assert_eq!(field(&load, "ops"), Some(3000));
        let scan = run(engine, "scan", &dir, 3000, &[]);
        assert_eq!(
            field(&scan, "ops"),
            Some(3000),
            "{engine}: a full scan sees every key"
        );
        assert_eq!(field(&scan, "bytes"), Some(3000 * 116));
        let (mut insert_start, mut inserted) = (3000, 0);
        for (w, extra) in [
            ("read", &["--dist", "zipf", "--threads", "2"][..]),
            ("read", &["--txn", "long"][..]),
            ("scan-short", &["--threads", "2"][..]),
            ("ycsb-a", &["--threads", "2"][..]),
            ("ycsb-d", &["--threads", "2"][..]),
            ("ycsb-e", &["--threads", "2"][..]),
            ("ycsb-f", &[][..]),
            ("read-while-writing", &["--batch", "100"][..]),
            ("overwrite", &["--ops", "2000"][..]),
        ] {
            let start = insert_start.to_string();
            let mut args = extra.to_vec();
            args.extend(["--insert-start", start.as_str()]);
            let line = run(engine, w, &dir, 3000, &args);
            assert_eq!(
                field(&line, "missing").unwrap_or(0),
                0,
                "{engine} {w}: {line}"
            );
            if w.starts_with("ycsb") || w == "read-while-writing" {
                assert!(line.contains("p99_us="), "{engine} {w}: {line}");
            }
            let threads = if extra.contains(&"2") { 2 } else { 1 };
            let inserts = field(&line, "inserts").unwrap_or(0);
            insert_start += inserts * threads;
            inserted += inserts;
        }
        // D and E inserted keys beyond the records: a scan sees them all.
        let scan = run(engine, "scan", &dir, 3000, &[]);
        assert_eq!(field(&scan, "ops"), Some(3000 + inserted), "{engine}");
    }
}

#[test]
fn reads_of_keys_never_written_count_as_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    run("settdb", "load", &dir, 1000, &[]);
    // Records 1000..2000 were never loaded: about half the reads miss.
    let line = run("settdb", "read", &dir, 2000, &[]);
    let (ops, missing) = (
        field(&line, "ops").unwrap(),
        field(&line, "missing").unwrap(),
    );
    assert!(missing > ops / 4 && missing < ops * 3 / 4, "{line}");
}

#[test]
fn compare_writes_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let status = bench()
        .args(["compare", "--records", "2000", "--secs", "0.05"])
        .args(["--stores", "settdb,fjall,redb,sled", "--work"])
        .arg(tmp.path().join("work"))
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(!md.contains("Failed steps"), "{md}");
    for w in [
        "load 2K x 128 B",
        "read zipf 4t long-txn",
        "ycsb-e",
        "overwrite 200 x 16 KiB + GC",
    ] {
        assert!(md.contains(&format!("| {w} |")), "{w} missing from\n{md}");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // 4 stores x (3 loads + 12 reads + 2 scans + 6 YCSB + read-while-writing + overwrite).
    assert_eq!(rows.len(), 4 * 25, "{csv}");
    for r in &rows {
        let cols: Vec<&str> = r.split(',').collect();
        assert!(cols[8].parse::<f64>().unwrap() > 0.0, "ops/s of {r}");
        assert_eq!(cols.last(), Some(&""), "no error: {r}");
    }
    // rss.svg needs RSS samples (every 100 ms), which a load this small may finish before.
    for svg in ["throughput.svg", "latency.svg"] {
        let s = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(s.starts_with("<svg") && s.contains("settdb"), "{svg}");
    }
}

//! The corruption campaign (issue 8): damaged copies of two databases, every file kind and
//! seven kinds of damage, each opened and read in a child process with a timeout, read-only
//! then read-write, then repaired. Every outcome must be correct data or a typed error: no
//! wrong value, no panic, no hang; repair must never lose a key that was still readable.
//!
//! - Base A: cleanly closed; tables on several levels, inline and value-log values, several
//!   value-log files, overwrites and deletes.
//! - Base B: a crash image of a database with `sync_writes` whose flushes were held back, so
//!   it holds rotated (sealed) WALs and the active one.
//!
//! Outcomes per mode: `CORRECT` (every get and the full iteration match the model), `ERROR`
//! (the open or a read returned a typed, one-line error; nothing read was wrong), `PREFIX`
//! (the data is the model after some earlier write: allowed only for damage to base B's active
//! WAL or newest value-log file, the unsynced ends a crash can tear, docs/format/log.md), and
//! the failures `WRONG`, `PANIC`, `HANG`. Repair: `KEPT` (every key readable before reads the
//! same or its final value after, and verify passes), and the failures `REFUSED` (repair
//! returned an error: one damaged file must never stop it), `LOST`, `PANIC`, `HANG`; `KEPT-UNCHANGED` (verify found nothing
//! to repair) after an open failed is a failure too (verify said OK about a refused database).
//!
//! `SETTDB_SEED` fixes the seed (printed), `SETTDB_CAMPAIGN_COPIES` the number of copies (CI:
//! 1,050; a long run: 10000), `SETTDB_CAMPAIGN_ONLY=<index>` reruns one copy,
//! `SETTDB_CAMPAIGN_KEEP=1` keeps the failing copies' directories.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{seed, small_options, value_for, Gate, SlowTableStorage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use settdb::io::{FsStorage, Storage};
use settdb::Entry;
use settdb::{Db, IteratorOptions, Options};

const CI_COPIES: usize = 1_050;
/// Copies of the encrypted campaign in CI (it runs beside the plaintext one).
const CI_COPIES_ENCRYPTED: usize = 360;
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);
const WORKERS: usize = 2;

/// One write of the model: write index, key, value (`None`: a delete).
type Write = (u64, Vec<u8>, Option<Vec<u8>>);

/// The master key of the encrypted campaign's databases.
const CAMPAIGN_KEY: [u8; 32] = [0x5e; 32];

/// The key a campaign's databases use: empty, or [`CAMPAIGN_KEY`] for the encrypted one.
fn key_of(encrypted: bool) -> Vec<u8> {
    if encrypted {
        CAMPAIGN_KEY.to_vec()
    } else {
        Vec::new()
    }
}

fn opts(dir: &Path, key: &[u8]) -> Options {
    small_options(dir, Arc::new(FsStorage::new()))
        .with_value_threshold(256)
        .with_encryption_key(key.to_vec())
}

/// Write `i`: a key out of 600, a delete every 13th, a value-log value every 3rd.
fn write_of(i: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = format!("key{:04}", (i * 7919) % 600).into_bytes();
    if i % 13 == 6 {
        return (key, None);
    }
    let len = if i.is_multiple_of(3) { 1_500 } else { 40 };
    let v = value_for(&key, i, len);
    (key, Some(v))
}

fn entry(key: &[u8], value: &Option<Vec<u8>>) -> Entry {
    match value {
        Some(v) => Entry::new(key, v),
        None => Entry::delete(key),
    }
}

/// Base A: 6,000 single writes with a flush every 400, closed cleanly.
fn build_clean(dir: &Path, key: &[u8]) -> Vec<Write> {
    let db = Db::open(opts(dir, key)).unwrap();
    let mut history = Vec::new();
    for i in 0..6_000u64 {
        let (k, v) = write_of(i);
        db.write(vec![entry(&k, &v)]).unwrap();
        history.push((i, k, v));
        if i % 400 == 399 {
            db.flush().unwrap();
        }
    }
    db.close().unwrap();
    history
}

/// Base B: batches of 8 writes with `sync_writes` and flushes held at a gate until the copy
/// is taken (a crash image with every acknowledged batch), with 1 KiB inline values so the
/// memtables rotate.
fn build_crashed(dir: &Path, image: &Path, key: &[u8]) -> Vec<Write> {
    let gate = Arc::new(Gate::default());
    let storage = SlowTableStorage {
        inner: Arc::new(FsStorage::new()),
        delay: Duration::ZERO,
        gate: Some(gate.clone()),
    };
    let o = small_options(dir, Arc::new(storage))
        .with_sync_writes(true)
        .with_value_threshold(1_200)
        .with_num_memtables(8)
        .with_encryption_key(key.to_vec());
    let db = Db::open(o).unwrap();
    let mut history = Vec::new();
    for b in 0..420u64 {
        let mut batch = Vec::new();
        for j in 0..8 {
            let i = b * 8 + j;
            let key = format!("key{:04}", (i * 7919) % 600).into_bytes();
            let v = if i % 13 == 6 {
                None
            } else {
                Some(value_for(
                    &key,
                    i,
                    if i.is_multiple_of(5) { 3_000 } else { 1_000 },
                ))
            };
            batch.push(entry(&key, &v));
            history.push((b, key, v));
        }
        db.write(batch).unwrap();
    }
    copy_dir(dir, image);
    gate.open();
    drop(db);
    history
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name != "LOCK" && e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn save_history(path: &Path, h: &[Write]) {
    let mut out = String::new();
    for (i, k, v) in h {
        let v = v.as_deref().map_or_else(|| "-".to_string(), hex);
        let _ = writeln!(out, "{i} {} {v}", hex(k));
    }
    std::fs::write(path, out).unwrap();
}

fn load_history(path: &Path) -> Vec<Write> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            let i = f.next().unwrap().parse().unwrap();
            let k = unhex(f.next().unwrap());
            let v = f.next().unwrap();
            (i, k, (v != "-").then(|| unhex(v)))
        })
        .collect()
}

/// Every key's writes in order: (write index, value).
type Histories = BTreeMap<Vec<u8>, Vec<(u64, Option<Vec<u8>>)>>;

fn histories(h: &[Write]) -> Histories {
    let mut out: Histories = BTreeMap::new();
    for (i, k, v) in h {
        out.entry(k.clone()).or_default().push((*i, v.clone()));
    }
    out
}

fn final_value(writes: &[(u64, Option<Vec<u8>>)]) -> Option<Vec<u8>> {
    writes.last().and_then(|(_, v)| v.clone())
}

/// What a mode observed: per key the value (`Err`: the get failed), and the iteration.
struct Observed {
    gets: BTreeMap<Vec<u8>, Result<Option<Vec<u8>>, String>>,
    scan: Result<BTreeMap<Vec<u8>, Vec<u8>>, String>,
}

fn observe(db: &Db, keys: &[Vec<u8>]) -> Observed {
    let gets = keys
        .iter()
        .map(|k| (k.clone(), db.get(k).map_err(|e| e.to_string())))
        .collect();
    let scan = (|| {
        let mut out = BTreeMap::new();
        for item in db.iter(IteratorOptions::default())? {
            let item = item?;
            out.insert(item.key().to_vec(), item.value()?);
        }
        Ok::<_, settdb::Error>(out)
    })()
    .map_err(|e| e.to_string());
    Observed { gets, scan }
}

/// Classifies an observation against the histories: CORRECT, ERROR, PREFIX or WRONG.
fn classify(o: &Observed, h: &Histories, n_writes: u64) -> (String, String) {
    // Every write index k such that the database equals the model after writes 0..k.
    let mut allowed: Vec<(u64, u64)> = vec![(0, n_writes)];
    let mut error = None;
    let mut exact = true;
    for (k, writes) in h {
        let seen = match o.gets.get(k) {
            Some(Ok(v)) => v.clone(),
            Some(Err(e)) => {
                error.get_or_insert_with(|| e.clone());
                continue;
            }
            None => continue,
        };
        if seen != final_value(writes) {
            exact = false;
        }
        // The state after k writes holds value v_j of write j for j <= k < next write.
        let mut ranges = Vec::new();
        let mut prev_end = 0;
        let mut prev_value: Option<Vec<u8>> = None;
        for (idx, v) in writes {
            if prev_value == seen {
                ranges.push((prev_end, *idx));
            }
            prev_end = *idx + 1;
            prev_value = v.clone();
        }
        if prev_value == seen {
            ranges.push((prev_end, n_writes));
        }
        allowed = intersect(&allowed, &ranges);
        if allowed.is_empty() {
            return (
                "WRONG".into(),
                format!("key {} reads {:?}", show(k), seen.map(|v| v.len())),
            );
        }
    }
    match &o.scan {
        Ok(scan) => {
            for (k, v) in scan {
                match o.gets.get(k) {
                    Some(Ok(Some(g))) if g == v => {}
                    Some(Err(_)) => {}
                    _ => {
                        return (
                            "WRONG".into(),
                            format!("iteration disagrees at {}", show(k)),
                        )
                    }
                }
            }
            for (k, g) in &o.gets {
                if matches!(g, Ok(Some(_))) && !scan.contains_key(k) {
                    return ("WRONG".into(), format!("iteration misses {}", show(k)));
                }
            }
        }
        Err(e) => {
            error.get_or_insert_with(|| e.clone());
        }
    }
    if let Some(e) = error {
        if e.contains('\n') {
            return ("WRONG".into(), format!("an error of several lines: {e}"));
        }
        return ("ERROR".into(), e);
    }
    if exact {
        ("CORRECT".into(), String::new())
    } else {
        (
            "PREFIX".into(),
            format!("as after write {:?}", allowed.first()),
        )
    }
}

fn intersect(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(s1, e1) in a {
        for &(s2, e2) in b {
            let (s, e) = (s1.max(s2), e1.min(e2));
            if s <= e {
                out.push((s, e));
            }
        }
    }
    out
}

fn show(k: &[u8]) -> String {
    String::from_utf8_lossy(k).into_owned()
}

#[test]
#[ignore = "the child process of corruption_campaign, run by it with --ignored"]
fn campaign_child() {
    // Not a test on its own: opens one damaged copy (env) and writes what it saw.
    let (Ok(dir), Ok(model), Ok(out)) = (
        std::env::var("SETTDB_CAMPAIGN_CHILD_DIR"),
        std::env::var("SETTDB_CAMPAIGN_CHILD_MODEL"),
        std::env::var("SETTDB_CAMPAIGN_CHILD_OUT"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let key = key_of(std::env::var("SETTDB_CAMPAIGN_CHILD_ENCRYPTED").is_ok());
    let history = load_history(Path::new(&model));
    let n_writes = history.last().map_or(0, |w| w.0 + 1);
    let h = histories(&history);
    let keys: Vec<Vec<u8>> = h.keys().cloned().collect();
    let mut lines = Vec::new();
    let mut readable: Option<BTreeMap<Vec<u8>, Option<Vec<u8>>>> = None;
    for (mode, read_only) in [("RO", true), ("RW", false)] {
        let before = read_only.then(|| dir_state(&dir));
        match Db::open(opts(&dir, &key).with_read_only(read_only)) {
            Ok(db) => {
                let o = observe(&db, &keys);
                let (outcome, detail) = classify(&o, &h, n_writes);
                if read_only && outcome != "WRONG" {
                    readable = Some(
                        o.gets
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.clone().ok()?)))
                            .collect(),
                    );
                }
                let closed = db.close();
                lines.push(format!("{mode} {outcome} {}", one_line(&detail)));
                if let Err(e) = closed {
                    lines.push(format!("{mode}-CLOSE {}", one_line(&e.to_string())));
                }
            }
            Err(e) => {
                let kind = if e.to_string().contains('\n') {
                    "WRONG"
                } else {
                    "ERROR"
                };
                lines.push(format!("{mode} {kind} open: {}", one_line(&e.to_string())));
            }
        }
        if before.is_some_and(|b| b != dir_state(&dir)) {
            // Rule 7: a read-only open writes nothing, whatever it finds (the last line of a
            // mode is its outcome).
            lines.push(format!(
                "{mode} WRONG a read-only open changed the directory"
            ));
        }
    }
    lines.push(repair_phase(&dir, &key, &h, &keys, readable.as_ref()));
    lines.push("DONE".into());
    std::fs::write(out, lines.join("\n")).unwrap();
}

/// Every file of `dir` but LOCK, with its bytes.
fn dir_state(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "LOCK")
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect();
    out.sort();
    out
}

fn one_line(s: &str) -> String {
    s.replace('\n', "\\n")
}

/// Repairs the copy; checks that it opens and verifies, and that every key readable before
/// (read-only open) reads the same or its final value after.
fn repair_phase(
    dir: &Path,
    key: &[u8],
    h: &Histories,
    keys: &[Vec<u8>],
    readable: Option<&BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
) -> String {
    let report = match settdb::repair(&opts(dir, key)) {
        Ok(r) => r,
        Err(e) => return format!("REPAIR REFUSED {}", one_line(&e.to_string())),
    };
    let verified = match settdb::verify(&opts(dir, key)) {
        Ok(v) => v,
        Err(e) => {
            return format!(
                "REPAIR LOST verify after repair: {}",
                one_line(&e.to_string())
            )
        }
    };
    if !verified.is_ok() {
        let p = verified.problems[0].to_string();
        return format!("REPAIR LOST verify fails after repair: {}", one_line(&p));
    }
    let db = match Db::open(opts(dir, key)) {
        Ok(db) => db,
        Err(e) => {
            return format!(
                "REPAIR LOST open after repair: {}",
                one_line(&e.to_string())
            )
        }
    };
    let mut lost_vs_model = 0;
    for k in keys {
        let after = match db.get(k) {
            Ok(v) => v,
            Err(e) => return format!("REPAIR LOST get after repair: {}", one_line(&e.to_string())),
        };
        let want = final_value(&h[k]);
        if after != want {
            lost_vs_model += 1;
        }
        if let Some(before) = readable.and_then(|r| r.get(k)) {
            if &after != before && after != want {
                let _ = db.close();
                return format!("REPAIR LOST {} was readable before repair", show(k));
            }
        }
    }
    let _ = db.close();
    format!(
        "REPAIR {} keys off the model {lost_vs_model}, values lost {}",
        if report.repaired {
            "KEPT"
        } else {
            "KEPT-UNCHANGED"
        },
        report.values_lost
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Damage {
    BitFlip,
    ZeroRange,
    RandomRange,
    Truncate,
    Delete,
    CopyRegion,
    InsertRegion,
}

const DAMAGES: [Damage; 7] = [
    Damage::BitFlip,
    Damage::ZeroRange,
    Damage::RandomRange,
    Damage::Truncate,
    Damage::Delete,
    Damage::CopyRegion,
    Damage::InsertRegion,
];

/// Applies `d` to `path`; returns a description.
fn damage(path: &Path, d: Damage, rng: &mut StdRng) -> String {
    let mut b = std::fs::read(path).unwrap();
    let len = b.len();
    // Random damage rarely lands on a log's structure; a third of the positions are a batch
    // boundary (or the end of the file header) plus a few bytes.
    let marks = log_marks(path);
    let at = |rng: &mut StdRng| match marks.is_empty() || rng.random_bool(0.67) {
        true => rng.random_range(0..len.max(1)),
        false => (marks[rng.random_range(0..marks.len())] + rng.random_range(0..24)).min(len - 1),
    };
    let span = |rng: &mut StdRng| rng.random_range(1..=len.clamp(1, 4096));
    // A whole batch, for copies and insertions of valid-looking bytes.
    let batch = |rng: &mut StdRng| {
        (marks.len() >= 2).then(|| {
            let i = rng.random_range(0..marks.len() - 1);
            (marks[i], marks[i + 1])
        })
    };
    // The region a copy or an insertion takes: a whole batch 30% of the time, else anywhere.
    let region = |rng: &mut StdRng| match batch(rng).filter(|_| rng.random_bool(0.3)) {
        Some(whole) => whole,
        None => {
            let (from, n) = (at(rng), span(rng));
            (from, (from + n).min(len))
        }
    };
    let what = match d {
        Damage::Delete => {
            std::fs::remove_file(path).unwrap();
            return "deleted".into();
        }
        _ if len == 0 => return "empty file, untouched".into(),
        Damage::BitFlip => {
            let n = rng.random_range(1..=8);
            let mut at_list = Vec::new();
            for _ in 0..n {
                let a = at(rng);
                b[a] ^= 1 << rng.random_range(0..8);
                at_list.push(a);
            }
            format!("{n} bits flipped at {at_list:?}")
        }
        Damage::ZeroRange => {
            let (a, n) = (at(rng), span(rng));
            let e = (a + n).min(len);
            b[a..e].fill(0);
            format!("zeroed [{a}, {e})")
        }
        Damage::RandomRange => {
            let (a, n) = (at(rng), span(rng));
            let e = (a + n).min(len);
            rng.fill(&mut b[a..e]);
            format!("random bytes over [{a}, {e})")
        }
        Damage::Truncate => {
            let n = match rng.random_range(0..10) {
                0..=1 => rng.random_range(0..len.min(48)), // inside a log's file header
                2..=4 if !marks.is_empty() => marks[rng.random_range(0..marks.len())],
                _ => rng.random_range(0..len),
            };
            b.truncate(n);
            format!("truncated to {n} of {len}")
        }
        Damage::CopyRegion => {
            let (from, e) = region(rng);
            let bytes = b[from..e].to_vec();
            let to = at(rng);
            let end = (to + bytes.len()).min(len);
            b[to..end].copy_from_slice(&bytes[..end - to]);
            format!("[{from}, {e}) copied over offset {to}")
        }
        Damage::InsertRegion => {
            let (from, e) = region(rng);
            let bytes = b[from..e].to_vec();
            let to = match rng.random_range(0..4) {
                0 => len,
                1 if !marks.is_empty() => marks[rng.random_range(0..marks.len())],
                _ => rng.random_range(0..=len),
            };
            b.splice(to..to, bytes);
            format!("[{from}, {e}) inserted at offset {to}")
        }
    };
    std::fs::write(path, &b).unwrap();
    what
}

/// The end of the file header and every batch offset of a log file (`.mem`, `.vlog`), and
/// its valid end; empty for other files.
fn log_marks(path: &Path) -> Vec<usize> {
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("mem") => settdb::inspect::LogKind::Wal,
        Some("vlog") => settdb::inspect::LogKind::ValueLog,
        _ => return Vec::new(),
    };
    let Ok(file) = settdb::io::FsStorage::new().open(path, settdb::io::OpenMode::Read) else {
        return Vec::new();
    };
    let mut marks = vec![settdb::inspect::FILE_HEADER_LEN];
    let end = settdb::inspect::replay_log(file.as_ref(), kind, |b| {
        marks.push(b.offset() as usize);
        Ok(())
    });
    if let Ok(end) = end {
        marks.push(end.valid_end as usize);
    }
    let len = file.len().unwrap_or(0) as usize;
    marks.retain(|&m| m < len);
    marks.dedup();
    marks
}

/// The kind of a database file, for the tables.
fn file_kind(name: &str, wals: &[String], vlogs: &[String]) -> &'static str {
    if name == "MANIFEST" {
        "MANIFEST"
    } else if name.ends_with(".sst") {
        "table"
    } else if name.ends_with(".mem") {
        if Some(&name.to_string()) == wals.last() {
            "WAL active"
        } else {
            "WAL rotated"
        }
    } else if name.ends_with(".vlog") {
        if Some(&name.to_string()) == vlogs.last() {
            "vlog newest"
        } else {
            "vlog older"
        }
    } else if name == "DISCARD" {
        "DISCARD"
    } else if name == "KEYREGISTRY" {
        "KEYREGISTRY"
    } else {
        "other"
    }
}

struct Base {
    name: &'static str,
    dir: PathBuf,
    model: PathBuf,
    /// (file name, kind)
    files: Vec<(String, &'static str)>,
}

fn base_files(dir: &Path) -> Vec<(String, &'static str)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "LOCK")
        .collect();
    names.sort();
    let wals: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(".mem"))
        .cloned()
        .collect();
    let vlogs: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(".vlog"))
        .cloned()
        .collect();
    names
        .iter()
        .map(|n| (n.clone(), file_kind(n, &wals, &vlogs)))
        .collect()
}

/// One planned copy.
struct Copy {
    index: usize,
    base: usize,
    file: String,
    kind: &'static str,
    damage: Damage,
}

/// What the child reported for one copy.
#[derive(Default)]
struct Result1 {
    ro: String,
    rw: String,
    repair: String,
    detail: String,
}

fn run_child(copy_dir: &Path, model: &Path, encrypted: bool) -> Result1 {
    let out = copy_dir.with_extension("out");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if encrypted {
        cmd.env("SETTDB_CAMPAIGN_CHILD_ENCRYPTED", "1");
    }
    let mut child = cmd
        .args(["--exact", "campaign_child", "--ignored", "--test-threads=1"])
        .env("SETTDB_CAMPAIGN_CHILD_DIR", copy_dir)
        .env("SETTDB_CAMPAIGN_CHILD_MODEL", model)
        .env("SETTDB_CAMPAIGN_CHILD_OUT", &out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let mut r = Result1::default();
    let Some(status) = status else {
        r.ro = "HANG".into();
        r.rw = "HANG".into();
        r.repair = "HANG".into();
        return r;
    };
    if !text.ends_with("DONE") || !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        r.ro = "PANIC".into();
        r.rw = "PANIC".into();
        r.repair = "PANIC".into();
        r.detail = err
            .lines()
            .find(|l| l.contains("panicked") || l.contains("error"))
            .unwrap_or("")
            .to_string();
        return r;
    }
    for line in text.lines() {
        let mut f = line.splitn(3, ' ');
        let (tag, outcome, rest) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next());
        match tag {
            "RO" => r.ro = outcome.into(),
            "RW" => r.rw = outcome.into(),
            "REPAIR" => r.repair = outcome.into(),
            _ => {}
        }
        if matches!(outcome, "WRONG" | "LOST" | "REFUSED") {
            let _ = write!(r.detail, "{tag}: {} ", rest.unwrap_or(""));
        }
    }
    r
}

#[test]
fn corruption_campaign() {
    run_campaign(false, CI_COPIES);
}

#[test]
fn corruption_campaign_encrypted() {
    // The same campaign on encrypted databases (issue 10): damage to tables, WALs and the
    // value log must give the same zero wrong values; KEYREGISTRY is one more file kind.
    run_campaign(true, CI_COPIES_ENCRYPTED);
}

fn run_campaign(encrypted: bool, ci_copies: usize) {
    let seed = seed(rand::rng().random());
    let key = key_of(encrypted);
    eprintln!("encrypted: {encrypted}");
    let copies: usize = std::env::var("SETTDB_CAMPAIGN_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ci_copies);
    let only: Option<usize> = std::env::var("SETTDB_CAMPAIGN_ONLY")
        .ok()
        .and_then(|v| v.parse().ok());
    let keep = std::env::var("SETTDB_CAMPAIGN_KEEP").is_ok();
    let work = tempfile::tempdir().unwrap();
    let a_dir = work.path().join("base-a");
    let a_hist = build_clean(&a_dir, &key);
    let b_dir = work.path().join("base-b");
    let b_hist = build_crashed(&work.path().join("base-b-live"), &b_dir, &key);
    let mut bases = Vec::new();
    for (name, dir, hist) in [("A", a_dir, a_hist), ("B", b_dir, b_hist)] {
        let model = work.path().join(format!("model-{name}"));
        save_history(&model, &hist);
        let files = base_files(&dir);
        eprintln!("base {name}: {:?}", files);
        bases.push(Base {
            name,
            dir,
            model,
            files,
        });
    }
    assert!(
        bases[1]
            .files
            .iter()
            .filter(|f| f.1 == "WAL rotated")
            .count()
            >= 2,
        "base B needs rotated WALs"
    );
    // Plan: round-robin over every (base, file kind, damage) so each pair is covered; a
    // random file of that kind.
    let mut pairs = Vec::new();
    for (bi, b) in bases.iter().enumerate() {
        let mut kinds: Vec<&'static str> = b.files.iter().map(|f| f.1).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            for d in DAMAGES {
                pairs.push((bi, kind, d));
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let plan: Vec<Copy> = (0..copies)
        .map(|index| {
            let (base, kind, damage) = pairs[index % pairs.len()];
            let candidates: Vec<&String> = bases[base]
                .files
                .iter()
                .filter(|f| f.1 == kind)
                .map(|f| &f.0)
                .collect();
            let file = candidates[rng.random_range(0..candidates.len())].clone();
            Copy {
                index,
                base,
                file,
                kind,
                damage,
            }
        })
        .filter(|c| only.is_none_or(|o| o == c.index))
        .collect();
    let results: Mutex<Vec<(usize, Result1, String)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = plan.get(i) else { break };
                let base = &bases[c.base];
                let dir = work.path().join(format!("copy-{}", c.index));
                copy_dir(&base.dir, &dir);
                let mut crng = StdRng::seed_from_u64(seed ^ (c.index as u64).wrapping_mul(0x9e37));
                let what = damage(&dir.join(&c.file), c.damage, &mut crng);
                let r = run_child(&dir, &base.model, encrypted);
                let failed = is_failure(&r, base.name, c.kind);
                if !failed || !keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                results.lock().unwrap().push((c.index, r, what));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    eprintln!(
        "{} copies in {:.0}s (seed {seed})",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    print_tables(&plan, &bases, &results);
    let mut failures = Vec::new();
    for (index, r, what) in &results {
        let c = &plan.iter().find(|c| c.index == *index).unwrap();
        let base = &bases[c.base];
        if is_failure(r, base.name, c.kind) {
            failures.push(format!(
                "copy {index}: base {} {} ({}) {:?} {what}: RO {} RW {} repair {} {}",
                base.name, c.file, c.kind, c.damage, r.ro, r.rw, r.repair, r.detail
            ));
        }
    }
    for f in failures.iter().take(40) {
        eprintln!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} failing copies (seed {seed}; rerun one with SETTDB_SEED={seed} SETTDB_CAMPAIGN_ONLY=<copy> SETTDB_CAMPAIGN_KEEP=1)",
        failures.len()
    );
}

/// True for an outcome the campaign must never see: WRONG, PANIC, HANG, a PREFIX outside the
/// unsynced ends a crash can tear, and a repair that lost a readable key.
fn is_failure(r: &Result1, base: &str, kind: &str) -> bool {
    let prefix_ok = base == "B" && matches!(kind, "WAL active" | "vlog newest");
    let bad = |o: &str| match o {
        "CORRECT" | "ERROR" => false,
        "PREFIX" => !prefix_ok,
        _ => true,
    };
    // Verify passing (repair had nothing to do) while an open fails would be verify saying OK
    // about a database an open refuses.
    let verify_blind = r.repair == "KEPT-UNCHANGED" && (r.ro == "ERROR" || r.rw == "ERROR");
    // A damaged key registry loses the data keys: nothing can be decrypted, so repair can
    // only refuse (with a typed error); every read refused too (ERROR above).
    let repair_ok = match kind {
        "KEYREGISTRY" => matches!(r.repair.as_str(), "KEPT" | "KEPT-UNCHANGED" | "REFUSED"),
        _ => matches!(r.repair.as_str(), "KEPT" | "KEPT-UNCHANGED"),
    };
    bad(&r.ro) || bad(&r.rw) || verify_blind || !repair_ok
}

fn print_tables(plan: &[Copy], bases: &[Base], results: &[(usize, Result1, String)]) {
    let outcomes = ["CORRECT", "ERROR", "PREFIX", "WRONG", "PANIC", "HANG"];
    let repairs = ["KEPT", "KEPT-UNCHANGED", "REFUSED", "LOST", "PANIC", "HANG"];
    let mut by_kind: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut by_damage: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (index, r, _) in results {
        let c = plan.iter().find(|c| c.index == *index).unwrap();
        let row = format!("{} {}", bases[c.base].name, c.kind);
        for (mode, o) in [("RO", &r.ro), ("RW", &r.rw), ("repair", &r.repair)] {
            *by_kind
                .entry(row.clone())
                .or_default()
                .entry(format!("{mode} {o}"))
                .or_default() += 1;
            *by_damage
                .entry(format!("{:?}", c.damage))
                .or_default()
                .entry(format!("{mode} {o}"))
                .or_default() += 1;
        }
    }
    for (title, table) in [("file kind", &by_kind), ("damage", &by_damage)] {
        let mut out = format!("\n| {title} | copies |");
        for mode in ["RO", "RW"] {
            for o in outcomes {
                let _ = write!(out, " {mode} {o} |");
            }
        }
        for o in repairs {
            let _ = write!(out, " repair {o} |");
        }
        out.push_str("\n|---|---|");
        out.push_str(&"---|".repeat(outcomes.len() * 2 + repairs.len()));
        for (row, counts) in table {
            let n: usize = counts
                .iter()
                .filter(|(k, _)| k.starts_with("RO "))
                .map(|(_, v)| v)
                .sum();
            let _ = write!(out, "\n| {row} | {n} |");
            for mode in ["RO", "RW"] {
                for o in outcomes {
                    let v = counts.get(&format!("{mode} {o}")).copied().unwrap_or(0);
                    let _ = write!(out, " {v} |");
                }
            }
            for o in repairs {
                let v = counts.get(&format!("repair {o}")).copied().unwrap_or(0);
                let _ = write!(out, " {v} |");
            }
        }
        eprintln!("{out}");
    }
}

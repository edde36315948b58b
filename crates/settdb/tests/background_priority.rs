//! `Options::background_nice`: the compaction and value-log GC threads run at the nice value
//! asked (default 0: unchanged), and the threads that serve writes (writer, flusher) and the
//! application's own threads keep theirs. One test in this binary: it reads the nice value of
//! every thread of the process from /proc, so no other test's database may be open meanwhile.
#![cfg(target_os = "linux")]

use settdb::{Db, Options};

/// (thread name, nice value) of every thread of this process.
fn threads() -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = entry.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended while we looked
        };
        // Fields after the command name's closing ')': state is the first, nice the 17th.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let nice = after.split_whitespace().nth(16).unwrap().parse().unwrap();
        out.push((comm.trim().to_string(), nice));
    }
    out
}

/// The nice values of the threads whose name starts with `prefix`.
fn nice_of(prefix: &str) -> Vec<i32> {
    threads()
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, nice)| nice)
        .collect()
}

#[test]
fn background_threads_run_at_the_nice_value_asked() {
    let dir = tempfile::tempdir().unwrap();
    for (opts, want) in [
        (Options::new(dir.path()).with_background_nice(10), 10),
        (Options::new(dir.path()).with_background_nice(3), 3),
        (Options::new(dir.path()), 0),
    ] {
        assert_eq!(opts.background_nice, want);
        let db = Db::open(opts).unwrap();
        // A thread names itself and lowers its priority once it runs: wait for that (at
        // most 5 s), then check.
        let settled = || {
            nice_of("settdb-compacto") == vec![want; 4]
                && nice_of("settdb-vlog-gc") == vec![want]
                && nice_of("settdb-writer").len() == 1
                && nice_of("settdb-flusher").len() == 1
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !settled() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            nice_of("settdb-compacto"),
            vec![want; 4],
            "compactor threads"
        );
        assert_eq!(nice_of("settdb-vlog-gc"), vec![want], "value-log GC thread");
        for foreground in ["settdb-writer", "settdb-flusher"] {
            assert_eq!(nice_of(foreground), vec![0], "{foreground}");
        }
        db.set(b"k", b"v").unwrap();
        db.close().unwrap();
        assert!(nice_of("settdb-").is_empty(), "threads left after close");
    }
    // The test's own thread was never touched.
    assert!(threads()
        .iter()
        .all(|(n, nice)| n.starts_with("settdb") || *nice == 0));
}

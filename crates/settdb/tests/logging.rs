//! Logging: the engine's `tracing` events reach a subscriber the application installs: open,
//! a flush and a compaction (from their background threads too) at info with structured
//! fields, and a background flush that fails logs at error. One test in this binary: the
//! subscriber is global (background threads do not see a thread-local default).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::small_options;
use settdb::io::{Fault, FaultKind, FaultOp, SimStorage};
use settdb::Db;
use tracing_subscriber::fmt::MakeWriter;

/// Every line written by the subscriber, kept.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// What was written since the last call.
    fn take(&self) -> String {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8(bytes).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The lines of `log` that hold `needle`.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn open_flush_compaction_and_a_failed_background_flush_are_logged() {
    // Proves the events and their levels: a database opened, written, flushed, flattened and
    // closed logs each step at INFO with its fields (flush: table bytes, versions dropped;
    // compaction: levels, bytes, duration) and WAL replay at DEBUG; a flush failing on its
    // table file logs an ERROR from the flusher thread naming the failure.
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let sim = SimStorage::new();
    let opts = small_options("/db".as_ref(), Arc::new(sim.clone())).with_num_compactors(0);
    let db = Db::open(opts.clone()).unwrap();
    for i in 0..200u32 {
        db.set(format!("key{i:04}"), vec![7u8; 100]).unwrap();
    }
    db.close().unwrap();
    let db = Db::open(opts.clone()).unwrap();
    for v in ["x", "y", "z"] {
        db.set("more", v).unwrap(); // nothing reads: the flush drops the two older ones
    }
    db.flush().unwrap();
    db.flatten().unwrap();
    db.close().unwrap();
    let log = captured.take();
    let opened = lines_with(&log, "opened the database");
    assert_eq!(opened.len(), 2, "{log}");
    assert!(opened
        .iter()
        .all(|l| l.contains("INFO") && l.contains("dir=/db")));
    assert!(!lines_with(&log, "open: WAL replayed").is_empty(), "{log}");
    let flushes = lines_with(&log, "flushed a memtable to L0");
    assert!(flushes.len() >= 2, "{log}");
    assert!(flushes
        .iter()
        .all(|l| l.contains("INFO") && l.contains("table_bytes=")));
    assert!(flushes[0].contains("versions_dropped=0"), "{}", flushes[0]);
    assert!(
        flushes.iter().any(|l| l.contains("versions_dropped=2")),
        "{log}"
    );
    let compactions = lines_with(&log, "compaction done");
    assert!(!compactions.is_empty(), "{log}");
    for field in ["from_level=0", "bytes_in=", "bytes_out=", "duration_ms="] {
        assert!(
            compactions[0].contains(field),
            "{field}: {}",
            compactions[0]
        );
    }
    assert_eq!(lines_with(&log, "closed the database").len(), 2, "{log}");
    assert!(lines_with(&log, "ERROR").is_empty(), "{log}");

    let db = Db::open(opts).unwrap();
    db.set("k", "v").unwrap();
    sim.inject(Fault::new(FaultOp::Open, FaultKind::Eio).path_contains(".sst"));
    assert!(db.flush().is_err());
    sim.clear_faults();
    let _ = db.close();
    let log = captured.take();
    let failed = lines_with(&log, "flush failed");
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains("ERROR") && failed[0].contains("error="),
        "{}",
        failed[0]
    );
}

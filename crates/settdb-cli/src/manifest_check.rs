//! [`ManifestCheck`]: the MANIFEST against the directory listing, read directly from the
//! files without opening the database, so that it works on a damaged directory too (Badger's
//! `info` does the same first): tables the MANIFEST lists whose file is missing, and `.sst`
//! files it does not list.

use std::collections::BTreeMap;
use std::path::Path;

use settdb::inspect::{parse_table_file_name, table_file_name};
use settdb::inspect::{replay_file, Replayed, MANIFEST_FILE_NAME, MANIFEST_REWRITE_FILE_NAME};
use settdb::io::{FsStorage, OpenMode, Storage};

use crate::units::{fmt_bytes, plural};

/// Levels accepted while replaying: every level the format can store (a u8), so that the
/// check reports what is there whatever `max_levels` the database was opened with.
const REPLAY_MAX_LEVELS: usize = u8::MAX as usize + 1;

/// What the MANIFEST and the directory say.
#[derive(Debug)]
pub struct ManifestCheck {
    /// The replayed MANIFEST, or why it could not be replayed.
    pub replayed: Result<Replayed, settdb::Error>,
    /// Tables listed whose file does not exist: (table id, level).
    pub missing: Vec<(u64, u8)>,
    /// `.sst` files the MANIFEST does not list.
    pub unlisted: Vec<String>,
    /// A `MANIFEST-REWRITE` is present (a rewrite a crash interrupted).
    pub rewrite_leftover: bool,
}

impl ManifestCheck {
    /// Replays `dir`'s MANIFEST read-only and compares it with the `.sst` files in `dir`.
    pub fn run(dir: &Path) -> std::io::Result<ManifestCheck> {
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let storage = FsStorage::new();
        let replayed = storage
            .open(&dir.join(MANIFEST_FILE_NAME), OpenMode::Read)
            .and_then(|f| replay_file(f.as_ref(), REPLAY_MAX_LEVELS, 0));
        let listed: BTreeMap<u64, u8> = match &replayed {
            Ok(r) => r
                .manifest
                .tables()
                .iter()
                .map(|(&id, t)| (id, t.level))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let missing = listed
            .iter()
            .filter(|(&id, _)| !names.contains(&table_file_name(id)))
            .map(|(&id, &level)| (id, level))
            .collect();
        let unlisted = names
            .iter()
            .filter(|n| n.ends_with(".sst"))
            .filter(|n| {
                parse_table_file_name(n)
                    .is_none_or(|id| !listed.contains_key(&id) || table_file_name(id) != **n)
            })
            .cloned()
            .collect();
        Ok(ManifestCheck {
            rewrite_leftover: names.iter().any(|n| n == MANIFEST_REWRITE_FILE_NAME),
            replayed,
            missing,
            unlisted,
        })
    }

    /// True if the MANIFEST replayed and every table it lists has its file.
    pub fn is_consistent(&self) -> bool {
        self.replayed.is_ok() && self.missing.is_empty()
    }

    /// Problems that make the database unreadable, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.replayed {
            out.push(format!("MANIFEST: {e}"));
        }
        for (id, level) in &self.missing {
            out.push(format!(
                "MANIFEST lists table {id} at L{level}, but its file {} is missing",
                table_file_name(*id)
            ));
        }
        out
    }

    /// The report `info` prints.
    pub fn print(&self) {
        match &self.replayed {
            Ok(r) => {
                let m = &r.manifest;
                let per_level: Vec<String> = (0..REPLAY_MAX_LEVELS)
                    .filter_map(|l| {
                        m.level_tables(l)
                            .filter(|t| !t.is_empty())
                            .map(|t| (l, t.len()))
                    })
                    .map(|(l, n)| format!("L{l} {n}"))
                    .collect();
                println!(
                    "MANIFEST ({}): {} listed{}{}",
                    fmt_bytes(r.valid_len),
                    plural(m.live_tables(), "table"),
                    if per_level.is_empty() { "" } else { ": " },
                    per_level.join(", ")
                );
                if r.tail_dropped() {
                    println!(
                        "  {} of torn tail after the last complete edit, ignored (a crash cut an \
                         append; the next read-write open truncates it)",
                        fmt_bytes(r.file_len - r.valid_len)
                    );
                }
            }
            Err(e) => println!("MANIFEST: cannot be read: {e}"),
        }
        for p in self
            .problems()
            .iter()
            .skip(usize::from(self.replayed.is_err()))
        {
            println!("  MISSING: {p}");
        }
        for name in &self.unlisted {
            println!(
                "  not in the MANIFEST: {name} (an open removes it only if the MANIFEST proves it garbage; `settdb verify` says which)"
            );
        }
        if self.rewrite_leftover {
            println!("  {MANIFEST_REWRITE_FILE_NAME} present: an interrupted rewrite (the MANIFEST is intact); the next read-write open removes it");
        }
        if self.is_consistent() && self.unlisted.is_empty() {
            println!("  every listed table has its file, and no .sst file is unlisted");
        }
    }
}

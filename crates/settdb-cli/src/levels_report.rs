//! Tables of the levels of an open database, as `info` and `flatten` print them.

use settdb::inspect::LevelsSnapshot;

use crate::encoding::display_key;
use crate::units::{fmt_bytes, fmt_count};

/// Characters of a key shown in the table list.
const KEY_CHARS: usize = 24;

/// Totals over the tables of some levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelTotals {
    /// Tables.
    pub tables: u64,
    /// Bytes of their files.
    pub bytes: u64,
    /// Entries (every version and tombstone).
    pub entries: u64,
    /// Distinct user keys per table, summed (counts a key once per table holding it).
    pub keys: u64,
}

/// Totals of `level` in `snapshot`.
pub fn level_totals(snapshot: &LevelsSnapshot, level: usize) -> LevelTotals {
    let tables = snapshot.tables(level);
    LevelTotals {
        tables: tables.len() as u64,
        bytes: tables.iter().map(|t| t.size_bytes()).sum(),
        entries: tables.iter().map(|t| t.table().entry_count()).sum(),
        keys: tables.iter().map(|t| t.table().user_key_count()).sum(),
    }
}

/// Totals of every level.
pub fn all_totals(snapshot: &LevelsSnapshot) -> LevelTotals {
    (0..snapshot.level_count())
        .map(|l| level_totals(snapshot, l))
        .fold(LevelTotals::default(), |a, b| LevelTotals {
            tables: a.tables + b.tables,
            bytes: a.bytes + b.bytes,
            entries: a.entries + b.entries,
            keys: a.keys + b.keys,
        })
}

/// One line per level (empty ones too) and a total line.
pub fn print_levels(snapshot: &LevelsSnapshot) {
    println!(
        "  {:<6} {:>7} {:>12} {:>14} {:>14}",
        "level", "tables", "size", "entries", "keys"
    );
    let row = |name: &str, t: LevelTotals| {
        println!(
            "  {:<6} {:>7} {:>12} {:>14} {:>14}",
            name,
            fmt_count(t.tables),
            fmt_bytes(t.bytes),
            fmt_count(t.entries),
            fmt_count(t.keys)
        );
    };
    for level in 0..snapshot.level_count() {
        row(&format!("L{level}"), level_totals(snapshot, level));
    }
    row("total", all_totals(snapshot));
}

/// One line per table: id, level, size, entries, key range, newest version.
pub fn print_tables(snapshot: &LevelsSnapshot) {
    println!(
        "  {:>8} {:>5} {:>10} {:>10} {:>10}  key range",
        "table", "level", "size", "entries", "version"
    );
    for level in 0..snapshot.level_count() {
        for t in snapshot.tables(level) {
            println!(
                "  {:>8} {:>5} {:>10} {:>10} {:>10}  {} .. {}",
                t.id(),
                format!("L{level}"),
                fmt_bytes(t.size_bytes()),
                fmt_count(t.table().entry_count()),
                t.table().max_version(),
                display_key(t.smallest_user_key(), KEY_CHARS),
                display_key(t.biggest_user_key(), KEY_CHARS),
            );
        }
    }
}

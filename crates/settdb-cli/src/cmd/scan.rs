//! `settdb scan`: prints keys and values in key order through a read-only transaction's
//! iterator, so the output is one consistent snapshot (the read timestamp when it began).
//!
//! Output, one line per item on stdout:
//! ```text
//! default           key<TAB>value
//! --keys-only       key
//! --all-versions    key<TAB>version<TAB>set<TAB>value      a value
//!                   key<TAB>version<TAB>expired<TAB>value  a value past its TTL
//!                   key<TAB>version<TAB>deleted            a delete (tombstone)
//! ```
//! Keys and values are text ([`escape_text`]: UTF-8 as is, tabs, newlines, backslashes,
//! control characters and bytes that are not UTF-8 escaped, so a line is always one item) or,
//! with `--hex`, lower-case hexadecimal. With `--keys-only` values are not read from the
//! value log. A closed pipe (`settdb scan ... | head`) ends the scan quietly.

use std::io::{BufWriter, Write};

use settdb::{Item, IteratorOptions, Txn};

use crate::cli_error::{CliError, CliResult};
use crate::db_dir::DirArgs;
use crate::encoding::{encode_hex, escape_text, Encoding};

/// Flags of `scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
    /// Only keys starting with these bytes (text, or hexadecimal with --hex).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// From the largest key down.
    #[arg(long)]
    pub reverse: bool,
    /// Print at most this many lines.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Keys, values and --prefix in hexadecimal instead of escaped text.
    #[arg(long)]
    pub hex: bool,
    /// Print keys only (values are not read).
    #[arg(long)]
    pub keys_only: bool,
    /// Every version of each key (newest first; oldest first with --reverse), deletes and
    /// expired values included, with its version and state.
    #[arg(long)]
    pub all_versions: bool,
}

/// Why the scan stopped early.
enum Stop {
    /// The database failed (I/O, corruption).
    Db(settdb::Error),
    /// Stdout failed; a closed pipe is a normal end.
    Output(std::io::Error),
}

/// Runs `scan`.
pub fn run(args: ScanArgs) -> CliResult {
    let encoding = Encoding::from_hex_flag(args.hex);
    let prefix = match &args.prefix {
        Some(p) => encoding.decode(p, "prefix")?,
        None => Vec::new(),
    };
    let opts = IteratorOptions::default()
        .with_prefix(prefix)
        .with_reverse(args.reverse)
        .with_all_versions(args.all_versions)
        .with_prefetch_values(!args.keys_only);
    let db = args.dirs.open_read_only()?;
    let scanned = db
        .new_transaction(false)
        .map_err(Stop::Db)
        .and_then(|txn| print_items(&txn, opts, &args));
    let closed = db.close();
    match scanned {
        Ok(()) => {}
        Err(Stop::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(Stop::Output(e)) => {
            return Err(CliError::new(format!("cannot write to stdout: {e}")));
        }
        Err(Stop::Db(e)) => return Err(args.dirs.error(e)),
    }
    closed.map_err(|e| args.dirs.error(e))
}

/// Prints the items `opts` selects in `txn`, at most `args.limit` of them.
fn print_items(txn: &Txn, opts: IteratorOptions, args: &ScanArgs) -> Result<(), Stop> {
    let mut it = txn.iter(opts).map_err(Stop::Db)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut line = String::new();
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    it.rewind().map_err(Stop::Db)?;
    while printed < limit && it.valid() {
        line.clear();
        format_line(it.item(), args, &mut line).map_err(Stop::Db)?;
        out.write_all(line.as_bytes()).map_err(Stop::Output)?;
        printed += 1;
        // Not past the last item printed: the next one's value would be read for nothing.
        if printed < limit {
            it.next().map_err(Stop::Db)?;
        }
    }
    out.flush().map_err(Stop::Output)
}

/// Appends the line for `item` (with its newline) to `line`.
fn format_line(item: &Item, args: &ScanArgs, line: &mut String) -> settdb::Result<()> {
    let put = |bytes: &[u8], line: &mut String| {
        if args.hex {
            line.push_str(&encode_hex(bytes));
        } else {
            escape_text(bytes, line);
        }
    };
    put(item.key(), line);
    let mut with_value = !args.keys_only;
    if args.all_versions {
        let state = if item.meta() & settdb::value::meta::DELETE != 0 {
            with_value = false;
            "deleted"
        } else if item.is_deleted_or_expired() {
            "expired"
        } else {
            "set"
        };
        line.push_str(&format!("\t{}\t{state}", item.version()));
    }
    if with_value {
        line.push('\t');
        item.value_with(|v| put(v, line))?;
    }
    line.push('\n');
    Ok(())
}

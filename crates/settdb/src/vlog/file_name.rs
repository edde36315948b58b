//! Names of value-log files.
//!
//! ```text
//! vlog_file_name := file_id (decimal, zero-padded to at least 6 digits) ".vlog"
//! ```
//!
//! `file_id` is a u32 of at least 1. Normative page: docs/format/vlog.md ("Names").

use std::path::Path;

use crate::error::{Error, Result};

/// Extension of a value-log file, with its dot.
pub const VLOG_FILE_EXTENSION: &str = ".vlog";

/// Digits a file id is zero-padded to.
const ID_PAD_DIGITS: usize = 6;

/// The smallest file id; 0 is never written, so a zeroed value pointer never names a file.
pub const FIRST_VLOG_FILE_ID: u32 = 1;

/// File name of value-log file `id`.
pub fn vlog_file_name(id: u32) -> String {
    format!("{id:0width$}{VLOG_FILE_EXTENSION}", width = ID_PAD_DIGITS)
}

/// The id in a directory entry's `name`: `Ok(None)` if the name is not a value-log file's (does
/// not end in `.vlog`), [`Error::Corruption`] naming `dir/name` if it ends in `.vlog` but is not
/// the canonical name of an id (another program's file, or a damaged directory).
pub fn parse_vlog_file_name(dir: &Path, name: &str) -> Result<Option<u32>> {
    let Some(stem) = name.strip_suffix(VLOG_FILE_EXTENSION) else {
        return Ok(None);
    };
    // `u32::from_str` accepts a leading '+'; digits only, then the round trip, rule out
    // every other spelling (no padding, a sign, 0).
    let id = if stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse::<u32>().ok()
    } else {
        None
    };
    match id {
        Some(id) if id >= FIRST_VLOG_FILE_ID && vlog_file_name(id) == name => Ok(Some(id)),
        _ => Err(Error::corruption(
            dir.join(name),
            0,
            format!(
                "a value-log file name must be a file id of at least 1 zero-padded to \
                 {ID_PAD_DIGITS} digits and {VLOG_FILE_EXTENSION}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(name: &str) -> Result<Option<u32>> {
        parse_vlog_file_name(Path::new("d"), name)
    }

    #[test]
    fn canonical_names_parse_and_others_are_ignored_or_refused() {
        // Proves the padding, the ignore rule for foreign names and the refusal of every
        // non-canonical spelling of an id, each by one example.
        assert_eq!(vlog_file_name(1), "000001.vlog");
        assert_eq!(vlog_file_name(1_234_567), "1234567.vlog");
        assert_eq!(parse("000042.vlog").unwrap(), Some(42));
        assert_eq!(parse("4294967295.vlog").unwrap(), Some(u32::MAX));
        for foreign in ["DISCARD", "000001.vlog.tmp", "000001.mem", "vlog", "LOCK"] {
            assert_eq!(parse(foreign).unwrap(), None, "{foreign}");
        }
        for bad in [
            ".vlog",
            "abc.vlog",
            "1.vlog",
            "00001.vlog",
            "0000001.vlog",
            "000000.vlog",
            "+00001.vlog",
            "4294967296.vlog",
            "00000١.vlog",
        ] {
            match parse(bad) {
                Err(Error::Corruption {
                    file, offset: 0, ..
                }) => {
                    assert_eq!(file, Path::new("d").join(bad))
                }
                other => panic!("{bad}: expected Corruption, got {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn ids_round_trip(id in FIRST_VLOG_FILE_ID..=u32::MAX) {
            // Proves every writable id's name parses back to it.
            prop_assert_eq!(parse(&vlog_file_name(id)).unwrap(), Some(id));
        }

        #[test]
        fn random_names_never_panic(name in "\\PC{0,12}(\\.vlog)?") {
            // Proves arbitrary names parse, are ignored or are refused, and a parsed name is
            // canonical.
            if let Ok(Some(id)) = parse(&name) {
                prop_assert_eq!(vlog_file_name(id), name);
            }
        }
    }
}

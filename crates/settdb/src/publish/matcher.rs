//! [`Match`]: which keys a subscription wants (Badger's `pb.Match`): a prefix, and byte
//! positions of that prefix that match any byte (Badger's `IgnoreBytes`, `"1, 2-3, 4-7"`).
//!
//! A key matches when it is at least as long as the prefix and equals it at every position
//! that is not ignored. Positions count from 0 and ranges are inclusive, as in Badger; an
//! ignored position at or past the prefix's end changes nothing.

use std::ops::RangeInclusive;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::into_bytes::IntoBytes;

/// Which keys a subscription receives: those starting with `prefix`, where the byte positions
/// in `ignore_bytes` match any byte (Badger's `pb.Match`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Match {
    /// The prefix; empty matches every key.
    pub prefix: Bytes,
    /// Positions of the prefix (from 0, inclusive ranges) that match any byte.
    pub ignore_bytes: Vec<RangeInclusive<usize>>,
}

impl Match {
    /// Keys starting with `prefix`.
    pub fn prefix(prefix: impl IntoBytes) -> Match {
        Match {
            prefix: prefix.into_bytes(),
            ignore_bytes: Vec::new(),
        }
    }

    /// This match, with the positions in `range` matching any byte.
    #[must_use]
    pub fn ignoring(mut self, range: RangeInclusive<usize>) -> Match {
        self.ignore_bytes.push(range);
        self
    }

    /// This match, with the positions Badger's ignore-bytes text names (`"1, 2-3, 4-7"`; see
    /// [`Match::parse_ignore_bytes`]) matching any byte.
    ///
    /// Errors: [`Error::InvalidIgnoreBytes`].
    pub fn with_ignore_bytes(mut self, spec: &str) -> Result<Match> {
        self.ignore_bytes.extend(Match::parse_ignore_bytes(spec)?);
        Ok(self)
    }

    /// Parses Badger's ignore-bytes text: comma-separated positions (`4`) or inclusive
    /// ranges (`2-3`), spaces allowed around each; the empty text ignores nothing.
    ///
    /// Errors: [`Error::InvalidIgnoreBytes`] for an empty item, a part that is not a
    /// non-negative decimal number, more than one `-` in an item, or a range whose end is
    /// below its start.
    pub fn parse_ignore_bytes(spec: &str) -> Result<Vec<RangeInclusive<usize>>> {
        if spec.trim().is_empty() {
            return Ok(Vec::new());
        }
        let bad = |reason: String| Error::InvalidIgnoreBytes {
            spec: spec.to_string(),
            reason,
        };
        let mut out = Vec::new();
        for item in spec.split(',') {
            let parts: Vec<&str> = item.split('-').map(str::trim).collect();
            let number = |p: &str| {
                p.parse::<usize>()
                    .map_err(|_| bad(format!("{p:?} is not a byte position")))
            };
            let range = match parts.as_slice() {
                [one] => {
                    let at = number(one)?;
                    at..=at
                }
                [start, end] => {
                    let (start, end) = (number(start)?, number(end)?);
                    if end < start {
                        return Err(bad(format!("range {start}-{end} ends before it starts")));
                    }
                    start..=end
                }
                _ => {
                    return Err(bad(format!(
                        "{:?} is not a position or a range",
                        item.trim()
                    )))
                }
            };
            out.push(range);
        }
        Ok(out)
    }

    /// True if `key` matches (module doc).
    pub fn matches(&self, key: &[u8]) -> bool {
        CompiledMatch::new(self).matches(key)
    }
}

/// A [`Match`] in the form the writer checks fast: the prefix and, only if some position is
/// ignored, one flag per prefix byte.
#[derive(Clone, Debug)]
pub(crate) struct CompiledMatch {
    prefix: Bytes,
    /// Empty when no position of the prefix is ignored; else `prefix.len()` flags.
    ignored: Vec<bool>,
}

impl CompiledMatch {
    pub(crate) fn new(m: &Match) -> CompiledMatch {
        let len = m.prefix.len();
        let mut ignored = vec![false; len];
        for r in &m.ignore_bytes {
            let end = (*r.end()).min(len.saturating_sub(1));
            for flag in ignored.iter_mut().take(end + 1).skip(*r.start()) {
                *flag = true;
            }
        }
        if !ignored.contains(&true) {
            ignored.clear();
        }
        CompiledMatch {
            prefix: m.prefix.clone(),
            ignored,
        }
    }

    pub(crate) fn matches(&self, key: &[u8]) -> bool {
        if self.ignored.is_empty() {
            return key.starts_with(&self.prefix);
        }
        debug_assert_eq!(self.ignored.len(), self.prefix.len());
        key.len() >= self.prefix.len()
            && self
                .prefix
                .iter()
                .zip(key)
                .zip(&self.ignored)
                .all(|((p, k), ignored)| *ignored || p == k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_badgers_text_and_refuses_bad_items() {
        // Proves Badger's syntax parses to inclusive ranges and each malformed form is a
        // typed error naming the text.
        assert_eq!(Match::parse_ignore_bytes("").unwrap(), vec![]);
        assert_eq!(
            Match::parse_ignore_bytes("1, 2-3, 4-7").unwrap(),
            vec![1..=1, 2..=3, 4..=7]
        );
        assert_eq!(Match::parse_ignore_bytes(" 0 - 0 ").unwrap(), vec![0..=0]);
        for bad in [
            "1,,2",
            "a",
            "-1",
            "1-2-3",
            "3-1",
            "1,",
            "99999999999999999999999",
        ] {
            match Match::parse_ignore_bytes(bad) {
                Err(Error::InvalidIgnoreBytes { spec, .. }) => assert_eq!(spec, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn ignored_positions_match_any_byte_and_keys_must_cover_the_prefix() {
        // Proves the match rule: ignored positions are wildcards, others must be equal, a key
        // shorter than the prefix never matches, ignores past the prefix change nothing.
        let m = Match::prefix(&b"a??c"[..])
            .with_ignore_bytes("1-2")
            .unwrap();
        assert!(m.matches(b"axyc"));
        assert!(m.matches(b"a\x00\xffcde"));
        assert!(!m.matches(b"axyd"));
        assert!(!m.matches(b"axy"));
        assert!(!m.matches(b"bxyc"));
        let m = Match::prefix(&b"ab"[..]).ignoring(5..=9);
        assert!(m.matches(b"abc") && !m.matches(b"ac"));
        assert!(Match::prefix(Bytes::new()).matches(b"anything"));
        assert!(Match::prefix(&b"k"[..]).ignoring(0..=0).matches(b"z"));
    }
}

//! [`PathKey`]: a path normalised to its components, the one key the simulated file system
//! looks names up by.
//!
//! Normalisation is lexical: `.` is dropped, `..` pops a component (never above the root) and a
//! relative path is read from the root, as if the process ran with `/` as its working
//! directory. So `a/./b`, `/a/b` and `a/c/../b` are the same key.

use std::fmt;
use std::path::{Component, Path};

/// A normalised path: the names from the root down. The empty key is the root directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PathKey(Vec<String>);

impl PathKey {
    /// Normalises `path` (see the module doc).
    pub(super) fn new(path: &Path) -> Self {
        let mut names = Vec::new();
        for c in path.components() {
            match c {
                Component::Prefix(_) | Component::RootDir => names.clear(),
                Component::CurDir => {}
                Component::ParentDir => {
                    names.pop();
                }
                // A name that is not UTF-8 is kept lossily: the engine only makes UTF-8 names.
                Component::Normal(n) => names.push(n.to_string_lossy().into_owned()),
            }
        }
        PathKey(names)
    }

    /// The names from the root down.
    pub(super) fn names(&self) -> &[String] {
        &self.0
    }

    /// The parent directory's key and the last name; `None` for the root.
    pub(super) fn split_last(&self) -> Option<(PathKey, &str)> {
        let (last, parent) = self.0.split_last()?;
        Some((PathKey(parent.to_vec()), last.as_str()))
    }

    /// The key of the first `n` names (an ancestor, or `self` if `n` is too large).
    pub(super) fn prefix(&self, n: usize) -> PathKey {
        PathKey(self.0.iter().take(n).cloned().collect())
    }

    /// True if `self` is `other` or lies below it.
    pub(super) fn starts_with(&self, other: &PathKey) -> bool {
        self.0.starts_with(&other.0)
    }
}

impl fmt::Display for PathKey {
    /// `/a/b`; `/` for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for n in &self.0 {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> PathKey {
        PathKey::new(Path::new(s))
    }

    #[test]
    fn equivalent_spellings_are_one_key() {
        // Proves `.`, `..`, a leading `/` and repeated separators do not change the key.
        assert_eq!(key("a/./b"), key("a/b"));
        assert_eq!(key("/a/b"), key("a/b"));
        assert_eq!(key("a//c/../b/"), key("a/b"));
        assert_eq!(key("../../a"), key("a"));
        assert_eq!(key("."), key("/"));
        assert_eq!(key("a/b").to_string(), "/a/b");
        assert_eq!(key("").to_string(), "/");
    }

    #[test]
    fn split_last_and_starts_with() {
        // Proves the parent/name split and the prefix test used for rename checks.
        let k = key("d/x");
        let (parent, name) = k.split_last().unwrap();
        assert_eq!((parent, name), (key("d"), "x"));
        assert!(key("/").split_last().is_none());
        assert!(key("d/x/y").starts_with(&key("d/x")));
        assert!(!key("d/xy").starts_with(&key("d/x")));
    }
}

//! [`IteratorOptions`]: what a [`crate::DbIterator`] yields and how (Badger's
//! `IteratorOptions`, with its defaults).

/// Configures a [`crate::DbIterator`]. [`Default`] is Badger's `DefaultIteratorOptions`:
/// values prefetched, forward, newest version only, no prefix, no lower version bound.
/// Badger's `PrefetchSize` (values read ahead by background goroutines) has no counterpart:
/// the current item's value is read when the cursor lands on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IteratorOptions {
    /// Resolve each item's value (reading the value log if needed) when the iterator is
    /// positioned on it, instead of on the first [`crate::Item::value`] call. Turn off for
    /// key-only scans. Default `true`.
    pub prefetch_values: bool,
    /// Iterate from the largest key down. Default `false`.
    pub reverse: bool,
    /// Yield every visible version of each key, deleted and expired ones included, newest
    /// first (oldest first in reverse). Default `false`: only the newest visible version, and
    /// nothing for a key whose newest visible version is deleted or expired.
    pub all_versions: bool,
    /// Only keys starting with these bytes; tables that cannot hold such keys are not read.
    /// Default empty (every key).
    pub prefix: Vec<u8>,
    /// Only versions strictly above this; tables with no newer version are not read.
    /// Default 0 (every version).
    pub since_ts: u64,
}

impl Default for IteratorOptions {
    fn default() -> Self {
        IteratorOptions {
            prefetch_values: true,
            reverse: false,
            all_versions: false,
            prefix: Vec::new(),
            since_ts: 0,
        }
    }
}

impl IteratorOptions {
    setter!(/// Sets [`IteratorOptions::prefetch_values`].
        with_prefetch_values, prefetch_values: bool);
    setter!(/// Sets [`IteratorOptions::reverse`].
        with_reverse, reverse: bool);
    setter!(/// Sets [`IteratorOptions::all_versions`].
        with_all_versions, all_versions: bool);
    setter!(/// Sets [`IteratorOptions::since_ts`].
        with_since_ts, since_ts: u64);

    /// Sets [`IteratorOptions::prefix`].
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_badgers_and_setters_set() {
        // Proves Default equals Badger's DefaultIteratorOptions and each builder sets its field.
        let d = IteratorOptions::default();
        assert!(d.prefetch_values && !d.reverse && !d.all_versions);
        assert_eq!(d.since_ts, 0);
        assert!(d.prefix.is_empty());
        let o = IteratorOptions::default()
            .with_prefetch_values(false)
            .with_reverse(true)
            .with_all_versions(true)
            .with_prefix(b"ab".to_vec())
            .with_since_ts(9);
        assert!(!o.prefetch_values && o.reverse && o.all_versions);
        assert_eq!((o.since_ts, &o.prefix[..]), (9, &b"ab"[..]));
    }
}

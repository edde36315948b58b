//! Options whose feature is not built yet: each is refused with an error naming it, never
//! accepted and ignored. When a feature lands, its check leaves this file and the option's
//! docs say what it does. Today every option of [`Options`] is built, so nothing is refused;
//! the check stays as the place a future option's refusal goes.
//!
//! The test below destructures [`Options`] field by field, so a new option cannot be added
//! without saying here whether it works.

use crate::error::Result;
use crate::options::Options;

/// `Err(InvalidOptions)` naming the first option set to a value whose feature is not built:
/// none today.
pub(crate) fn refuse_unbuilt(_o: &Options) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemStorage;
    use crate::Db;
    use std::sync::Arc;

    /// The options that were once refused, each set to a value its feature now honours. The
    /// destructuring makes a new field a compile error here until it is classified (built, or
    /// refused in `refuse_unbuilt` and listed here).
    fn once_unbuilt_settings() -> Vec<(&'static str, Options)> {
        let base = Options::new("/db").with_storage(Arc::new(MemStorage::new()));
        let Options {
            dir: _,
            value_dir: _,
            sync_writes: _,
            num_versions_to_keep: _,
            read_only: _,
            compression: _,
            in_memory: _,
            metrics_enabled: _,
            mem_table_size: _,
            base_table_size: _,
            base_level_size: _,
            level_size_multiplier: _,
            table_size_multiplier: _,
            max_levels: _,
            vlog_percentile: _,
            value_threshold: _,
            num_memtables: _,
            block_size: _,
            bloom_false_positive: _,
            block_cache_size: _,
            index_cache_size: _,
            num_level_zero_tables: _,
            num_level_zero_tables_stall: _,
            value_log_file_size: _,
            value_log_max_entries: _,
            value_log_mmap: _,
            num_compactors: _,
            background_nice: _,
            compact_l0_on_close: _,
            auto_value_log_gc: _,
            value_log_gc_space_amp: _,
            value_log_gc_rate_bytes: _,
            value_log_gc_busy_space_amp: _,
            lmax_compaction: _,
            zstd_compression_level: _,
            encryption_key: _,
            encryption_key_rotation_duration: _,
            bypass_lock_guard: _,
            checksum_verification_mode: _,
            detect_conflicts: _,
            namespace_offset: _,
            external_magic_version: _,
            storage: _,
        } = base.clone();
        vec![
            ("metrics_enabled", base.clone().with_metrics_enabled(true)),
            ("vlog_percentile", base.clone().with_vlog_percentile(0.9)),
            ("namespace_offset", base.clone().with_namespace_offset(0)),
        ]
    }

    #[test]
    fn every_option_once_refused_now_opens() {
        // Proves the options once refused as unbuilt (metrics, the dynamic value threshold,
        // key namespaces) are accepted now that their features work (each has its own tests
        // of what it does), and the defaults open.
        for (name, opts) in once_unbuilt_settings() {
            let db = Db::open(opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            db.close().unwrap();
        }
        let db = Db::open(Options::new("/db").with_storage(Arc::new(MemStorage::new()))).unwrap();
        db.close().unwrap();
    }
}

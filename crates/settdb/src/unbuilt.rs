//! Options whose feature is not built yet: each is refused with an error naming it, never
//! accepted and ignored. When a feature lands, its check leaves this file and the option's
//! docs say what it does.
//!
//! The test below destructures [`Options`] field by field, so a new option cannot be added
//! without saying here whether it works.

use crate::error::{Error, Result};
use crate::options::Options;

/// `Err(InvalidOptions)` naming the first option set to a value whose feature is not built.
pub(crate) fn refuse_unbuilt(o: &Options) -> Result<()> {
    let refuse = |option: &str, value: String, accepted: &str, feature: &str| {
        Err(Error::InvalidOptions(format!(
            "{option} = {value} is not supported yet ({feature} is not built; only {accepted} is \
             accepted)"
        )))
    };
    if o.vlog_percentile != 0.0 {
        let value = o.vlog_percentile.to_string();
        return refuse("vlog_percentile", value, "0", "the dynamic value threshold");
    }
    if o.namespace_offset != -1 {
        let value = o.namespace_offset.to_string();
        return refuse("namespace_offset", value, "-1", "key namespaces");
    }
    if !o.verify_value_checksum {
        return Err(Error::InvalidOptions(
            "verify_value_checksum = false is not supported: SettDB always verifies value-log \
             checksums (a damaged value is an error, never returned)"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemStorage;
    use crate::Db;
    use std::sync::Arc;

    /// Every option, by name: a change that makes its feature's option do something, for the
    /// unbuilt ones; `None` for the options that work. The destructuring makes a new field a
    /// compile error here until it is classified.
    fn unbuilt_settings() -> Vec<(&'static str, Options)> {
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
            compact_l0_on_close: _,
            auto_value_log_gc: _,
            value_log_gc_space_amp: _,
            value_log_gc_rate_bytes: _,
            lmax_compaction: _,
            zstd_compression_level: _,
            verify_value_checksum: _,
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
            ("vlog_percentile", base.clone().with_vlog_percentile(0.9)),
            (
                "verify_value_checksum",
                base.clone().with_verify_value_checksum(false),
            ),
            ("namespace_offset", base.clone().with_namespace_offset(0)),
        ]
    }

    #[test]
    fn every_unbuilt_option_is_refused_at_open_by_name() {
        // Proves no option lies: each option whose feature is not built makes the open fail
        // with InvalidOptions naming it (an encryption key once left values in plaintext), and
        // the defaults open.
        for (name, opts) in unbuilt_settings() {
            match Db::open(opts) {
                Err(Error::InvalidOptions(msg)) => {
                    assert!(msg.contains(name), "{msg} does not name {name}");
                    assert!(!msg.contains('\n'));
                }
                Err(e) => panic!("{name}: wrong error {e}"),
                Ok(_) => panic!("{name}: an unbuilt option was accepted"),
            }
        }
        let db = Db::open(Options::new("/db").with_storage(Arc::new(MemStorage::new()))).unwrap();
        db.close().unwrap();
    }
}

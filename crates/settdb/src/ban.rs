//! Banning key namespaces (Badger's `BanNamespace`, `BannedNamespaces`): the ban record is
//! written and made durable, then the ban is published to reads and writes. The namespace
//! rules and the record's layout are in [`crate::namespace`].

use crate::db::Db;
use crate::error::{Error, Result};

impl Db {
    /// Bans namespace `ns` for good: afterwards writes to its keys and point reads of them fail
    /// with [`Error::BannedKey`], and iterators (and so streams and backups) skip them. The ban
    /// is durable when this returns and is read back at every open; the namespace's data stays
    /// stored (use [`Db::drop_prefix`] to remove it). Banning a banned namespace does nothing.
    ///
    /// Errors: [`Error::NamespaceMode`] without `namespace_offset`; [`Error::InvalidRequest`]
    /// read-only (Badger panics); [`Error::Closed`]; I/O.
    pub fn ban_namespace(&self, ns: u64) -> Result<()> {
        let namespaces = self.namespaces().clone();
        if !namespaces.enabled() {
            return Err(Error::NamespaceMode);
        }
        if self.options().read_only {
            return Err(Error::InvalidRequest(
                "ban_namespace needs a writable database: a ban is a write",
            ));
        }
        let _one = namespaces.lock_banning();
        if namespaces.contains(ns) {
            return Ok(());
        }
        self.write_ban_records(&[ns])?;
        namespaces.publish([ns]);
        Ok(())
    }

    /// The banned namespaces, ascending (empty when namespaces are off).
    pub fn banned_namespaces(&self) -> Vec<u64> {
        self.namespaces().banned()
    }
}

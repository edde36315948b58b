//! [`Manifest`]: the set of live tables that replaying the MANIFEST produces.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::change::ManifestChange;
use crate::error::{Error, Result};
use crate::options::Compression;

/// What the manifest records about a live table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableManifest {
    /// The level the table belongs to.
    pub level: u8,
    /// Block compression (as decoded: the zstd level is not stored, it reads back as 1).
    pub compression: Compression,
    /// Data key that encrypts the table; 0 means plaintext.
    pub key_id: u64,
}

/// Why a change set does not apply to a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidChange {
    /// A create of an id that is live.
    CreateExisting(u64),
    /// A delete of an id that is not live.
    DeleteUnknown(u64),
    /// A create at a level the database does not have.
    LevelOutOfRange {
        /// The table.
        table_id: u64,
        /// Its level.
        level: u8,
        /// Levels of the database.
        max_levels: usize,
    },
    /// The id `u64::MAX` is reserved so that "largest id + 1" never overflows.
    ReservedId,
}

impl InvalidChange {
    /// A fixed message for [`Error::InvalidRequest`].
    pub fn as_static_str(&self) -> &'static str {
        match self {
            InvalidChange::CreateExisting(_) => "manifest edit creates a table that exists",
            InvalidChange::DeleteUnknown(_) => "manifest edit deletes a table that does not exist",
            InvalidChange::LevelOutOfRange { .. } => {
                "manifest edit creates a table past max_levels"
            }
            InvalidChange::ReservedId => "manifest edit uses the reserved table id u64::MAX",
        }
    }
}

impl fmt::Display for InvalidChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InvalidChange::CreateExisting(id) => write!(f, "create of table {id}, which exists"),
            InvalidChange::DeleteUnknown(id) => {
                write!(f, "delete of table {id}, which does not exist")
            }
            InvalidChange::LevelOutOfRange {
                table_id,
                level,
                max_levels,
            } => write!(
                f,
                "create of table {table_id} at level {level}, but there are {max_levels} levels"
            ),
            InvalidChange::ReservedId => write!(f, "table id {} is reserved", u64::MAX),
        }
    }
}

/// The replayed state: live tables, the ids at each level, and the edit counters.
///
/// Invariants (checked by `debug_assert_invariants`): every live table is in exactly the level
/// set of its level and nothing else is in any level set; `creations - deletions` is the number
/// of live tables; `next_table_id` is above every live id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    tables: BTreeMap<u64, TableManifest>,
    levels: Vec<BTreeSet<u64>>,
    creations: u64,
    deletions: u64,
    next_table_id: u64,
}

impl Manifest {
    /// The empty state of a database with `max_levels` levels (L0 included).
    pub fn new(max_levels: usize) -> Self {
        Manifest {
            tables: BTreeMap::new(),
            levels: vec![BTreeSet::new(); max_levels],
            creations: 0,
            deletions: 0,
            next_table_id: 0,
        }
    }

    /// Number of levels.
    pub fn max_levels(&self) -> usize {
        self.levels.len()
    }

    /// The live tables by id.
    pub fn tables(&self) -> &BTreeMap<u64, TableManifest> {
        &self.tables
    }

    /// The live table `table_id`, if any.
    pub fn table(&self, table_id: u64) -> Option<&TableManifest> {
        self.tables.get(&table_id)
    }

    /// Ids of the live tables at `level` (`None` past the last level).
    pub fn level_tables(&self, level: usize) -> Option<&BTreeSet<u64>> {
        self.levels.get(level)
    }

    /// Number of live tables.
    pub fn live_tables(&self) -> u64 {
        self.tables.len() as u64
    }

    /// Creations recorded since the file was last written from scratch.
    pub fn creations(&self) -> u64 {
        self.creations
    }

    /// Deletions recorded since the file was last written from scratch.
    pub fn deletions(&self) -> u64 {
        self.deletions
    }

    /// One more than the largest table id created in this state's history (live or deleted).
    pub fn next_table_id(&self) -> u64 {
        self.next_table_id
    }

    /// Checks that `changes`, applied in order, are valid; changes nothing.
    pub fn validate(&self, changes: &[ManifestChange]) -> Result<()> {
        self.check(changes)
            .map_err(|e| Error::InvalidRequest(e.as_static_str()))
    }

    /// Applies a change set atomically: validated as a whole first, so on `Err`
    /// ([`Error::InvalidRequest`]) nothing changed.
    pub fn apply(&mut self, changes: &[ManifestChange]) -> Result<()> {
        self.try_apply(changes)
            .map_err(|e| Error::InvalidRequest(e.as_static_str()))
    }

    /// [`Manifest::apply`] with the precise reason of a refusal (replay turns it into a
    /// corruption naming the record).
    pub fn try_apply(&mut self, changes: &[ManifestChange]) -> Result<(), InvalidChange> {
        self.check(changes)?;
        for c in changes {
            self.apply_one(c);
        }
        self.debug_assert_invariants();
        Ok(())
    }

    /// Validates in order against an overlay of the ids the set touches, so that a delete
    /// followed by a create of the same id (a level move) is valid and nothing is mutated.
    fn check(&self, changes: &[ManifestChange]) -> Result<(), InvalidChange> {
        let mut overlay: HashMap<u64, bool> = HashMap::new();
        for c in changes {
            let id = c.table_id();
            if id == u64::MAX {
                return Err(InvalidChange::ReservedId);
            }
            let live = overlay
                .get(&id)
                .copied()
                .unwrap_or_else(|| self.tables.contains_key(&id));
            match *c {
                ManifestChange::Create { level, .. } => {
                    if live {
                        return Err(InvalidChange::CreateExisting(id));
                    }
                    if usize::from(level) >= self.levels.len() {
                        return Err(InvalidChange::LevelOutOfRange {
                            table_id: id,
                            level,
                            max_levels: self.levels.len(),
                        });
                    }
                    overlay.insert(id, true);
                }
                ManifestChange::Delete { .. } => {
                    if !live {
                        return Err(InvalidChange::DeleteUnknown(id));
                    }
                    overlay.insert(id, false);
                }
            }
        }
        Ok(())
    }

    /// REQUIRES: the change was validated in sequence by `check`.
    fn apply_one(&mut self, change: &ManifestChange) {
        match *change {
            ManifestChange::Create {
                table_id,
                level,
                compression,
                key_id,
            } => {
                let t = TableManifest {
                    level,
                    compression,
                    key_id,
                };
                let old = self.tables.insert(table_id, t);
                debug_assert!(old.is_none(), "create of live table {table_id}");
                if let Some(set) = self.levels.get_mut(usize::from(level)) {
                    set.insert(table_id);
                }
                self.creations += 1;
                self.next_table_id = self.next_table_id.max(table_id + 1);
            }
            ManifestChange::Delete { table_id } => {
                let old = self.tables.remove(&table_id);
                debug_assert!(old.is_some(), "delete of unknown table {table_id}");
                if let Some(set) = old.and_then(|t| self.levels.get_mut(usize::from(t.level))) {
                    set.remove(&table_id);
                }
                self.deletions += 1;
            }
        }
    }

    /// The change set that recreates every live table (the body of a rewrite), in id order.
    pub fn snapshot(&self) -> Vec<ManifestChange> {
        self.tables
            .iter()
            .map(|(&id, t)| ManifestChange::create(id, t.level, t.compression, t.key_id))
            .collect()
    }

    /// After a rewrite the file holds one creation per live table and no deletion.
    pub(crate) fn reset_counters(&mut self) {
        self.creations = self.live_tables();
        self.deletions = 0;
        self.debug_assert_invariants();
    }

    fn debug_assert_invariants(&self) {
        if cfg!(debug_assertions) {
            let in_levels: usize = self.levels.iter().map(BTreeSet::len).sum();
            debug_assert_eq!(in_levels, self.tables.len());
            for (id, t) in &self.tables {
                debug_assert!(self.levels[usize::from(t.level)].contains(id));
                debug_assert!(*id < self.next_table_id);
            }
            debug_assert_eq!(self.creations - self.deletions, self.live_tables());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(id: u64, level: u8) -> ManifestChange {
        ManifestChange::create(id, level, Compression::Snappy, 0)
    }

    #[test]
    fn bad_change_set_changes_nothing() {
        // Proves atomicity: a set whose last change is invalid leaves the state untouched, for
        // each kind of invalid change.
        let mut m = Manifest::new(3);
        m.apply(&[create(1, 0), create(2, 1)]).unwrap();
        let before = m.clone();
        let bad_sets = [
            vec![create(3, 0), create(1, 0)],
            vec![ManifestChange::delete(2), ManifestChange::delete(9)],
            vec![create(4, 1), create(5, 3)],
            vec![create(6, 0), create(6, 1)],
            vec![ManifestChange::delete(1), ManifestChange::delete(1)],
            vec![create(u64::MAX, 0)],
        ];
        for set in bad_sets {
            assert!(
                matches!(m.apply(&set), Err(Error::InvalidRequest(_))),
                "{set:?}"
            );
            assert!(m.validate(&set).is_err());
            assert_eq!(m, before);
        }
    }

    #[test]
    fn in_set_order_allows_a_level_move() {
        // Proves changes apply in order: delete then create of one id moves it between levels.
        let mut m = Manifest::new(3);
        m.apply(&[create(7, 0)]).unwrap();
        m.apply(&[ManifestChange::delete(7), create(7, 2)]).unwrap();
        assert_eq!(m.table(7).map(|t| t.level), Some(2));
        assert!(m.level_tables(0).unwrap().is_empty());
        assert!(m.level_tables(2).unwrap().contains(&7));
        assert_eq!((m.creations(), m.deletions(), m.live_tables()), (2, 1, 1));
    }

    #[test]
    fn next_table_id_remembers_deleted_ids() {
        // Proves next_table_id is max id ever created + 1, even after that table is deleted.
        let mut m = Manifest::new(2);
        assert_eq!(m.next_table_id(), 0);
        m.apply(&[create(4, 0), create(9, 1)]).unwrap();
        m.apply(&[ManifestChange::delete(9)]).unwrap();
        assert_eq!(m.next_table_id(), 10);
        assert_eq!(m.snapshot(), vec![create(4, 0)]);
        m.reset_counters();
        assert_eq!((m.creations(), m.deletions()), (1, 0));
    }
}

//! [`Manifest`]: the file set that replaying the MANIFEST produces: live tables per level,
//! open table-writing operations, live WALs and value-log files, and the next ids.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::change::{ManifestChange, OpSource};
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

/// A flush or compaction that began and has not ended: the table ids it may have created
/// files for, and what it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenOp {
    /// `(first_id, count)` ranges of table ids reserved, in order.
    pub ranges: Vec<(u64, u64)>,
    /// What the operation reads.
    pub source: OpSource,
}

impl OpenOp {
    /// True if table `id` is one of this operation's.
    pub fn owns(&self, id: u64) -> bool {
        self.ranges
            .iter()
            .any(|&(first, count)| id >= first && id - first < count)
    }
}

/// What the manifest says about a table id (whatever is on disk).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFate {
    /// Live in the tree.
    Live,
    /// Reserved by the open operation `op_id`: an output it may not have finished.
    Unfinished {
        /// The operation.
        op_id: u64,
    },
    /// Handed out and since deleted, or never used by an operation that ended: garbage.
    Dead,
    /// Above every id handed out: the manifest does not know it (it lost records).
    Unknown,
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
    /// A begin of an operation that is open, or an empty or overflowing id range.
    BadOpRange(u64),
    /// An extend or end of an operation that is not open.
    UnknownOp(u64),
    /// A create of a WAL or value-log file that is live.
    FileExists(u64),
    /// A delete of a WAL or value-log file that is not live.
    FileUnknown(u64),
    /// A value-log file id over `u32::MAX` (value pointers hold a u32).
    VlogIdOutOfRange(u64),
    /// Next ids that go back.
    NextIdsBackwards,
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
            InvalidChange::ReservedId => "manifest edit uses the reserved id u64::MAX",
            InvalidChange::BadOpRange(_) => "manifest edit begins a bad operation",
            InvalidChange::UnknownOp(_) => "manifest edit names an operation that is not open",
            InvalidChange::FileExists(_) => "manifest edit creates a log file that exists",
            InvalidChange::FileUnknown(_) => "manifest edit deletes a log file that does not exist",
            InvalidChange::VlogIdOutOfRange(_) => "manifest edit uses a value-log id over u32",
            InvalidChange::NextIdsBackwards => "manifest edit moves the next ids backwards",
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
            InvalidChange::ReservedId => write!(f, "id {} is reserved", u64::MAX),
            InvalidChange::BadOpRange(op) => write!(f, "bad begin of operation {op}"),
            InvalidChange::UnknownOp(op) => write!(f, "operation {op} is not open"),
            InvalidChange::FileExists(id) => write!(f, "create of log file {id}, which exists"),
            InvalidChange::FileUnknown(id) => {
                write!(f, "delete of log file {id}, which does not exist")
            }
            InvalidChange::VlogIdOutOfRange(id) => write!(f, "value-log file id {id} over u32"),
            InvalidChange::NextIdsBackwards => write!(f, "next ids go backwards"),
        }
    }
}

/// The replayed state.
///
/// Invariants (checked by `debug_assert_invariants`): every live table is in exactly the level
/// set of its level and nothing else is in any level set; `creations - deletions` is the number
/// of live tables; each `next_*` id is above every id of its kind live, reserved or recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    tables: BTreeMap<u64, TableManifest>,
    levels: Vec<BTreeSet<u64>>,
    creations: u64,
    deletions: u64,
    next_table_id: u64,
    ops: BTreeMap<u64, OpenOp>,
    wals: BTreeSet<u64>,
    next_wal_id: u64,
    vlogs: BTreeSet<u64>,
    next_vlog_id: u64,
}

impl Manifest {
    /// The empty state of a database with `max_levels` levels (L0 included).
    pub fn new(max_levels: usize) -> Self {
        Manifest {
            tables: BTreeMap::new(),
            levels: vec![BTreeSet::new(); max_levels],
            creations: 0,
            deletions: 0,
            next_table_id: 1,
            ops: BTreeMap::new(),
            wals: BTreeSet::new(),
            next_wal_id: 1,
            vlogs: BTreeSet::new(),
            next_vlog_id: 1,
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

    /// One more than the largest table id ever created or reserved (live or not); at least 1.
    pub fn next_table_id(&self) -> u64 {
        self.next_table_id
    }

    /// The operations that began and did not end.
    pub fn open_ops(&self) -> &BTreeMap<u64, OpenOp> {
        &self.ops
    }

    /// Ids of the WAL files that exist.
    pub fn wals(&self) -> &BTreeSet<u64> {
        &self.wals
    }

    /// One more than the largest WAL id ever recorded; at least 1.
    pub fn next_wal_id(&self) -> u64 {
        self.next_wal_id
    }

    /// Ids of the value-log files that exist.
    pub fn vlogs(&self) -> &BTreeSet<u64> {
        &self.vlogs
    }

    /// One more than the largest value-log file id ever recorded; at least 1.
    pub fn next_vlog_id(&self) -> u64 {
        self.next_vlog_id
    }

    /// What the manifest says about table `id`.
    pub fn table_fate(&self, id: u64) -> TableFate {
        if self.tables.contains_key(&id) {
            return TableFate::Live;
        }
        if let Some((&op_id, _)) = self.ops.iter().find(|(_, op)| op.owns(id)) {
            return TableFate::Unfinished { op_id };
        }
        if id < self.next_table_id {
            TableFate::Dead
        } else {
            TableFate::Unknown
        }
    }

    /// Checks that `changes`, applied in order, are valid; changes nothing.
    pub fn validate(&self, changes: &[ManifestChange]) -> Result<()> {
        self.clone()
            .try_apply(changes)
            .map_err(|e| Error::InvalidRequest(e.as_static_str()))
    }

    /// Applies a change set atomically: on `Err` ([`Error::InvalidRequest`]) nothing changed.
    pub fn apply(&mut self, changes: &[ManifestChange]) -> Result<()> {
        self.validate(changes)?;
        self.try_apply(changes)
            .map_err(|e| Error::InvalidRequest(e.as_static_str()))
    }

    /// Applies `changes` in order, stopping at the first invalid one, which it returns with
    /// its precise reason (replay turns it into a corruption naming the record). On `Err` the
    /// state holds the changes before the invalid one: callers that need atomicity use
    /// [`Manifest::apply`].
    pub fn try_apply(&mut self, changes: &[ManifestChange]) -> Result<(), InvalidChange> {
        for c in changes {
            self.apply_one(c)?;
        }
        self.debug_assert_invariants();
        Ok(())
    }

    fn apply_one(&mut self, change: &ManifestChange) -> Result<(), InvalidChange> {
        match change {
            ManifestChange::Create {
                table_id,
                level,
                compression,
                key_id,
            } => self.create_table(
                *table_id,
                TableManifest {
                    level: *level,
                    compression: *compression,
                    key_id: *key_id,
                },
            ),
            ManifestChange::Delete { table_id } => self.delete_table(*table_id),
            ManifestChange::BeginOp {
                op_id,
                count,
                source,
            } => self.begin_op(*op_id, *count, source),
            ManifestChange::ExtendOp {
                op_id,
                first_id,
                count,
            } => self.extend_op(*op_id, *first_id, *count),
            ManifestChange::EndOp { op_id } => self
                .ops
                .remove(op_id)
                .map(drop)
                .ok_or(InvalidChange::UnknownOp(*op_id)),
            ManifestChange::CreateWal { wal_id } => {
                create_file(&mut self.wals, &mut self.next_wal_id, *wal_id)
            }
            ManifestChange::DeleteWal { wal_id } => delete_file(&mut self.wals, *wal_id),
            ManifestChange::CreateVlog { file_id } => {
                if *file_id > u64::from(u32::MAX) {
                    return Err(InvalidChange::VlogIdOutOfRange(*file_id));
                }
                create_file(&mut self.vlogs, &mut self.next_vlog_id, *file_id)
            }
            ManifestChange::DeleteVlog { file_id } => delete_file(&mut self.vlogs, *file_id),
            ManifestChange::NextIds { table, wal, vlog } => {
                self.raise_next_ids(*table, *wal, *vlog)
            }
        }
    }

    fn create_table(&mut self, id: u64, t: TableManifest) -> Result<(), InvalidChange> {
        if id == u64::MAX {
            return Err(InvalidChange::ReservedId);
        }
        if self.tables.contains_key(&id) {
            return Err(InvalidChange::CreateExisting(id));
        }
        let Some(set) = self.levels.get_mut(usize::from(t.level)) else {
            return Err(InvalidChange::LevelOutOfRange {
                table_id: id,
                level: t.level,
                max_levels: self.levels.len(),
            });
        };
        set.insert(id);
        self.tables.insert(id, t);
        self.creations += 1;
        self.next_table_id = self.next_table_id.max(id + 1);
        Ok(())
    }

    fn delete_table(&mut self, id: u64) -> Result<(), InvalidChange> {
        let t = self
            .tables
            .remove(&id)
            .ok_or(InvalidChange::DeleteUnknown(id))?;
        if let Some(set) = self.levels.get_mut(usize::from(t.level)) {
            set.remove(&id);
        }
        self.deletions += 1;
        Ok(())
    }

    fn begin_op(&mut self, op_id: u64, count: u64, source: &OpSource) -> Result<(), InvalidChange> {
        if self.ops.contains_key(&op_id) {
            return Err(InvalidChange::BadOpRange(op_id));
        }
        let end = range_end(op_id, count).ok_or(InvalidChange::BadOpRange(op_id))?;
        self.ops.insert(
            op_id,
            OpenOp {
                ranges: vec![(op_id, count)],
                source: source.clone(),
            },
        );
        self.next_table_id = self.next_table_id.max(end);
        Ok(())
    }

    fn extend_op(&mut self, op_id: u64, first: u64, count: u64) -> Result<(), InvalidChange> {
        let end = range_end(first, count).ok_or(InvalidChange::BadOpRange(op_id))?;
        let op = self
            .ops
            .get_mut(&op_id)
            .ok_or(InvalidChange::UnknownOp(op_id))?;
        op.ranges.push((first, count));
        self.next_table_id = self.next_table_id.max(end);
        Ok(())
    }

    fn raise_next_ids(&mut self, table: u64, wal: u64, vlog: u64) -> Result<(), InvalidChange> {
        if table < self.next_table_id || wal < self.next_wal_id || vlog < self.next_vlog_id {
            return Err(InvalidChange::NextIdsBackwards);
        }
        if [table, wal, vlog].contains(&u64::MAX) {
            return Err(InvalidChange::ReservedId);
        }
        (self.next_table_id, self.next_wal_id, self.next_vlog_id) = (table, wal, vlog);
        Ok(())
    }

    /// The changes that recreate this state in an empty MANIFEST (the body of a rewrite): the
    /// live WALs and value-log files, the next ids, the live tables in id order, then the open
    /// operations.
    pub fn snapshot(&self) -> Vec<ManifestChange> {
        let mut out: Vec<ManifestChange> = Vec::new();
        out.extend(
            self.wals
                .iter()
                .map(|&wal_id| ManifestChange::CreateWal { wal_id }),
        );
        out.extend(
            self.vlogs
                .iter()
                .map(|&file_id| ManifestChange::CreateVlog { file_id }),
        );
        out.push(ManifestChange::NextIds {
            table: self.next_table_id,
            wal: self.next_wal_id,
            vlog: self.next_vlog_id,
        });
        out.extend(
            self.tables
                .iter()
                .map(|(&id, t)| ManifestChange::create(id, t.level, t.compression, t.key_id)),
        );
        for (&op_id, op) in &self.ops {
            for (i, &(first_id, count)) in op.ranges.iter().enumerate() {
                out.push(if i == 0 {
                    ManifestChange::BeginOp {
                        op_id,
                        count,
                        source: op.source.clone(),
                    }
                } else {
                    ManifestChange::ExtendOp {
                        op_id,
                        first_id,
                        count,
                    }
                });
            }
        }
        out
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
            debug_assert!(self.wals.iter().all(|&w| w < self.next_wal_id));
            debug_assert!(self.vlogs.iter().all(|&v| v < self.next_vlog_id));
        }
    }
}

/// `first + count`, if the range is non-empty and ends below the reserved id.
fn range_end(first: u64, count: u64) -> Option<u64> {
    first
        .checked_add(count)
        .filter(|&e| count > 0 && e < u64::MAX)
}

fn create_file(live: &mut BTreeSet<u64>, next: &mut u64, id: u64) -> Result<(), InvalidChange> {
    if id == u64::MAX {
        return Err(InvalidChange::ReservedId);
    }
    if !live.insert(id) {
        return Err(InvalidChange::FileExists(id));
    }
    *next = (*next).max(id + 1);
    Ok(())
}

fn delete_file(live: &mut BTreeSet<u64>, id: u64) -> Result<(), InvalidChange> {
    if live.remove(&id) {
        Ok(())
    } else {
        Err(InvalidChange::FileUnknown(id))
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
        m.apply(&[
            create(1, 0),
            create(2, 1),
            ManifestChange::CreateWal { wal_id: 4 },
        ])
        .unwrap();
        let before = m.clone();
        let begin = |op_id, count| ManifestChange::BeginOp {
            op_id,
            count,
            source: OpSource::None,
        };
        let bad_sets = [
            vec![create(3, 0), create(1, 0)],
            vec![ManifestChange::delete(2), ManifestChange::delete(9)],
            vec![create(4, 1), create(5, 3)],
            vec![create(6, 0), create(6, 1)],
            vec![ManifestChange::delete(1), ManifestChange::delete(1)],
            vec![create(u64::MAX, 0)],
            vec![begin(10, 2), begin(10, 1)],
            vec![begin(10, 0)],
            vec![begin(u64::MAX - 1, 1)],
            vec![ManifestChange::EndOp { op_id: 3 }],
            vec![ManifestChange::CreateWal { wal_id: 4 }],
            vec![ManifestChange::DeleteWal { wal_id: 5 }],
            vec![ManifestChange::CreateVlog { file_id: 1 << 33 }],
            vec![ManifestChange::DeleteVlog { file_id: 1 }],
            vec![ManifestChange::NextIds {
                table: 1,
                wal: 9,
                vlog: 9,
            }],
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
    fn table_fates_follow_operations() {
        // Proves the fate of a table id through an operation's life: unknown before its begin,
        // unfinished while open (extensions included), live once created, dead once deleted or
        // once its operation ended without using it.
        let mut m = Manifest::new(3);
        assert_eq!(m.table_fate(5), TableFate::Unknown);
        m.apply(&[ManifestChange::BeginOp {
            op_id: 5,
            count: 2,
            source: OpSource::Wal(3),
        }])
        .unwrap();
        m.apply(&[ManifestChange::ExtendOp {
            op_id: 5,
            first_id: 9,
            count: 1,
        }])
        .unwrap();
        assert_eq!(m.next_table_id(), 10);
        for id in [5, 6, 9] {
            assert_eq!(m.table_fate(id), TableFate::Unfinished { op_id: 5 });
        }
        assert_eq!(m.table_fate(7), TableFate::Dead);
        assert_eq!(m.table_fate(10), TableFate::Unknown);
        m.apply(&[create(5, 0), ManifestChange::EndOp { op_id: 5 }])
            .unwrap();
        assert_eq!(m.table_fate(5), TableFate::Live);
        assert_eq!(m.table_fate(6), TableFate::Dead);
        assert_eq!(m.table_fate(9), TableFate::Dead);
        m.apply(&[ManifestChange::delete(5)]).unwrap();
        assert_eq!(m.table_fate(5), TableFate::Dead);
        assert!(m.open_ops().is_empty());
    }

    #[test]
    fn snapshot_recreates_the_state() {
        // Proves a rewrite's snapshot, replayed into an empty state, gives the same live
        // tables, files, open operations and next ids (the fates of every id agree).
        let mut m = Manifest::new(3);
        m.apply(&[
            ManifestChange::CreateWal { wal_id: 2 },
            ManifestChange::CreateVlog { file_id: 7 },
            ManifestChange::BeginOp {
                op_id: 1,
                count: 3,
                source: OpSource::Wal(2),
            },
        ])
        .unwrap();
        m.apply(&[create(1, 0), ManifestChange::EndOp { op_id: 1 }])
            .unwrap();
        m.apply(&[
            ManifestChange::BeginOp {
                op_id: 4,
                count: 1,
                source: OpSource::Tables(vec![1]),
            },
            ManifestChange::ExtendOp {
                op_id: 4,
                first_id: 5,
                count: 2,
            },
            ManifestChange::CreateWal { wal_id: 3 },
            ManifestChange::DeleteWal { wal_id: 3 },
        ])
        .unwrap();
        let mut fresh = Manifest::new(3);
        fresh.apply(&m.snapshot()).unwrap();
        assert_eq!(fresh.tables(), m.tables());
        assert_eq!(fresh.open_ops(), m.open_ops());
        assert_eq!((fresh.wals(), fresh.vlogs()), (m.wals(), m.vlogs()));
        assert_eq!(
            (
                fresh.next_table_id(),
                fresh.next_wal_id(),
                fresh.next_vlog_id()
            ),
            (7, 4, 8)
        );
        for id in 0..10 {
            assert_eq!(fresh.table_fate(id), m.table_fate(id), "table {id}");
        }
        m.reset_counters();
        assert_eq!((m.creations(), m.deletions()), (1, 0));
    }
}

//! One edit of the database's file set, and the encoding of a change set (the body of a
//! MANIFEST record).
//!
//! ```text
//! change_set := count uvarint | change{count}          -- nothing may follow the last change
//! change     := 1 create      | table_id uvarint | level u8 | compression u8 | key_id uvarint
//!             | 2 delete      | table_id uvarint
//!             | 3 begin_op    | op_id uvarint | count uvarint | source
//!             | 4 extend_op   | op_id uvarint | first_id uvarint | count uvarint
//!             | 5 end_op      | op_id uvarint
//!             | 6 create_wal  | wal_id uvarint        | 7 delete_wal  | wal_id uvarint
//!             | 8 create_vlog | file_id uvarint       | 9 delete_vlog | file_id uvarint
//!             | 10 next_ids   | table uvarint | wal uvarint | vlog uvarint
//! source     := 0 (none) | 1 wal_id uvarint | 2 n uvarint table_id uvarint{n}
//! ```
//!
//! Normative page: docs/format/manifest.md.

use crate::coding::{self, Reader};
use crate::options::Compression;

const OP_CREATE: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_BEGIN_OP: u8 = 3;
const OP_EXTEND_OP: u8 = 4;
const OP_END_OP: u8 = 5;
const OP_CREATE_WAL: u8 = 6;
const OP_DELETE_WAL: u8 = 7;
const OP_CREATE_VLOG: u8 = 8;
const OP_DELETE_VLOG: u8 = 9;
const OP_NEXT_IDS: u8 = 10;

const SOURCE_NONE: u8 = 0;
const SOURCE_WAL: u8 = 1;
const SOURCE_TABLES: u8 = 2;

/// Smallest encoded change: an op byte and a one-byte varint.
pub const MIN_CHANGE_LEN: usize = 1 + 1;

/// What an operation that writes tables reads from: what makes its unfinished outputs
/// provably garbage after a crash (their data is still in the source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpSource {
    /// Nothing recorded (an in-memory database, which has no crash to recover from).
    None,
    /// A flush of the memtable whose WAL has this id.
    Wal(u64),
    /// A compaction of these tables.
    Tables(Vec<u64>),
}

/// One edit of the database's files: tables (with their level), the operations writing
/// tables, the memtable WALs and the value-log files that exist, and the next ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestChange {
    /// A table file became part of the tree (it is durable before this edit is written).
    Create {
        /// The table's id (its file is named after it).
        table_id: u64,
        /// The level it belongs to.
        level: u8,
        /// Block compression of the table (the zstd level is not stored).
        compression: Compression,
        /// Data key that encrypts the table; 0 means plaintext.
        key_id: u64,
    },
    /// A table left the tree (its file may be deleted once this edit is durable).
    Delete {
        /// The table's id.
        table_id: u64,
    },
    /// A flush or compaction starts: table ids `op_id .. op_id + count` are its own, and
    /// `source` holds the data it writes. Durable before any of its files exists.
    BeginOp {
        /// The operation's id, which is also its first table id.
        op_id: u64,
        /// Table ids reserved.
        count: u64,
        /// What the operation reads.
        source: OpSource,
    },
    /// More table ids for an open operation: `first_id .. first_id + count`.
    ExtendOp {
        /// The operation.
        op_id: u64,
        /// First id of the new range.
        first_id: u64,
        /// Ids in it.
        count: u64,
    },
    /// An operation finished (in the same change set as its creates and deletes).
    EndOp {
        /// The operation.
        op_id: u64,
    },
    /// A memtable WAL file exists (recorded after the file and its header are durable).
    CreateWal {
        /// Its id (the memtable's).
        wal_id: u64,
    },
    /// A WAL is no longer needed (its file may be deleted once this edit is durable).
    DeleteWal {
        /// Its id.
        wal_id: u64,
    },
    /// A value-log file exists (recorded after the file and its header are durable).
    CreateVlog {
        /// Its id.
        file_id: u64,
    },
    /// A value-log file is no longer needed (deleted once this edit is durable).
    DeleteVlog {
        /// Its id.
        file_id: u64,
    },
    /// Ids below these were handed out (a rewrite records them: the history that proved it
    /// is gone from the new file).
    NextIds {
        /// Next table id.
        table: u64,
        /// Next WAL id.
        wal: u64,
        /// Next value-log file id.
        vlog: u64,
    },
}

impl ManifestChange {
    /// A create change.
    pub fn create(table_id: u64, level: u8, compression: Compression, key_id: u64) -> Self {
        ManifestChange::Create {
            table_id,
            level,
            compression,
            key_id,
        }
    }

    /// A delete change.
    pub fn delete(table_id: u64) -> Self {
        ManifestChange::Delete { table_id }
    }

    /// The table a create or delete is about.
    pub fn table_id(&self) -> Option<u64> {
        match *self {
            ManifestChange::Create { table_id, .. } | ManifestChange::Delete { table_id } => {
                Some(table_id)
            }
            _ => None,
        }
    }

    /// Bytes of the encoding of this change.
    pub fn encoded_len(&self) -> usize {
        let v = coding::uvarint_len;
        1 + match self {
            ManifestChange::Create {
                table_id, key_id, ..
            } => v(*table_id) + 2 + v(*key_id),
            ManifestChange::BeginOp {
                op_id,
                count,
                source,
            } => v(*op_id) + v(*count) + source_len(source),
            ManifestChange::ExtendOp {
                op_id,
                first_id,
                count,
            } => v(*op_id) + v(*first_id) + v(*count),
            ManifestChange::NextIds { table, wal, vlog } => v(*table) + v(*wal) + v(*vlog),
            ManifestChange::Delete { table_id: id }
            | ManifestChange::EndOp { op_id: id }
            | ManifestChange::CreateWal { wal_id: id }
            | ManifestChange::DeleteWal { wal_id: id }
            | ManifestChange::CreateVlog { file_id: id }
            | ManifestChange::DeleteVlog { file_id: id } => v(*id),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let put = coding::put_uvarint;
        match self {
            ManifestChange::Create {
                table_id,
                level,
                compression,
                key_id,
            } => {
                out.push(OP_CREATE);
                put(out, *table_id);
                out.push(*level);
                out.push(compression.to_byte());
                put(out, *key_id);
            }
            ManifestChange::BeginOp {
                op_id,
                count,
                source,
            } => {
                out.push(OP_BEGIN_OP);
                put(out, *op_id);
                put(out, *count);
                encode_source(out, source);
            }
            ManifestChange::ExtendOp {
                op_id,
                first_id,
                count,
            } => {
                out.push(OP_EXTEND_OP);
                put(out, *op_id);
                put(out, *first_id);
                put(out, *count);
            }
            ManifestChange::NextIds { table, wal, vlog } => {
                out.push(OP_NEXT_IDS);
                put(out, *table);
                put(out, *wal);
                put(out, *vlog);
            }
            ManifestChange::Delete { table_id: id } => put_one(out, OP_DELETE, *id),
            ManifestChange::EndOp { op_id: id } => put_one(out, OP_END_OP, *id),
            ManifestChange::CreateWal { wal_id: id } => put_one(out, OP_CREATE_WAL, *id),
            ManifestChange::DeleteWal { wal_id: id } => put_one(out, OP_DELETE_WAL, *id),
            ManifestChange::CreateVlog { file_id: id } => put_one(out, OP_CREATE_VLOG, *id),
            ManifestChange::DeleteVlog { file_id: id } => put_one(out, OP_DELETE_VLOG, *id),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        let op = r.u8().ok_or("change cut before its op byte")?;
        let mut id = || r.uvarint().ok_or("bad id varint");
        Ok(match op {
            OP_CREATE => {
                let table_id = id()?;
                let level = r.u8().ok_or("create cut before its level")?;
                let byte = r.u8().ok_or("create cut before its compression")?;
                let compression = Compression::from_byte(byte).ok_or("unknown compression byte")?;
                let key_id = r.uvarint().ok_or("bad key id varint")?;
                ManifestChange::create(table_id, level, compression, key_id)
            }
            OP_BEGIN_OP => {
                let (op_id, count) = (id()?, id()?);
                ManifestChange::BeginOp {
                    op_id,
                    count,
                    source: decode_source(r)?,
                }
            }
            OP_EXTEND_OP => ManifestChange::ExtendOp {
                op_id: id()?,
                first_id: id()?,
                count: id()?,
            },
            OP_NEXT_IDS => ManifestChange::NextIds {
                table: id()?,
                wal: id()?,
                vlog: id()?,
            },
            OP_DELETE => ManifestChange::Delete { table_id: id()? },
            OP_END_OP => ManifestChange::EndOp { op_id: id()? },
            OP_CREATE_WAL => ManifestChange::CreateWal { wal_id: id()? },
            OP_DELETE_WAL => ManifestChange::DeleteWal { wal_id: id()? },
            OP_CREATE_VLOG => ManifestChange::CreateVlog { file_id: id()? },
            OP_DELETE_VLOG => ManifestChange::DeleteVlog { file_id: id()? },
            _ => return Err("unknown change op"),
        })
    }
}

fn put_one(out: &mut Vec<u8>, op: u8, id: u64) {
    out.push(op);
    coding::put_uvarint(out, id);
}

fn source_len(source: &OpSource) -> usize {
    1 + match source {
        OpSource::None => 0,
        OpSource::Wal(id) => coding::uvarint_len(*id),
        OpSource::Tables(ids) => {
            coding::uvarint_len(ids.len() as u64)
                + ids.iter().map(|&i| coding::uvarint_len(i)).sum::<usize>()
        }
    }
}

fn encode_source(out: &mut Vec<u8>, source: &OpSource) {
    match source {
        OpSource::None => out.push(SOURCE_NONE),
        OpSource::Wal(id) => put_one(out, SOURCE_WAL, *id),
        OpSource::Tables(ids) => {
            put_one(out, SOURCE_TABLES, ids.len() as u64);
            for &i in ids {
                coding::put_uvarint(out, i);
            }
        }
    }
}

fn decode_source(r: &mut Reader<'_>) -> Result<OpSource, &'static str> {
    match r.u8().ok_or("begin_op cut before its source")? {
        SOURCE_NONE => Ok(OpSource::None),
        SOURCE_WAL => Ok(OpSource::Wal(r.uvarint().ok_or("bad WAL id varint")?)),
        SOURCE_TABLES => {
            let n = r.uvarint().ok_or("bad source count varint")?;
            // Every id takes at least one byte: bound the count before allocating.
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= r.remaining())
                .ok_or("source table count larger than the record can hold")?;
            let mut ids = Vec::with_capacity(n);
            for _ in 0..n {
                ids.push(r.uvarint().ok_or("bad source table id varint")?);
            }
            Ok(OpSource::Tables(ids))
        }
        _ => Err("unknown op source kind"),
    }
}

/// Bytes of the encoding of a change set.
pub fn change_set_encoded_len(changes: &[ManifestChange]) -> usize {
    let body: usize = changes.iter().map(ManifestChange::encoded_len).sum();
    coding::uvarint_len(changes.len() as u64) + body
}

/// Appends the encoding of a change set.
pub fn encode_change_set(out: &mut Vec<u8>, changes: &[ManifestChange]) {
    let start = out.len();
    coding::put_uvarint(out, changes.len() as u64);
    for c in changes {
        c.encode(out);
    }
    debug_assert_eq!(out.len() - start, change_set_encoded_len(changes));
}

/// Decodes a change set occupying all of `body` (untrusted bytes). The error says what was
/// wrong; the caller names the file and offset.
pub fn decode_change_set(body: &[u8]) -> Result<Vec<ManifestChange>, &'static str> {
    let mut r = Reader::new(body);
    let count = r.uvarint().ok_or("bad change count varint")?;
    // Every change takes at least MIN_CHANGE_LEN bytes: a count above that bound is refused
    // before it sizes an allocation.
    let most = r.remaining() / MIN_CHANGE_LEN;
    let count = usize::try_from(count)
        .ok()
        .filter(|&n| n <= most)
        .ok_or("change count larger than the record can hold")?;
    let mut changes = Vec::with_capacity(count);
    for _ in 0..count {
        changes.push(ManifestChange::decode(&mut r)?);
    }
    if !r.is_empty() {
        return Err("bytes after the last change");
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::test_support::compression_strategy;
    use proptest::prelude::*;

    fn source_strategy() -> impl Strategy<Value = OpSource> {
        prop_oneof![
            Just(OpSource::None),
            any::<u64>().prop_map(OpSource::Wal),
            proptest::collection::vec(any::<u64>(), 0..5).prop_map(OpSource::Tables),
        ]
    }

    fn change_strategy() -> impl Strategy<Value = ManifestChange> {
        let id = any::<u64>;
        prop_oneof![
            (id(), any::<u8>(), compression_strategy(), id())
                .prop_map(|(t, l, c, k)| ManifestChange::create(t, l, c, k)),
            id().prop_map(ManifestChange::delete),
            (id(), id(), source_strategy()).prop_map(|(op_id, count, source)| {
                ManifestChange::BeginOp {
                    op_id,
                    count,
                    source,
                }
            }),
            (id(), id(), id()).prop_map(|(op_id, first_id, count)| ManifestChange::ExtendOp {
                op_id,
                first_id,
                count
            }),
            id().prop_map(|op_id| ManifestChange::EndOp { op_id }),
            id().prop_map(|wal_id| ManifestChange::CreateWal { wal_id }),
            id().prop_map(|wal_id| ManifestChange::DeleteWal { wal_id }),
            id().prop_map(|file_id| ManifestChange::CreateVlog { file_id }),
            id().prop_map(|file_id| ManifestChange::DeleteVlog { file_id }),
            (id(), id(), id()).prop_map(|(table, wal, vlog)| ManifestChange::NextIds {
                table,
                wal,
                vlog
            }),
        ]
    }

    proptest! {
        #[test]
        fn change_set_round_trips(changes in proptest::collection::vec(change_strategy(), 0..20)) {
            // Proves encode/decode are inverse and encoded_len is exact, for any field values
            // of every kind of change.
            let mut buf = Vec::new();
            encode_change_set(&mut buf, &changes);
            prop_assert_eq!(buf.len(), change_set_encoded_len(&changes));
            prop_assert_eq!(decode_change_set(&buf), Ok(changes.clone()));
            for c in &changes {
                prop_assert!(c.encoded_len() >= MIN_CHANGE_LEN);
            }
        }

        #[test]
        fn change_set_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            // Proves arbitrary bytes decode or are refused with a reason, never a panic.
            let _ = decode_change_set(&bytes);
        }
    }

    #[test]
    fn malformed_change_sets_are_refused() {
        // Proves each decode rule: huge count, unknown op, unknown compression, unknown source
        // kind, a source count past the record, trailing bytes, cut change.
        assert!(decode_change_set(&[0xff, 0xff, 0xff, 0xff, 0x0f, 2, 1]).is_err());
        assert!(decode_change_set(&[1, 11, 5]).is_err());
        assert!(decode_change_set(&[1, 1, 5, 0, 9, 0]).is_err());
        assert!(decode_change_set(&[1, 2, 5, 0]).is_err());
        assert!(decode_change_set(&[1, 1, 5, 0]).is_err());
        assert!(decode_change_set(&[1, 3, 5, 1, 7]).is_err());
        assert!(decode_change_set(&[1, 3, 5, 1, 2, 0x7f, 1]).is_err());
        assert_eq!(decode_change_set(&[0]), Ok(vec![]));
        assert_eq!(
            decode_change_set(&[2, 1, 5, 3, 1, 0, 2, 5]),
            Ok(vec![
                ManifestChange::create(5, 3, Compression::Snappy, 0),
                ManifestChange::delete(5)
            ])
        );
        assert_eq!(
            decode_change_set(&[2, 3, 5, 2, 2, 2, 1, 3, 5, 5]),
            Ok(vec![
                ManifestChange::BeginOp {
                    op_id: 5,
                    count: 2,
                    source: OpSource::Tables(vec![1, 3])
                },
                ManifestChange::EndOp { op_id: 5 }
            ])
        );
    }
}

//! A node's directory: `node.json` (whose directory it is), `log/` (the raft log, a SettDB
//! database the log store syncs), `sm/` (the state machine, a SettDB database in managed mode)
//! and `snapshots/`. Both databases hold SettDB's directory lock, so two processes never open
//! one node's directory.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use settdb::io::{FsStorage, Storage};
use settdb::{Db, Options};

use crate::{Error, LogStore, NodeId, StateMachine};

/// The file recording which node a directory belongs to.
pub const NODE_FILE: &str = "node.json";

#[derive(Serialize, Deserialize)]
struct NodeFile {
    node_id: NodeId,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens (creating if needed) the storage of node `node_id` in `dir`.
///
/// Errors: [`Error::WrongNode`] if `dir` belongs to another node; [`Error::Corrupt`] for a
/// `node.json` or snapshot this crate did not write; [`Error::Db`] if either database cannot
/// be opened (among others `settdb::Error::Locked` when another process has the directory).
pub fn open(dir: &Path, node_id: NodeId) -> Result<(LogStore, StateMachine), Error> {
    // SettDB's own mkdir syncs each directory it creates into its parent: a node directory
    // (or its snapshots directory) that vanished in a power loss would take the raft log's
    // promises with it.
    let storage = FsStorage::new();
    storage.create_dir_all(dir)?;
    claim(dir, node_id)?;
    // Not `sync_writes`: the log store syncs itself, once per group of appends.
    let log = Db::open(Options::new(dir.join("log")))?;
    let sm = Db::open_managed(Options::new(dir.join("sm")).with_auto_value_log_gc(true))?;
    let snapshots = dir.join("snapshots");
    storage.create_dir_all(&snapshots)?;
    let state_machine = StateMachine::open(Arc::new(sm), &snapshots)?;
    Ok((LogStore::new(Arc::new(log))?, state_machine))
}

/// Records `node_id` in `dir`, or checks the id recorded there.
fn claim(dir: &Path, node_id: NodeId) -> Result<(), Error> {
    let path = dir.join(NODE_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let found: NodeFile = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: path.clone(),
                what: format!("not a node file: {e}"),
            })?;
            if found.node_id != node_id {
                return Err(Error::WrongNode {
                    dir: dir.to_path_buf(),
                    found: found.node_id,
                    expected: node_id,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tmp = dir.join("node.json.tmp");
            let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&serde_json::to_vec(&NodeFile { node_id }).unwrap_or_default())
                .and_then(|()| f.sync_all())
                .map_err(io(&tmp))?;
            fs::rename(&tmp, &path).map_err(io(&path))?;
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))
        }
        Err(e) => Err(io(&path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_belongs_to_one_node() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), 1).unwrap());
        match open(dir.path(), 2) {
            Err(Error::WrongNode {
                found: 1,
                expected: 2,
                ..
            }) => {}
            other => panic!("expected WrongNode, got {other:?}"),
        }
        // The same node reopens it.
        drop(open(dir.path(), 1).unwrap());
    }

    #[test]
    fn a_second_process_on_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path(), 1).unwrap();
        match open(dir.path(), 1) {
            Err(Error::Db(e)) => assert!(e.to_string().contains("lock"), "{e}"),
            other => panic!("expected a lock error, got {other:?}"),
        }
    }
}

//! openraft's own storage test suite (`openraft::testing::Suite`) run against SettDB's log
//! store and state machine: log state, reads, appends, truncation, purge, vote, applied
//! state, membership and snapshot transfer, each on a fresh node directory.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use settdb_raft::{LogStore, NodeId, StateMachine, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm) = settdb_raft::open(dir.path(), 1).expect("open node storage");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}

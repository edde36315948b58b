//! What a raft entry asks the state machine to do, and what applying it answered.

use serde::{Deserialize, Serialize};

/// The longest key a [`Request`] may write: SettDB's limit less the 2-byte prefix the state
/// machine keeps user keys under.
pub const MAX_KEY_LEN: usize = settdb::MAX_KEY_SIZE - 2;

/// One write of a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Deletes `key`.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

impl Op {
    /// The key the op writes.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// The payload of a raft entry: writes applied atomically, all at the version of the entry's
/// log index + 1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The writes, applied in order (a later write to the same key wins).
    pub ops: Vec<Op>,
}

impl Request {
    /// A request of one put.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Request {
            ops: vec![Op::Put {
                key: key.into(),
                value: value.into(),
            }],
        }
    }

    /// A request of one delete.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Request {
            ops: vec![Op::Delete { key: key.into() }],
        }
    }

    /// Why the state machine would refuse the request, if it would: no ops, an empty key, a
    /// key over [`MAX_KEY_LEN`]. Check before proposing; a refused request that reaches the
    /// log is applied as nothing, with the reason in its [`Response`], on every replica alike.
    pub fn validate(&self) -> Result<(), String> {
        if self.ops.is_empty() {
            return Err("a request needs at least one write".into());
        }
        for op in &self.ops {
            let key = op.key();
            if key.is_empty() {
                return Err("empty key".into());
            }
            if key.len() > MAX_KEY_LEN {
                return Err(format!(
                    "key of {} bytes is over the limit of {MAX_KEY_LEN}",
                    key.len()
                ));
            }
        }
        Ok(())
    }
}

/// What applying an entry answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The entry's log index: its writes are at version `index + 1`.
    pub index: u64,
    /// Why the request was refused (nothing of it written), if it was.
    pub refused: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_refuses_empty_requests_and_bad_keys() {
        assert!(Request::default().validate().is_err());
        assert!(Request::put("", "v").validate().is_err());
        assert!(Request::delete(vec![b'k'; MAX_KEY_LEN + 1])
            .validate()
            .is_err());
        assert!(Request::delete(vec![b'k'; MAX_KEY_LEN]).validate().is_ok());
        assert!(Request::put("k", "").validate().is_ok());
    }
}

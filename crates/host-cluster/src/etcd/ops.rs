//! Building blocks of the store's transactions.

use super::proto::{
    CREATE, Compare, CompareWith, DeleteRangeRequest, KeyValue, MOD, PutRequest, RangeRequest,
    Request, RequestOp, Response, ResponseOp,
};

/// The key was created at `revision` (0: the key is absent).
pub(super) fn created_at(key: &[u8], revision: i64) -> Compare {
    Compare {
        target: CREATE,
        key: key.to_vec(),
        with: Some(CompareWith::CreateRevision(revision)),
    }
}

/// The key was last written at `revision`.
pub(super) fn modified_at(key: &[u8], revision: i64) -> Compare {
    Compare {
        target: MOD,
        key: key.to_vec(),
        with: Some(CompareWith::ModRevision(revision)),
    }
}

/// Writes `key`, attached to the etcd lease `lease` unless it is 0.
pub(super) fn put(key: &[u8], value: Vec<u8>, lease: i64) -> RequestOp {
    RequestOp {
        request: Some(Request::Put(PutRequest {
            key: key.to_vec(),
            value,
            lease,
        })),
    }
}

/// Reads `key`.
pub(super) fn get(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(Request::Range(RangeRequest {
            key: key.to_vec(),
            range_end: Vec::new(),
        })),
    }
}

/// Deletes `key`, or the keys in `[key, range_end)` when `range_end` is
/// not empty.
pub(super) fn delete(key: &[u8], range_end: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(Request::DeleteRange(DeleteRangeRequest {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
        })),
    }
}

/// The key a read of a transaction found, if any.
pub(super) fn found(response: Option<&ResponseOp>) -> Option<&KeyValue> {
    match response?.response.as_ref()? {
        Response::Range(range) => range.kvs.first(),
        _ => None,
    }
}

/// How many keys a delete of a transaction deleted.
pub(super) fn deleted(response: Option<&ResponseOp>) -> i64 {
    match response.and_then(|response| response.response.as_ref()) {
        Some(Response::DeleteRange(delete)) => delete.deleted,
        _ => 0,
    }
}

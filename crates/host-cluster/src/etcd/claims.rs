//! The claim store: a key per (job, tick) holding the claim, written at
//! the revision that is its token, and beside it, while a claim's deadline
//! runs, a live key attached to an etcd lease of the deadline.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tonic::Status;

use super::ops::{created_at, delete, deleted, found, get, modified_at, put};
use super::proto::TxnRequest;
use super::{EtcdStore, lease_seconds, revision, token, unexpected};
use crate::claims::{claim_args, tick_millis, tick_time};
use crate::{Claim, ClaimOutcome, ClaimStore, ClusterError};

/// Rounds of read-then-write a claim tries when the record changes under
/// it; a change means another claim wrote it, so the next read decides.
const ROUNDS: usize = 3;

/// A claim's record, as its key's value: `<attempt> <finished 0|1>
/// <deadline 0|1> <holder>` (the holder last, as it may hold spaces).
#[derive(Debug, PartialEq, Eq)]
struct Record {
    attempt: u32,
    finished: bool,
    deadline: bool,
    holder: String,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {} {}",
            self.attempt,
            u8::from(self.finished),
            u8::from(self.deadline),
            self.holder
        )
        .into_bytes()
    }

    fn decode(value: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.splitn(4, ' ');
        let attempt = parts.next()?.parse().ok()?;
        let flag = |part: Option<&str>| match part? {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        };
        let finished = flag(parts.next())?;
        let deadline = flag(parts.next())?;
        let holder = parts.next()?.to_owned();
        Some(Self {
            attempt,
            finished,
            deadline,
            holder,
        })
    }
}

#[async_trait]
impl ClaimStore for EtcdStore {
    async fn try_claim(
        &self,
        job: &str,
        tick: SystemTime,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError> {
        let millis = claim_args(job, holder, tick)?;
        let prefix = &self.inner.options.prefix;
        let (key, live) = (prefix.claim(job, millis), prefix.claim_live(job, millis));
        let client = self.client().await;
        self.timed(async {
            for _ in 0..ROUNDS {
                // The record and its live key, read at one revision.
                let read = client
                    .txn(TxnRequest {
                        compare: Vec::new(),
                        success: vec![get(&key), get(&live)],
                        failure: Vec::new(),
                    })
                    .await?;
                let alive = found(read.responses.get(1)).is_some();
                let (attempt, unchanged) = match found(read.responses.first()) {
                    None => (1, created_at(&key, 0)),
                    Some(existing) => {
                        let record =
                            Record::decode(&existing.value).ok_or_else(|| unexpected(&key))?;
                        // Recovery: both claims have deadlines, the record's
                        // is unfinished and its live key expired.
                        if deadline.is_none() || !record.deadline || record.finished || alive {
                            return Ok(ClaimOutcome::Taken {
                                holder: record.holder,
                                finished: record.finished,
                            });
                        }
                        (record.attempt + 1, modified_at(&key, existing.mod_revision))
                    }
                };
                let record = Record {
                    attempt,
                    finished: false,
                    deadline: deadline.is_some(),
                    holder: holder.to_owned(),
                };
                let mut compare = vec![unchanged];
                let mut success = vec![put(&key, record.encode(), 0)];
                let lease = match deadline {
                    Some(deadline) => client.grant(lease_seconds(deadline)).await?,
                    None => 0,
                };
                if lease != 0 {
                    compare.push(created_at(&live, 0));
                    success.push(put(&live, Vec::new(), lease));
                }
                let written = client
                    .txn(TxnRequest {
                        compare,
                        success,
                        failure: Vec::new(),
                    })
                    .await;
                match written {
                    Ok(answer) if answer.succeeded => {
                        return Ok(ClaimOutcome::Claimed(Claim::new(
                            Arc::from(job),
                            tick_time(millis),
                            Arc::from(holder),
                            token(revision(answer.header.as_ref())?),
                            attempt,
                        )));
                    }
                    Ok(_) if lease != 0 => client.revoke(lease).await?,
                    Ok(_) => {}
                    Err(status) => {
                        if lease != 0 {
                            let _ = client.revoke(lease).await;
                        }
                        return Err(status);
                    }
                }
            }
            Err(Status::aborted(format!(
                "the claim `{}` changed under each of {ROUNDS} tries",
                String::from_utf8_lossy(&key)
            )))
        })
        .await
    }

    async fn finish(&self, claim: &Claim) -> Result<(), ClusterError> {
        let millis = tick_millis(claim.tick())?;
        let prefix = &self.inner.options.prefix;
        let (key, live) = (
            prefix.claim(claim.job(), millis),
            prefix.claim_live(claim.job(), millis),
        );
        let Ok(written_at) = i64::try_from(claim.token().get()) else {
            return Ok(());
        };
        // A finished claim is never recovered, so whether it had a
        // deadline no longer matters.
        let record = Record {
            attempt: claim.attempt(),
            finished: true,
            deadline: false,
            holder: claim.holder().to_owned(),
        };
        let client = self.client().await;
        self.timed(async {
            let answer = client
                .txn(TxnRequest {
                    compare: vec![modified_at(&key, written_at)],
                    success: vec![
                        get(&live),
                        put(&key, record.encode(), 0),
                        delete(&live, &[]),
                    ],
                    failure: Vec::new(),
                })
                .await?;
            if let Some(alive) = found(answer.responses.first()).filter(|_| answer.succeeded) {
                client.revoke(alive.lease).await?;
            }
            Ok(())
        })
        .await
    }

    async fn purge(&self, job: &str, before: SystemTime) -> Result<u64, ClusterError> {
        ClusterError::check("job name", job)?;
        let millis = tick_millis(before)?;
        let prefix = &self.inner.options.prefix;
        let claims = (
            prefix.claim_stem(job).into_bytes(),
            prefix.claim(job, millis),
        );
        let lives = (
            prefix.claim_live_stem(job).into_bytes(),
            prefix.claim_live(job, millis),
        );
        let client = self.client().await;
        self.timed(async {
            let answer = client
                .txn(TxnRequest {
                    compare: Vec::new(),
                    success: vec![delete(&claims.0, &claims.1), delete(&lives.0, &lives.1)],
                    failure: Vec::new(),
                })
                .await?;
            Ok(deleted(answer.responses.first()).unsigned_abs())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let record = Record {
            attempt: 3,
            finished: true,
            deadline: false,
            holder: "a b".to_owned(),
        };
        assert_eq!(record.encode(), b"3 1 0 a b");
        assert_eq!(Record::decode(&record.encode()), Some(record));
        for bad in [&b"x 0 0 a"[..], b"1 2 0 a", b"1 0 0", b"\xff"] {
            assert_eq!(Record::decode(bad), None);
        }
    }
}

//! The lease store: one key per lease name, attached to an etcd lease of
//! the term's time to live; the key's create revision is the term's token.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::ops::{created_at, delete, found, get, put};
use super::proto::TxnRequest;
use super::{EtcdStore, lease_seconds, revision, token, unexpected};
use crate::{ClusterError, Lease, LeaseInfo, LeaseStore};

/// Rounds of read-then-create an acquire tries when the key changes under
/// it (a racing acquire, a term ending) before it reports the lease taken.
const ROUNDS: usize = 3;

#[async_trait]
impl LeaseStore for EtcdStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        ClusterError::check("lease name", name)?;
        ClusterError::check("holder id", holder)?;
        let key = self.inner.options.prefix.lease(name);
        let term = |revision| Lease::new(Arc::from(name), Arc::from(holder), token(revision));
        let client = self.client().await;
        self.timed(async {
            for _ in 0..ROUNDS {
                match client.get(&key).await? {
                    // The holder's own term: extended, kept. A keep-alive
                    // that finds the etcd lease gone waited for its key to
                    // go too, so the next round finds the lease free.
                    Some(held) if held.value == holder.as_bytes() => {
                        if client.keep_alive(held.lease).await? {
                            return Ok(Some(term(held.create_revision)));
                        }
                    }
                    Some(_) => return Ok(None),
                    None => {
                        let lease = client.grant(lease_seconds(ttl)).await?;
                        let created = client
                            .txn(TxnRequest {
                                compare: vec![created_at(&key, 0)],
                                success: vec![put(&key, holder.as_bytes().to_vec(), lease)],
                                failure: Vec::new(),
                            })
                            .await;
                        match created {
                            Ok(answer) if answer.succeeded => {
                                return Ok(Some(term(revision(answer.header.as_ref())?)));
                            }
                            // Another acquire created the key first.
                            Ok(_) => client.revoke(lease).await?,
                            Err(status) => {
                                // Whether the key was written is unknown: if
                                // it was, revoking ends that term at once.
                                let _ = client.revoke(lease).await;
                                return Err(status);
                            }
                        }
                    }
                }
            }
            Ok(None)
        })
        .await
    }

    async fn renew(&self, lease: &Lease, _ttl: Duration) -> Result<bool, ClusterError> {
        let key = self.inner.options.prefix.lease(lease.name());
        let client = self.client().await;
        self.timed(async {
            match client.get(&key).await? {
                Some(held)
                    if token(held.create_revision) == lease.token()
                        && held.value == lease.holder().as_bytes() =>
                {
                    client.keep_alive(held.lease).await
                }
                _ => Ok(false),
            }
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        let key = self.inner.options.prefix.lease(lease.name());
        let Ok(revision) = i64::try_from(lease.token().get()) else {
            return Ok(());
        };
        let client = self.client().await;
        self.timed(async {
            let answer = client
                .txn(TxnRequest {
                    compare: vec![created_at(&key, revision)],
                    success: vec![get(&key), delete(&key, &[])],
                    failure: Vec::new(),
                })
                .await?;
            // The key is gone; its etcd lease would outlive it for nothing.
            if let Some(held) = found(answer.responses.first()).filter(|_| answer.succeeded) {
                client.revoke(held.lease).await?;
            }
            Ok(())
        })
        .await
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        ClusterError::check("lease name", name)?;
        let key = self.inner.options.prefix.lease(name);
        let client = self.client().await;
        self.timed(async {
            let Some(held) = client.get(&key).await? else {
                return Ok(None);
            };
            let holder = std::str::from_utf8(&held.value).map_err(|_| unexpected(&key))?;
            if held.lease == 0 {
                return Err(unexpected(&key));
            }
            // The etcd lease gone: the key goes with it in a moment.
            let Some(seconds) = client.time_to_live(held.lease).await? else {
                return Ok(None);
            };
            Ok(Some(LeaseInfo {
                holder: Arc::from(holder),
                token: token(held.create_revision),
                expires_in: Duration::from_secs(seconds.unsigned_abs()),
            }))
        })
        .await
    }
}

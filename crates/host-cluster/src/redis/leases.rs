//! The lease store: a key per lease that expires with it, and a term
//! counter per name that never does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::RedisStore;
use super::scripts::{ACQUIRE, CURRENT, RELEASE, RENEW};
use crate::{ClusterError, FencingToken, Lease, LeaseInfo, LeaseStore};

/// A time to live in whole milliseconds, from 1 (`PX 0` is refused) to
/// [`LONGEST`](super::LONGEST) (Redis refuses an expiry past its range).
fn millis(ttl: Duration) -> u64 {
    super::millis(ttl).max(1)
}

/// What the lease key holds for a term: its token, then its holder (the
/// token has no `:`, so the holder may).
fn value(lease: &Lease) -> String {
    format!("{}:{}", lease.token(), lease.holder())
}

#[async_trait]
impl LeaseStore for RedisStore {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        ClusterError::check("lease name", name)?;
        ClusterError::check("holder id", holder)?;
        let prefix = &self.inner.options.prefix;
        let mut invocation = ACQUIRE.prepare_invoke();
        invocation
            .key(prefix.lease(name))
            .key(prefix.lease_token(name))
            .arg(holder)
            .arg(millis(ttl));
        let token: Option<u64> = self.run(&invocation).await?;
        Ok(token
            .map(|token| Lease::new(Arc::from(name), Arc::from(holder), FencingToken::new(token))))
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        let mut invocation = RENEW.prepare_invoke();
        invocation
            .key(self.inner.options.prefix.lease(lease.name()))
            .arg(value(lease))
            .arg(millis(ttl));
        let renewed: i64 = self.run(&invocation).await?;
        Ok(renewed == 1)
    }

    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        let mut invocation = RELEASE.prepare_invoke();
        invocation
            .key(self.inner.options.prefix.lease(lease.name()))
            .arg(value(lease));
        let _: i64 = self.run(&invocation).await?;
        Ok(())
    }

    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        ClusterError::check("lease name", name)?;
        let key = self.inner.options.prefix.lease(name);
        let mut invocation = CURRENT.prepare_invoke();
        invocation.key(&key);
        let Some((held, millis_left)): Option<(String, i64)> = self.run(&invocation).await? else {
            return Ok(None);
        };
        let parsed = held
            .split_once(':')
            .and_then(|(token, holder)| Some((token.parse::<u64>().ok()?, holder)));
        // A key without an expiry (-1) was not written by this store.
        let (Some((token, holder)), Ok(millis_left)) = (parsed, u64::try_from(millis_left)) else {
            return Err(self.unexpected(&key, (held, millis_left)));
        };
        Ok(Some(LeaseInfo {
            holder: Arc::from(holder),
            token: FencingToken::new(token),
            expires_in: Duration::from_millis(millis_left),
        }))
    }
}

//! The claim store: a hash per (job, tick in milliseconds), a claim
//! counter per job, and a sorted set of the job's ticks for purge.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::{FromRedisValue as _, Value};

use super::RedisStore;
use super::scripts::{CLAIM, FINISH, PURGE};
use crate::claims::{claim_args, tick_millis, tick_time};
use crate::{Claim, ClaimOutcome, ClaimStore, ClusterError, FencingToken};

#[async_trait]
impl ClaimStore for RedisStore {
    async fn try_claim(
        &self,
        job: &str,
        tick: SystemTime,
        holder: &str,
        deadline: Option<Duration>,
    ) -> Result<ClaimOutcome, ClusterError> {
        let millis = claim_args(job, holder, tick)?;
        let prefix = &self.inner.options.prefix;
        let key = format!("{}{millis}", prefix.claim_stem(job));
        // '' for no deadline; a deadline of 0 ms still is one.
        let deadline =
            deadline.map_or_else(String::new, |deadline| super::millis(deadline).to_string());
        let mut invocation = CLAIM.prepare_invoke();
        invocation
            .key(&key)
            .key(prefix.claim_token(job))
            .key(prefix.claim_ticks(job))
            .arg(holder)
            .arg(deadline)
            .arg(millis);
        let (claimed, first, second): (i64, Value, i64) = self.run(&invocation).await?;
        if claimed == 0 {
            let found = String::from_redis_value(first.clone())
                .map_err(|_| self.unexpected(&key, &first))?;
            return Ok(ClaimOutcome::Taken {
                holder: found,
                finished: second == 1,
            });
        }
        let token =
            u64::from_redis_value(first.clone()).map_err(|_| self.unexpected(&key, &first))?;
        let attempt = u32::try_from(second).map_err(|_| self.unexpected(&key, second))?;
        Ok(ClaimOutcome::Claimed(Claim::new(
            Arc::from(job),
            tick_time(millis),
            Arc::from(holder),
            FencingToken::new(token),
            attempt,
        )))
    }

    async fn finish(&self, claim: &Claim) -> Result<(), ClusterError> {
        let key = format!(
            "{}{}",
            self.inner.options.prefix.claim_stem(claim.job()),
            tick_millis(claim.tick())?
        );
        let mut invocation = FINISH.prepare_invoke();
        invocation.key(key).arg(claim.token().get());
        let _: i64 = self.run(&invocation).await?;
        Ok(())
    }

    async fn purge(&self, job: &str, before: SystemTime) -> Result<u64, ClusterError> {
        ClusterError::check("job name", job)?;
        let prefix = &self.inner.options.prefix;
        let mut invocation = PURGE.prepare_invoke();
        invocation
            .key(prefix.claim_ticks(job))
            .arg(tick_millis(before)?)
            .arg(prefix.claim_stem(job));
        self.run(&invocation).await
    }
}

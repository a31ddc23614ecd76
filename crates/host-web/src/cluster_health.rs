//! A health check for the host's lease store.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use host_core::ClusterStoreHandle;
use host_di::Injectable;

use crate::{HealthCheck, HealthCheckResult};

/// Unhealthy while the lease store the host's cluster singletons and
/// cluster-wide schedules use does not answer (the error says why, where
/// detailed errors are shown); healthy when it does, or when the host uses
/// none. Register it with `builder.add_health_check::<LeaseStoreHealthCheck>()`:
/// `/health/ready` then fails while the store is down, which takes a
/// standby instance out of a load balancer too; leave it out if the
/// instances should keep serving requests meanwhile (their singletons
/// only stand by).
#[derive(Debug, Injectable)]
pub struct LeaseStoreHealthCheck {
    handle: Arc<ClusterStoreHandle>,
}

#[async_trait]
impl HealthCheck for LeaseStoreHealthCheck {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("lease store")
    }

    async fn check(&self) -> HealthCheckResult {
        match self.handle.probe().await {
            None | Some(Ok(())) => HealthCheckResult::healthy(),
            Some(Err(error)) => HealthCheckResult::unhealthy(error.to_string()),
        }
    }
}

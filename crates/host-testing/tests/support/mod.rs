//! Services the tests run: one that fails a given number of runs before it
//! works, one that runs until asked to stop, one whose `start` fails.
#![allow(dead_code, unreachable_pub)]

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};

use host_core::{
    BackgroundService, HostedService, LifecycleContext, ServiceContext, ServiceError, async_trait,
    bail,
};

/// Fails its first `failures` runs, then runs until asked to stop.
pub struct Flaky {
    pub name: &'static str,
    pub failures: u32,
    runs: AtomicU32,
}

impl Flaky {
    pub fn new(name: &'static str, failures: u32) -> Self {
        Self {
            name,
            failures,
            runs: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl BackgroundService for Flaky {
    fn name(&self) -> Cow<'static, str> {
        self.name.into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        if run <= self.failures {
            bail!("run {run} failed on purpose");
        }
        tracing::info!(target: "app::flaky", run, "working");
        ctx.stopping().await;
        Ok(())
    }
}

/// Runs until asked to stop.
pub struct Idle(pub &'static str);

#[async_trait]
impl BackgroundService for Idle {
    fn name(&self) -> Cow<'static, str> {
        self.0.into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

/// A hosted service whose `start` fails.
pub struct FailsToStart(pub &'static str);

#[async_trait]
impl HostedService for FailsToStart {
    fn name(&self) -> Cow<'static, str> {
        self.0.into()
    }

    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        bail!("no database")
    }

    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// Reports ready once its run has begun, then runs until asked to stop.
pub struct Reporting(pub &'static str);

#[async_trait]
impl BackgroundService for Reporting {
    fn name(&self) -> Cow<'static, str> {
        self.0.into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.ready();
        ctx.stopping().await;
        Ok(())
    }
}

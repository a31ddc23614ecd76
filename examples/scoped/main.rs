//! Scoped services within a background service: the worker is a singleton,
//! so it opens a scope per unit of work and resolves the scoped services from
//! it (the .NET "consume a scoped service in a BackgroundService" pattern).
//!
//! `cargo run --example scoped` processes one job a second, each in its own
//! scope with its own `UnitOfWork`, disposed when the scope closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use host::di::Dispose;
use host::prelude::*;

/// A singleton shared by every unit of work: hands out job numbers.
#[derive(Injectable, Default)]
struct JobCounter(#[inject(default)] AtomicU64);

impl JobCounter {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// One per scope: what a database transaction or a request context would be.
#[derive(Injectable)]
#[injectable(dispose)]
struct UnitOfWork {
    counter: Arc<JobCounter>,
    #[inject(default)]
    job: std::sync::OnceLock<u64>,
}

impl UnitOfWork {
    fn job(&self) -> u64 {
        *self.job.get_or_init(|| self.counter.next())
    }
}

impl Dispose for UnitOfWork {
    fn dispose(&self) {
        tracing::info!(job = self.job(), "unit of work disposed with its scope");
    }
}

/// Opens a scope per job; never holds a scoped service beyond it.
#[derive(Injectable)]
struct JobRunner {
    services: ServiceProvider,
}

#[async_trait]
impl BackgroundService for JobRunner {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = ctx.stopping() => return Ok(()),
                _ = every.tick() => {
                    let scope = self.services.create_scope();
                    let work = scope.get::<UnitOfWork>()?;
                    // Resolved twice in one scope: the same instance.
                    let again = scope.get::<UnitOfWork>()?;
                    tracing::info!(job = work.job(), same = Arc::ptr_eq(&work, &again), "processing");
                    drop((work, again));
                    scope.close().await;
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut builder = Host::builder();
    builder.services().add_singleton_self::<JobCounter>();
    builder.services().add_scoped_self::<UnitOfWork>();
    builder.add_hosted_service::<JobRunner>();
    builder.run().await
}

//! A cluster singleton: billing must run on one instance of the
//! application however many run. Start it in three terminals in one
//! directory, with no configuration:
//!
//! ```sh
//! cargo run --example cluster     # in each of three terminals
//! ```
//!
//! One instance logs `leads billing (fencing token 1)` and then
//! `billing run 1 (fencing token 1)` every second; the others log
//! `stands by: ... leads billing`. Beside it, a cluster-wide schedule: every
//! five seconds one instance, whichever claims the tick first, logs
//! `report for <tick> (claim token N)`; each tick appears once across the
//! three terminals. Stop the leader with Ctrl+C: it releases
//! the lease once its work has returned, and another instance takes over
//! within about two seconds with a larger token. Kill it with `kill -9`
//! instead: the operating system drops its file lock, and another takes
//! over at its next try. Every instance serves its health on a port of its
//! own (`Now listening on: ...`): `/health/ready` shows who leads.
//!
//! The instances find each other through a file lock under the content
//! root (`.host/leases`, the current directory's), the default lease store
//! for the instances of one machine. Across machines, a PostgreSQL lease
//! store takes one key (see `docs/scale-out.md`).
//!
//! The timings come from the command line too (`--services.Billing.cluster_singleton.lease=6s`,
//! with `name`, `renew_deadline` and `retry_period` beside it).
//!
//! The work writes its fencing token beside what it does: a lease makes
//! two leaders rare, the token lets the target refuse a stale one.

use host::prelude::*;

/// Bills once a second while this instance leads.
struct Billing;

#[async_trait]
impl BackgroundService for Billing {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let token = ctx
            .fencing_token()
            .expect("a cluster singleton runs only while it leads");
        let mut every = ctx.every(Duration::from_secs(1));
        let mut run = 0;
        while every.tick().await {
            run += 1;
            tracing::info!(
                token = token.get(),
                "billing run {run} (fencing token {token})"
            );
        }
        tracing::info!("billing stops (fencing token {token})");
        Ok(())
    }
}

/// Every five seconds, on one instance of the cluster: a report of the tick.
struct Report;

#[async_trait]
impl PeriodicService for Report {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        match ctx.tick_claim() {
            Some(claim) => tracing::info!(
                key = claim.idempotency_key(),
                "report for {} (claim token {})",
                claim.idempotency_key(),
                claim.token()
            ),
            None => tracing::info!("report run by hand"),
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut builder = Host::builder();
    builder.args(std::env::args());
    // A free port for each instance: three terminals, no collision.
    builder
        .configuration()
        .add_defaults(host::config::figment::providers::Serialized::default(
            "web.urls",
            ["127.0.0.1:0"],
        ));
    builder
        .add_hosted_service_instance_with(Billing, |billing| billing.cluster_singleton("billing"))
        .add_periodic_instance_with(Report, Schedule::cron("*/5 * * * * *"), |report| {
            report.cluster_wide(ClusterWide::new())
        })
        .web(|app| app);
    builder.run().await
}

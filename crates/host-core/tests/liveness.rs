//! Heartbeats: a silent service is reported hung; with no policy it stays
//! hung (the host is no longer live) until it beats again; with one, its
//! run is ended and restarted, aborted if it ignores its token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use host_core::{
    BackgroundService, Restart, ServiceContext, ServiceError, ServiceState, async_trait,
};
use host_testing::TestHost;

const NAME: &str = "liveness::Worker";

/// Beats every 100 ms while `beating`; otherwise stays silent (still
/// honouring its token unless `deaf`).
struct Worker {
    beating: Arc<AtomicBool>,
    deaf: bool,
    runs: Arc<AtomicU32>,
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        loop {
            if self.deaf {
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else if !ctx.delay(Duration::from_millis(100)).await {
                return Ok(());
            }
            if self.beating.load(Ordering::SeqCst) {
                ctx.heartbeat();
            }
        }
    }
}

fn worker(beating: bool, deaf: bool) -> (Worker, Arc<AtomicBool>, Arc<AtomicU32>) {
    let flag = Arc::new(AtomicBool::new(beating));
    let runs = Arc::new(AtomicU32::new(0));
    (
        Worker {
            beating: flag.clone(),
            deaf,
            runs: runs.clone(),
        },
        flag,
        runs,
    )
}

#[tokio::test(start_paused = true)]
async fn a_silent_service_without_a_policy_is_hung_until_it_beats_again() {
    let (service, beating, runs) = worker(true, false);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(service, |s| s.heartbeat(Duration::from_secs(1)));
    let host = builder.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(host.states().is_live());

    beating.store(false, Ordering::SeqCst);
    host.wait_for(NAME, |state| matches!(state, ServiceState::Hung))
        .await;
    let status = &host.states().snapshot()[0];
    assert!(status.hung_beyond_policy);
    assert!(!host.states().is_live());
    host.assert_logged("`liveness::Worker` missed its heartbeat deadline (1s");
    host.assert_logged("no restart policy mends it");

    beating.store(true, Ordering::SeqCst);
    host.wait_for(NAME, |state| matches!(state, ServiceState::Running))
        .await;
    assert!(host.states().is_live());
    host.assert_logged("`liveness::Worker` beats again; no longer hung");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "never restarted");
    host.assert_events(&[(NAME, "running"), (NAME, "hung"), (NAME, "running")]);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_silent_service_with_a_policy_is_restarted_and_the_host_stays_live() {
    let (service, _beating, runs) = worker(false, false);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(service, |s| {
        s.heartbeat(Duration::from_secs(1)).restart(
            Restart::on_failure()
                .backoff(Duration::from_secs(1), Duration::from_secs(1))
                .jitter(0.0),
        )
    });
    let host = builder.start().await.unwrap();
    host.wait_for(NAME, |state| {
        matches!(state, ServiceState::Restarting { .. })
    })
    .await;
    assert!(host.states().is_live());
    host.wait_for(NAME, |state| matches!(state, ServiceState::Running))
        .await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(host.states().snapshot()[0].restarts, 1);
    host.assert_logged("ending its run for its restart policy");
    host.assert_logged("missed its heartbeat deadline (1s); restarting in 1s (attempt 1)");
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hung_run_that_ignores_its_token_is_aborted_after_its_stop_timeout() {
    let (service, _beating, runs) = worker(false, true);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(service, |s| {
        s.heartbeat(Duration::from_secs(1))
            .stop_timeout(Duration::from_secs(2))
            .restart(
                Restart::on_failure().backoff(Duration::from_secs(60), Duration::from_secs(60)),
            )
    });
    let host = builder.start().await.unwrap();
    host.wait_for(NAME, |state| {
        matches!(state, ServiceState::Restarting { .. })
    })
    .await;
    host.assert_logged(
        "`liveness::Worker` did not return within its stop timeout (2s) after being asked to \
         (restarted after missing its heartbeat); its run was aborted",
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    host.stop().await.unwrap();
}

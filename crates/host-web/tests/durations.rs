//! Durations too long for a deadline (`u64::MAX` seconds, beyond what an
//! `Instant` holds) mean no deadline, never a panic: for `shutdown_delay`
//! and `drain_timeout` (the host's own shutdown timeout still bounds the
//! stop), `health.check_timeout` and `health.cache_for` (a result kept for
//! good).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::get;
use host_web::{HealthCheck, HealthCheckResult, WebHostBuilderExt, async_trait};

use common::{bounded, builder, get_json, start};

/// `u64::MAX` seconds: parsed, but past any `Instant`.
const HUGE: &str = "18446744073709551615s";

#[derive(Clone, Default)]
struct Counted(Arc<AtomicUsize>);

#[async_trait]
impl HealthCheck for Counted {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "counted".into()
    }

    async fn check(&self) -> HealthCheckResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        HealthCheckResult::healthy()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_durations_are_no_deadline_and_never_panic() {
    let args = [
        format!("--web.shutdown_delay={HUGE}"),
        format!("--web.drain_timeout={HUGE}"),
        format!("--web.health.check_timeout={HUGE}"),
        format!("--web.health.cache_for={HUGE}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut builder = builder(&args);
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_millis(300);
    });
    let counted = Counted::default();
    builder.add_health_check_instance(counted.clone());
    builder.web(|app| app.route("/hello", get(|| async { "hello" })));
    let (mut host, address) = start(builder).await;

    for _ in 0..2 {
        let (status, report) = get_json(address, "/health/ready").await;
        assert_eq!(status, 200, "{report}");
    }
    assert_eq!(counted.0.load(Ordering::SeqCst), 1, "kept for good");

    // The delay and the drain have no end of their own: the host's
    // shutdown timeout ends them, and the stop is still clean.
    host.lifetime().stop_application();
    bounded("the host's stop", host.stop())
        .await
        .expect("a clean stop");
    common::wait_until_refused(address).await;
}

#[tokio::test(start_paused = true)]
async fn a_huge_cache_period_keeps_the_result_without_panicking() {
    let counted = Counted::default();
    let mut builder = builder(&[&format!("--web.health.cache_for={HUGE}")]);
    builder.add_health_check_instance(counted.clone());
    builder.web(|app| app);
    let host = builder.build().unwrap();
    let client = host_web::TestClient::new(&host).unwrap();
    for _ in 0..2 {
        // Not started: 503, but the check's report is there (a panic would
        // answer 500 without a report).
        let report: serde_json::Value = client.get("/health/ready").await.json();
        assert_eq!(report["checks"][0]["status"], "healthy", "{report}");
        tokio::time::sleep(Duration::from_secs(10 * 365 * 24 * 3600)).await;
    }
    assert_eq!(counted.0.load(Ordering::SeqCst), 1);
}

//! The health endpoints: readiness goes starting (503, through `TestClient`
//! on a built host) -> started (200) -> stopping (503 from the stop request
//! on, while `shutdown_delay` keeps the server serving); a failed
//! background service (under `Ignore`) makes it 503 and is named, its error
//! shown only with `detailed_errors` or in Development; health checks:
//! degraded keeps 200, unhealthy, timed out and panicking ones give 503;
//! liveness, custom paths (a path without `/` or the same path twice,
//! among the live, ready and startup paths, is refused at build), and the
//! endpoints turned off; a check's result is
//! cached for `cache_for` (concurrent requests share one run, within the
//! period no rerun, after it a rerun, `0s` runs it per request but never
//! twice at once) while the stop still turns readiness 503 at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use host_core::{
    BackgroundService, BackgroundServiceFailure, HostBuilder, ServiceContext, ServiceError,
    ServiceState,
};
use host_di::Injectable;
use host_web::{HealthCheck, HealthCheckResult, TestClient, WebHostBuilderExt, async_trait};
use serde_json::Value;
use tokio::sync::watch;

use common::{NO_HANG, bounded, builder, get as http_get, get_json, start, stop};

/// Fails at once; under `Ignore` the host keeps running.
struct Failing;

#[async_trait]
impl BackgroundService for Failing {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Err(anyhow::anyhow!("disk on fire"))
    }
}

/// Returns at once, without error: completed, still healthy.
struct Finishes;

#[async_trait]
impl BackgroundService for Finishes {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[derive(Injectable)]
struct CacheCold;

#[async_trait]
impl HealthCheck for CacheCold {
    async fn check(&self) -> HealthCheckResult {
        HealthCheckResult::degraded("cache cold")
    }
}

struct DatabaseDown;

#[async_trait]
impl HealthCheck for DatabaseDown {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "database".into()
    }

    async fn check(&self) -> HealthCheckResult {
        HealthCheckResult::unhealthy("connection refused by db.internal")
    }
}

struct Sleeps;

#[async_trait]
impl HealthCheck for Sleeps {
    async fn check(&self) -> HealthCheckResult {
        tokio::time::sleep(Duration::from_secs(600)).await;
        HealthCheckResult::healthy()
    }
}

struct Panics;

#[async_trait]
impl HealthCheck for Panics {
    async fn check(&self) -> HealthCheckResult {
        panic!("the check broke")
    }
}

struct Fine;

#[async_trait]
impl HealthCheck for Fine {
    async fn check(&self) -> HealthCheckResult {
        HealthCheckResult::healthy()
    }
}

fn with_route(args: &[&str]) -> HostBuilder {
    let mut builder = builder(args);
    builder.web(|app| app.route("/hello", get(|| async { "hello" })));
    builder
}

/// The entry of `name` in the report's `key` list.
fn entry<'a>(report: &'a Value, key: &str, name: &str) -> &'a Value {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the {key} of {report}"))
}

#[tokio::test]
async fn readiness_is_starting_on_a_built_host() {
    let host = with_route(&[]).build().unwrap();
    let client = TestClient::new(&host).unwrap();
    let ready = client.get("/health/ready").await;
    assert_eq!(ready.status(), 503, "{}", ready.text());
    let report: Value = ready.json();
    assert_eq!(report["host"], "starting", "{report}");
    assert_eq!(report["status"], "unhealthy", "{report}");
    assert_eq!(
        entry(&report, "services", "host_web::WebServer")["state"],
        "not_started"
    );
    assert_eq!(client.get("/health/live").await.status(), 200);
    assert_eq!(client.get("/health/startup").await.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_goes_started_then_stopping_while_the_delay_keeps_serving() {
    const DELAY: Duration = Duration::from_secs(3);
    let (mut host, address) = start(with_route(&["--web.shutdown_delay=3s"])).await;

    let (status, report) = get_json(address, "/health/ready").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "healthy", "{report}");
    assert_eq!(report["host"], "started", "{report}");
    assert_eq!(
        entry(&report, "services", "host_web::WebServer")["state"],
        "running"
    );
    assert_eq!(report["checks"], serde_json::json!([]));

    // From the request on, before the host's stop has begun.
    host.lifetime().stop_application();
    let (status, report) = get_json(address, "/health/ready").await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["host"], "stopping", "{report}");
    assert_eq!(report["status"], "unhealthy", "{report}");

    let began = Instant::now();
    let stopping = tokio::spawn(async move {
        let result = host.stop().await;
        (result, began.elapsed())
    });
    // The delay keeps the server serving, not ready.
    let (status, report) = get_json(address, "/health/ready").await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["host"], "stopping", "{report}");
    assert_eq!(http_get(address, "/health/live").await.0, 200);
    assert_eq!(http_get(address, "/hello").await, (200, "hello".into()));
    assert!(!stopping.is_finished());

    let (result, took) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop");
    assert!(took >= DELAY, "the stop took {took:?}, less than the delay");
    common::wait_until_refused(address).await;
}

async fn failed_background_service(args: &[&str], environment: &str) -> (u16, Value, String) {
    let mut builder = with_route(args);
    builder
        .environment_name(environment)
        .configure_host_options(|options| {
            options.background_service_failure = BackgroundServiceFailure::Ignore;
        })
        .add_hosted_service_instance(Finishes)
        .add_hosted_service_instance(Failing);
    let (mut host, address) = start(builder).await;
    let name = std::any::type_name::<Failing>();
    let states = host.service_states();
    bounded("the service's failure", async {
        while !matches!(states.get(name), Some(ServiceState::Failed(_))) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let (status, body) = http_get(address, "/health/ready").await;
    let report: Value = serde_json::from_str(&body).unwrap();
    assert!(!host.lifetime().is_stop_requested(), "ignored");
    assert_eq!(report["host"], "started", "{report}");
    let failing = entry(&report, "services", name);
    assert_eq!(failing["state"], "failed", "{report}");
    assert_eq!(
        entry(&report, "services", std::any::type_name::<Finishes>())["state"],
        "completed",
        "{report}"
    );
    stop(&mut host).await;
    (status, report, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_background_service_is_named_without_its_error_by_default() {
    let (status, report, body) = failed_background_service(&[], "Production").await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["status"], "unhealthy", "{report}");
    let failing = entry(&report, "services", std::any::type_name::<Failing>());
    assert!(failing.get("error").is_none(), "{report}");
    assert!(!body.contains("disk on fire"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_is_shown_with_detailed_errors_or_in_development() {
    for (args, environment) in [
        (&["--web.health.detailed_errors=true"][..], "Production"),
        (&[][..], "Development"),
    ] {
        let (status, report, _) = failed_background_service(args, environment).await;
        assert_eq!(status, 503, "{report}");
        let failing = entry(&report, "services", std::any::type_name::<Failing>());
        let error = failing["error"].as_str().unwrap_or_else(|| {
            panic!("{args:?} in {environment}: no error in {report}");
        });
        assert!(error.contains("disk on fire"), "{error}");
    }
    // Turned off explicitly, even in Development.
    let (_, _, body) =
        failed_background_service(&["--web.health.detailed_errors=false"], "Development").await;
    assert!(!body.contains("disk on fire"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_check_keeps_readiness_200() {
    for (args, described) in [
        (&[][..], false),
        (&["--web.health.detailed_errors=true"][..], true),
    ] {
        let mut builder = with_route(args);
        builder.add_health_check::<CacheCold>();
        builder.add_health_check_instance(Fine);
        let (mut host, address) = start(builder).await;
        let (status, report) = get_json(address, "/health/ready").await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["status"], "degraded", "{report}");
        let cold = entry(&report, "checks", std::any::type_name::<CacheCold>());
        assert_eq!(cold["status"], "degraded", "{report}");
        assert!(cold["duration_ms"].as_f64().is_some(), "{report}");
        assert_eq!(
            entry(&report, "checks", std::any::type_name::<Fine>())["status"],
            "healthy"
        );
        assert_eq!(
            cold.get("description").and_then(Value::as_str),
            described.then_some("cache cold"),
            "{report}"
        );
        stop(&mut host).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_check_gives_503_and_its_description_only_when_detailed() {
    for (args, described) in [
        (&[][..], false),
        (&["--web.health.detailed_errors=true"][..], true),
    ] {
        let mut builder = with_route(args);
        builder.add_health_check::<CacheCold>();
        builder.add_health_check_instance(DatabaseDown);
        let (mut host, address) = start(builder).await;
        let (status, body) = http_get(address, "/health/ready").await;
        let report: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, 503, "{report}");
        assert_eq!(report["status"], "unhealthy", "{report}");
        assert_eq!(report["host"], "started", "{report}");
        assert_eq!(entry(&report, "checks", "database")["status"], "unhealthy");
        assert_eq!(body.contains("db.internal"), described, "{body}");
        // Liveness does not run the checks.
        assert_eq!(http_get(address, "/health/live").await.0, 200);
        stop(&mut host).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_past_its_timeout_is_unhealthy() {
    let mut builder = with_route(&[
        "--web.health.check_timeout=100ms",
        "--web.health.detailed_errors=true",
    ]);
    builder.add_health_check_instance(Sleeps);
    builder.add_health_check_instance(Fine);
    let (mut host, address) = start(builder).await;
    let began = Instant::now();
    let (status, report) = get_json(address, "/health/ready").await;
    let took = began.elapsed();
    assert!(took < NO_HANG, "{took:?}");
    assert_eq!(status, 503, "{report}");
    let sleeps = entry(&report, "checks", std::any::type_name::<Sleeps>());
    assert_eq!(sleeps["status"], "unhealthy", "{report}");
    let description = sleeps["description"].as_str().unwrap();
    assert!(description.contains("timed out"), "{description}");
    assert!(sleeps["duration_ms"].as_f64().unwrap() >= 100.0, "{report}");
    assert_eq!(
        entry(&report, "checks", std::any::type_name::<Fine>())["status"],
        "healthy"
    );
    stop(&mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_panics_is_unhealthy_and_the_server_keeps_serving() {
    let mut builder = with_route(&["--web.health.detailed_errors=true"]);
    builder.add_health_check_instance(Panics);
    let (mut host, address) = start(builder).await;
    for _ in 0..2 {
        let (status, report) = get_json(address, "/health/ready").await;
        assert_eq!(status, 503, "{report}");
        let panics = entry(&report, "checks", std::any::type_name::<Panics>());
        assert_eq!(panics["status"], "unhealthy", "{report}");
        assert!(
            panics["description"].as_str().unwrap().contains("panicked"),
            "{report}"
        );
    }
    assert_eq!(http_get(address, "/hello").await, (200, "hello".into()));
    stop(&mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_custom_paths_and_no_endpoints() {
    let (mut host, address) = start(with_route(&[])).await;
    let (status, live) = get_json(address, "/health/live").await;
    assert_eq!(status, 200);
    assert_eq!(live["status"], "healthy");
    stop(&mut host).await;

    let (mut host, address) = start(with_route(&[
        "--web.health.ready_path=/ready",
        "--web.health.live_path=/live",
        "--web.health.startup_path=/started",
    ]))
    .await;
    assert_eq!(http_get(address, "/ready").await.0, 200);
    assert_eq!(http_get(address, "/live").await.0, 200);
    assert_eq!(http_get(address, "/started").await.0, 200);
    assert_eq!(http_get(address, "/health/ready").await.0, 404);
    assert_eq!(http_get(address, "/health/live").await.0, 404);
    assert_eq!(http_get(address, "/health/startup").await.0, 404);
    stop(&mut host).await;

    let (mut host, address) = start(with_route(&["--web.health.enabled=false"])).await;
    assert_eq!(http_get(address, "/health/ready").await.0, 404);
    assert_eq!(http_get(address, "/health/live").await.0, 404);
    assert_eq!(http_get(address, "/health/startup").await.0, 404);
    assert_eq!(http_get(address, "/hello").await.0, 200);
    stop(&mut host).await;
}

#[tokio::test]
async fn a_bad_health_path_is_invalid_configuration() {
    for args in [
        &["--web.health.ready_path=ready"][..],
        &["--web.health.live_path=/health/ready"][..],
        &["--web.health.startup_path=started"][..],
        &["--web.health.startup_path=/health/live"][..],
        &[
            "--web.health.ready_path=/same",
            "--web.health.live_path=/same",
        ][..],
    ] {
        let error = with_route(args).build().unwrap_err();
        assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
        assert!(error.is_configuration(), "{error}");
        assert!(error.to_string().contains("web.health."), "{error}");
    }
    // Turned off, the paths cannot clash.
    with_route(&[
        "--web.health.enabled=false",
        "--web.health.live_path=/health/ready",
    ])
    .build()
    .expect("no endpoints, no clash");
}

/// A registered `Arc<dyn HealthCheck>` from anywhere counts too.
#[tokio::test]
async fn checks_registered_directly_count() {
    let mut builder = with_route(&[]);
    let check: Arc<dyn HealthCheck> = Arc::new(DatabaseDown);
    builder.services().add_instance(check);
    let host = builder.build().unwrap();
    let client = TestClient::new(&host).unwrap();
    let report: Value = client.get("/health/ready").await.json();
    assert_eq!(entry(&report, "checks", "database")["status"], "unhealthy");
}

/// Counts its runs; each run waits until the gate is open.
#[derive(Clone)]
struct Counted {
    runs: Arc<AtomicUsize>,
    gate: Arc<watch::Sender<bool>>,
}

impl Counted {
    fn new(open: bool) -> Self {
        Self {
            runs: Arc::default(),
            gate: Arc::new(watch::Sender::new(open)),
        }
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl HealthCheck for Counted {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "counted".into()
    }

    async fn check(&self) -> HealthCheckResult {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let _ = self.gate.subscribe().wait_for(|open| *open).await;
        HealthCheckResult::healthy()
    }
}

fn counted_client(args: &[&str], counted: &Counted) -> TestClient {
    let mut builder = with_route(args);
    builder.add_health_check_instance(counted.clone());
    let host = builder.build().unwrap();
    TestClient::new(&host).unwrap()
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_share_one_run_kept_for_cache_for() {
    let counted = Counted::new(false);
    let client = counted_client(&["--web.health.cache_for=10s"], &counted);
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/health/ready").await })
        })
        .collect();
    // Time only advances once every request waits.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(counted.runs(), 1, "one run for the requests in flight");
    counted.gate.send_replace(true);
    for request in requests {
        let report: Value = request.await.unwrap().json();
        assert_eq!(entry(&report, "checks", "counted")["status"], "healthy");
    }
    assert_eq!(counted.runs(), 1);

    // Within the period: the result is reused.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let report: Value = client.get("/health/ready").await.json();
    assert_eq!(entry(&report, "checks", "counted")["status"], "healthy");
    assert_eq!(counted.runs(), 1, "no rerun within cache_for");

    // After it: run again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    client.get("/health/ready").await;
    assert_eq!(counted.runs(), 2, "a rerun after cache_for");
}

#[tokio::test(start_paused = true)]
async fn without_a_cache_each_request_runs_the_check_but_never_twice_at_once() {
    let counted = Counted::new(false);
    let client = counted_client(&["--web.health.cache_for=0s"], &counted);
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/health/ready").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(counted.runs(), 1, "the requests in flight share the run");
    counted.gate.send_replace(true);
    for request in requests {
        request.await.unwrap();
    }
    client.get("/health/ready").await;
    client.get("/health/ready").await;
    assert_eq!(counted.runs(), 3, "one run per later request");
}

#[tokio::test(start_paused = true)]
async fn a_run_whose_requests_went_away_is_resumed_not_repeated() {
    let counted = Counted::new(false);
    let client = counted_client(&[], &counted);
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.get("/health/ready").await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    first.abort();
    let _ = first.await;
    counted.gate.send_replace(true);
    client.get("/health/ready").await;
    assert_eq!(counted.runs(), 1, "the run in flight was resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_turns_readiness_503_at_once_despite_a_cached_result() {
    let counted = Counted::new(true);
    let mut builder = with_route(&["--web.health.cache_for=1h"]);
    builder.add_health_check_instance(counted.clone());
    let (mut host, address) = start(builder).await;
    let (status, report) = get_json(address, "/health/ready").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["host"], "started", "{report}");

    host.lifetime().stop_application();
    let (status, report) = get_json(address, "/health/ready").await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["host"], "stopping", "{report}");
    assert_eq!(entry(&report, "checks", "counted")["status"], "healthy");
    assert_eq!(counted.runs(), 1, "the check's result was the cached one");
    stop(&mut host).await;
}

//! The health endpoints over supervision, through real HTTP: liveness goes
//! 503 naming a service that misses its heartbeat deadline with no restart
//! policy, and 200 again once it beats; startup is 503 before the start and
//! 200 from then on, the stop included; readiness is 503 while a required
//! service is restarting and 200 when only a service not required for it
//! is, each service listed with `required`, `restarts` and (with detailed
//! errors only) `last_error`; a service that would start after the web
//! server is a build error naming it.

mod common;

use std::time::Duration;

use host_core::{
    BackgroundService, HostBuilder, Restart, ServiceContext, ServiceError, ServiceState,
    ServiceStates,
};
use host_web::{TestClient, WebHostBuilderExt, async_trait};
use serde_json::{Value, json};
use tokio::sync::watch;

use common::{bounded, builder, get as http_get, get_json, start, stop};

/// Beats every 20 ms while `beating` says so; silent otherwise.
struct Beats {
    beating: watch::Receiver<bool>,
}

#[async_trait]
impl BackgroundService for Beats {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        loop {
            if *self.beating.borrow() {
                ctx.heartbeat();
            }
            if !ctx.delay(Duration::from_millis(20)).await {
                return Ok(());
            }
        }
    }
}

/// Fails each run; its policy restarts it only after an hour.
struct Flaky;

#[async_trait]
impl BackgroundService for Flaky {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Err(anyhow::anyhow!("disk on fire"))
    }
}

/// Runs until the host stops.
struct Waits;

#[async_trait]
impl BackgroundService for Waits {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

const SERVER: &str = "host_web::WebServer";

fn with_server(args: &[&str]) -> HostBuilder {
    let mut builder = builder(args);
    builder.web(|app| app);
    builder
}

/// The entry of `name` in the readiness report's services.
fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"]
        .as_array()
        .unwrap_or_else(|| panic!("no services in {report}"))
        .iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

/// Waits, within the tests' bound, until `name` is in a state `wanted`
/// accepts.
async fn wait_for(states: &ServiceStates, name: &str, wanted: fn(&ServiceState) -> bool) {
    bounded(&format!("{name}'s state"), states.wait_for(name, wanted))
        .await
        .unwrap_or_else(|| panic!("no service {name}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_fails_while_a_service_is_hung_and_recovers_when_it_beats_again() {
    let (beating, beats) = watch::channel(true);
    let mut builder = with_server(&[]);
    builder.add_hosted_service_instance_with(Beats { beating: beats }, |beats| {
        beats.heartbeat(Duration::from_millis(200))
    });
    let (mut host, address) = start(builder).await;
    let name = std::any::type_name::<Beats>();
    let states = host.service_states();

    let (status, live) = get_json(address, "/health/live").await;
    assert_eq!((status, live), (200, json!({ "status": "healthy" })));

    beating.send_replace(false);
    wait_for(&states, name, |state| matches!(state, ServiceState::Hung)).await;
    let (status, live) = get_json(address, "/health/live").await;
    assert_eq!(status, 503, "{live}");
    assert_eq!(live, json!({ "status": "unhealthy", "hung": [name] }));
    let (status, ready) = get_json(address, "/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(service(&ready, name)["state"], "hung", "{ready}");

    beating.send_replace(true);
    wait_for(&states, name, |state| {
        matches!(state, ServiceState::Running)
    })
    .await;
    let (status, live) = get_json(address, "/health/live").await;
    assert_eq!((status, live), (200, json!({ "status": "healthy" })));
    assert_eq!(http_get(address, "/health/ready").await.0, 200);
    stop(&mut host).await;
}

/// A hung service its policy restarts is mended by it: liveness stays 200
/// (readiness tells that it is not well).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_holds_while_a_restart_mends_a_hung_service() {
    let (_beating, beats) = watch::channel(false);
    let mut builder = with_server(&[]);
    builder.add_hosted_service_instance_with(Beats { beating: beats }, |beats| {
        beats.heartbeat(Duration::from_millis(200)).restart(
            Restart::on_failure().backoff(Duration::from_secs(3600), Duration::from_secs(3600)),
        )
    });
    let (mut host, address) = start(builder).await;
    let name = std::any::type_name::<Beats>();
    let states = host.service_states();
    wait_for(&states, name, |state| {
        matches!(state, ServiceState::Restarting { .. })
    })
    .await;
    let (status, live) = get_json(address, "/health/live").await;
    assert_eq!((status, live), (200, json!({ "status": "healthy" })));
    let (status, ready) = get_json(address, "/health/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(service(&ready, name)["state"], "restarting", "{ready}");
    stop(&mut host).await;
}

/// Two instances of one application share a lease store: the one that
/// stands by is ready, and its report shows who leads with which token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_singleton_is_ready_and_shows_who_leads() {
    let store = host_cluster::InProcessStore::new();
    let mut instances = Vec::new();
    for id in ["a", "b"] {
        let mut builder = with_server(&[&format!("--cluster.instance_id={id}")]);
        builder.lease_store(store.clone());
        builder.add_hosted_service_instance_with(Waits, |waits| {
            waits.cluster_singleton(
                host_core::Singleton::new("reports")
                    .lease(Duration::from_millis(1500))
                    .renew_deadline(Duration::from_secs(1))
                    .retry_period(Duration::from_millis(100)),
            )
        });
        let (host, address) = start(builder).await;
        let states = host.service_states();
        bounded(&format!("{id} leads or stands by"), async {
            loop {
                let seen = states
                    .status(std::any::type_name::<Waits>())
                    .and_then(|status| status.leadership)
                    .is_some_and(|leadership| leadership.leader.is_some());
                if seen {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        instances.push((host, address));
    }
    let name = std::any::type_name::<Waits>();
    let (status, ready) = get_json(instances[1].1, "/health/ready").await;
    assert_eq!(status, 200, "{ready}");
    let entry = service(&ready, name);
    assert_eq!(entry["state"], "standby", "{ready}");
    assert_eq!(
        entry["leadership"],
        json!({ "singleton": "reports", "instance": "b", "leading": false, "leader": "a", "token": 1 }),
        "{ready}"
    );
    let (status, ready) = get_json(instances[0].1, "/health/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        service(&ready, name)["leadership"]["leading"],
        true,
        "{ready}"
    );
    for (mut host, _) in instances {
        stop(&mut host).await;
    }
}

/// A lease store that answers, or fails every call while `down` is set.
struct Store {
    inner: host_cluster::InProcessStore,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    fn fail_if_down(&self) -> Result<(), host_cluster::ClusterError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(host_cluster::ClusterError::Store {
                store: "test://store".into(),
                source: "connection refused".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl host_cluster::LeaseStore for Store {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<host_cluster::Lease>, host_cluster::ClusterError> {
        self.fail_if_down()?;
        self.inner.try_acquire(name, holder, ttl).await
    }
    async fn renew(
        &self,
        lease: &host_cluster::Lease,
        ttl: Duration,
    ) -> Result<bool, host_cluster::ClusterError> {
        self.fail_if_down()?;
        self.inner.renew(lease, ttl).await
    }
    async fn release(&self, lease: &host_cluster::Lease) -> Result<(), host_cluster::ClusterError> {
        self.fail_if_down()?;
        self.inner.release(lease).await
    }
    async fn current(
        &self,
        name: &str,
    ) -> Result<Option<host_cluster::LeaseInfo>, host_cluster::ClusterError> {
        self.fail_if_down()?;
        self.inner.current(name).await
    }
}

/// The lease store's health check: healthy while the store answers,
/// unhealthy naming the store while it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_store_check_fails_while_the_store_does_not_answer() {
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut builder = with_server(&["--web.health.detailed_errors=true"]);
    builder.lease_store(Store {
        inner: host_cluster::InProcessStore::new(),
        down: down.clone(),
    });
    builder.add_hosted_service_instance_with(Waits, |waits| waits.cluster_singleton("reports"));
    builder.add_health_check::<host_web::LeaseStoreHealthCheck>();
    let (mut host, address) = start(builder).await;
    let (status, ready) = get_json(address, "/health/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"][0]["name"], "lease store", "{ready}");
    assert_eq!(ready["checks"][0]["status"], "healthy", "{ready}");
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    bounded("the check fails", async {
        loop {
            let (status, ready) = get_json(address, "/health/ready").await;
            if status == 503 {
                let description = ready["checks"][0]["description"]
                    .as_str()
                    .unwrap_or_default();
                assert!(description.contains("test://store"), "{ready}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    stop(&mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_is_503_before_the_start_and_200_from_then_on() {
    let mut host = with_server(&["--web.shutdown_delay=1s"]).build().unwrap();
    let client = TestClient::new(&host).unwrap();
    let before = client.get("/health/startup").await;
    assert_eq!(before.status(), 503, "{}", before.text());
    assert_eq!(
        before.json::<Value>(),
        json!({ "status": "unhealthy", "host": "starting" })
    );

    bounded("the host's start", host.start()).await.unwrap();
    let address = common::address(&host);
    let (status, startup) = get_json(address, "/health/startup").await;
    assert_eq!(
        (status, startup),
        (200, json!({ "status": "healthy", "host": "started" }))
    );

    // The stop: readiness fails, startup stays as it was.
    let lifetime = host.lifetime().clone();
    lifetime.stop_application();
    let stopping = tokio::spawn(async move {
        let stopped = host.stop().await;
        (host, stopped)
    });
    bounded("the stopping event", lifetime.stopping()).await;
    let (status, startup) = get_json(address, "/health/startup").await;
    assert_eq!(
        (status, startup),
        (200, json!({ "status": "healthy", "host": "stopping" }))
    );
    assert_eq!(http_get(address, "/health/ready").await.0, 503);
    let (_host, stopped) = bounded("the stop", stopping).await.unwrap();
    stopped.expect("a clean stop");
}

/// Starts a host with `Flaky` (required for readiness or not) beside a
/// service that runs; waits until `Flaky` is restarting; returns the
/// readiness status, report and body.
async fn readiness_with_a_restarting_service(
    args: &[&str],
    required: bool,
) -> (u16, Value, String) {
    let mut builder = with_server(args);
    builder
        .add_hosted_service_instance(Waits)
        .add_hosted_service_instance_with(Flaky, |flaky| {
            flaky
                .restart(
                    Restart::on_failure()
                        .backoff(Duration::from_secs(3600), Duration::from_secs(3600)),
                )
                .required_for_readiness(required)
        });
    let (mut host, address) = start(builder).await;
    wait_for(
        &host.service_states(),
        std::any::type_name::<Flaky>(),
        |state| matches!(state, ServiceState::Restarting { .. }),
    )
    .await;
    let (status, body) = http_get(address, "/health/ready").await;
    let report: Value = serde_json::from_str(&body).unwrap();
    stop(&mut host).await;
    (status, report, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_a_required_service_is_restarting() {
    let (status, report, body) = readiness_with_a_restarting_service(&[], true).await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["status"], "unhealthy", "{report}");
    assert_eq!(report["host"], "started", "{report}");
    let flaky = service(&report, std::any::type_name::<Flaky>());
    assert_eq!(flaky["state"], "restarting", "{report}");
    assert_eq!(flaky["required"], true, "{report}");
    assert_eq!(flaky["restarts"], 1, "{report}");
    // Not failed now, and no error text without detailed errors.
    assert!(flaky.get("error").is_none(), "{report}");
    assert!(flaky.get("last_error").is_none(), "{report}");
    assert!(!body.contains("disk on fire"), "{body}");
    let waits = service(&report, std::any::type_name::<Waits>());
    assert_eq!(waits["state"], "running", "{report}");
    assert_eq!(waits["restarts"], 0, "{report}");
    assert_eq!(service(&report, SERVER)["required"], true, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_error_is_shown_with_detailed_errors() {
    let (status, report, _) =
        readiness_with_a_restarting_service(&["--web.health.detailed_errors=true"], true).await;
    assert_eq!(status, 503, "{report}");
    let flaky = service(&report, std::any::type_name::<Flaky>());
    assert_eq!(flaky["restarts"], 1, "{report}");
    let last_error = flaky["last_error"]
        .as_str()
        .unwrap_or_else(|| panic!("no last_error in {report}"));
    assert!(last_error.contains("disk on fire"), "{last_error}");
    // `error` is the current failure: there is none while restarting.
    assert!(flaky.get("error").is_none(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_not_required_for_readiness_is_listed_but_does_not_count() {
    let (status, report, _) = readiness_with_a_restarting_service(&[], false).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "healthy", "{report}");
    let flaky = service(&report, std::any::type_name::<Flaky>());
    assert_eq!(flaky["state"], "restarting", "{report}");
    assert_eq!(flaky["required"], false, "{report}");
    assert_eq!(flaky["restarts"], 1, "{report}");
}

#[tokio::test]
async fn a_service_that_starts_after_the_web_server_is_a_build_error() {
    for target in ["WebServer", SERVER] {
        let mut builder = with_server(&[]);
        builder.add_hosted_service_instance_with(Waits, |waits| waits.after_named(target));
        let error = builder.build().unwrap_err();
        assert_eq!(error.exit_code(), 2, "{error}");
        let message = error.to_string();
        assert!(message.contains(SERVER), "{message}");
        assert!(
            message.contains(std::any::type_name::<Waits>()),
            "{message}"
        );
    }
}

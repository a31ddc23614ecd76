//! The `services` configuration section: restart options over the code's,
//! keyed by the full name or its last part in any case (environment
//! variables included), and the keys that fail the build.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant as StdInstant};

use host_core::{
    BackgroundService, HostedService, LifecycleContext, Restart, ServiceContext, ServiceError,
    ServiceState, async_trait, bail,
};
use host_test::HostProcess;
use host_testing::{TestHost, TestHostBuilder};

/// Fails every run at once, counting them.
struct Worker(Arc<AtomicU32>);

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        let run = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        bail!("run {run} failed on purpose")
    }
}

/// A builder with a failing worker registered with `code` as its policy.
fn with_worker(code: Restart) -> (TestHostBuilder, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(Worker(runs.clone()), |s| s.restart(code));
    (builder, runs)
}

/// Starts the host, waits until the worker's failure stops it, and returns
/// the test host and the stop's error.
async fn until_given_up(builder: TestHostBuilder) -> (TestHost, host_core::HostError) {
    let mut host = builder.start().await.unwrap();
    host.host().lifetime().stop_requested().await;
    let error = host.host_mut().stop().await.unwrap_err();
    (host, error)
}

/// The restart options, as arguments, under `services.{key}`.
fn restart_args(key: &str) -> Vec<String> {
    [
        "mode=on_failure",
        "initial_delay=10ms",
        "max_delay=10ms",
        "jitter=0",
        "max_restarts=2",
        "within=1m",
    ]
    .iter()
    .map(|option| format!("--services.{key}.restart.{option}"))
    .collect()
}

#[tokio::test(start_paused = true)]
async fn restart_options_from_configuration_override_the_codes() {
    let (mut builder, runs) = with_worker(Restart::never());
    builder.args(std::iter::once("app".to_owned()).chain(restart_args("Worker")));
    let start = tokio::time::Instant::now();
    let (host, error) = until_given_up(builder).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3, "two restarts, then no more");
    assert_eq!(start.elapsed(), Duration::from_millis(20), "10 ms apart");
    host.assert_logged(
        "`service_options::Worker` failed in execute: run 1 failed on purpose; restarting in \
         10ms (attempt 1)",
    );
    host.assert_logged("run 2 failed on purpose; restarting in 10ms (attempt 2)");
    host.assert_logged("run 3 failed on purpose; giving up after 2 restarts within 60s");
    assert_eq!(error.exit_code(), 1);
}

/// Returns `Ok` at once, counting its runs.
struct Quits(Arc<AtomicU32>);

#[async_trait]
impl BackgroundService for Quits {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn the_mode_alone_keeps_the_codes_tuning() {
    let runs = Arc::new(AtomicU32::new(0));
    let mut builder = TestHost::builder();
    builder
        .args(["app", "--services.Quits.restart.mode=always"])
        .add_hosted_service_instance_with(Quits(runs.clone()), |s| {
            s.restart(
                Restart::on_failure()
                    .backoff(Duration::from_millis(30), Duration::from_millis(30))
                    .jitter(0.0)
                    .limit(1, Duration::from_secs(60)),
            )
        });
    let start = tokio::time::Instant::now();
    let host = builder.start().await.unwrap();
    host.wait_for("service_options::Quits", |state| {
        matches!(state, ServiceState::Completed)
    })
    .await;
    // `always` restarts after `Ok`, which `on_failure` would not; the
    // backoff and the limit are the code's.
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(start.elapsed(), Duration::from_millis(30));
    host.assert_logged("`service_options::Quits` completed; restarting in 30ms (attempt 1)");
    host.assert_logged("`service_options::Quits` completed; giving up after 1 restarts within 60s");
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_full_name_quoted_in_a_file_sets_never_over_the_codes_policy() {
    let (builder, runs) = with_worker(Restart::on_failure());
    std::fs::write(
        builder.content_dir().join("appsettings.toml"),
        "[services.\"service_options::Worker\".restart]\nmode = \"never\"\n",
    )
    .unwrap();
    let mut builder = builder;
    builder.configuration().appsettings(true);
    let (host, error) = until_given_up(builder).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "never restarted");
    host.assert_not_logged("restarting in");
    assert_eq!(
        error.to_string(),
        "`service_options::Worker` failed in execute: run 1 failed on purpose"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_is_the_full_name_or_its_last_part_in_any_case() {
    for key in [
        "worker",
        "WORKER",
        "wOrKeR",
        "service_options::Worker",
        "SERVICE_OPTIONS::WORKER",
    ] {
        let (mut builder, runs) = with_worker(Restart::never());
        builder.args(std::iter::once("app".to_owned()).chain(restart_args(key)));
        let (host, _error) = until_given_up(builder).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "`services.{key}`");
        host.assert_logged("giving up after 2 restarts within 60s");
    }
}

#[tokio::test(start_paused = true)]
async fn a_key_in_a_file_matches_in_any_case_too() {
    let (builder, runs) = with_worker(Restart::never());
    std::fs::write(
        builder.content_dir().join("appsettings.toml"),
        "[services.WORKER.restart]\nmode = \"on_failure\"\nmax_restarts = 1\n\
         initial_delay = \"5ms\"\njitter = 0.0\n",
    )
    .unwrap();
    let mut builder = builder;
    builder.configuration().appsettings(true);
    let (host, _error) = until_given_up(builder).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    host.assert_logged("restarting in 5ms (attempt 1)");
}

/// The environment variables' scenario runs in a process of its own, where
/// they are set from the start.
const SCENARIO: &str = "HOST_CORE_SERVICE_OPTIONS_SCENARIO";

/// Said on standard error when the scenario has passed.
const PASSED: &str = "environment scenario passed";

/// The child process: the restart options come from `APP_` variables,
/// whose names the configuration lowercases into keys.
#[test]
fn child() {
    if std::env::var(SCENARIO).is_err() {
        return;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let (mut builder, runs) = with_worker(Restart::never());
            builder.configuration().env_prefix("APP_");
            let (host, error) = until_given_up(builder).await;
            assert_eq!(runs.load(Ordering::SeqCst), 2);
            host.assert_logged("run 1 failed on purpose; restarting in 10ms (attempt 1)");
            host.assert_logged("giving up after 1 restarts within 60s");
            assert_eq!(error.exit_code(), 1);
        });
    eprintln!("{PASSED}");
}

#[test]
fn environment_variables_set_a_services_options_in_lowercased_keys() {
    let mut command = host_test::child_test(SCENARIO, "1");
    command
        .env("APP_SERVICES__WORKER__RESTART__MODE", "on_failure")
        .env("APP_SERVICES__WORKER__RESTART__INITIAL_DELAY", "10ms")
        .env("APP_SERVICES__WORKER__RESTART__JITTER", "0")
        .env("APP_SERVICES__WORKER__RESTART__MAX_RESTARTS", "1");
    let mut child = HostProcess::spawn(command);
    let (code, _) = child.wait_for_exit(StdInstant::now());
    assert_eq!(code, 0, "{}", child.output());
    assert!(
        child.lines().iter().any(|line| line == PASSED),
        "the scenario did not run: {}",
        child.output()
    );
}

/// A background service under a name of its own.
struct Named(&'static str);

#[async_trait]
impl BackgroundService for Named {
    fn name(&self) -> Cow<'static, str> {
        self.0.into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_and_readiness_from_configuration_apply_to_the_service() {
    let mut builder = TestHost::builder();
    builder
        .args([
            "app",
            "--services.Billing.heartbeat=1s",
            "--services.Billing.required_for_readiness=false",
        ])
        .add_hosted_service_instance(Named("app::Billing"));
    let host = builder.start().await.unwrap();
    // It never beats: hung once the deadline has passed.
    host.wait_for("app::Billing", |state| matches!(state, ServiceState::Hung))
        .await;
    host.assert_logged("`app::Billing` missed its heartbeat deadline (1s");
    assert!(!host.states().snapshot()[0].required_for_readiness);
    host.stop().await.unwrap();
}

/// A plain hosted service.
struct Plain;

#[async_trait]
impl HostedService for Plain {
    async fn start(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn stop(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// The build error of a host with `a::Worker`, `b::Worker`,
/// `app::Billing` and a plain service, configured by `args`.
fn build_error(args: &[&str]) -> String {
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(Named("a::Worker"))
        .add_hosted_service_instance(Named("b::Worker"))
        .add_hosted_service_instance(Named("app::Billing"))
        .add_hosted_service_instance(Plain)
        .args(std::iter::once("app").chain(args.iter().copied()));
    let error = builder.build_error();
    assert_eq!(error.exit_code(), 2, "{error}");
    error.to_string()
}

#[test]
fn a_key_that_names_no_service_fails_the_build() {
    assert_eq!(
        build_error(&["--services.Payroll.stop_timeout=1s"]),
        "cannot build the host: invalid configuration: `services.Payroll` names no hosted \
         service (the services: a::Worker, b::Worker, app::Billing, service_options::Plain)"
    );
}

#[test]
fn an_ambiguous_short_name_fails_the_build_and_the_full_name_does_not() {
    assert_eq!(
        build_error(&["--services.worker.stop_timeout=1s"]),
        "cannot build the host: invalid configuration: `services.worker` names several \
         services: `a::Worker`, `b::Worker`; use the full name, quoted \
         (`[services.\"a::Worker\"]`)"
    );
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(Named("a::Worker"))
        .add_hosted_service_instance(Named("b::Worker"))
        .args(["app", "--services.a::Worker.stop_timeout=1s"]);
    assert!(builder.build().is_ok());
}

#[test]
fn a_restart_or_a_heartbeat_for_a_plain_hosted_service_fails_the_build() {
    assert_eq!(
        build_error(&["--services.Plain.restart.mode=always"]),
        "cannot build the host: invalid configuration: `services.Plain.restart`: \
         `service_options::Plain` is not a background service, and only a background \
         service's `execute` can have a restart"
    );
    assert_eq!(
        build_error(&["--services.plain.heartbeat=10s"]),
        "cannot build the host: invalid configuration: `services.plain.heartbeat`: \
         `service_options::Plain` is not a background service, and only a background \
         service's `execute` can have a heartbeat"
    );
}

#[test]
fn a_schedule_for_a_service_that_is_not_periodic_fails_the_build() {
    assert_eq!(
        build_error(&["--services.Billing.schedule.every=1m"]),
        "cannot build the host: invalid configuration: `services.Billing.schedule`: \
         `app::Billing` is not a periodic service, and only a periodic service \
         (`add_periodic`) runs on a schedule"
    );
}

#[test]
fn an_unknown_key_in_a_services_section_fails_the_build() {
    assert_eq!(
        build_error(&["--services.Billing.retsart.mode=always"]),
        "invalid configuration: `services.Billing.retsart` is not a known key; expected one of \
         `start_timeout`, `stop_timeout`, `heartbeat`, `required_for_readiness`, `restart`, \
         `schedule`, `cluster_singleton`, `cluster_wide`\n  from: command line"
    );
}

#[test]
fn every_problem_of_the_section_is_named_at_once() {
    let error = build_error(&[
        "--services.Plain.heartbeat=10s",
        "--services.Billing.schedule.every=1m",
    ]);
    assert!(error.contains("`services.Plain.heartbeat`"), "{error}");
    assert!(error.contains("`services.Billing.schedule`"), "{error}");
}

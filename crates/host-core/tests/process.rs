//! Real processes and real signals: this test binary runs itself as the
//! host process (the `child` test, selected by an environment variable), and
//! the other tests send it signals with `kill`.
#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::Cooperative;
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
use host_test::HostProcess;

const SCENARIO: &str = "HOST_CORE_TEST_SCENARIO";

struct IgnoresToken;

#[async_trait]
impl BackgroundService for IgnoresToken {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        std::future::pending().await
    }
}

struct BlocksThread;

#[async_trait]
impl BackgroundService for BlocksThread {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        tokio::task::yield_now().await;
        loop {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct NeedsMissing;

struct NotRegistered;

impl host_di::Injectable for NeedsMissing {
    fn dependencies() -> Vec<host_di::Dependency> {
        vec![host_di::Dependency::required::<NotRegistered>()]
    }

    fn create(provider: &host_di::ServiceProvider) -> Result<Self, host_di::DiError> {
        provider.get::<NotRegistered>()?;
        Ok(Self)
    }
}

#[async_trait]
impl BackgroundService for NeedsMissing {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

struct WarnsWhenStarted;

#[async_trait]
impl BackgroundService for WarnsWhenStarted {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.lifetime().started().await;
        tracing::warn!("ready");
        ctx.stopping().await;
        Ok(())
    }
}

struct FailsWhenStarted;

#[async_trait]
impl BackgroundService for FailsWhenStarted {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.lifetime().started().await;
        Err(anyhow::anyhow!("the queue went away"))
    }
}

/// Starts; its `stop` blocks its thread for good.
struct StopBlocksThread;

#[async_trait]
impl host_core::HostedService for StopBlocksThread {
    async fn start(&self, _ctx: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        loop {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Refuses to start.
struct RefusesToStart;

#[async_trait]
impl host_core::HostedService for RefusesToStart {
    async fn start(&self, _ctx: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        Err(anyhow::anyhow!("no database"))
    }
    async fn stop(&self, _ctx: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// The host process. Does nothing unless started by a test below.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let mut builder = Host::builder();
    // A tight timeout only where the timeout is what is tested: elsewhere a
    // loaded machine must not turn a clean stop into a timed-out one.
    let timeout = match scenario.as_str() {
        "ignores-token" | "blocks-thread" | "blocks-current-thread" | "rollback-blocks" => 1,
        _ => 30,
    };
    builder
        .configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(timeout));
    match scenario.as_str() {
        "cooperative" => builder.add_hosted_service_instance(Cooperative),
        "ignores-token" | "ignores-token-slow" => builder
            .add_hosted_service_instance(Cooperative)
            .add_hosted_service_instance(IgnoresToken),
        "blocks-thread" => builder.add_hosted_service_instance(BlocksThread),
        "blocks-current-thread" => &mut builder,
        "rollback-blocks" => builder
            .add_hosted_service_instance(StopBlocksThread)
            .add_hosted_service_instance(RefusesToStart),
        "warns" => builder.add_hosted_service_instance(WarnsWhenStarted),
        "fails" => builder
            .add_hosted_service_instance(Cooperative)
            .add_hosted_service_instance(FailsWhenStarted),
        "no-signals" => builder
            .handle_signals(false)
            .add_hosted_service_instance(WarnsWhenStarted),
        "invalid-registration" => builder.add_hosted_service::<NeedsMissing>(),
        other => panic!("unknown scenario {other}"),
    };
    let code = if scenario == "blocks-current-thread" {
        builder.add_hosted_service_instance(BlocksThread);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(builder.run())
    } else {
        builder.run_blocking()
    };
    host_test::exit_with(code);
}

/// Runs this test binary's `child` test as the host process.
fn spawn(scenario: &str) -> HostProcess {
    spawn_with_log(scenario, "info")
}

fn spawn_with_log(scenario: &str, rust_log: &str) -> HostProcess {
    let mut command = host_test::child_test(SCENARIO, scenario);
    command.env("RUST_LOG", rust_log);
    HostProcess::spawn(command)
}

#[test]
fn sigterm_stops_the_host_cleanly_with_zero() {
    let mut host = spawn("cooperative");
    host.wait_for("Application started. Press Ctrl+C to shut down.");
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    assert!(host.output().contains("Received SIGTERM; shutting down"));
    assert!(host.output().contains("Application is shutting down..."));
}

#[test]
fn sigint_and_sigquit_stop_the_host_too() {
    for signal in ["INT", "QUIT"] {
        let mut host = spawn("cooperative");
        host.wait_for("Application started.");
        host.signal(signal);
        let (code, _) = host.wait_for_exit(Instant::now());
        assert_eq!(code, 0, "SIG{signal}: {}", host.output());
        assert!(
            host.output().contains(&format!("Received SIG{signal}")),
            "{}",
            host.output()
        );
    }
}

#[test]
fn a_service_that_ignores_its_token_is_aborted_at_the_timeout_with_three() {
    let mut host = spawn("ignores-token");
    host.wait_for("Application started.");
    let sent = Instant::now();
    host.signal("TERM");
    let (code, took) = host.wait_for_exit(sent);
    assert_eq!(code, 3, "{}", host.output());
    // A generous bound against hanging: the timeout is 1 s.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        host.output().contains(
            "shutdown timed out after 1s; still running: process::IgnoresToken (aborted)"
        ),
        "{}",
        host.output()
    );
}

#[test]
fn a_service_that_blocks_its_thread_cannot_keep_the_process_alive() {
    let mut host = spawn("blocks-thread");
    host.wait_for("Application started.");
    let sent = Instant::now();
    host.signal("TERM");
    let (code, took) = host.wait_for_exit(sent);
    assert_eq!(code, 3, "{}", host.output());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let output = host.output();
    assert!(
        output.contains("still running: process::BlocksThread (aborted)"),
        "{output}"
    );
    assert!(
        output.contains("blocks its thread and cannot be aborted"),
        "{output}"
    );
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    // A 30 s shutdown timeout: only the second signal can end it sooner.
    let mut host = spawn("ignores-token-slow");
    host.wait_for("Application started.");
    host.signal("INT");
    host.wait_for("Application is shutting down...");
    // Past the window in which the same signal is taken for a repeat of the
    // first (the host had seen the first when it logged the line above).
    std::thread::sleep(Duration::from_millis(700));
    let sent = Instant::now();
    host.signal("INT");
    let (code, took) = host.wait_for_exit(sent);
    assert_eq!(code, 130, "{}", host.output());
    // At once: long before the 30 s shutdown timeout (a generous bound).
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        host.output()
            .contains("Received SIGINT during shutdown; exiting at once with code 130")
    );
}

#[test]
fn rust_log_filters_the_default_subscriber() {
    let mut host = spawn_with_log("warns", "warn");
    host.wait_for("ready");
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    assert!(!host.output().contains("INFO"), "{}", host.output());
}

#[test]
fn an_invalid_registration_exits_two_before_anything_starts() {
    let mut host = spawn("invalid-registration");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 2, "{}", host.output());
    let output = host.output();
    assert!(
        output.contains("error: cannot build the host: "),
        "{output}"
    );
    assert!(output.contains("process::NotRegistered"), "{output}");
    assert!(!output.contains("Application started"), "{output}");
}

/// The only thread of a current-thread runtime is blocked: the runtime can
/// neither see the signal nor run the stop; the signal thread and the
/// watchdog still end the process.
#[test]
fn a_blocked_current_thread_runtime_still_exits_with_three() {
    let mut host = spawn("blocks-current-thread");
    host.wait_for("Application started.");
    let sent = Instant::now();
    host.signal("TERM");
    let (code, took) = host.wait_for_exit(sent);
    assert_eq!(code, 3, "{}", host.output());
    // A generous bound against hanging (the watchdog fires 750 ms after the 1 s timeout).
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let output = host.output();
    assert!(output.contains("Received SIGTERM"), "{output}");
    assert!(
        output.contains("shutdown timed out after 1s; still running: process::BlocksThread"),
        "{output}"
    );
}

#[test]
fn a_failing_background_service_stops_the_host_with_one() {
    let mut host = spawn("fails");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 1, "{}", host.output());
    let output = host.output();
    assert!(
        output.contains(
            "`process::FailsWhenStarted` failed in execute: the queue went away; stopping the host"
        ),
        "{output}"
    );
    assert!(
        output.contains("Application is shutting down..."),
        "{output}"
    );
}

#[test]
fn with_signals_off_the_host_leaves_them_to_the_process() {
    use std::os::unix::process::ExitStatusExt;

    let mut host = spawn("no-signals");
    host.wait_for("ready");
    host.signal("TERM");
    let (status, _) = host.wait_for_status(Instant::now());
    // The default action: terminated by the signal, no graceful stop.
    assert_eq!(status.signal(), Some(15), "{status:?}: {}", host.output());
    assert!(
        !host.output().contains("Received SIGTERM"),
        "{}",
        host.output()
    );
}

/// A failed start's rollback is a stop like any other: bounded by the
/// shutdown timeout and the watchdog, even when a `stop` blocks its thread.
#[test]
fn a_rollback_whose_stop_blocks_its_thread_still_exits_with_three() {
    let mut host = spawn("rollback-blocks");
    let started = Instant::now();
    let (code, took) = host.wait_for_exit(started);
    assert_eq!(code, 3, "{}", host.output());
    // A generous bound against hanging (1 s timeout, then 750 ms).
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let output = host.output();
    assert!(output.contains("no database"), "{output}");
    assert!(
        output.contains("shutdown timed out after 1s; still running: process::StopBlocksThread"),
        "{output}"
    );
}

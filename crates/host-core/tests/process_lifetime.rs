//! Real processes: what the lifetime does around the end of `main` (an
//! `on_stopped` callback always runs before the process exits) and around a
//! stop signal during a slow start (what it cut short is named).
#![cfg(unix)]

use std::time::{Duration, Instant};

use host_core::{Host, HostedService, LifecycleContext, ServiceError, async_trait};
use host_test::HostProcess;

const SCENARIO: &str = "HOST_CORE_LIFETIME_SCENARIO";

/// Registers an `on_stopped` callback that does async work before it logs,
/// then asks the host to stop as soon as it has started.
struct FlushesOnStopped;

#[async_trait]
impl HostedService for FlushesOnStopped {
    async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        ctx.lifetime().on_stopped(|| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tracing::warn!("on_stopped: flushed");
        });
        Ok(())
    }
    async fn started(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        ctx.lifetime().stop_application();
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

struct Quick;

#[async_trait]
impl HostedService for Quick {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// A start that takes a minute and ignores its token.
struct SlowStart;

#[async_trait]
impl HostedService for SlowStart {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tracing::warn!("slow start began");
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

struct NeverStarted;

#[async_trait]
impl HostedService for NeverStarted {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tracing::warn!("NeverStarted started");
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
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
    match scenario.as_str() {
        "on-stopped" => builder.add_hosted_service_instance(FlushesOnStopped),
        "slow-start" => builder
            .add_hosted_service_instance(Quick)
            .add_hosted_service_instance(SlowStart)
            .add_hosted_service_instance(NeverStarted),
        other => panic!("unknown scenario {other}"),
    };
    // What `#[tokio::main] async fn main() -> ExitCode { builder.run().await }`
    // does: `main` returns (and the runtime is dropped) right after `run`.
    let code = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(builder.run());
    host_test::exit_with(code);
}

fn spawn(scenario: &str) -> HostProcess {
    let mut command = host_test::child_test(SCENARIO, scenario);
    command.env("RUST_LOG", "info");
    HostProcess::spawn(command)
}

#[test]
fn an_on_stopped_callback_runs_before_the_process_exits_every_time() {
    for run in 1..=10 {
        let mut host = spawn("on-stopped");
        let (code, _) = host.wait_for_exit(Instant::now());
        let output = host.output();
        assert_eq!(code, 0, "run {run}: {output}");
        assert!(
            output.contains("on_stopped: flushed"),
            "run {run}: {output}"
        );
    }
}

#[test]
fn sigterm_during_a_slow_start_names_what_it_cut_short_and_exits_zero() {
    let mut host = spawn("slow-start");
    host.wait_for("slow start began");
    let sent = Instant::now();
    host.signal("TERM");
    let (code, took) = host.wait_for_exit(sent);
    let output = host.output();
    assert_eq!(code, 0, "{output}");
    // A generous bound against hanging: nothing waits for the slow start.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        output.contains(
            "Stop requested during start; interrupted: process_lifetime::SlowStart (start); \
             never started: process_lifetime::NeverStarted; stopping what has started"
        ),
        "{output}"
    );
    assert!(output.contains("WARN"), "{output}");
    assert!(!output.contains("NeverStarted started"), "{output}");
}

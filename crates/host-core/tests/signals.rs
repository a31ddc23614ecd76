//! Signals around the stop, in real processes: this test binary runs itself
//! as the host process (the `child` test, selected by an environment
//! variable), and the tests send it signals with `kill`.
//!
//! What is checked: a signal that arrives once the stop has completed has
//! its default action (the process would otherwise hang for good if
//! anything then blocks); the signal that began the stop, delivered twice,
//! still stops gracefully; another signal during the stop exits at once;
//! several hosts in one process each get their signals; a host that does not
//! handle signals never touches them.
#![cfg(unix)]

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cooperative, StopsWhenStarted};
use host_core::{Host, HostedService, LifecycleContext, ServiceError, async_trait};
use host_test::HostProcess;

const SCENARIO: &str = "HOST_CORE_SIGNALS_SCENARIO";

/// Its stop sends the process the signal that began the stop once more,
/// as a wrapper that forwards one SIGTERM to the whole process group does,
/// then takes a while, so that the repeat arrives during the stop.
struct RepeatsTheSignal;

#[async_trait]
impl HostedService for RepeatsTheSignal {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        let status = Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill failed");
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }
}

/// Its stop takes far longer than any test waits.
struct SlowStop;

#[async_trait]
impl HostedService for SlowStop {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok(())
    }
}

fn builder() -> host_core::HostBuilder {
    let mut builder = Host::builder();
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_secs(600);
    });
    builder
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The host process. Does nothing unless started by a test below.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let code = match scenario.as_str() {
        // The host stops itself, then the runtime's drop waits for a
        // blocking read of standard input that never ends.
        "stopped-then-blocks-in-drop" => {
            let runtime = runtime();
            let code = runtime.block_on(async {
                tokio::task::spawn_blocking(|| std::io::stdin().read(&mut [0; 1]));
                let mut builder = builder();
                builder.add_hosted_service_instance(StopsWhenStarted);
                builder.run().await
            });
            eprintln!("host returned {code:?}");
            drop(runtime);
            code
        }
        // The host stops itself, then `main` goes on with something long.
        "stopped-then-sleeps" => {
            let mut builder = builder();
            builder.add_hosted_service_instance(StopsWhenStarted);
            let code = builder.run_blocking();
            eprintln!("host returned {code:?}");
            std::thread::sleep(host_test::NO_HANG);
            code
        }
        "repeat-during-stop" => {
            let mut builder = builder();
            builder.add_hosted_service_instance(RepeatsTheSignal);
            builder.run_blocking()
        }
        "slow-stop" => {
            let mut builder = builder();
            builder.add_hosted_service_instance(SlowStop);
            builder.run_blocking()
        }
        // One host after another, as in-process tests run them.
        "one-after-another" => runtime().block_on(async {
            let mut first = builder();
            first.add_hosted_service_instance(StopsWhenStarted);
            let code = first.run().await;
            eprintln!("first host returned {code:?}");
            let mut second = builder();
            second.add_hosted_service_instance(Cooperative);
            second.run().await
        }),
        // The first host stops while the second runs.
        "side-by-side" => runtime().block_on(async {
            let mut second = builder();
            second.add_hosted_service_instance(Cooperative);
            let mut second = second.build().unwrap();
            second.start().await.unwrap();
            let mut first = builder();
            first.add_hosted_service_instance(StopsWhenStarted);
            let code = first.run().await;
            eprintln!("first host returned {code:?}");
            second.wait_for_shutdown().await;
            second.stop().await.unwrap();
            code
        }),
        // Signals off: after the host has stopped, the process's own
        // handler sees SIGTERM.
        "no-signals-own-handler" => runtime().block_on(async {
            let mut builder = builder();
            builder
                .handle_signals(false)
                .add_hosted_service_instance(StopsWhenStarted);
            let code = builder.run().await;
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
            eprintln!("host returned {code:?}");
            term.recv().await;
            eprintln!("the process's own handler saw SIGTERM");
            std::process::ExitCode::from(7)
        }),
        // Signals off: after the host has stopped, SIGINT has its default
        // action, as before any host.
        "no-signals-then-sleeps" => {
            let mut builder = builder();
            builder
                .handle_signals(false)
                .add_hosted_service_instance(StopsWhenStarted);
            let code = builder.run_blocking();
            eprintln!("host returned {code:?}");
            std::thread::sleep(host_test::NO_HANG);
            code
        }
        other => panic!("unknown scenario {other}"),
    };
    host_test::exit_with(code);
}

fn spawn(scenario: &str) -> HostProcess {
    let mut command = host_test::child_test(SCENARIO, scenario);
    command
        .env("RUST_LOG", "info,host::lifetime=debug")
        // Kept open and never written: a read of it blocks.
        .stdin(Stdio::piped());
    HostProcess::spawn(command)
}

#[test]
fn after_the_stop_sigterm_ends_a_process_blocked_in_the_runtimes_drop() {
    let mut host = spawn("stopped-then-blocks-in-drop");
    host.wait_for("host returned");
    host.signal("TERM");
    let (status, _) = host.wait_for_status(Instant::now());
    assert_eq!(status.signal(), Some(15), "{status:?}: {}", host.output());
}

#[test]
fn after_the_stop_sigint_ends_the_process_as_its_default_action() {
    let mut host = spawn("stopped-then-sleeps");
    host.wait_for("host returned");
    host.signal("INT");
    let (status, _) = host.wait_for_status(Instant::now());
    assert_eq!(status.signal(), Some(2), "{status:?}: {}", host.output());
    assert!(
        !host.output().contains("Received SIGINT"),
        "{}",
        host.output()
    );
}

#[test]
fn the_signal_that_began_the_stop_delivered_twice_still_stops_gracefully() {
    let mut host = spawn("repeat-during-stop");
    host.wait_for("Application started.");
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    let output = host.output();
    assert!(
        output.contains(
            "Received SIGTERM again within 500ms of the first; taken for the same request (ignored)"
        ),
        "{output}"
    );
    assert!(!output.contains("exiting at once"), "{output}");
}

#[test]
fn another_signal_during_the_stop_exits_at_once_with_128_plus_its_number() {
    let mut host = spawn("slow-stop");
    host.wait_for("Application started.");
    host.signal("TERM");
    host.wait_for("Application is shutting down...");
    let sent = Instant::now();
    host.signal("INT");
    let (code, took) = host.wait_for_exit(sent);
    assert_eq!(code, 130, "{}", host.output());
    // At once: long before the stop would end (a generous bound).
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        host.output()
            .contains("Received SIGINT during shutdown; exiting at once with code 130"),
        "{}",
        host.output()
    );
}

#[test]
fn the_same_signal_after_the_window_exits_at_once() {
    let mut host = spawn("slow-stop");
    host.wait_for("Application started.");
    host.signal("TERM");
    // The host has seen the first one by now: the window counts from there.
    host.wait_for("Received SIGTERM; shutting down");
    std::thread::sleep(Duration::from_millis(700));
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 143, "{}", host.output());
}

#[test]
fn a_host_started_after_another_has_stopped_stops_gracefully() {
    let mut host = spawn("one-after-another");
    host.wait_for("first host returned");
    host.wait_for_times("Application started.", 2);
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    assert!(
        host.output().contains("Received SIGTERM; shutting down"),
        "{}",
        host.output()
    );
}

#[test]
fn a_stopped_host_leaves_the_signals_to_a_host_still_running() {
    let mut host = spawn("side-by-side");
    host.wait_for("first host returned");
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    assert!(
        host.output().contains("Received SIGTERM; shutting down"),
        "{}",
        host.output()
    );
}

#[test]
fn with_signals_off_the_processs_own_handler_works_after_the_stop() {
    let mut host = spawn("no-signals-own-handler");
    host.wait_for("host returned");
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 7, "{}", host.output());
    assert!(
        host.output()
            .contains("the process's own handler saw SIGTERM"),
        "{}",
        host.output()
    );
}

#[test]
fn with_signals_off_a_signal_after_the_stop_has_its_default_action() {
    let mut host = spawn("no-signals-then-sleeps");
    host.wait_for("host returned");
    host.signal("INT");
    let (status, _) = host.wait_for_status(Instant::now());
    assert_eq!(status.signal(), Some(2), "{status:?}: {}", host.output());
}

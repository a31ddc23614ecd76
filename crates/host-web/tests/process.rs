//! The web host as a real process with real signals: this test binary runs
//! itself as the host process (the `child` test, selected by an environment
//! variable) and the other tests drive it with host-test's `HostProcess`.
//! A request in flight at SIGTERM completes with 200 while new connections
//! are refused, and the exit code is 0; an address in use exits 1 naming
//! the address, with the services started before rolled back; a malformed
//! address exits 2 naming `web.urls` with nothing started; "Now listening
//! on" is logged after the other services started and before "Application
//! started".
#![cfg(unix)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::routing::get;
use host_core::{
    BackgroundService, Host, HostedService, LifecycleContext, ServiceContext, ServiceError,
    async_trait,
};
use host_test::HostProcess;
use host_web::WebHostBuilderExt;

/// Set for the child: the host process runs.
const SCENARIO: &str = "HOST_WEB_PROCESS_SCENARIO";
/// The child's command line, space-separated.
const ARGS: &str = "HOST_WEB_PROCESS_ARGS";
/// A file whose existence lets `/slow` answer.
const GATE: &str = "HOST_WEB_PROCESS_GATE";

/// The bound of the test's own waits (the process's are host-test's).
const NO_HANG: Duration = Duration::from_secs(10);

/// Logs when its `execute` begins and ends.
struct Worker;

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        tracing::warn!("worker started");
        ctx.stopping().await;
        tracing::warn!("worker stopped");
        Ok(())
    }
}

/// Logs when its `start` returns and when it is stopped.
struct Warmup;

#[async_trait]
impl HostedService for Warmup {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::task::yield_now().await;
        tracing::warn!("warmup started");
        Ok(())
    }

    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tracing::warn!("warmup stopped");
        Ok(())
    }
}

/// Answers once the gate file exists.
async fn slow() -> &'static str {
    tracing::warn!("slow request entered");
    let gate = PathBuf::from(std::env::var(GATE).expect("the gate's path"));
    while !gate.exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    "slow done"
}

/// The host process. Does nothing unless started by a test below.
#[test]
fn child() {
    if std::env::var(SCENARIO).is_err() {
        return;
    }
    let args = std::env::var(ARGS).unwrap_or_default();
    let mut builder = Host::builder();
    builder.args(std::iter::once("child").chain(args.split_whitespace()));
    builder.add_hosted_service_instance(Worker);
    builder.web(|app| {
        app.route("/slow", get(slow))
            .route("/hello", get(|| async { "hello" }))
    });
    // Registered after `web()`: the server still starts after it.
    builder.add_hosted_service_instance(Warmup);
    let code = builder.run_blocking();
    host_test::exit_with(code);
}

/// Runs this test binary's `child` test as the host process, with `args`.
fn spawn(args: &[&str], gate: &Path) -> HostProcess {
    let mut command = host_test::child_test(SCENARIO, "web");
    command
        .env(ARGS, args.join(" "))
        .env(GATE, gate)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("HOST_ENVIRONMENT");
    HostProcess::spawn(command)
}

/// The address of the "Now listening on: http://..." line.
fn listening(host: &HostProcess) -> SocketAddr {
    let line = host
        .lines()
        .iter()
        .find(|line| line.contains("Now listening on: http://"))
        .unwrap_or_else(|| panic!("no listening line in:\n{}", host.output()));
    let (_, rest) = line.split_once("Now listening on: http://").unwrap();
    let address: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    address
        .parse()
        .unwrap_or_else(|error| panic!("{address:?} in {line:?}: {error}"))
}

/// `GET path` on a connection of its own: the status line and the body.
fn request(address: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&address, NO_HANG)?;
    stream.set_read_timeout(Some(NO_HANG))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

/// Waits until connecting to `address` is refused.
fn wait_until_refused(address: SocketAddr) {
    let deadline = Instant::now() + NO_HANG;
    loop {
        match TcpStream::connect_timeout(&address, NO_HANG) {
            Err(error) if error.kind() == ErrorKind::ConnectionRefused => return,
            // Caught as the listener closed: the next attempt tells.
            Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
            Err(error) => panic!("connecting failed otherwise than refused: {error}"),
            Ok(stream) => drop(stream),
        }
        assert!(
            Instant::now() < deadline,
            "{address} still accepts connections"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The index of the first line containing `text`.
fn line_of(host: &HostProcess, text: &str) -> usize {
    host.lines()
        .iter()
        .position(|line| line.contains(text))
        .unwrap_or_else(|| panic!("no {text:?} in:\n{}", host.output()))
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("open");
    let mut host = spawn(&["--web.urls=127.0.0.1:0"], &gate);
    host.wait_for("Application started.");
    let address = listening(&host);
    assert_eq!(request(address, "/hello").unwrap().1, "hello");

    let in_flight = std::thread::spawn(move || request(address, "/slow"));
    host.wait_for("slow request entered");
    host.signal("TERM");
    wait_until_refused(address);
    assert!(!in_flight.is_finished(), "{}", host.output());

    std::fs::write(&gate, "").unwrap();
    let (status, body) = in_flight
        .join()
        .unwrap()
        .unwrap_or_else(|error| panic!("the request in flight failed: {error}"));
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, "slow done");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    let output = host.output();
    assert!(output.contains("Received SIGTERM"), "{output}");
    assert!(output.contains("worker stopped"), "{output}");
}

#[test]
fn an_address_in_use_exits_1_naming_it_and_rolls_back_what_started() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let mut host = spawn(
        &[&format!("--web.urls={address}")],
        &dir.path().join("gate"),
    );
    let (code, _) = host.wait_for_exit(Instant::now());
    drop(taken);
    assert_eq!(code, 1, "{}", host.output());
    let output = host.output();
    assert!(
        output.contains(&format!("could not bind {address}")),
        "{output}"
    );
    assert!(output.contains("rolled back:"), "{output}");
    let rolled_back = &host.lines()[line_of(&host, "rolled back:")];
    for service in ["Worker", "Warmup"] {
        assert!(
            rolled_back.contains(&format!("process::{service} (stopped)")),
            "{rolled_back}"
        );
    }
    // The worker had started, and was stopped again.
    assert!(
        line_of(&host, "worker started") < line_of(&host, "worker stopped"),
        "{output}"
    );
    assert!(output.contains("warmup stopped"), "{output}");
    assert!(!output.contains("Now listening on"), "{output}");
    assert!(!output.contains("Application started"), "{output}");
}

#[test]
fn a_malformed_address_exits_2_naming_the_key_with_nothing_started() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = spawn(&["--web.urls=nowhere"], &dir.path().join("gate"));
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 2, "{}", host.output());
    let output = host.output();
    assert!(output.contains("web.urls"), "{output}");
    assert!(output.contains("nowhere"), "{output}");
    for started in ["worker started", "warmup started", "Now listening on"] {
        assert!(!output.contains(started), "{output}");
    }
}

#[test]
fn now_listening_comes_after_the_other_services_and_before_application_started() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = spawn(&["--web.urls=127.0.0.1:0"], &dir.path().join("gate"));
    host.wait_for("Application started.");
    let address = listening(&host);
    assert_ne!(address.port(), 0);
    assert!(
        line_of(&host, "warmup started") < line_of(&host, "Now listening on: http://127.0.0.1:"),
        "{}",
        host.output()
    );
    assert!(
        line_of(&host, "Now listening on") < line_of(&host, "Application started."),
        "{}",
        host.output()
    );
    let (status, body) = request(address, "/hello").unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, "hello");
    host.signal("TERM");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
}

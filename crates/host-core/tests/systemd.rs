//! systemd's notifications, in real processes: this test binary runs itself
//! as the host process (the `child` test, selected by an environment
//! variable) with `NOTIFY_SOCKET` naming a datagram socket the test binds,
//! a path in a temporary directory or an abstract name, and the test reads
//! what the host sends.
#![cfg(unix)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Cooperative, StopsWhenStarted};
use host_core::{Host, HostedService, LifecycleContext, ServiceError, async_trait};
use host_test::{HostProcess, NO_HANG};

const SCENARIO: &str = "HOST_CORE_SYSTEMD_SCENARIO";
/// The content root (with its `appsettings.json`) of the reloading scenarios.
const CONTENT_ROOT: &str = "HOST_CORE_SYSTEMD_CONTENT_ROOT";

/// The section the reloading scenarios bind.
#[derive(Debug, serde::Deserialize)]
struct Greeting {
    text: String,
}

/// A host reading `greeting` from the content root's `appsettings.json`,
/// which prints the value it starts with and each one it changes to.
fn greeting_host(mut builder: host_core::HostBuilder) -> Host {
    builder
        .content_root(std::env::var(CONTENT_ROOT).unwrap())
        .configure::<Greeting>("greeting");
    builder.add_hosted_service_instance(Cooperative);
    let host = builder.build().unwrap();
    let greeting = host
        .services()
        .get::<host_config::OptionsMonitor<Greeting>>()
        .unwrap();
    eprintln!("the greeting is {}", greeting.current().text);
    greeting.on_change(|greeting| eprintln!("the greeting is now {}", greeting.text));
    host
}

/// Its start and its stop each take a few seconds: longer than the host
/// waits before it extends systemd's timeouts.
struct Slow;

#[async_trait]
impl HostedService for Slow {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        "Slow".into()
    }

    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        Ok(())
    }

    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        Ok(())
    }
}

/// Beats every 50 ms for half a second, then never again.
struct GoesSilent;

#[host_core::async_trait]
impl host_core::BackgroundService for GoesSilent {
    async fn execute(&self, ctx: host_core::ServiceContext) -> Result<(), ServiceError> {
        for _ in 0..10 {
            if !ctx.delay(Duration::from_millis(50)).await {
                return Ok(());
            }
            ctx.heartbeat();
        }
        ctx.stopping().await;
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
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_secs(60);
        options.startup_timeout = Some(Duration::from_secs(60));
    });
    let code = match scenario.as_str() {
        "runs" => {
            builder.add_hosted_service_instance(Cooperative);
            builder.run_blocking()
        }
        "stops-itself" => {
            builder.add_hosted_service_instance(StopsWhenStarted);
            builder.run_blocking()
        }
        "slow" => {
            builder
                .add_hosted_service_instance(Slow)
                .add_hosted_service_instance(StopsWhenStarted);
            builder.run_blocking()
        }
        // A host with notifications off, then one with the defaults.
        "off-then-on" => {
            builder
                .systemd_notify(false)
                .add_hosted_service_instance(StopsWhenStarted);
            let code = builder.run_blocking();
            eprintln!("the first host returned {code:?}");
            let mut second = Host::builder();
            second.add_hosted_service_instance(StopsWhenStarted);
            second.run_blocking()
        }
        // Driven by hand: the host does not speak for the process.
        "by-hand" => tokio::runtime::Runtime::new().unwrap().block_on(async {
            builder.add_hosted_service_instance(StopsWhenStarted);
            let host = builder.build().unwrap();
            host.run().await.unwrap();
            eprintln!("the first host returned");
            let mut second = Host::builder();
            second.add_hosted_service_instance(StopsWhenStarted);
            second.run().await
        }),
        "reload" => tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(greeting_host(builder).run_until_exit()),
        // A host that notifies and stops, then one driven by hand, which
        // does not take SIGHUP.
        "reload-then-by-hand" => tokio::runtime::Runtime::new().unwrap().block_on(async {
            builder.add_hosted_service_instance(StopsWhenStarted);
            let code = builder.build().unwrap().run_until_exit().await;
            eprintln!("the first host returned {code:?}");
            let second = greeting_host(Host::builder());
            second.run().await.unwrap();
            std::process::ExitCode::SUCCESS
        }),
        // A worker that beats for a while, then goes silent: hung, with
        // no restart policy to mend it.
        "hangs" => {
            builder.add_hosted_service_instance_with(GoesSilent, |s| {
                s.heartbeat(Duration::from_millis(300))
            });
            builder.run_blocking()
        }
        other => panic!("unknown scenario {other}"),
    };
    host_test::exit_with(code);
}

/// A bound datagram socket and the `NOTIFY_SOCKET` value that names it.
struct Listener {
    socket: UnixDatagram,
    address: String,
    /// Keeps the socket's directory while the test runs.
    _dir: Option<tempfile::TempDir>,
    received: Vec<String>,
}

impl Listener {
    fn path() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        Self::new(socket, path.to_str().unwrap().to_owned(), Some(dir))
    }

    fn abstract_name() -> Self {
        use std::os::linux::net::SocketAddrExt;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "host-core-systemd-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        Self::new(socket, format!("@{name}"), None)
    }

    fn new(socket: UnixDatagram, address: String, dir: Option<tempfile::TempDir>) -> Self {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            socket,
            address,
            _dir: dir,
            received: Vec::new(),
        }
    }

    /// Receives until a message contains `text` (counting those received
    /// already), within [`NO_HANG`]; returns that message.
    fn wait_for(&mut self, text: &str, host: &HostProcess) -> String {
        let deadline = Instant::now() + NO_HANG;
        loop {
            if let Some(found) = self.received.iter().find(|m| m.contains(text)) {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "never received {text:?}; received {:?}; the process wrote:\n{}",
                self.received,
                host.output()
            );
            self.receive();
        }
    }

    /// Receives one message if one comes within the read timeout.
    fn receive(&mut self) -> bool {
        let mut buffer = [0; 4096];
        match self.socket.recv(&mut buffer) {
            Ok(length) => {
                let message = String::from_utf8(buffer[..length].to_vec()).unwrap();
                self.received.push(message);
                true
            }
            Err(_) => false,
        }
    }

    /// Receives whatever comes within `time`.
    fn drain_for(&mut self, time: Duration) {
        let until = Instant::now() + time;
        while Instant::now() < until {
            self.receive();
        }
    }

    fn count(&self, text: &str) -> usize {
        self.received.iter().filter(|m| m.contains(text)).count()
    }

    fn position(&self, text: &str) -> Option<usize> {
        self.received.iter().position(|m| m.contains(text))
    }
}

fn command(scenario: &str, listener: &Listener) -> Command {
    let mut command = host_test::child_test(SCENARIO, scenario);
    command
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &listener.address)
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    command
}

/// Receives what a stopping host still sends, waits for its exit, and
/// checks the code.
fn exits_with(mut host: HostProcess, listener: &mut Listener, code: i32) -> HostProcess {
    let (exited, _) = host.wait_for_exit(Instant::now());
    assert_eq!(exited, code, "{}", host.output());
    listener.drain_for(Duration::from_millis(200));
    host
}

#[test]
fn ready_after_the_start_and_stopping_on_sigterm_at_a_path() {
    let mut listener = Listener::path();
    let host = HostProcess::spawn(command("runs", &listener));
    assert_eq!(
        listener.wait_for("READY=1", &host),
        "READY=1\nSTATUS=running"
    );
    assert_eq!(listener.received[0], "STATUS=starting");
    host.signal("TERM");
    assert_eq!(
        listener.wait_for("STOPPING=1", &host),
        "STOPPING=1\nSTATUS=stopping"
    );
    exits_with(host, &mut listener, 0);
    assert_eq!(listener.count("READY=1"), 1, "{:?}", listener.received);
    assert_eq!(listener.count("STOPPING=1"), 1, "{:?}", listener.received);
}

#[test]
fn an_abstract_socket_hears_the_same() {
    let mut listener = Listener::abstract_name();
    let host = HostProcess::spawn(command("stops-itself", &listener));
    listener.wait_for("STOPPING=1", &host);
    let host = exits_with(host, &mut listener, 0);
    assert_eq!(
        listener.received,
        [
            "STATUS=starting",
            "READY=1\nSTATUS=running",
            "STOPPING=1\nSTATUS=stopping"
        ],
        "{}",
        host.output()
    );
}

#[test]
fn the_watchdog_is_fed_at_half_its_interval() {
    let mut listener = Listener::path();
    let mut command = command("runs", &listener);
    command.env("WATCHDOG_USEC", "200000");
    let host = HostProcess::spawn(command);
    listener.wait_for("READY=1", &host);
    // Pings every 100 ms: a few, whatever the load, within the bound.
    let deadline = Instant::now() + NO_HANG;
    while listener.count("WATCHDOG=1") < 3 && Instant::now() < deadline {
        listener.receive();
    }
    assert!(
        listener.count("WATCHDOG=1") >= 3,
        "{:?}\n{}",
        listener.received,
        host.output()
    );
    host.signal("TERM");
    exits_with(host, &mut listener, 0);
}

#[test]
fn a_hung_service_stops_the_watchdog_being_fed() {
    let mut listener = Listener::path();
    let mut command = command("hangs", &listener);
    command.env("WATCHDOG_USEC", "200000");
    let mut host = HostProcess::spawn(command);
    listener.wait_for("READY=1", &host);
    host.wait_for("no longer feeding systemd's watchdog");
    // Whatever was on its way when it stopped, then nothing more.
    listener.drain_for(Duration::from_millis(300));
    let fed = listener.count("WATCHDOG=1");
    listener.drain_for(Duration::from_millis(1000));
    assert_eq!(
        listener.count("WATCHDOG=1"),
        fed,
        "{:?}\n{}",
        listener.received,
        host.output()
    );
    assert!(fed >= 1, "fed while it beat: {:?}", listener.received);
    host.signal("TERM");
    exits_with(host, &mut listener, 0);
}

#[test]
fn the_watchdog_of_another_process_is_not_fed() {
    let mut listener = Listener::path();
    let mut command = command("runs", &listener);
    // Pid 1 is never the child's.
    command
        .env("WATCHDOG_USEC", "100000")
        .env("WATCHDOG_PID", "1");
    let host = HostProcess::spawn(command);
    listener.wait_for("READY=1", &host);
    // Twenty intervals of the other process's watchdog.
    listener.drain_for(Duration::from_secs(1));
    host.signal("TERM");
    exits_with(host, &mut listener, 0);
    assert_eq!(listener.count("WATCHDOG=1"), 0, "{:?}", listener.received);
}

#[test]
fn a_long_start_and_stop_extend_the_timeouts_naming_the_service() {
    let mut listener = Listener::abstract_name();
    let host = HostProcess::spawn(command("slow", &listener));
    let extended = listener.wait_for("STATUS=starting: waiting for Slow", &host);
    let usec: u64 = extended
        .strip_prefix("EXTEND_TIMEOUT_USEC=")
        .and_then(|rest| rest.split('\n').next())
        .and_then(|usec| usec.parse().ok())
        .unwrap_or_else(|| panic!("{extended:?}"));
    // The rest of the 60 s startup timeout.
    assert!(usec > 0 && usec <= 60_000_000, "{extended:?}");
    listener.wait_for("STATUS=stopping: waiting for Slow", &host);
    exits_with(host, &mut listener, 0);
    let ready = listener.position("READY=1").unwrap();
    let starting = listener.position("STATUS=starting: waiting").unwrap();
    let stopping = listener.position("STATUS=stopping: waiting").unwrap();
    assert!(
        starting < ready && ready < stopping,
        "{:?}",
        listener.received
    );
}

/// Runs `scenario`: a first host that must send nothing, then a second one
/// through `HostBuilder::run`, which alone must notify, once.
fn only_the_second_host_notifies(scenario: &str) {
    let mut listener = Listener::path();
    let host = HostProcess::spawn(command(scenario, &listener));
    let host = exits_with(host, &mut listener, 0);
    assert!(
        host.output().contains("the first host returned"),
        "{}",
        host.output()
    );
    for message in ["STATUS=starting", "READY=1", "STOPPING=1"] {
        assert_eq!(
            listener.count(message),
            1,
            "{message}: {:?}",
            listener.received
        );
    }
}

#[test]
fn a_host_with_notifications_off_sends_nothing() {
    only_the_second_host_notifies("off-then-on");
}

#[test]
fn only_the_run_to_exit_path_notifies() {
    only_the_second_host_notifies("by-hand");
}

#[test]
fn an_unreachable_socket_is_logged_once_and_the_host_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = host_test::child_test(SCENARIO, "stops-itself");
    command
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", dir.path().join("nobody-listens"))
        .env("WATCHDOG_USEC", "100000")
        .env_remove("WATCHDOG_PID");
    let mut host = HostProcess::spawn(command);
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    let warnings = host
        .lines()
        .iter()
        .filter(|line| line.contains("systemd notification failed"))
        .count();
    assert_eq!(warnings, 1, "{}", host.output());
    assert!(
        host.output().contains("Application started."),
        "{}",
        host.output()
    );
}

/// `CLOCK_MONOTONIC` now, in µs, as systemd reads it.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(now.tv_sec).unwrap() * 1_000_000 + u64::try_from(now.tv_nsec).unwrap() / 1_000
}

/// A content root whose `appsettings.json` holds `greeting.text`.
fn content_root(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_greeting(&dir, &format!(r#"{{"greeting": {{"text": "{text}"}}}}"#));
    dir
}

fn write_greeting(dir: &tempfile::TempDir, json: &str) {
    std::fs::write(dir.path().join("appsettings.json"), json).unwrap();
}

/// Sends SIGHUP to a started host under `NOTIFY_SOCKET`; checks that
/// `RELOADING=1` comes with the monotonic clock of the moment, then a
/// second `READY=1`; returns that one.
fn reload(host: &HostProcess, listener: &mut Listener) -> String {
    let before = monotonic_usec();
    host.signal("HUP");
    let reloading = listener.wait_for("RELOADING=1", host);
    let after = monotonic_usec();
    let usec: u64 = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .and_then(|usec| usec.parse().ok())
        .unwrap_or_else(|| panic!("{reloading:?}"));
    assert!(
        before <= usec && usec <= after,
        "{before} <= {usec} <= {after}"
    );
    let deadline = Instant::now() + NO_HANG;
    while listener.count("READY=1") < 2 {
        assert!(
            Instant::now() < deadline,
            "no READY=1 after the reload: {:?}\n{}",
            listener.received,
            host.output()
        );
        listener.receive();
    }
    let ready = listener
        .received
        .iter()
        .rposition(|m| m.contains("READY=1"));
    let reloading = listener.position("RELOADING=1");
    assert!(reloading < ready, "{:?}", listener.received);
    listener.received[ready.unwrap()].clone()
}

#[test]
fn sighup_reloads_the_configuration_between_reloading_and_ready() {
    let dir = content_root("hello");
    let mut listener = Listener::path();
    let mut command = command("reload", &listener);
    command.env(CONTENT_ROOT, dir.path());
    let mut host = HostProcess::spawn(command);
    listener.wait_for("READY=1", &host);
    host.wait_for("the greeting is hello");
    write_greeting(&dir, r#"{"greeting": {"text": "bonjour"}}"#);
    let ready = reload(&host, &mut listener);
    assert_eq!(
        ready,
        "READY=1\nSTATUS=running; configuration reloaded, changed: greeting"
    );
    host.wait_for("the greeting is now bonjour");
    host.wait_for("configuration reloaded, changed: greeting");
    // The host runs on, and stops as ever.
    host.signal("TERM");
    exits_with(host, &mut listener, 0);
    assert_eq!(listener.count("RELOADING=1"), 1, "{:?}", listener.received);
}

#[test]
fn a_malformed_file_on_sighup_is_logged_and_the_host_runs_on() {
    let dir = content_root("hello");
    let mut listener = Listener::abstract_name();
    let mut command = command("reload", &listener);
    command.env(CONTENT_ROOT, dir.path());
    let mut host = HostProcess::spawn(command);
    listener.wait_for("READY=1", &host);
    host.wait_for("the greeting is hello");
    write_greeting(&dir, r#"{"greeting": {"text": "#);
    let ready = reload(&host, &mut listener);
    assert!(ready.contains("reload failed"), "{ready:?}");
    host.wait_for("the configuration is rejected and the one in force stays");
    let error = host
        .lines()
        .iter()
        .find(|line| line.contains("the configuration is rejected"))
        .unwrap()
        .clone();
    assert!(
        error.contains("ERROR") && error.contains("appsettings.json"),
        "{error}"
    );
    host.signal("TERM");
    let host = exits_with(host, &mut listener, 0);
    assert!(
        !host.output().contains("the greeting is now"),
        "{}",
        host.output()
    );
}

/// Waits for `host` to end and checks that SIGHUP's default action ended it.
fn ended_by_sighup(mut host: HostProcess) {
    use std::os::unix::process::ExitStatusExt;
    let (status, _) = host.wait_for_status(Instant::now());
    assert_eq!(status.signal(), Some(1), "{status:?}\n{}", host.output());
}

#[test]
fn without_notify_socket_sighup_has_its_default_action() {
    let dir = content_root("hello");
    let mut command = host_test::child_test(SCENARIO, "reload");
    command
        .env("RUST_LOG", "info")
        .env(CONTENT_ROOT, dir.path())
        .env_remove("NOTIFY_SOCKET");
    let mut host = HostProcess::spawn(command);
    host.wait_for("Application started.");
    host.signal("HUP");
    ended_by_sighup(host);
}

#[test]
fn once_the_notifying_host_has_stopped_sighup_has_its_default_action() {
    let dir = content_root("hello");
    let listener = Listener::path();
    let mut command = command("reload-then-by-hand", &listener);
    command.env(CONTENT_ROOT, dir.path());
    let mut host = HostProcess::spawn(command);
    host.wait_for("the first host returned");
    host.wait_for_times("Application started.", 2);
    host.signal("HUP");
    ended_by_sighup(host);
}

//! Upgraded connections (a real `101 Switching Protocols` over TCP, a line
//! echo protocol) run through `Upgrades` stay inside the drain: the host's
//! stop fires their `Shutdown`, waits for them to end, and only then
//! disposes the container; one that ignores `Shutdown` is closed at the
//! drain's bound; dropping a tracked connection's future releases the drain.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use host_core::{Host, HostBuilder};
use host_web::{Inject, Upgrades, WebHostBuilderExt};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use common::{Journal, NO_HANG, Root, bounded, builder, start};

/// Records when the upgraded connection's future is dropped unfinished.
struct DropGuard(Arc<Journal>, &'static str);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.record(self.1);
    }
}

/// The 101 answer of the `echo` protocol.
fn switching() -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "echo")
        .body(Body::empty())
        .unwrap()
}

/// Echoes lines until the drain begins, then says `bye` and takes a while
/// to end: a stop that did not wait would return first.
async fn echo(
    upgrades: Upgrades,
    Inject(root): Inject<Arc<Root>>,
    mut request: Request,
) -> Response {
    let upgrade = hyper::upgrade::on(&mut request);
    let shutdown = upgrades.shutdown();
    let journal = root.journal.clone();
    upgrades.spawn(async move {
        let upgraded = upgrade.await.expect("upgraded");
        let (reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        let mut lines = BufReader::new(reader).lines();
        journal.record("upgraded");
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => {
                        writer.write_all(format!("{line}\n").as_bytes()).await.unwrap();
                    }
                    _ => return,
                },
                () = shutdown.cancelled() => break,
            }
        }
        journal.record("shutdown seen");
        writer.write_all(b"bye\n").await.unwrap();
        writer.shutdown().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        journal.record("upgrade ended");
    });
    switching()
}

/// Echoes lines and ignores the drain.
async fn stubborn(
    upgrades: Upgrades,
    Inject(root): Inject<Arc<Root>>,
    mut request: Request,
) -> Response {
    let upgrade = hyper::upgrade::on(&mut request);
    let journal = root.journal.clone();
    upgrades.spawn(async move {
        let _guard = DropGuard(journal.clone(), "stubborn dropped");
        let upgraded = upgrade.await.expect("upgraded");
        let mut socket = BufReader::new(TokioIo::new(upgraded));
        journal.record("upgraded");
        let mut line = String::new();
        while socket.read_line(&mut line).await.unwrap_or(0) > 0 {
            socket.get_mut().write_all(line.as_bytes()).await.unwrap();
            line.clear();
        }
    });
    switching()
}

/// Where `/held` leaves its tracked task, for the test to drop.
#[derive(Default)]
struct Held(Mutex<Option<JoinHandle<()>>>);

/// Tracks a future that never ends, on a task the test aborts.
async fn held(
    upgrades: Upgrades,
    Inject(held): Inject<Arc<Held>>,
    Inject(journal): Inject<Arc<Journal>>,
) -> &'static str {
    let task = tokio::spawn(upgrades.track(async move {
        journal.record("held running");
        std::future::pending().await
    }));
    *held.0.lock() = Some(task);
    "held"
}

fn app(journal: &Arc<Journal>, args: &[&str]) -> HostBuilder {
    let mut builder = builder(args);
    builder.configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(60));
    builder.services().add_instance(journal.clone());
    builder.services().add_instance(Arc::new(Held::default()));
    builder.services().add_singleton_self::<Root>();
    builder.web(|app| {
        app.route("/echo", get(echo))
            .route("/stubborn", get(stubborn))
            .route("/held", get(held))
    });
    builder
}

/// Upgrades a raw connection to `path`, and checks that it echoes.
async fn upgrade(address: std::net::SocketAddr, path: &str) -> BufReader<TcpStream> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut stream = BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        let read = bounded("the upgrade's answer", stream.read_line(&mut head))
            .await
            .unwrap();
        assert!(read > 0, "closed before the answer: {head}");
    }
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream.get_mut().write_all(b"ping\n").await.unwrap();
    let mut echoed = String::new();
    bounded("the echo", stream.read_line(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, "ping\n");
    stream
}

/// Stops the host on a task of its own; gives the result and how long it
/// took.
fn begin_stop(mut host: Host) -> JoinHandle<(Result<(), host_core::HostError>, Duration)> {
    let began = Instant::now();
    host.lifetime().stop_application();
    tokio::spawn(async move {
        let result = host.stop().await;
        (result, began.elapsed())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_waits_for_an_upgraded_connection_that_ends_on_shutdown() {
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &[])).await;
    let mut socket = upgrade(address, "/echo").await;

    let stopping = begin_stop(host);
    let mut rest = String::new();
    bounded("the connection's end", socket.read_to_string(&mut rest))
        .await
        .unwrap();
    assert_eq!(rest, "bye\n", "the connection saw the shutdown");
    let (result, _) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop");
    assert!(
        journal.contains("upgrade ended"),
        "the stop returned while the upgraded connection ran: {:?}",
        journal.entries()
    );
    assert!(
        journal.position("upgrade ended") < journal.position("root disposed"),
        "{:?}",
        journal.entries()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_connection_that_ignores_shutdown_is_closed_at_the_bound() {
    const DRAIN: Duration = Duration::from_millis(200);
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &["--web.drain_timeout=200ms"])).await;
    let mut socket = upgrade(address, "/stubborn").await;

    let stopping = begin_stop(host);
    let (result, took) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop: the drain's bound is not a failure");
    assert!(took >= DRAIN, "the drain waited its bound: {took:?}");
    assert!(
        journal.contains("stubborn dropped"),
        "the stop returned while the upgraded connection ran: {:?}",
        journal.entries()
    );
    assert!(
        journal.position("stubborn dropped") < journal.position("root disposed"),
        "{:?}",
        journal.entries()
    );
    common::wait_for_close(socket.get_mut()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_tracked_connection_releases_the_drain() {
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &["--web.drain_timeout=30s"])).await;
    assert_eq!(common::get(address, "/held").await, (200, "held".into()));
    let held = host.services().get::<Held>().unwrap();
    let task = held.0.lock().take().expect("the handler tracked a task");
    journal.wait_for("held running").await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let (result, took) = bounded("the stop", begin_stop(host)).await.unwrap();
    result.expect("a clean stop");
    assert!(
        took < NO_HANG,
        "the stop waited for a dropped connection: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_connection_holds_the_drain_until_its_bound() {
    // The counterpart of the test above: not dropped, it is waited for.
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &["--web.drain_timeout=300ms"])).await;
    assert_eq!(common::get(address, "/held").await, (200, "held".into()));
    let held = host.services().get::<Held>().unwrap();
    let task = held.0.lock().take().expect("the handler tracked a task");

    let (result, took) = bounded("the stop", begin_stop(host)).await.unwrap();
    result.expect("a clean stop");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Cut at the bound: its future ended.
    bounded("the tracked task", task).await.unwrap();
}

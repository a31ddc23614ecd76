//! The graceful drain, in process over real TCP: a request in flight when
//! the stop begins completes with 200 while new connections are refused;
//! with `drain_timeout` a request that never finishes is cut off (its
//! sync-disposed scoped service still disposed) and the stop returns at the
//! bound (without it, at the host's shutdown timeout, still a clean stop);
//! a server-sent-events stream ending on `Shutdown` ends as the drain
//! begins, not at the bound; idle and silent connections never hold up the
//! stop; over HTTP/2 (prior knowledge) a stream in flight completes and a
//! stuck one is cut off, its handler dropped; `TestClient::begin_shutdown`
//! fires the same token.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::sse::{Event, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use host_core::{Host, HostBuilder, HostError};
use host_di::{Dispose, Injectable};
use host_web::{Inject, Shutdown, TestClient, WebHostBuilderExt};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use common::{Journal, NO_HANG, bounded, builder, get as http_get, start};

/// Lets the test release the gated handler.
struct Gate(watch::Sender<bool>);

/// Scoped, disposed synchronously: disposed even when its request is cut off.
#[derive(Injectable)]
#[injectable(dispose)]
struct Work {
    journal: Arc<Journal>,
}

impl Dispose for Work {
    fn dispose(&self) {
        self.journal.record("work disposed");
    }
}

/// Answers once the test opens the gate.
async fn gated(
    Inject(journal): Inject<Arc<Journal>>,
    Inject(gate): Inject<Arc<Gate>>,
) -> &'static str {
    let mut open = gate.0.subscribe();
    journal.record("gated entered");
    let _ = open.wait_for(|open| *open).await;
    journal.record("gated answering");
    "done"
}

/// Never answers.
async fn forever(Inject(work): Inject<Arc<Work>>) -> &'static str {
    work.journal.record("forever entered");
    std::future::pending::<()>().await;
    "never"
}

/// One event, then nothing until the drain begins.
async fn events(shutdown: Shutdown) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::once(async { Ok(Event::default().data("hello")) })
        .chain(futures::stream::pending());
    Sse::new(stream.take_until(shutdown.into_cancelled()))
}

fn app(journal: &Arc<Journal>, gate: &Arc<Gate>, args: &[&str]) -> HostBuilder {
    let mut builder = builder(args);
    builder
        // A stop that overran the drain bound would show, far from it.
        .configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(60));
    builder.services().add_instance(journal.clone());
    builder.services().add_instance(gate.clone());
    builder.services().add_scoped_self::<Work>();
    builder.web(|app| {
        app.route("/gated", get(gated))
            .route("/forever", get(forever))
            .route("/events", get(events))
            .route("/hello", get(|| async { "hello" }))
    });
    builder
}

fn parts() -> (Arc<Journal>, Arc<Gate>) {
    (
        Arc::new(Journal::default()),
        Arc::new(Gate(watch::Sender::new(false))),
    )
}

/// A stop on a task of its own: its result, and how long it took.
type Stopping = JoinHandle<(Result<(), HostError>, Duration)>;

/// Requests the stop and stops the host on a task of its own; the task
/// gives the result and how long the stop took from now.
fn begin_stop(mut host: Host) -> (Instant, Stopping) {
    let began = Instant::now();
    host.lifetime().stop_application();
    let task = tokio::spawn(async move {
        let result = host.stop().await;
        (result, began.elapsed())
    });
    (began, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_completes_while_new_connections_are_refused() {
    let (journal, gate) = parts();
    let (host, address) = start(app(&journal, &gate, &[])).await;
    let request = tokio::spawn(http_get(address, "/gated"));
    journal.wait_for("gated entered").await;

    let (_, stopping) = begin_stop(host);
    common::wait_until_refused(address).await;
    assert!(!request.is_finished(), "the request is still in flight");
    assert!(!stopping.is_finished(), "the drain waits for the request");

    gate.0.send_replace(true);
    let (status, body) = bounded("the request in flight", request).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "done"));
    let (result, _) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_finishes_is_cut_off_at_the_drain_timeout() {
    const DRAIN: Duration = Duration::from_millis(200);
    let (journal, gate) = parts();
    let (host, address) = start(app(&journal, &gate, &["--web.drain_timeout=200ms"])).await;
    let request = tokio::spawn(
        common::client()
            .get(format!("http://{address}/forever"))
            .send(),
    );
    journal.wait_for("forever entered").await;

    let (_, stopping) = begin_stop(host);
    let (result, took) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop: the drain's bound is not a failure");
    assert!(took >= DRAIN, "the drain waited its bound: {took:?}");
    assert!(took < NO_HANG, "the stop took {took:?}");

    let outcome = bounded("the cut-off request", request).await.unwrap();
    assert!(outcome.is_err(), "the client sees the cut: {outcome:?}");
    // The request's scope went with it: sync disposals ran.
    journal.wait_for("work disposed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_on_the_shutdown_token_not_at_the_drain_bound() {
    let (journal, gate) = parts();
    let (host, address) = start(app(&journal, &gate, &["--web.drain_timeout=30s"])).await;
    let response = common::client()
        .get(format!("http://{address}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = String::new();
    while !received.contains("data: hello") {
        let chunk = bounded("the first event", body.next())
            .await
            .expect("the stream is open")
            .expect("a chunk");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }

    let (began, stopping) = begin_stop(host);
    // Read to the end: a clean end, not an error.
    while let Some(chunk) = bounded("the stream's end", body.next()).await {
        chunk.expect("the stream ends cleanly, not cut");
    }
    let ended = began.elapsed();
    assert!(
        ended < Duration::from_secs(5),
        "the stream ended {ended:?} after the stop began: by the 30 s bound, not the token"
    );
    let (result, took) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop");
    assert!(
        took < Duration::from_secs(5),
        "the stop took {took:?}: it waited for the drain's bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_silent_connections_do_not_delay_the_stop() {
    let (journal, gate) = parts();
    // No drain_timeout: the bound would be the host's 60 s shutdown timeout.
    let (host, address) = start(app(&journal, &gate, &[])).await;
    // Connected, nothing sent. Accepted before the next one is served.
    let mut silent = TcpStream::connect(address).await.unwrap();
    let mut idle = TcpStream::connect(address).await.unwrap();
    let (status, body) = common::raw_get(&mut idle, "/hello").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, "hello");
    // Kept alive: a second request on the same connection.
    let (status, _) = common::raw_get(&mut idle, "/hello").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    let (_, stopping) = begin_stop(host);
    let (result, took) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop");
    assert!(took < NO_HANG, "{took:?}");
    common::wait_for_close(&mut idle).await;
    common::wait_for_close(&mut silent).await;
}

#[tokio::test]
async fn the_test_client_fires_the_same_token() {
    let (journal, gate) = parts();
    let host = app(&journal, &gate, &[]).build().unwrap();
    let client = TestClient::new(&host).unwrap();
    let stream = tokio::spawn({
        let client = client.clone();
        async move { client.get("/events").await }
    });
    // The stream stays open until the token fires.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!stream.is_finished());
    client.begin_shutdown();
    let response = bounded("the stream's end", stream).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.text().contains("data: hello"),
        "{}",
        response.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_drain_timeout_the_shutdown_timeout_bounds_the_drain() {
    let (journal, gate) = parts();
    let mut builder = app(&journal, &gate, &[]);
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_millis(500);
    });
    let (host, address) = start(builder).await;
    let request = tokio::spawn(
        common::client()
            .get(format!("http://{address}/forever"))
            .send(),
    );
    journal.wait_for("forever entered").await;
    let (_, stopping) = begin_stop(host);
    let (result, took) = bounded("the stop", stopping).await.unwrap();
    result.expect("closing at the shutdown timeout is not a timed-out stop");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < NO_HANG, "{took:?}");
    let outcome = bounded("the cut-off request", request).await.unwrap();
    assert!(outcome.is_err(), "the client sees the cut: {outcome:?}");
}

/// An HTTP/2 connection (prior knowledge) to `address`.
async fn http2(address: std::net::SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    sender
}

type Empty = http_body_util::Empty<axum::body::Bytes>;

fn h2_get(address: std::net::SocketAddr, path: &str) -> hyper::Request<Empty> {
    hyper::Request::get(format!("http://{address}{path}"))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_stream_in_flight_completes_during_the_drain() {
    let (journal, gate) = parts();
    let (host, address) = start(app(&journal, &gate, &[])).await;
    let mut sender = http2(address).await;
    let hello = sender
        .send_request(h2_get(address, "/hello"))
        .await
        .unwrap();
    assert_eq!(hello.version(), hyper::Version::HTTP_2);
    let in_flight = tokio::spawn(sender.send_request(h2_get(address, "/gated")));
    journal.wait_for("gated entered").await;

    let (_, stopping) = begin_stop(host);
    common::wait_until_refused(address).await;
    assert!(!stopping.is_finished(), "the drain waits for the stream");
    gate.0.send_replace(true);
    let response = bounded("the stream in flight", in_flight)
        .await
        .unwrap()
        .expect("the stream completes");
    assert_eq!(response.status(), 200);
    let body = bounded("the body", response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"done");
    let (result, _) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_a_stuck_stream_is_cut_off_and_its_handler_dropped() {
    let (journal, gate) = parts();
    let (host, address) = start(app(&journal, &gate, &["--web.drain_timeout=200ms"])).await;
    let mut sender = http2(address).await;
    let request = tokio::spawn(sender.send_request(h2_get(address, "/forever")));
    journal.wait_for("forever entered").await;

    let (_, stopping) = begin_stop(host);
    let (result, took) = bounded("the stop", stopping).await.unwrap();
    result.expect("a clean stop");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    let outcome = bounded("the cut-off stream", request).await.unwrap();
    assert!(outcome.is_err(), "the client sees the cut: {outcome:?}");
    // The handler's future was dropped, and its scope with it.
    journal.wait_for("work disposed").await;
}

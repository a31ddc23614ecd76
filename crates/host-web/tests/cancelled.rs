//! A request dropped before its end still closes its scope, async disposals
//! awaited: a client that goes away mid-request (HTTP/1 disconnect, HTTP/2
//! stream reset), a request cut at the drain's bound, and a close cut half
//! way by that bound. The server's stop awaits those closes, so they have
//! run by the time the host's stop returns, before the container (its
//! singletons) is disposed; a disposal that never ends holds the stop only
//! until the host's shutdown timeout.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use host_core::{Host, HostBuilder};
use host_di::{AsyncDispose, Injectable};
use host_web::{Inject, WebHostBuilderExt, async_trait};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use common::{InstanceId, Journal, Root, bounded, builder, start};

/// How long a scoped service's async disposal takes: long enough that a
/// stop that did not await it would return first.
const DISPOSAL: Duration = Duration::from_millis(500);

/// Scoped, its disposal really asynchronous and slow.
#[derive(Injectable)]
#[injectable(async_dispose)]
struct Slow {
    journal: Arc<Journal>,
    #[inject(default)]
    id: InstanceId,
}

#[async_trait]
impl AsyncDispose for Slow {
    async fn dispose(&self) {
        self.journal.record(format!("disposing {}", self.id.0));
        tokio::time::sleep(DISPOSAL).await;
        self.journal.record(format!("disposed {}", self.id.0));
    }
}

/// Scoped, its disposal never ends.
#[derive(Injectable)]
#[injectable(async_dispose)]
struct Hangs {
    journal: Arc<Journal>,
}

#[async_trait]
impl AsyncDispose for Hangs {
    async fn dispose(&self) {
        self.journal.record("hanging");
        std::future::pending::<()>().await;
    }
}

async fn hangs(Inject(hangs): Inject<Arc<Hangs>>) -> String {
    hangs.journal.record("entered 0");
    std::future::pending::<()>().await;
    unreachable!()
}

/// Never answers.
async fn forever(Inject(slow): Inject<Arc<Slow>>, Inject(_root): Inject<Arc<Root>>) -> String {
    slow.journal.record(format!("entered {}", slow.id.0));
    std::future::pending::<()>().await;
    unreachable!()
}

/// Answers at once; the answer waits for the scope's slow close.
async fn answers(Inject(slow): Inject<Arc<Slow>>, Inject(_root): Inject<Arc<Root>>) -> String {
    slow.journal.record(format!("entered {}", slow.id.0));
    "answered".to_owned()
}

fn app(journal: &Arc<Journal>, args: &[&str]) -> HostBuilder {
    let mut builder = builder(args);
    builder.configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(60));
    builder.services().add_instance(journal.clone());
    builder.services().add_scoped_self::<Slow>();
    builder.services().add_scoped_self::<Hangs>();
    builder.services().add_singleton_self::<Root>();
    builder.web(|app| {
        app.route("/forever", get(forever))
            .route("/answers", get(answers))
            .route("/hangs", get(hangs))
    });
    builder
}

/// The id of the one request that entered a handler.
async fn entered(journal: &Journal) -> u64 {
    bounded("a handler's entry", async {
        loop {
            let id = journal
                .entries()
                .iter()
                .find_map(|entry| entry.strip_prefix("entered ")?.parse().ok());
            if let Some(id) = id {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Stops the host; when the stop returns, the scope's disposal has run,
/// before the container's.
async fn stop_and_expect_disposed(mut host: Host, journal: &Journal, id: u64) {
    host.lifetime().stop_application();
    bounded("the host's stop", host.stop())
        .await
        .expect("a clean stop");
    let disposed = format!("disposed {id}");
    assert!(
        journal.contains(&disposed),
        "the stop returned before the scope's async disposal: {:?}",
        journal.entries()
    );
    assert!(
        journal.position(&disposed) < journal.position("root disposed"),
        "{:?}",
        journal.entries()
    );
}

/// Sends `GET path` on a raw connection, without waiting for an answer.
async fn send_get(address: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_request_still_gets_the_async_disposal() {
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &[])).await;
    let stream = send_get(address, "/forever").await;
    let id = entered(&journal).await;
    drop(stream);
    journal.wait_for(&format!("disposed {id}")).await;
    stop_and_expect_disposed(host, &journal, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_awaits_the_disposal_of_a_client_gone_just_before() {
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &[])).await;
    let stream = send_get(address, "/forever").await;
    let id = entered(&journal).await;
    drop(stream);
    journal.wait_for(&format!("disposing {id}")).await;
    stop_and_expect_disposed(host, &journal, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_awaits_the_disposal_of_a_request_cut_at_the_drain_bound() {
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &["--web.drain_timeout=100ms"])).await;
    let _stream = send_get(address, "/forever").await;
    let id = entered(&journal).await;
    stop_and_expect_disposed(host, &journal, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_cut_half_way_by_the_drain_bound_is_finished() {
    let journal = Arc::new(Journal::default());
    // The bound falls while the close awaits the disposal.
    let (host, address) = start(app(&journal, &["--web.drain_timeout=50ms"])).await;
    let _stream = send_get(address, "/answers").await;
    let id = entered(&journal).await;
    journal.wait_for(&format!("disposing {id}")).await;
    stop_and_expect_disposed(host, &journal, id).await;
}

/// An HTTP/2 connection (prior knowledge) to `address`.
async fn http2(
    address: std::net::SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<axum::body::Bytes>> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    sender
}

fn h2_get(
    address: std::net::SocketAddr,
    path: &str,
) -> hyper::Request<http_body_util::Empty<axum::body::Bytes>> {
    hyper::Request::get(format!("http://{address}{path}"))
        .body(http_body_util::Empty::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_reset_still_gets_the_async_disposal() {
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &[])).await;
    let mut sender = http2(address).await;
    // Dropping the response future resets the stream.
    let request = tokio::spawn(sender.send_request(h2_get(address, "/forever")));
    let id = entered(&journal).await;
    request.abort();
    journal.wait_for(&format!("disposed {id}")).await;
    stop_and_expect_disposed(host, &journal, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_the_stop_awaits_the_disposal_of_a_stream_cut_at_the_bound() {
    let journal = Arc::new(Journal::default());
    let (host, address) = start(app(&journal, &["--web.drain_timeout=100ms"])).await;
    let mut sender = http2(address).await;
    let _request = tokio::spawn(sender.send_request(h2_get(address, "/forever")));
    let id = entered(&journal).await;
    stop_and_expect_disposed(host, &journal, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposal_that_never_ends_holds_the_stop_only_until_the_shutdown_timeout() {
    let journal = Arc::new(Journal::default());
    let mut builder = app(&journal, &["--web.drain_timeout=100ms"]);
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_millis(500);
    });
    let (mut host, address) = start(builder).await;
    let _stream = send_get(address, "/hangs").await;
    entered(&journal).await;
    host.lifetime().stop_application();
    bounded("the host's stop", host.stop())
        .await
        .expect("the server's stop ends within the host's overtime");
    assert!(journal.contains("hanging"), "{:?}", journal.entries());
}

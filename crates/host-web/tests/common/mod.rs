//! Helpers shared by host-web's integration tests: a host builder for tests
//! (port 0, no signals, no default logging, Production), bounded waits, an
//! HTTP client, a journal to wait on, and raw-socket helpers.
// Each test file uses a part of these.
#![allow(dead_code)]

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use host_core::{Host, HostBuilder};
use host_di::{Dispose, Injectable};
use host_web::ServerAddresses;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The bound of every wait: generous, so that only a hang fails a test.
pub(crate) const NO_HANG: Duration = Duration::from_secs(10);

/// A builder for an in-process host: port 0, no signals, no default
/// logging, the Production environment, and `args` on the command line.
pub(crate) fn builder(args: &[&str]) -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .default_logging(false)
        .environment_name("Production")
        .args(
            ["test", "--web.urls=127.0.0.1:0"]
                .into_iter()
                .chain(args.iter().copied()),
        );
    builder
}

/// Awaits `future`, failing the test if it takes longer than [`NO_HANG`].
pub(crate) async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(NO_HANG, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {NO_HANG:?}"))
}

/// Builds and starts the host; returns it with the address it listens on.
pub(crate) async fn start(builder: HostBuilder) -> (Host, SocketAddr) {
    let mut host = builder.build().expect("the host builds");
    bounded("the host's start", host.start())
        .await
        .expect("the host starts");
    let address = address(&host);
    (host, address)
}

/// The first address the host's server listens on.
pub(crate) fn address(host: &Host) -> SocketAddr {
    host.services()
        .get::<ServerAddresses>()
        .expect("ServerAddresses is registered")
        .first()
        .expect("the server listens")
}

/// Stops the host, within [`NO_HANG`], and expects a clean stop.
pub(crate) async fn stop(host: &mut Host) {
    host.lifetime().stop_application();
    bounded("the host's stop", host.stop())
        .await
        .expect("the host stops cleanly");
}

/// An HTTP client that never uses a proxy and gives up after [`NO_HANG`].
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(NO_HANG)
        .build()
        .expect("a client")
}

/// `GET http://address/path`: the status and the body.
pub(crate) async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let response = client()
        .get(format!("http://{address}{path}"))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    (status, body)
}

/// `GET http://address/path` with a JSON body.
pub(crate) async fn get_json(address: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = get(address, path).await;
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|error| panic!("GET {path} is not JSON ({error}): {body}"));
    (status, json)
}

/// Waits until connecting to `address` is refused: the server has stopped
/// accepting. Connections that still succeed meanwhile are dropped.
pub(crate) async fn wait_until_refused(address: SocketAddr) {
    bounded("waiting for connections to be refused", async {
        loop {
            match TcpStream::connect(address).await {
                Err(error) if error.kind() == ErrorKind::ConnectionRefused => return,
                // Caught as the listener closed: the next attempt tells.
                Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
                Err(error) => panic!("connecting failed otherwise than refused: {error}"),
                Ok(stream) => drop(stream),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// Entries recorded by services and handlers, in order; a test waits for
/// one with a bound instead of sleeping.
#[derive(Debug)]
pub(crate) struct Journal(watch::Sender<Vec<String>>);

impl Default for Journal {
    fn default() -> Self {
        Self(watch::Sender::new(Vec::new()))
    }
}

impl Journal {
    pub(crate) fn record(&self, entry: impl Into<String>) {
        let entry = entry.into();
        self.0.send_modify(|entries| entries.push(entry));
    }

    pub(crate) fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    pub(crate) fn contains(&self, entry: &str) -> bool {
        self.0.borrow().iter().any(|recorded| recorded == entry)
    }

    /// The position of `entry`, which must have been recorded.
    pub(crate) fn position(&self, entry: &str) -> usize {
        let entries = self.entries();
        entries
            .iter()
            .position(|recorded| recorded == entry)
            .unwrap_or_else(|| panic!("{entry:?} is not in the journal: {entries:?}"))
    }

    /// Waits, within [`NO_HANG`], until `entry` has been recorded.
    pub(crate) async fn wait_for(&self, entry: &str) {
        let mut receiver = self.0.subscribe();
        let waited = tokio::time::timeout(
            NO_HANG,
            receiver.wait_for(|entries| entries.iter().any(|recorded| recorded == entry)),
        )
        .await;
        assert!(
            matches!(waited, Ok(Ok(_))),
            "{entry:?} was not recorded within {NO_HANG:?}: {:?}",
            self.entries()
        );
    }
}

/// Sends `GET path` as HTTP/1.1 on `stream` (the connection kept alive) and
/// reads the response: its status line and body (`content-length` only).
pub(crate) async fn raw_get(stream: &mut TcpStream, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("written");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            if text.len() >= end + 4 + length {
                let status = head.lines().next().unwrap_or_default().to_owned();
                return (status, text[end + 4..end + 4 + length].to_owned());
            }
        }
        let read = stream.read(&mut buffer).await.expect("read");
        assert!(read > 0, "the connection closed mid-response: {text}");
        received.extend_from_slice(&buffer[..read]);
    }
}

/// Waits, within [`NO_HANG`], for the server to close `stream`: a read
/// returns end of file (or a reset).
pub(crate) async fn wait_for_close(stream: &mut TcpStream) {
    let mut buffer = [0u8; 256];
    bounded("waiting for the server to close the connection", async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// A number no other instance in this test binary has.
#[derive(Debug)]
pub(crate) struct InstanceId(pub(crate) u64);

impl Default for InstanceId {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A singleton: disposed with the container, after the server's stop.
#[derive(Injectable)]
#[injectable(dispose)]
pub(crate) struct Root {
    pub(crate) journal: Arc<Journal>,
}

impl Dispose for Root {
    fn dispose(&self) {
        self.journal.record("root disposed");
    }
}

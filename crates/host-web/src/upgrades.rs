//! `Upgrades`: upgraded connections (WebSockets) kept inside the server's
//! drain.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::app::WEB_TARGET;
use crate::{InjectRejection, RequestServices, Shutdown};

/// Keeps an upgraded connection (a WebSocket, any `101 Switching
/// Protocols`) inside the server's drain.
///
/// Once a connection is upgraded, hyper hands its socket to a task of the
/// application's and forgets it: the drain would neither wait for that
/// task nor close it, and the host would dispose the container while the
/// socket is still served. Run the upgraded connection through `Upgrades`
/// instead: the server's stop then waits for it as for a request in flight,
/// [`shutdown`](Self::shutdown) tells it when the drain begins (send a close
/// frame, say goodbye), and at the drain's bound it is dropped, closing the
/// socket.
///
/// An extractor, taken in the handler that answers the upgrade: from then
/// on the stop waits for it (until it is dropped, or its tracked future
/// ends). With axum's `ws` feature:
///
/// ```text
/// async fn chat(ws: WebSocketUpgrade, upgrades: Upgrades) -> Response {
///     let shutdown = upgrades.shutdown();
///     ws.on_upgrade(move |socket| upgrades.track(serve_chat(socket, shutdown)))
/// }
/// ```
///
/// With hyper's upgrades directly:
///
/// ```
/// use axum::body::Body;
/// use axum::extract::Request;
/// use axum::http::{StatusCode, header};
/// use axum::response::Response;
/// use host_web::Upgrades;
/// use tokio::io::AsyncWriteExt;
///
/// async fn hello(upgrades: Upgrades, mut request: Request) -> Response {
///     let upgrade = hyper::upgrade::on(&mut request);
///     let shutdown = upgrades.shutdown();
///     upgrades.spawn(async move {
///         let Ok(upgraded) = upgrade.await else { return };
///         let mut socket = hyper_util::rt::TokioIo::new(upgraded);
///         let _ = socket.write_all(b"hello\n").await;
///         shutdown.cancelled().await; // serve until the drain begins
///         let _ = socket.write_all(b"bye\n").await;
///     });
///     Response::builder()
///         .status(StatusCode::SWITCHING_PROTOCOLS)
///         .header(header::CONNECTION, "upgrade")
///         .header(header::UPGRADE, "hello")
///         .body(Body::empty())
///         .unwrap()
/// }
/// # let _ = axum::Router::<()>::new().route("/hello", axum::routing::get(hello));
/// ```
pub struct Upgrades {
    /// Holds the drain open from the extraction on: the upgrade completes
    /// after the response, when the connection's own task may have ended.
    token: TaskTrackerToken,
    draining: CancellationToken,
    closing: CancellationToken,
}

impl Upgrades {
    /// The token that fires when the drain begins: end the connection then
    /// (a close frame, a goodbye), or it is dropped at the drain's bound.
    pub fn shutdown(&self) -> Shutdown {
        Shutdown::new(self.draining.clone())
    }

    /// `connection`, tracked: the server's stop waits for it until the
    /// drain's bound, and at the bound it is dropped (the returned future
    /// then ends). For a task someone else spawns, such as the callback of
    /// axum's `WebSocketUpgrade::on_upgrade`.
    ///
    /// Cancellation: dropping the returned future drops `connection` and
    /// releases the drain at once (the stop no longer waits for it).
    pub fn track<F>(self, connection: F) -> impl Future<Output = ()> + use<F>
    where
        F: Future<Output = ()>,
    {
        let Self { token, closing, .. } = self;
        async move {
            let _token = token;
            tokio::select! {
                () = connection => {}
                () = closing.cancelled() => {
                    tracing::debug!(target: WEB_TARGET,
                        "an upgraded connection was closed at the drain's bound");
                }
            }
        }
    }

    /// Spawns `connection` on a task of its own, [tracked](Self::track).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn`.
    pub fn spawn<F>(self, connection: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(self.track(connection))
    }
}

impl fmt::Debug for Upgrades {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrades")
            .field("draining", &self.draining.is_cancelled())
            .field("closing", &self.closing.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrades {
    type Rejection = InjectRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let services = parts
            .extensions
            .get::<RequestServices>()
            .ok_or_else(InjectRejection::no_layer)?;
        let drain = services.drain();
        Ok(Self {
            token: drain.connections.token(),
            draining: drain.draining.clone(),
            closing: drain.closing.clone(),
        })
    }
}

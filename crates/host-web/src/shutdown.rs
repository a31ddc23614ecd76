//! `Shutdown`: a token for long-lived responses, fired when the server
//! begins to drain.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::{InjectRejection, RequestServices};

/// Fires when the server stops accepting and begins to drain: a handler
/// that streams (server-sent events) ends its stream then, so that the
/// drain does not wait for it until the bound. An upgraded connection (a
/// WebSocket) gets it from [`Upgrades::shutdown`](crate::Upgrades::shutdown),
/// and is run through [`Upgrades`](crate::Upgrades) so that the drain
/// covers it at all.
///
/// ```
/// use std::time::Duration;
/// use axum::response::sse::{Event, Sse};
/// use futures::Stream;
/// use host_web::Shutdown;
///
/// async fn ticks(shutdown: Shutdown) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
///     let stream = futures::stream::unfold(0u64, |n| async move {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         Some((Ok(Event::default().data(n.to_string())), n + 1))
///     });
///     Sse::new(futures::StreamExt::take_until(stream, shutdown.into_cancelled()))
/// }
/// # let _ = axum::Router::<()>::new().route("/ticks", axum::routing::get(ticks));
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    pub(crate) fn new(token: CancellationToken) -> Self {
        Self(token)
    }

    /// Waits until the drain begins.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.0.cancelled()
    }

    /// Waits until the drain begins, owning the token (for `take_until`).
    pub fn into_cancelled(self) -> impl Future<Output = ()> + Send + 'static {
        self.0.cancelled_owned()
    }

    /// Whether the drain has begun.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// The token itself.
    pub fn token(&self) -> CancellationToken {
        self.0.clone()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Shutdown {
    type Rejection = InjectRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestServices>()
            .map(|services| Shutdown::new(services.drain().draining.clone()))
            .ok_or_else(InjectRejection::no_layer)
    }
}

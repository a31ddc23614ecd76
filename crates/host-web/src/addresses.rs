//! `ServerAddresses`: where the server listens, once it has started.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The addresses the web server listens on, once it has started (with port
/// 0, the ports the system chose). Resolvable from the host's container:
///
/// ```
/// use axum::routing::get;
/// use host_web::{ServerAddresses, WebHostBuilderExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut builder = host_core::Host::builder();
/// builder.handle_signals(false).default_logging(false);
/// builder.args(["app", "--web.urls=127.0.0.1:0"]); // any free port
/// builder.web(|app| app.route("/", get(|| async { "hello" })));
/// let mut host = builder.build()?;
/// host.start().await?;
/// let address = host.services().get::<ServerAddresses>()?.first().expect("listening");
/// assert_ne!(address.port(), 0);
/// host.stop().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerAddresses(Arc<Mutex<Vec<SocketAddr>>>);

impl ServerAddresses {
    /// Every address, in the order configured; empty until the server starts.
    pub fn all(&self) -> Vec<SocketAddr> {
        self.0.lock().clone()
    }

    /// The first address.
    pub fn first(&self) -> Option<SocketAddr> {
        self.0.lock().first().copied()
    }

    pub(crate) fn set(&self, addresses: Vec<SocketAddr>) {
        *self.0.lock() = addresses;
    }
}

//! The web server: a hosted service that binds in `start` (so that an
//! address in use fails the start and rolls back), serves each connection
//! on its own task, and in `stop` drains within a bound, then closes what is
//! still open.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use host_core::{
    HostOptions, HostedService, LIFETIME_TARGET, LifecycleContext, ServiceError, async_trait,
};
use host_di::{Dependency, DiError, Dispose, Disposer, Injectable, Options, ServiceProvider};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{self, WEB_TARGET};
use crate::scope::Drain;
use crate::{ServerAddresses, WebOptions, time};

/// How long the accept loop waits after an accept error (too many open
/// files, say) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Past the host's stop deadline, how long the server still waits for its
/// tasks (connections cut at that deadline, the closes of their request
/// scopes): within the host's own overtime, so that they get to end.
const GRACE: Duration = Duration::from_millis(100);

/// Serves the application's router; registered by `builder.web(...)`, last,
/// so that it starts after every other hosted service and stops first.
pub(crate) struct WebServer {
    provider: ServiceProvider,
    options: Options<WebOptions>,
    host_options: Arc<HostOptions>,
    addresses: Arc<ServerAddresses>,
    running: Mutex<Option<Running>>,
}

/// A started server.
struct Running {
    /// Stops the accept loops.
    accepting: CancellationToken,
    /// Its tokens: when the drain begins, connections finish their requests
    /// and handlers holding a [`Shutdown`](crate::Shutdown) end their
    /// streams; at its bound what is still open is closed.
    drain: Drain,
    accept_loops: Vec<JoinHandle<()>>,
}

impl Running {
    /// Ends everything at once, without waiting: the listeners close (their
    /// accept loops are aborted) and every connection is cut. For a server
    /// dropped or disposed without being stopped (a host dropped while
    /// running), and for what a stop cut short leaves.
    fn abort(&self) {
        self.accepting.cancel();
        self.drain.draining.cancel();
        self.drain.closing.cancel();
        for accept_loop in &self.accept_loops {
            accept_loop.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The container disposes the server (a host dropped without being
/// stopped runs the sync disposals): a server still running is aborted, so
/// that it neither keeps its port nor serves from a host that is gone.
impl Dispose for WebServer {
    fn dispose(&self) {
        drop(self.running.lock().take());
    }
}

impl Injectable for WebServer {
    fn dependencies() -> Vec<Dependency> {
        vec![
            Dependency::required_value::<Options<WebOptions>>(),
            Dependency::required::<HostOptions>(),
            Dependency::required::<ServerAddresses>(),
        ]
    }

    fn disposer(this: &Arc<Self>) -> Option<Disposer> {
        Some(Disposer::sync(Arc::clone(this)))
    }

    fn create(provider: &ServiceProvider) -> Result<Self, DiError> {
        Ok(Self {
            provider: provider.clone(),
            options: provider.get::<Options<WebOptions>>()?.as_ref().clone(),
            host_options: provider.get::<HostOptions>()?,
            addresses: provider.get::<ServerAddresses>()?,
            running: Mutex::new(None),
        })
    }
}

#[async_trait]
impl HostedService for WebServer {
    fn name(&self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("host_web::WebServer")
    }

    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        let configured = self.options.addresses().map_err(anyhow::Error::msg)?;
        // Bind every address before serving any, so that a failure leaves
        // nothing listening.
        let mut listeners = Vec::with_capacity(configured.len());
        for address in configured {
            listeners.push(bind(address)?);
        }
        let bound: Vec<SocketAddr> = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<_, _>>()?;
        let drain = Drain::default();
        let router = app::build(&self.provider, drain.clone())?;
        let mut running = Running {
            accepting: CancellationToken::new(),
            drain,
            accept_loops: Vec::new(),
        };
        running.accept_loops = listeners
            .into_iter()
            .map(|listener| {
                tokio::spawn(accept(
                    listener,
                    router.clone(),
                    running.accepting.clone(),
                    running.drain.clone(),
                ))
            })
            .collect();
        *self.running.lock() = Some(running);
        self.addresses.set(bound.clone());
        if !self.host_options.suppress_status_messages {
            for address in &bound {
                tracing::info!(target: LIFETIME_TARGET, "Now listening on: http://{address}");
            }
        }
        Ok(())
    }

    async fn stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        let Some(mut running) = self.running.lock().take() else {
            return Ok(());
        };
        // Readiness already answers 503 (the host is stopping); keep serving
        // a while so that load balancers notice before connections are refused.
        let delay = self.options.shutdown_delay;
        if !delay.is_zero() {
            tokio::select! {
                () = time::sleep(delay) => {}
                () = ctx.cancelled() => {}
            }
        }
        running.accepting.cancel();
        for accept_loop in &mut running.accept_loops {
            let _ = accept_loop.await;
        }
        // Dropped when the stop ends (or is cut short at the host's
        // deadline), `running` aborts what is left.
        let drain = running.drain.clone();
        drain.draining.cancel();
        drain.connections.close();
        let drained = {
            let bound = async {
                match self.options.drain_timeout {
                    Some(timeout) => tokio::select! {
                        () = time::sleep(timeout) => {}
                        () = ctx.cancelled() => {}
                    },
                    None => ctx.cancelled().await,
                }
            };
            tokio::select! {
                () = drain.connections.wait() => true,
                () = bound => false,
            }
        };
        // Past the host's stop deadline, what the server still waits for
        // gets a short grace (within the host's own overtime), then is left.
        let past_deadline = async {
            ctx.cancelled().await;
            tokio::time::sleep(GRACE).await;
        };
        let mut past_deadline = pin!(past_deadline);
        if !drained {
            let open = drain.connections.len();
            tracing::warn!(target: WEB_TARGET,
                "closing {open} connection(s) still open at the end of the drain");
            drain.closing.cancel();
            // Connections end at once; an HTTP/2 stream's task ends once it
            // sees its connection gone.
            tokio::select! {
                () = drain.connections.wait() => {}
                () = past_deadline.as_mut() => {
                    let open = drain.connections.len();
                    tracing::warn!(target: WEB_TARGET,
                        "{open} connection task(s) still running at the host's shutdown timeout");
                }
            }
        }
        // The scopes of requests dropped unfinished (those just cut among
        // them) close on tasks of their own: their async disposals are
        // awaited here, before the host disposes the container, within the
        // host's stop deadline (and the grace past it, for the ones cut at
        // that deadline).
        drain.scopes.close();
        tokio::select! {
            () = drain.scopes.wait() => {}
            () = past_deadline => {
                let open = drain.scopes.len();
                tracing::warn!(target: WEB_TARGET,
                    "{open} request scope(s) still disposing at the host's shutdown timeout");
            }
        }
        Ok(())
    }
}

/// Binds `address`; the error names it.
fn bind(address: SocketAddr) -> Result<TcpListener, ServiceError> {
    let listener = std::net::TcpListener::bind(address)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|error| anyhow::anyhow!("web server could not bind {address}: {error}"))?;
    Ok(TcpListener::from_std(listener)?)
}

/// Accepts connections until `accepting` is cancelled; the listener is
/// dropped then, so new connections are refused.
async fn accept(listener: TcpListener, router: Router, accepting: CancellationToken, drain: Drain) {
    loop {
        let accepted = tokio::select! {
            () = accepting.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                drain
                    .connections
                    .spawn(serve(stream, router.clone(), drain.clone()));
            }
            Err(error) => {
                tracing::warn!(target: WEB_TARGET, "accepting a connection failed: {error}");
                tokio::select! {
                    () = accepting.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
}

/// Serves one connection (HTTP/1 or HTTP/2, with upgrades); at the drain it
/// finishes the requests in flight and closes, at the bound it is dropped.
async fn serve(stream: TcpStream, router: Router, drain: Drain) {
    let _ = stream.set_nodelay(true);
    let builder = ConnectionBuilder::new(Tracked(drain.connections.clone()));
    let service = TowerToHyperService::new(router);
    let mut connection =
        pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
    tokio::select! {
        result = connection.as_mut() => {
            report(result);
            return;
        }
        () = drain.draining.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        result = connection.as_mut() => report(result),
        () = drain.closing.cancelled() => {}
    }
}

/// hyper's executor for a connection's own tasks (an HTTP/2 stream's
/// request runs on one): tracked with the connections, so that the drain
/// waits for them too and a stream cut at the bound has dropped its
/// handler (closing its scope) before the stop returns.
#[derive(Clone)]
struct Tracked(TaskTracker);

impl<F> hyper::rt::Executor<F> for Tracked
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

fn report(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = result {
        // A client that goes away mid-request is routine.
        tracing::debug!(target: WEB_TARGET, "connection ended with an error: {error}");
    }
}

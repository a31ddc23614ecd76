//! `builder.web(...)`: the builder extension that adds the web server.

use std::sync::Arc;

use axum::Router;
use host_core::HostBuilder;
use host_di::Injectable;

use crate::app::Routes;
use crate::server::WebServer;
use crate::{HealthCheck, ServerAddresses, WebOptions};

/// The configuration section of the web server.
pub const WEB_SECTION: &str = "web";

/// The command-line argument that sets `web.urls`, as ASP.NET Core's.
const URLS_ARGUMENT: &str = "urls";

/// Adds the web server to a [`HostBuilder`], as ASP.NET adds Kestrel: one
/// hosted service among the others.
///
/// ```no_run
/// use axum::routing::get;
/// use host_core::Host;
/// use host_web::WebHostBuilderExt;
///
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     let mut builder = Host::builder();
///     builder.args(std::env::args());
///     builder.web(|app| app.route("/hello", get(|| async { "hello" })));
///     builder.run().await
/// }
/// ```
pub trait WebHostBuilderExt {
    /// Adds routes to the web application (each call's are merged, in
    /// order). The first call adds the server: it reads the `web`
    /// configuration section ([`WebOptions`]), binds when it starts, after
    /// every other hosted service has started, and stops first (no service
    /// may start after it: a build error). It also
    /// makes `--urls` on the command line an alias of `--web.urls`, as in
    /// ASP.NET Core.
    fn web(&mut self, routes: impl Fn(Router) -> Router + Send + Sync + 'static) -> &mut Self;

    /// Adds a health check built by the container, run by the readiness
    /// endpoint.
    fn add_health_check<T: HealthCheck + Injectable>(&mut self) -> &mut Self;

    /// Adds a health check you have built.
    fn add_health_check_instance(&mut self, check: impl HealthCheck) -> &mut Self;
}

impl WebHostBuilderExt for HostBuilder {
    fn web(&mut self, routes: impl Fn(Router) -> Router + Send + Sync + 'static) -> &mut Self {
        if !self.services().contains::<Routes>() {
            self.configure::<WebOptions>(WEB_SECTION)
                .validate(WebOptions::check);
            // ASP.NET Core's `--urls`, so that `dotnet run --urls=...` habits work.
            self.configuration()
                .argument_alias(URLS_ARGUMENT, format!("{WEB_SECTION}.urls"));
            self.services()
                .add_instance(Arc::new(ServerAddresses::default()));
            // Registered last, whatever is registered after this call, and
            // marked `last`: it starts after every other service and stops
            // first under any dependency order, and a service that would
            // start after it is a build error naming it.
            self.before_build(|builder| {
                builder.add_hosted_service_with::<WebServer, _>(|server| server.last());
            });
        }
        self.services()
            .add_instance(Arc::new(Routes(Box::new(routes))));
        self
    }

    fn add_health_check<T: HealthCheck + Injectable>(&mut self) -> &mut Self {
        let services = self.services();
        if !services.contains::<T>() {
            services.add_singleton_self::<T>();
        }
        services
            .add_singleton_factory::<dyn HealthCheck, _>(|provider| {
                let check: Arc<dyn HealthCheck> = provider.get::<T>()?;
                Ok(check)
            })
            .depends_on::<T>();
        self
    }

    fn add_health_check_instance(&mut self, check: impl HealthCheck) -> &mut Self {
        let check: Arc<dyn HealthCheck> = Arc::new(check);
        self.services().add_instance(check);
        self
    }
}

//! `Inject<T>`: resolve a service in a handler, from the request's scope.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use host_di::{DiError, Resolvable};

use crate::RequestServices;

/// Resolves `T` from the request's scope, as a field of a derived
/// `Injectable` is: `Arc<S>` (a registered service), `Option<Arc<S>>`,
/// `Vec<Arc<S>>`, `Options<T>`, `OptionsSnapshot<T>` (the value for this
/// request), `OptionsMonitor<T>`, and the host's own parts such as
/// `Arc<ApplicationLifetime>`.
///
/// Scoped services live for the request: resolved twice in one request they
/// are the same instance, and they are disposed once the handler has
/// answered.
///
/// ```
/// use std::sync::Arc;
/// use axum::Json;
/// use host_web::Inject;
///
/// trait Greeter: Send + Sync {
///     fn greet(&self, name: &str) -> String;
/// }
///
/// async fn hello(Inject(greeter): Inject<Arc<dyn Greeter>>) -> Json<String> {
///     Json(greeter.greet("world"))
/// }
/// # let _ = axum::Router::<()>::new().route("/hello", axum::routing::get(hello));
/// ```
///
/// A service that cannot be resolved answers 500 and logs the container's
/// error (the response does not carry it).
#[derive(Debug, Clone)]
pub struct Inject<T>(pub T);

impl<S: Send + Sync, T: Resolvable> FromRequestParts<S> for Inject<T> {
    type Rejection = InjectRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let services = RequestServices::from_request_parts(parts, state).await?;
        T::resolve(services.provider())
            .map(Inject)
            .map_err(InjectRejection::resolve)
    }
}

/// Why a handler's service could not be injected: answered with 500.
#[derive(Debug)]
pub struct InjectRejection {
    error: Option<DiError>,
}

impl InjectRejection {
    pub(crate) fn no_layer() -> Self {
        Self { error: None }
    }

    fn resolve(error: DiError) -> Self {
        Self { error: Some(error) }
    }

    /// The container's error, if the service was not resolvable (`None`
    /// when the router is served without host-web's layers).
    pub fn error(&self) -> Option<&DiError> {
        self.error.as_ref()
    }
}

impl IntoResponse for InjectRejection {
    fn into_response(self) -> Response {
        match &self.error {
            Some(error) => {
                tracing::error!(target: "host::web", "cannot inject a handler's service: {error}")
            }
            None => tracing::error!(target: "host::web",
                "a handler injects services, but the router is not served by host-web (no request scope)"),
        }
        (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
    }
}

//! One service's failure: which service, in which phase, and why.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::ServiceError;

/// The phase of a hosted service's life in which something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// The `starting` hook, run for every service before any `start`.
    Starting,
    /// `start`.
    Start,
    /// The `started` hook, run for every service after every `start`.
    Started,
    /// A background service's `execute`, running on its own task.
    Execute,
    /// The `stopping` hook, run for every service before any `stop`.
    Stopping,
    /// `stop`.
    Stop,
    /// The `stopped` hook, run for every service after every `stop`.
    Stopped,
    /// Disposal by the container, after the stop: the service's name is
    /// then the type being disposed.
    Dispose,
}

impl Phase {
    /// The phase's name as it appears in logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Start => "start",
            Phase::Started => "started",
            Phase::Execute => "execute",
            Phase::Stopping => "stopping",
            Phase::Stop => "stop",
            Phase::Stopped => "stopped",
            Phase::Dispose => "dispose",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hosted service that returned an error or panicked.
///
/// Cheap to clone: one pointer, shared.
#[derive(Clone)]
pub struct ServiceFailure {
    inner: Arc<Inner>,
}

struct Inner {
    service: Arc<str>,
    phase: Phase,
    cause: Cause,
}

enum Cause {
    Error(ServiceError),
    Panic(String),
}

impl ServiceFailure {
    pub(crate) fn error(service: Arc<str>, phase: Phase, error: ServiceError) -> Self {
        Self::new(service, phase, Cause::Error(error))
    }

    pub(crate) fn panic(service: Arc<str>, phase: Phase, payload: Box<dyn Any + Send>) -> Self {
        Self::new(
            service,
            phase,
            Cause::Panic(panic_message(payload.as_ref())),
        )
    }

    /// A panic caught elsewhere (by the container), with its message.
    pub(crate) fn panic_message(service: Arc<str>, phase: Phase, message: String) -> Self {
        Self::new(service, phase, Cause::Panic(message))
    }

    /// How a guarded call ended: its own result, or the payload of its
    /// panic, caught.
    pub(crate) fn from_outcome(
        service: impl FnOnce() -> Arc<str>,
        phase: Phase,
        outcome: Result<Result<(), ServiceError>, Box<dyn Any + Send>>,
    ) -> Result<(), Self> {
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Self::error(service(), phase, error)),
            Err(payload) => Err(Self::panic(service(), phase, payload)),
        }
    }

    fn new(service: Arc<str>, phase: Phase, cause: Cause) -> Self {
        Self {
            inner: Arc::new(Inner {
                service,
                phase,
                cause,
            }),
        }
    }

    /// The name of the service that failed.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The phase in which it failed.
    pub fn phase(&self) -> Phase {
        self.inner.phase
    }

    /// Whether the service panicked rather than returning an error.
    pub fn is_panic(&self) -> bool {
        matches!(self.inner.cause, Cause::Panic(_))
    }

    /// The error the service returned, or `None` if it panicked.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match &self.inner.cause {
            Cause::Error(error) => Some(error),
            Cause::Panic(_) => None,
        }
    }

    /// The cause alone, without the service name: the error with its chain of
    /// causes, or `panicked: <message>`.
    pub fn cause(&self) -> String {
        match &self.inner.cause {
            Cause::Error(error) => format!("{error:#}"),
            Cause::Panic(message) => format!("panicked: {message}"),
        }
    }
}

impl fmt::Display for ServiceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner {
            service,
            phase,
            cause,
        } = &*self.inner;
        match cause {
            Cause::Error(error) => write!(f, "`{service}` failed in {phase}: {error:#}"),
            Cause::Panic(message) => write!(f, "`{service}` panicked in {phase}: {message}"),
        }
    }
}

impl fmt::Debug for ServiceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceFailure")
            .field("service", &self.inner.service)
            .field("phase", &self.inner.phase)
            .field("panic", &self.is_panic())
            .field("cause", &self.cause())
            .finish()
    }
}

/// The text of a panic payload: `panic!` gives a `&str` or a `String`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_failure_names_service_phase_and_chain() {
        let error = anyhow::anyhow!("connection refused").context("cannot reach the queue");
        let failure = ServiceFailure::error("app::Worker".into(), Phase::Start, error);
        assert_eq!(
            failure.to_string(),
            "`app::Worker` failed in start: cannot reach the queue: connection refused"
        );
        assert!(!failure.is_panic());
        assert!(failure.service_error().is_some());
    }

    #[test]
    fn panic_failure_carries_the_message() {
        let payload: Box<dyn Any + Send> = Box::new(String::from("index out of bounds"));
        let failure = ServiceFailure::panic("app::Worker".into(), Phase::Execute, payload);
        assert_eq!(
            failure.to_string(),
            "`app::Worker` panicked in execute: index out of bounds"
        );
        assert!(failure.is_panic());
        assert_eq!(failure.cause(), "panicked: index out of bounds");
    }

    #[test]
    fn non_string_panic_payload_is_described() {
        let payload: Box<dyn Any + Send> = Box::new(42_u8);
        assert_eq!(
            panic_message(payload.as_ref()),
            "a panic with a non-string payload"
        );
    }
}

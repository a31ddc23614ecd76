//! Public types that users share are `Send + Sync`.

use host_core::*;

fn is_send_sync<T: Send + Sync>() {}
fn is_send<T: Send>() {}

#[test]
fn shared_types_are_send_and_sync() {
    is_send_sync::<Host>();
    is_send_sync::<HostBuilder>();
    is_send_sync::<HostError>();
    is_send_sync::<HostOptions>();
    is_send_sync::<HostEnvironment>();
    is_send_sync::<ApplicationLifetime>();
    is_send_sync::<ServiceContext>();
    is_send_sync::<LifecycleContext>();
    is_send_sync::<ServiceStates>();
    is_send_sync::<ServiceStatus>();
    is_send_sync::<ServiceState>();
    is_send_sync::<ServiceFailure>();
    is_send_sync::<LoggingOptions>();
    is_send_sync::<LogLevel>();
    is_send_sync::<LogFormat>();
    is_send_sync::<std::sync::Arc<dyn HostedService>>();
    is_send_sync::<std::sync::Arc<dyn BackgroundService>>();
}

#[test]
fn the_lifetime_futures_can_be_spawned() {
    let lifetime = ApplicationLifetime::new();
    fn future_is_send<F: Future + Send + 'static>(_: F) {}
    future_is_send(lifetime.started());
    future_is_send(lifetime.stopping());
    future_is_send(lifetime.stopped());
    future_is_send(lifetime.stop_requested());
    is_send::<Host>();
}

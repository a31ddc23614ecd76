//! The public types can cross threads.

use host_di::{
    Dependency, DiError, DisposeReport, Disposer, Lifetime, Options, Registration, Scope,
    ServiceCollection, ServiceDescriptor, ServiceProvider,
};

fn send_sync<T: Send + Sync>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<ServiceCollection>();
    send_sync::<ServiceProvider>();
    send_sync::<Scope>();
    send_sync::<DiError>();
    send_sync::<Dependency>();
    send_sync::<Disposer>();
    send_sync::<DisposeReport>();
    send_sync::<Lifetime>();
    send_sync::<Options<String>>();
    send_sync::<ServiceDescriptor<dyn std::any::Any + Send + Sync>>();
    send_sync::<Registration<'static, str>>();
}

#[test]
fn dispose_and_close_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let provider = ServiceCollection::new().build().unwrap();
    send(provider.dispose());
    send(provider.create_scope().close());
    send(provider.dispose_within(std::future::ready(())));
}

//! A web host that is dropped while running closes its port and its
//! connections; a web host's whole life frees every instance it created,
//! request scopes holding their provider included (no reference cycle
//! through the server, the container or the request scope).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use axum::routing;
use host_di::{Injectable, ServiceProvider};
use host_web::{Inject, WebHostBuilderExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use common::{builder, get, start, stop, wait_for_close, wait_until_refused};

#[tokio::test]
async fn dropping_a_running_web_host_frees_its_port_and_cuts_its_connections() {
    let mut web = builder(&[]);
    web.web(|app| app.route("/hello", routing::get(|| async { "hello" })));
    let (host, address) = start(web).await;
    assert_eq!(get(address, "/hello").await.0, 200);
    // An idle keep-alive connection, and one with half a request.
    let mut idle = TcpStream::connect(address).await.unwrap();
    let mut half = TcpStream::connect(address).await.unwrap();
    half.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();

    drop(host);
    wait_until_refused(address).await;
    wait_for_close(&mut idle).await;
    wait_for_close(&mut half).await;
    // The port can be bound again.
    std::net::TcpListener::bind(address).expect("the port is free");
}

/// Counts the instances alive.
#[derive(Default)]
struct Alive(AtomicUsize);

/// Scoped, holding the request scope's provider: a cycle through the
/// scope unless the container breaks it.
#[derive(Injectable)]
struct Unit {
    alive: Arc<Alive>,
    _provider: ServiceProvider,
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.alive.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A singleton holding the root provider, as the web server does.
#[derive(Injectable)]
struct Registry {
    _provider: ServiceProvider,
}

#[tokio::test]
async fn a_web_hosts_whole_life_frees_what_it_created() {
    const REQUESTS: usize = 50;
    let alive = Arc::new(Alive::default());
    let mut web = builder(&[]);
    web.services().add_instance(alive.clone());
    web.services().add_scoped_self::<Unit>();
    web.services().add_singleton_self::<Registry>();
    let counted = alive.clone();
    web.web(move |app| {
        let counted = counted.clone();
        app.route(
            "/unit",
            routing::get(
                move |unit: Inject<Arc<Unit>>, _registry: Inject<Arc<Registry>>| {
                    let counted = counted.clone();
                    async move {
                        counted.0.fetch_add(1, Ordering::SeqCst);
                        drop(unit);
                        "ok"
                    }
                },
            ),
        )
    });
    let (mut host, address) = start(web).await;
    let registry: Weak<Registry> = Arc::downgrade(&host.services().get::<Registry>().unwrap());
    for _ in 0..REQUESTS {
        assert_eq!(get(address, "/unit").await.0, 200);
    }
    stop(&mut host).await;
    assert_eq!(
        alive.0.load(Ordering::SeqCst),
        0,
        "every request's scoped instance was freed with its scope"
    );
    assert!(
        registry.upgrade().is_some(),
        "the host still holds its container"
    );
    drop(host);
    assert!(
        registry.upgrade().is_none(),
        "the container (and the server holding its provider) was freed with the host"
    );
}

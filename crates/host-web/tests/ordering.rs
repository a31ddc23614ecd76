//! The server's place among the hosted services: it starts after every
//! other service's `start` has returned (nothing is bound or accepting while
//! they start), even when `web()` is called before `add_hosted_service`;
//! it is accepting by the `started` hooks; and it stops first (connections
//! are refused by the time any other service's `stop` runs). An address in
//! use fails the start, naming it, and rolls back the services started
//! before; several addresses are all served.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use host_core::{HostedService, LifecycleContext, ServiceError, async_trait};
use host_di::Injectable;
use host_web::{ServerAddresses, WebHostBuilderExt};
use tokio::net::TcpStream;

use common::{Journal, builder, get as http_get, start, stop};

/// Whether a connection to `address` is accepted now.
async fn accepting(address: Option<SocketAddr>) -> bool {
    match address {
        Some(address) => TcpStream::connect(address).await.is_ok(),
        None => false,
    }
}

/// Records, in each phase, whether the server is bound and accepting.
async fn record(label: &str, phase: &str, addresses: &ServerAddresses, journal: &Journal) {
    // Let anything running beside this call run first.
    tokio::task::yield_now().await;
    let address = addresses.first();
    let accepting = accepting(address).await;
    journal.record(format!(
        "{label} {phase}: bound={} accepting={accepting}",
        address.is_some()
    ));
}

/// Registered before `web()`.
#[derive(Injectable)]
struct Before {
    addresses: Arc<ServerAddresses>,
    journal: Arc<Journal>,
}

/// Registered after `web()`.
#[derive(Injectable)]
struct After {
    addresses: Arc<ServerAddresses>,
    journal: Arc<Journal>,
}

macro_rules! probe {
    ($ty:ident, $label:literal) => {
        #[async_trait]
        impl HostedService for $ty {
            async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
                record($label, "start", &self.addresses, &self.journal).await;
                Ok(())
            }

            async fn started(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
                record($label, "started", &self.addresses, &self.journal).await;
                Ok(())
            }

            async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
                // Still known after the stop: where the server listened.
                let address = self.addresses.first();
                let accepting = accepting(address).await;
                self.journal
                    .record(format!("{} stop: accepting={accepting}", $label));
                Ok(())
            }
        }
    };
}

probe!(Before, "before");
probe!(After, "after");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_starts_last_and_stops_first() {
    let journal = Arc::new(Journal::default());
    let mut builder = builder(&[]);
    builder.services().add_instance(journal.clone());
    builder.add_hosted_service::<Before>();
    builder.web(|app| app.route("/hello", get(|| async { "hello" })));
    builder.add_hosted_service::<After>();
    let (mut host, address) = start(builder).await;
    assert_eq!(http_get(address, "/hello").await, (200, "hello".into()));
    stop(&mut host).await;

    assert_eq!(
        journal.entries(),
        [
            "before start: bound=false accepting=false",
            "after start: bound=false accepting=false",
            "before started: bound=true accepting=true",
            "after started: bound=true accepting=true",
            "after stop: accepting=false",
            "before stop: accepting=false",
        ]
    );
    let names: Vec<String> = host
        .service_states()
        .snapshot()
        .into_iter()
        .map(|status| status.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            std::any::type_name::<Before>(),
            std::any::type_name::<After>(),
            "host_web::WebServer",
        ]
    );
}

fn probed(journal: &Arc<Journal>, urls: &str) -> host_core::HostBuilder {
    let mut builder = builder(&[urls]);
    builder.services().add_instance(journal.clone());
    builder.add_hosted_service::<Before>();
    builder.web(|app| app.route("/hello", get(|| async { "hello" })));
    builder.add_hosted_service::<After>();
    builder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_in_use_fails_the_start_and_rolls_back_the_others() {
    let journal = Arc::new(Journal::default());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let mut host = probed(&journal, &format!("--web.urls=127.0.0.1:0,{address}"))
        .build()
        .unwrap();
    // Resolved now: the rollback disposes the container.
    let addresses = host.services().get::<ServerAddresses>().unwrap();
    let error = common::bounded("the start", host.start())
        .await
        .unwrap_err();
    assert!(error.is_start(), "{error}");
    assert_eq!(error.exit_code(), 1, "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("could not bind {address}")),
        "{text}"
    );
    assert!(text.contains("rolled back:"), "{text}");
    assert_eq!(
        error.rolled_back().collect::<Vec<_>>(),
        [
            std::any::type_name::<After>(),
            std::any::type_name::<Before>()
        ]
    );
    assert_eq!(
        journal.entries(),
        [
            "before start: bound=false accepting=false",
            "after start: bound=false accepting=false",
            "after stop: accepting=false",
            "before stop: accepting=false",
        ]
    );
    assert!(addresses.all().is_empty(), "{addresses:?}");
    // The start failed; a stop now has nothing left to do.
    common::bounded("the stop", host.stop())
        .await
        .expect("nothing to stop");
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_addresses_are_all_served() {
    let journal = Arc::new(Journal::default());
    let (mut host, _) = start(probed(
        &journal,
        "--web.urls=127.0.0.1:0; http://127.0.0.1:0/",
    ))
    .await;
    let addresses = host.services().get::<ServerAddresses>().unwrap().all();
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    assert_ne!(addresses[0], addresses[1]);
    for address in &addresses {
        assert_eq!(http_get(*address, "/hello").await, (200, "hello".into()));
    }
    stop(&mut host).await;
    for address in addresses {
        common::wait_until_refused(address).await;
    }
}

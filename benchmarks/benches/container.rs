//! Resolving from the container (issue 3, section 5): host-di beside the
//! limit (a `HashMap<TypeId, Arc<dyn Any + Send + Sync>>` with an identity
//! hasher), more-di (feature `async`, so `Arc` and thread-safe) and shaku
//! (compile-time wiring).
//!
//! The operations:
//!
//! - **singleton**: resolve a created singleton (`Arc<Config>`);
//! - **transient**: resolve a transient with one singleton dependency (a new
//!   `Handler { config: Arc<Config> }` each time). In the type map this is a
//!   stored constructor closure, looked up and called with the dependency
//!   it resolves from the same map;
//! - **scoped**: resolve a scoped service already created in an open scope;
//! - **scope**: create a scope and drop it.
//!
//! Each operation runs in batches of many iterations with its result passed
//! through `std::hint::black_box` (and dropped, as a caller would); the
//! batch size is calibrated to about 5 ms, and the figure is the median of
//! the batches' ns per operation. shaku resolves through trait objects
//! (`Arc<dyn Config>`, `Box<dyn Handler>`), as it requires; it has no
//! scopes. The type map's "scope" is an `Arc` of an empty map, its "scoped"
//! a lookup in it: rough limits, without targets.

mod common;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{median, ratio, verdict};

/// The singleton every contender holds.
#[derive(host_di::Injectable)]
struct Config {
    #[inject(default)]
    level: u64,
}

/// The transient, with one singleton dependency.
#[derive(host_di::Injectable)]
struct Handler {
    config: Arc<Config>,
}

/// The scoped service.
#[derive(host_di::Injectable)]
struct RequestState {
    #[inject(default)]
    id: u64,
}

/// The limit: a type map with an identity hasher.
mod type_map {
    use super::*;

    /// Keeps a `TypeId`'s hash as it is.
    #[derive(Default)]
    pub(crate) struct IdentityHasher(u64);

    impl Hasher for IdentityHasher {
        fn finish(&self) -> u64 {
            self.0
        }

        fn write(&mut self, bytes: &[u8]) {
            for &byte in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(byte);
            }
        }

        fn write_u64(&mut self, value: u64) {
            self.0 = value;
        }
    }

    type Build = BuildHasherDefault<IdentityHasher>;
    type Instance = Arc<dyn Any + Send + Sync>;
    type Constructor = Box<dyn Fn(&TypeMap) -> Instance + Send + Sync>;

    #[derive(Default)]
    pub(crate) struct TypeMap {
        singletons: HashMap<TypeId, Instance, Build>,
        transients: HashMap<TypeId, Constructor, Build>,
    }

    impl TypeMap {
        pub(crate) fn new() -> Self {
            let mut map = Self::default();
            map.singletons
                .insert(TypeId::of::<Config>(), Arc::new(Config { level: 3 }));
            map.transients.insert(
                TypeId::of::<Handler>(),
                Box::new(|map: &TypeMap| {
                    let config = map.singleton::<Config>().expect("registered");
                    Arc::new(Handler { config })
                }),
            );
            map
        }

        pub(crate) fn singleton<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
            self.singletons
                .get(&TypeId::of::<T>())
                .and_then(|instance| instance.clone().downcast().ok())
        }

        pub(crate) fn transient<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
            self.transients
                .get(&TypeId::of::<T>())
                .and_then(|create| create(self).downcast().ok())
        }
    }

    /// A scope: its own map of scoped instances.
    #[derive(Default)]
    pub(crate) struct Scope {
        scoped: HashMap<TypeId, Instance, Build>,
    }

    impl Scope {
        pub(crate) fn with<T: Any + Send + Sync>(instance: T) -> Self {
            let mut scope = Self::default();
            scope.scoped.insert(TypeId::of::<T>(), Arc::new(instance));
            scope
        }

        pub(crate) fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
            self.scoped
                .get(&TypeId::of::<T>())
                .and_then(|instance| instance.clone().downcast().ok())
        }
    }
}

/// more-di's registrations, by factory (what its `#[injectable]` generates).
fn more_di_provider() -> di::ServiceProvider {
    let mut services = di::ServiceCollection::new();
    services
        .add(di::singleton_factory(|_| Arc::new(Config { level: 3 })))
        .add(di::transient_factory(|provider| {
            Arc::new(Handler {
                config: provider.get_required::<Config>(),
            })
        }))
        .add(di::scoped_factory(|_| Arc::new(RequestState { id: 0 })));
    services.build_provider().expect("more-di validates")
}

/// shaku's wiring: components are singletons, providers transients.
mod shaku_wiring {
    use std::sync::Arc;

    use shaku::{Component, Interface, Provider, module};

    pub(crate) trait Settings: Interface {
        fn level(&self) -> u64;
    }

    #[derive(Component)]
    #[shaku(interface = Settings)]
    pub(crate) struct SettingsImpl {
        #[shaku(default = 3)]
        level: u64,
    }

    impl Settings for SettingsImpl {
        fn level(&self) -> u64 {
            self.level
        }
    }

    pub(crate) trait Handle {
        fn level(&self) -> u64;
    }

    #[derive(Provider)]
    #[shaku(interface = Handle)]
    pub(crate) struct HandleImpl {
        #[shaku(inject)]
        settings: Arc<dyn Settings>,
    }

    impl Handle for HandleImpl {
        fn level(&self) -> u64 {
            self.settings.level()
        }
    }

    module! {
        pub(crate) Wiring {
            components = [SettingsImpl],
            providers = [HandleImpl]
        }
    }
}

/// Median ns per call of `op`, over batches of about 5 ms.
fn ns_per_op<T>(mut op: impl FnMut() -> T, smoke: bool) -> f64 {
    let target = if smoke {
        Duration::from_micros(200)
    } else {
        Duration::from_millis(5)
    };
    let batches = if smoke { 3 } else { 15 };
    let mut iterations: u64 = 64;
    loop {
        let began = Instant::now();
        for _ in 0..iterations {
            black_box(op());
        }
        if began.elapsed() >= target || iterations >= 1 << 30 {
            break;
        }
        iterations *= 2;
    }
    let samples: Vec<f64> = (0..batches)
        .map(|_| {
            let began = Instant::now();
            for _ in 0..iterations {
                black_box(op());
            }
            began.elapsed().as_secs_f64() * 1e9 / iterations as f64
        })
        .collect();
    median(&samples)
}

/// One row of results: ns/op per contender, `None` where it has no such
/// operation.
struct Row {
    operation: &'static str,
    type_map: f64,
    host_di: f64,
    more_di: f64,
    shaku: Option<f64>,
}

fn main() {
    use shaku::{HasComponent, HasProvider};

    if common::child_args().is_some() {
        return;
    }
    let smoke = !common::is_bench_run();
    let began = Instant::now();
    let mut out = common::header("Resolving from the container (benches/container.rs)");

    let map = type_map::TypeMap::new();
    let map_scope = type_map::Scope::with(RequestState { id: 0 });

    let mut services = host_di::ServiceCollection::new();
    services
        .add_singleton_self::<Config>()
        .add_transient_self::<Handler>()
        .add_scoped_self::<RequestState>();
    let provider = services.build().expect("host-di validates");
    let scope = provider.create_scope();

    let more = more_di_provider();
    let more_scope = more.create_scope();

    let wiring = shaku_wiring::Wiring::builder().build();

    // Create what each contender caches, and check that all of them work.
    assert_eq!(provider.get::<Config>().expect("a singleton").level, 0);
    assert_eq!(
        provider.get::<Handler>().expect("a transient").config.level,
        0
    );
    assert_eq!(scope.get::<RequestState>().expect("a scoped").id, 0);
    assert_eq!(
        map.transient::<Handler>()
            .expect("a transient")
            .config
            .level,
        3
    );
    assert_eq!(map_scope.get::<RequestState>().expect("a scoped").id, 0);
    assert_eq!(more.get_required::<Handler>().config.level, 3);
    assert_eq!(more_scope.get_required::<RequestState>().id, 0);
    let handle: Box<dyn shaku_wiring::Handle> = wiring.provide().expect("a provider");
    assert_eq!(handle.level(), 3);

    let rows = [
        Row {
            operation: "singleton",
            type_map: ns_per_op(|| map.singleton::<Config>(), smoke),
            host_di: ns_per_op(|| provider.get::<Config>(), smoke),
            more_di: ns_per_op(|| more.get_required::<Config>(), smoke),
            shaku: Some(ns_per_op(
                || -> Arc<dyn shaku_wiring::Settings> { wiring.resolve() },
                smoke,
            )),
        },
        Row {
            operation: "transient, one singleton dependency",
            type_map: ns_per_op(|| map.transient::<Handler>(), smoke),
            host_di: ns_per_op(|| provider.get::<Handler>(), smoke),
            more_di: ns_per_op(|| more.get_required::<Handler>(), smoke),
            shaku: Some(ns_per_op(
                || -> Result<Box<dyn shaku_wiring::Handle>, _> { wiring.provide() },
                smoke,
            )),
        },
        Row {
            operation: "scoped, in an open scope",
            type_map: ns_per_op(|| map_scope.get::<RequestState>(), smoke),
            host_di: ns_per_op(|| scope.get::<RequestState>(), smoke),
            more_di: ns_per_op(|| more_scope.get_required::<RequestState>(), smoke),
            shaku: None,
        },
        Row {
            operation: "create and drop a scope",
            type_map: ns_per_op(|| Arc::new(type_map::Scope::default()), smoke),
            host_di: ns_per_op(|| provider.create_scope(), smoke),
            more_di: ns_per_op(|| more.create_scope(), smoke),
            shaku: None,
        },
    ];

    let _ = writeln!(
        out,
        "\nns per operation, median of batches of about 5 ms each.\n"
    );
    let _ = writeln!(
        out,
        "| operation | type map (limit) | host-di | more-di 3.2 (`async`) | shaku 0.6 | host-di / type map | more-di / host-di |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            row.operation,
            row.type_map,
            row.host_di,
            row.more_di,
            row.shaku
                .map_or_else(|| "—".to_owned(), |ns| format!("{ns:.1}")),
            ratio(row.host_di / row.type_map),
            ratio(row.more_di / row.host_di),
        );
    }
    let singleton = &rows[0];
    let transient = &rows[1];
    let _ = writeln!(out, "\n| target | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    let mut target = |name: &str, measured: f64, pass: bool| {
        let _ = writeln!(out, "| {name} | {} | {} |", ratio(measured), verdict(pass));
    };
    let value = singleton.host_di / singleton.type_map;
    target(
        "singleton ≤ 2x the type map (host-di / map)",
        value,
        value <= 2.0,
    );
    let value = transient.host_di / transient.type_map;
    target(
        "transient with one dependency ≤ 1.5x the type map's transient (host-di / map)",
        value,
        value <= 1.5,
    );
    let value = singleton.more_di / singleton.host_di;
    target(
        "singleton ≥ 5x faster than more-di (more-di / host-di)",
        value,
        value >= 5.0,
    );
    let value = transient.more_di / transient.host_di;
    target(
        "transient ≥ 5x faster than more-di (more-di / host-di)",
        value,
        value >= 5.0,
    );
    let _ = writeln!(
        out,
        "\nTotal time of this bench: {:.1} s.",
        began.elapsed().as_secs_f64()
    );
    println!("{out}");
}

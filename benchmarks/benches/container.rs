//! Resolving from the container (issue 3, section 5; method of issue 11):
//! host-di beside the limit (a `HashMap<TypeId, ...>` with an identity
//! hasher), more-di (feature `async`, so `Arc` and thread-safe) and shaku
//! (compile-time wiring).
//!
//! The operations, each as a concrete type and as a trait object:
//!
//! - **singleton**: resolve a created singleton (`Arc<Config>`; as a trait
//!   object, `Arc<dyn Level>`);
//! - **transient**: resolve a transient with one singleton dependency (a new
//!   `Handler { config: Arc<Config> }` each time; as a trait object, a new
//!   `DynHandler { level: Arc<dyn Level> }` resolved as `Arc<dyn Greet>`). In
//!   the type map this is a stored constructor closure, looked up and called
//!   with the dependency it resolves from the same map;
//! - **scoped**: resolve a scoped service already created in an open scope;
//! - **scope**: create a scope and drop it.
//!
//! Each contender's operation runs in batches of many iterations with its
//! result passed through `std::hint::black_box` (and dropped, as a caller
//! would); the batch size is calibrated per contender to about 2 ms (1 ms in
//! quick mode), and the contenders of a row alternate batch by batch (the
//! order rotated each round); the figure is the median of a contender's 41
//! batches' (15 in quick mode) ns per operation. shaku resolves only trait objects
//! (`Arc<dyn Settings>`, `Box<dyn Handle>`), so it appears in the
//! trait-object rows; it has no scopes. The type map holds a trait object
//! as an `Arc<dyn Trait>` (or a constructor returning one) behind
//! `dyn Any`. Its "scope" is an `Arc` of an empty map, its "scoped" a
//! lookup in it: rough limits, without targets.

mod common;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{RunKind, median, ratio, verdict};

/// The singleton every contender holds.
#[derive(host_di::Injectable)]
#[injectable(as = dyn Level)]
struct Config {
    #[inject(default)]
    level: u64,
}

/// What the singleton is as a trait object.
trait Level: Send + Sync {
    fn level(&self) -> u64;
}

impl Level for Config {
    fn level(&self) -> u64 {
        self.level
    }
}

/// The transient, with one singleton dependency.
#[derive(host_di::Injectable)]
struct Handler {
    config: Arc<Config>,
}

/// The transient as a trait object, with one trait-object dependency.
#[derive(host_di::Injectable)]
#[injectable(as = dyn Greet)]
struct DynHandler {
    level: Arc<dyn Level>,
}

/// What the transient is as a trait object.
trait Greet: Send + Sync {
    fn level(&self) -> u64;
}

impl Greet for DynHandler {
    fn level(&self) -> u64 {
        self.level.level()
    }
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
    /// A trait object's constructor, stored behind `dyn Any`.
    type DynConstructor<T> = Box<dyn Fn(&TypeMap) -> Arc<T> + Send + Sync>;

    #[derive(Default)]
    pub(crate) struct TypeMap {
        singletons: HashMap<TypeId, Instance, Build>,
        transients: HashMap<TypeId, Constructor, Build>,
        /// `Arc<dyn Trait>` behind `dyn Any`, under `TypeId::of::<dyn Trait>()`.
        dyn_singletons: HashMap<TypeId, Box<dyn Any + Send + Sync>, Build>,
        /// `DynConstructor<dyn Trait>` behind `dyn Any`.
        dyn_transients: HashMap<TypeId, Box<dyn Any + Send + Sync>, Build>,
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
            let level: Arc<dyn Level> = Arc::new(Config { level: 3 });
            map.dyn_singletons
                .insert(TypeId::of::<dyn Level>(), Box::new(level));
            let greet: DynConstructor<dyn Greet> = Box::new(|map: &TypeMap| {
                let level = map.dyn_singleton::<dyn Level>().expect("registered");
                Arc::new(DynHandler { level })
            });
            map.dyn_transients
                .insert(TypeId::of::<dyn Greet>(), Box::new(greet));
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

        pub(crate) fn dyn_singleton<T: ?Sized + Any>(&self) -> Option<Arc<T>> {
            self.dyn_singletons
                .get(&TypeId::of::<T>())
                .and_then(|instance| instance.downcast_ref::<Arc<T>>())
                .cloned()
        }

        pub(crate) fn dyn_transient<T: ?Sized + Any>(&self) -> Option<Arc<T>> {
            self.dyn_transients
                .get(&TypeId::of::<T>())
                .and_then(|create| create.downcast_ref::<DynConstructor<T>>())
                .map(|create| create(self))
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
        .add(di::singleton_factory(|_| -> Arc<dyn Level> {
            Arc::new(Config { level: 3 })
        }))
        .add(di::transient_factory(|provider| -> Arc<dyn Greet> {
            Arc::new(DynHandler {
                level: provider.get_required::<dyn Level>(),
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

/// How a run measures: batches per contender and row, and how long one is.
#[derive(Clone, Copy)]
struct Plan {
    batches: usize,
    batch: Duration,
}

/// Short batches, many of them: on a shared machine a batch that a time
/// slice of another process interrupts is an outlier, and the median of
/// many short ones skips it where a few long ones would each include some.
const PLANS: [Plan; 3] = [
    // Full.
    Plan {
        batches: 41,
        batch: Duration::from_millis(2),
    },
    // Quick.
    Plan {
        batches: 15,
        batch: Duration::from_millis(1),
    },
    // Smoke.
    Plan {
        batches: 3,
        batch: Duration::from_micros(200),
    },
];

/// One contender's operation, run `iterations` times per call.
type Batch<'a> = Box<dyn FnMut(u64) + 'a>;

/// `op` as a batch: each result through `black_box`, then dropped.
fn batch<'a, T>(mut op: impl FnMut() -> T + 'a) -> Batch<'a> {
    Box::new(move |iterations| {
        for _ in 0..iterations {
            black_box(op());
        }
    })
}

/// The column of each contender.
const CONTENDERS: [&str; 4] = ["type map", "host-di", "more-di", "shaku"];

/// Median ns per operation of each contender (`None` where it has no such
/// operation): each batch calibrated to `plan.batch`, the contenders
/// alternating batch by batch, the order rotated each round.
fn measure(plan: Plan, mut ops: [Option<Batch<'_>>; 4]) -> [Option<f64>; 4] {
    let mut iterations = [0_u64; 4];
    for (op, iterations) in ops.iter_mut().zip(&mut iterations) {
        let Some(op) = op else { continue };
        *iterations = 64;
        loop {
            let began = Instant::now();
            op(*iterations);
            if began.elapsed() >= plan.batch || *iterations >= 1 << 30 {
                break;
            }
            *iterations *= 2;
        }
    }
    let mut samples: [Vec<f64>; 4] = Default::default();
    let mut order: Vec<usize> = (0..ops.len())
        .filter(|&index| ops[index].is_some())
        .collect();
    for _ in 0..plan.batches {
        for &index in &order {
            let op = ops[index].as_mut().expect("only contenders that run");
            let began = Instant::now();
            op(iterations[index]);
            samples[index].push(began.elapsed().as_secs_f64() * 1e9 / iterations[index] as f64);
        }
        order.rotate_left(1);
    }
    let mut medians = [None; 4];
    for (index, median_of) in medians.iter_mut().enumerate() {
        if ops[index].is_some() {
            *median_of = Some(median(&samples[index]));
        }
    }
    medians
}

/// One row of results: ns/op per contender, `None` where it has no such
/// operation.
struct Row {
    operation: &'static str,
    ns: [Option<f64>; 4],
}

impl Row {
    fn of(&self, contender: usize) -> f64 {
        self.ns[contender].unwrap_or(f64::NAN)
    }

    fn map(&self) -> f64 {
        self.of(0)
    }

    fn host_di(&self) -> f64 {
        self.of(1)
    }

    fn more_di(&self) -> f64 {
        self.of(2)
    }
}

fn main() {
    use shaku::{HasComponent, HasProvider};

    if common::child_args().is_some() {
        return;
    }
    let plan = match common::run_kind() {
        RunKind::Full => PLANS[0],
        RunKind::Quick => PLANS[1],
        RunKind::Smoke => PLANS[2],
    };
    let began = Instant::now();
    let mut out = common::header("Resolving from the container (benches/container.rs)");

    let map = type_map::TypeMap::new();
    let map_scope = type_map::Scope::with(RequestState { id: 0 });

    let mut services = host_di::ServiceCollection::new();
    services
        .add_singleton_self::<Config>()
        .add_transient_self::<Handler>()
        .add_singleton::<dyn Level, Config>()
        .add_transient::<dyn Greet, DynHandler>()
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
    assert_eq!(provider.get::<dyn Level>().expect("a singleton").level(), 0);
    assert_eq!(provider.get::<dyn Greet>().expect("a transient").level(), 0);
    assert_eq!(scope.get::<RequestState>().expect("a scoped").id, 0);
    assert_eq!(
        map.transient::<Handler>()
            .expect("a transient")
            .config
            .level,
        3
    );
    assert_eq!(
        map.dyn_transient::<dyn Greet>()
            .expect("a transient")
            .level(),
        3
    );
    assert_eq!(map_scope.get::<RequestState>().expect("a scoped").id, 0);
    assert_eq!(more.get_required::<Handler>().config.level, 3);
    assert_eq!(more.get_required::<dyn Greet>().level(), 3);
    assert_eq!(more_scope.get_required::<RequestState>().id, 0);
    let handle: Box<dyn shaku_wiring::Handle> = wiring.provide().expect("a provider");
    assert_eq!(handle.level(), 3);

    let rows = [
        Row {
            operation: "singleton",
            ns: measure(
                plan,
                [
                    Some(batch(|| map.singleton::<Config>())),
                    Some(batch(|| provider.get::<Config>())),
                    Some(batch(|| more.get_required::<Config>())),
                    None,
                ],
            ),
        },
        Row {
            operation: "singleton, trait object",
            ns: measure(
                plan,
                [
                    Some(batch(|| map.dyn_singleton::<dyn Level>())),
                    Some(batch(|| provider.get::<dyn Level>())),
                    Some(batch(|| more.get_required::<dyn Level>())),
                    Some(batch(|| -> Arc<dyn shaku_wiring::Settings> {
                        wiring.resolve()
                    })),
                ],
            ),
        },
        Row {
            operation: "transient, one singleton dependency",
            ns: measure(
                plan,
                [
                    Some(batch(|| map.transient::<Handler>())),
                    Some(batch(|| provider.get::<Handler>())),
                    Some(batch(|| more.get_required::<Handler>())),
                    None,
                ],
            ),
        },
        Row {
            operation: "transient, trait object, one trait-object dependency",
            ns: measure(
                plan,
                [
                    Some(batch(|| map.dyn_transient::<dyn Greet>())),
                    Some(batch(|| provider.get::<dyn Greet>())),
                    Some(batch(|| more.get_required::<dyn Greet>())),
                    Some(batch(|| -> Result<Box<dyn shaku_wiring::Handle>, _> {
                        wiring.provide()
                    })),
                ],
            ),
        },
        Row {
            operation: "scoped, in an open scope",
            ns: measure(
                plan,
                [
                    Some(batch(|| map_scope.get::<RequestState>())),
                    Some(batch(|| scope.get::<RequestState>())),
                    Some(batch(|| more_scope.get_required::<RequestState>())),
                    None,
                ],
            ),
        },
        Row {
            operation: "create and drop a scope",
            ns: measure(
                plan,
                [
                    Some(batch(|| Arc::new(type_map::Scope::default()))),
                    Some(batch(|| provider.create_scope())),
                    Some(batch(|| more.create_scope())),
                    None,
                ],
            ),
        },
    ];

    let _ = writeln!(
        out,
        "\nns per operation: the median of {} batches of about {} ms per contender, the \
         contenders alternating batch by batch.\n",
        plan.batches,
        plan.batch.as_secs_f64() * 1e3
    );
    let _ = writeln!(
        out,
        "| operation | type map (limit) | host-di | more-di 3.2 (`async`) | shaku 0.6 | host-di / type map | more-di / host-di |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let cells: Vec<String> = (0..CONTENDERS.len())
            .map(|contender| {
                row.ns[contender].map_or_else(|| "—".to_owned(), |ns| format!("{ns:.1}"))
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.operation,
            cells.join(" | "),
            ratio(row.host_di() / row.map()),
            ratio(row.more_di() / row.host_di()),
        );
    }
    let [singleton, dyn_singleton, transient, dyn_transient, ..] = &rows;
    let _ = writeln!(out, "\n| target | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    let mut target = |name: &str, measured: f64, pass: bool| {
        let _ = writeln!(out, "| {name} | {} | {} |", ratio(measured), verdict(pass));
    };
    for (kind, row) in [("concrete", singleton), ("trait object", dyn_singleton)] {
        let value = row.host_di() / row.map();
        target(
            &format!("singleton ({kind}) ≤ 1.5x the type map (host-di / map)"),
            value,
            value <= 1.5,
        );
    }
    for (kind, row) in [("concrete", transient), ("trait object", dyn_transient)] {
        let value = row.more_di() / row.host_di();
        target(
            &format!(
                "transient with one dependency ({kind}) ≥ 5x faster than more-di (more-di / host-di)"
            ),
            value,
            value >= 5.0,
        );
    }
    let value = transient.host_di() / transient.map();
    target(
        "transient with one dependency ≤ 1.5x the type map's transient (host-di / map; issue 3)",
        value,
        value <= 1.5,
    );
    let value = singleton.more_di() / singleton.host_di();
    target(
        "singleton ≥ 5x faster than more-di (more-di / host-di; issue 3)",
        value,
        value >= 5.0,
    );
    let _ = writeln!(out, "\n{}", common::footer(began));
    println!("{out}");
}

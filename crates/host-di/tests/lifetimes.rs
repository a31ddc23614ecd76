//! Lifetimes, multiple registrations, keys, factories, instances, the
//! derive's field kinds, and concurrent first resolution.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use host_di::{
    DiErrorKind, Injectable, Options, ServiceCollection, ServiceDescriptor, ServiceProvider,
};

trait Greeter: Send + Sync {
    fn greet(&self) -> String;
}

#[derive(Injectable)]
#[injectable(as = dyn Greeter)]
struct English;

impl Greeter for English {
    fn greet(&self) -> String {
        "hello".into()
    }
}

#[derive(Injectable)]
#[injectable(as = dyn Greeter)]
struct French;

impl Greeter for French {
    fn greet(&self) -> String {
        "bonjour".into()
    }
}

#[derive(Injectable, Default)]
struct Counter(#[inject(default)] AtomicUsize);

#[test]
fn singleton_scoped_transient() {
    let mut services = ServiceCollection::new();
    services.add_singleton_factory::<String, _>(|_| Ok(Arc::new("one".to_owned())));
    services.add_scoped_self::<Counter>();
    services.add_transient::<dyn Greeter, English>();
    let provider = services.build().unwrap();

    let a = provider.get::<String>().unwrap();
    let b = provider.create_scope().get::<String>().unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "one singleton for the root and every scope"
    );

    let scope1 = provider.create_scope();
    let scope2 = provider.create_scope();
    let c1 = scope1.get::<Counter>().unwrap();
    c1.0.fetch_add(1, Ordering::Relaxed);
    assert!(
        Arc::ptr_eq(&c1, &scope1.get::<Counter>().unwrap()),
        "once per scope"
    );
    assert!(
        !Arc::ptr_eq(&c1, &scope2.get::<Counter>().unwrap()),
        "one per scope"
    );

    let g1 = provider.get::<dyn Greeter>().unwrap();
    let g2 = provider.get::<dyn Greeter>().unwrap();
    assert!(!Arc::ptr_eq(&g1, &g2), "a new transient every time");
    assert_eq!(g1.greet(), "hello");
}

#[test]
fn last_registration_wins_and_all_come_in_order() {
    let mut services = ServiceCollection::new();
    services.add_singleton::<dyn Greeter, English>();
    services.add_transient::<dyn Greeter, French>();
    let provider = services.build().unwrap();
    assert_eq!(provider.get::<dyn Greeter>().unwrap().greet(), "bonjour");
    let all: Vec<String> = provider
        .get_all::<dyn Greeter>()
        .unwrap()
        .iter()
        .map(|g| g.greet())
        .collect();
    assert_eq!(all, ["hello", "bonjour"]);
    assert!(provider.get_all::<String>().unwrap().is_empty());
    assert!(provider.get_optional::<String>().unwrap().is_none());
    assert!(provider.get_optional::<dyn Greeter>().unwrap().is_some());
}

#[test]
fn try_add_and_replace() {
    let mut services = ServiceCollection::new();
    assert!(services.try_add(ServiceDescriptor::<dyn Greeter>::singleton::<English>()));
    assert!(!services.try_add(ServiceDescriptor::<dyn Greeter>::singleton::<French>()));
    assert!(
        services.try_add(ServiceDescriptor::<dyn Greeter>::singleton::<French>().with_key("fr"))
    );
    services.add_singleton::<dyn Greeter, English>();
    assert_eq!(services.len(), 3);
    services.replace(ServiceDescriptor::<dyn Greeter>::transient::<French>());
    assert_eq!(
        services.len(),
        2,
        "replace removes every unkeyed registration"
    );
    assert!(services.contains::<dyn Greeter>());
    assert!(services.contains_keyed::<dyn Greeter>("fr"));
    let provider = services.build().unwrap();
    let all = provider.get_all::<dyn Greeter>().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].greet(), "bonjour");

    let mut services = ServiceCollection::new();
    services.add_singleton::<dyn Greeter, English>();
    services.remove_all::<dyn Greeter>();
    assert!(services.is_empty());
}

#[test]
fn keyed_services() {
    #[derive(Injectable)]
    struct Bilingual {
        #[inject(key = "en")]
        en: Arc<dyn Greeter>,
        #[inject(key = "fr")]
        fr: Option<Arc<dyn Greeter>>,
        #[inject(key = "de")]
        de: Option<Arc<dyn Greeter>>,
        #[inject(key = "en")]
        every_en: Vec<Arc<dyn Greeter>>,
    }

    let mut services = ServiceCollection::new();
    services.add_keyed_singleton::<dyn Greeter, English>("en");
    services.add_keyed_scoped::<dyn Greeter, French>("fr");
    services.add_keyed_transient::<dyn Greeter, English>("en");
    services.add_scoped_self::<Bilingual>();
    let provider = services.build().unwrap();
    assert!(provider.get::<dyn Greeter>().is_err(), "keyed only");
    let scope = provider.create_scope();
    let b = scope.get::<Bilingual>().unwrap();
    assert_eq!(b.en.greet(), "hello");
    assert_eq!(b.fr.as_ref().unwrap().greet(), "bonjour");
    assert!(b.de.is_none());
    assert_eq!(b.every_en.len(), 2);
    assert_eq!(
        scope.get_keyed::<dyn Greeter>("fr").unwrap().greet(),
        "bonjour"
    );
    assert!(
        scope
            .get_keyed_optional::<dyn Greeter>("de")
            .unwrap()
            .is_none()
    );
    assert_eq!(scope.get_all_keyed::<dyn Greeter>("en").unwrap().len(), 2);
}

#[test]
fn instances_options_and_the_provider_itself() {
    struct Settings {
        name: &'static str,
    }

    #[derive(Injectable)]
    struct Uses {
        settings: Options<Settings>,
        greeter: Arc<dyn Greeter>,
        provider: ServiceProvider,
        #[inject(default)]
        calls: AtomicUsize,
    }

    let mut services = ServiceCollection::new();
    services.add_options(Settings { name: "app" });
    services.add_instance::<dyn Greeter>(Arc::new(French));
    services.add_scoped_self::<Uses>();
    let provider = services.build().unwrap();
    let scope = provider.create_scope();
    let uses = scope.get::<Uses>().unwrap();
    assert_eq!(uses.settings.name, "app");
    assert_eq!(uses.greeter.greet(), "bonjour");
    assert!(
        uses.provider.is_scope(),
        "a scoped service gets its scope's provider"
    );
    assert_eq!(uses.calls.load(Ordering::Relaxed), 0);
    let again = provider.get::<dyn Greeter>().unwrap();
    assert!(
        Arc::ptr_eq(&again, &uses.greeter),
        "an instance is a singleton"
    );
}

#[test]
fn factories_for_each_lifetime() {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    struct Made(usize);
    let make = |_: &ServiceProvider| Ok(Arc::new(Made(MADE.fetch_add(1, Ordering::SeqCst))));
    let mut services = ServiceCollection::new();
    services
        .add_singleton_factory::<Made, _>(make)
        .with_key("singleton");
    services
        .add_scoped_factory::<Made, _>(make)
        .with_key("scoped");
    services
        .add_transient_factory::<Made, _>(make)
        .with_key("transient");
    let provider = services.build().unwrap();
    let scope = provider.create_scope();
    let s1 = scope.get_keyed::<Made>("singleton").unwrap().0;
    let s2 = provider.get_keyed::<Made>("singleton").unwrap().0;
    assert_eq!(s1, s2);
    let c1 = scope.get_keyed::<Made>("scoped").unwrap().0;
    assert_eq!(c1, scope.get_keyed::<Made>("scoped").unwrap().0);
    let t1 = scope.get_keyed::<Made>("transient").unwrap().0;
    assert_ne!(t1, scope.get_keyed::<Made>("transient").unwrap().0);
}

#[test]
fn tuple_and_unit_structs_derive() {
    #[derive(Injectable)]
    struct Unit;
    #[derive(Injectable)]
    struct Tuple(Arc<Unit>, #[inject(default)] u8);
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<Unit>();
    services.add_transient_self::<Tuple>();
    let provider = services.build().unwrap();
    let tuple = provider.get::<Tuple>().unwrap();
    assert!(Arc::ptr_eq(&tuple.0, &provider.get::<Unit>().unwrap()));
    assert_eq!(tuple.1, 0);
    assert_eq!(
        <Tuple as Injectable>::dependencies(),
        [host_di::Dependency::required::<Unit>()]
    );
}

#[test]
fn one_type_under_several_traits() {
    trait Named: Send + Sync {
        fn name(&self) -> &'static str;
    }
    #[derive(Injectable)]
    #[injectable(as = dyn Greeter, as = dyn Named)]
    struct Both;
    impl Greeter for Both {
        fn greet(&self) -> String {
            "hi".into()
        }
    }
    impl Named for Both {
        fn name(&self) -> &'static str {
            "both"
        }
    }
    let mut services = ServiceCollection::new();
    services.add_singleton::<dyn Greeter, Both>();
    services.add_singleton::<dyn Named, Both>();
    let provider = services.build().unwrap();
    assert_eq!(provider.get::<dyn Greeter>().unwrap().greet(), "hi");
    assert_eq!(provider.get::<dyn Named>().unwrap().name(), "both");
}

static CREATED: AtomicUsize = AtomicUsize::new(0);

struct Slow;

impl Injectable for Slow {
    fn dependencies() -> Vec<host_di::Dependency> {
        vec![host_di::Dependency::required::<Inner>()]
    }

    fn create(provider: &ServiceProvider) -> Result<Self, host_di::DiError> {
        // Resolves another singleton while being created: no deadlock.
        provider.get::<Inner>()?;
        std::thread::sleep(std::time::Duration::from_millis(20));
        CREATED.fetch_add(1, Ordering::SeqCst);
        Ok(Slow)
    }
}

#[derive(Injectable)]
struct Inner;

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_singleton_is_created_once_under_1000_concurrent_first_resolves() {
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<Slow>();
    services.add_singleton_self::<Inner>();
    let provider = services.build().unwrap();
    let start = Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let provider = provider.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                tokio::task::spawn_blocking(move || provider.get::<Slow>().unwrap())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut instances = Vec::new();
    for task in tasks {
        instances.push(task.await.unwrap());
    }
    assert_eq!(CREATED.load(Ordering::SeqCst), 1);
    assert!(instances.iter().all(|i| Arc::ptr_eq(i, &instances[0])));
}

#[test]
fn a_failed_singleton_is_retried() {
    static ATTEMPTS: AtomicUsize = AtomicUsize::new(0);
    struct Flaky;
    let mut services = ServiceCollection::new();
    services.add_singleton_factory::<Flaky, _>(|_| {
        if ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(host_di::DiError::custom("not yet"))
        } else {
            Ok(Arc::new(Flaky))
        }
    });
    let provider = services.build().unwrap();
    assert_eq!(
        provider.get::<Flaky>().err().unwrap().kind(),
        DiErrorKind::Factory
    );
    assert!(provider.get::<Flaky>().is_ok());
}

#[test]
fn a_panicking_factory_leaves_the_chain_clean() {
    struct Boom;
    struct Fine;
    let mut services = ServiceCollection::new();
    services.add_transient_factory::<Boom, _>(|_| panic!("boom"));
    services.add_transient_factory::<Fine, _>(|_| Ok(Arc::new(Fine)));
    let provider = services.build().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| provider.get::<Boom>()));
    assert!(caught.is_err());
    assert!(
        provider.get::<Fine>().is_ok(),
        "no stale frame: no false cycle"
    );
}

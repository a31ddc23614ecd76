//! Disposal: reverse creation order at scope close, scope drop (sync ones
//! run, async ones warned about by name) and root dispose.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use host_di::{AsyncDispose, DiErrorKind, Dispose, Injectable, ServiceCollection};

type Log = Arc<Mutex<Vec<String>>>;

fn log(log: &Log, line: impl Into<String>) {
    log.lock().unwrap().push(line.into());
}

fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// Sync-disposable, depends on nothing.
#[derive(Injectable)]
#[injectable(dispose)]
struct Db {
    log: Arc<Log>,
}

impl Dispose for Db {
    fn dispose(&self) {
        log(&self.log, "Db");
    }
}

/// Async-disposable, created after `Db` (it needs it).
#[derive(Injectable)]
#[injectable(async_dispose)]
struct Repo {
    log: Arc<Log>,
    _db: Arc<Db>,
}

#[async_trait]
impl AsyncDispose for Repo {
    async fn dispose(&self) {
        tokio::task::yield_now().await;
        log(&self.log, "Repo");
    }
}

/// Sync-disposable transient, created after `Repo`.
#[derive(Injectable)]
#[injectable(dispose)]
struct Handler {
    log: Arc<Log>,
    _repo: Arc<Repo>,
}

impl Dispose for Handler {
    fn dispose(&self) {
        log(&self.log, "Handler");
    }
}

fn services(lifetime_of_db: &str) -> (ServiceCollection, Log) {
    let events: Log = Arc::default();
    let mut services = ServiceCollection::new();
    services.add_instance(Arc::new(Arc::clone(&events)));
    match lifetime_of_db {
        "singleton" => {
            services.add_singleton_self::<Db>();
            services.add_singleton_self::<Repo>();
            services.add_transient_self::<Handler>();
        }
        _ => {
            services.add_scoped_self::<Db>();
            services.add_scoped_self::<Repo>();
            services.add_transient_self::<Handler>();
        }
    }
    (services, events)
}

#[tokio::test]
async fn scope_close_disposes_in_reverse_creation_order() {
    let (services, events) = services("scoped");
    let provider = services.build().unwrap();
    let scope = provider.create_scope();
    scope.get::<Handler>().unwrap(); // creates Db, then Repo, then Handler
    scope.get::<Handler>().unwrap(); // a second Handler
    let left_over = scope.provider().clone();
    scope.close().await;
    assert_eq!(lines(&events), ["Handler", "Handler", "Repo", "Db"]);
    let err = left_over.get::<Db>().err().unwrap();
    assert_eq!(err.kind(), DiErrorKind::Disposed);
    assert_eq!(
        err.to_string(),
        "cannot resolve `disposal::Db`: the scope has been disposed"
    );
}

#[tokio::test]
async fn a_scope_with_nothing_to_dispose_is_closed_for_every_handle() {
    #[derive(Injectable)]
    struct Plain;

    let mut services = ServiceCollection::new();
    services.add_scoped_self::<Plain>();
    let provider = services.build().unwrap();
    for how in ["drop", "close", "dispose"] {
        let scope = provider.create_scope();
        scope.get::<Plain>().unwrap();
        let left_over = scope.provider().clone();
        match how {
            "drop" => drop(scope),
            "close" => assert!(scope.close().await.is_clean()),
            // Through a handle, while the scope itself is still held.
            _ => {
                assert!(left_over.dispose().await.is_clean());
                assert_eq!(
                    scope.get::<Plain>().err().unwrap().kind(),
                    DiErrorKind::Disposed
                );
            }
        }
        let err = left_over.get::<Plain>().err().unwrap();
        assert_eq!(err.kind(), DiErrorKind::Disposed);
        assert!(format!("{left_over:?}").contains("scope: true"));
        // Closing it again through the kept handle reports nothing.
        assert!(left_over.dispose().await.is_clean());
    }
}

#[tokio::test]
async fn a_scope_says_whether_it_has_anything_to_dispose() {
    let (services, events) = services("singleton");
    let provider = services.build().unwrap();
    let scope = provider.create_scope();
    assert!(!scope.has_disposals());
    scope.get::<Repo>().unwrap(); // a singleton: the root disposes it
    assert!(!scope.has_disposals());
    scope.get::<Handler>().unwrap(); // a transient disposable: the scope does
    assert!(scope.has_disposals());
    scope.close().await;
    assert_eq!(lines(&events), ["Handler"]);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// A fmt subscriber (no colours, no time) that writes here.
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish()
    }

    /// What was written, as text.
    fn output(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_dropped_scope_runs_sync_disposals_and_warns_about_async_ones() {
    let (services, events) = services("scoped");
    let provider = services.build().unwrap();
    let captured = Captured::default();
    let subscriber = captured.subscriber();
    tracing::subscriber::with_default(subscriber, || {
        let scope = provider.create_scope();
        scope.get::<Handler>().unwrap();
        drop(scope);
    });
    assert_eq!(lines(&events), ["Handler", "Db"]);
    let output = captured.output();
    assert_eq!(
        output.trim_end(),
        " WARN host_di::dispose: a scope dropped without being disposed: `disposal::Repo` needs async disposal, \
         which was skipped; call `close().await` (or `dispose().await`) before dropping it service=\"disposal::Repo\""
    );
}

#[tokio::test]
async fn root_dispose_disposes_singletons_in_reverse_order_once() {
    let (services, events) = services("singleton");
    let provider = services.build().unwrap();
    provider.get::<Handler>().unwrap(); // Db, Repo (singletons), Handler (transient from the root)
    let scope = provider.create_scope();
    scope.get::<Handler>().unwrap(); // a Handler owned by the scope
    scope.close().await;
    assert_eq!(lines(&events), ["Handler"]);
    provider.dispose().await;
    assert_eq!(lines(&events), ["Handler", "Handler", "Repo", "Db"]);
    provider.dispose().await; // idempotent
    assert_eq!(lines(&events).len(), 4);
    assert_eq!(
        provider.get::<Db>().err().unwrap().to_string(),
        "cannot resolve `disposal::Db`: the service provider has been disposed"
    );
}

#[test]
fn dispose_now_runs_the_sync_disposals_while_another_handle_lives() {
    let (services, events) = services("singleton");
    let provider = services.build().unwrap();
    provider.get::<Handler>().unwrap();
    // A clone the application kept: dropping handles would dispose nothing.
    let kept = provider.clone();
    let captured = Captured::default();
    let subscriber = captured.subscriber();
    tracing::subscriber::with_default(subscriber, || provider.dispose_now());
    assert_eq!(lines(&events), ["Handler", "Db"]);
    let output = captured.output();
    assert!(
        output.contains("`disposal::Repo` needs async disposal, which was skipped"),
        "{output}"
    );
    provider.dispose_now(); // idempotent
    assert_eq!(lines(&events).len(), 2);
    assert_eq!(
        kept.get::<Db>().err().unwrap().kind(),
        DiErrorKind::Disposed
    );
}

#[tokio::test]
async fn factories_and_instances_opt_in() {
    struct Pool(Log, &'static str);
    impl Dispose for Pool {
        fn dispose(&self) {
            log(&self.0, self.1);
        }
    }
    struct Client(Log);
    #[async_trait]
    impl AsyncDispose for Client {
        async fn dispose(&self) {
            log(&self.0, "client");
        }
    }

    let events: Log = Arc::default();
    let mut services = ServiceCollection::new();
    services
        .add_instance(Arc::new(Pool(Arc::clone(&events), "given")))
        .disposable();
    let e = Arc::clone(&events);
    services
        .add_singleton_factory::<Pool, _>(move |_| Ok(Arc::new(Pool(Arc::clone(&e), "made"))))
        .with_key("made")
        .disposable();
    let e = Arc::clone(&events);
    services
        .add_scoped_factory::<Client, _>(move |_| Ok(Arc::new(Client(Arc::clone(&e)))))
        .async_disposable();
    // Not opted in: never disposed.
    services
        .add_instance(Arc::new(Pool(Arc::clone(&events), "not disposed")))
        .with_key("plain");
    let provider = services.build().unwrap();
    provider.get_keyed::<Pool>("made").unwrap();
    provider.get_keyed::<Pool>("plain").unwrap();
    let scope = provider.create_scope();
    scope.get::<Client>().unwrap();
    scope.dispose().await; // a scope's provider disposes the scope
    provider.dispose().await;
    assert_eq!(lines(&events), ["client", "made", "given"]);
}

/// A sync disposal that logs its label, or panics with it.
struct Step(Log, &'static str);

impl Dispose for Step {
    fn dispose(&self) {
        if self.1.starts_with("panic") {
            panic!("{} failed", self.1);
        }
        log(&self.0, self.1);
    }
}

/// An async disposal that never finishes.
struct Stuck;

#[async_trait]
impl AsyncDispose for Stuck {
    async fn dispose(&self) {
        std::future::pending::<()>().await;
    }
}

/// An async disposal that panics after yielding once.
struct Exploding;

#[async_trait]
impl AsyncDispose for Exploding {
    async fn dispose(&self) {
        tokio::task::yield_now().await;
        panic!("exploded while closing");
    }
}

/// An async disposal that logs, after yielding once.
struct Later(Log);

#[async_trait]
impl AsyncDispose for Later {
    async fn dispose(&self) {
        tokio::task::yield_now().await;
        log(&self.0, "later");
    }
}

/// Registers `Step`s keyed by their label, in this order.
fn steps(services: &mut ServiceCollection, events: &Log, labels: &[&'static str]) {
    for &label in labels {
        let events = Arc::clone(events);
        services
            .add_scoped_factory::<Step, _>(move |_| Ok(Arc::new(Step(Arc::clone(&events), label))))
            .with_key(label)
            .disposable();
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_close_still_runs_the_sync_disposals_after_the_one_it_awaited() {
    let events: Log = Arc::default();
    let mut services = ServiceCollection::new();
    steps(&mut services, &events, &["first"]);
    services
        .add_scoped_factory::<Stuck, _>(|_| Ok(Arc::new(Stuck)))
        .async_disposable();
    steps(&mut services, &events, &["last"]);
    let provider = services.build().unwrap();
    let scope = provider.create_scope();
    scope.get_keyed::<Step>("first").unwrap();
    scope.get::<Stuck>().unwrap();
    scope.get_keyed::<Step>("last").unwrap();

    let captured = Captured::default();
    let subscriber = captured.subscriber();
    let _default = tracing::subscriber::set_default(subscriber);
    // The deadline drops the close future while it awaits `Stuck`.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(1), scope.close()).await;
    assert!(closed.is_err());
    assert_eq!(lines(&events), ["last", "first"]);
    let output = captured.output();
    assert!(
        output.contains(
            "a scope's disposal was cancelled while awaiting the async disposal of `disposal::Stuck`, which did not finish"
        ),
        "{output}"
    );
}

#[tokio::test]
async fn a_panicking_disposer_is_reported_and_the_next_ones_still_run() {
    let events: Log = Arc::default();
    let mut services = ServiceCollection::new();
    steps(&mut services, &events, &["first"]);
    let e = Arc::clone(&events);
    services
        .add_scoped_factory::<Later, _>(move |_| Ok(Arc::new(Later(Arc::clone(&e)))))
        .async_disposable();
    steps(&mut services, &events, &["panic in the middle"]);
    services
        .add_scoped_factory::<Exploding, _>(|_| Ok(Arc::new(Exploding)))
        .async_disposable();
    steps(&mut services, &events, &["last"]);
    let provider = services.build().unwrap();

    let resolve_all = |scope: &host_di::Scope| {
        scope.get_keyed::<Step>("first").unwrap();
        scope.get::<Later>().unwrap();
        scope.get_keyed::<Step>("panic in the middle").unwrap();
        scope.get::<Exploding>().unwrap();
        scope.get_keyed::<Step>("last").unwrap();
    };

    let captured = Captured::default();
    let subscriber = captured.subscriber();
    let logging = tracing::subscriber::set_default(subscriber);
    let scope = provider.create_scope();
    resolve_all(&scope);
    let report = scope.close().await;
    drop(logging);
    assert_eq!(lines(&events), ["last", "later", "first"]);
    let output = captured.output();
    assert_eq!(
        output.trim_end(),
        "ERROR host_di::dispose: disposing `disposal::Exploding` panicked: exploded while closing service=\"disposal::Exploding\"
ERROR host_di::dispose: disposing `disposal::Step` panicked: panic in the middle failed service=\"disposal::Step\""
    );
    assert_eq!(
        report.panicked(),
        [
            ("disposal::Exploding", "exploded while closing".to_owned()),
            ("disposal::Step", "panic in the middle failed".to_owned()),
        ]
    );
    assert!(report.skipped().is_empty());
    assert!(!report.is_clean());

    // Dropped without closing: the sync ones run, the panic is caught.
    events.lock().unwrap().clear();
    let scope = provider.create_scope();
    resolve_all(&scope);
    drop(scope);
    assert_eq!(lines(&events), ["last", "first"]);

    // And on the root.
    events.lock().unwrap().clear();
    let mut services = ServiceCollection::new();
    let e = Arc::clone(&events);
    services
        .add_singleton_factory::<Step, _>(move |_| Ok(Arc::new(Step(Arc::clone(&e), "root"))))
        .disposable();
    let e = Arc::clone(&events);
    services
        .add_singleton_factory::<Step, _>(move |_| Ok(Arc::new(Step(Arc::clone(&e), "panic"))))
        .with_key("panic")
        .disposable();
    let provider = services.build().unwrap();
    provider.get::<Step>().unwrap();
    provider.get_keyed::<Step>("panic").unwrap();
    let report = provider.dispose().await;
    assert_eq!(lines(&events), ["root"]);
    assert_eq!(
        report.panicked(),
        [("disposal::Step", "panic failed".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn dispose_within_names_the_async_disposals_the_deadline_skipped() {
    let events: Log = Arc::default();
    let mut services = ServiceCollection::new();
    let e = Arc::clone(&events);
    services
        .add_singleton_factory::<Step, _>(move |_| Ok(Arc::new(Step(Arc::clone(&e), "oldest"))))
        .disposable();
    let e = Arc::clone(&events);
    services
        .add_singleton_factory::<Later, _>(move |_| Ok(Arc::new(Later(Arc::clone(&e)))))
        .async_disposable();
    services
        .add_singleton_factory::<Stuck, _>(|_| Ok(Arc::new(Stuck)))
        .async_disposable();
    let e = Arc::clone(&events);
    services
        .add_singleton_factory::<Step, _>(move |_| Ok(Arc::new(Step(Arc::clone(&e), "newest"))))
        .with_key("newest")
        .disposable();
    let provider = services.build().unwrap();
    provider.get::<Step>().unwrap();
    provider.get::<Later>().unwrap();
    provider.get::<Stuck>().unwrap();
    provider.get_keyed::<Step>("newest").unwrap();

    let started = tokio::time::Instant::now();
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(5));
    let report = provider.dispose_within(deadline).await;
    assert_eq!(started.elapsed(), std::time::Duration::from_secs(5));
    // `Stuck` was cut at the deadline, `Later` never started; the sync
    // disposal after them still ran.
    assert_eq!(report.skipped(), ["disposal::Stuck", "disposal::Later"]);
    assert!(report.panicked().is_empty());
    assert_eq!(lines(&events), ["newest", "oldest"]);
    assert_eq!(
        report.to_string(),
        "the async disposal of `disposal::Stuck` was not awaited: the deadline passed; \
         the async disposal of `disposal::Later` was not awaited: the deadline passed"
    );
    // Already disposed: nothing left to report.
    assert!(provider.dispose().await.is_clean());
}

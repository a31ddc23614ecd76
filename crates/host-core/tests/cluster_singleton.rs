//! Cluster singletons: several hosts (the instances of one application)
//! share a lease store; only the leader runs `execute`, with its fencing
//! token; a stop, a step-down or a lost term hands over, and the others
//! stand by showing who leads. On paused time with the in-process store,
//! and on real time with the default file lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_cluster::{ClusterError, InProcessStore, Lease, LeaseInfo, LeaseStore};
use host_core::{
    BackgroundService, HostError, Restart, ServiceContext, ServiceError, ServiceState,
    ServiceStates, Singleton, async_trait, bail,
};
use host_testing::TestHost;
use tokio::time::Instant;

const WORKER: &str = "cluster_singleton::Worker";

/// One run of `execute`: which instance, its token, when it began and
/// ended (on the tokio clock).
#[derive(Debug, Clone)]
struct Run {
    instance: &'static str,
    token: Option<u64>,
    began: Instant,
    ended: Option<Instant>,
}

/// What every instance's runs did.
#[derive(Default)]
struct Journal {
    runs: Mutex<Vec<Run>>,
}

impl Journal {
    fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }

    fn running(&self) -> Vec<&'static str> {
        self.runs()
            .iter()
            .filter(|run| run.ended.is_none())
            .map(|run| run.instance)
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Runs until its token fires.
    Honours,
    /// Never returns, whatever its token says.
    Deaf,
    /// Fails at once, every run.
    Fails,
    /// Steps down at once, from its own context.
    StepsDown,
}

struct Worker {
    instance: &'static str,
    journal: Arc<Journal>,
    behaviour: Behaviour,
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let index = {
            let mut runs = self.journal.runs.lock().unwrap();
            runs.push(Run {
                instance: self.instance,
                token: ctx.fencing_token().map(|token| token.get()),
                began: Instant::now(),
                ended: None,
            });
            runs.len() - 1
        };
        let end = || self.journal.runs.lock().unwrap()[index].ended = Some(Instant::now());
        match self.behaviour {
            Behaviour::Deaf => std::future::pending::<()>().await,
            Behaviour::Fails => {
                end();
                bail!("failed on purpose");
            }
            Behaviour::StepsDown => ctx.step_down(),
            Behaviour::Honours => {}
        }
        ctx.stopping().await;
        end();
        Ok(())
    }
}

/// The timings of the paused-time tests: client-go's defaults.
fn singleton() -> Singleton {
    Singleton::new("billing")
}

/// An instance: a test host whose worker is the singleton, in `store`.
async fn instance(
    name: &'static str,
    store: &Arc<dyn LeaseStore>,
    journal: &Arc<Journal>,
    behaviour: Behaviour,
    restart: Restart,
) -> TestHost {
    let mut builder = TestHost::builder();
    builder.configuration().appsettings(true);
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_secs(5);
    });
    builder.lease_store(store.clone());
    settings(&builder, &format!("[cluster]\ninstance_id = \"{name}\"\n"));
    builder.add_hosted_service_instance_with(
        Worker {
            instance: name,
            journal: journal.clone(),
            behaviour,
        },
        move |worker| {
            worker
                .cluster_singleton(singleton())
                .restart(restart.clone())
                .stop_timeout(Duration::from_secs(2))
        },
    );
    builder.start().await.expect("the instance starts")
}

/// Writes the content root's `appsettings.toml` and reads it.
fn settings(builder: &host_testing::TestHostBuilder, toml: &str) {
    std::fs::write(builder.content_dir().join("appsettings.toml"), toml).unwrap();
}

fn leadership(states: &ServiceStates) -> host_core::Leadership {
    states
        .status(WORKER)
        .and_then(|status| status.leadership)
        .expect("a singleton shows its leadership")
}

/// Waits (on the tokio clock, bounded) until `host`'s worker leads, or
/// stands by seeing a leader.
async fn until_leading(host: &TestHost, leading: bool) {
    until_leading_of(host, WORKER, leading).await;
}

async fn until_leading_of(host: &TestHost, name: &str, leading: bool) {
    for _ in 0..6000 {
        let status = host.states().status(name).expect("registered");
        let seen = status.leadership.as_ref().is_some_and(|leadership| {
            leadership.leading == leading && (leading || leadership.leader.is_some())
        });
        let state_agrees = if leading {
            matches!(status.state, ServiceState::Running | ServiceState::Ready)
        } else {
            is_standby(&status.state)
        };
        if seen && state_agrees {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "`{name}` did not {} within a minute: {:?}",
        if leading { "lead" } else { "stand by" },
        host.states().status(name)
    );
}

/// Waits (on the tokio clock, bounded) until `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..6000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within a minute: {what}");
}

fn is_standby(state: &ServiceState) -> bool {
    matches!(state, ServiceState::Standby)
}

fn in_process() -> Arc<dyn LeaseStore> {
    Arc::new(InProcessStore::new())
}

#[tokio::test(start_paused = true)]
async fn one_instance_runs_it_and_the_other_stands_by_showing_who_leads() {
    let (store, journal) = (in_process(), Arc::new(Journal::default()));
    let a = instance("a", &store, &journal, Behaviour::Honours, Restart::never()).await;
    let b = instance("b", &store, &journal, Behaviour::Honours, Restart::never()).await;
    until_leading(&b, false).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(journal.running(), ["a"], "{:?}", journal.runs());
    let token = journal.runs()[0]
        .token
        .expect("the leader's context has its token");
    let seen_by_b = leadership(&b.states());
    assert_eq!(
        (
            seen_by_b.leading,
            seen_by_b.leader.as_deref(),
            seen_by_b.token,
            &*seen_by_b.instance
        ),
        (false, Some("a"), Some(token), "b")
    );
    let seen_by_a = leadership(&a.states());
    assert!(seen_by_a.leading && seen_by_a.token == Some(token));
    assert!(
        b.states().get(WORKER).unwrap().is_healthy(),
        "standing by is healthy"
    );
    // The events carry the leadership as each state was entered.
    let leading = a
        .events()
        .into_iter()
        .rfind(|event| event.service.as_ref() == WORKER && event.to.as_str() == "running")
        .and_then(|event| event.leadership)
        .expect("a's running event carries its leadership");
    assert_eq!((leading.leading, leading.token), (true, Some(token)));
    let standing_by = b
        .events()
        .into_iter()
        .rfind(|event| event.service.as_ref() == WORKER && event.to.as_str() == "standby")
        .and_then(|event| event.leadership)
        .expect("b's standby event carries its leadership");
    assert!(!standing_by.leading);
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_graceful_stop_releases_the_lease_after_the_work_returned_and_another_takes_over() {
    let (store, journal) = (in_process(), Arc::new(Journal::default()));
    let a = instance("a", &store, &journal, Behaviour::Honours, Restart::never()).await;
    let b = instance("b", &store, &journal, Behaviour::Honours, Restart::never()).await;
    until_leading(&b, false).await;
    a.stop().await.unwrap();
    let a_ended = journal.runs()[0].ended.expect("a's work returned");
    assert!(
        store.current("billing").await.unwrap().is_none(),
        "released by the stop"
    );
    until_leading(&b, true).await;
    let runs = journal.runs();
    assert_eq!(runs[1].instance, "b");
    // Within a retry period and its jitter (2 s + a fifth), not a lease.
    let took = runs[1].began - a_ended;
    assert!(took <= Duration::from_millis(2400), "took {took:?}");
    assert!(runs[1].token > runs[0].token, "{runs:?}");
    b.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stepping_down_hands_over_and_waits_before_campaigning_again() {
    let (store, journal) = (in_process(), Arc::new(Journal::default()));
    let a = instance("a", &store, &journal, Behaviour::Honours, Restart::never()).await;
    let b = instance("b", &store, &journal, Behaviour::Honours, Restart::never()).await;
    until_leading(&b, false).await;
    let asked = Instant::now();
    a.control().step_down(WORKER).unwrap();
    until_leading(&b, true).await;
    until_leading(&a, false).await;
    assert_eq!(journal.running(), ["b"]);
    // b took it at its next try (a retry period and up to a fifth more),
    // before a tried again.
    let took = journal.runs()[1].began - asked;
    assert!(took <= Duration::from_millis(2400), "took {took:?}");
    let refused = a.control().step_down(WORKER).unwrap_err();
    assert!(refused.to_string().contains("does not lead"), "{refused}");
    b.control().step_down(WORKER).unwrap();
    until_leading(&a, true).await;
    let runs = journal.runs();
    assert_eq!(
        runs.iter().map(|run| run.instance).collect::<Vec<_>>(),
        ["a", "b", "a"]
    );
    assert!(runs[0].token < runs[1].token && runs[1].token < runs[2].token);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_service_can_step_down_from_its_own_context() {
    let (store, journal) = (in_process(), Arc::new(Journal::default()));
    let a = instance(
        "a",
        &store,
        &journal,
        Behaviour::StepsDown,
        Restart::never(),
    )
    .await;
    let b = instance("b", &store, &journal, Behaviour::Honours, Restart::never()).await;
    until_leading(&b, true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(journal.running(), ["b"], "{:?}", journal.runs());
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Renews fail while `failing` is set (the store is unreachable), and say
/// the term is lost while `lost` is.
struct Flaky {
    inner: InProcessStore,
    failing: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
}

#[async_trait]
impl LeaseStore for Flaky {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, ClusterError> {
        self.inner.try_acquire(name, holder, ttl).await
    }
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, ClusterError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ClusterError::Store {
                store: "flaky".into(),
                source: "connection refused".into(),
            });
        }
        if self.lost.load(Ordering::SeqCst) {
            return Ok(false);
        }
        self.inner.renew(lease, ttl).await
    }
    async fn release(&self, lease: &Lease) -> Result<(), ClusterError> {
        self.inner.release(lease).await
    }
    async fn current(&self, name: &str) -> Result<Option<LeaseInfo>, ClusterError> {
        self.inner.current(name).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_term_not_renewed_by_its_deadline_ends_the_work_before_the_lease_expires() {
    let inner = InProcessStore::new();
    let failing = Arc::new(AtomicBool::new(false));
    let flaky: Arc<dyn LeaseStore> = Arc::new(Flaky {
        inner: inner.clone(),
        failing: failing.clone(),
        lost: Arc::default(),
    });
    let journal = Arc::new(Journal::default());
    let a = instance("a", &flaky, &journal, Behaviour::Honours, Restart::never()).await;
    until_leading(&a, true).await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    // Renewed at 2 s and 4 s; from now on every renew fails.
    failing.store(true, Ordering::SeqCst);
    until("the first run ends", || journal.runs()[0].ended.is_some()).await;
    let run = journal.runs()[0].clone();
    let ended = run.ended.expect("the work returned");
    assert_eq!(
        ended - run.began,
        Duration::from_secs(14),
        "4 s + the renew deadline"
    );
    a.assert_logged("lost the lead of `billing`: no renew succeeded within the renew deadline (connection lost:");
    // The lease itself was released once the work had returned.
    assert!(inner.current("billing").await.unwrap().is_none());
    failing.store(false, Ordering::SeqCst);
    until_leading(&a, true).await;
    let runs = journal.runs();
    assert_eq!(runs.len(), 2);
    assert!(runs[1].token > runs[0].token);
    a.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn work_that_ignores_a_lost_term_is_aborted_after_its_stop_timeout_and_named() {
    let inner = InProcessStore::new();
    let lost = Arc::new(AtomicBool::new(false));
    let store: Arc<dyn LeaseStore> = Arc::new(Flaky {
        inner: inner.clone(),
        failing: Arc::default(),
        lost: lost.clone(),
    });
    let journal = Arc::new(Journal::default());
    let a = instance("a", &store, &journal, Behaviour::Deaf, Restart::never()).await;
    until_leading(&a, true).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The store says the term is over (another instance's, say).
    lost.store(true, Ordering::SeqCst);
    let lost_at = Instant::now();
    until("the run is aborted", || {
        a.logs()
            .iter()
            .any(|line| line.contains("its run was aborted"))
    })
    .await;
    // Its next renew (within 2 s) finds it lost; its stop timeout (2 s) later
    // the run that ignores its token is aborted.
    let took = lost_at.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_millis(4100),
        "took {took:?}"
    );
    a.assert_logged(
        "did not return within its stop timeout (2s) after being asked to (stopped as it lost \
         its cluster lease); its run was aborted",
    );
    a.assert_logged("lost the lead of `billing`: the lease expired or was taken");
    lost.store(false, Ordering::SeqCst);
    until_leading(&a, true).await;
    assert_eq!(journal.runs().len(), 2);
    a.stop().await.unwrap_err();
}

#[tokio::test(start_paused = true)]
async fn a_leader_restarts_under_its_policy_keeping_its_term_then_releases_when_it_gives_up() {
    let (store, journal) = (in_process(), Arc::new(Journal::default()));
    let policy = Restart::on_failure()
        .backoff(Duration::from_millis(100), Duration::from_millis(100))
        .jitter(0.0)
        .limit(2, Duration::from_secs(60));
    let a = instance("a", &store, &journal, Behaviour::Fails, policy).await;
    let b = instance("b", &store, &journal, Behaviour::Honours, Restart::never()).await;
    until_leading(&b, true).await;
    let runs = journal.runs();
    let a_runs: Vec<&Run> = runs.iter().filter(|run| run.instance == "a").collect();
    assert_eq!(a_runs.len(), 3, "the first run and two restarts: {runs:?}");
    assert!(
        a_runs.iter().all(|run| run.token == a_runs[0].token),
        "one term: {runs:?}"
    );
    let error = a.stop().await.unwrap_err();
    assert!(error.to_string().contains("failed on purpose"), "{error}");
    b.stop().await.unwrap();
}

#[tokio::test]
async fn bad_timings_and_a_singleton_twice_are_build_errors_naming_the_service() {
    let journal = Arc::new(Journal::default());
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(
        Worker {
            instance: "a",
            journal: journal.clone(),
            behaviour: Behaviour::Honours,
        },
        |worker| worker.cluster_singleton(Singleton::new("billing").lease(Duration::from_secs(5))),
    );
    let error = builder.build_error();
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().contains(&format!(
            "`{WORKER}`: cluster singleton `billing`: the lease (5s) must be longer than the \
             renew deadline (10s)"
        )),
        "{error}"
    );

    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(
        Worker {
            instance: "a",
            journal: journal.clone(),
            behaviour: Behaviour::Honours,
        },
        |worker| worker.cluster_singleton("billing"),
    );
    builder.add_hosted_service_instance_with(Other, |other| other.cluster_singleton("billing"));
    let error = builder.build_error();
    assert!(
        error.to_string().contains(&format!(
            "`{WORKER}` and `cluster_singleton::Other` are both the cluster singleton `billing`"
        )),
        "{error}"
    );
}

struct Other;

#[async_trait]
impl BackgroundService for Other {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

struct Plain;

#[async_trait]
impl host_core::HostedService for Plain {
    async fn start(&self, _ctx: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[tokio::test]
async fn configuration_makes_a_singleton_and_refuses_one_on_a_plain_service() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Plain);
    builder.configuration().appsettings(true);
    settings(&builder, "[services.Plain]\ncluster_singleton = \"x\"\n");
    let error = builder.build_error();
    assert!(
        error
            .to_string()
            .contains("`services.Plain.cluster_singleton`: `cluster_singleton::Plain` is not a background service"),
        "{error}"
    );

    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Other);
    builder.configuration().appsettings(true);
    settings(
        &builder,
        "[services.Other.cluster_singleton]\nname = \"reports\"\nlease = \"3s\"\n\
         renew_deadline = \"2s\"\nretry_period = \"500ms\"\n",
    );
    let host = builder.start().await.unwrap();
    until_leading_of(&host, "cluster_singleton::Other", true).await;
    let leadership = host
        .states()
        .status("cluster_singleton::Other")
        .unwrap()
        .leadership
        .unwrap();
    assert_eq!(
        (&*leadership.singleton, leadership.leading),
        ("reports", true)
    );
    host.stop().await.unwrap();
}

/// Two instances started from one content root find each other through the
/// default file lock, with no configuration; the leader's stop hands over.
#[tokio::test]
async fn instances_of_one_content_root_share_the_default_file_lock() {
    let root = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::default());
    let start = |name: &'static str| {
        let journal = journal.clone();
        let root = root.path().to_owned();
        async move {
            let mut builder = TestHost::builder();
            builder.content_root(&root);
            builder.add_hosted_service_instance_with(
                Worker {
                    instance: name,
                    journal,
                    behaviour: Behaviour::Honours,
                },
                |worker| {
                    worker.cluster_singleton(
                        Singleton::new("billing")
                            .lease(Duration::from_millis(1500))
                            .renew_deadline(Duration::from_millis(1000))
                            .retry_period(Duration::from_millis(200)),
                    )
                },
            );
            builder.start().await.unwrap()
        }
    };
    let a = start("a").await;
    until_leading(&a, true).await;
    let b = start("b").await;
    until_leading(&b, false).await;
    assert!(root.path().join(".host/leases").is_dir());
    assert_eq!(journal.running(), ["a"]);
    a.stop().await.unwrap();
    until_leading(&b, true).await;
    assert_eq!(journal.running(), ["b"]);
    b.stop().await.unwrap();
}

#[tokio::test]
async fn a_store_url_no_backend_takes_is_a_build_error_that_hides_the_password() {
    let journal = Arc::new(Journal::default());
    let mut builder = TestHost::builder();
    builder.args(["app", "--cluster.postgres.url=mysql://app:hunter2@db/x"]);
    builder.add_hosted_service_instance_with(
        Worker {
            instance: "a",
            journal,
            behaviour: Behaviour::Honours,
        },
        |worker| worker.cluster_singleton("billing"),
    );
    let error = builder.build_error().to_string();
    assert!(
        error.contains("`cluster.postgres`: invalid lease store URL scheme \"mysql\""),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn its_types_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Singleton>();
    is_send_sync::<host_core::Leadership>();
    is_send_sync::<host_core::FencingToken>();
}

#[allow(dead_code)]
fn host_error_is_used(_: HostError) {}

//! Cluster-wide schedules: several hosts (the instances of one application)
//! share a claim store; each cron tick runs on one of them, never two
//! ticks at once under `skip`, a tick missed before the start runs once
//! within the catch-up window, and at least once recovers a tick whose run
//! never finished. On the real clock (a cron schedule reads the wall
//! clock, which paused time does not move), with the in-process store and
//! with the default file lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use host_cluster::InProcessStore;
use host_core::{
    ClusterWide, HostedService, LifecycleContext, Overlap, PeriodicService, RunContext, Schedule,
    ServiceError, TickClaim, async_trait,
};
use host_testing::{TestHost, TestHostBuilder};
use tokio::time::Instant;

const JOB: &str = "cluster_wide::Job";

/// One run: which instance, its claim, when it began and ended (on the
/// tokio clock, shared by the hosts of one test).
#[derive(Debug, Clone)]
struct Run {
    instance: &'static str,
    claim: Option<TickClaim>,
    run_now: bool,
    began: Instant,
    ended: Option<Instant>,
}

impl Run {
    fn key(&self) -> &str {
        self.claim.as_ref().expect("a claim").idempotency_key()
    }
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

    /// Runs by tick (ms since the epoch), in order.
    fn by_tick(&self) -> BTreeMap<u128, Vec<Run>> {
        let mut ticks: BTreeMap<u128, Vec<Run>> = BTreeMap::new();
        for run in self.runs() {
            let claim = run.claim.as_ref().expect("a run on schedule has a claim");
            ticks.entry(millis(claim.tick())).or_default().push(run);
        }
        ticks
    }
}

fn millis(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// The periodic service every instance runs.
struct Job {
    instance: &'static str,
    journal: Arc<Journal>,
    /// How long a run lasts.
    lasts: Duration,
    /// The first run never returns (until aborted).
    hang_first: Arc<AtomicBool>,
    /// The first run panics.
    panic_first: Arc<AtomicBool>,
}

#[async_trait]
impl PeriodicService for Job {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        let index = {
            let mut runs = self.journal.runs.lock().unwrap();
            runs.push(Run {
                instance: self.instance,
                claim: ctx.tick_claim().cloned(),
                run_now: ctx.is_run_now(),
                began: Instant::now(),
                ended: None,
            });
            runs.len() - 1
        };
        if self.panic_first.swap(false, Ordering::SeqCst) {
            panic!("failed on purpose");
        }
        if self.hang_first.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(self.lasts).await;
        self.journal.runs.lock().unwrap()[index].ended = Some(Instant::now());
        Ok(())
    }
}

fn job(instance: &'static str, journal: &Arc<Journal>) -> Job {
    Job {
        instance,
        journal: journal.clone(),
        lasts: Duration::ZERO,
        hang_first: Arc::new(AtomicBool::new(false)),
        panic_first: Arc::new(AtomicBool::new(false)),
    }
}

/// A builder for the instance `name`, in `store`.
fn instance_builder(name: &str, store: &InProcessStore) -> TestHostBuilder {
    let mut builder = TestHost::builder();
    builder.cluster_store(store.clone());
    builder.configuration().appsettings(true);
    settings(&builder, &format!("[cluster]\ninstance_id = \"{name}\"\n"));
    builder
}

/// Writes the content root's `appsettings.toml`.
fn settings(builder: &TestHostBuilder, toml: &str) {
    std::fs::write(builder.content_dir().join("appsettings.toml"), toml).unwrap();
}

/// An instance running `job` every second, cluster-wide.
async fn instance(
    name: &'static str,
    store: &InProcessStore,
    job: Job,
    schedule: Schedule,
    cluster_wide: ClusterWide,
) -> TestHost {
    let mut builder = instance_builder(name, store);
    builder.add_periodic_instance_with(job, schedule, move |job| {
        job.cluster_wide(cluster_wide.clone())
    });
    builder.start().await.expect("the instance starts")
}

/// Runs one instance per name, each with a plain job every second,
/// cluster-wide, until `ticks` ticks have run; then stops them all.
async fn run_ticks(
    names: &[&'static str],
    store: &InProcessStore,
    journal: &Arc<Journal>,
    ticks: usize,
) {
    let mut hosts = Vec::new();
    for name in names {
        hosts.push(
            instance(
                name,
                store,
                job(name, journal),
                every_second(),
                ClusterWide::new(),
            )
            .await,
        );
    }
    until(&format!("{ticks} ticks ran"), || {
        journal.by_tick().len() >= ticks
    })
    .await;
    for host in hosts {
        host.stop().await.unwrap();
    }
}

fn every_second() -> Schedule {
    Schedule::cron("* * * * * *")
}

/// Waits (real time, bounded) until `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..9000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 90 s: {what}");
}

/// `count` instances run every second until 30 ticks ran; each ran once,
/// and none was left out between the first and the last.
async fn each_tick_runs_exactly_once(names: &[&'static str]) {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    run_ticks(names, &store, &journal, 30).await;
    let ticks = journal.by_tick();
    for (tick, runs) in &ticks {
        assert_eq!(runs.len(), 1, "the tick {tick} ran once: {runs:#?}");
        let claim = runs[0].claim.as_ref().unwrap();
        assert_eq!(claim.attempt(), 1);
        assert_eq!(claim.job(), JOB);
        assert_eq!(tick % 1000, 0, "a whole second, without jitter");
    }
    let first = *ticks.keys().next().unwrap();
    let last = *ticks.keys().last().unwrap();
    assert_eq!(
        ticks.len() as u128,
        (last - first) / 1000 + 1,
        "no tick left out: {:?}",
        ticks.keys().collect::<Vec<_>>()
    );
    // Each claim of the job carries a larger token, tick after tick.
    let tokens: Vec<u64> = ticks
        .values()
        .map(|runs| runs[0].claim.as_ref().unwrap().token().get())
        .collect();
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "{tokens:?}"
    );
}

#[tokio::test]
async fn two_instances_run_each_tick_once() {
    each_tick_runs_exactly_once(&["a", "b"]).await;
}

#[tokio::test]
async fn three_instances_run_each_tick_once() {
    each_tick_runs_exactly_once(&["a", "b", "c"]).await;
}

/// Runs of 2.5 s every second under `skip`: no tick starts on one instance
/// while the previous runs on another; the ticks in between are skipped
/// and said so.
#[tokio::test]
async fn under_skip_no_tick_starts_anywhere_while_the_previous_runs() {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let mut hosts = Vec::new();
    for name in ["a", "b"] {
        let mut job = job(name, &journal);
        job.lasts = Duration::from_millis(2500);
        hosts.push(
            instance(
                name,
                &store,
                job,
                every_second().overlap(Overlap::Skip),
                ClusterWide::new(),
            )
            .await,
        );
    }
    until("four runs ended", || {
        journal
            .runs()
            .iter()
            .filter(|run| run.ended.is_some())
            .count()
            >= 4
    })
    .await;
    let mut runs: Vec<Run> = journal
        .runs()
        .into_iter()
        .filter(|run| run.ended.is_some())
        .collect();
    runs.sort_by_key(|run| run.began);
    for pair in runs.windows(2) {
        assert!(
            pair[1].began >= pair[0].ended.unwrap(),
            "no overlap across the cluster: {pair:#?}"
        );
    }
    let skipped_elsewhere = hosts.iter().any(|host| {
        host.logs()
            .iter()
            .any(|line| line.contains("skipped: the previous tick still runs on `"))
    });
    assert!(skipped_elsewhere, "a tick was skipped for the other's run");
    for host in hosts {
        host.stop().await.unwrap();
    }
}

/// A daily cron tick `ago` before now (UTC), on a whole second.
fn daily_tick_ago(ago: Duration) -> (Schedule, u128) {
    let at = SystemTime::now() - ago;
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let expression = format!(
        "{} {} {} * * *",
        secs % 60,
        secs / 60 % 60,
        secs / 3600 % 24
    );
    (Schedule::cron(expression), u128::from(secs) * 1000)
}

/// A tick missed while no instance ran: two instances starting after it
/// run it once when it is within the catch-up window, and not at all when
/// it is further back or the window is zero.
#[tokio::test]
async fn a_tick_missed_before_the_start_runs_once_within_the_window() {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let (schedule, tick) = daily_tick_ago(Duration::from_secs(3));
    let a = instance(
        "a",
        &store,
        job("a", &journal),
        schedule.clone(),
        ClusterWide::new(),
    )
    .await;
    let b = instance(
        "b",
        &store,
        job("b", &journal),
        schedule,
        ClusterWide::new(),
    )
    .await;
    until("the missed tick ran", || !journal.runs().is_empty()).await;
    // Both have looked at it by now: each claims it as its loop starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = journal.by_tick();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[&tick].len(), 1, "once: {runs:#?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();

    for window in [Duration::from_secs(1), Duration::ZERO] {
        let store = InProcessStore::new();
        let journal = Arc::new(Journal::default());
        let (schedule, _) = daily_tick_ago(Duration::from_secs(3));
        let host = instance(
            "a",
            &store,
            job("a", &journal),
            schedule.catch_up(window),
            ClusterWide::new(),
        )
        .await;
        // A run would start as the loop starts; give it ample time.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            journal.runs().is_empty(),
            "skipped with a window of {window:?}"
        );
        host.stop().await.unwrap();
    }
}

/// At least once: an instance claims a tick and dies in its run; another
/// runs the tick again once the claim's deadline has passed, as attempt 2
/// with a larger token and the same idempotency key.
/// Under `Skip`, the instance that died mid-run still holds `<job>.running`
/// (the in-process store keeps it until it expires): the recovered tick
/// waits for it to expire and then runs, rather than being skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_skip_a_recovered_tick_waits_for_the_dead_runs_lease() {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let options = ClusterWide::new().at_least_once(Duration::from_secs(2));
    let dying = job("a", &journal);
    dying.hang_first.store(true, Ordering::SeqCst);
    let mut a = instance_builder("a", &store);
    a.configure_host_options(|options| options.shutdown_timeout = Duration::from_millis(300));
    let cluster_wide = options.clone();
    a.add_periodic_instance_with(dying, every_second(), move |job| {
        job.cluster_wide(cluster_wide.clone())
    });
    let a = a.start().await.unwrap();
    let b = instance("b", &store, job("b", &journal), every_second(), options).await;
    until("a claimed a tick", || {
        journal.runs().iter().any(|run| run.instance == "a")
    })
    .await;
    // It dies mid-run: its claim is never finished, its lease not released.
    let _ = a.stop().await;
    let lost = journal
        .runs()
        .into_iter()
        .find(|run| run.instance == "a")
        .unwrap();
    until("b reran the lost tick", || {
        journal
            .runs()
            .iter()
            .any(|run| run.instance == "b" && run.key() == lost.key())
    })
    .await;
    let rerun = journal
        .runs()
        .into_iter()
        .find(|run| run.instance == "b" && run.key() == lost.key())
        .unwrap();
    assert_eq!(rerun.claim.unwrap().attempt(), 2);
    b.stop().await.unwrap();
}

#[tokio::test]
async fn at_least_once_reruns_a_tick_whose_run_never_finished() {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let options = ClusterWide::new().at_least_once(Duration::from_secs(2));
    // Under `buffer_one` no running lease is held: the dead instance's
    // would keep the other out for its time to live.
    let schedule = every_second().overlap(Overlap::BufferOne);
    let dying = job("a", &journal);
    dying.hang_first.store(true, Ordering::SeqCst);
    let mut a = instance_builder("a", &store);
    a.configure_host_options(|options| options.shutdown_timeout = Duration::from_millis(300));
    let cluster_wide = options.clone();
    let schedule_a = schedule.clone();
    a.add_periodic_instance_with(dying, schedule_a, move |job| {
        job.cluster_wide(cluster_wide.clone())
    });
    let a = a.start().await.unwrap();
    let b = instance("b", &store, job("b", &journal), schedule, options).await;
    until("a claimed a tick", || {
        journal.runs().iter().any(|run| run.instance == "a")
    })
    .await;
    // It dies: its run is aborted, the claim never finished.
    let _ = a.stop().await;
    let lost = journal
        .runs()
        .into_iter()
        .find(|run| run.instance == "a")
        .unwrap();
    let lost_claim = lost.claim.clone().unwrap();
    assert_eq!(lost_claim.attempt(), 1);
    until("b reran the lost tick", || {
        journal
            .runs()
            .iter()
            .any(|run| run.instance == "b" && run.key() == lost.key())
    })
    .await;
    let rerun = journal
        .runs()
        .into_iter()
        .find(|run| run.instance == "b" && run.key() == lost.key())
        .unwrap();
    let claim = rerun.claim.unwrap();
    assert_eq!(claim.attempt(), 2);
    assert!(claim.token() > lost_claim.token());
    assert_eq!(claim.tick(), lost_claim.tick());
    assert_eq!(claim.idempotency_key(), lost_claim.idempotency_key());
    assert!(rerun.began.duration_since(lost.began) >= Duration::from_secs(2));
    b.assert_logged("recovered the tick of ");
    b.stop().await.unwrap();
    // Every other tick ran once.
    for (tick, runs) in journal.by_tick() {
        let expected = if millis(lost_claim.tick()) == tick {
            2
        } else {
            1
        };
        assert_eq!(runs.len(), expected, "the tick {tick}: {runs:#?}");
    }
}

#[test]
fn an_interval_is_refused_naming_the_service_and_suggesting_a_cron_expression() {
    let journal = Arc::new(Journal::default());
    let mut builder = instance_builder("a", &InProcessStore::new());
    builder.add_periodic_instance_with(
        job("a", &journal),
        Schedule::every(Duration::from_secs(10)),
        |job| job.cluster_wide(ClusterWide::new()),
    );
    let error = builder.build_error();
    assert_eq!(error.exit_code(), 2);
    let message = error.to_string();
    assert!(
        message.contains(&format!("`{JOB}`: every 10s cannot be cluster-wide")),
        "{message}"
    );
    assert!(message.contains("\"*/10 * * * * *\""), "{message}");

    // From configuration too.
    let mut builder = instance_builder("a", &InProcessStore::new());
    settings(
        &builder,
        "[services.Job]\ncluster_wide = true\n[services.Job.schedule]\nevery = \"5s\"\n",
    );
    builder.add_periodic_instance(job("a", &journal), every_second());
    let message = builder.build_error().to_string();
    assert!(
        message.contains(&format!("`{JOB}`: every 5s cannot be cluster-wide")),
        "{message}"
    );
}

#[test]
fn an_invalid_or_shared_job_name_is_refused_naming_the_services() {
    let journal = Arc::new(Journal::default());
    let mut builder = instance_builder("a", &InProcessStore::new());
    builder.add_periodic_instance_with(job("a", &journal), every_second(), |job| {
        job.cluster_wide(ClusterWide::new().job(""))
    });
    let message = builder.build_error().to_string();
    assert!(
        message.contains(&format!(
            "`{JOB}`: the cluster-wide job name \"\" is invalid: it is empty"
        )),
        "{message}"
    );

    // Two services of one host on the same job.
    let mut builder = instance_builder("a", &InProcessStore::new());
    builder.add_periodic_instance_with(job("a", &journal), every_second(), |job| {
        job.cluster_wide(ClusterWide::new().job("report"))
    });
    builder.add_periodic_instance_with(Other, every_second(), |other| {
        other.cluster_wide(ClusterWide::new().job("report"))
    });
    let message = builder.build_error().to_string();
    assert!(
        message.contains(&format!(
            "`{JOB}` and `cluster_wide::Other` are both the cluster-wide job `report`"
        )),
        "{message}"
    );
}

struct Other;

#[async_trait]
impl PeriodicService for Other {
    async fn run(&self, _ctx: RunContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

#[test]
fn a_store_of_leases_only_is_refused_for_a_cluster_wide_service() {
    let journal = Arc::new(Journal::default());
    let mut builder = TestHost::builder();
    builder.lease_store(LeasesOnly(InProcessStore::new()));
    builder.add_periodic_instance_with(job("a", &journal), every_second(), |job| {
        job.cluster_wide(ClusterWide::new())
    });
    let message = builder.build_error().to_string();
    assert!(
        message.contains(&format!(
            "`{JOB}` is cluster-wide, but the store set with `HostBuilder::lease_store` keeps \
             leases only"
        )),
        "{message}"
    );
}

/// A lease store that keeps no claims.
struct LeasesOnly(InProcessStore);

#[async_trait]
impl host_cluster::LeaseStore for LeasesOnly {
    async fn try_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<host_cluster::Lease>, host_cluster::ClusterError> {
        self.0.try_acquire(name, holder, ttl).await
    }
    async fn renew(
        &self,
        lease: &host_cluster::Lease,
        ttl: Duration,
    ) -> Result<bool, host_cluster::ClusterError> {
        self.0.renew(lease, ttl).await
    }
    async fn release(&self, lease: &host_cluster::Lease) -> Result<(), host_cluster::ClusterError> {
        self.0.release(lease).await
    }
    async fn current(
        &self,
        name: &str,
    ) -> Result<Option<host_cluster::LeaseInfo>, host_cluster::ClusterError> {
        self.0.current(name).await
    }
}

/// `services.<name>.cluster_wide` as a table names the job; on a service
/// that is not periodic it is a build error naming the key.
#[tokio::test]
async fn configuration_makes_a_schedule_cluster_wide_and_refuses_it_on_a_plain_service() {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let mut builder = instance_builder("a", &store);
    settings(
        &builder,
        "[cluster]\ninstance_id = \"a\"\n\
         [services.Job.cluster_wide]\njob = \"nightly\"\nat_least_once = \"5m\"\nretention = \"1d\"\n",
    );
    builder.add_periodic_instance(job("a", &journal), every_second());
    let host = builder.start().await.unwrap();
    until("a run", || !journal.runs().is_empty()).await;
    host.stop().await.unwrap();
    let run = &journal.runs()[0];
    let claim = run.claim.as_ref().expect("cluster-wide from configuration");
    assert_eq!(claim.job(), "nightly");
    assert!(claim.idempotency_key().starts_with("nightly@"));

    let mut builder = instance_builder("a", &store);
    settings(&builder, "[services.Plain]\ncluster_wide = true\n");
    builder.add_hosted_service_instance(Plain);
    let error = builder.build_error();
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().contains(
            "`services.Plain.cluster_wide`: `cluster_wide::Plain` is not a periodic service"
        ),
        "{error}"
    );
}

struct Plain;

#[async_trait]
impl HostedService for Plain {
    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// A run on schedule sees its claim: the job, the tick on a whole second,
/// the token, attempt 1 and the key; "run now" runs here without one, and
/// so does a service that is not cluster-wide.
#[tokio::test]
async fn a_run_sees_its_claim_and_run_now_has_none() {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let host = instance(
        "a",
        &store,
        job("a", &journal),
        // Daily, next at this time tomorrow: only the run asked for comes.
        daily_tick_ago(Duration::ZERO).0.catch_up(Duration::ZERO),
        ClusterWide::new().job("report"),
    )
    .await;
    host.control().run_now(JOB).unwrap();
    until("run now ran", || !journal.runs().is_empty()).await;
    let run = journal.runs()[0].clone();
    assert!(run.run_now);
    assert!(run.claim.is_none(), "run now holds no claim");
    host.stop().await.unwrap();

    let journal = Arc::new(Journal::default());
    let host = instance(
        "a",
        &store,
        job("a", &journal),
        every_second(),
        ClusterWide::new().job("report"),
    )
    .await;
    until("a run", || !journal.runs().is_empty()).await;
    host.stop().await.unwrap();
    let claim = journal.runs()[0].claim.clone().unwrap();
    assert_eq!(claim.job(), "report");
    assert_eq!(millis(claim.tick()) % 1000, 0);
    assert_eq!(claim.attempt(), 1);
    assert!(claim.token().get() > 0);
    let key = format!("report@{}", humantime::format_rfc3339_millis(claim.tick()));
    assert_eq!(claim.idempotency_key(), key);

    let journal = Arc::new(Journal::default());
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(job("a", &journal), every_second());
    let host = builder.start().await.unwrap();
    until("a run", || !journal.runs().is_empty()).await;
    host.stop().await.unwrap();
    assert!(journal.runs()[0].claim.is_none());
}

/// The default store: instances of one content root share the file lock
/// and each tick runs once.
#[tokio::test]
async fn instances_of_one_content_root_share_the_file_lock_claims() {
    let root = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::default());
    let mut hosts = Vec::new();
    for name in ["a", "b"] {
        let mut builder = TestHost::builder();
        builder.content_root(root.path());
        builder.add_periodic_instance_with(job(name, &journal), every_second(), |job| {
            job.cluster_wide(ClusterWide::new())
        });
        hosts.push(builder.start().await.unwrap());
    }
    until("5 ticks ran", || journal.by_tick().len() >= 5).await;
    for host in hosts {
        host.stop().await.unwrap();
    }
    for (tick, runs) in journal.by_tick() {
        assert_eq!(runs.len(), 1, "the tick {tick}: {runs:#?}");
    }
    assert!(root.path().join(".host/leases").is_dir());
}

#[test]
fn its_types_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<ClusterWide>();
    is_send_sync::<TickClaim>();
    // Both stores serve a host's leases and claims.
    fn is_cluster_store<T: host_cluster::ClusterStore>() {}
    is_cluster_store::<InProcessStore>();
    is_cluster_store::<host_cluster::FileLockStore>();
}

/// `host_cluster_ticks_total` counts each instance's ticks by outcome: the
/// claimed ones ran, the others were taken.
#[tokio::test]
async fn ticks_are_counted_by_outcome() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    run_ticks(&["a", "b"], &store, &journal, 4).await;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        if key.key().name() != "host_cluster_ticks_total" {
            continue;
        }
        let label = |name: &str| {
            key.key()
                .labels()
                .find(|label| label.key() == name)
                .map(|label| label.value().to_owned())
                .unwrap()
        };
        assert_eq!(label("service"), JOB);
        if let DebugValue::Counter(count) = value {
            *counts.entry(label("outcome")).or_default() += count;
        }
    }
    assert_eq!(
        counts.get("claimed").copied(),
        Some(journal.runs().len() as u64),
        "{counts:?}"
    );
    assert!(counts.get("taken").copied().unwrap_or(0) >= 3, "{counts:?}");
}

/// A reload that makes a cluster-wide schedule an interval is refused: the
/// cron schedule stays in force.
#[tokio::test]
async fn a_reloaded_interval_is_refused_and_the_cron_schedule_kept() {
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let host = instance(
        "a",
        &store,
        job("a", &journal),
        every_second(),
        ClusterWide::new(),
    )
    .await;
    let settings_file = host
        .host()
        .environment()
        .content_root()
        .join("appsettings.toml");
    std::fs::write(
        &settings_file,
        "[cluster]\ninstance_id = \"a\"\n[services.Job.schedule]\nevery = \"50ms\"\n",
    )
    .unwrap();
    let configuration = host.services().get::<host_config::Configuration>().unwrap();
    configuration.reload().unwrap();
    host.assert_logged(&format!("`{JOB}`: every 50ms cannot be cluster-wide"));
    host.assert_logged("keeping the current schedule");
    until("three runs", || journal.runs().len() >= 3).await;
    host.stop().await.unwrap();
    let ticks = journal.by_tick();
    assert!(
        ticks.keys().all(|tick| tick % 1000 == 0),
        "still on whole seconds: {ticks:#?}"
    );
}

/// A run that panics fails the service as any run does, and still releases
/// the `<job>.running` lease at once: the other instances need not wait
/// for it to expire.
#[tokio::test]
async fn a_panicking_run_releases_the_running_lease() {
    use host_cluster::LeaseStore;
    let store = InProcessStore::new();
    let journal = Arc::new(Journal::default());
    let panics = job("a", &journal);
    panics.panic_first.store(true, Ordering::SeqCst);
    let mut builder = instance_builder("a", &store);
    builder.configure_host_options(|options| {
        options.background_service_failure = host_core::BackgroundServiceFailure::Ignore;
    });
    builder.add_periodic_instance_with(panics, every_second(), |job| {
        job.cluster_wide(ClusterWide::new())
    });
    let host = builder.start().await.unwrap();
    host.wait_for(JOB, |state| {
        matches!(state, host_core::ServiceState::Failed(_))
    })
    .await;
    let running = store.current(&format!("{JOB}.running")).await.unwrap();
    assert!(running.is_none(), "released: {running:?}");
    host.stop().await.unwrap();
}

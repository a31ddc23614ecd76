//! The lifecycle event stream and the metrics: every transition in order,
//! the durations of starts and stops, a subscriber that falls behind, the
//! end of the stream, and what the `metrics` facade records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use host_core::{
    BackgroundService, HostedService, LifecycleContext, PeriodicService, Restart, RunContext,
    Schedule, ServiceContext, ServiceError, ServiceEvent, ServiceState, async_trait, bail,
};
use host_testing::TestHost;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::time::Instant;

const WORKER: &str = "events::Worker";

/// Reports ready, then runs until its token fires.
struct Worker;

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.ready();
        ctx.stopping().await;
        Ok(())
    }
}

/// A plain hosted service whose start takes 150 ms and whose stop 250 ms.
struct Slow;

#[async_trait]
impl HostedService for Slow {
    async fn start(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok(())
    }

    async fn stop(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_millis(250)).await;
        Ok(())
    }
}

/// Each event as `service: from -> to`.
fn lines(events: &[ServiceEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| format!("{}: {} -> {}", event.service, event.from, event.to))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_sees_every_transition_in_order() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Worker);
    let mut host = builder.build().unwrap();
    let mut events = host.states().events();
    let before = SystemTime::now();
    host.start().await.unwrap();
    host.wait_for(WORKER, |state| matches!(state, ServiceState::Ready))
        .await;
    host.host_mut().stop().await.unwrap();
    let after = SystemTime::now();
    let mut seen = Vec::new();
    while let Some(event) = events.try_next() {
        seen.push(event);
    }
    assert_eq!(
        lines(&seen),
        [
            "events::Worker: not_started -> starting",
            "events::Worker: starting -> running",
            "events::Worker: running -> ready",
            "events::Worker: ready -> stopping",
            "events::Worker: stopping -> stopped",
        ]
    );
    for event in &seen {
        assert!(event.at >= before && event.at <= after, "{event:?}");
        assert_eq!(event.restarts, 0);
    }
    assert!(
        seen.windows(2).all(|pair| pair[0].at <= pair[1].at),
        "in order of time too"
    );
    assert_eq!(events.missed(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_start_and_a_stop_carry_how_long_the_call_took() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Slow);
    let mut host = builder.build().unwrap();
    let mut events = host.states().events();
    let began = Instant::now();
    host.start().await.unwrap();
    let start_took = began.elapsed();
    let began = Instant::now();
    host.host_mut().stop().await.unwrap();
    let stop_took = began.elapsed();
    assert_eq!(start_took, Duration::from_millis(150));
    assert_eq!(stop_took, Duration::from_millis(250));

    let mut durations = Vec::new();
    while let Some(event) = events.try_next() {
        durations.push((event.to.as_str(), event.duration));
    }
    assert_eq!(
        durations,
        [
            ("starting", None),
            ("running", Some(start_took)),
            ("stopping", None),
            ("stopped", Some(stop_took)),
        ]
    );
}

/// Returns `Ok` at once `quick` times (restarted each time), then reports
/// ready and runs until its token fires.
struct Churn {
    quick: u32,
    runs: AtomicU32,
}

#[async_trait]
impl BackgroundService for Churn {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        if self.runs.fetch_add(1, Ordering::SeqCst) < self.quick {
            return Ok(());
        }
        ctx.ready();
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_more_than_1024_events_behind_counts_what_it_missed() {
    let mut builder = TestHost::builder();
    builder
        // Each restart is two events (restarting, running) and a log line
        // at warn: keep the lines captured to those.
        .log_level("host::services", tracing::Level::INFO)
        .add_hosted_service_instance_with(
            Churn {
                quick: 600,
                runs: AtomicU32::new(0),
            },
            |s| {
                s.restart(
                    Restart::always()
                        .backoff(Duration::ZERO, Duration::ZERO)
                        .jitter(0.0)
                        .limit(u32::MAX, Duration::from_secs(60)),
                )
            },
        );
    let mut host = builder.build().unwrap();
    let mut behind = host.states().events();
    host.start().await.unwrap();
    host.wait_for("events::Churn", |state| {
        matches!(state, ServiceState::Ready)
    })
    .await;
    // The test host's own subscriber kept up: it saw them all.
    let total = host.events().len();
    assert_eq!(total, 2 + 600 * 2 + 1, "start, 600 restarts, ready");

    let mut received = Vec::new();
    while let Some(event) = behind.try_next() {
        received.push(event);
    }
    assert_eq!(received.len(), 1024, "the buffer's worth");
    assert_eq!(behind.missed(), (total - 1024) as u64);
    // What it kept is the newest, ending with the last event.
    assert_eq!(received.last().unwrap().to.as_str(), "ready");
    assert_eq!(received.last().unwrap().restarts, 600);
    host.host_mut().stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_stream_ends_once_the_host_is_dropped() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Worker);
    let mut host = builder.build().unwrap();
    let mut events = host.states().events();
    host.start().await.unwrap();
    host.wait_for(WORKER, |state| matches!(state, ServiceState::Ready))
        .await;
    host.host_mut().stop().await.unwrap();
    let mut seen = 0;
    while events.try_next().is_some() {
        seen += 1;
    }
    assert_eq!(seen, 5);
    assert!(
        tokio::time::timeout(Duration::from_secs(60), events.next())
            .await
            .is_err(),
        "no end while the host lives"
    );

    drop(host);
    let end = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("the stream ends once the host is gone");
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test(start_paused = true)]
async fn the_events_are_a_stream() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Worker);
    let mut host = builder.build().unwrap();
    let stream = host.states().events().into_stream();
    // A stream of its own: `Send` and `'static`, so it can go to a task.
    let watcher = tokio::spawn(
        stream
            .filter(|event| std::future::ready(&*event.service == WORKER))
            .map(|event| event.to.as_str())
            .take(5)
            .collect::<Vec<_>>(),
    );
    host.start().await.unwrap();
    host.wait_for(WORKER, |state| matches!(state, ServiceState::Ready))
        .await;
    host.host_mut().stop().await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(60), watcher)
        .await
        .expect("five events of the worker")
        .unwrap();
    assert_eq!(
        seen,
        ["starting", "running", "ready", "stopping", "stopped"]
    );
}

/// What the recorder holds: a counter's count or a histogram's values, by
/// `name{label=value,...}`, labels sorted.
fn recorded(recorder: &DebuggingRecorder) -> BTreeMap<String, Recorded> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let mut labels: Vec<String> = key
                .key()
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(count) => Recorded::Counter(count),
                DebugValue::Histogram(values) => {
                    Recorded::Histogram(values.into_iter().map(|value| value.0).collect())
                }
                DebugValue::Gauge(value) => Recorded::Gauge(value.0),
            };
            (
                format!("{}{{{}}}", key.key().name(), labels.join(",")),
                value,
            )
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Recorded {
    Counter(u64),
    Histogram(Vec<f64>),
    Gauge(f64),
}

/// Fails its first run, then runs until its token fires.
struct Flaky(AtomicU32);

#[async_trait]
impl BackgroundService for Flaky {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            bail!("the first run fails");
        }
        ctx.ready();
        ctx.stopping().await;
        Ok(())
    }
}

/// Never beats, but honours its token.
struct Silent;

#[async_trait]
impl BackgroundService for Silent {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

/// Its first run lasts 25 ms of a 10 ms period; the others end at once.
struct Tick(Arc<AtomicU32>);

#[async_trait]
impl PeriodicService for Tick {
    async fn run(&self, _ctx: RunContext) -> Result<(), ServiceError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn transitions_restarts_hangs_durations_and_schedules_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let ticks = Arc::new(AtomicU32::new(0));
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(Slow)
        .add_hosted_service_instance_with(Flaky(AtomicU32::new(0)), |s| {
            s.restart(
                Restart::on_failure()
                    .backoff(Duration::from_millis(10), Duration::from_millis(10))
                    .jitter(0.0),
            )
        })
        .add_hosted_service_instance_with(Silent, |s| s.heartbeat(Duration::from_secs(1)))
        .add_periodic_instance(
            Tick(ticks.clone()),
            Schedule::every(Duration::from_millis(10)),
        );
    let mut host = builder.start().await.unwrap();
    host.wait_for("events::Flaky", |state| {
        matches!(state, ServiceState::Ready)
    })
    .await;
    host.wait_for("events::Silent", |state| {
        matches!(state, ServiceState::Hung)
    })
    .await;
    host.host_mut().stop().await.unwrap();
    let runs = ticks.load(Ordering::SeqCst);
    assert!(runs > 2, "{runs} runs");

    let metrics = recorded(&recorder);
    let counter = |key: &str| match metrics.get(key) {
        Some(Recorded::Counter(count)) => *count,
        other => panic!("{key}: {other:?}; recorded: {metrics:#?}"),
    };
    let histogram = |key: &str| match metrics.get(key) {
        Some(Recorded::Histogram(values)) => values.clone(),
        other => panic!("{key}: {other:?}; recorded: {metrics:#?}"),
    };

    // Per host, by the state entered: Slow, Flaky (failing once), Silent
    // (hung) and Tick.
    for (to, count) in [
        ("starting", 4),
        ("running", 5),
        ("restarting", 1),
        ("ready", 1),
        ("hung", 1),
        ("stopping", 4),
        ("stopped", 4),
    ] {
        assert_eq!(
            counter(&format!("host_service_transitions_total{{to={to}}}")),
            count,
            "into {to}"
        );
    }
    assert_eq!(
        counter("host_service_restarts_total{service=events::Flaky}"),
        1
    );
    assert!(!metrics.contains_key("host_service_restarts_total{service=events::Silent}"));
    assert_eq!(
        counter("host_service_hung_total{service=events::Silent}"),
        1
    );
    assert!(!metrics.contains_key("host_service_hung_total{service=events::Flaky}"));

    // Per host: Slow's start took 150 ms and its stop 250 ms; the others'
    // return at once (a background service's start once `execute` is
    // spawned).
    let sorted = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values
    };
    assert_eq!(
        sorted(histogram("host_service_start_duration_seconds{}")),
        [0.0, 0.0, 0.0, 0.15]
    );
    assert_eq!(
        sorted(histogram("host_service_stop_duration_seconds{}")),
        [0.0, 0.0, 0.0, 0.25]
    );

    // Every run began on its tick: in paused time, never late.
    let lateness = histogram("host_schedule_lateness_seconds{service=events::Tick}");
    assert_eq!(lateness, vec![0.0; runs as usize]);
    // The first run (10 to 35 ms) overlapped the ticks of 20 and 30 ms.
    assert_eq!(
        counter("host_schedule_skipped_total{reason=overlap,service=events::Tick}"),
        2
    );
    assert!(
        !metrics.contains_key("host_schedule_skipped_total{reason=missed,service=events::Tick}")
    );
}

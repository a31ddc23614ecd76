//! The control handle: restart, pause, resume and run-now on a running
//! host, from `host.control()` and from the container; what each does to
//! the service's runs and state, and the requests it refuses.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_core::{
    BackgroundService, BackgroundServiceFailure, HostedService, LifecycleContext, PeriodicService,
    Restart, RunContext, Schedule, ServiceContext, ServiceControl, ServiceError, ServiceState,
    ServiceStates, async_trait, bail,
};
use host_testing::TestHost;
use tokio::time::Instant;

const WORKER: &str = "control::Worker";

/// What a worker's runs did, shared with the test.
#[derive(Default)]
struct Probe {
    /// Runs begun.
    runs: AtomicU32,
    /// Runs that returned because their token fired.
    stopped_by_token: AtomicU32,
    /// `ctx.restarts()` as each run saw it.
    restarts_seen: Mutex<Vec<u32>>,
    /// When each run began.
    began: Mutex<Vec<Instant>>,
    /// Makes the current run fail at its next check.
    fail: AtomicBool,
}

impl Probe {
    fn runs(&self) -> u32 {
        self.runs.load(Ordering::SeqCst)
    }
}

/// How a worker's run goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Reports ready, then runs until its token fires (or `fail` is set).
    Honours,
    /// Reports ready, then never returns, whatever its token says.
    Deaf,
    /// Its first run fails at once; the later ones honour their token.
    FailsFirst,
    /// Its first run returns `Ok` at once; the later ones honour their token.
    CompletesFirst,
}

struct Worker {
    probe: Arc<Probe>,
    behaviour: Behaviour,
}

fn worker(behaviour: Behaviour) -> (Worker, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    (
        Worker {
            probe: probe.clone(),
            behaviour,
        },
        probe,
    )
}

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let run = self.probe.runs.fetch_add(1, Ordering::SeqCst) + 1;
        self.probe
            .restarts_seen
            .lock()
            .unwrap()
            .push(ctx.restarts());
        self.probe.began.lock().unwrap().push(Instant::now());
        match self.behaviour {
            Behaviour::FailsFirst if run == 1 => bail!("run 1 failed on purpose"),
            Behaviour::CompletesFirst if run == 1 => return Ok(()),
            _ => {}
        }
        ctx.ready();
        if self.behaviour == Behaviour::Deaf {
            std::future::pending::<()>().await;
        }
        loop {
            if !ctx.delay(Duration::from_millis(100)).await {
                self.probe.stopped_by_token.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            if self.probe.fail.swap(false, Ordering::SeqCst) {
                bail!("run {run} failed on purpose");
            }
        }
    }
}

fn is_ready(state: &ServiceState) -> bool {
    matches!(state, ServiceState::Ready)
}

fn is_restarting(state: &ServiceState) -> bool {
    matches!(state, ServiceState::Restarting { .. })
}

fn is_paused(state: &ServiceState) -> bool {
    matches!(state, ServiceState::Paused)
}

#[tokio::test(start_paused = true)]
async fn a_restart_ends_the_run_through_its_token_and_is_not_counted_toward_the_limit() {
    let (service, probe) = worker(Behaviour::Honours);
    let mut builder = TestHost::builder();
    // One restart allowed by the policy; those asked by hand do not count.
    builder.add_hosted_service_instance_with(service, |s| {
        s.restart(
            Restart::on_failure()
                .backoff(Duration::from_millis(10), Duration::from_millis(10))
                .jitter(0.0)
                .limit(1, Duration::from_secs(3600)),
        )
    });
    let host = builder.start().await.unwrap();
    let control = host.services().get::<ServiceControl>().unwrap();
    host.wait_for(WORKER, is_ready).await;

    for restart in 1..=3 {
        control.restart(WORKER).unwrap();
        host.wait_for(WORKER, is_restarting).await;
        host.wait_for(WORKER, is_ready).await;
        assert_eq!(probe.runs(), restart + 1);
        assert_eq!(probe.stopped_by_token.load(Ordering::SeqCst), restart);
        assert_eq!(host.states().snapshot()[0].restarts, restart);
    }
    assert_eq!(*probe.restarts_seen.lock().unwrap(), [0, 1, 2, 3]);
    host.assert_logged("`control::Worker` restarted on request");
    host.assert_events(&[
        (WORKER, "ready"),
        (WORKER, "restarting"),
        (WORKER, "running"),
        (WORKER, "ready"),
        (WORKER, "restarting"),
        (WORKER, "running"),
        (WORKER, "ready"),
    ]);

    // Three restarts by hand, and still the policy's one restart is left.
    probe.fail.store(true, Ordering::SeqCst);
    host.wait_for(WORKER, is_restarting).await;
    host.wait_for(WORKER, is_ready).await;
    host.assert_logged("run 4 failed on purpose; restarting in 10ms (attempt 1)");
    assert_eq!(host.states().snapshot()[0].restarts, 4);
    host.assert_not_logged("giving up");
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_policy_with_a_limit_of_none_still_restarts_by_hand() {
    let (service, probe) = worker(Behaviour::Honours);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(service, |s| {
        s.restart(Restart::on_failure().limit(0, Duration::from_secs(60)))
    });
    let host = builder.start().await.unwrap();
    host.wait_for(WORKER, is_ready).await;
    for _ in 0..2 {
        host.control().restart(WORKER).unwrap();
        host.wait_for(WORKER, is_restarting).await;
        host.wait_for(WORKER, is_ready).await;
    }
    assert_eq!(probe.runs(), 3);
    assert_eq!(host.states().snapshot()[0].restarts, 2);
    host.assert_not_logged("giving up");
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_that_ignores_its_token_is_aborted_after_its_stop_timeout_and_runs_again() {
    let (service, probe) = worker(Behaviour::Deaf);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(service, |s| s.stop_timeout(Duration::from_secs(2)));
    let host = builder.start().await.unwrap();
    host.wait_for(WORKER, is_ready).await;
    let asked = Instant::now();
    host.control().restart(WORKER).unwrap();
    host.wait_for(WORKER, is_restarting).await;
    host.wait_for(WORKER, is_ready).await;
    assert_eq!(probe.runs(), 2);
    let second = probe.began.lock().unwrap()[1];
    assert_eq!(
        second - asked,
        Duration::from_secs(2),
        "aborted at its stop timeout"
    );
    host.assert_logged(
        "`control::Worker` did not return within its stop timeout (2s) after being asked to \
         (restarted); its run was aborted",
    );
    assert_eq!(host.states().snapshot()[0].restarts, 1);
    // The new run ignores its token too: dropping the host aborts it.
    drop(host);
}

#[tokio::test(start_paused = true)]
async fn a_paused_service_stays_paused_until_resumed() {
    let (service, probe) = worker(Behaviour::Honours);
    let mut builder = TestHost::builder();
    builder
        .wait_limit(Duration::from_secs(7200))
        .add_hosted_service_instance(service);
    let host = builder.start().await.unwrap();
    host.wait_for(WORKER, is_ready).await;

    host.control().pause(WORKER).unwrap();
    host.wait_for(WORKER, is_paused).await;
    assert_eq!(
        probe.stopped_by_token.load(Ordering::SeqCst),
        1,
        "`execute` returned through its token"
    );
    host.assert_logged("`control::Worker` paused");
    assert!(host.states().all_healthy(), "paused on purpose is healthy");
    // Pausing again is no error, and changes nothing.
    host.control().pause(WORKER).unwrap();

    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(is_paused(&host.states().get(WORKER).unwrap()));
    assert_eq!(probe.runs(), 1, "no run while paused");

    host.control().resume(WORKER).unwrap();
    host.wait_for(WORKER, is_ready).await;
    assert_eq!(probe.runs(), 2);
    host.assert_logged("`control::Worker` resumed");
    host.assert_events(&[
        (WORKER, "ready"),
        (WORKER, "paused"),
        (WORKER, "running"),
        (WORKER, "ready"),
    ]);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_pause_during_a_backoff_holds_the_restart_until_resumed() {
    let (service, probe) = worker(Behaviour::FailsFirst);
    let mut builder = TestHost::builder();
    builder
        .wait_limit(Duration::from_secs(7200))
        .add_hosted_service_instance_with(service, |s| {
            s.restart(
                Restart::on_failure()
                    .backoff(Duration::from_secs(10), Duration::from_secs(10))
                    .jitter(0.0),
            )
        });
    let host = builder.start().await.unwrap();
    host.wait_for(WORKER, is_restarting).await;
    host.control().pause(WORKER).unwrap();
    assert!(
        is_paused(&host.states().get(WORKER).unwrap()),
        "paused at once"
    );

    // Well past the backoff: still paused, no second run.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(is_paused(&host.states().get(WORKER).unwrap()));
    assert_eq!(probe.runs(), 1);

    host.control().resume(WORKER).unwrap();
    host.wait_for(WORKER, is_ready).await;
    assert_eq!(probe.runs(), 2);
    host.assert_events(&[
        (WORKER, "restarting"),
        (WORKER, "paused"),
        (WORKER, "running"),
        (WORKER, "ready"),
    ]);
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_completed_service_runs_again_on_restart() {
    let (service, probe) = worker(Behaviour::CompletesFirst);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(service);
    let host = builder.start().await.unwrap();
    host.wait_for(WORKER, |state| matches!(state, ServiceState::Completed))
        .await;
    host.control().restart(WORKER).unwrap();
    host.wait_for(WORKER, is_ready).await;
    assert_eq!(probe.runs(), 2);
    assert_eq!(host.states().snapshot()[0].restarts, 1);
    assert_eq!(*probe.restarts_seen.lock().unwrap(), [0, 1]);
    host.assert_logged("`control::Worker` runs again on request");
    host.assert_events(&[
        (WORKER, "completed"),
        (WORKER, "running"),
        (WORKER, "ready"),
    ]);
    host.stop().await.unwrap();
    assert_eq!(probe.stopped_by_token.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_service_failed_under_ignore_runs_again_on_restart() {
    let (service, probe) = worker(Behaviour::FailsFirst);
    let mut builder = TestHost::builder();
    builder
        .configure_host_options(|o| o.background_service_failure = BackgroundServiceFailure::Ignore)
        .add_hosted_service_instance(service);
    let host = builder.start().await.unwrap();
    let failed = host
        .wait_for(WORKER, |state| matches!(state, ServiceState::Failed(_)))
        .await;
    assert!(
        failed
            .failure()
            .unwrap()
            .cause()
            .contains("run 1 failed on purpose")
    );
    host.control().restart(WORKER).unwrap();
    host.wait_for(WORKER, is_ready).await;
    assert_eq!(probe.runs(), 2);
    assert!(!host.host().lifetime().is_stop_requested());
    host.assert_events(&[(WORKER, "failed"), (WORKER, "running"), (WORKER, "ready")]);
    host.stop().await.unwrap();
}

/// Records each run: its number, whether it was asked for, when it began.
struct Report {
    runs: Arc<Mutex<Vec<(u64, bool, Instant)>>>,
}

#[async_trait]
impl PeriodicService for Report {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        self.runs
            .lock()
            .unwrap()
            .push((ctx.number(), ctx.is_run_now(), Instant::now()));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn run_now_runs_a_periodic_service_at_once_and_is_refused_for_a_background_one() {
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (service, _probe) = worker(Behaviour::Honours);
    let mut builder = TestHost::builder();
    builder
        .add_periodic_instance(
            Report { runs: runs.clone() },
            Schedule::every(Duration::from_secs(3600)),
        )
        .add_hosted_service_instance(service);
    let host = builder.start().await.unwrap();
    host.wait_for(WORKER, is_ready).await;
    let asked = Instant::now();
    host.control().run_now("control::Report").unwrap();
    for _ in 0..100 {
        if !runs.lock().unwrap().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        *runs.lock().unwrap(),
        [(1, true, asked)],
        "one run, at once"
    );

    let error = host.control().run_now(WORKER).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot run `control::Worker`: it is not a periodic service (`add_periodic`)"
    );
    host.stop().await.unwrap();
}

/// Waits until `name` is stopping; fails the test after a minute of
/// tokio's clock.
async fn stopping(states: &ServiceStates, name: &str) {
    tokio::time::timeout(
        Duration::from_secs(60),
        states.wait_for(name, |state| matches!(state, ServiceState::Stopping)),
    )
    .await
    .unwrap_or_else(|_| panic!("`{name}` never stopping"))
    .unwrap();
}

/// A plain hosted service, with a stop that takes a second.
struct Plain;

#[async_trait]
impl HostedService for Plain {
    async fn start(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn stop(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn requests_for_no_service_a_plain_one_or_one_not_paused_are_refused_with_why() {
    let (service, _probe) = worker(Behaviour::Honours);
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(service)
        .add_hosted_service_instance(Plain);
    let host = builder.start().await.unwrap();
    host.wait_for(WORKER, is_ready).await;
    let control = host.control();

    let error = control.restart("control::Nobody").unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot restart `control::Nobody`: no service is called `control::Nobody` (the \
         services: control::Worker, control::Plain)"
    );
    assert_eq!(error.exit_code(), 1);
    let error = control.pause("Worker").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot pause `Worker`: no service is called `Worker`"),
        "a request takes the full name: {error}"
    );

    for (action, error) in [
        ("restart", control.restart("control::Plain").unwrap_err()),
        ("pause", control.pause("control::Plain").unwrap_err()),
        ("resume", control.resume("control::Plain").unwrap_err()),
        ("run", control.run_now("control::Plain").unwrap_err()),
    ] {
        assert_eq!(
            error.to_string(),
            format!(
                "cannot {action} `control::Plain`: it is not a background service (only an \
                 `execute` can be restarted, paused or resumed)"
            )
        );
    }

    let error = control.resume(WORKER).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot resume `control::Worker`: it is not paused (it is ready)"
    );
    host.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn every_request_for_a_service_the_host_is_stopping_is_refused() {
    let (service, _probe) = worker(Behaviour::Deaf);
    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance_with(service, |s| s.stop_timeout(Duration::from_secs(5)));
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    host.wait_for(WORKER, is_ready).await;
    let control = host.control();
    let states = host.states();
    let asked = async {
        // Its stop has begun; its run ignores the token, so it lasts.
        stopping(&states, WORKER).await;
        [
            ("restart", control.restart(WORKER).unwrap_err()),
            ("pause", control.pause(WORKER).unwrap_err()),
            ("resume", control.resume(WORKER).unwrap_err()),
        ]
    };
    let (stopped, refused) = tokio::join!(host.host_mut().stop(), asked);
    for (action, error) in refused {
        assert_eq!(
            error.to_string(),
            format!("cannot {action} `control::Worker`: the host is stopping it")
        );
    }
    // The run was aborted at the stop timeout, the host's error says so.
    assert_eq!(stopped.unwrap_err().exit_code(), 3);

    // And once it has stopped.
    for (action, error) in [
        ("restart", control.restart(WORKER).unwrap_err()),
        ("pause", control.pause(WORKER).unwrap_err()),
    ] {
        assert_eq!(
            error.to_string(),
            format!("cannot {action} `control::Worker`: the host is stopping it")
        );
    }
}

/// Notes, in its `stop`, what a restart asked of `control::Worker` then
/// returned. Registered after the worker, it stops before it: the host's
/// stop has begun, the worker's not yet.
struct AsksOnStop {
    control: Arc<Mutex<Option<ServiceControl>>>,
    answer: Arc<Mutex<Option<String>>>,
}

#[async_trait]
impl HostedService for AsksOnStop {
    fn name(&self) -> Cow<'static, str> {
        "control::AsksOnStop".into()
    }

    async fn start(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn stop(&self, _: &LifecycleContext) -> Result<(), ServiceError> {
        let control = self.control.lock().unwrap().clone().unwrap();
        let answer = match control.restart(WORKER) {
            Ok(()) => "accepted".to_owned(),
            Err(error) => error.to_string(),
        };
        *self.answer.lock().unwrap() = Some(answer);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_asked_once_the_hosts_stop_began_is_refused() {
    let (service, probe) = worker(Behaviour::Honours);
    let control = Arc::new(Mutex::new(None));
    let answer = Arc::new(Mutex::new(None));
    let mut builder = TestHost::builder();
    builder
        .add_hosted_service_instance(service)
        .add_hosted_service_instance(AsksOnStop {
            control: control.clone(),
            answer: answer.clone(),
        });
    let mut host = builder.build().unwrap();
    *control.lock().unwrap() = Some(host.control());
    host.start().await.unwrap();
    host.wait_for(WORKER, is_ready).await;
    host.host_mut().stop().await.unwrap();
    assert_eq!(
        answer.lock().unwrap().as_deref(),
        Some("cannot restart `control::Worker`: the host is stopping it")
    );
    assert_eq!(probe.runs(), 1);
    host.assert_not_logged("restarted on request");
}

/// Runs until its token fires.
struct Patient;

#[async_trait]
impl PeriodicService for Patient {
    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn run_now_for_a_periodic_service_the_host_is_stopping_is_refused() {
    const PATIENT: &str = "control::Patient";
    let mut builder = TestHost::builder();
    builder.add_periodic_instance(
        Patient,
        Schedule::every(Duration::from_secs(1)).starting_now(),
    );
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let control = host.control();
    let states = host.states();
    let asked = async {
        stopping(&states, PATIENT).await;
        control.run_now(PATIENT)
    };
    let (stopped, answer) = tokio::join!(host.host_mut().stop(), asked);
    stopped.unwrap();
    assert_eq!(
        answer.unwrap_err().to_string(),
        "cannot run `control::Patient`: the host is stopping it"
    );
}

/// An admin thread outside the runtime (a CLI, a signal handler's thread)
/// uses the handle as a task would: the abort timer of a run that ignores
/// its token runs on the host's runtime.
#[test]
fn the_handle_works_from_a_thread_outside_the_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (service, probe) = worker(Behaviour::Deaf);
    let host = runtime.block_on(async {
        let mut builder = TestHost::builder();
        builder.add_hosted_service_instance_with(service, |s| {
            s.stop_timeout(Duration::from_millis(200))
        });
        let host = builder.start().await.unwrap();
        // Its first run under way (a restart asked before it begins is
        // that run).
        host.wait_for(WORKER, is_ready).await;
        host
    });
    let control = host.control();
    let asked = std::thread::spawn(move || control.restart(WORKER))
        .join()
        .unwrap();
    assert!(asked.is_ok(), "{asked:?}");
    runtime.block_on(async {
        until_real(|| probe.runs() >= 2).await;
        // The second run ignores its token too: the stop aborts it.
        assert_eq!(host.stop().await.unwrap_err().exit_code(), 3);
    });
}

/// Waits, on the real clock, until `done` (at most 10 s).
async fn until_real(done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never");
}

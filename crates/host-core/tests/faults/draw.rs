//! Draws the host of a seed: the same seed draws the same host, so that a
//! failing run can be replayed.

use std::time::Duration;

use fastrand::Rng;
use host_core::{BackgroundServiceFailure, Overlap};

use crate::plan::{
    Act, Failure, JobPlan, Kind, Mode, OnStop, PlainPlan, Plan, Policy, Ready, ServicePlan, Steady,
    WorkerPlan,
};

/// A duration drawn from `range`, in milliseconds.
fn ms(rng: &mut Rng, range: std::ops::RangeInclusive<u64>) -> Duration {
    Duration::from_millis(rng.u64(range))
}

/// `true` with `probability`.
fn chance(rng: &mut Rng, probability: f64) -> bool {
    rng.f64() < probability
}

impl Plan {
    /// The host of `seed`, with `count` services.
    pub(crate) fn draw(seed: u64, count: usize) -> Self {
        let mut rng = Rng::with_seed(seed);
        // How faulty this host is while it runs, and at its stop (two hosts
        // in five stop cleanly, so that the clean exit is tested too).
        let density = Density {
            run: rng.f64() * 0.25,
            stop: if chance(&mut rng, 0.4) {
                0.0
            } else {
                rng.f64() * 0.08
            },
        };
        // Most hosts start cleanly; the others have a service or two that
        // fails the start, to exercise the rollback.
        let start_faults = match rng.u8(0..20) {
            0..=13 => 0,
            14..=18 => 1,
            _ => 2,
        };
        let failing_start: Vec<usize> = (0..start_faults).map(|_| rng.usize(0..count)).collect();
        let mut plan = Plan {
            seed,
            shutdown_timeout: ms(&mut rng, 300..=6_000),
            startup_timeout: ms(&mut rng, 2_000..=30_000),
            start_concurrently: rng.bool(),
            stop_concurrently: rng.bool(),
            on_failure: if rng.bool() {
                BackgroundServiceFailure::StopHost
            } else {
                BackgroundServiceFailure::Ignore
            },
            run_for: ms(&mut rng, 0..=20_000),
            services: Vec::with_capacity(count),
        };
        for index in 0..count {
            let fails_start = failing_start.contains(&index);
            let service = draw_service(&mut rng, &plan, index, density, fails_start);
            plan.services.push(service);
        }
        plan
    }
}

/// How likely each fault is: those while the host runs, and those at its
/// stop.
#[derive(Debug, Clone, Copy)]
struct Density {
    run: f64,
    stop: f64,
}

/// Service `index`, which may depend on those drawn before it (so that
/// the dependencies never form a cycle).
fn draw_service(
    rng: &mut Rng,
    plan: &Plan,
    index: usize,
    density: Density,
    fails_start: bool,
) -> ServicePlan {
    let mut start_timeout = chance(rng, 0.2).then(|| ms(rng, 300..=3_000));
    let stop_timeout = chance(rng, 0.3).then(|| ms(rng, 100..=3_000));
    let kind = match rng.u8(0..20) {
        _ if fails_start => {
            let (kind, timeout) = start_fault(rng, density);
            start_timeout = timeout.or(start_timeout);
            kind
        }
        0..=6 => Kind::Plain(plain(rng, density)),
        7..=15 => Kind::Worker(worker(rng, density)),
        _ => Kind::Job(job(rng, density)),
    };
    let mut service = ServicePlan {
        name: format!("fault::S{index:03}"),
        kind,
        start_timeout,
        stop_timeout,
        after: Vec::new(),
    };
    if index > 0 && chance(rng, 0.3) {
        for _ in 0..rng.usize(1..=3) {
            let target = rng.usize(0..index);
            let other = &plan.services[target];
            if service.is_deaf() && !matches!(other.kind, Kind::Plain(_)) {
                continue;
            }
            // Waiting for one that never reports ready holds the start
            // until a timeout: now and then only.
            let ready = match &other.kind {
                Kind::Worker(worker) if worker.ready == Ready::Never => chance(rng, 0.04),
                Kind::Worker(_) => chance(rng, 0.4),
                _ => false,
            };
            if !service.after.iter().any(|(known, _)| *known == target) {
                service.after.push((target, ready));
            }
        }
    }
    service
}

/// A service that fails the host's start, and the start timeout that
/// makes a slow start fail.
fn start_fault(rng: &mut Rng, density: Density) -> (Kind, Option<Duration>) {
    let slow = ms(rng, 500..=5_000);
    let act = match rng.u8(0..3) {
        0 => Act::Fail,
        1 => Act::Panic,
        _ => Act::Slow(slow),
    };
    let timeout = matches!(act, Act::Slow(_)).then(|| slow / 2);
    if rng.bool() {
        let mut plain = plain(rng, density);
        match rng.u8(0..4) {
            0 => plain.starting = act.without_delay(),
            1 => plain.started = act.without_delay(),
            _ => plain.start = act,
        }
        (Kind::Plain(plain), timeout)
    } else {
        let mut worker = worker(rng, density);
        worker.before_start = act;
        (Kind::Worker(worker), timeout)
    }
}

impl Act {
    /// A hook fails or panics, but does not take its time.
    fn without_delay(self) -> Act {
        match self {
            Act::Slow(_) | Act::Polite(_) | Act::Hang => Act::Fail,
            act => act,
        }
    }
}

/// A slow start that stays within any start timeout drawn for it.
fn quick_start(rng: &mut Rng) -> Act {
    if chance(rng, 0.03) {
        Act::Slow(ms(rng, 10..=150))
    } else {
        Act::Ok
    }
}

/// What a hook at the stop does: mostly nothing, now and then a failure.
fn stop_hook(rng: &mut Rng, density: f64) -> Act {
    if chance(rng, density / 3.0) {
        if rng.bool() { Act::Panic } else { Act::Fail }
    } else {
        Act::Ok
    }
}

/// What a `stop` (or `after_stop`) does.
fn stop_call(rng: &mut Rng, density: f64) -> Act {
    if !chance(rng, density) {
        return Act::Ok;
    }
    match rng.u8(0..5) {
        0 => Act::Fail,
        1 => Act::Panic,
        2 => Act::Slow(ms(rng, 50..=8_000)),
        3 => Act::Polite(ms(rng, 50..=8_000)),
        _ => Act::Hang,
    }
}

/// A plain hosted service whose start works.
fn plain(rng: &mut Rng, density: Density) -> PlainPlan {
    PlainPlan {
        starting: Act::Ok,
        start: quick_start(rng),
        started: Act::Ok,
        stopping: stop_hook(rng, density.stop),
        stop: stop_call(rng, density.stop),
        stopped: stop_hook(rng, density.stop),
    }
}

/// How a run fails: mostly an error or a panic.
fn failure(rng: &mut Rng) -> Failure {
    match rng.u8(0..20) {
        0..=9 => Failure::Error,
        10..=16 => Failure::Panic,
        _ => Failure::Unrecoverable,
    }
}

/// A background service whose start works.
fn worker(rng: &mut Rng, density: Density) -> WorkerPlan {
    let failures = if chance(rng, density.run) {
        if chance(rng, 0.3) {
            u32::MAX
        } else {
            rng.u32(1..=4)
        }
    } else {
        0
    };
    let steady = if chance(rng, density.stop / 3.0) {
        Steady::Deaf
    } else if chance(rng, density.run) {
        Steady::Silent
    } else if chance(rng, 0.1) {
        Steady::Completes(ms(rng, 100..=5_000))
    } else {
        Steady::Beats(ms(rng, 50..=500))
    };
    // A deaf run never beats; a heartbeat on it would end its run for a
    // restart by aborting it, which is not what the stop does.
    let heartbeat = (steady != Steady::Deaf && chance(rng, 0.3)).then(|| ms(rng, 200..=3_000));
    let on_stop = if chance(rng, density.stop) {
        if rng.bool() {
            OnStop::Fail
        } else {
            OnStop::Slow(ms(rng, 50..=8_000))
        }
    } else {
        OnStop::Return
    };
    let ready = match rng.u8(0..30) {
        0..=21 => Ready::AtOnce,
        22..=28 => Ready::After(ms(rng, 10..=300)),
        _ => Ready::Never,
    };
    WorkerPlan {
        before_start: quick_start(rng),
        after_stop: stop_call(rng, density.stop),
        stopping: stop_hook(rng, density.stop),
        stopped: stop_hook(rng, density.stop),
        ready,
        failures,
        failure: failure(rng),
        fail_after: if chance(rng, 0.05) {
            Duration::ZERO
        } else {
            ms(rng, 50..=5_000)
        },
        steady,
        on_stop,
        heartbeat,
        restart: policy(rng),
    }
}

/// A periodic service.
fn job(rng: &mut Rng, density: Density) -> JobPlan {
    let period = ms(rng, 100..=3_000);
    JobPlan {
        period,
        starting_now: chance(rng, 0.3),
        overlap: match rng.u8(0..3) {
            0 => Overlap::Skip,
            1 => Overlap::BufferOne,
            _ => Overlap::CancelRunning,
        },
        run_time: Duration::from_millis(rng.u64(0..=period.as_millis() as u64 * 2)),
        deaf: chance(rng, density.stop / 3.0),
        failures: if chance(rng, density.run) {
            rng.u32(1..=3)
        } else {
            0
        },
        fail_every: chance(rng, density.run / 2.0).then(|| rng.u32(2..=6)),
        failure: match failure(rng) {
            Failure::Unrecoverable => Failure::Unrecoverable,
            _ if rng.bool() => Failure::Panic,
            _ => Failure::Error,
        },
        restart: policy(rng),
    }
}

/// A restart policy with small backoffs and limits, so that restarts and
/// giving up both happen within a run.
fn policy(rng: &mut Rng) -> Policy {
    let mode = match rng.u8(0..10) {
        0..=3 => Mode::Never,
        4..=7 => Mode::OnFailure,
        _ => Mode::Always,
    };
    let initial = ms(rng, 10..=500);
    Policy {
        mode,
        initial,
        max: initial + ms(rng, 0..=3_000),
        jitter: rng.f64() * 0.5,
        max_restarts: rng.u32(0..=6),
        within: ms(rng, 1_000..=20_000),
        reset_after: ms(rng, 100..=10_000),
    }
}

#[test]
fn a_seed_draws_the_same_host_every_time() {
    let first = Plan::draw(7, 30).to_string();
    assert_eq!(first, Plan::draw(7, 30).to_string());
    assert_ne!(first, Plan::draw(8, 30).to_string());
}

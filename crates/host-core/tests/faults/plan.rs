//! The host a seed draws (`draw.rs` draws it): random services with random
//! faults, restart policies, timeouts, dependencies and host options.

use std::fmt;
use std::time::Duration;

use host_core::{BackgroundServiceFailure, Overlap, Restart};

/// What the host of one seed is made of, and how long it runs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) shutdown_timeout: Duration,
    /// Always set: a service whose start hangs (a dependency that never
    /// reports ready, say) would otherwise hold the start for good.
    pub(crate) startup_timeout: Duration,
    pub(crate) start_concurrently: bool,
    pub(crate) stop_concurrently: bool,
    pub(crate) on_failure: BackgroundServiceFailure,
    /// How long the test lets the host run before it asks it to stop.
    pub(crate) run_for: Duration,
    pub(crate) services: Vec<ServicePlan>,
}

/// One service: its kind and faults, and its registration's options.
#[derive(Debug, Clone)]
pub(crate) struct ServicePlan {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) stop_timeout: Option<Duration>,
    /// What it starts after: an earlier service's index, and whether it
    /// waits for that one's readiness.
    pub(crate) after: Vec<(usize, bool)>,
}

/// Which of the three kinds a service is, with its faults.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A plain `HostedService`.
    Plain(PlainPlan),
    /// A `BackgroundService`.
    Worker(WorkerPlan),
    /// A `PeriodicService`.
    Job(JobPlan),
}

/// What one call of a service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Ok,
    Fail,
    Panic,
    /// Takes this long, deaf to its token.
    Slow(Duration),
    /// Takes this long unless its token fires first; returns `Ok` either way.
    Polite(Duration),
    /// Never returns, deaf to its token.
    Hang,
}

/// What each call of a plain hosted service does.
#[derive(Debug, Clone)]
pub(crate) struct PlainPlan {
    pub(crate) starting: Act,
    pub(crate) start: Act,
    pub(crate) started: Act,
    pub(crate) stopping: Act,
    pub(crate) stop: Act,
    pub(crate) stopped: Act,
}

/// What a background service does in its hooks and in each run.
#[derive(Debug, Clone)]
pub(crate) struct WorkerPlan {
    pub(crate) before_start: Act,
    pub(crate) after_stop: Act,
    pub(crate) stopping: Act,
    pub(crate) stopped: Act,
    pub(crate) ready: Ready,
    /// How many runs fail first (`u32::MAX`: every one).
    pub(crate) failures: u32,
    pub(crate) failure: Failure,
    /// How long a failing run lasts.
    pub(crate) fail_after: Duration,
    /// What a run does once the failing ones are over.
    pub(crate) steady: Steady,
    /// What a run does when the host's stop asks it to return.
    pub(crate) on_stop: OnStop,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) restart: Policy,
}

/// When a run of a worker reports ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    AtOnce,
    After(Duration),
    Never,
}

/// How a failing run fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Error,
    Panic,
    /// An error no restart policy mends.
    Unrecoverable,
}

/// What a worker's run does once its failing runs are over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Steady {
    /// Runs until asked to stop, beating this often.
    Beats(Duration),
    /// Returns `Ok` after this long.
    Completes(Duration),
    /// Runs until asked to stop and never beats: misses any heartbeat.
    Silent,
    /// Deaf to its token; once the stop is requested, never returns.
    Deaf,
}

/// What a worker's run does when the host's stop asks it to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnStop {
    Return,
    Fail,
    /// Takes this long to return.
    Slow(Duration),
}

/// A periodic service's schedule and what its runs do.
#[derive(Debug, Clone)]
pub(crate) struct JobPlan {
    pub(crate) period: Duration,
    pub(crate) starting_now: bool,
    pub(crate) overlap: Overlap,
    pub(crate) run_time: Duration,
    /// Its runs ignore their token; once the stop is requested, a run
    /// never returns.
    pub(crate) deaf: bool,
    /// How many runs fail first.
    pub(crate) failures: u32,
    /// Then every n-th run fails.
    pub(crate) fail_every: Option<u32>,
    pub(crate) failure: Failure,
    pub(crate) restart: Policy,
}

/// A restart policy, kept as numbers so that the checks can read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    pub(crate) mode: Mode,
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) jitter: f64,
    pub(crate) max_restarts: u32,
    pub(crate) within: Duration,
    pub(crate) reset_after: Duration,
}

/// Which endings a policy restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Never,
    OnFailure,
    Always,
}

impl Policy {
    /// The policy, as the registration takes it.
    pub(crate) fn restart(&self) -> Restart {
        let restart = match self.mode {
            Mode::Never => return Restart::never(),
            Mode::OnFailure => Restart::on_failure(),
            Mode::Always => Restart::always(),
        };
        restart
            .backoff(self.initial, self.max)
            .jitter(self.jitter)
            .limit(self.max_restarts, self.within)
            .reset_after(self.reset_after)
    }
}

impl ServicePlan {
    /// Whether some run of it may ignore its token (then it depends on no
    /// background service: a restart of one would end its run, and an
    /// abort that is not the stop's would read as a shutdown timeout).
    pub(crate) fn is_deaf(&self) -> bool {
        match &self.kind {
            Kind::Plain(_) => false,
            Kind::Worker(worker) => worker.steady == Steady::Deaf,
            Kind::Job(job) => job.deaf,
        }
    }
}

impl Plan {
    /// Whether something waits for service `index` to report ready: then
    /// its start lasts until it does.
    pub(crate) fn awaited(&self, index: usize) -> bool {
        self.services
            .iter()
            .any(|other| other.after.contains(&(index, true)))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "host: shutdown timeout {:?}, startup timeout {:?}, start {}, stop {}, {:?}, \
             stop asked after {:?}",
            self.shutdown_timeout,
            self.startup_timeout,
            if self.start_concurrently {
                "concurrent"
            } else {
                "in order"
            },
            if self.stop_concurrently {
                "concurrent"
            } else {
                "in order"
            },
            self.on_failure,
            self.run_for,
        )?;
        for service in &self.services {
            write!(f, "  {}: ", service.name)?;
            match &service.kind {
                Kind::Plain(plain) => write!(f, "{plain:?}")?,
                Kind::Worker(worker) => write!(f, "{worker:?}")?,
                Kind::Job(job) => write!(f, "{job:?}")?,
            }
            if let Some(timeout) = service.start_timeout {
                write!(f, ", start timeout {timeout:?}")?;
            }
            if let Some(timeout) = service.stop_timeout {
                write!(f, ", stop timeout {timeout:?}")?;
            }
            for &(index, ready) in &service.after {
                let how = if ready { "after ready" } else { "after" };
                write!(f, ", {how} {}", self.services[index].name)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

//! Fault injection where a thread really blocks: hosts of random services,
//! drawn from a seed, some of which block their thread for good in
//! `execute` or in `stop` (a paused clock cannot show that: a blocked
//! thread stops it). Each host runs as a real process (this test binary's
//! `child` test), on a multi-thread or a current-thread runtime, and is
//! sent SIGTERM once started. Every run must exit with code 3 (the
//! shutdown timed out) within the shutdown timeout and the documented
//! second past it (the 750 ms watchdog, docs/lifecycle.md), however the
//! blocked threads fall.
//!
//! `HOST_FAULT_PROCESS_SEEDS` sets the seeds (a count, `100..200`, or
//! `3,17,42`; default 4), `HOST_FAULT_SEED=17` reruns one. `faults.rs`
//! covers everything else, on a paused clock.
#![cfg(unix)]

#[path = "faults/seeds.rs"]
mod seeds;

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use fastrand::Rng;
use host_core::{
    BackgroundService, Host, HostedService, LifecycleContext, ServiceContext, ServiceError, anyhow,
    async_trait,
};
use host_test::HostProcess;

/// The variable that makes the `child` test run the host of a seed.
const SCENARIO: &str = "HOST_FAULT_PROCESS_SEED";

/// How long past its shutdown timeout a process may live: the documented
/// second (docs/lifecycle.md: the watchdog ends it 750 ms past the
/// timeout), and a second more for a loaded machine to deliver the signal
/// and reap the process.
const PAST_THE_TIMEOUT: Duration = Duration::from_secs(2);

/// How many children run at once.
const AT_ONCE: usize = 4;

/// The host of one seed.
#[derive(Debug, Clone)]
struct Plan {
    shutdown_timeout: Duration,
    current_thread: bool,
    stop_concurrently: bool,
    services: Vec<Part>,
}

/// What one service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A background service that returns when asked to stop.
    Cooperative,
    /// A background service that never returns, deaf to its token (it
    /// yields: the host can abort it).
    Deaf,
    /// A background service that blocks its thread for good once the host
    /// has started.
    BlocksInExecute,
    /// A hosted service whose `stop` blocks its thread for good.
    BlocksInStop,
    /// A hosted service whose `stop` takes this long, deaf to its token.
    SlowStop(Duration),
    /// A hosted service whose `stop` fails.
    FailsToStop,
}

impl Part {
    /// Whether it blocks its thread for good.
    fn blocks(self) -> bool {
        matches!(self, Part::BlocksInExecute | Part::BlocksInStop)
    }
}

impl Plan {
    /// The host of `seed`: a few services, at least one of which blocks.
    fn draw(seed: u64) -> Self {
        let mut rng = Rng::with_seed(seed);
        let count = rng.usize(3..=12);
        let mut services: Vec<Part> = (0..count)
            .map(|_| match rng.u8(0..12) {
                0..=3 => Part::Cooperative,
                4 | 5 => Part::Deaf,
                6 | 7 => Part::BlocksInExecute,
                8 => Part::BlocksInStop,
                9 | 10 => Part::SlowStop(Duration::from_millis(rng.u64(10..=3_000))),
                _ => Part::FailsToStop,
            })
            .collect();
        if !services.iter().any(|part| part.blocks()) {
            let at = rng.usize(0..count);
            services[at] = if rng.bool() {
                Part::BlocksInExecute
            } else {
                Part::BlocksInStop
            };
        }
        Plan {
            shutdown_timeout: Duration::from_millis(rng.u64(300..=1_500)),
            current_thread: rng.bool(),
            stop_concurrently: rng.bool(),
            services,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown timeout {:?}, {} runtime, stop {}, services {:?}",
            self.shutdown_timeout,
            if self.current_thread {
                "current-thread"
            } else {
                "multi-thread"
            },
            if self.stop_concurrently {
                "concurrent"
            } else {
                "in order"
            },
            self.services
        )
    }
}

/// Blocks the calling thread for good.
fn block_for_good() -> ! {
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A background service of the plan.
struct Worker {
    name: String,
    part: Part,
}

#[async_trait]
impl BackgroundService for Worker {
    fn name(&self) -> Cow<'static, str> {
        self.name.clone().into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        match self.part {
            Part::Deaf => std::future::pending().await,
            Part::BlocksInExecute => {
                // Once started: blocking sooner could keep the host from
                // ever starting (on a current-thread runtime), and so from
                // being sent the signal.
                ctx.lifetime().started().await;
                block_for_good()
            }
            _ => {
                ctx.stopping().await;
                Ok(())
            }
        }
    }
}

/// A plain hosted service of the plan.
struct Plain {
    name: String,
    part: Part,
}

#[async_trait]
impl HostedService for Plain {
    fn name(&self) -> Cow<'static, str> {
        self.name.clone().into()
    }

    async fn start(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }

    async fn stop(&self, _ctx: &LifecycleContext) -> Result<(), ServiceError> {
        match self.part {
            Part::BlocksInStop => block_for_good(),
            Part::SlowStop(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            Part::FailsToStop => Err(anyhow!("{} fails to stop on purpose", self.name)),
            _ => Ok(()),
        }
    }
}

/// The host process. Does nothing unless started by the test below.
#[test]
fn child() {
    let Ok(seed) = std::env::var(SCENARIO) else {
        return;
    };
    let plan = Plan::draw(seed.parse().expect("a seed"));
    let mut builder = Host::builder();
    builder.configure_host_options(|options| {
        options.shutdown_timeout = plan.shutdown_timeout;
        options.services_stop_concurrently = plan.stop_concurrently;
    });
    for (index, part) in plan.services.iter().enumerate() {
        let name = format!("fault::P{index:02}");
        match part {
            Part::Cooperative | Part::Deaf | Part::BlocksInExecute => {
                builder.add_hosted_service_instance(Worker { name, part: *part })
            }
            _ => builder.add_hosted_service_instance(Plain { name, part: *part }),
        };
    }
    let code = if plan.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(builder.run())
    } else {
        builder.run_blocking()
    };
    host_test::exit_with(code);
}

/// Runs the host of `seed` as a process, stops it with SIGTERM once it has
/// started, and checks how it ends; the problem, naming the seed.
fn run_seed(seed: u64) -> Result<(), String> {
    let plan = Plan::draw(seed);
    let mut command = host_test::child_test(SCENARIO, &seed.to_string());
    command.env("RUST_LOG", "info");
    let mut host = HostProcess::spawn(command);
    host.wait_for("Application started.");
    let sent = Instant::now();
    host.signal("TERM");
    let (code, took) = host.wait_for_exit(sent);
    println!(
        "seed {seed}: exit {code} {took:?} after SIGTERM (shutdown timeout {:?})",
        plan.shutdown_timeout
    );
    let bound = plan.shutdown_timeout + PAST_THE_TIMEOUT;
    let mut problems = Vec::new();
    if code != 3 {
        problems.push(format!("exited {code}, not 3 (a shutdown timeout)"));
    }
    if took > bound {
        problems.push(format!(
            "exited {took:?} after SIGTERM, more than the shutdown timeout and \
             {PAST_THE_TIMEOUT:?} ({bound:?})"
        ));
    }
    let timed_out = format!("shutdown timed out after {:?}", plan.shutdown_timeout);
    if !host.output().contains(&timed_out) {
        problems.push(format!("never logged `{timed_out}`"));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "seed {seed}: {}\nreplay it: HOST_FAULT_SEED={seed} cargo test -p host-core --test \
         faults_process -- --nocapture\nthe host of seed {seed}: {plan}\nit wrote:\n{}",
        problems.join("; "),
        host.output()
    ))
}

/// Every seed's process exits 3 in time, or the failure lists the seeds
/// that did not, with what each wrote.
#[test]
fn a_host_whose_threads_block_still_exits_in_time_with_three() {
    let seeds = seeds::seeds("HOST_FAULT_PROCESS_SEEDS", 4);
    let mut failed = Vec::new();
    for chunk in seeds.chunks(AT_ONCE) {
        let outcomes: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let running: Vec<_> = chunk
                .iter()
                .map(|&seed| {
                    scope.spawn(move || {
                        std::panic::catch_unwind(|| run_seed(seed)).unwrap_or_else(|panic| {
                            let message = panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                                .unwrap_or_default();
                            Err(format!("seed {seed}: {message}"))
                        })
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|run| {
                    run.join()
                        .unwrap_or_else(|_| Err("the driving thread panicked".to_owned()))
                })
                .collect()
        });
        failed.extend(outcomes.into_iter().filter_map(Result::err));
    }
    assert!(
        failed.is_empty(),
        "{} of {} seeds broke a promise:\n{}",
        failed.len(),
        seeds.len(),
        failed.join("\n\n")
    );
}

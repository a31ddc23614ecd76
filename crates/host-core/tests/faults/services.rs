//! The services of a fault run: each does what its plan says in every call
//! (succeeds, fails, panics, takes its time, hangs) and notes in the ledger
//! what happened to it.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use host_core::{
    ApplicationLifetime, BackgroundService, HostBuilder, HostedService, LifecycleContext,
    PeriodicService, RunContext, Schedule, ServiceContext, ServiceError, ServiceOptions,
    Unrecoverable, anyhow, async_trait,
};

use crate::ledger::{Call, Ledger};
use crate::plan::{
    Act, Failure, JobPlan, Kind, OnStop, PlainPlan, Plan, Ready, ServicePlan, Steady, WorkerPlan,
};

/// Registers every service of `plan` with `builder`, noting into `ledger`.
pub(crate) fn register(builder: &mut HostBuilder, plan: &Plan, ledger: &Arc<Ledger>) {
    for (index, service) in plan.services.iter().enumerate() {
        let me = Me {
            index,
            name: service.name.clone(),
            ledger: ledger.clone(),
        };
        match &service.kind {
            Kind::Plain(faults) => {
                let plain = Plain {
                    me,
                    plan: faults.clone(),
                };
                builder.add_hosted_service_instance_with(plain, |o| options(o, plan, service));
            }
            Kind::Worker(faults) => {
                let worker = Worker {
                    me,
                    plan: faults.clone(),
                    runs: AtomicU32::new(0),
                };
                builder.add_hosted_service_instance_with(worker, |o| {
                    o.restart(faults.restart.restart());
                    if let Some(deadline) = faults.heartbeat {
                        o.heartbeat(deadline);
                    }
                    options(o, plan, service)
                });
            }
            Kind::Job(faults) => {
                let mut schedule = Schedule::every(faults.period).overlap(faults.overlap);
                if faults.starting_now {
                    schedule = schedule.starting_now();
                }
                let job = Job {
                    me,
                    plan: faults.clone(),
                    runs: AtomicU32::new(0),
                };
                builder.add_periodic_instance_with(job, schedule, |o| {
                    o.restart(faults.restart.restart());
                    options(o, plan, service)
                });
            }
        }
    }
}

/// The options every kind of service has: timeouts and dependencies.
fn options<'a, T: HostedService>(
    options: &'a mut ServiceOptions<T>,
    plan: &Plan,
    service: &ServicePlan,
) -> &'a mut ServiceOptions<T> {
    if let Some(timeout) = service.start_timeout {
        options.start_timeout(timeout);
    }
    if let Some(timeout) = service.stop_timeout {
        options.stop_timeout(timeout);
    }
    for &(index, ready) in &service.after {
        let name = plan.services[index].name.clone();
        if ready {
            options.after_ready_named(name);
        } else {
            options.after_named(name);
        }
    }
    options
}

/// Who a service is: its place in the plan and the ledger, and its name.
struct Me {
    index: usize,
    name: String,
    ledger: Arc<Ledger>,
}

impl Me {
    /// Makes `call` do `act`, noting it. `cancelled` completes when the
    /// call's token fires.
    async fn act<F: Future<Output = ()>>(
        &self,
        call: Call,
        act: Act,
        lifetime: &ApplicationLifetime,
        cancelled: F,
    ) -> Result<(), ServiceError> {
        let pending = self.ledger.enter(self.index, call, lifetime);
        let result = match act {
            Act::Ok => Ok(()),
            Act::Fail => Err(anyhow!("{} fails in {call:?} on purpose", self.name)),
            Act::Panic => panic!("{} panics in {call:?} on purpose", self.name),
            Act::Slow(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            Act::Polite(duration) => {
                tokio::select! {
                    () = tokio::time::sleep(duration) => {}
                    () = cancelled => {}
                }
                Ok(())
            }
            Act::Hang => std::future::pending().await,
        };
        pending.finish(result)
    }

    /// A lifecycle call of a hosted service.
    async fn lifecycle(
        &self,
        call: Call,
        act: Act,
        ctx: &LifecycleContext,
    ) -> Result<(), ServiceError> {
        self.act(call, act, ctx.lifetime(), ctx.cancelled()).await
    }

    fn fail(&self, failure: Failure, run: u32) -> Result<(), ServiceError> {
        let message = format!("{} run {run} fails on purpose", self.name);
        match failure {
            Failure::Error => Err(anyhow!(message)),
            Failure::Panic => panic!("{message}"),
            Failure::Unrecoverable => Err(Unrecoverable::new(anyhow!(message)).into()),
        }
    }
}

/// A plain `HostedService`.
struct Plain {
    me: Me,
    plan: PlainPlan,
}

#[async_trait]
impl HostedService for Plain {
    fn name(&self) -> Cow<'static, str> {
        self.me.name.clone().into()
    }

    async fn starting(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::Starting, self.plan.starting, ctx)
            .await
    }

    async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me.lifecycle(Call::Start, self.plan.start, ctx).await
    }

    async fn started(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::Started, self.plan.started, ctx)
            .await
    }

    async fn stopping(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::Stopping, self.plan.stopping, ctx)
            .await
    }

    async fn stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me.lifecycle(Call::Stop, self.plan.stop, ctx).await
    }

    async fn stopped(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::Stopped, self.plan.stopped, ctx)
            .await
    }
}

/// A `BackgroundService`.
struct Worker {
    me: Me,
    plan: WorkerPlan,
    /// Runs so far.
    runs: AtomicU32,
}

impl Worker {
    /// Waits `duration`: `false` if its token fired first. A deaf worker
    /// ignores its token, and once the host's stop is requested never
    /// returns.
    async fn wait(&self, ctx: &ServiceContext, duration: Duration) -> bool {
        if self.plan.steady == Steady::Deaf {
            deaf_sleep(ctx.lifetime(), duration).await;
            true
        } else {
            ctx.delay(duration).await
        }
    }

    /// What a run does once its token fired: returns at once for a restart
    /// (or a hang), or as the plan says for the host's stop.
    async fn on_token(&self, ctx: &ServiceContext) -> Result<(), ServiceError> {
        if !self.me.ledger.stopping(ctx.lifetime()) {
            return Ok(());
        }
        self.me.ledger.told_to_stop(self.me.index);
        match self.plan.on_stop {
            OnStop::Return => Ok(()),
            OnStop::Fail => Err(anyhow!("{} fails while stopping on purpose", self.me.name)),
            OnStop::Slow(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
        }
    }

    async fn run(&self, ctx: &ServiceContext, run: u32) -> Result<(), ServiceError> {
        match self.plan.ready {
            Ready::AtOnce => self.ready(ctx),
            Ready::After(delay) => {
                if !self.wait(ctx, delay).await {
                    return self.on_token(ctx).await;
                }
                self.ready(ctx);
            }
            Ready::Never => {}
        }
        if run < self.plan.failures {
            if !self.wait(ctx, self.plan.fail_after).await {
                return self.on_token(ctx).await;
            }
            return self.me.fail(self.plan.failure, run + 1);
        }
        match self.plan.steady {
            Steady::Beats(every) => loop {
                if !ctx.delay(every).await {
                    return self.on_token(ctx).await;
                }
                ctx.heartbeat();
            },
            Steady::Completes(after) => {
                if !ctx.delay(after).await {
                    return self.on_token(ctx).await;
                }
                Ok(())
            }
            Steady::Silent => {
                ctx.stopping().await;
                self.on_token(ctx).await
            }
            Steady::Deaf => loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
        }
    }

    fn ready(&self, ctx: &ServiceContext) {
        self.me.ledger.readied(self.me.index);
        ctx.ready();
    }
}

#[async_trait]
impl BackgroundService for Worker {
    fn name(&self) -> Cow<'static, str> {
        self.me.name.clone().into()
    }

    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let restarts = ctx.restarts();
        let pending = self
            .me
            .ledger
            .begin_run(self.me.index, restarts > 0, ctx.lifetime());
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        let result = self.run(&ctx, run).await;
        pending.finish(result)
    }

    async fn before_start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::BeforeStart, self.plan.before_start, ctx)
            .await
    }

    async fn after_stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::AfterStop, self.plan.after_stop, ctx)
            .await
    }

    async fn stopping(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::Stopping, self.plan.stopping, ctx)
            .await
    }

    async fn stopped(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.me
            .lifecycle(Call::Stopped, self.plan.stopped, ctx)
            .await
    }
}

/// Sleeps `duration`, deaf to any token; once the host's stop is requested
/// it never returns: a call that hangs past its stop timeout, which only
/// the host's abort ends (so that an abandoned stop always leaves a run to
/// abort, which the ledger sees).
async fn deaf_sleep(lifetime: &ApplicationLifetime, duration: Duration) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = lifetime.stop_requested() => std::future::pending().await,
        // A failed start's rollback requests no stop.
        () = lifetime.stopping() => std::future::pending().await,
    }
}

/// A `PeriodicService`.
struct Job {
    me: Me,
    plan: JobPlan,
    /// Runs so far, over every start of its schedule.
    runs: AtomicU32,
}

impl Job {
    fn fails(&self, run: u32) -> bool {
        run < self.plan.failures
            || self
                .plan
                .fail_every
                .is_some_and(|every| (run + 1).is_multiple_of(every))
    }
}

#[async_trait]
impl PeriodicService for Job {
    fn name(&self) -> Cow<'static, str> {
        self.me.name.clone().into()
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ServiceError> {
        let pending = self
            .me
            .ledger
            .begin_run(self.me.index, false, ctx.lifetime());
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        if self.plan.deaf {
            deaf_sleep(ctx.lifetime(), self.plan.run_time).await;
        } else {
            tokio::select! {
                () = tokio::time::sleep(self.plan.run_time) => {}
                () = ctx.stopping() => {}
            }
        }
        // A run asked to end (a newer run, a restart, the stop) ends well:
        // only a run left alone fails.
        let result = if !ctx.is_stopping() && self.fails(run) {
            self.me.fail(self.plan.failure, run + 1)
        } else {
            Ok(())
        };
        pending.finish(result)
    }
}

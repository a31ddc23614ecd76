//! Test support: a hosted service that records every call and can be told to
//! fail, panic or hang in any phase.
#![allow(dead_code, unreachable_pub)]

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use host_core::{
    BackgroundService, HostBuilder, HostedService, LifecycleContext, Phase, ServiceContext,
    ServiceError, async_trait,
};

/// The calls every recorder made, in order, as `name:phase`.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<EventsSeen>>>);

/// The phase of a call, and which lifetime events (started, stopping,
/// stopped) had happened when it was made.
pub type EventsSeen = (Phase, [bool; 3]);

impl Journal {
    pub fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }

    /// Which lifetime events had happened (started, stopping, stopped) at
    /// each call, by phase.
    pub fn events_seen(&self) -> Vec<EventsSeen> {
        self.1.lock().unwrap().clone()
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The entries of one phase, in order.
    pub fn of(&self, phase: &str) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|entry| entry.ends_with(&format!(":{phase}")))
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Behaviour {
    Succeed,
    Fail,
    Panic,
    /// Never returns, ignoring its token.
    Hang,
    /// Waits for its token, then returns `Ok`.
    HonourToken,
}

pub struct Recorder {
    pub name: &'static str,
    pub journal: Journal,
    pub script: Vec<(Phase, Behaviour)>,
}

impl Recorder {
    pub fn new(name: &'static str, journal: &Journal) -> Self {
        Self {
            name,
            journal: journal.clone(),
            script: Vec::new(),
        }
    }

    pub fn on(mut self, phase: Phase, behaviour: Behaviour) -> Self {
        self.script.push((phase, behaviour));
        self
    }

    async fn act(&self, phase: Phase, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.journal.push(format!("{}:{phase}", self.name));
        let lifetime = ctx.lifetime();
        self.journal.1.lock().unwrap().push((
            phase,
            [
                lifetime.is_started(),
                lifetime.is_stopping(),
                lifetime.is_stopped(),
            ],
        ));
        let behaviour = self
            .script
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(Behaviour::Succeed, |(_, b)| *b);
        match behaviour {
            Behaviour::Succeed => Ok(()),
            Behaviour::Fail => Err(anyhow::anyhow!("{} refused to {phase}", self.name)),
            Behaviour::Panic => panic!("{} panicked on purpose in {phase}", self.name),
            Behaviour::Hang => std::future::pending().await,
            Behaviour::HonourToken => {
                ctx.cancelled().await;
                self.journal
                    .push(format!("{}:{phase}-cancelled", self.name));
                Ok(())
            }
        }
    }
}

#[async_trait]
impl HostedService for Recorder {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }
    async fn starting(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.act(Phase::Starting, ctx).await
    }
    async fn start(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.act(Phase::Start, ctx).await
    }
    async fn started(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.act(Phase::Started, ctx).await
    }
    async fn stopping(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.act(Phase::Stopping, ctx).await
    }
    async fn stop(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.act(Phase::Stop, ctx).await
    }
    async fn stopped(&self, ctx: &LifecycleContext) -> Result<(), ServiceError> {
        self.act(Phase::Stopped, ctx).await
    }
}

/// A background service that returns as soon as it is asked to stop.
pub struct Cooperative;

#[async_trait]
impl BackgroundService for Cooperative {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.stopping().await;
        Ok(())
    }
}

/// Stops the application once it has started, as a job that is done.
pub struct StopsWhenStarted;

#[async_trait]
impl BackgroundService for StopsWhenStarted {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        ctx.lifetime().started().await;
        ctx.lifetime().stop_application();
        Ok(())
    }
}

/// A builder for tests: no signals, no default subscriber.
pub fn test_builder() -> HostBuilder {
    let mut builder = host_core::Host::builder();
    builder.handle_signals(false).default_logging(false);
    builder
}

/// Waits on the (paused) tokio clock until `done`, failing the test after
/// an hour of it: a hang fails rather than waits forever.
pub async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..36_000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

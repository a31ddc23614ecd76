//! A background service whose `execute` fails at once fails the start
//! before the services registered after it start (a web server, say).

mod common;

use std::time::Duration;

use common::{Journal, Recorder, test_builder};
use host_core::{
    BackgroundService, BackgroundServiceFailure, Phase, ServiceContext, ServiceError, async_trait,
};

/// Fails as soon as it runs, before any `.await`.
struct FailsAtOnce;

#[async_trait]
impl BackgroundService for FailsAtOnce {
    async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
        Err(anyhow::anyhow!("no connection string"))
    }
}

/// Blocks its thread before its first `.await`, then waits to be stopped.
struct SlowPrefix(Journal);

#[async_trait]
impl BackgroundService for SlowPrefix {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        std::thread::sleep(Duration::from_secs(3));
        self.0.push("prefix done".into());
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test]
async fn an_execute_that_fails_at_once_fails_the_start_before_the_next_service() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(Recorder::new("before", &journal))
        .add_hosted_service_instance(FailsAtOnce)
        .add_hosted_service_instance(Recorder::new("web", &journal));
    let mut host = builder.build().unwrap();

    let error = host.start().await.unwrap_err();

    assert!(error.is_start(), "{error}");
    assert_eq!(error.exit_code(), 1);
    assert_eq!(journal.of("start"), ["before:start"], "web never starts");
    let failure = &error.failures()[0];
    assert_eq!(failure.service(), "start_failures::FailsAtOnce");
    assert_eq!(failure.phase(), Phase::Execute);
    assert_eq!(
        error.to_string(),
        "host failed to start: `start_failures::FailsAtOnce` failed in execute: \
         no connection string\n  rolled back: start_failures::FailsAtOnce (stopped), \
         before (stopped)"
    );
    assert!(!host.lifetime().is_started());
    // The rollback was the stop: nothing more to do.
    host.stop().await.unwrap();
}

#[tokio::test]
async fn under_ignore_an_execute_that_fails_at_once_leaves_the_start_alone() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder.configure_host_options(|options| {
        options.background_service_failure = BackgroundServiceFailure::Ignore;
    });
    builder
        .add_hosted_service_instance(FailsAtOnce)
        .add_hosted_service_instance(Recorder::new("web", &journal));
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    assert_eq!(journal.of("start"), ["web:start"]);
    host.stop().await.unwrap();
}

/// On a multi-thread runtime the turn a sequential start gives the
/// `execute`s it spawned is a yield, not a wait: a synchronous prefix that
/// blocks its worker (a mistake, but one that happens) does not hold up the
/// next start (3 s here: a bound wide enough that only a stalled machine
/// could fail it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_prefix_does_not_hold_up_the_next_start() {
    let journal = Journal::default();
    let mut builder = test_builder();
    builder
        .add_hosted_service_instance(SlowPrefix(journal.clone()))
        .add_hosted_service_instance(Recorder::new("web", &journal));
    let mut host = builder.build().unwrap();
    host.start().await.unwrap();
    host.stop().await.unwrap();
    let order: Vec<String> = journal
        .entries()
        .into_iter()
        .filter(|entry| entry == "web:start" || entry == "prefix done")
        .collect();
    assert_eq!(
        order,
        ["web:start", "prefix done"],
        "web started while the prefix still blocked its thread"
    );
}

//! What the test host's builder sets up: nothing of the machine leaks in,
//! its own content root, overridden registrations, build errors.

use std::sync::Arc;

use host_config::Configuration;
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, ServiceState, async_trait};
use host_di::{Injectable, ServiceDescriptor};
use host_testing::{APPLICATION_NAME, TestHost};

/// Set in the child process `the_machine_does_not_leak_in` runs.
const CHILD: &str = "HOST_TESTING_LEAK_CHILD";

/// Runs itself again with the environment a developer's shell or a CI job
/// might have (setting variables in this process would take `unsafe`).
#[test]
fn the_machine_does_not_leak_in() {
    if std::env::var_os(CHILD).is_some() {
        return in_the_child();
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "the_machine_does_not_leak_in", "--nocapture"])
        .env(CHILD, "1")
        .env("HOST_ENVIRONMENT", "Staging")
        .env("APP_LEAK__VALUE", "from the environment")
        .env("NOTIFY_SOCKET", "/nonexistent/notify.sock")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

fn in_the_child() {
    // The variables are there: a plain builder reads them.
    let mut plain = Host::builder();
    plain.handle_signals(false).default_logging(false);
    let plain = plain.build().unwrap();
    assert!(plain.environment().is_staging());
    let configuration = plain.services().get::<Configuration>().unwrap();
    assert_eq!(
        configuration.get::<String>("leak.value").unwrap(),
        "from the environment"
    );

    let host = TestHost::builder().build().unwrap();
    let environment = host.host().environment();
    assert!(environment.is_production(), "{environment:?}");
    assert_eq!(environment.application_name(), APPLICATION_NAME);
    let configuration = host.services().get::<Configuration>().unwrap();
    let leaked = configuration.get::<String>("leak.value");
    assert!(leaked.is_err(), "{leaked:?}");
}

#[test]
fn the_content_root_is_a_new_empty_directory_deleted_with_the_host() {
    let builder = TestHost::builder();
    let dir = builder.content_dir().to_owned();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{dir:?}");
    let other = TestHost::builder();
    assert_ne!(other.content_dir(), dir);

    let host = builder.build().unwrap();
    assert_eq!(host.host().environment().content_root(), dir);
    drop(host);
    assert!(!dir.exists(), "{dir:?}");
}

fn with_appsettings() -> host_testing::TestHostBuilder {
    let builder = TestHost::builder();
    std::fs::write(
        builder.content_dir().join("appsettings.toml"),
        "[greeting]\nmessage = \"hello from the file\"\n",
    )
    .unwrap();
    builder
}

fn greeting(host: &TestHost) -> Option<String> {
    let configuration = host.services().get::<Configuration>().unwrap();
    configuration.get::<String>("greeting.message").ok()
}

#[test]
fn appsettings_are_read_only_once_turned_on() {
    let host = with_appsettings().build().unwrap();
    assert_eq!(greeting(&host), None);

    let mut builder = with_appsettings();
    builder.configuration().appsettings(true);
    let host = builder.build().unwrap();
    assert_eq!(greeting(&host).as_deref(), Some("hello from the file"));
}

/// What the service reads the time from.
trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

struct FixedClock(u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

#[derive(Injectable)]
struct Reporter {
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl BackgroundService for Reporter {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        tracing::info!("the time is {}", self.clock.now());
        ctx.ready();
        ctx.stopping().await;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_registration_is_overridden_with_replace() {
    let mut builder = TestHost::builder();
    // The application's registrations, then the test's override.
    builder
        .services()
        .add_instance::<dyn Clock>(Arc::new(SystemClock));
    builder.add_hosted_service::<Reporter>();
    builder
        .services()
        .replace(ServiceDescriptor::<dyn Clock>::instance(Arc::new(
            FixedClock(42),
        )));
    let host = builder.start().await.unwrap();
    let name = std::any::type_name::<Reporter>();
    host.wait_for(name, |state| matches!(state, ServiceState::Ready))
        .await;
    host.assert_logged("the time is 42");
    assert_eq!(host.services().get::<dyn Clock>().unwrap().now(), 42);
    host.stop().await.unwrap();
}

#[test]
fn a_build_error_is_returned_for_assertions() {
    let mut builder = TestHost::builder();
    builder.add_hosted_service::<Reporter>();
    let error = builder.build_error();
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("dyn builder::Clock"), "{error}");
}

#[test]
#[should_panic(expected = "build_error: the host built, with the services: `app::Worker`")]
fn build_error_fails_when_the_host_builds() {
    struct Worker;

    #[async_trait]
    impl BackgroundService for Worker {
        fn name(&self) -> std::borrow::Cow<'static, str> {
            "app::Worker".into()
        }

        async fn execute(&self, _ctx: ServiceContext) -> Result<(), ServiceError> {
            Ok(())
        }
    }

    let mut builder = TestHost::builder();
    builder.add_hosted_service_instance(Worker);
    builder.build_error();
}

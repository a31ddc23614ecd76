//! An in-process test host: a [`Host`](host_core::Host) built and started
//! for one test, its lifecycle events recorded and its log lines captured,
//! with assertions on both, for testing services (and the host itself)
//! without a process of their own.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::borrow::Cow;
//! use host_core::{BackgroundService, Restart, ServiceContext, ServiceError, ServiceState, async_trait, bail};
//! use host_testing::TestHost;
//!
//! /// Fails on its first run (the database is not up yet), then works.
//! #[derive(Default)]
//! struct Flaky {
//!     runs: AtomicU32,
//! }
//!
//! #[async_trait]
//! impl BackgroundService for Flaky {
//!     fn name(&self) -> Cow<'static, str> {
//!         "app::Flaky".into()
//!     }
//!
//!     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
//!         if self.runs.fetch_add(1, Ordering::Relaxed) == 0 {
//!             bail!("the database is not up yet");
//!         }
//!         ctx.stopping().await;
//!         Ok(())
//!     }
//! }
//!
//! // In a test: #[tokio::test(start_paused = true)]
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn the_worker_restarts_after_a_failure() {
//!     let mut builder = TestHost::builder();
//!     builder.add_hosted_service_instance_with(Flaky::default(), |flaky| {
//!         flaky.restart(Restart::on_failure())
//!     });
//!     let host = builder.start().await.unwrap();
//!
//!     // The backoff passes at once: time is paused, and the runtime is idle.
//!     host.wait_for("app::Flaky", |state| matches!(state, ServiceState::Restarting { .. })).await;
//!     host.wait_for("app::Flaky", ServiceState::is_healthy).await;
//!     host.assert_events(&[
//!         ("app::Flaky", "running"),
//!         ("app::Flaky", "restarting"),
//!         ("app::Flaky", "running"),
//!     ]);
//!     host.assert_logged("restarting in");
//!     host.stop().await.unwrap();
//! }
//! # fn main() { the_worker_restarts_after_a_failure() }
//! ```
//!
//! # What it gives
//!
//! - [`TestHost::builder`]: a [`HostBuilder`](host_core::HostBuilder) (through
//!   `Deref`) with signals, systemd and the default log subscriber off, and
//!   nothing read from the machine: a content root of its own, no
//!   `appsettings` files, no environment variables (see
//!   [`TestHostBuilder`]). Override registrations with
//!   `builder.services().replace(...)`.
//! - [`TestHost::wait_for`]: waits for a service's state, bounded on the
//!   tokio clock ([`WAIT_LIMIT`]) so that a hang fails the test, which
//!   paused time (`#[tokio::test(start_paused = true)]`) reaches at once.
//! - [`TestHost::events`] and [`TestHost::assert_events`]: every lifecycle
//!   event from before the start; an expected order, others allowed between.
//! - [`TestHost::logs`] and [`TestHost::assert_logged`]: the log lines of
//!   the test's thread, also written to the test's output.
//! - [`TestHost::control`], [`TestHost::states`], [`TestHost::services`]:
//!   the host's handles.
//!
//! `docs/testing.md` shows each in a test, and how the project's own
//! process tests (real signals, real exit codes) differ.
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `host-core`, `host-di` | the host under test, its states and events; the container a test resolves from |
//! | `tokio` | the recorder's task and the bounded wait, on the clock paused time controls |
//! | `tracing`, `tracing-subscriber` | the thread's subscriber: the test's output (`with_test_writer`) and the captured lines, filtered by target |
//! | `tempfile` | the content root of each test host, empty and deleted with it |

#![doc(test(attr(deny(warnings))))]

mod builder;
mod events;
mod host;
mod logs;
mod wait;

pub use builder::{APPLICATION_NAME, TestHostBuilder};
pub use host::TestHost;
pub use wait::WAIT_LIMIT;

//! The compiler's errors point to the fix: a crate with the usual mistakes
//! is checked (`cargo check`, offline, against these crates by path) and
//! each hint's key phrase must be in its errors.
//!
//! The crate lives under the workspace's `target/compile-hints`, with a
//! target directory of its own there: the dependencies are checked once and
//! reused by later runs (a target directory shared with the running `cargo
//! test` would wait for its lock).

use std::path::{Path, PathBuf};
use std::process::Command;

/// One function per mistake; each must fail to compile with its hint.
const MISTAKES: &str = r#"
#![allow(dead_code, unused)]
use std::rc::Rc;
use std::sync::Arc;
use host_core::{BackgroundService, Host, HostedServiceCollectionExt, ServiceContext, ServiceError, async_trait};
use host_di::{Injectable, ServiceCollection};

trait Clock: Send + Sync {}

// Implements `Clock`, but says nothing of `#[injectable(as = dyn Clock)]`.
#[derive(Injectable)]
struct SystemClock;

impl Clock for SystemClock {}

fn registered_as_a_trait_without_as() {
    ServiceCollection::new().add_singleton::<dyn Clock, SystemClock>();
}

// A background service without `#[derive(Injectable)]`.
struct Worker;

#[async_trait]
impl BackgroundService for Worker {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

fn hosted_service_not_injectable() {
    Host::builder().add_hosted_service::<Worker>();
}

// Neither a background nor a hosted service.
#[derive(Injectable)]
struct Plain;

fn hosted_service_that_is_not_one() {
    Host::builder().add_hosted_service_instance(Plain);
}

// A plain hosted service, which has no `execute` to restart.
struct Cache;

#[async_trait]
impl host_core::HostedService for Cache {
    async fn start(&self, _: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
    async fn stop(&self, _: &host_core::LifecycleContext) -> Result<(), ServiceError> {
        Ok(())
    }
}

fn restart_policy_on_a_plain_hosted_service() {
    Host::builder().add_hosted_service_instance_with(Cache, |cache| {
        cache.restart(host_core::Restart::on_failure())
    });
}

fn schedule_on_a_plain_hosted_service() {
    Host::builder().add_periodic_instance(Cache, host_core::Schedule::every(std::time::Duration::from_secs(1)));
}
"#;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/host-core is two levels down")
        .to_path_buf()
}

/// Writes the crate (only if changed, so that its check is reused).
fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).expect("the file is written");
    }
}

#[test]
fn each_mistake_gets_a_hint_that_names_the_fix() {
    let root = workspace_root();
    let dir = root.join("target").join("compile-hints");
    let krate = dir.join("mistakes");
    std::fs::create_dir_all(krate.join("src")).expect("the crate's directory");
    let manifest = format!(
        "[package]\nname = \"mistakes\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\n\
         host-core = {{ path = {core:?} }}\n\
         host-di = {{ path = {di:?}, features = [\"derive\"] }}\n\n\
         # Not a member of the workspace it sits in.\n[workspace]\n",
        core = root.join("crates/host-core"),
        di = root.join("crates/host-di"),
    );
    write_if_changed(&krate.join("Cargo.toml"), &manifest);
    write_if_changed(&krate.join("src/lib.rs"), MISTAKES);
    // The workspace's versions, so that nothing is resolved (offline).
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("the workspace's lock");
    write_if_changed(&krate.join("Cargo.lock"), &lock);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&krate)
        .args(["check", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the mistakes compiled: {stderr}");

    let hints = [
        // `add_singleton::<dyn Trait, T>()` without `#[injectable(as = dyn Trait)]`.
        "`SystemClock` cannot be registered as `dyn Clock`",
        "add `#[injectable(as = dyn Clock)]` beside `#[derive(Injectable)]` on `SystemClock`",
        // `add_hosted_service::<T>()` for a type that is not `Injectable`.
        "`Worker` cannot be constructed by the container: it does not implement `Injectable`",
        "add `#[derive(Injectable)]` to `Worker`",
        "or `add_hosted_service_instance(value)` for a hosted service",
        // A type that is no service at all.
        "`Plain` is not a hosted service",
        "implement `BackgroundService` (one `execute` loop, started and stopped for you)",
        // A restart policy on a service with no `execute`.
        "the method `restart` exists for mutable reference `&mut ServiceOptions<Cache>`, but its \
         trait bounds were not satisfied",
        "`Cache: BackgroundService`",
        // A schedule for a service that is not periodic.
        "`Cache` is not a periodic service",
        "implement `PeriodicService` (one `run` per tick)",
    ];
    let missing: Vec<&str> = hints
        .iter()
        .copied()
        .filter(|hint| !stderr.contains(hint))
        .collect();
    assert!(
        missing.is_empty(),
        "missing hints {missing:#?} in:\n{stderr}"
    );
}

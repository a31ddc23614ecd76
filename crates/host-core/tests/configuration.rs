//! The host and its configuration: sections bound at build and injected,
//! host options from the `host` section, the environment from the command
//! line only, every invalid value reported before anything starts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::test_builder;
use host_config::{Configuration, OptionsMonitor, OptionsSnapshot, ValidationError};
use host_core::{BackgroundServiceFailure, HostBuilder, HostEnvironment, HostOptions};
use host_di::{Injectable, Options};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkerOptions {
    #[serde(with = "host_config::duration")]
    interval: Duration,
    message: String,
}

#[derive(Injectable)]
struct Worker {
    fixed: Options<WorkerOptions>,
    monitor: OptionsMonitor<WorkerOptions>,
}

/// A builder reading its files from a fresh directory.
fn builder_in(files: &[(&str, &str)]) -> (HostBuilder, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("a temporary directory");
    for (name, contents) in files {
        std::fs::write(root.path().join(name), contents).expect("a file");
    }
    let mut builder = test_builder();
    builder
        .content_root(root.path())
        .environment_name("Production");
    builder.configuration().without_env();
    (builder, root)
}

const WORKER_FILE: &str = "[worker]\ninterval = \"2s\"\nmessage = \"from the file\"\n";

#[tokio::test]
async fn a_configured_section_is_injected_three_ways() {
    let (mut builder, _root) = builder_in(&[("appsettings.toml", WORKER_FILE)]);
    builder.configure::<WorkerOptions>("worker");
    builder.services().add_singleton_self::<Worker>();
    let host = builder.build().expect("valid");
    let worker = host.services().get::<Worker>().expect("resolvable");
    assert_eq!(worker.fixed.interval, Duration::from_secs(2));
    assert_eq!(worker.monitor.current().message, "from the file");
    let scope = host.services().create_scope();
    let snapshot = scope
        .provider()
        .get::<OptionsSnapshot<WorkerOptions>>()
        .expect("scoped");
    assert_eq!(snapshot.message, "from the file");
    let configuration = host.services().get::<Configuration>().expect("registered");
    assert_eq!(
        configuration.get::<String>("worker.message").unwrap(),
        "from the file"
    );
}

#[tokio::test]
async fn the_command_line_wins_over_the_files() {
    let (mut builder, _root) = builder_in(&[
        ("appsettings.toml", WORKER_FILE),
        (
            "appsettings.Production.json",
            r#"{"worker": {"interval": "3s"}}"#,
        ),
    ]);
    builder.args(["app", "--worker.message=from the command line"]);
    builder.configure::<WorkerOptions>("worker");
    let host = builder.build().expect("valid");
    let options = host.services().get::<Options<WorkerOptions>>().unwrap();
    assert_eq!(options.interval, Duration::from_secs(3));
    assert_eq!(options.message, "from the command line");
}

#[tokio::test]
async fn the_environment_comes_from_the_command_line_never_from_a_file() {
    let (mut builder, root) = builder_in(&[
        (
            "appsettings.toml",
            "environment = \"Development\"\n[worker]\nmessage = \"base\"\ninterval = \"1s\"\n",
        ),
        (
            "appsettings.Development.toml",
            "[worker]\nmessage = \"development\"\n",
        ),
        (
            "appsettings.Staging.toml",
            "[worker]\nmessage = \"staging\"\n",
        ),
    ]);
    builder.configure::<WorkerOptions>("worker");
    let host = builder.build().expect("valid");
    assert!(
        host.services()
            .get::<HostEnvironment>()
            .unwrap()
            .is_production()
    );
    let options = host.services().get::<Options<WorkerOptions>>().unwrap();
    assert_eq!(
        options.message, "base",
        "the file's `environment` is not read"
    );

    let (mut builder, _empty) = builder_in(&[]);
    builder.args(["app", "--environment", "Staging"]);
    assert!(builder.environment().is_staging());
    builder
        .content_root(root.path())
        .configure::<WorkerOptions>("worker");
    let host = builder.build().expect("valid");
    let options = host.services().get::<Options<WorkerOptions>>().unwrap();
    assert_eq!(options.message, "staging");
}

#[tokio::test]
async fn the_host_section_overrides_the_options_set_in_code() {
    let (mut builder, _root) = builder_in(&[(
        "appsettings.toml",
        "[host]\nshutdown_timeout = \"7s\"\nbackground_service_failure = \"ignore\"\n",
    )]);
    builder.configure_host_options(|options| {
        options.shutdown_timeout = Duration::from_secs(60);
        options.services_stop_concurrently = true;
    });
    let host = builder.build().expect("valid");
    let options = host.services().get::<HostOptions>().unwrap();
    assert_eq!(options.shutdown_timeout, Duration::from_secs(7));
    assert_eq!(
        options.background_service_failure,
        BackgroundServiceFailure::Ignore
    );
    assert!(options.services_stop_concurrently, "kept from code");
    assert_eq!(options.startup_timeout, None);
}

#[tokio::test]
async fn every_invalid_value_is_reported_before_anything_is_built() {
    let (mut builder, _root) = builder_in(&[(
        "appsettings.toml",
        "[host]\nshutdown_timout = \"7s\"\n[worker]\ninterval = \"fast\"\nmessage = \"m\"\n",
    )]);
    builder.args(["app", "--logging.level.default=loud"]);
    builder.configure::<WorkerOptions>("worker");
    let error = builder.build().expect_err("three invalid values");
    assert!(error.is_configuration() && error.is_build());
    assert_eq!(error.exit_code(), 2);
    let problems = error.configuration_error().unwrap().problems();
    let keys: Vec<&str> = problems.iter().map(|problem| problem.key()).collect();
    assert_eq!(
        keys,
        [
            "host.shutdown_timout",
            "logging.level.default",
            "worker.interval"
        ]
    );
    let text = error.to_string();
    assert!(
        text.starts_with("invalid configuration: 3 invalid values\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "`worker.interval` expects a duration such as \"5s\", found \"fast\"\n    from: appsettings.toml"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "`host.shutdown_timout` is not a known key; expected one of `shutdown_timeout`"
        ),
        "{text}"
    );
    assert!(
        text.contains("from: command-line argument --logging.level.default"),
        "{text}"
    );
}

#[tokio::test]
async fn a_validation_failure_names_the_key_the_value_and_the_source() {
    let (mut builder, _root) = builder_in(&[(
        "appsettings.toml",
        "[worker]\ninterval = \"0s\"\nmessage = \"m\"\n",
    )]);
    builder
        .configure::<WorkerOptions>("worker")
        .validate(|options| match options.interval.is_zero() {
            true => Err(ValidationError::key("interval", "must be longer than zero")),
            false => Ok(()),
        });
    let error = builder.build().expect_err("invalid");
    assert_eq!(
        error.to_string(),
        "invalid configuration: `worker.interval` must be longer than zero, found \"0s\"\n  \
         from: appsettings.toml"
    );
}

#[tokio::test]
async fn a_malformed_file_fails_the_build_with_its_line_and_column() {
    let (mut builder, root) = builder_in(&[("appsettings.toml", "[worker]\ninterval = 5s\n")]);
    builder.configure::<WorkerOptions>("worker");
    let error = builder.build().expect_err("malformed");
    assert_eq!(error.exit_code(), 2);
    let config_error = error.configuration_error().unwrap();
    assert!(config_error.is_malformed());
    assert_eq!(
        config_error.file(),
        Some(root.path().join("appsettings.toml").as_path())
    );
    assert_eq!(config_error.line_column(), Some((2, 12)));
}

#[tokio::test]
async fn a_bad_command_line_argument_fails_the_build() {
    let (mut builder, _root) = builder_in(&[]);
    builder.args(["app", "serve"]);
    let error = builder.build().expect_err("not --key=value");
    assert_eq!(error.exit_code(), 2);
    assert!(error.configuration_error().unwrap().is_argument());
}

#[tokio::test]
async fn the_monitor_follows_a_reload_and_the_fixed_value_does_not() {
    let (mut builder, root) = builder_in(&[("appsettings.toml", WORKER_FILE)]);
    builder.configure::<WorkerOptions>("worker");
    builder.services().add_singleton_self::<Worker>();
    let host = builder.build().expect("valid");
    let worker: Arc<Worker> = host.services().get().unwrap();
    std::fs::write(
        root.path().join("appsettings.toml"),
        WORKER_FILE.replace("from the file", "reloaded"),
    )
    .unwrap();
    let configuration = host.services().get::<Configuration>().unwrap();
    assert_eq!(configuration.reload().unwrap(), ["worker"]);
    assert_eq!(worker.monitor.current().message, "reloaded");
    assert_eq!(worker.fixed.message, "from the file");
}

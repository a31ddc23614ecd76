//! The configuration in a real process: layers from files, environment
//! variables and the command line reach the services; invalid
//! configuration exits 2 before anything starts, naming the key and the
//! source, with secrets withheld; a watched file reloads options and log
//! levels live, and a bad change is rejected.
#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use host_config::{OptionsMonitor, ValidationError};
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
use host_di::Injectable;
use host_test::HostProcess;
use serde::Deserialize;

const SCENARIO: &str = "HOST_CORE_CONFIG_SCENARIO";
/// The child's command line, space-separated.
const ARGS: &str = "HOST_CORE_CONFIG_ARGS";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Greeting {
    text: String,
    count: u32,
}

impl Default for Greeting {
    fn default() -> Self {
        Self {
            text: "hello".into(),
            count: 1,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Database {
    password: String,
}

/// Logs the greeting at start and at each change, and a debug and an info
/// line every 50 ms.
#[derive(Injectable)]
struct Greeter {
    greeting: OptionsMonitor<Greeting>,
}

#[async_trait]
impl BackgroundService for Greeter {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let current = self.greeting.current();
        tracing::warn!("greeting={} count={}", current.text, current.count);
        let mut changes = self.greeting.subscribe();
        let mut every = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = ctx.stopping() => return Ok(()),
                Ok(()) = changes.changed() => {
                    let text = changes.borrow_and_update().text.clone();
                    tracing::warn!("greeting changed to {text}");
                }
                _ = every.tick() => {
                    tracing::debug!("debug-tick");
                    tracing::info!("info-tick");
                }
            }
        }
    }
}

/// The host process: runs in the directory a test prepared.
#[test]
fn child() {
    if std::env::var(SCENARIO).is_err() {
        return;
    }
    let args = std::env::var(ARGS).unwrap_or_default();
    let mut builder = Host::builder();
    builder.args(std::iter::once("child").chain(args.split_whitespace()));
    builder
        .configuration()
        .reload_on_change(true)
        .reload_delay(Duration::from_millis(50));
    builder
        .configure::<Greeting>("greeting")
        .validate(|greeting| match greeting.text.as_str() {
            "panic" => panic!("the check's own bug"),
            _ => Ok(()),
        });
    builder
        .configure::<Database>("database")
        .validate(|database| match database.password.len() {
            0 | 8.. => Ok(()),
            _ => Err(ValidationError::key(
                "password",
                "must be at least 8 characters",
            )),
        });
    builder.add_hosted_service::<Greeter>();
    let code = builder.run_blocking();
    host_test::exit_with(code);
}

/// Starts the child in `root` with `files` written there.
fn spawn(root: &Path, files: &[(&str, &str)], env: &[(&str, &str)], args: &str) -> HostProcess {
    for (name, contents) in files {
        std::fs::write(root.join(name), contents).unwrap();
    }
    let mut command = host_test::child_test(SCENARIO, "1");
    command
        .current_dir(root)
        .env(ARGS, args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied());
    HostProcess::spawn(command)
}

fn exit_code(host: &mut HostProcess) -> i32 {
    host.wait_for_exit(Instant::now()).0
}

fn stop(host: &mut HostProcess) {
    host.signal("TERM");
    assert_eq!(exit_code(host), 0, "{}", host.output());
}

#[test]
fn a_malformed_file_exits_2_with_its_line_and_column_before_anything_starts() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn(
        root.path(),
        &[("appsettings.toml", "[greeting]\ntext = \"unterminated\n")],
        &[],
        "",
    );
    assert_eq!(exit_code(&mut host), 2, "{}", host.output());
    let output = host.output();
    let file = root.path().join("appsettings.toml");
    assert!(
        output.contains(&format!(
            "error: invalid configuration: {} is not valid TOML",
            file.display()
        )),
        "{output}"
    );
    assert!(output.contains("at: line 2, column 21"), "{output}");
    assert!(!output.contains("greeting="), "nothing started: {output}");
    assert!(!output.contains("Application started"), "{output}");
}

#[test]
fn a_bad_value_from_an_environment_variable_exits_2_naming_the_variable() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn(root.path(), &[], &[("APP_GREETING__COUNT", "many")], "");
    assert_eq!(exit_code(&mut host), 2, "{}", host.output());
    assert!(
        host.output().contains(
            "error: invalid configuration: `greeting.count` expects a non-negative integer, \
             found \"many\"\n  from: environment variable APP_GREETING__COUNT"
        ),
        "{}",
        host.output()
    );
    assert!(!host.output().contains("greeting="), "{}", host.output());
}

#[test]
fn a_secret_is_never_printed() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn(
        root.path(),
        &[],
        &[("APP_DATABASE__PASSWORD", "hunter2")],
        "",
    );
    assert_eq!(exit_code(&mut host), 2, "{}", host.output());
    let output = host.output();
    assert!(
        output.contains(
            "error: invalid configuration: `database.password` must be at least 8 characters, \
             found [redacted]\n  from: environment variable APP_DATABASE__PASSWORD"
        ),
        "{output}"
    );
    assert!(!output.contains("hunter2"), "{output}");
}

#[test]
fn a_panicking_check_at_build_exits_2_naming_the_section() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn(root.path(), &[], &[("APP_GREETING__TEXT", "panic")], "");
    assert_eq!(exit_code(&mut host), 2, "{}", host.output());
    let output = host.output();
    assert!(
        output.contains(
            "error: invalid configuration: `greeting` panicked in a check of \
             `configuration_process::Greeting`: the check's own bug"
        ),
        "{output}"
    );
    assert!(!output.contains("greeting="), "nothing started: {output}");
}

/// Environment variables for the child.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn each_layer_reaches_the_service_and_the_later_one_wins() {
    let root = tempfile::tempdir().unwrap();
    let files = [
        (
            "appsettings.toml",
            "[greeting]\ntext = \"file\"\ncount = 2\n",
        ),
        (
            "appsettings.Staging.toml",
            "[greeting]\ntext = \"staging\"\n",
        ),
    ];
    let cases: [(Env, &str, &str); 4] = [
        (&[], "", "greeting=file count=2"),
        (&[("APP_GREETING__TEXT", "env")], "", "greeting=env count=2"),
        (
            &[("APP_GREETING__TEXT", "env")],
            "--greeting.text=args --greeting.count 5",
            "greeting=args count=5",
        ),
        (&[], "--environment=Staging", "greeting=staging count=2"),
    ];
    for (env, args, expected) in cases {
        let mut host = spawn(root.path(), &files, env, args);
        host.wait_for("greeting=");
        assert!(
            host.output().contains(expected),
            "{args}: {}",
            host.output()
        );
        stop(&mut host);
    }
}

#[test]
fn a_reload_reaches_the_monitor_and_a_bad_change_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("appsettings.toml");
    let mut host = spawn(
        root.path(),
        &[("appsettings.toml", "[greeting]\ntext = \"one\"\n")],
        &[],
        "",
    );
    host.wait_for("greeting=one");
    host.wait_for("Application started.");
    std::fs::write(&file, "[greeting]\ntext = \"two\"\n").unwrap();
    host.wait_for("greeting changed to two");
    std::fs::write(&file, "[greeting]\ntext = \"bad\"\ncount = \"many\"\n").unwrap();
    host.wait_for("the change is rejected and the last good configuration stays");
    std::fs::write(&file, "[greeting]\ntext = \"three\"\n").unwrap();
    host.wait_for("greeting changed to three");
    let output = host.output();
    assert!(!output.contains("greeting changed to bad"), "{output}");
    assert!(
        output.contains("`greeting.count` expects a non-negative integer, found \"many\""),
        "{output}"
    );
    stop(&mut host);
}

#[test]
fn a_log_level_change_applies_live() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("appsettings.toml");
    let mut host = spawn(
        root.path(),
        &[("appsettings.toml", "[logging.level]\ndefault = \"info\"\n")],
        &[],
        "",
    );
    host.wait_for_times("info-tick", 2);
    assert!(!host.output().contains("debug-tick"), "{}", host.output());
    std::fs::write(&file, "[logging.level]\ndefault = \"debug\"\n").unwrap();
    host.wait_for("debug-tick");
    std::fs::write(
        &file,
        "[logging.level]\ndefault = \"info\"\n\"host_core\" = \"warning\"\n",
    )
    .unwrap();
    // The first reload (to debug) logged the line already: wait for the second.
    host.wait_for_times("reloaded logging", 2);
    let reloaded = host
        .lines()
        .iter()
        .rposition(|line| line.contains("reloaded logging"))
        .unwrap();
    let ticks = host
        .lines()
        .iter()
        .filter(|line| line.contains("info-tick"))
        .count();
    host.wait_for_times("info-tick", ticks + 3);
    // A tick already past the filter when it changed may still print just
    // after the reload line; from the next tick on, debug is off again.
    let first_tick_after = reloaded
        + 1
        + host.lines()[reloaded + 1..]
            .iter()
            .position(|line| line.contains("info-tick"))
            .unwrap();
    let late_debug: Vec<&String> = host.lines()[first_tick_after..]
        .iter()
        .filter(|line| line.contains("debug-tick"))
        .collect();
    assert!(late_debug.is_empty(), "{late_debug:?}");
    stop(&mut host);
}

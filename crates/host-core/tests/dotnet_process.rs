//! A .NET developer's configuration in a real process: a PascalCase
//! `appsettings.json` binds, `DOTNET_ENVIRONMENT` (and
//! `ASPNETCORE_ENVIRONMENT`) select `appsettings.Development.json`, `:`
//! nests on the command line, and a misspelt key is a warning naming it
//! and its file, or exit code 2 when the binding denies unknown keys.
#![cfg(unix)]

use std::path::Path;
use std::time::Instant;

use host_config::OptionsMonitor;
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
use host_di::Injectable;
use host_test::HostProcess;
use serde::Deserialize;

const SCENARIO: &str = "HOST_CORE_DOTNET_SCENARIO";
/// The child's command line, space-separated.
const ARGS: &str = "HOST_CORE_DOTNET_ARGS";

#[derive(Debug, Deserialize)]
#[serde(default)]
struct Greeting {
    message: String,
    count: u32,
}

impl Default for Greeting {
    fn default() -> Self {
        Self {
            message: "default".into(),
            count: 1,
        }
    }
}

/// Logs the greeting it was given, then waits to be stopped.
#[derive(Injectable)]
struct Greeter {
    greeting: OptionsMonitor<Greeting>,
}

#[async_trait]
impl BackgroundService for Greeter {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let greeting = self.greeting.current();
        tracing::warn!("message={} count={}", greeting.message, greeting.count);
        ctx.stopping().await;
        Ok(())
    }
}

/// The host process: `deny` makes the greeting deny unknown keys.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let args = std::env::var(ARGS).unwrap_or_default();
    let mut builder = Host::builder();
    builder.args(std::iter::once("child").chain(args.split_whitespace()));
    let binding = builder.configure::<Greeting>("greeting");
    if scenario == "deny" {
        binding.deny_unknown_keys();
    }
    builder.add_hosted_service::<Greeter>();
    host_test::exit_with(builder.run_blocking());
}

fn spawn(root: &Path, scenario: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> HostProcess {
    spawn_with_args(root, scenario, files, env, "")
}

fn spawn_with_args(
    root: &Path,
    scenario: &str,
    files: &[(&str, &str)],
    env: &[(&str, &str)],
    args: &str,
) -> HostProcess {
    for (name, contents) in files {
        std::fs::write(root.join(name), contents).unwrap();
    }
    let mut command = host_test::child_test(SCENARIO, scenario);
    command
        .current_dir(root)
        .env(ARGS, args)
        .env_remove("RUST_LOG")
        .env_remove("HOST_ENVIRONMENT")
        .env_remove("DOTNET_ENVIRONMENT")
        .env_remove("ASPNETCORE_ENVIRONMENT")
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

const APPSETTINGS: (&str, &str) = (
    "appsettings.json",
    r#"{ "Greeting": { "Message": "from appsettings.json", "Count": 2 } }"#,
);
const DEVELOPMENT: (&str, &str) = (
    "appsettings.Development.json",
    r#"{ "Greeting": { "Message": "from Development" } }"#,
);

#[test]
fn a_pascal_case_appsettings_json_binds() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn(root.path(), "warn", &[APPSETTINGS], &[]);
    host.wait_for("message=");
    assert!(
        host.output()
            .contains("message=from appsettings.json count=2"),
        "{}",
        host.output()
    );
    stop(&mut host);
}

#[test]
fn dotnet_environment_selects_appsettings_development_json() {
    let root = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("DOTNET_ENVIRONMENT", "Development")], "from Development"),
        (
            &[("ASPNETCORE_ENVIRONMENT", "Development")],
            "from Development",
        ),
        // Ours first, then .NET's generic host's.
        (
            &[
                ("HOST_ENVIRONMENT", "Production"),
                ("DOTNET_ENVIRONMENT", "Development"),
            ],
            "from appsettings.json",
        ),
        (
            &[
                ("DOTNET_ENVIRONMENT", "Production"),
                ("ASPNETCORE_ENVIRONMENT", "Development"),
            ],
            "from appsettings.json",
        ),
    ];
    for (env, expected) in cases {
        let mut host = spawn(root.path(), "warn", &[APPSETTINGS, DEVELOPMENT], env);
        host.wait_for("message=");
        assert!(
            host.output()
                .contains(&format!("message={expected} count=2")),
            "{env:?}: {}",
            host.output()
        );
        stop(&mut host);
    }
}

#[test]
fn a_colon_nests_on_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn_with_args(
        root.path(),
        "warn",
        &[APPSETTINGS],
        &[],
        "--Greeting:Count=7",
    );
    host.wait_for("message=");
    assert!(
        host.output()
            .contains("message=from appsettings.json count=7"),
        "{}",
        host.output()
    );
    stop(&mut host);
}

const TYPO: (&str, &str) = (
    "appsettings.json",
    r#"{ "Greeting": { "Mesage": "typo", "Count": 2 } }"#,
);

#[test]
fn a_misspelt_key_is_a_warning_naming_it_and_its_file() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn(root.path(), "warn", &[TYPO], &[]);
    host.wait_for("message=");
    let output = host.output();
    assert!(
        output.contains(
            "`greeting.Mesage` is not a known key and is ignored (`deny_unknown_keys()` on the \
             binding makes it an error); expected one of `count`, `message`\n  from: \
             appsettings.json"
        ),
        "{output}"
    );
    assert!(output.contains("message=default count=2"), "{output}");
    // Logged before the services start.
    let warned = output.find("`greeting.Mesage`").unwrap();
    assert!(warned < output.find("message=default").unwrap(), "{output}");
    stop(&mut host);
}

#[test]
fn a_misspelt_key_exits_2_when_the_binding_denies_unknown_keys() {
    let root = tempfile::tempdir().unwrap();
    let mut host = spawn(root.path(), "deny", &[TYPO], &[]);
    let code = exit_code(&mut host);
    let output = host.output();
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains(
            "error: invalid configuration: `greeting.Mesage` is not a known key; expected one \
             of `count`, `message`\n  from: appsettings.json"
        ),
        "{output}"
    );
    assert!(!output.contains("message="), "nothing started: {output}");
    // Bound with every key known, it starts.
    let mut host = spawn(root.path(), "deny", &[APPSETTINGS], &[]);
    host.wait_for("message=from appsettings.json");
    stop(&mut host);
}

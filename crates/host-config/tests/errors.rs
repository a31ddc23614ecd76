//! The full text of configuration errors: a bad value from a file, a
//! variable or an argument; malformed TOML and JSON files (with line and
//! column); unknown and missing keys; the application's validators; several
//! problems combined; unreadable files; a panicking `Deserialize` or check.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use host_config::{ConfigError, ConfigFile, ConfigurationBuilder, OptionsBinding, ValidationError};

#[derive(Debug, serde::Deserialize)]
struct Worker {
    #[serde(with = "host_config::duration")]
    interval: Duration,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the bindings only
struct Strict {
    name: String,
    #[serde(default)]
    retry: Retry,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the bindings only
struct Retry {
    #[serde(default)]
    limit: u32,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Server {
    host: String,
    port: u16,
}

fn build(
    builder: &mut ConfigurationBuilder,
    jail: &figment::Jail,
) -> Result<host_config::Configuration, figment::Error> {
    Ok(builder
        .build("Production", jail.directory())
        .map_err(|e| e.to_string())?)
}

fn bind_error<T>(
    configuration: &host_config::Configuration,
    binding: OptionsBinding<T>,
) -> ConfigError
where
    T: serde::de::DeserializeOwned + Send + Sync + std::fmt::Debug + 'static,
{
    configuration.bind(binding).expect_err("an invalid section")
}

#[test]
fn a_bad_duration_from_a_file() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[worker]\ninterval = \"fast\"\n")?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Worker>::new("worker"));
        assert!(error.is_invalid());
        assert_eq!(
            error.to_string(),
            "invalid configuration: `worker.interval` expects a duration such as \"5s\", found \
             \"fast\"\n  from: appsettings.toml"
        );
        let [problem] = error.problems() else {
            panic!("one problem: {error}");
        };
        assert_eq!(problem.key(), "worker.interval");
        assert_eq!(
            problem.message(),
            "expects a duration such as \"5s\", found \"fast\""
        );
        assert_eq!(problem.origin(), Some("appsettings.toml"));
        Ok(())
    });
}

#[test]
fn a_bad_duration_from_the_environments_file_names_it() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[worker]\ninterval = \"5s\"\n")?;
        jail.create_file(
            "appsettings.Production.json",
            r#"{ "worker": { "interval": 5 } }"#,
        )?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Worker>::new("worker"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `worker.interval` expects a duration such as \"5s\", found \
             5\n  from: appsettings.Production.json"
        );
        Ok(())
    });
}

#[test]
fn a_bad_duration_from_an_environment_variable() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[errenv]\ninterval = \"5s\"\n")?;
        jail.set_env("APP_ERRENV__INTERVAL", "fast");
        let configuration = build(&mut ConfigurationBuilder::new(), jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Worker>::new("errenv"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `errenv.interval` expects a duration such as \"5s\", found \
             \"fast\"\n  from: environment variable APP_ERRENV__INTERVAL"
        );
        Ok(())
    });
}

#[test]
fn a_bad_duration_from_a_custom_prefixed_variable() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("BILLING_ERRPRE__INTERVAL", "slow");
        let configuration = build(ConfigurationBuilder::new().env_prefix("BILLING_"), jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Worker>::new("errpre"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `errpre.interval` expects a duration such as \"5s\", found \
             \"slow\"\n  from: environment variable BILLING_ERRPRE__INTERVAL"
        );
        Ok(())
    });
}

#[test]
fn a_bad_duration_from_the_command_line() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder
            .without_env()
            .args(["app", "--worker.interval", "fast"]);
        let configuration = build(&mut builder, jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Worker>::new("worker"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `worker.interval` expects a duration such as \"5s\", found \
             \"fast\"\n  from: command-line argument --worker.interval"
        );
        // A number is not a duration: durations carry their unit.
        builder.args(["app", "--worker.interval=5"]);
        let configuration = build(&mut builder, jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Worker>::new("worker"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `worker.interval` expects a duration such as \"5s\", found \
             \"5\"\n  from: command-line argument --worker.interval"
        );
        Ok(())
    });
}

#[test]
fn get_names_the_key_of_a_single_value() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[server]\nport = 70000\nhost = 5\n")?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let error = configuration
            .get::<u16>("server.port")
            .expect_err("too big");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `server.port` expects an integer from 0 to 65535, found \
             70000\n  from: appsettings.toml"
        );
        let error = configuration
            .get::<String>("server.host")
            .expect_err("a number");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `server.host` expects a string, found 5\n  from: \
             appsettings.toml"
        );
        let error = configuration
            .get::<u32>("server.missing")
            .expect_err("unset");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `server.missing` is required (a non-negative integer), and \
             no source sets it"
        );
        Ok(())
    });
}

#[test]
fn a_malformed_toml_file_names_its_line_and_column() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            "[worker]\ninterval = \"5s\nname = \"x\"\n",
        )?;
        let error = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .expect_err("an unterminated string");
        let path = jail.directory().join("appsettings.toml");
        assert!(error.is_malformed());
        assert!(!error.is_invalid() && !error.is_argument());
        assert!(error.problems().is_empty());
        assert_eq!(error.file(), Some(path.as_path()));
        assert_eq!(error.line_column(), Some((2, 15)));
        assert_eq!(
            error.to_string(),
            format!(
                "invalid configuration: {} is not valid TOML: invalid basic string, expected \
                 `\"`\n  at: line 2, column 15",
                path.display()
            )
        );

        jail.create_file("appsettings.toml", "[worker]\n\ninterval 5\n")?;
        let error = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .expect_err("no `=`");
        assert_eq!(error.line_column(), Some((3, 10)));
        assert_eq!(
            error.to_string(),
            format!(
                "invalid configuration: {} is not valid TOML: key with no value, expected `=`\n  \
                 at: line 3, column 10",
                path.display()
            )
        );
        Ok(())
    });
}

#[test]
fn a_malformed_json_file_names_its_line_and_column() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.Staging.json",
            "{\n  \"worker\": {\"interval\": \"5s\",}\n}",
        )?;
        let error = ConfigurationBuilder::new()
            .build("Staging", jail.directory())
            .expect_err("a trailing comma");
        let path = jail.directory().join("appsettings.Staging.json");
        assert!(error.is_malformed());
        assert_eq!(error.file(), Some(path.as_path()));
        assert_eq!(error.line_column(), Some((2, 31)));
        assert_eq!(
            error.to_string(),
            format!(
                "invalid configuration: {} is not valid JSON: trailing comma\n  at: line 2, \
                 column 31",
                path.display()
            )
        );
        Ok(())
    });
}

#[test]
fn a_missing_required_file_cannot_be_read() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.add_file(ConfigFile::new("conf/required.toml"));
        let error = builder
            .build("Production", jail.directory())
            .expect_err("missing");
        let path = jail.directory().join("conf/required.toml");
        assert_eq!(error.file(), Some(path.as_path()));
        assert_eq!(error.line_column(), None);
        assert!(!error.is_malformed() && !error.is_invalid() && !error.is_argument());
        let source = std::error::Error::source(&error).expect("the io error");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(
            error.to_string(),
            format!(
                "invalid configuration: cannot read {}: {io}",
                path.display()
            )
        );
        Ok(())
    });
}

#[test]
fn a_file_of_unknown_format_is_refused() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.add_file(ConfigFile::new("settings.yaml").optional());
        let error = builder
            .build("Production", jail.directory())
            .expect_err("yaml");
        assert_eq!(
            error.to_string(),
            format!(
                "invalid configuration: cannot read {}: unknown format: name the file .toml or \
                 .json, or set ConfigFile::format",
                jail.directory().join("settings.yaml").display()
            )
        );
        Ok(())
    });
}

#[test]
fn an_unknown_key_is_named_with_the_keys_expected() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[strict]\nname = \"a\"\nnmae = \"b\"\n")?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Strict>::new("strict"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `strict.nmae` is not a known key; expected one of `name`, \
             `retry`\n  from: appsettings.toml"
        );

        // Nested, and from a variable.
        jail.create_file("appsettings.toml", "[strict]\nname = \"a\"\n")?;
        jail.set_env("APP_STRICT__RETRY__LIMTI", "3");
        let configuration = build(&mut ConfigurationBuilder::new(), jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Strict>::new("strict"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `strict.retry.limti` is not a known key; expected `limit`\n  \
             from: environment variable APP_STRICT__RETRY__LIMTI"
        );
        Ok(())
    });
}

#[test]
fn a_missing_required_key_is_named() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[server]\nport = 80\n")?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let error = bind_error(&configuration, OptionsBinding::<Server>::new("server"));
        assert_eq!(
            error.to_string(),
            "invalid configuration: `server.host` is required, and no source sets it"
        );
        assert_eq!(error.problems()[0].origin(), None);

        // A section no source mentions at all: every required key.
        let error = bind_error(
            &configuration,
            OptionsBinding::<Server>::new("nowhere.server"),
        );
        assert_eq!(
            error.to_string(),
            "invalid configuration: 2 invalid values\n  `nowhere.server.host` is required, and \
             no source sets it\n  `nowhere.server.port` is required, and no source sets it"
        );
        Ok(())
    });
}

#[test]
fn a_validator_names_the_value_and_its_source() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[worker]\ninterval = \"5ms\"\n")?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let mut binding = OptionsBinding::<Worker>::new("worker");
        binding.validate(|worker| {
            if worker.interval < Duration::from_millis(10) {
                return Err(ValidationError::key("interval", "must be at least 10ms"));
            }
            Ok(())
        });
        let error = bind_error(&configuration, binding.clone());
        assert!(error.is_invalid());
        assert_eq!(
            error.to_string(),
            "invalid configuration: `worker.interval` must be at least 10ms, found \"5ms\"\n  \
             from: appsettings.toml"
        );

        // The same check passes a good value.
        let mut builder = ConfigurationBuilder::new();
        builder
            .without_env()
            .args(["app", "--worker.interval=20ms"]);
        let configuration = build(&mut builder, jail)?;
        let worker = configuration.bind(binding).map_err(|e| e.to_string())?;
        assert_eq!(worker.current().interval, Duration::from_millis(20));
        Ok(())
    });
}

#[test]
fn a_validator_about_the_whole_section_names_the_section() {
    #[derive(Debug, serde::Deserialize)]
    struct Range {
        low: u32,
        high: u32,
    }

    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_RANGE__LOW", "9");
        jail.set_env("APP_RANGE__HIGH", "3");
        let configuration = build(&mut ConfigurationBuilder::new(), jail)?;
        let mut binding = OptionsBinding::<Range>::new("range");
        binding.validate(|range| match range.low <= range.high {
            true => Ok(()),
            false => Err(ValidationError::new("`low` must not exceed `high`")),
        });
        binding.validate(|range| match range.high >= 5 {
            true => Ok(()),
            false => Err(ValidationError::key("high", "must be at least 5")),
        });
        let error = bind_error(&configuration, binding);
        assert_eq!(
            error.to_string(),
            "invalid configuration: 2 invalid values\n  `range` `low` must not exceed `high`\n  \
             `range.high` must be at least 5, found \"3\"\n    from: environment variable \
             APP_RANGE__HIGH"
        );
        assert_eq!(error.problems()[0].key(), "range");
        assert_eq!(error.problems()[0].origin(), None);
        Ok(())
    });
}

#[test]
fn several_bindings_combine_into_one_error() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            "[worker]\ninterval = \"fast\"\n[server]\nport = 80\n[strict]\nname = \"a\"\nextra = 1\n",
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env().args(["app", "--fine.interval=1s"]);
        let configuration = build(&mut builder, jail)?;

        let errors = [
            configuration
                .bind(OptionsBinding::<Worker>::new("worker"))
                .err(),
            configuration
                .bind(OptionsBinding::<Worker>::new("fine"))
                .err(),
            configuration
                .bind(OptionsBinding::<Server>::new("server"))
                .err(),
            configuration
                .bind(OptionsBinding::<Strict>::new("strict"))
                .err(),
        ];
        let error = ConfigError::combine(errors.into_iter().flatten()).expect("three failed");
        assert_eq!(
            error.to_string(),
            "invalid configuration: 3 invalid values\n  `worker.interval` expects a duration \
             such as \"5s\", found \"fast\"\n    from: appsettings.toml\n  `server.host` is \
             required, and no source sets it\n  `strict.extra` is not a known key; expected one \
             of `name`, `retry`\n    from: appsettings.toml"
        );
        let keys: Vec<&str> = error
            .problems()
            .iter()
            .map(|problem| problem.key())
            .collect();
        assert_eq!(keys, ["worker.interval", "server.host", "strict.extra"]);
        assert!(ConfigError::combine(std::iter::empty()).is_none());
        Ok(())
    });
}

#[test]
fn a_file_error_wins_when_combined() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[worker]\ninterval = \"fast\"\n")?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let invalid = bind_error(&configuration, OptionsBinding::<Worker>::new("worker"));
        let mut builder = ConfigurationBuilder::new();
        builder.add_file(ConfigFile::new("absent.json"));
        let unreadable = builder
            .build("Production", jail.directory())
            .expect_err("missing");
        let error = ConfigError::combine([invalid, unreadable]).expect("an error");
        assert_eq!(
            error.file(),
            Some(jail.directory().join("absent.json").as_path())
        );
        assert!(error.problems().is_empty());
        Ok(())
    });
}

/// Panics when it reads `boom`.
fn fragile<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    assert!(text != "boom", "the deserializer's own bug");
    Ok(text)
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Fragile {
    #[serde(deserialize_with = "fragile")]
    text: String,
}

#[test]
fn a_panic_while_binding_is_a_problem_of_the_section() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        directory.path().join("appsettings.toml"),
        "[fragile]\ntext = \"boom\"\n[checked]\ntext = \"fine\"\n[creds]\npassword = \"hunter2\"\n",
    )
    .expect("write");
    let mut builder = ConfigurationBuilder::new();
    builder.without_env();
    let configuration = builder
        .build("Production", directory.path())
        .expect("valid");

    let error = configuration
        .bind(OptionsBinding::<Fragile>::new("fragile"))
        .expect_err("the deserializer panics");
    assert!(error.is_invalid());
    assert_eq!(error.problems()[0].key(), "fragile");
    assert_eq!(
        error.to_string(),
        "invalid configuration: `fragile` panicked while being read as `errors::Fragile`: the \
         deserializer's own bug"
    );
    let error = configuration
        .get::<Fragile>("fragile")
        .expect_err("the deserializer panics");
    assert_eq!(error.problems()[0].key(), "fragile");

    // Every check runs: the panicking one and the failing one are both reported.
    let mut binding = OptionsBinding::<Fragile>::new("checked");
    binding
        .validate(|_| panic!("the check's own bug"))
        .validate(|_| Err(ValidationError::key("text", "is refused")));
    let error = configuration.bind(binding).expect_err("the check panics");
    assert_eq!(
        error.to_string(),
        "invalid configuration: 2 invalid values\n  `checked` panicked in a check of \
         `errors::Fragile`: the check's own bug\n  `checked.text` is refused, found \"fine\"\n    from: \
         appsettings.toml"
    );

    // A panic's message may quote a secret: it is withheld for a section holding one.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by the binding only
    struct Credentials {
        password: String,
    }
    let mut binding = OptionsBinding::<Credentials>::new("creds");
    binding.validate(|creds| panic!("cannot use {}", creds.password));
    let error = configuration.bind(binding).expect_err("the check panics");
    assert_eq!(
        error.to_string(),
        "invalid configuration: `creds` panicked in a check of \
         `errors::a_panic_while_binding_is_a_problem_of_the_section::Credentials` (the message \
         is withheld: the section holds a secret)"
    );
}

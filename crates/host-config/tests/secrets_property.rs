//! A property: whatever shape a secret arrives in (a file, well-formed or
//! not; an environment variable; command-line arguments, stray ones
//! included) and whatever type it is bound to, loading and binding never
//! panic, and no error's `Display` or `Debug` holds the secret's text.
//!
//! The seed is fixed so that every run checks the same cases; set
//! `PROPTEST_RNG_SEED` (and `PROPTEST_CASES`) to explore others. A failing
//! case is printed, shrunk, and kept under `proptest-regressions/`.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use host_config::{ConfigError, ConfigurationBuilder, OptionsBinding, ValidationError};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Keys named like secrets, as a file spells them, and as an environment
/// variable does (after `APP_SEC__`).
const SECRET_KEYS: [(&str, &str); 11] = [
    ("password", "PASSWORD"),
    ("db_password", "DB_PASSWORD"),
    ("apiKey", "APIKEY"),
    ("api-key", "API_KEY"),
    ("token", "TOKEN"),
    ("clientSecret", "CLIENT_SECRET"),
    ("ConnectionString", "CONNECTIONSTRING"),
    ("dsn", "DSN"),
    ("credentials", "CREDENTIALS"),
    ("passwd", "PASSWD"),
    ("secret_key", "SECRET_KEY"),
];

/// What may follow the secret's text: quotes, separators, URL characters.
const TAILS: [&str; 9] = ["", " tail", "\"", "@x", ":y/z", "#c", "=", "\\", "]"];

/// A file's line for the key `k` holding `v`, well-formed or not.
fn toml_shape(shape: usize, k: &str, v: &str) -> String {
    match shape {
        0 => format!("{k} = \"{v}\"\n"),
        1 => format!("{k} = \"{v}\n"),
        2 => format!("{k} = {v}\n"),
        3 => format!("{k} = [\"{v}\", 1]\n"),
        4 => format!("{k} = {{ inner = \"{v}\" }}\n"),
        5 => format!("{k} = \"\"\"{v}\n"),
        6 => format!("{k} = '{v}'\n"),
        7 => format!("{k} = \"{v}\"\n{k} = \"{v}\"\n"),
        8 => format!("{k} = \"postgres://user:{v}@db/app\"\n"),
        9 => format!("url = \"postgres://user:{v}@db/app\"\n"),
        10 => format!("{k} = \"{v}\" trailing {v}\n"),
        11 => format!("{k} = [[\"{v}\"]]\n"),
        _ => format!("{k} = {{ {v} }}\n"),
    }
}
const TOML_SHAPES: usize = 13;

/// A JSON file for the key `k` holding `v`, well-formed or not.
fn json_shape(shape: usize, k: &str, v: &str) -> String {
    let quoted = serde_json::to_string(v).expect("a string");
    match shape {
        0 => format!("{{\"sec\": {{\"{k}\": {quoted}}}}}"),
        1 => format!("{{\"sec\": {{\"{k}\": {v}}}}}"),
        2 => format!("{{\"sec\": {{\"{k}\": \"{v}}}}}"),
        _ => format!("{{\"sec\": {{\"{k}\": [{quoted}, {{\"x\": {quoted}}}]}}}}"),
    }
}
const JSON_SHAPES: usize = 4;

/// Command-line arguments carrying `v` for the key `k`.
fn arg_shape(shape: usize, k: &str, v: &str) -> Vec<String> {
    let list: Vec<String> = match shape {
        0 => vec![format!("--sec.{k}={v}")],
        1 => vec![format!("--sec.{k}="), v.to_owned()],
        2 => vec![format!("--sec.{k}"), v.to_owned()],
        3 => vec![format!("-sec.{k}={v}")],
        4 => vec![format!("--sec..{k}={v}")],
        5 => vec![format!("sec.{k}={v}")],
        6 => vec![format!("--sec.url=postgres://user:{v}@db/app")],
        7 => vec![format!("--sec.{k}="), "x".into(), v.to_owned()],
        8 => vec![format!("--sec.{k}=[{v}")],
        9 => vec![format!("--sec.{k}"), v.to_owned(), v.to_owned()],
        _ => vec![format!("--sec.{k}={{{v}")],
    };
    std::iter::once("app".to_owned()).chain(list).collect()
}
const ARG_SHAPES: usize = 11;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Inner {
    inner: u16,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // read by the bindings only
enum Mode {
    On,
    Off,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Flat {
    #[serde(flatten)]
    values: BTreeMap<String, u16>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the bindings only
struct Strict {
    name: String,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Human(#[serde(with = "host_config::duration")] Duration);

/// Every error the configuration gives when `sec` (and `sec.{key}`) is
/// bound to types that do not fit.
fn errors_of(configuration: &host_config::Configuration, key: &str) -> Vec<ConfigError> {
    let full = format!("sec.{key}");
    let mut checked = OptionsBinding::<BTreeMap<String, String>>::new("sec");
    checked.validate({
        let key = key.to_owned();
        move |values| match values.get(&key) {
            Some(value) => Err(ValidationError::key(
                key.clone(),
                format!("refuses {value}"),
            )),
            None => Ok(()),
        }
    });
    [
        configuration.get::<u16>(&full).err(),
        configuration.get::<bool>(&full).err(),
        configuration.get::<Vec<u8>>(&full).err(),
        configuration.get::<Inner>(&full).err(),
        configuration.get::<Mode>(&full).err(),
        configuration.get::<Option<f64>>(&full).err(),
        configuration.get::<u16>("sec.url").err(),
        configuration.get::<String>("sec").err(),
        configuration
            .bind(OptionsBinding::<BTreeMap<String, u16>>::new("sec"))
            .err(),
        configuration
            .bind(OptionsBinding::<BTreeMap<String, Mode>>::new("sec"))
            .err(),
        configuration.bind(OptionsBinding::<Flat>::new("sec")).err(),
        configuration
            .bind(OptionsBinding::<Strict>::new("sec"))
            .err(),
        configuration
            .bind(OptionsBinding::<BTreeMap<String, Human>>::new("sec"))
            .err(),
        configuration.bind(checked).err(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn assert_hidden(secret: &str, error: &ConfigError, case: &str) {
    let shown = error.to_string();
    let debug = format!("{error:?}");
    assert!(
        !shown.contains(secret),
        "{case}: the secret leaked: {shown}"
    );
    assert!(
        !debug.contains(secret),
        "{case}: the secret leaked: {debug}"
    );
    assert!(
        !shown.contains("panicked"),
        "{case}: loading panicked: {shown}"
    );
}

fn config() -> Config {
    let mut config = Config {
        // Under a second in a debug build.
        cases: 512,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config.cases = Config::default().cases;
    }
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(0x5EC2_E75E_C2E7);
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_secret_escapes_an_error(
        core in "[a-z0-9]{6,10}",
        tail in 0..TAILS.len(),
        key in 0..SECRET_KEYS.len(),
        file in proptest::option::of((any::<bool>(), 0..TOML_SHAPES.max(JSON_SHAPES))),
        env in proptest::option::of(0..4usize),
        args in proptest::option::of(0..ARG_SHAPES),
    ) {
        // A marker no message holds by chance.
        let secret = format!("zq{core}");
        let value = format!("{secret}{}", TAILS[tail]);
        let (file_key, env_key) = SECRET_KEYS[key];
        let case = format!("value {value:?}, key {file_key}, file {file:?}, env {env:?}, args {args:?}");
        figment::Jail::expect_with(|jail| {
            if let Some((toml, shape)) = file {
                if toml {
                    let text = toml_shape(shape % TOML_SHAPES, file_key, &value);
                    jail.create_file("appsettings.toml", &format!("[sec]\n{text}"))?;
                } else {
                    let text = json_shape(shape % JSON_SHAPES, file_key, &value);
                    jail.create_file("appsettings.json", &text)?;
                }
            }
            match env {
                Some(0) => jail.set_env(format!("APP_SEC__{env_key}"), &value),
                Some(1) => jail.set_env(format!("APP_SEC__{env_key}"), format!("[{value}")),
                Some(2) => jail.set_env(format!("APP_SEC__{env_key}"), format!("{{a={value}")),
                Some(_) => jail.set_env("APP_SEC__URL", format!("redis://:{value}@cache")),
                None => {}
            }
            let mut builder = ConfigurationBuilder::new();
            if let Some(shape) = args {
                builder.args(arg_shape(shape, file_key, &value));
            }
            let shown = format!("{builder:?}");
            assert!(!shown.contains(&secret), "{case}: {shown}");
            match builder.build("Production", jail.directory()) {
                Err(error) => assert_hidden(&secret, &error, &case),
                Ok(configuration) => {
                    let shown = format!("{configuration:?}");
                    assert!(!shown.contains(&secret), "{case}: {shown}");
                    for error in errors_of(&configuration, file_key) {
                        assert_hidden(&secret, &error, &case);
                    }
                }
            }
            Ok(())
        });
    }
}

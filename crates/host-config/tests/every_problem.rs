//! Every problem of a section at once: two bad values, two missing keys, a
//! bad value and a missing key, nested sections, enums, and unknown keys of
//! a type that refuses them, each with its source.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use host_config::{ConfigError, ConfigurationBuilder, OptionsBinding};

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Server {
    host: String,
    port: u16,
    #[serde(with = "host_config::duration")]
    timeout: Duration,
    enabled: bool,
    mode: Mode,
    database: Database,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Fast,
    Safe,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Database {
    url: String,
    pool: u32,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the bindings only
struct Strict {
    name: String,
    count: u32,
}

fn problems<T>(files: &str, section: &str) -> Result<Vec<String>, figment::Error>
where
    T: serde::de::DeserializeOwned + Send + Sync + std::fmt::Debug + 'static,
{
    let mut shown = Vec::new();
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", files)?;
        let configuration = ConfigurationBuilder::new()
            .without_env()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error: ConfigError = configuration
            .bind(OptionsBinding::<T>::new(section))
            .expect_err("an invalid section");
        assert!(error.is_invalid(), "{error}");
        shown = error.problems().iter().map(ToString::to_string).collect();
        Ok(())
    });
    Ok(shown)
}

const COMPLETE_DATABASE: &str = "[server.database]\nurl = \"x\"\npool = 1\n";

#[test]
fn two_bad_values_in_one_section_are_both_reported() -> Result<(), figment::Error> {
    let files = format!(
        "[server]\nhost = \"h\"\nport = 70000\ntimeout = \"fast\"\nenabled = true\n\
         mode = \"fast\"\n{COMPLETE_DATABASE}"
    );
    assert_eq!(
        problems::<Server>(&files, "server")?,
        [
            "`server.port` expects an integer from 0 to 65535, found 70000\n  from: appsettings.toml",
            "`server.timeout` expects a duration such as \"5s\", found \"fast\"\n  from: \
             appsettings.toml",
        ]
    );
    Ok(())
}

#[test]
fn two_missing_keys_are_both_reported() -> Result<(), figment::Error> {
    let files =
        format!("[server]\nport = 80\nenabled = true\nmode = \"safe\"\n{COMPLETE_DATABASE}");
    assert_eq!(
        problems::<Server>(&files, "server")?,
        [
            "`server.host` is required, and no source sets it",
            "`server.timeout` is required, and no source sets it",
        ]
    );
    Ok(())
}

#[test]
fn a_bad_value_and_a_missing_key_are_both_reported() -> Result<(), figment::Error> {
    let files = format!(
        "[server]\nhost = \"h\"\nport = \"eighty\"\ntimeout = \"1s\"\nmode = \"safe\"\n\
         {COMPLETE_DATABASE}"
    );
    assert_eq!(
        problems::<Server>(&files, "server")?,
        [
            "`server.port` expects an integer from 0 to 65535, found \"eighty\"\n  from: \
             appsettings.toml",
            "`server.enabled` is required, and no source sets it",
        ]
    );
    Ok(())
}

#[test]
fn problems_of_every_kind_and_depth_are_all_reported() -> Result<(), figment::Error> {
    // A bad enum, a bad boolean, a missing table's keys, and nothing else set.
    let files = "[server]\nmode = \"loud\"\nenabled = \"maybe\"\n";
    assert_eq!(
        problems::<Server>(files, "server")?,
        [
            "`server.enabled` expects a boolean, found \"maybe\"\n  from: appsettings.toml",
            "`server.mode` expects one of `fast`, `safe`, found \"loud\"\n  from: appsettings.toml",
            "`server.host` is required, and no source sets it",
            "`server.port` is required, and no source sets it",
            "`server.timeout` is required, and no source sets it",
            "`server.database` is required, and no source sets it",
        ]
    );
    // Within a nested table: its own missing and bad keys.
    let files = "[server]\nhost = \"h\"\nport = 1\ntimeout = \"1s\"\nenabled = true\n\
                 mode = \"safe\"\n[server.database]\npool = -1\n";
    assert_eq!(
        problems::<Server>(files, "server")?,
        [
            "`server.database.pool` expects a non-negative integer, found -1\n  from: \
             appsettings.toml",
            "`server.database.url` is required, and no source sets it",
        ]
    );
    Ok(())
}

#[test]
fn unknown_keys_of_a_type_that_refuses_them_are_all_reported() -> Result<(), figment::Error> {
    let files = "[strict]\nnmae = \"x\"\ncount = \"many\"\ncuont = 2\n";
    assert_eq!(
        problems::<Strict>(files, "strict")?,
        [
            "`strict.count` expects a non-negative integer, found \"many\"\n  from: \
             appsettings.toml",
            "`strict.cuont` is not a known key; expected one of `name`, `count`\n  from: \
             appsettings.toml",
            "`strict.nmae` is not a known key; expected one of `name`, `count`\n  from: \
             appsettings.toml",
            "`strict.name` is required, and no source sets it",
        ]
    );
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Pool {
    members: Vec<Member>,
    weights: Vec<u8>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // read by the bindings only
struct Member {
    host: String,
    port: u16,
}

#[test]
fn problems_in_several_items_of_a_list_are_all_reported() -> Result<(), figment::Error> {
    let files = "[pool]\nweights = [1, 300, -1]\n[[pool.members]]\nport = 70000\n\
                 [[pool.members]]\nhost = \"b\"\nport = \"x\"\n";
    assert_eq!(
        problems::<Pool>(files, "pool")?,
        [
            "`pool.members.0.port` expects an integer from 0 to 65535, found 70000\n  from: \
             appsettings.toml",
            "`pool.members.0.host` is required, and no source sets it",
            "`pool.members.1.port` expects an integer from 0 to 65535, found \"x\"\n  from: \
             appsettings.toml",
            "`pool.weights.1` expects an integer from 0 to 255, found 300\n  from: \
             appsettings.toml",
            "`pool.weights.2` expects an integer from 0 to 255, found -1\n  from: \
             appsettings.toml",
        ]
    );
    Ok(())
}

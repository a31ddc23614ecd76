//! What a .NET developer brings is accepted: sections and keys in any case
//! (PascalCase `appsettings.json`), `:` on the command line, `__`
//! variables without the prefix when asked for, an argument alias; or
//! refused loudly: one source spelling a key twice, and a key no field
//! takes (a warning naming it and its source, an error when the binding
//! denies unknown keys).

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use host_config::{CONFIGURATION_TARGET, Configuration, ConfigurationBuilder, OptionsBinding};
use tracing_subscriber::layer::{Context, SubscriberExt};

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
struct Greeting {
    message: String,
    count: u32,
    retry: Retry,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
struct Retry {
    limit: u32,
}

impl Default for Greeting {
    fn default() -> Self {
        Self {
            message: "hello".into(),
            count: 1,
            retry: Retry::default(),
        }
    }
}

fn build(
    builder: &mut ConfigurationBuilder,
    jail: &figment::Jail,
) -> Result<Configuration, figment::Error> {
    Ok(builder
        .build("Production", jail.directory())
        .map_err(|e| e.to_string())?)
}

fn greeting(configuration: &Configuration) -> Result<Greeting, figment::Error> {
    let monitor = configuration
        .bind(OptionsBinding::<Greeting>::new("greeting"))
        .map_err(|e| e.to_string())?;
    Ok(Greeting::clone(&monitor.current()))
}

#[test]
fn a_pascal_case_appsettings_json_binds_to_snake_case_fields() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.json",
            r#"{ "Greeting": { "Message": "from json", "Count": 3, "Retry": { "LIMIT": 4 } } }"#,
        )?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        assert_eq!(
            greeting(&configuration)?,
            Greeting {
                message: "from json".into(),
                count: 3,
                retry: Retry { limit: 4 }
            }
        );
        assert_eq!(
            configuration
                .get::<u32>("GREETING.count")
                .map_err(|e| e.to_string())?,
            3
        );
        Ok(())
    });
}

#[test]
fn later_layers_override_whatever_the_case_and_errors_name_the_source() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.json",
            r#"{ "Greeting": { "Message": "from json", "Count": 3 } }"#,
        )?;
        jail.set_env("APP_GREETING__MESSAGE", "from the environment");
        let mut builder = ConfigurationBuilder::new();
        builder.args(["app", "--GREETING:RETRY:LIMIT=5"]);
        let configuration = build(&mut builder, jail)?;
        // Each key from the layer that set it last, whatever its case.
        let bound = greeting(&configuration)?;
        assert_eq!(bound.message, "from the environment");
        assert_eq!(bound.count, 3);
        assert_eq!(bound.retry.limit, 5);

        jail.set_env("APP_GREETING__COUNT", "many");
        let configuration = build(&mut ConfigurationBuilder::new(), jail)?;
        let error = configuration
            .bind(OptionsBinding::<Greeting>::new("greeting"))
            .expect_err("not a number");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `greeting.count` expects a non-negative integer, found \
             \"many\"\n  from: environment variable APP_GREETING__COUNT"
        );
        Ok(())
    });
}

#[test]
fn a_pascal_case_section_reloads() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.json", r#"{ "Greeting": { "Message": "a" } }"#)?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let monitor = configuration
            .bind(OptionsBinding::<Greeting>::new("greeting"))
            .map_err(|e| e.to_string())?;
        jail.create_file("appsettings.json", r#"{ "Greeting": { "Message": "b" } }"#)?;
        assert_eq!(
            configuration.reload().map_err(|e| e.to_string())?,
            ["greeting"]
        );
        assert_eq!(monitor.current().message, "b");
        Ok(())
    });
}

#[test]
fn a_colon_nests_on_the_command_line_and_the_argument_is_named_as_written() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.without_env().args([
            "app",
            "--Greeting:Message=from args",
            "--Greeting:Retry:Limit=2",
        ]);
        let configuration = build(&mut builder, jail)?;
        let bound = greeting(&configuration)?;
        assert_eq!(bound.message, "from args");
        assert_eq!(bound.retry.limit, 2);

        builder.args(["app", "--Greeting:Count=many"]);
        let configuration = build(&mut builder, jail)?;
        let error = configuration
            .bind(OptionsBinding::<Greeting>::new("greeting"))
            .expect_err("not a number");
        assert_eq!(
            error.problems()[0].origin(),
            Some("command-line argument --Greeting:Count")
        );
        Ok(())
    });
}

#[test]
fn unprefixed_variables_nest_with_double_underscores_when_asked_for() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("Greeting__Message", "unprefixed");
        jail.set_env("Greeting__Count", "many");
        jail.set_env("APP_GREETING__RETRY__LIMIT", "7");
        // Off by default.
        let configuration = build(&mut ConfigurationBuilder::new(), jail)?;
        assert_eq!(greeting(&configuration)?.message, "hello");

        let mut builder = ConfigurationBuilder::new();
        builder.unprefixed_environment(true);
        let configuration = build(&mut builder, jail)?;
        let error = configuration
            .bind(OptionsBinding::<Greeting>::new("greeting"))
            .expect_err("not a number");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `greeting.count` expects a non-negative integer, found \
             \"many\"\n  from: environment variable Greeting__Count"
        );
        jail.set_env("Greeting__Count", "2");
        // The prefixed variable wins over the unprefixed one.
        jail.set_env("APP_GREETING__COUNT", "3");
        let configuration = build(&mut builder, jail)?;
        let bound = greeting(&configuration)?;
        assert_eq!(
            (bound.message.as_str(), bound.count, bound.retry.limit),
            ("unprefixed", 3, 7)
        );
        // Without environment variables, none are read.
        builder.without_env();
        let configuration = build(&mut builder, jail)?;
        assert_eq!(greeting(&configuration)?.message, "hello");
        Ok(())
    });
}

#[test]
fn an_argument_alias_sets_its_key() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder
            .without_env()
            .argument_alias("message", "greeting.message")
            .args(["app", "--Message=aliased"]);
        let configuration = build(&mut builder, jail)?;
        assert_eq!(greeting(&configuration)?.message, "aliased");
        Ok(())
    });
}

#[test]
fn one_file_spelling_a_key_twice_is_an_error_naming_both() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.json",
            r#"{ "Greeting": { "Message": "a" }, "greeting": { "count": 2 } }"#,
        )?;
        let error = ConfigurationBuilder::new()
            .without_env()
            .build("Production", jail.directory())
            .expect_err("two spellings");
        assert!(error.is_invalid());
        assert_eq!(
            error.to_string(),
            "invalid configuration: `Greeting` and `greeting` are both set, and keys match in \
             any case: keep one\n  from: appsettings.json"
        );
        Ok(())
    });
}

#[test]
fn tracing_targets_under_logging_level_keep_their_case() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.json",
            r#"{ "Logging": { "Level": { "App::Worker": "debug", "app::worker": "warn" } } }"#,
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder
            .without_env()
            .args(["app", "--logging:level:App::Worker=trace"]);
        let configuration = build(&mut builder, jail)?;
        let levels: std::collections::BTreeMap<String, String> = configuration
            .get("logging.level")
            .map_err(|e| e.to_string())?;
        assert_eq!(
            levels.into_iter().collect::<Vec<_>>(),
            [
                ("App::Worker".to_owned(), "trace".to_owned()),
                ("app::worker".to_owned(), "warn".to_owned())
            ]
        );
        Ok(())
    });
}

/// The configuration warnings logged while `run` runs.
fn warnings(run: impl FnOnce()) -> Vec<String> {
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        let _ = write!(self.0, "{value:?}");
                    }
                }
            }
            let metadata = event.metadata();
            if metadata.target() == CONFIGURATION_TARGET
                && *metadata.level() == tracing::Level::WARN
            {
                let mut text = String::new();
                event.record(&mut Message(&mut text));
                self.0.lock().expect("unpoisoned").push(text);
            }
        }
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture(lines.clone()));
    tracing::subscriber::with_default(subscriber, run);
    lines.lock().expect("unpoisoned").clone()
}

#[test]
fn an_unknown_key_is_a_warning_naming_it_and_its_source() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.json",
            r#"{ "Greeting": { "Mesage": "typo", "Retry": { "limt": 2 } } }"#,
        )?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let mut bound = None;
        let logged = warnings(|| bound = Some(greeting(&configuration)));
        assert_eq!(bound.expect("ran")?.message, "hello");
        assert_eq!(
            logged,
            [
                "`greeting.Mesage` is not a known key and is ignored (`deny_unknown_keys()` on \
                 the binding makes it an error); expected one of `count`, `message`, `retry`\n  \
                 from: appsettings.json",
                "`greeting.retry.limt` is not a known key and is ignored (`deny_unknown_keys()` \
                 on the binding makes it an error); expected `limit`\n  from: appsettings.json",
            ]
        );
        // The same, for a host that logs them once its subscriber is in place.
        let kept: Vec<String> = configuration
            .unknown_keys()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(kept, logged);
        // `get` reads what it is asked for, and says nothing of the rest.
        let logged = warnings(|| {
            let _ = configuration.get::<Greeting>("greeting");
        });
        assert!(logged.is_empty(), "{logged:?}");
        Ok(())
    });
}

#[test]
fn a_binding_that_denies_unknown_keys_reports_them_with_every_other_problem() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.json",
            r#"{ "Greeting": { "Mesage": "typo", "Count": "many" } }"#,
        )?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let mut binding = OptionsBinding::<Greeting>::new("greeting");
        binding.deny_unknown_keys();
        let error = configuration.bind(binding).expect_err("a typo");
        assert!(error.is_invalid());
        assert_eq!(
            error.to_string(),
            "invalid configuration: 2 invalid values\n  `greeting.Mesage` is not a known key; \
             expected one of `count`, `message`, `retry`\n    from: appsettings.json\n  \
             `greeting.count` expects a non-negative integer, found \"many\"\n    from: \
             appsettings.json"
        );
        // With every value good, the typo alone fails the binding, and the
        // application's checks still run.
        jail.create_file(
            "appsettings.json",
            r#"{ "Greeting": { "Mesage": "typo" } }"#,
        )?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let mut binding = OptionsBinding::<Greeting>::new("greeting");
        binding
            .deny_unknown_keys()
            .validate(|_| Err(host_config::ValidationError::new("checked too")));
        let error = configuration.bind(binding).expect_err("a typo");
        assert_eq!(error.problems().len(), 2, "{error}");
        assert_eq!(error.problems()[1].message(), "checked too");
        Ok(())
    });
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Service {
    endpoints: Vec<Endpoint>,
    named: std::collections::BTreeMap<String, Endpoint>,
}

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Endpoint {
    name: String,
    port: u16,
}

#[test]
fn the_items_of_a_list_and_the_values_of_a_map_bind_in_any_case_too() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.json",
            r#"{ "Service": {
                "Endpoints": [ { "Name": "a", "Port": 1 }, { "NAME": "b", "port": 2 } ],
                "Named": { "Main": { "Name": "c", "Port": 3 } }
            } }"#,
        )?;
        let configuration = build(ConfigurationBuilder::new().without_env(), jail)?;
        let service: Service = configuration.get("service").map_err(|e| e.to_string())?;
        let endpoint = |name: &str, port| Endpoint {
            name: name.into(),
            port,
        };
        assert_eq!(
            service,
            Service {
                endpoints: vec![endpoint("a", 1), endpoint("b", 2)],
                // A map's keys are data: kept as spelled.
                named: [("Main".to_owned(), endpoint("c", 3))]
                    .into_iter()
                    .collect(),
            }
        );
        Ok(())
    });
}

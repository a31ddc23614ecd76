//! The layers of a configuration and their precedence (later wins, key by
//! key): defaults, `appsettings.toml`/`.json`, the environment's files, the
//! application's files and providers, environment variables, the command
//! line; and turning layers off, the other environment's files, and
//! malformed command lines.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use figment::providers::Serialized;
use host_config::{ConfigFile, ConfigurationBuilder, FileFormat};

/// The nine layers, lowest first.
const LAYERS: usize = 9;

/// The key set by layers `1..=n`: `a` by layer 1 only, `b` by layers 1 and
/// 2, and so on, so that each key's value names the highest layer that
/// sets it.
fn key(n: usize) -> String {
    char::from(b'a' + u8::try_from(n - 1).expect("a small layer number")).to_string()
}

/// The keys layer `layer` sets: every key of layers `layer..=LAYERS`.
fn keys_of(layer: usize) -> impl Iterator<Item = String> {
    (layer..=LAYERS).map(key)
}

fn toml_of(layer: usize) -> String {
    let mut text = String::from("[prec]\n");
    for key in keys_of(layer) {
        text.push_str(&format!("{key} = \"L{layer}\"\n"));
    }
    text
}

fn json_of(layer: usize) -> String {
    let pairs: Vec<String> = keys_of(layer)
        .map(|key| format!("\"{key}\": \"L{layer}\""))
        .collect();
    format!("{{ \"prec\": {{ {} }} }}", pairs.join(", "))
}

#[test]
fn each_layer_beats_the_ones_below_it_key_by_key() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", &toml_of(2))?;
        jail.create_file("appsettings.json", &json_of(3))?;
        jail.create_file("appsettings.Development.toml", &toml_of(4))?;
        jail.create_file("appsettings.Development.json", &json_of(5))?;
        jail.create_file("extra.toml", &toml_of(6))?;
        for key in keys_of(8) {
            jail.set_env(format!("APP_PREC__{}", key.to_uppercase()), "L8");
        }

        let mut builder = ConfigurationBuilder::new();
        for key in keys_of(1) {
            builder.add_defaults(Serialized::default(&format!("prec.{key}"), "L1"));
        }
        builder.add_file(ConfigFile::new("extra.toml"));
        for key in keys_of(7) {
            builder.add_provider(Serialized::default(&format!("prec.{key}"), "L7"));
        }
        builder.args(
            std::iter::once("app".to_owned())
                .chain(keys_of(9).map(|key| format!("--prec.{key}=L9"))),
        );
        let configuration = builder
            .build("Development", jail.directory())
            .map_err(|e| e.to_string())?;

        let found: BTreeMap<String, String> =
            configuration.get("prec").map_err(|e| e.to_string())?;
        let expected: BTreeMap<String, String> =
            (1..=LAYERS).map(|n| (key(n), format!("L{n}"))).collect();
        assert_eq!(found, expected);
        Ok(())
    });
}

#[test]
fn a_later_file_of_the_same_layer_and_a_later_provider_win() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("one.toml", "[order]\nx = \"one\"\ny = \"one\"\n")?;
        jail.create_file("two.json", r#"{ "order": { "x": "two" } }"#)?;
        let mut builder = ConfigurationBuilder::new();
        builder
            .add_file(ConfigFile::new("one.toml"))
            .add_file(ConfigFile::new("two.json"))
            .add_provider(Serialized::default("order.z", "first"))
            .add_provider(Serialized::default("order.z", "second"));
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, String> =
            configuration.get("order").map_err(|e| e.to_string())?;
        assert_eq!(found["x"], "two");
        assert_eq!(found["y"], "one");
        assert_eq!(found["z"], "second");
        Ok(())
    });
}

#[test]
fn missing_optional_appsettings_files_are_fine() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.add_defaults(Serialized::default("empty.x", 1));
        let configuration = builder
            .build("Staging", jail.directory())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            configuration
                .get::<u32>("empty.x")
                .map_err(|e| e.to_string())?,
            1
        );
        assert!(!configuration.is_watching());
        assert_eq!(configuration.content_root(), jail.directory());
        Ok(())
    });
}

#[test]
fn appsettings_false_skips_the_appsettings_files_only() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[skip]\nbase = 1\n")?;
        jail.create_file("appsettings.json", r#"{ "skip": { "json": 1 } }"#)?;
        jail.create_file("appsettings.Development.toml", "[skip]\nenv = 1\n")?;
        jail.create_file("mine.toml", "[skip]\nmine = 1\n")?;
        let mut builder = ConfigurationBuilder::new();
        builder
            .appsettings(false)
            .add_file(ConfigFile::new("mine.toml"));
        let configuration = builder
            .build("Development", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, u32> = configuration.get("skip").map_err(|e| e.to_string())?;
        assert_eq!(found, BTreeMap::from([("mine".to_owned(), 1)]));

        // The same files, read by default.
        let configuration = ConfigurationBuilder::new()
            .build("Development", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, u32> = configuration.get("skip").map_err(|e| e.to_string())?;
        assert_eq!(found.len(), 3, "{found:?}");
        Ok(())
    });
}

#[test]
fn only_the_current_environments_files_are_read() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[which]\nname = \"base\"\n")?;
        jail.create_file(
            "appsettings.Production.toml",
            "[which]\nname = \"production\"\n",
        )?;
        jail.create_file(
            "appsettings.Production.json",
            r#"{ "which": { "json": "production" } }"#,
        )?;

        let development = ConfigurationBuilder::new()
            .build("Development", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, String> =
            development.get("which").map_err(|e| e.to_string())?;
        assert_eq!(
            found,
            BTreeMap::from([("name".to_owned(), "base".to_owned())])
        );

        let production = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, String> = production.get("which").map_err(|e| e.to_string())?;
        assert_eq!(found["name"], "production");
        assert_eq!(found["json"], "production");
        Ok(())
    });
}

#[test]
fn environment_variables_use_the_default_prefix_and_double_underscores() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_ENVDEF__MAX_RETRIES", "7");
        jail.set_env("APP_ENVDEF__DEEP__NAME", "nested");
        jail.set_env("OTHER_ENVDEF__IGNORED", "1");
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            configuration
                .get::<u32>("envdef.max_retries")
                .map_err(|e| e.to_string())?,
            7
        );
        assert_eq!(
            configuration
                .get::<String>("envdef.deep.name")
                .map_err(|e| e.to_string())?,
            "nested"
        );
        assert!(configuration.get::<u32>("envdef.ignored").is_err());
        Ok(())
    });
}

#[test]
fn a_custom_environment_prefix_replaces_the_default_one() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("BILLING_ENVPRE__A", "custom");
        jail.set_env("APP_ENVPRE__B", "default");
        let mut builder = ConfigurationBuilder::new();
        builder.env_prefix("BILLING_");
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, String> =
            configuration.get("envpre").map_err(|e| e.to_string())?;
        assert_eq!(
            found,
            BTreeMap::from([("a".to_owned(), "custom".to_owned())])
        );
        Ok(())
    });
}

#[test]
fn without_env_reads_no_variables() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_NOENV__A", "from-env");
        let mut builder = ConfigurationBuilder::new();
        builder
            .add_defaults(Serialized::default("noenv.a", "default"))
            .without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            configuration
                .get::<String>("noenv.a")
                .map_err(|e| e.to_string())?,
            "default"
        );

        // Control: the variable is read by default.
        builder.env_prefix("APP_");
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            configuration
                .get::<String>("noenv.a")
                .map_err(|e| e.to_string())?,
            "from-env"
        );
        Ok(())
    });
}

#[test]
fn command_line_forms_and_the_program_name() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.args([
            "--cli.skipped=program-name",
            "--cli.eq=1",
            "--cli.spaced",
            "two",
            "--cli.twice=first",
            "--cli.twice=second",
            "--cli.with_equals=a=b",
            "--",
            "--cli.after=ignored",
        ]);
        assert_eq!(
            builder.command_line_value("cli.twice").as_deref(),
            Some("second")
        );
        assert_eq!(
            builder.command_line_value("cli.spaced").as_deref(),
            Some("two")
        );
        assert_eq!(builder.command_line_value("cli.skipped"), None);
        assert_eq!(builder.command_line_value("cli.after"), None);
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, String> =
            configuration.get("cli").map_err(|e| e.to_string())?;
        assert_eq!(
            found,
            BTreeMap::from([
                ("eq".to_owned(), "1".to_owned()),
                ("spaced".to_owned(), "two".to_owned()),
                ("twice".to_owned(), "second".to_owned()),
                ("with_equals".to_owned(), "a=b".to_owned()),
            ])
        );
        Ok(())
    });
}

#[test]
fn a_malformed_command_line_is_an_error() {
    figment::Jail::expect_with(|jail| {
        let cases = [
            (
                vec!["app", "positional"],
                "invalid configuration: command-line argument `positional` is not `--key=value` \
                 (nested keys: `--section.key=value`)",
            ),
            (
                vec!["app", "--verbose"],
                "invalid configuration: command-line argument `--verbose` has no value: write \
                 `--key=value`",
            ),
            (
                vec!["app", "--verbose", "--bad.x=1"],
                "invalid configuration: command-line argument `--verbose` has no value: write \
                 `--key=value`",
            ),
            (
                vec!["app", "--=1"],
                "invalid configuration: command-line argument `--=...` has an empty key or key \
                 segment",
            ),
        ];
        for (args, expected) in cases {
            let mut builder = ConfigurationBuilder::new();
            builder.args(args.clone());
            assert_eq!(builder.command_line_value("bad.x"), None, "{args:?}");
            let error = builder
                .build("Production", jail.directory())
                .expect_err("a malformed command line");
            assert!(error.is_argument(), "{args:?}: {error}");
            assert!(!error.is_invalid() && !error.is_malformed());
            assert_eq!(error.to_string(), expected, "{args:?}");
        }
        Ok(())
    });
}

#[test]
fn an_argument_typo_does_not_show_its_value() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.args(["app", "-database.password=hunter2"]);
        let error = builder
            .build("Production", jail.directory())
            .expect_err("a single dash");
        assert!(error.is_argument());
        assert_eq!(
            error.to_string(),
            "invalid configuration: command-line argument `-database.password=...` is not \
             `--key=value` (nested keys: `--section.key=value`)"
        );
        Ok(())
    });
}

#[test]
fn application_files_resolve_against_the_content_root_or_stand_absolute() {
    figment::Jail::expect_with(|jail| {
        std::fs::create_dir(jail.directory().join("conf")).map_err(|e| e.to_string())?;
        jail.create_file("conf/relative.toml", "[files]\nrelative = true\n")?;
        jail.create_file("settings.conf", r#"{ "files": { "formatted": true } }"#)?;
        let outside = tempfile::tempdir().map_err(|e| e.to_string())?;
        let absolute = outside.path().join("absolute.json");
        std::fs::write(&absolute, r#"{ "files": { "absolute": true } }"#)
            .map_err(|e| e.to_string())?;

        let mut builder = ConfigurationBuilder::new();
        builder
            .add_file(ConfigFile::new("conf/relative.toml"))
            .add_file(ConfigFile::new(&absolute))
            .add_file(ConfigFile::new("settings.conf").format(FileFormat::Json))
            .add_file(ConfigFile::new("missing.toml").optional());
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let found: BTreeMap<String, bool> =
            configuration.get("files").map_err(|e| e.to_string())?;
        assert_eq!(
            found,
            BTreeMap::from([
                ("absolute".to_owned(), true),
                ("formatted".to_owned(), true),
                ("relative".to_owned(), true),
            ])
        );
        Ok(())
    });
}

#[test]
fn defaults_fill_what_no_file_sets() {
    #[derive(Debug, serde::Deserialize)]
    struct Worker {
        batch: u32,
        name: String,
    }

    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[dflt]\nname = \"from-file\"\n")?;
        let mut builder = ConfigurationBuilder::new();
        builder.add_defaults(Serialized::defaults(serde_json::json!({
            "dflt": { "batch": 10, "name": "default" }
        })));
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let worker: Worker = configuration.get("dflt").map_err(|e| e.to_string())?;
        assert_eq!(worker.batch, 10);
        assert_eq!(worker.name, "from-file");
        Ok(())
    });
}

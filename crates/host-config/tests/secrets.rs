//! Secret values never appear in an error or in `Debug` output: keys one of
//! whose words is a secret name (`password`, `secret`, `token`, `key`,
//! `dsn`, `connection_string`, ...; names added and removed by the
//! application), keys marked with `ConfigurationBuilder::secret`, the
//! password of any URL, and the argument after a secret's on the command
//! line, whatever the source of the bad value; their errors read `[redacted]`.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use host_config::{ConfigError, ConfigurationBuilder, OptionsBinding, ValidationError};

/// The secret value every test hides.
const SECRET: &str = "hunter2";

#[derive(Debug, serde::Deserialize)]
struct NumericPassword {
    #[allow(dead_code)] // read by the binding only
    password: u16,
}

#[derive(Debug, serde::Deserialize)]
struct DurationPassword {
    #[serde(with = "host_config::duration")]
    #[allow(dead_code)] // read by the binding only
    password: Duration,
}

fn assert_redacted(error: &ConfigError, expected: &str) {
    let text = error.to_string();
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert_eq!(text, expected);
    for problem in error.problems() {
        assert!(!problem.message().contains(SECRET), "{problem}");
    }
}

#[test]
fn a_password_from_a_file_is_redacted() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            &format!("[database]\npassword = \"{SECRET}\"\n"),
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert!(configuration.is_secret("database.password"));

        let error = configuration
            .bind(OptionsBinding::<NumericPassword>::new("database"))
            .expect_err("not a number");
        assert_redacted(
            &error,
            "invalid configuration: `database.password` expects an integer from 0 to 65535, \
             found [redacted]\n  from: appsettings.toml",
        );
        let error = configuration
            .bind(OptionsBinding::<DurationPassword>::new("database"))
            .expect_err("not a duration");
        assert_redacted(
            &error,
            "invalid configuration: `database.password` expects a duration such as \"5s\", \
             found [redacted]\n  from: appsettings.toml",
        );
        Ok(())
    });
}

#[test]
fn a_password_from_a_variable_is_redacted() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_SECENV__DB_PASSWORD", SECRET);
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error = configuration
            .get::<u16>("secenv.db_password")
            .expect_err("not a number");
        assert_redacted(
            &error,
            "invalid configuration: `secenv.db_password` expects an integer from 0 to 65535, \
             found [redacted]\n  from: environment variable APP_SECENV__DB_PASSWORD",
        );
        Ok(())
    });
}

#[test]
fn a_secret_from_the_command_line_is_redacted() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder
            .without_env()
            .args(["app", &format!("--auth.api_token={SECRET}")]);
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error = configuration
            .get::<bool>("auth.api_token")
            .expect_err("not a boolean");
        assert_redacted(
            &error,
            "invalid configuration: `auth.api_token` expects a boolean, found [redacted]\n  \
             from: command-line argument --auth.api_token",
        );
        Ok(())
    });
}

#[test]
fn a_marked_key_and_what_is_beneath_it_are_redacted() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by the binding only
    struct Database {
        conn: u32,
        // Binds: every problem is reported, and this one's value (unmarked) would be shown.
        host: String,
    }

    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            &format!("[database]\nconn = \"{SECRET}\"\nhost = \"{SECRET}\"\n[database.conn_parts]\nuser = \"{SECRET}\"\n"),
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env().secret("database.conn");
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert!(configuration.is_secret("database.conn"));
        assert!(configuration.is_secret("Database.CONN.primary"));
        assert!(!configuration.is_secret("database.conn_parts.user"));
        assert!(!configuration.is_secret("database.host"));

        let error = configuration
            .bind(OptionsBinding::<Database>::new("database"))
            .expect_err("not a number");
        assert_redacted(
            &error,
            "invalid configuration: `database.conn` expects a non-negative integer, found \
             [redacted]\n  from: appsettings.toml",
        );

        // Control: the same value under an unmarked key is shown.
        let error = configuration
            .get::<u32>("database.host")
            .expect_err("not a number");
        assert_eq!(
            error.to_string(),
            format!(
                "invalid configuration: `database.host` expects a non-negative integer, found \"{SECRET}\"\n  from: appsettings.toml"
            )
        );
        Ok(())
    });
}

#[test]
fn a_validator_on_a_secret_shows_no_value() {
    #[derive(Debug, serde::Deserialize)]
    struct Smtp {
        password: String,
    }

    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_SMTP__PASSWORD", SECRET);
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let mut binding = OptionsBinding::<Smtp>::new("smtp");
        binding.validate(|smtp| match smtp.password.len() >= 12 {
            true => Ok(()),
            false => Err(ValidationError::key(
                "password",
                "must be at least 12 characters",
            )),
        });
        let error = configuration.bind(binding).expect_err("too short");
        assert_redacted(
            &error,
            "invalid configuration: `smtp.password` must be at least 12 characters, found \
             [redacted]\n  from: environment variable APP_SMTP__PASSWORD",
        );
        Ok(())
    });
}

#[test]
fn a_custom_deserializers_message_about_a_secret_is_withheld() {
    fn refuse<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        Err(serde::de::Error::custom(format!("cannot use {text}")))
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by the binding only
    struct Vault {
        #[serde(deserialize_with = "refuse")]
        secret_id: String,
        #[serde(default, deserialize_with = "refuse")]
        name: String,
    }

    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            &format!("[vault]\nsecret_id = \"{SECRET}\"\n"),
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error = configuration
            .bind(OptionsBinding::<Vault>::new("vault"))
            .expect_err("refused");
        let text = error.to_string();
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
        assert_eq!(
            text,
            "invalid configuration: `vault.secret_id` is invalid (the details are withheld: the \
             key holds a secret)\n  from: appsettings.toml"
        );

        // Control: a key that is not secret shows the message.
        jail.create_file(
            "appsettings.toml",
            "[vault]\nname = \"plain\"\nsecret_id = \"x\"\n",
        )?;
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error = configuration
            .bind(OptionsBinding::<Vault>::new("vault"))
            .expect_err("refused");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `vault.name` is invalid: cannot use plain\n  from: \
             appsettings.toml"
        );
        Ok(())
    });
}

#[test]
fn debug_output_shows_no_values() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_DEBUGGED__PASSWORD", SECRET);
        let mut builder = ConfigurationBuilder::new();
        builder.args(["app", &format!("--db.password={SECRET}")]);
        let shown = format!("{builder:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("ConfigurationBuilder"), "{shown}");

        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            configuration
                .get::<String>("db.password")
                .map_err(|e| e.to_string())?,
            SECRET
        );
        let shown = format!("{configuration:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("1 command-line arguments"), "{shown}");
        Ok(())
    });
}

#[test]
fn the_password_of_a_url_is_redacted_whatever_its_key() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by the binding only
    struct Database {
        url: u32,
    }
    #[derive(Debug, serde::Deserialize)]
    struct Cache {
        url: String,
    }

    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            &format!(
                "[database]\nurl = \"postgres://u:{SECRET}@h/db\"\n\
                 [cache]\nurl = \"redis://:{SECRET}@cache:6379\"\n"
            ),
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert!(
            !configuration.is_secret("database.url"),
            "a URL is not a secret"
        );
        let error = configuration
            .bind(OptionsBinding::<Database>::new("database"))
            .expect_err("not a number");
        assert_redacted(
            &error,
            "invalid configuration: `database.url` expects a non-negative integer, found \
             \"postgres://u:[redacted]@h/db\"\n  from: appsettings.toml",
        );

        let mut binding = OptionsBinding::<Cache>::new("cache");
        binding.validate(|cache| {
            Err(ValidationError::key(
                "url",
                format!("cannot reach {}", cache.url),
            ))
        });
        let error = configuration.bind(binding).expect_err("refused");
        assert_redacted(
            &error,
            "invalid configuration: `cache.url` cannot reach redis://:[redacted]@cache:6379, \
             found \"redis://:[redacted]@cache:6379\"\n  from: appsettings.toml",
        );
        Ok(())
    });
}

#[test]
fn a_stray_argument_after_a_secret_is_redacted() {
    figment::Jail::expect_with(|jail| {
        for args in [
            ["app", "--db.password=", SECRET],
            ["app", "--db.password", "hunter"],
            ["app", "--db.apiKey=hunter", "2"],
        ] {
            let mut args = args.to_vec();
            if args[2] == "hunter" {
                args.push("2");
            }
            let mut builder = ConfigurationBuilder::new();
            builder.without_env().args(args.clone());
            let error = builder
                .build("Production", jail.directory())
                .expect_err("a stray argument");
            let text = error.to_string();
            assert!(error.is_argument(), "{text}");
            assert!(
                !text.contains("hunter"),
                "the secret leaked from {args:?}: {text}"
            );
            assert!(!format!("{error:?}").contains("hunter"), "{error:?}");
        }
        let mut builder = ConfigurationBuilder::new();
        builder
            .without_env()
            .args(["app", "--db.password=", SECRET]);
        let error = builder
            .build("Production", jail.directory())
            .expect_err("a stray argument");
        assert_eq!(
            error.to_string(),
            "invalid configuration: command-line argument `[redacted]` (after \
             `--db.password=`) is not `--key=value` (nested keys: `--section.key=value`)"
        );
        Ok(())
    });
}

#[test]
fn secret_names_are_whole_words_in_any_case_style() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_SPELLED__CONNECTIONSTRING", SECRET);
        jail.create_file(
            "appsettings.toml",
            &format!(
                "[spelled]\napiKey = \"{SECRET}\"\nConnectionString = \"{SECRET}\"\n\
                 client-secret = \"{SECRET}\"\nkeyboard = \"{SECRET}\"\n"
            ),
        )?;
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        for key in [
            "spelled.apiKey",
            "spelled.ConnectionString",
            "spelled.connectionstring",
            "spelled.client-secret",
        ] {
            assert!(configuration.is_secret(key), "{key}");
            let error = configuration.get::<u8>(key).expect_err("not a number");
            let text = error.to_string();
            assert!(!text.contains(SECRET), "the secret leaked: {text}");
            assert!(text.contains("found [redacted]"), "{text}");
        }
        // `key` inside a word is not the word `key`.
        assert!(!configuration.is_secret("spelled.keyboard"));
        let error = configuration
            .get::<u8>("spelled.keyboard")
            .expect_err("not a number");
        assert!(error.to_string().contains(SECRET), "{error}");
        Ok(())
    });
}

#[test]
fn the_application_adds_and_removes_secret_names() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            &format!("[atm]\ncardPin = \"{SECRET}\"\n[cache]\nkey_prefix = \"{SECRET}\"\n"),
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert!(!configuration.is_secret("atm.cardPin"));
        assert!(configuration.is_secret("cache.key_prefix"));

        builder.secret_name("pin").remove_secret_name("key");
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert!(configuration.is_secret("atm.cardPin"));
        let error = configuration
            .get::<u8>("atm.cardPin")
            .expect_err("not a number");
        assert!(!error.to_string().contains(SECRET), "{error}");
        assert!(!configuration.is_secret("cache.key_prefix"));
        let error = configuration
            .get::<u8>("cache.key_prefix")
            .expect_err("not a number");
        assert!(error.to_string().contains(SECRET), "{error}");
        assert!(configuration.is_secret("db.password"), "the others stay");
        Ok(())
    });
}

#[test]
fn a_problem_reported_at_a_table_holding_a_secret_shows_no_value() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by the binding only
    struct Inner {
        password: u16,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // read by the binding only
    struct Outer {
        #[serde(flatten)]
        inner: Inner,
    }

    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            &format!("[flat]\npassword = \"{SECRET}\"\n"),
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error = configuration
            .bind(OptionsBinding::<Outer>::new("flat"))
            .expect_err("not a number");
        let text = error.to_string();
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
        assert!(!format!("{error:?}").contains(SECRET), "{error:?}");
        Ok(())
    });
}

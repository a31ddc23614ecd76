//! Values from environment variables and command-line arguments are text:
//! integers and booleans read as numbers or booleans when the bound type asks
//! for one, and otherwise stay the text as written (`007` stays `"007"`);
//! decimals are exact numbers (quoted, text); lists and tables are parsed.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use host_config::{ConfigurationBuilder, OptionsBinding};

#[derive(Debug, serde::Deserialize, PartialEq)]
struct Database {
    port: u16,
    user: String,
    password: String,
    pool: Option<u32>,
    ssl: bool,
    ratio: f64,
    zip: String,
}

fn expected() -> Database {
    Database {
        port: 5432,
        user: "1234".to_owned(),
        password: "007".to_owned(),
        pool: Some(8),
        ssl: true,
        ratio: 0.1,
        zip: "01234".to_owned(),
    }
}

#[test]
fn variables_read_as_the_type_asks() {
    figment::Jail::expect_with(|jail| {
        for (key, value) in [
            ("PORT", "5432"),
            ("USER", "1234"),
            ("PASSWORD", "007"),
            ("POOL", "8"),
            ("SSL", "true"),
            ("RATIO", "0.1"),
            ("ZIP", "01234"),
        ] {
            jail.set_env(format!("APP_LENENV__{key}"), value);
        }
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let database = configuration
            .bind(OptionsBinding::<Database>::new("lenenv"))
            .map_err(|e| e.to_string())?;
        assert_eq!(*database.current(), expected());
        assert_eq!(
            configuration
                .get::<String>("lenenv.port")
                .map_err(|e| e.to_string())?,
            "5432"
        );
        Ok(())
    });
}

#[test]
fn arguments_read_as_the_type_asks() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.args([
            "app",
            "--lenarg.port=5432",
            "--lenarg.user",
            "1234",
            "--lenarg.password=007",
            "--lenarg.pool=8",
            "--lenarg.ssl=true",
            "--lenarg.ratio=0.1",
            "--lenarg.zip=01234",
        ]);
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let database = configuration
            .bind(OptionsBinding::<Database>::new("lenarg"))
            .map_err(|e| e.to_string())?;
        assert_eq!(*database.current(), expected());
        Ok(())
    });
}

#[test]
fn lists_tables_and_quoted_text_are_parsed() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_LENLIST__PORTS", "[80, 443]");
        jail.set_env("APP_LENLIST__LABELS", "{team = \"core\", tier = \"gold\"}");
        jail.set_env("APP_LENLIST__QUOTED", "\"5\"");
        jail.set_env("APP_LENLIST__VERSION", "\"1.0\"");
        jail.set_env("APP_LENLIST__BARE_VERSION", "1.0");
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            configuration
                .get::<Vec<u16>>("lenlist.ports")
                .map_err(|e| e.to_string())?,
            [80, 443]
        );
        assert_eq!(
            configuration
                .get::<BTreeMap<String, String>>("lenlist.labels")
                .map_err(|e| e.to_string())?,
            BTreeMap::from([
                ("team".to_owned(), "core".to_owned()),
                ("tier".to_owned(), "gold".to_owned())
            ])
        );
        assert_eq!(
            configuration
                .get::<String>("lenlist.quoted")
                .map_err(|e| e.to_string())?,
            "5"
        );
        assert_eq!(
            configuration
                .get::<String>("lenlist.version")
                .map_err(|e| e.to_string())?,
            "1.0"
        );
        // Unquoted, a decimal is a number.
        assert_eq!(
            configuration
                .get::<f64>("lenlist.bare_version")
                .map_err(|e| e.to_string())?,
            1.0
        );
        Ok(())
    });
}

#[test]
fn text_that_is_not_a_number_is_still_an_error() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_LENBAD__PORT", "http");
        jail.set_env("APP_LENBAD__SSL", "maybe");
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error = configuration
            .get::<u16>("lenbad.port")
            .expect_err("not a number");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `lenbad.port` expects an integer from 0 to 65535, found \
             \"http\"\n  from: environment variable APP_LENBAD__PORT"
        );
        let error = configuration
            .get::<bool>("lenbad.ssl")
            .expect_err("not a boolean");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `lenbad.ssl` expects a boolean, found \"maybe\"\n  from: \
             environment variable APP_LENBAD__SSL"
        );
        Ok(())
    });
}

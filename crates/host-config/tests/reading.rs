//! Reading by key and binding sections: a key no source sets is `None` for
//! an `Option` and defaults for a `#[serde(default)]` type; the root section;
//! a value that is not a table; nested sections.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use host_config::{ConfigurationBuilder, OptionsBinding};

#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(default)]
struct Retry {
    limit: u32,
    #[serde(with = "host_config::duration")]
    delay: Duration,
    #[serde(with = "host_config::duration::option")]
    give_up_after: Option<Duration>,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            limit: 3,
            delay: Duration::from_secs(1),
            give_up_after: None,
        }
    }
}

#[test]
fn an_unset_key_is_none_for_an_option() {
    figment::Jail::expect_with(|jail| {
        let mut builder = ConfigurationBuilder::new();
        builder.without_env().args(["app", "--opt.set=5"]);
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        assert_eq!(
            configuration
                .get::<Option<u32>>("opt.set")
                .map_err(|e| e.to_string())?,
            Some(5)
        );
        assert_eq!(
            configuration
                .get::<Option<u32>>("opt.unset")
                .map_err(|e| e.to_string())?,
            None
        );
        assert_eq!(
            configuration
                .get::<Option<Retry>>("nowhere.retry")
                .map_err(|e| e.to_string())?,
            None
        );
        let monitor = configuration
            .bind(OptionsBinding::<Option<Retry>>::new("nowhere.retry"))
            .map_err(|e| e.to_string())?;
        assert_eq!(*monitor.current(), None);

        // Not an option: still required.
        let error = configuration.get::<u32>("opt.unset").expect_err("required");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `opt.unset` is required (a non-negative integer), and no \
             source sets it"
        );
        Ok(())
    });
}

#[test]
fn an_unset_section_binds_its_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("appsettings.toml", "[partial.retry]\nlimit = 5\n")?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let unset = configuration
            .bind(OptionsBinding::<Retry>::new("unset.retry"))
            .map_err(|e| e.to_string())?;
        assert_eq!(*unset.current(), Retry::default());
        let partial = configuration
            .bind(OptionsBinding::<Retry>::new("partial.retry"))
            .map_err(|e| e.to_string())?;
        assert_eq!(
            *partial.current(),
            Retry {
                limit: 5,
                ..Retry::default()
            }
        );
        assert_eq!(partial.section(), "partial.retry");
        Ok(())
    });
}

#[test]
fn the_root_section_binds_everything() {
    #[derive(Debug, serde::Deserialize)]
    struct Root {
        retry: Retry,
        name: String,
    }

    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "appsettings.toml",
            "name = \"svc\"\n[retry]\ndelay = \"250ms\"\ngive_up_after = \"1m\"\n",
        )?;
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let root = configuration
            .bind(OptionsBinding::<Root>::new(""))
            .map_err(|e| e.to_string())?;
        assert_eq!(root.current().name, "svc");
        assert_eq!(
            root.current().retry,
            Retry {
                limit: 3,
                delay: Duration::from_millis(250),
                give_up_after: Some(Duration::from_secs(60)),
            }
        );
        let everything: BTreeMap<String, toml::Value> =
            configuration.get("").map_err(|e| e.to_string())?;
        assert_eq!(everything.len(), 2, "{everything:?}");
        Ok(())
    });
}

#[test]
fn a_table_where_a_value_belongs_names_its_layer() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_TABLED__PORTS__FIRST", "80");
        let mut builder = ConfigurationBuilder::new();
        builder.args(["app", "--argued.ports.first=80"]);
        let configuration = builder
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let error = configuration
            .get::<Vec<u16>>("tabled.ports")
            .expect_err("a table");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `tabled.ports` expects a list, found a table\n  from: \
             environment variables"
        );
        let error = configuration
            .get::<Vec<u16>>("argued.ports")
            .expect_err("a table");
        assert_eq!(
            error.to_string(),
            "invalid configuration: `argued.ports` expects a list, found a table\n  from: \
             command line"
        );
        Ok(())
    });
}

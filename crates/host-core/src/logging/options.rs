//! `LoggingOptions` and `LogFormat`: the `logging` configuration section.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::LogLevel;
use super::journald;

/// How the default log subscriber logs: the `logging` configuration section.
///
/// ```toml
/// [logging]
/// format = "json"            # "auto" (default), "human", "json", "journald"
///
/// [logging.level]
/// default = "info"           # every target not listed
/// "app::worker" = "debug"    # a target and everything under it
/// "host::lifetime" = "warn"
/// ```
///
/// A non-empty `RUST_LOG` overrides `level` entirely (an invalid one is
/// ignored with a warning). Levels change live when the configuration
/// reloads; the format is fixed when the subscriber is installed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LoggingOptions {
    /// The level per target, as .NET's `Logging:LogLevel`: a key matches
    /// its target and every target under it (a prefix, as `EnvFilter`
    /// directives; the longest match wins). The key `default` is the level
    /// of every target not listed. Default: empty, so everything logs at
    /// `info`.
    pub level: BTreeMap<String, LogLevel>,
    /// The output format. Default: [`LogFormat::Auto`].
    pub format: LogFormat,
}

/// The output format of the default log subscriber, on standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// `journald` when standard error is connected to systemd's journal
    /// (`JOURNAL_STREAM` names it), `human` otherwise. The default.
    #[default]
    Auto,
    /// tracing-subscriber's default text format, with ANSI colors only when
    /// standard error is a terminal (and `NO_COLOR` is unset).
    Human,
    /// tracing-subscriber's JSON format: one object per line.
    Json,
    /// Text for systemd's journal: each line starts with its priority
    /// (`<3>` error, `<4>` warn, `<6>` info, `<7>` debug and trace), with
    /// no timestamp or level name (the journal records both) and no ANSI.
    Journald,
}

impl LogFormat {
    /// The format to use: `Auto` decided by where standard error goes.
    pub(crate) fn resolve(self) -> Self {
        match self {
            Self::Auto if journald::stderr_is_journal() => Self::Journald,
            Self::Auto => Self::Human,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use host_config::{ConfigurationBuilder, OptionsBinding};

    use super::*;

    fn from_json(json: &str) -> Result<LoggingOptions, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn formats_by_name() {
        for (name, format) in [
            ("auto", LogFormat::Auto),
            ("human", LogFormat::Human),
            ("json", LogFormat::Json),
            ("journald", LogFormat::Journald),
        ] {
            assert_eq!(
                from_json(&format!(r#"{{ "format": "{name}" }}"#)).map(|o| o.format),
                Ok(format)
            );
        }
        let error = from_json(r#"{ "format": "xml" }"#).unwrap_err();
        assert!(
            error.contains("expected one of `auto`, `human`, `json`, `journald`"),
            "{error}"
        );
        assert_eq!(LogFormat::Human.resolve(), LogFormat::Human);
        assert_eq!(LogFormat::Journald.resolve(), LogFormat::Journald);
    }

    #[test]
    fn defaults_and_unknown_keys() {
        assert_eq!(from_json("{}"), Ok(LoggingOptions::default()));
        assert_eq!(LoggingOptions::default().format, LogFormat::Auto);
        let options = from_json(r#"{ "level": { "default": "Warning", "app::worker": "debug" } }"#)
            .expect("valid");
        assert_eq!(options.level["default"], LogLevel::Warn);
        assert_eq!(options.level["app::worker"], LogLevel::Debug);
        let error = from_json(r#"{ "levels": {} }"#).unwrap_err();
        assert!(error.contains("unknown field `levels`"), "{error}");
    }

    fn bind(args: &[&str]) -> Result<LoggingOptions, String> {
        let mut builder = ConfigurationBuilder::new();
        builder
            .without_env()
            .appsettings(false)
            .args(std::iter::once("app").chain(args.iter().copied()));
        let configuration = builder
            .build("Production", std::env::temp_dir())
            .map_err(|e| e.to_string())?;
        let mut binding = OptionsBinding::<LoggingOptions>::new("logging");
        binding.validate(LoggingOptions::check);
        configuration
            .bind(binding)
            .map(|monitor| (*monitor.current()).clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn bound_from_the_configuration() {
        let options = bind(&[
            "--logging.format=json",
            "--logging.level.default=Warning",
            "--logging.level.app::worker=debug",
        ])
        .expect("valid");
        assert_eq!(options.format, LogFormat::Json);
        assert_eq!(options.directives(), "warn,app::worker=debug");
    }

    #[test]
    fn a_bad_level_name_is_reported_with_its_key_and_the_names() {
        let error = bind(&["--logging.level.app=verbose"]).unwrap_err();
        assert!(
            error.starts_with(
                "invalid configuration: `logging.level.app` expects one of `trace`, `debug`, \
                 `info`, `information`, `warn`, `warning`, `error`, `critical`, `off`, `none`, \
                 found \"verbose\""
            ),
            "{error}"
        );
    }

    #[test]
    fn a_target_that_is_not_one_is_reported_with_its_source() {
        let error = bind(&["--logging.level.app{x}=debug"]).unwrap_err();
        assert!(
            error.starts_with("invalid configuration: `logging.level.app{x}` is not a log target"),
            "{error}"
        );
        assert!(error.contains("from: command-line argument"), "{error}");
    }
}

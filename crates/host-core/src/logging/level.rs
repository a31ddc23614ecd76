//! `LogLevel`: a level as the configuration names it, Rust's way or .NET's.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use tracing_subscriber::filter::LevelFilter;

/// The names a level may be written as (ignoring case): Rust's, each
/// followed by its .NET alias where the spelling differs.
const NAMES: &[&str] = &[
    "trace",
    "debug",
    "info",
    "information",
    "warn",
    "warning",
    "error",
    "critical",
    "off",
    "none",
];

/// A log level in the `logging.level` section.
///
/// Written as tracing's names (`trace`, `debug`, `info`, `warn`, `error`,
/// `off`) or .NET's (`Trace`, `Debug`, `Information`, `Warning`, `Error`,
/// `Critical`, `None`), ignoring case. An unknown name is a configuration
/// error that lists the accepted names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// Everything (`trace`, .NET's `Trace`).
    Trace,
    /// Debug and above (`debug`, .NET's `Debug`).
    Debug,
    /// Info and above (`info`, .NET's `Information`).
    Info,
    /// Warnings and errors (`warn`, .NET's `Warning`).
    Warn,
    /// Errors only (`error`, .NET's `Error`; also .NET's `Critical`, since
    /// tracing has no level above error).
    Error,
    /// Nothing (`off`, .NET's `None`).
    Off,
}

impl LogLevel {
    /// The level named `name` (ignoring case and surrounding spaces).
    fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "trace" => Self::Trace,
            "debug" => Self::Debug,
            "info" | "information" => Self::Info,
            "warn" | "warning" => Self::Warn,
            "error" | "critical" => Self::Error,
            "off" | "none" => Self::Off,
            _ => return None,
        })
    }

    /// The level as a filter; its `Display` is the directive's spelling.
    pub(crate) fn filter(self) -> LevelFilter {
        match self {
            Self::Trace => LevelFilter::TRACE,
            Self::Debug => LevelFilter::DEBUG,
            Self::Info => LevelFilter::INFO,
            Self::Warn => LevelFilter::WARN,
            Self::Error => LevelFilter::ERROR,
            Self::Off => LevelFilter::OFF,
        }
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(LevelVisitor)
    }
}

struct LevelVisitor;

impl Visitor<'_> for LevelVisitor {
    type Value = LogLevel;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a log level such as \"info\"")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<LogLevel, E> {
        LogLevel::from_name(name).ok_or_else(|| E::unknown_variant(name, NAMES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str) -> Result<LogLevel, String> {
        serde_json::from_value(serde_json::Value::String(name.into())).map_err(|e| e.to_string())
    }

    #[test]
    fn every_name_and_alias_ignoring_case() {
        let cases = [
            ("trace", LogLevel::Trace),
            ("Trace", LogLevel::Trace),
            ("debug", LogLevel::Debug),
            ("DEBUG", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("Information", LogLevel::Info),
            ("INFORMATION", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("Warning", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("Error", LogLevel::Error),
            ("Critical", LogLevel::Error),
            ("off", LogLevel::Off),
            ("None", LogLevel::Off),
            (" info ", LogLevel::Info),
        ];
        for (name, level) in cases {
            assert_eq!(parse(name), Ok(level), "{name:?}");
        }
    }

    #[test]
    fn an_unknown_name_lists_the_accepted_ones() {
        let error = parse("verbose").unwrap_err();
        assert_eq!(
            error,
            "unknown variant `verbose`, expected one of `trace`, `debug`, `info`, \
             `information`, `warn`, `warning`, `error`, `critical`, `off`, `none`"
        );
        let error = serde_json::from_str::<LogLevel>("3")
            .unwrap_err()
            .to_string();
        assert!(error.contains("a log level such as \"info\""), "{error}");
    }

    #[test]
    fn filters_are_spelled_as_directives() {
        let spelled: Vec<String> = [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Off,
        ]
        .iter()
        .map(|level| level.filter().to_string())
        .collect();
        assert_eq!(spelled, ["trace", "debug", "info", "warn", "error", "off"]);
    }
}

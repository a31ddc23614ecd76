//! Durations in a human form (`"30s"`, `"1m 30s"`, `"250ms"`), for
//! `#[serde(with = "host_config::duration")]`.
//!
//! A bad value reads `expects a duration such as "5s", found "fast"`. Bare
//! numbers are refused: a duration always carries its unit.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize)]
//! struct Retry {
//!     #[serde(with = "host_config::duration")]
//!     delay: Duration,
//!     #[serde(default, with = "host_config::duration::option")]
//!     give_up_after: Option<Duration>,
//! }
//!
//! let retry: Retry = serde_json::from_str(r#"{ "delay": "1m 30s" }"#).unwrap();
//! assert_eq!(retry.delay, Duration::from_secs(90));
//! assert_eq!(retry.give_up_after, None);
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

const EXPECTED: &str = "a duration such as \"5s\"";

/// Writes a duration as `"1m 30s"`.
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
}

/// Reads a duration from a string such as `"5s"`, `"1m 30s"` or `"250ms"`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        humantime::parse_duration(text.trim())
            .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
    }
}

/// For `Option<Duration>` fields: `#[serde(default, with = "host_config::duration::option")]`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `Some(duration)` as `"1m 30s"`, `None` as nothing.
    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] Duration);
        Option::<Wrapped>::deserialize(deserializer).map(|wrapped| wrapped.map(|Wrapped(d)| d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Holder {
        #[serde(with = "super")]
        every: Duration,
    }

    #[test]
    fn human_forms() {
        for (text, expected) in [
            ("5s", Duration::from_secs(5)),
            ("250ms", Duration::from_millis(250)),
            ("1m 30s", Duration::from_secs(90)),
            (" 2h ", Duration::from_secs(7200)),
        ] {
            let holder: Holder =
                serde_json::from_value(serde_json::json!({ "every": text })).expect(text);
            assert_eq!(holder.every, expected, "{text}");
        }
    }

    #[test]
    fn round_trip() {
        let holder = Holder {
            every: Duration::from_secs(90),
        };
        let json = serde_json::to_string(&holder).unwrap();
        assert_eq!(json, r#"{"every":"1m 30s"}"#);
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), holder);
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let error = serde_json::from_str::<Holder>(r#"{"every": "fast"}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid value: string \"fast\", expected a duration such as \"5s\""),
            "{error}"
        );
        let error = serde_json::from_str::<Holder>(r#"{"every": 5}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid type: integer `5`, expected a duration"),
            "{error}"
        );
    }
}

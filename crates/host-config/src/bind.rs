//! Binding a section to a type, and turning serde's and the application's
//! complaints into problems that name the key, the value and its source.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use figment::Figment;
use figment::error::{Actual, Kind};
use figment::value::{Empty, Tag, Value};
use serde::de::DeserializeOwned;

use crate::layer::origin;
use crate::secrets::{REDACTED, Secrets, redact_url_value};
use crate::{ConfigError, Problem, ValidationError};

/// What binding needs to name keys, values and sources.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) figment: &'a Figment,
    pub(crate) content_root: &'a Path,
    pub(crate) secrets: &'a Secrets,
}

impl Context<'_> {
    /// Binds `section` (`""` for the root) to `T`; every problem serde
    /// reports becomes a [`Problem`]. Lossy, so that the text `"5"` of a
    /// variable reads as a number or a boolean when `T` asks for one.
    ///
    /// A panicking `Deserialize` is a problem of the section too: at build
    /// it is invalid configuration, on a reload a rejected change (the
    /// watcher's thread must survive it).
    pub(crate) fn extract<T: DeserializeOwned>(&self, section: &str) -> Result<T, ConfigError> {
        catch_unwind(AssertUnwindSafe(|| self.extract_unguarded(section))).unwrap_or_else(
            |payload| {
                Err(ConfigError::invalid(vec![self.panic_problem(
                    section,
                    &format!(
                        "panicked while being read as `{}`",
                        std::any::type_name::<T>()
                    ),
                    payload.as_ref(),
                )]))
            },
        )
    }

    fn extract_unguarded<T: DeserializeOwned>(&self, section: &str) -> Result<T, ConfigError> {
        let found = if section.is_empty() {
            None
        } else {
            self.figment.find_value(section).ok()
        };
        let scalar = found
            .as_ref()
            .is_some_and(|value| value.as_dict().is_none());
        // Nothing sets the key: an `Option` is `None`; anything else binds
        // from an empty table (so that defaults apply) or reports it missing.
        let nothing = Value::Empty(Tag::Default, Empty::None);
        let result = match &found {
            _ if scalar => self.figment.extract_inner_lossy::<T>(section),
            _ if section.is_empty() => self.figment.extract_lossy::<T>(),
            None => match nothing.deserialize::<T>() {
                Ok(value) => Ok(value),
                Err(_) => self.figment.focus(section).extract_lossy::<T>(),
            },
            Some(_) => self.figment.focus(section).extract_lossy::<T>(),
        };
        result.map_err(|errors| {
            let missing = found.is_none();
            let depth = section.split('.').count();
            ConfigError::invalid(
                errors
                    .into_iter()
                    .map(|mut error| {
                        // `extract_inner` appends the section to the path;
                        // `problem` puts it in front.
                        if scalar && error.path.len() >= depth {
                            error.path.truncate(error.path.len() - depth);
                        }
                        self.problem(section, error, missing)
                    })
                    .collect(),
            )
        })
    }

    /// Runs the application's checks; every failing check is a problem.
    pub(crate) fn validate<T>(
        &self,
        section: &str,
        value: &T,
        validators: &[crate::binding::Validator<T>],
    ) -> Result<(), ConfigError> {
        let problems: Vec<Problem> = validators
            .iter()
            .filter_map(
                |validate| match catch_unwind(AssertUnwindSafe(|| validate(value))) {
                    Ok(result) => result
                        .err()
                        .map(|error| self.validation_problem(section, &error)),
                    Err(payload) => Some(self.panic_problem(
                        section,
                        &format!("panicked in a check of `{}`", std::any::type_name::<T>()),
                        payload.as_ref(),
                    )),
                },
            )
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::invalid(problems))
        }
    }

    /// A panic while reading or checking `section`, as a problem of the
    /// section. Its message is kept unless the section holds a secret: a
    /// panic's message may quote a value.
    fn panic_problem(&self, section: &str, what: &str, payload: &(dyn Any + Send)) -> Problem {
        let message = if self.withheld(section) {
            format!("{what} (the message is withheld: the section holds a secret)")
        } else {
            match payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
            {
                Some(text) => format!("{what}: {text}"),
                None => what.to_owned(),
            }
        };
        Problem::new(section.to_owned(), message, None)
    }

    /// Whether an error about `key` may not show what it found: the key is
    /// secret, or something beneath it is (serde reports a problem of a
    /// `#[serde(flatten)]` field, say, at the table that holds it).
    fn withheld(&self, key: &str) -> bool {
        self.secrets.is_secret(key) || !self.secret_texts(key).is_empty()
    }

    /// The text of every secret value at or beneath `key`, to scrub from the
    /// application's own messages (a check may quote what it refuses).
    fn secret_texts(&self, key: &str) -> Vec<String> {
        fn collect(
            secrets: &Secrets,
            key: &str,
            value: &Value,
            secret: bool,
            out: &mut Vec<String>,
        ) {
            let secret = secret || (!key.is_empty() && secrets.is_secret(key));
            let child = |name: &str| match key {
                "" => name.to_owned(),
                _ => format!("{key}.{name}"),
            };
            match value {
                Value::Dict(_, dict) => {
                    for (name, value) in dict {
                        collect(secrets, &child(name), value, secret, out);
                    }
                }
                Value::Array(_, items) => {
                    for (index, value) in items.iter().enumerate() {
                        collect(secrets, &child(&index.to_string()), value, secret, out);
                    }
                }
                // A boolean is no secret of note, and scrubbing `true`
                // would garble a message.
                Value::String(_, text) if secret => out.push(text.clone()),
                number @ Value::Num(..) if secret => out.push(found_value(number)),
                _ => {}
            }
        }
        let value = if key.is_empty() {
            self.figment.extract::<Value>().ok()
        } else {
            self.figment.find_value(key).ok()
        };
        let mut texts = Vec::new();
        if let Some(value) = value {
            collect(self.secrets, key, &value, false, &mut texts);
        }
        texts
    }

    /// `message` with the secret values at or beneath `key` withheld:
    /// any of at least 3 characters (shorter ones would garble the message
    /// and are no secret of note), as written and as `{:?}` escapes it.
    fn scrub(&self, key: &str, message: String) -> String {
        let mut texts: Vec<String> = self
            .secret_texts(key)
            .into_iter()
            .flat_map(|text| {
                let escaped = format!("{text:?}");
                let escaped = escaped[1..escaped.len() - 1].to_owned();
                [text, escaped]
            })
            .filter(|text| text.chars().count() >= 3)
            .collect();
        // The longest first, so that a secret holding another goes whole.
        texts.sort_by_key(|text| std::cmp::Reverse(text.len()));
        texts.iter().fold(message, |message, text| {
            message.replace(text.as_str(), REDACTED)
        })
    }

    fn problem(&self, section: &str, error: figment::Error, section_missing: bool) -> Problem {
        let mut key: Vec<String> = section
            .split('.')
            .filter(|segment| !segment.is_empty())
            .map(str::to_owned)
            .collect();
        key.extend(error.path.iter().cloned());
        let secret = |key: &[String]| self.withheld(&key.join("."));
        let message = match error.kind {
            Kind::MissingField(field) => {
                key.push(field.into_owned());
                "is required, and no source sets it".to_owned()
            }
            // figment's path already ends with the unknown key.
            Kind::UnknownField(_, expected) => {
                format!("is not a known key; expected {}", one_of(expected))
            }
            Kind::DuplicateField(field) => {
                key.push(field.to_owned());
                "is set twice".to_owned()
            }
            Kind::InvalidType(Actual::Map, expected)
                if section_missing && error.path.is_empty() =>
            {
                format!("is required ({}), and no source sets it", phrase(&expected))
            }
            Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                format!(
                    "expects {}, found {}",
                    phrase(&expected),
                    found_actual(&actual, secret(&key))
                )
            }
            Kind::InvalidLength(length, expected) => {
                format!("expects {}, found {length} items", phrase(&expected))
            }
            Kind::UnknownVariant(variant, expected) => {
                let variant = if secret(&key) {
                    REDACTED.to_owned()
                } else {
                    format!("{:?}", redact_url_value(&variant))
                };
                format!("expects {}, found {variant}", one_of(expected))
            }
            Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => {
                "is out of range for its type".to_owned()
            }
            Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => {
                format!("cannot hold {}", found_actual(&actual, secret(&key)))
            }
            Kind::Message(message) if secret(&key) => {
                let _ = message;
                "is invalid (the details are withheld: the key holds a secret)".to_owned()
            }
            Kind::Message(message) => format!("is invalid: {message}"),
        };
        let key = key.join(".");
        let origin = origin(self.figment, &key, self.content_root);
        Problem::new(key, message, origin)
    }

    fn validation_problem(&self, section: &str, error: &ValidationError) -> Problem {
        let key = match error.relative_key() {
            Some(relative) if section.is_empty() => relative.to_owned(),
            Some(relative) => format!("{section}.{relative}"),
            None => section.to_owned(),
        };
        let mut message = self.scrub(&key, error.text().to_owned());
        let origin = if error.relative_key().is_some() {
            if let Ok(value) = self.figment.find_value(&key) {
                let shown = if self.withheld(&key) {
                    REDACTED.to_owned()
                } else {
                    found_value(&value)
                };
                message = format!("{message}, found {shown}");
            }
            origin(self.figment, &key, self.content_root)
        } else {
            None
        };
        Problem::new(key, message, origin)
    }
}

/// serde's name for what it expected, in words.
fn phrase(expected: &str) -> String {
    match expected {
        // The narrow types name their range: a port of 70000 must say why.
        "u8" => "an integer from 0 to 255".to_owned(),
        "u16" => "an integer from 0 to 65535".to_owned(),
        "u32" | "u64" | "u128" | "usize" => "a non-negative integer".to_owned(),
        "i8" => "an integer from -128 to 127".to_owned(),
        "i16" => "an integer from -32768 to 32767".to_owned(),
        "i32" | "i64" | "i128" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("a map") => "a table".to_owned(),
        other if other.starts_with("a sequence") => "a list".to_owned(),
        other => other.to_owned(),
    }
}

fn one_of(expected: &[&str]) -> String {
    match expected {
        [] => "no keys here".to_owned(),
        [one] => format!("`{one}`"),
        many => {
            let quoted: Vec<String> = many.iter().map(|name| format!("`{name}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}

fn found_actual(actual: &Actual, secret: bool) -> String {
    match actual {
        Actual::Map => "a table".to_owned(),
        Actual::Seq => "a list".to_owned(),
        Actual::Unit | Actual::Option => "nothing".to_owned(),
        _ if secret => REDACTED.to_owned(),
        Actual::Str(text) => format!("{:?}", redact_url_value(text)),
        Actual::Bool(value) => value.to_string(),
        Actual::Unsigned(value) => value.to_string(),
        Actual::Signed(value) => value.to_string(),
        Actual::Float(value) => value.to_string(),
        Actual::Char(value) => format!("{value:?}"),
        other => other.to_string(),
    }
}

fn found_value(value: &Value) -> String {
    match value {
        Value::String(_, text) => format!("{:?}", redact_url_value(text)),
        Value::Char(_, value) => format!("{value:?}"),
        Value::Bool(_, value) => value.to_string(),
        Value::Num(_, number) => number
            .to_u128()
            .map(|n| n.to_string())
            .or_else(|| number.to_i128().map(|n| n.to_string()))
            .or_else(|| number.to_f64().map(|n| n.to_string()))
            .unwrap_or_else(|| "a number".to_owned()),
        Value::Empty(..) => "nothing".to_owned(),
        Value::Dict(..) => "a table".to_owned(),
        Value::Array(..) => "a list".to_owned(),
    }
}

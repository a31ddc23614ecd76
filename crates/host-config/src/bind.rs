//! Binding a section to a type, and turning serde's and the application's
//! complaints into problems that name the key, the value and its source.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use figment::error::{Actual, Kind};
use figment::value::{Dict, Empty, Tag, Value};
use figment::{Figment, Metadata};
use serde::de::DeserializeOwned;

use crate::keys;
use crate::layer::{Loaded, origin};
use crate::secrets::{REDACTED, Secrets, redact_url_value};
use crate::shape::Shape;
use crate::{ConfigError, Problem, ValidationError};

/// How many times a section is bound again to find its next problem.
const MAX_ROUNDS: usize = 256;

/// What binding does with a key that no field of its struct takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnknownKeys {
    /// Nothing (`Configuration::get`).
    Ignore,
    /// A warning naming the key and its source (a bound section).
    Warn,
    /// A problem: invalid configuration (a section that opted in).
    Deny,
}

/// The `index`th value tried in place of a key in error, so that binding
/// goes on to the next problem: one of them fits most types (a string, a
/// duration, a number, a boolean, a table, a list).
fn stand_in(index: usize) -> Option<Value> {
    Some(match index {
        0 => Value::from(String::new()),
        1 => Value::from("0s".to_owned()),
        2 => Value::from(0_u8),
        3 => Value::from(false),
        4 => Value::from(Dict::new()),
        5 => Value::from(Vec::<Value>::new()),
        _ => return None,
    })
}

/// Sets the key at `path` of `dict` (a step into a list is the item's
/// index), making the tables on its way.
fn set(dict: &mut Dict, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let entry = dict
        .entry(first.clone())
        .or_insert_with(|| Value::from(Dict::new()));
    set_in(entry, rest, value);
}

fn set_in(at: &mut Value, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *at = value;
        return;
    };
    if let Value::Array(_, items) = at
        && let Some(item) = first.parse::<usize>().ok().and_then(|i| items.get_mut(i))
    {
        return set_in(item, rest, value);
    }
    if at.as_dict().is_none() {
        *at = Value::from(Dict::new());
    }
    if let Value::Dict(_, dict) = at {
        set(dict, path, value);
    }
}

/// Removes the key at `path` of `dict`, if it is there.
fn remove(dict: &mut Dict, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at: Option<&mut Value> = None;
    for parent in parents {
        let next = match at {
            None => dict.get_mut(parent),
            Some(Value::Dict(_, inner)) => inner.get_mut(parent),
            Some(Value::Array(_, items)) => {
                parent.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            }
            Some(_) => None,
        };
        match next {
            Some(next) => at = Some(next),
            None => return,
        }
    }
    match at {
        None => {
            dict.remove(last);
        }
        Some(Value::Dict(_, inner)) => {
            inner.remove(last);
        }
        Some(_) => {}
    }
}

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
    /// Keys no field takes are ignored.
    pub(crate) fn extract<T: DeserializeOwned>(&self, section: &str) -> Result<T, ConfigError> {
        self.bind_section(section, UnknownKeys::Ignore).0
    }

    /// As [`extract`](Self::extract), for a bound section; beside the
    /// result, the keys that no field takes: a warning each, or, with
    /// [`UnknownKeys::Deny`], a problem (the checks still run, so that every
    /// problem is reported at once).
    ///
    /// A panicking `Deserialize` is a problem of the section too: at build
    /// it is invalid configuration, on a reload a rejected change (the
    /// watcher's thread must survive it).
    pub(crate) fn bind_section<T: DeserializeOwned>(
        &self,
        section: &str,
        unknown: UnknownKeys,
    ) -> (Result<T, ConfigError>, Vec<Problem>) {
        catch_unwind(AssertUnwindSafe(|| {
            self.extract_unguarded(section, unknown)
        }))
        .unwrap_or_else(|payload| {
            let problem = self.panic_problem(
                section,
                &format!(
                    "panicked while being read as `{}`",
                    std::any::type_name::<T>()
                ),
                payload.as_ref(),
            );
            (Err(ConfigError::invalid(vec![problem])), Vec::new())
        })
    }

    fn extract_unguarded<T: DeserializeOwned>(
        &self,
        section: &str,
        policy: UnknownKeys,
    ) -> (Result<T, ConfigError>, Vec<Problem>) {
        let root = self.root();
        let found = if section.is_empty() {
            Some((String::new(), root))
        } else {
            keys::find(&root, section)
        };
        if let Some((spelled, _)) = found
            .as_ref()
            .filter(|(_, value)| value.as_dict().is_none())
        {
            let depth = section.split('.').count();
            let result = self
                .figment
                .extract_inner_lossy::<T>(spelled)
                .map_err(|errors| {
                    ConfigError::invalid(
                        errors
                            .into_iter()
                            .map(|mut error| {
                                // `extract_inner` appends the section to the
                                // path; `problem` puts it in front.
                                if error.path.len() >= depth {
                                    error.path.truncate(error.path.len() - depth);
                                }
                                self.problem(section, error, false)
                            })
                            .collect(),
                    )
                });
            return (result, Vec::new());
        }
        let missing = found.is_none();
        // Nothing sets the key: an `Option` is `None`; anything else binds
        // from an empty table (so that defaults apply) or reports it missing.
        if missing && let Ok(value) = Value::Empty(Tag::Default, Empty::None).deserialize::<T>() {
            return (Ok(value), Vec::new());
        }
        let dict = found
            .and_then(|(_, value)| value.into_dict())
            .unwrap_or_default();
        let mut unknown = Vec::new();
        let dict = keys::to_fields(dict, &Shape::of::<T>(), section, &mut unknown);
        let ignored = match policy {
            UnknownKeys::Ignore => {
                return (self.every_problem::<T>(section, dict, missing), Vec::new());
            }
            UnknownKeys::Warn => {
                " and is ignored (`deny_unknown_keys()` on the binding makes it an error)"
            }
            UnknownKeys::Deny => "",
        };
        let unknown = unknown
            .into_iter()
            .map(|unknown| {
                Problem::new(
                    unknown.key.clone(),
                    format!(
                        "is not a known key{ignored}; expected {}",
                        one_of(&unknown.expected)
                    ),
                    self.origin(&unknown.key),
                )
            })
            .collect();
        (self.every_problem::<T>(section, dict, missing), unknown)
    }

    /// Binds `dict` (the section, its keys named as `T`'s fields) to `T`,
    /// reporting every problem serde can find, not only the first: after
    /// each, the key in error is set to a stand-in that fits (an unknown
    /// key of a struct that refuses them is removed) and `T` is bound again.
    fn every_problem<T: DeserializeOwned>(
        &self,
        section: &str,
        mut dict: Dict,
        missing: bool,
    ) -> Result<T, ConfigError> {
        let mut problems = Vec::new();
        // The keys set to a stand-in, and which stand-in.
        let mut stood_in: Vec<(Vec<String>, usize)> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let figment = Figment::from(Loaded {
                metadata: Metadata::named("section"),
                dict: dict.clone(),
            });
            let error = match figment.extract_lossy::<T>() {
                Ok(value) if problems.is_empty() => return Ok(value),
                Ok(_) => break,
                Err(errors) => match errors.into_iter().next() {
                    Some(error) => error,
                    None => break,
                },
            };
            let mut path = error.path.clone();
            if let Kind::MissingField(field) = &error.kind {
                path.push(field.to_string());
            }
            if let Some(index) = stood_in.iter().position(|(key, _)| path.starts_with(key)) {
                // A stand-in that does not fit: the next one, or, within
                // one (a table's required key), a stand-in there too.
                let next = if stood_in[index].0 == path {
                    match &error.kind {
                        Kind::UnknownVariant(found, expected)
                            if !expected.is_empty() && found != expected[0] =>
                        {
                            Some(Value::from(expected[0].to_owned()))
                        }
                        _ => {
                            stood_in[index].1 += 1;
                            stand_in(stood_in[index].1)
                        }
                    }
                } else {
                    stood_in.push((path.clone(), 0));
                    stand_in(0)
                };
                match next {
                    Some(value) => set(&mut dict, &path, value),
                    None => break,
                }
                continue;
            }
            let unknown_field = matches!(error.kind, Kind::UnknownField(..));
            problems.push(self.problem(section, error, missing));
            if path.is_empty() {
                break;
            }
            if unknown_field {
                remove(&mut dict, &path);
            } else {
                stood_in.push((path.clone(), 0));
                set(&mut dict, &path, Value::from(String::new()));
            }
        }
        Err(ConfigError::invalid(problems))
    }

    /// Everything the layers set.
    fn root(&self) -> Value {
        self.figment
            .extract::<Value>()
            .unwrap_or_else(|_| Value::from(Dict::new()))
    }

    /// The value at `key`, found in any case.
    fn find(&self, key: &str) -> Option<Value> {
        if key.is_empty() {
            return Some(self.root());
        }
        keys::find(&self.root(), key).map(|(_, value)| value)
    }

    /// The source of the value at `key` (found in any case).
    fn origin(&self, key: &str) -> Option<String> {
        let (spelled, value) = keys::find(&self.root(), key)?;
        origin(self.figment, &spelled, &value, self.content_root)
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
        let value = self.find(key);
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
        let origin = self.origin(&key);
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
            if let Some(value) = self.find(&key) {
                let shown = if self.withheld(&key) {
                    REDACTED.to_owned()
                } else {
                    found_value(&value)
                };
                message = format!("{message}, found {shown}");
            }
            self.origin(&key)
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

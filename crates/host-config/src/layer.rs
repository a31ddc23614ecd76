//! The layers of a configuration, merged in order (later wins), and how a
//! value's source is named in errors.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use figment::providers::Env;
use figment::value::{Dict, Map, Num, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use crate::ConfigError;
use crate::args::Argument;
use crate::file::FileLayer;

/// Marks the metadata of our environment and command-line layers, whose
/// interpolation names the variable or argument.
const ENVIRONMENT_SOURCE: &str = "host-config:environment";
const ARGUMENTS_SOURCE: &str = "host-config:arguments";

/// One layer of the configuration.
#[derive(Clone)]
pub(crate) enum Layer {
    Provider(SharedProvider),
    File(FileLayer),
    Environment { prefix: String },
    Arguments(Vec<Argument>),
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider(provider) => write!(f, "provider {}", provider.0.metadata().name),
            Self::File(file) => write!(f, "file {}", file.path.display()),
            Self::Environment { prefix } => write!(f, "environment variables {prefix}*"),
            // Values are never shown: they may be secrets.
            Self::Arguments(arguments) => write!(f, "{} command-line arguments", arguments.len()),
        }
    }
}

/// Reads every layer (files are read again each time) and merges them.
pub(crate) fn load(layers: &[Layer]) -> Result<Figment, ConfigError> {
    let mut figment = Figment::new();
    for layer in layers {
        figment = match layer {
            Layer::Provider(provider) => figment.merge(provider.clone()),
            Layer::File(file) => match file.load()? {
                Some(dict) => figment.merge(Loaded {
                    metadata: Metadata::from("configuration file", Source::File(file.path.clone())),
                    dict,
                }),
                None => figment,
            },
            Layer::Environment { prefix } => figment.merge(EnvironmentLayer(prefix.clone())),
            Layer::Arguments(arguments) => arguments.iter().fold(figment, |figment, argument| {
                let dict = match figment::util::nest(&argument.key, lenient(&argument.value)) {
                    Value::Dict(_, dict) => dict,
                    _ => Dict::new(),
                };
                figment.merge(Loaded {
                    metadata: Metadata::from(
                        "command line",
                        Source::Custom(ARGUMENTS_SOURCE.into()),
                    )
                    .interpolater(|_, keys| format!("command-line argument --{}", keys.join("."))),
                    dict,
                })
            }),
        };
    }
    Ok(figment)
}

/// A value from a variable or an argument: lists, tables and quoted text are
/// parsed; an integer or a boolean stays the text it was written as (`007`
/// for a string), which the binding's lossy reading makes a number or a
/// boolean when the type asks for one. A decimal stays a number: the lossy
/// reading would make `0.1` an `f32`.
fn lenient(text: &str) -> Value {
    match text.parse::<Value>() {
        Ok(
            value @ (Value::String(..)
            | Value::Array(..)
            | Value::Dict(..)
            | Value::Num(_, Num::F32(_) | Num::F64(_))),
        ) => value,
        _ => Value::from(text.to_owned()),
    }
}

/// Names the source of the value at `key`, as `appsettings.toml` (relative
/// to the content root), `environment variable APP_WORKER__INTERVAL` or
/// `command-line argument --worker.interval`.
pub(crate) fn origin(figment: &Figment, key: &str, content_root: &Path) -> Option<String> {
    let metadata = figment.find_metadata(key)?;
    Some(match &metadata.source {
        Some(Source::File(path)) => path
            .strip_prefix(content_root)
            .unwrap_or(path)
            .display()
            .to_string(),
        // A table is no one variable or argument: those name the layer.
        Some(Source::Custom(mark))
            if (mark == ENVIRONMENT_SOURCE || mark == ARGUMENTS_SOURCE)
                && figment
                    .find_value(key)
                    .is_ok_and(|value| value.as_dict().is_none()) =>
        {
            let keys: Vec<&str> = key.split('.').collect();
            metadata.interpolate(&Profile::Default, &keys)
        }
        _ => metadata.name.to_string(),
    })
}

/// An application's provider, shared so that a reload can merge it again.
#[derive(Clone)]
pub(crate) struct SharedProvider(Arc<dyn Provider + Send + Sync>);

impl SharedProvider {
    pub(crate) fn new(provider: impl Provider + Send + Sync + 'static) -> Self {
        Self(Arc::new(provider))
    }
}

impl Provider for SharedProvider {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.0.data()
    }

    fn profile(&self) -> Option<Profile> {
        self.0.profile()
    }
}

/// Values we parsed, under the metadata that names their source.
struct Loaded {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Loaded {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// figment's `Env` (prefix, `__` for nesting, keys lowercased), values
/// read [leniently](lenient), under metadata that names the variable.
struct EnvironmentLayer(String);

impl Provider for EnvironmentLayer {
    fn metadata(&self) -> Metadata {
        let prefix = self.0.to_ascii_uppercase();
        Metadata::from(
            "environment variables",
            Source::Custom(ENVIRONMENT_SOURCE.into()),
        )
        .interpolater(move |_, keys| {
            format!(
                "environment variable {prefix}{}",
                keys.join("__").to_ascii_uppercase()
            )
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (key, text) in Env::prefixed(&self.0).split("__").iter() {
            insert(&mut dict, key.as_str(), lenient(&text));
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Sets the dotted `key` in `dict`, making the tables on its way.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if entry.as_dict().is_none() {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

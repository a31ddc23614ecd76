//! The layers of a configuration, merged in order (later wins), and how a
//! value's source is named in errors.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use figment::providers::Env;
use figment::value::{Dict, Map, Num, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use crate::args::Argument;
use crate::file::FileLayer;
use crate::{ConfigError, keys};

/// Marks the metadata of our environment and command-line layers, whose
/// interpolation names the variable or argument.
const ENVIRONMENT_SOURCE: &str = "host-config:environment";
const ARGUMENTS_SOURCE: &str = "host-config:arguments";

/// One layer of the configuration.
#[derive(Clone)]
pub(crate) enum Layer {
    Provider(SharedProvider),
    File(FileLayer),
    Environment {
        prefix: String,
    },
    /// Variables without the prefix whose names nest with `__`
    /// (`Greeting__Message`), as .NET reads them; those with the prefix
    /// are the other layer's.
    UnprefixedEnvironment {
        prefix: Option<String>,
    },
    Arguments(Vec<Argument>),
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Provider(provider) => write!(f, "provider {}", provider.0.metadata().name),
            Self::File(file) => write!(f, "file {}", file.path.display()),
            Self::Environment { prefix } => write!(f, "environment variables {prefix}*"),
            Self::UnprefixedEnvironment { .. } => f.write_str("environment variables *__*"),
            // Values are never shown: they may be secrets.
            Self::Arguments(arguments) => write!(f, "{} command-line arguments", arguments.len()),
        }
    }
}

/// Reads every layer (files are read again each time) and merges them,
/// key by key in any case (see [`keys`](crate::keys)).
///
/// # Errors
///
/// A file is malformed or unreadable, or one file or provider spells a key
/// twice in different cases.
pub(crate) fn load(layers: &[Layer], content_root: &Path) -> Result<Figment, ConfigError> {
    let mut figment = Figment::new();
    let mut clashes = Vec::new();
    // The keys merged so far, as they are spelled: each layer's keys are
    // spelled alike. Kept beside the figment, since extracting the merged
    // tree before each layer (and each argument) cost a whole merge each.
    let mut known = Dict::new();
    for layer in layers {
        figment = match layer {
            Layer::Provider(provider) => {
                let data = provider.data();
                if let Ok(data) = &data {
                    let name = provider.metadata().name.to_string();
                    for dict in data.values() {
                        keys::clashes(dict, "", &name, &mut clashes);
                    }
                }
                let data = data.map(|data| {
                    data.into_iter()
                        .map(|(profile, dict)| (profile, keys::respell(dict, Some(&known), "")))
                        .collect::<figment::value::Map<_, _>>()
                });
                if let Ok(data) = &data {
                    // What `extract` sees: the default and the global profile.
                    for (profile, dict) in data {
                        if *profile == figment::Profile::Default
                            || *profile == figment::Profile::Global
                        {
                            keys::note(&mut known, dict);
                        }
                    }
                }
                figment.merge(Respelled {
                    metadata: provider.metadata(),
                    profile: provider.profile(),
                    data,
                })
            }
            Layer::File(file) => match file.load()? {
                Some(dict) => {
                    let name = file
                        .path
                        .strip_prefix(content_root)
                        .unwrap_or(&file.path)
                        .display()
                        .to_string();
                    keys::clashes(&dict, "", &name, &mut clashes);
                    let dict = keys::respell(dict, Some(&known), "");
                    keys::note(&mut known, &dict);
                    figment.merge(Loaded {
                        metadata: Metadata::from(
                            "configuration file",
                            Source::File(file.path.clone()),
                        ),
                        dict,
                    })
                }
                None => figment,
            },
            Layer::Environment { prefix } => {
                let dict = environment(Env::prefixed(prefix));
                let dict = keys::respell(dict, Some(&known), "");
                keys::note(&mut known, &dict);
                figment.merge(Loaded {
                    metadata: environment_metadata(prefix.to_ascii_uppercase(), false),
                    dict,
                })
            }
            Layer::UnprefixedEnvironment { prefix } => {
                let prefix = prefix.clone().unwrap_or_default().to_ascii_uppercase();
                let variables = Env::raw().filter(move |key| {
                    let name = key.as_str().to_ascii_uppercase();
                    name.contains("__") && (prefix.is_empty() || !name.starts_with(&prefix))
                });
                let dict = environment(variables);
                let dict = keys::respell(dict, Some(&known), "");
                keys::note(&mut known, &dict);
                figment.merge(Loaded {
                    metadata: environment_metadata(String::new(), true),
                    dict,
                })
            }
            Layer::Arguments(arguments) => arguments.iter().fold(figment, |figment, argument| {
                let dict = match figment::util::nest(&argument.key, lenient(&argument.value)) {
                    Value::Dict(_, dict) => dict,
                    _ => Dict::new(),
                };
                let dict = keys::respell(dict, Some(&known), "");
                keys::note(&mut known, &dict);
                let spelled = argument.spelled.clone();
                figment.merge(Loaded {
                    metadata: Metadata::from(
                        "command line",
                        Source::Custom(ARGUMENTS_SOURCE.into()),
                    )
                    .interpolater(move |_, _| format!("command-line argument --{spelled}")),
                    dict,
                })
            }),
        };
    }
    if !clashes.is_empty() {
        return Err(ConfigError::invalid(clashes));
    }
    Ok(figment)
}

/// The variables `env` selects, nested on `__` (figment lowercases their
/// names), their values read [leniently](lenient).
fn environment(env: Env) -> Dict {
    let mut dict = Dict::new();
    for (key, text) in env.split("__").iter() {
        insert(&mut dict, key.as_str(), lenient(&text));
    }
    dict
}

/// Names a variable from its key: `{prefix}{KEYS}` joined with `__`; an
/// unprefixed one as the process spells it (`Greeting__Message`).
fn environment_metadata(prefix: String, spell_from_process: bool) -> Metadata {
    Metadata::from(
        "environment variables",
        Source::Custom(ENVIRONMENT_SOURCE.into()),
    )
    .interpolater(move |_, keys| {
        let name = format!("{prefix}{}", keys.join("__").to_ascii_uppercase());
        let name = if spell_from_process {
            std::env::vars_os()
                .filter_map(|(key, _)| key.into_string().ok())
                .find(|key| key.eq_ignore_ascii_case(&name))
                .unwrap_or(name)
        } else {
            name
        };
        format!("environment variable {name}")
    })
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

/// Names the source of `value`, found at `key` (as spelled), as
/// `appsettings.toml` (relative to the content root), `environment variable
/// APP_WORKER__INTERVAL` or `command-line argument --worker.interval`.
pub(crate) fn origin(
    figment: &Figment,
    key: &str,
    value: &Value,
    content_root: &Path,
) -> Option<String> {
    let metadata = figment.get_metadata(value.tag())?;
    Some(match &metadata.source {
        Some(Source::File(path)) => path
            .strip_prefix(content_root)
            .unwrap_or(path)
            .display()
            .to_string(),
        // A table is no one variable or argument: those name the layer.
        Some(Source::Custom(mark))
            if (mark == ENVIRONMENT_SOURCE || mark == ARGUMENTS_SOURCE)
                && value.as_dict().is_none() =>
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
pub(crate) struct Loaded {
    pub(crate) metadata: Metadata,
    pub(crate) dict: Dict,
}

impl Provider for Loaded {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// An application's provider, its keys spelled as the layers below spell them.
struct Respelled {
    metadata: Metadata,
    profile: Option<Profile>,
    data: Result<Map<Profile, Dict>, figment::Error>,
}

impl Provider for Respelled {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.data.clone()
    }

    fn profile(&self) -> Option<Profile> {
        self.profile.clone()
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

//! `Configuration`: the merged layers, read by key or bound to types, and
//! reloaded as a whole.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use figment::Figment;
use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;

use crate::bind::Context;
use crate::layer::{self, Layer};
use crate::monitor::{Bound, Section};
use crate::reload::Watcher;
use crate::secrets::Secrets;
use crate::{ConfigError, OptionsBinding, OptionsMonitor, Problem};

/// The application's configuration: every layer merged, later layers
/// winning (see the [precedence](crate#precedence)), as .NET's
/// `IConfiguration`. Cheap to clone; resolvable from the host's container.
///
/// Read a value with [`get`](Self::get), or bind a section to a type with
/// [`bind`](Self::bind) to follow its reloads.
///
/// # Examples
///
/// ```
/// use figment::providers::Serialized;
/// use host_config::ConfigurationBuilder;
///
/// let mut builder = ConfigurationBuilder::new();
/// builder.add_defaults(Serialized::default("worker.batch", 10));
/// builder.args(["app", "--worker.batch=25"]);
/// let configuration = builder.build("Production", std::env::temp_dir())?;
/// assert_eq!(configuration.get::<u32>("worker.batch")?, 25);
/// # Ok::<(), host_config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Configuration {
    shared: Arc<Shared>,
}

struct Shared {
    layers: Vec<Layer>,
    content_root: PathBuf,
    secrets: Secrets,
    current: RwLock<Arc<Figment>>,
    sections: Mutex<Vec<Arc<dyn Section>>>,
    /// Held by a reload and a bind, so that neither sees half of the other.
    reloading: Mutex<()>,
    watcher: Mutex<Option<Watcher>>,
}

impl Configuration {
    pub(crate) fn load(
        layers: Vec<Layer>,
        content_root: PathBuf,
        secrets: Secrets,
    ) -> Result<Self, ConfigError> {
        let figment = layer::load(&layers, &content_root)?;
        Ok(Self {
            shared: Arc::new(Shared {
                layers,
                content_root,
                secrets,
                current: RwLock::new(Arc::new(figment)),
                sections: Mutex::new(Vec::new()),
                reloading: Mutex::new(()),
                watcher: Mutex::new(None),
            }),
        })
    }

    /// Reads the value at `key` (`"worker.interval"`; `""` for everything)
    /// as a `T`. A missing table binds from nothing, so a type whose fields
    /// have defaults (`#[serde(default)]`) still reads.
    ///
    /// # Errors
    ///
    /// The value does not fit `T`: the error names the key, what was
    /// expected, what was found (unless the key is secret) and its source.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        let figment = self.figment();
        self.context(&figment).extract(key)
    }

    /// Binds a section to `T` and runs the binding's checks; the returned
    /// monitor follows every later reload. Register it with the container
    /// to inject `Options<T>`, `OptionsSnapshot<T>` and `OptionsMonitor<T>`
    /// (the host builder's `configure::<T>` does all of this).
    ///
    /// # Errors
    ///
    /// The section does not bind or a check fails; every problem is listed.
    /// A panicking `Deserialize` or check is one of them, naming the section.
    pub fn bind<T>(&self, binding: OptionsBinding<T>) -> Result<OptionsMonitor<T>, ConfigError>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let _reloading = self.shared.reloading.lock();
        let figment = self.figment();
        let bound = Bound::bind(binding, self.context(&figment))?;
        self.shared.sections.lock().push(bound.clone());
        Ok(OptionsMonitor::new(bound))
    }

    /// Reads every layer again (files from disk, environment variables),
    /// binds and checks every bound section, and, if all of them pass,
    /// replaces the configuration and publishes the sections whose values
    /// changed. Returns those sections.
    ///
    /// # Errors
    ///
    /// A file is malformed or a section does not bind or validate (its
    /// `Deserialize` or a check panicking included): nothing changes, and
    /// every bound value stays as it was.
    pub fn reload(&self) -> Result<Vec<String>, ConfigError> {
        let _reloading = self.shared.reloading.lock();
        let next = layer::load(&self.shared.layers, &self.shared.content_root)?;
        let previous = self.figment();
        let sections = self.shared.sections.lock().clone();
        let context = self.context(&next);
        let mut staged = Vec::new();
        let mut errors = Vec::new();
        for section in sections {
            let key = section.section().to_owned();
            let changed = section_value(&previous, &key) != section_value(&next, &key);
            if !changed {
                continue;
            }
            match section.stage(context) {
                Ok(publish) => staged.push((key, publish)),
                Err(error) => errors.push(error),
            }
        }
        if let Some(error) = ConfigError::combine(errors) {
            return Err(error);
        }
        *self.shared.current.write() = Arc::new(next);
        Ok(staged
            .into_iter()
            .map(|(key, publish)| {
                publish();
                key
            })
            .collect())
    }

    /// The keys of the bound sections that no field takes (as each section
    /// was last bound), each with its source: what the warnings logged at
    /// bind said, for a host whose log subscriber is installed after the
    /// configuration it reads is bound. Empty for sections that deny
    /// unknown keys ([`OptionsBinding::deny_unknown_keys`]): theirs are errors.
    pub fn unknown_keys(&self) -> Vec<Problem> {
        self.shared
            .sections
            .lock()
            .iter()
            .flat_map(|section| section.unknown_keys())
            .collect()
    }

    /// The merged configuration as a `figment::Figment`, for what the
    /// methods here do not cover (a snapshot: a reload replaces it).
    pub fn figment(&self) -> Arc<Figment> {
        self.shared.current.read().clone()
    }

    /// Whether the value at `key` is withheld from errors and logs (see
    /// [secrets](crate#secrets)).
    pub fn is_secret(&self, key: &str) -> bool {
        self.shared.secrets.is_secret(key)
    }

    /// The directory relative file paths are resolved against.
    pub fn content_root(&self) -> &Path {
        &self.shared.content_root
    }

    /// Whether a file watcher is reloading the configuration.
    pub fn is_watching(&self) -> bool {
        self.shared.watcher.lock().is_some()
    }

    pub(crate) fn set_watcher(&self, watcher: Watcher) {
        *self.shared.watcher.lock() = Some(watcher);
    }

    pub(crate) fn downgrade(&self) -> WeakConfiguration {
        WeakConfiguration(Arc::downgrade(&self.shared))
    }

    fn context<'a>(&'a self, figment: &'a Figment) -> Context<'a> {
        Context {
            figment,
            content_root: &self.shared.content_root,
            secrets: &self.shared.secrets,
        }
    }
}

impl fmt::Debug for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Layers only: values may be secrets.
        f.debug_struct("Configuration")
            .field("layers", &self.shared.layers)
            .field("content_root", &self.shared.content_root)
            .field("watching", &self.is_watching())
            .finish_non_exhaustive()
    }
}

/// A configuration that a file watcher reloads without keeping it alive.
#[derive(Clone)]
pub(crate) struct WeakConfiguration(Weak<Shared>);

impl WeakConfiguration {
    pub(crate) fn upgrade(&self) -> Option<Configuration> {
        self.0.upgrade().map(|shared| Configuration { shared })
    }
}

/// The values of a section (`""`: all of them; found in any case), to
/// tell whether a reload changed it.
fn section_value(figment: &Figment, key: &str) -> Option<figment::value::Value> {
    let root = figment.extract().ok()?;
    if key.is_empty() {
        Some(root)
    } else {
        crate::keys::find(&root, key).map(|(_, value)| value)
    }
}

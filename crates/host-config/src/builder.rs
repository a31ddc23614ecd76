//! `ConfigurationBuilder`: which layers, in which order, with which options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Provider;

use crate::args::{self, Argument};
use crate::layer::{Layer, SharedProvider};
use crate::secrets::Secrets;
use crate::{ConfigError, ConfigFile, Configuration, reload};

/// The prefix of the environment variables read by default: `APP_WORKER__INTERVAL`
/// sets `worker.interval`.
pub const DEFAULT_ENV_PREFIX: &str = "APP_";

/// How long a file must be quiet before a change reloads the configuration.
const DEFAULT_RELOAD_DELAY: Duration = Duration::from_millis(250);

/// Chooses the layers of a [`Configuration`]; see the
/// [precedence](crate#precedence). The host builder owns one
/// (`builder.configuration()`).
///
/// ```
/// use host_config::{ConfigFile, ConfigurationBuilder};
///
/// let mut builder = ConfigurationBuilder::new();
/// builder
///     .env_prefix("BILLING_")
///     .reload_on_change(true)
///     .add_file(ConfigFile::new("/etc/billing/overrides.toml").optional())
///     .secret("database.dsn")
///     .args(["billing", "--worker.interval=5s"]);
/// let configuration = builder.build("Production", std::env::temp_dir())?;
/// assert_eq!(configuration.get::<String>("worker.interval")?, "5s");
/// # Ok::<(), host_config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ConfigurationBuilder {
    env_prefix: Option<String>,
    unprefixed_environment: bool,
    argument_aliases: Vec<(String, String)>,
    appsettings: bool,
    reload_appsettings: bool,
    reload_delay: Duration,
    files: Vec<ConfigFile>,
    defaults: Vec<SharedProviderDebug>,
    providers: Vec<SharedProviderDebug>,
    args: Vec<String>,
    secrets: Secrets,
}

/// A provider, shown in `Debug` by its name.
#[derive(Clone)]
struct SharedProviderDebug(SharedProvider);

impl std::fmt::Debug for SharedProviderDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.metadata().name)
    }
}

impl std::fmt::Debug for ConfigurationBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments by count only: their values may be secrets.
        f.debug_struct("ConfigurationBuilder")
            .field("env_prefix", &self.env_prefix)
            .field("unprefixed_environment", &self.unprefixed_environment)
            .field("argument_aliases", &self.argument_aliases)
            .field("appsettings", &self.appsettings)
            .field("reload_appsettings", &self.reload_appsettings)
            .field("reload_delay", &self.reload_delay)
            .field("files", &self.files)
            .field("defaults", &self.defaults)
            .field("providers", &self.providers)
            .field("args", &self.args.len())
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl ConfigurationBuilder {
    /// The default layers: `appsettings.toml`/`.json` and
    /// `appsettings.{Environment}.toml`/`.json` in the content root (optional,
    /// not reloaded), environment variables prefixed [`DEFAULT_ENV_PREFIX`],
    /// no command-line arguments until [`args`](Self::args).
    pub fn new() -> Self {
        Self {
            env_prefix: Some(DEFAULT_ENV_PREFIX.to_owned()),
            unprefixed_environment: false,
            argument_aliases: Vec::new(),
            appsettings: true,
            reload_appsettings: false,
            reload_delay: DEFAULT_RELOAD_DELAY,
            files: Vec::new(),
            defaults: Vec::new(),
            providers: Vec::new(),
            args: Vec::new(),
            secrets: Secrets::default(),
        }
    }

    /// The prefix of the environment variables that configure the
    /// application (`__` separates nested keys; names are lowercased into
    /// keys). Default: [`DEFAULT_ENV_PREFIX`].
    pub fn env_prefix(&mut self, prefix: impl Into<String>) -> &mut Self {
        self.env_prefix = Some(prefix.into());
        self
    }

    /// Whether environment variables without the prefix also configure the
    /// application when their names nest with `__`, as .NET reads them:
    /// `Greeting__Message=hi` sets `greeting.message` (keys match in any
    /// case). A variable without `__` (`PATH`, `HOME`) is never read, nor
    /// one with the prefix (the prefixed layer's). They sit just below the
    /// prefixed variables, so `APP_GREETING__MESSAGE` wins over
    /// `Greeting__Message`. Nothing is read when environment variables are
    /// left out ([`without_env`](Self::without_env)). Default: `false`.
    ///
    /// ```
    /// use host_config::ConfigurationBuilder;
    ///
    /// let mut builder = ConfigurationBuilder::new();
    /// builder.unprefixed_environment(true);
    /// # builder.build("Production", std::env::temp_dir())?;
    /// # Ok::<(), host_config::ConfigError>(())
    /// ```
    pub fn unprefixed_environment(&mut self, read: bool) -> &mut Self {
        self.unprefixed_environment = read;
        self
    }

    /// Makes the command-line argument `--{alias}` (in any case) set `key`,
    /// as `--urls` sets `web.urls` once the web server is added. The
    /// argument is named as written in errors. Default: no alias.
    ///
    /// ```
    /// use host_config::ConfigurationBuilder;
    ///
    /// let mut builder = ConfigurationBuilder::new();
    /// builder.argument_alias("urls", "web.urls").args(["app", "--urls=0.0.0.0:80"]);
    /// let configuration = builder.build("Production", std::env::temp_dir())?;
    /// assert_eq!(configuration.get::<String>("web.urls")?, "0.0.0.0:80");
    /// # Ok::<(), host_config::ConfigError>(())
    /// ```
    pub fn argument_alias(
        &mut self,
        alias: impl Into<String>,
        key: impl Into<String>,
    ) -> &mut Self {
        self.argument_aliases.push((alias.into(), key.into()));
        self
    }

    /// Leaves environment variables out of the configuration.
    pub fn without_env(&mut self) -> &mut Self {
        self.env_prefix = None;
        self
    }

    /// Whether the `appsettings` files of the content root are read.
    /// Default: `true`.
    pub fn appsettings(&mut self, read: bool) -> &mut Self {
        self.appsettings = read;
        self
    }

    /// Whether a change to an `appsettings` file reloads the configuration.
    /// Default: `false`.
    pub fn reload_on_change(&mut self, reload: bool) -> &mut Self {
        self.reload_appsettings = reload;
        self
    }

    /// How long a changed file must stay quiet before it is read again
    /// (an editor's save is several events). Default: 250 ms.
    pub fn reload_delay(&mut self, delay: Duration) -> &mut Self {
        self.reload_delay = delay;
        self
    }

    /// Adds a file, above the `appsettings` files and below the
    /// application's providers.
    pub fn add_file(&mut self, file: ConfigFile) -> &mut Self {
        self.files.push(file);
        self
    }

    /// Adds defaults (any `figment` provider, as
    /// `Serialized::defaults(MyDefaults::default())`), below every file.
    pub fn add_defaults(&mut self, provider: impl Provider + Send + Sync + 'static) -> &mut Self {
        self.defaults
            .push(SharedProviderDebug(SharedProvider::new(provider)));
        self
    }

    /// Adds a `figment` provider above the files and below environment
    /// variables and command-line arguments, so that an operator can still
    /// override what it sets.
    pub fn add_provider(&mut self, provider: impl Provider + Send + Sync + 'static) -> &mut Self {
        self.providers
            .push(SharedProviderDebug(SharedProvider::new(provider)));
        self
    }

    /// The command line, as `std::env::args()` gives it: the first item is
    /// the program's name and is skipped. Arguments are `--key=value` or
    /// `--key value`, nested keys with dots (`--worker.interval=5s`) or, as
    /// in .NET, with a colon (`--Worker:Interval=5s`; a `::`, as in a
    /// tracing target, stays); keys match in any case; everything after a
    /// lone `--` is left to the application. Default:
    /// none, so that a test binary's own flags never leak in.
    pub fn args<I>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.args = args.into_iter().skip(1).map(Into::into).collect();
        self
    }

    /// Marks `key` (and everything beneath it) as secret: its value never
    /// appears in errors or logs. Keys named like secrets are secret without
    /// being marked (see [`secret_name`](Self::secret_name)).
    pub fn secret(&mut self, key: impl AsRef<str>) -> &mut Self {
        self.secrets.mark(key.as_ref());
        self
    }

    /// Adds a name that makes every key holding it secret, as a whole word
    /// of the key (see [secrets](crate#secrets)): `secret_name("pin")` makes
    /// `atm.pin` and `atm.cardPin` secret, not `atm.pinned`. A name of
    /// several words (`"signing_salt"`, `"signingSalt"`) matches those words
    /// in a row, or run together (`signingsalt`, as a lowercased
    /// environment variable spells it).
    ///
    /// Default: `password`, `passwd`, `passphrase`, `pwd`, `secret`,
    /// `token`, `key`, `credential`, `dsn`, `connection_string`, and the
    /// run-together `apikey`, `accesskey`, `privatekey`, `secretkey`,
    /// `clientsecret`, `accesstoken`, `refreshtoken`, `authtoken`.
    ///
    /// ```
    /// use host_config::ConfigurationBuilder;
    ///
    /// let mut builder = ConfigurationBuilder::new();
    /// builder.secret_name("pin").remove_secret_name("key");
    /// let configuration = builder.build("Production", std::env::temp_dir())?;
    /// assert!(configuration.is_secret("atm.cardPin"));
    /// assert!(!configuration.is_secret("cache.key_prefix"));
    /// assert!(configuration.is_secret("db.password"));
    /// # Ok::<(), host_config::ConfigError>(())
    /// ```
    pub fn secret_name(&mut self, name: impl AsRef<str>) -> &mut Self {
        self.secrets.add_name(name.as_ref());
        self
    }

    /// Removes a name from those that make a key secret (spelled in any
    /// way that has the same words: `"api_key"`, `"apiKey"`), when it
    /// hides values an operator needs to see. Keys marked with
    /// [`secret`](Self::secret) stay secret. Removing `key` leaves the
    /// compounds `api_key` and the like secret until they are removed too.
    pub fn remove_secret_name(&mut self, name: impl AsRef<str>) -> &mut Self {
        self.secrets.remove_name(name.as_ref());
        self
    }

    /// The value of `--key` on the command line, if given (the host reads
    /// `--environment` this way); `None` if absent or if the command line
    /// is malformed (which [`build`](Self::build) reports).
    pub fn command_line_value(&self, key: &str) -> Option<String> {
        args::parse(&self.args, &self.secrets)
            .ok()?
            .into_iter()
            .rev()
            .find(|argument| argument.key.eq_ignore_ascii_case(key))
            .map(|argument| argument.value)
    }

    /// Reads every layer for the environment `environment_name` (its files
    /// are `appsettings.{environment_name}.toml` and `.json`, spelled as
    /// given) with relative paths resolved against `content_root`, and
    /// starts watching the files that reload on change.
    ///
    /// # Errors
    ///
    /// A malformed file (with its line and column), an unreadable or
    /// missing required file, or a command-line argument that is not
    /// `--key=value`.
    pub fn build(
        &self,
        environment_name: &str,
        content_root: impl AsRef<Path>,
    ) -> Result<Configuration, ConfigError> {
        let content_root = content_root.as_ref();
        let mut arguments: Vec<Argument> = args::parse(&self.args, &self.secrets)?;
        for argument in &mut arguments {
            if let Some((_, key)) = self
                .argument_aliases
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(&argument.key))
            {
                argument.key.clone_from(key);
            }
        }
        let mut layers: Vec<Layer> = self
            .defaults
            .iter()
            .map(|provider| Layer::Provider(provider.0.clone()))
            .collect();
        if self.appsettings {
            let base = [
                "appsettings".to_owned(),
                format!("appsettings.{environment_name}"),
            ];
            for stem in base {
                for extension in ["toml", "json"] {
                    let file = ConfigFile::new(format!("{stem}.{extension}"))
                        .optional()
                        .reload_on_change(self.reload_appsettings);
                    layers.push(Layer::File(file.resolve(content_root)?));
                }
            }
        }
        for file in &self.files {
            layers.push(Layer::File(file.resolve(content_root)?));
        }
        layers.extend(
            self.providers
                .iter()
                .map(|provider| Layer::Provider(provider.0.clone())),
        );
        if self.unprefixed_environment && self.env_prefix.is_some() {
            layers.push(Layer::UnprefixedEnvironment {
                prefix: self.env_prefix.clone().filter(|prefix| !prefix.is_empty()),
            });
        }
        if let Some(prefix) = &self.env_prefix {
            layers.push(Layer::Environment {
                prefix: prefix.clone(),
            });
        }
        if !arguments.is_empty() {
            layers.push(Layer::Arguments(arguments));
        }
        let watched: Vec<PathBuf> = layers
            .iter()
            .filter_map(|layer| match layer {
                Layer::File(file) if file.reload => Some(file.path.clone()),
                _ => None,
            })
            .collect();
        let watched = reload::WatchedFiles::new(watched);
        let configuration =
            Configuration::load(layers, content_root.to_path_buf(), self.secrets.clone())?;
        if let Some(watcher) = reload::watch(
            &configuration,
            watched,
            self.reload_delay,
            reload::Backend::Native,
        ) {
            configuration.set_watcher(watcher);
        }
        Ok(configuration)
    }
}

impl Default for ConfigurationBuilder {
    fn default() -> Self {
        Self::new()
    }
}

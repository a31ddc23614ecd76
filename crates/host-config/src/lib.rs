//! Layered configuration for the generic host, on `figment`: files,
//! environment variables and the command line merged into one
//! [`Configuration`]; sections bound to typed options and validated before
//! anything starts; opt-in reload when a file changes.
//!
//! ```
//! use std::time::Duration;
//! use host_config::{ConfigurationBuilder, OptionsBinding, ValidationError};
//!
//! #[derive(Debug, serde::Deserialize)]
//! #[serde(default)]
//! struct WorkerOptions {
//!     #[serde(with = "host_config::duration")]
//!     interval: Duration,
//!     message: String,
//! }
//!
//! impl Default for WorkerOptions {
//!     fn default() -> Self {
//!         Self { interval: Duration::from_secs(1), message: "hello".into() }
//!     }
//! }
//!
//! let mut builder = ConfigurationBuilder::new();
//! builder.args(["app", "--worker.interval=250ms"]);
//! let configuration = builder.build("Production", std::env::temp_dir())?;
//!
//! let mut binding = OptionsBinding::<WorkerOptions>::new("worker");
//! binding.validate(|options| match options.interval.is_zero() {
//!     true => Err(ValidationError::key("interval", "must not be zero")),
//!     false => Ok(()),
//! });
//! let worker = configuration.bind(binding)?;
//! assert_eq!(worker.current().interval, Duration::from_millis(250));
//! assert_eq!(worker.current().message, "hello");
//! # Ok::<(), host_config::ConfigError>(())
//! ```
//!
//! # Precedence
//!
//! Later layers win, key by key:
//!
//! | # | layer | added by |
//! |---|---|---|
//! | 1 | the application's defaults (and `#[serde(default)]`) | [`ConfigurationBuilder::add_defaults`] |
//! | 2 | `appsettings.toml`, then `appsettings.json`, in the content root | by default (optional files) |
//! | 3 | `appsettings.{Environment}.toml`, then `.json`, the name as spelled | by default (optional files) |
//! | 4 | the application's files | [`ConfigurationBuilder::add_file`] |
//! | 5 | the application's providers | [`ConfigurationBuilder::add_provider`] |
//! | 6 | environment variables `APP_SECTION__KEY`, and `Section__Key` when asked for | by default; [`ConfigurationBuilder::env_prefix`], [`ConfigurationBuilder::unprefixed_environment`] |
//! | 7 | command-line arguments `--section.key=value` or `--Section:Key=value` | [`ConfigurationBuilder::args`] |
//!
//! Keys match in any case, as in .NET: a later layer overrides a key
//! whatever its case, `configure::<T>("greeting")` binds a file's
//! `"Greeting"` section, and a key binds to the field it spells in any case
//! (`"Message"` to `message`). One file or provider spelling a key twice
//! (`Greeting` and `greeting` in one table) is an error naming both. The
//! keys beneath `logging.level` are tracing targets and keep their case.
//! A key that no field takes is ignored with a warning naming it and its
//! source, or is an error when the binding asks
//! ([`OptionsBinding::deny_unknown_keys`]).
//!
//! Values from variables and arguments are parsed leniently: `5` reads as a
//! number or as the string `"5"`, whichever the type asks for (`007` stays
//! `"007"`); a decimal such as `1.5` is a number (quote it, `"1.5"`, for a
//! string). Any string reads as a number or a boolean (`"yes"`, `"on"`,
//! `"1"`) when the type asks for one, so a file's `port = "8080"` binds too.
//!
//! # Errors
//!
//! Every problem names the key, what was expected, what was found and the
//! source (see [`ConfigError`]); every problem of a section is reported at
//! once, each bad value and each missing key (see the errors of
//! `docs/configuration.md` for the few that hide others):
//!
//! ```text
//! invalid configuration: `worker.interval` expects a duration such as "5s", found "fast"
//!   from: environment variable APP_WORKER__INTERVAL
//! ```
//!
//! # Secrets
//!
//! The value of a secret key never appears in an error or a log: it reads
//! `[redacted]`, and serde's own messages about it are withheld. A key is
//! secret when one of its words (split on `.`, `_`, `-` and camelCase) is a
//! secret name: `password`, `passwd`, `passphrase`, `pwd`, `secret`,
//! `token`, `key`, `credential`, `dsn`, `connection_string` (plurals too),
//! or a compound run together as a lowercased environment variable spells
//! it (`apikey`, `connectionstring`). So `db.password`, `api_key`, `apiKey`
//! and `ConnectionString` are secret; `web.urls`, `keyboard` are not. The
//! application adds and removes names ([`ConfigurationBuilder::secret_name`],
//! [`ConfigurationBuilder::remove_secret_name`]) and marks keys
//! ([`ConfigurationBuilder::secret`]).
//!
//! Whatever the key, the password of a URL (`postgres://u:[redacted]@h`),
//! a secret value quoted in a check's message, and a stray command-line
//! argument right after a secret's (`--db.password= hunter2`) are withheld
//! too; a problem reported at a table that holds a secret shows no value.
//!
//! # Reload
//!
//! Files reload when they opt in ([`ConfigurationBuilder::reload_on_change`]
//! for the `appsettings` files, [`ConfigFile::reload_on_change`] for
//! others). Any change in a watched file's directory is debounced, then each
//! watched file is read again (through its symlinks, so that a Kubernetes
//! ConfigMap's update, which renames a new `..data` symlink over the old,
//! is seen); if one's content changed, every layer is read again and every
//! bound section is bound and validated again: if all pass, the
//! [`OptionsMonitor`]s of the changed sections publish their new values;
//! otherwise (a panicking `Deserialize` or check included) the change is
//! rejected with an error log and every value stays as it was. Watching
//! uses the system's file events and falls back to polling when they are
//! unavailable.
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `figment` | merges the layers, keeps each value's source, deserializes with the key path in errors |
//! | `serde` | binding sections to the application's types |
//! | `toml`, `serde_json` | parsing files ourselves, so that errors carry the line and column |
//! | `humantime` | durations written as `"30s"` or `"1m 30s"` ([`duration`]) |
//! | `notify`, `notify-debouncer-mini` | file events (with a polling fallback), debounced |
//! | `tokio` (`sync`) | the `watch` channel behind [`OptionsMonitor`] |
//! | `host-di` | [`Options`](host_di::Options), and injecting the monitor and the snapshot |
//! | `parking_lot`, `tracing` | locks; reload logs |

#![doc(test(attr(deny(warnings))))]

mod args;
mod bind;
mod binding;
mod builder;
mod configuration;
pub mod duration;
mod error;
mod file;
mod keys;
mod layer;
mod monitor;
mod reload;
mod secrets;
mod services;
mod shape;

pub use binding::OptionsBinding;
pub use builder::{ConfigurationBuilder, DEFAULT_ENV_PREFIX};
pub use configuration::Configuration;
pub use error::{ConfigError, Problem, ValidationError};
pub use file::{ConfigFile, FileFormat};
pub use monitor::{OptionsMonitor, OptionsSnapshot};
pub use services::OptionsServiceCollectionExt;

/// `figment`, re-exported for applications that add their own providers.
pub use figment;

/// The tracing target of configuration messages (reloads, rejected changes).
pub const CONFIGURATION_TARGET: &str = "host::configuration";

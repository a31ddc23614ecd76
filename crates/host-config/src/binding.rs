//! `OptionsBinding<T>`: a section bound to a type, with the application's checks.

use std::fmt;
use std::sync::Arc;

use crate::ValidationError;

/// One of the application's checks of an options value.
pub(crate) type Validator<T> = Arc<dyn Fn(&T) -> Result<(), ValidationError> + Send + Sync>;

/// Binds a configuration section to the type `T` (any `serde::Deserialize`
/// type), with the application's own checks: pass it to
/// [`Configuration::bind`](crate::Configuration::bind), or use the host
/// builder's `configure::<T>("section")`, which returns one.
///
/// Binding and checks run when the configuration is bound (before any
/// service starts) and again on every reload.
///
/// ```
/// use std::time::Duration;
/// use host_config::{OptionsBinding, ValidationError};
///
/// #[derive(serde::Deserialize)]
/// struct WorkerOptions {
///     #[serde(with = "host_config::duration")]
///     interval: Duration,
/// }
///
/// let mut binding = OptionsBinding::<WorkerOptions>::new("worker");
/// binding.validate(|options| {
///     if options.interval < Duration::from_millis(10) {
///         return Err(ValidationError::key("interval", "must be at least 10ms"));
///     }
///     Ok(())
/// });
/// assert_eq!(binding.section(), "worker");
/// ```
pub struct OptionsBinding<T> {
    section: String,
    validators: Vec<Validator<T>>,
    deny_unknown_keys: bool,
}

impl<T> OptionsBinding<T> {
    /// Binds the section `section` (`"worker"`, `"billing.retry"`; `""` for the root).
    pub fn new(section: impl Into<String>) -> Self {
        Self {
            section: section.into(),
            validators: Vec::new(),
            deny_unknown_keys: false,
        }
    }

    /// Adds a check of the bound value. All checks run, and every failure is
    /// reported; name the key with [`ValidationError::key`] so that the
    /// error shows the value and its source. A check that panics is a
    /// problem of the section (its message withheld if the section holds a
    /// secret): at build, invalid configuration; on a reload, a rejected change.
    pub fn validate(
        &mut self,
        check: impl Fn(&T) -> Result<(), ValidationError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.validators.push(Arc::new(check));
        self
    }

    /// Makes a key of the section that no field of `T` takes (a typo,
    /// `mesage` for `message`) invalid configuration, naming the key, the
    /// fields it could be and its source: at build the process exits with
    /// code 2, on a reload the change is rejected. Without it, such a key
    /// is ignored with a warning on the `host::configuration` target.
    ///
    /// Keys are compared with the fields in any case. Only the keys of
    /// structs are checked: a map's keys are data, and a struct with a
    /// `#[serde(flatten)]` field reads as a map. A type with
    /// `#[serde(deny_unknown_fields)]` refuses unknown keys whatever this
    /// says.
    ///
    /// ```
    /// use host_config::{ConfigurationBuilder, OptionsBinding};
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// #[serde(default)]
    /// struct Greeting {
    ///     message: String,
    /// }
    /// # impl Default for Greeting { fn default() -> Self { Self { message: "hi".into() } } }
    ///
    /// let mut builder = ConfigurationBuilder::new();
    /// builder.args(["app", "--greeting.mesage=hello"]);
    /// let configuration = builder.build("Production", std::env::temp_dir())?;
    /// let mut binding = OptionsBinding::<Greeting>::new("greeting");
    /// binding.deny_unknown_keys();
    /// let error = configuration.bind(binding).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "invalid configuration: `greeting.mesage` is not a known key; expected `message`\n  \
    ///      from: command-line argument --greeting.mesage"
    /// );
    /// # Ok::<(), host_config::ConfigError>(())
    /// ```
    pub fn deny_unknown_keys(&mut self) -> &mut Self {
        self.deny_unknown_keys = true;
        self
    }

    /// Whether a key no field takes is an error (see
    /// [`deny_unknown_keys`](Self::deny_unknown_keys)).
    pub fn denies_unknown_keys(&self) -> bool {
        self.deny_unknown_keys
    }

    /// The bound section.
    pub fn section(&self) -> &str {
        &self.section
    }

    pub(crate) fn validators(&self) -> &[Validator<T>] {
        &self.validators
    }
}

impl<T> Clone for OptionsBinding<T> {
    fn clone(&self) -> Self {
        Self {
            section: self.section.clone(),
            validators: self.validators.clone(),
            deny_unknown_keys: self.deny_unknown_keys,
        }
    }
}

impl<T> fmt::Debug for OptionsBinding<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptionsBinding")
            .field("type", &std::any::type_name::<T>())
            .field("section", &self.section)
            .field("validators", &self.validators.len())
            .field("deny_unknown_keys", &self.deny_unknown_keys)
            .finish()
    }
}

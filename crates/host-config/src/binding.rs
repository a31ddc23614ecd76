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
}

impl<T> OptionsBinding<T> {
    /// Binds the section `section` (`"worker"`, `"billing.retry"`; `""` for the root).
    pub fn new(section: impl Into<String>) -> Self {
        Self {
            section: section.into(),
            validators: Vec::new(),
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
        }
    }
}

impl<T> fmt::Debug for OptionsBinding<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptionsBinding")
            .field("type", &std::any::type_name::<T>())
            .field("section", &self.section)
            .field("validators", &self.validators.len())
            .finish()
    }
}

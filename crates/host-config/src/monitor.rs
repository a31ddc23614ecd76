//! `OptionsMonitor<T>` (the current value, and its changes) and
//! `OptionsSnapshot<T>` (the value when a scope began).

use std::fmt;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::bind::{Context, UnknownKeys};
use crate::binding::OptionsBinding;
use crate::{CONFIGURATION_TARGET, ConfigError, Problem};

type Callback<T> = Arc<dyn Fn(&T) + Send + Sync>;

/// A bound section: its binding, its current value, and who listens.
pub(crate) struct Bound<T> {
    binding: OptionsBinding<T>,
    sender: watch::Sender<Arc<T>>,
    callbacks: Mutex<Vec<Callback<T>>>,
    /// The keys no field takes, as the current value was bound.
    unknown_keys: Mutex<Vec<Problem>>,
}

/// What a reload does with each bound section: check the new configuration,
/// then (if every section passed) publish.
pub(crate) trait Section: Send + Sync {
    fn section(&self) -> &str;

    /// The keys no field takes, as the current value was bound (warnings).
    fn unknown_keys(&self) -> Vec<Problem>;

    /// Binds and checks the section against a new configuration; the
    /// returned closure publishes the value.
    fn stage(self: Arc<Self>, context: Context<'_>) -> Result<Box<dyn FnOnce()>, ConfigError>;
}

impl<T: DeserializeOwned + Send + Sync + 'static> Bound<T> {
    pub(crate) fn bind(
        binding: OptionsBinding<T>,
        context: Context<'_>,
    ) -> Result<Arc<Self>, ConfigError> {
        let (value, unknown_keys) = Self::read(&binding, context)?;
        Ok(Arc::new(Self {
            binding,
            sender: watch::Sender::new(Arc::new(value)),
            callbacks: Mutex::new(Vec::new()),
            unknown_keys: Mutex::new(unknown_keys),
        }))
    }

    /// Binds and checks the section; every problem (unknown keys, when the
    /// binding denies them, included) is reported at once. Otherwise the
    /// unknown keys are logged as warnings, and returned.
    fn read(
        binding: &OptionsBinding<T>,
        context: Context<'_>,
    ) -> Result<(T, Vec<Problem>), ConfigError> {
        let policy = if binding.denies_unknown_keys() {
            UnknownKeys::Deny
        } else {
            UnknownKeys::Warn
        };
        let (value, unknown) = context.bind_section::<T>(binding.section(), policy);
        if policy == UnknownKeys::Warn {
            for problem in &unknown {
                tracing::warn!(target: CONFIGURATION_TARGET, key = problem.key(), "{problem}");
            }
            return value.and_then(|value| {
                context.validate(binding.section(), &value, binding.validators())?;
                Ok((value, unknown))
            });
        }
        let unknown = (!unknown.is_empty()).then(|| ConfigError::invalid(unknown));
        let value = value.and_then(|value| {
            context.validate(binding.section(), &value, binding.validators())?;
            Ok(value)
        });
        match (value, unknown) {
            (Ok(value), None) => Ok((value, Vec::new())),
            (Ok(_), Some(unknown)) => Err(unknown),
            (Err(error), unknown) => {
                Err(ConfigError::combine(unknown.into_iter().chain([error])).expect("an error"))
            }
        }
    }

    fn publish(&self, value: T) {
        let value = Arc::new(value);
        self.sender.send_replace(value.clone());
        let callbacks = self.callbacks.lock().clone();
        for callback in callbacks {
            if catch_unwind(AssertUnwindSafe(|| callback(&value))).is_err() {
                tracing::error!(target: CONFIGURATION_TARGET,
                    section = self.binding.section(),
                    "a change callback for `{}` panicked; the new value is in place",
                    std::any::type_name::<T>());
            }
        }
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> Section for Bound<T> {
    fn section(&self) -> &str {
        self.binding.section()
    }

    fn unknown_keys(&self) -> Vec<Problem> {
        self.unknown_keys.lock().clone()
    }

    fn stage(self: Arc<Self>, context: Context<'_>) -> Result<Box<dyn FnOnce()>, ConfigError> {
        let (value, unknown_keys) = Self::read(&self.binding, context)?;
        Ok(Box::new(move || {
            *self.unknown_keys.lock() = unknown_keys;
            self.publish(value);
        }))
    }
}

/// The current value of a bound section, and notice of its changes, as
/// .NET's `IOptionsMonitor<T>`: cheap to clone, resolvable from the
/// container.
///
/// The value changes only when a reload (a watched file changed, or
/// [`Configuration::reload`](crate::Configuration::reload)) binds and
/// validates a new value; an invalid change is rejected and the current
/// value stays.
///
/// # Examples
///
/// ```
/// use host_config::{ConfigurationBuilder, OptionsBinding};
///
/// #[derive(serde::Deserialize)]
/// struct Greeting {
///     text: String,
/// }
///
/// let mut builder = ConfigurationBuilder::new();
/// builder.add_defaults(figment::providers::Serialized::default("greeting.text", "hello"));
/// let configuration = builder.build("Production", std::env::temp_dir())?;
/// let monitor = configuration.bind(OptionsBinding::<Greeting>::new("greeting"))?;
/// assert_eq!(monitor.current().text, "hello");
/// monitor.on_change(|greeting| println!("now: {}", greeting.text));
/// # Ok::<(), host_config::ConfigError>(())
/// ```
pub struct OptionsMonitor<T> {
    bound: Arc<Bound<T>>,
}

impl<T> OptionsMonitor<T> {
    pub(crate) fn new(bound: Arc<Bound<T>>) -> Self {
        Self { bound }
    }

    /// The current value.
    pub fn current(&self) -> Arc<T> {
        self.bound.sender.borrow().clone()
    }

    /// Waits for the next change and returns the new value. It listens
    /// from the call on, not from the first poll: a change published
    /// between the call and the `.await` is not missed.
    pub fn changed(&self) -> impl Future<Output = Arc<T>> + Send + 'static
    where
        T: Send + Sync + 'static,
    {
        let bound = self.bound.clone();
        let mut receiver = bound.sender.subscribe();
        async move {
            // `bound` keeps the sender alive, so this cannot fail.
            let _ = receiver.changed().await;
            drop(bound);
            receiver.borrow_and_update().clone()
        }
    }

    /// A tokio `watch` receiver of the value, for `select!` loops.
    pub fn subscribe(&self) -> watch::Receiver<Arc<T>> {
        self.bound.sender.subscribe()
    }

    /// Calls `callback` with each new value, on the thread that reloaded
    /// the configuration, for as long as the configuration lives (as .NET's
    /// `OnChange`). A panicking callback is logged; the others still run.
    /// The callback runs while the reload holds the configuration, so it
    /// must not call [`Configuration::reload`](crate::Configuration::reload)
    /// or [`bind`](crate::Configuration::bind) itself.
    pub fn on_change(&self, callback: impl Fn(&T) + Send + Sync + 'static) {
        self.bound.callbacks.lock().push(Arc::new(callback));
    }

    /// The bound section.
    pub fn section(&self) -> &str {
        self.bound.binding.section()
    }
}

impl<T> Clone for OptionsMonitor<T> {
    fn clone(&self) -> Self {
        Self {
            bound: self.bound.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for OptionsMonitor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptionsMonitor")
            .field("section", &self.section())
            .field("current", &self.current())
            .finish()
    }
}

/// The value of a bound section as it was when the scope began (as .NET's
/// `IOptionsSnapshot<T>`): a scoped service, so that one request or unit of
/// work sees one value even if the configuration reloads meanwhile.
///
/// Read it through `Deref`. A singleton cannot depend on it (the container
/// rejects that at build); a singleton injects [`OptionsMonitor<T>`] instead.
pub struct OptionsSnapshot<T>(Arc<T>);

impl<T> OptionsSnapshot<T> {
    /// A snapshot of `value`.
    pub fn new(value: Arc<T>) -> Self {
        Self(value)
    }

    /// The value, shared.
    pub fn value(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T> Clone for OptionsSnapshot<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Deref for OptionsSnapshot<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for OptionsSnapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OptionsSnapshot").field(&self.0).finish()
    }
}

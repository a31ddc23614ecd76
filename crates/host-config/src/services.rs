//! Registering bound options with the container.

use std::sync::Arc;

use host_di::{Dependency, DiError, Options, Resolvable, ServiceCollection, ServiceProvider};

use crate::{OptionsMonitor, OptionsSnapshot};

/// Registers a bound section's three forms with a [`ServiceCollection`]:
/// [`Options<T>`] (the value at start, for the host's life),
/// [`OptionsSnapshot<T>`] (scoped: the value when the scope began) and
/// [`OptionsMonitor<T>`] (the current value and its changes).
pub trait OptionsServiceCollectionExt {
    /// Registers `monitor`'s section as `Options<T>`, `OptionsSnapshot<T>`
    /// and `OptionsMonitor<T>`.
    fn add_options_monitor<T: Send + Sync + 'static>(
        &mut self,
        monitor: OptionsMonitor<T>,
    ) -> &mut Self;
}

impl OptionsServiceCollectionExt for ServiceCollection {
    fn add_options_monitor<T: Send + Sync + 'static>(
        &mut self,
        monitor: OptionsMonitor<T>,
    ) -> &mut Self {
        self.add_instance(Arc::new(Options::from(monitor.current())));
        let current = monitor.clone();
        self.add_scoped_factory(move |_| Ok(Arc::new(OptionsSnapshot::new(current.current()))));
        self.add_instance(Arc::new(monitor));
        self
    }
}

impl<T: Send + Sync + 'static> Resolvable for OptionsMonitor<T> {
    fn dependency() -> Option<Dependency> {
        Some(Dependency::required_value::<OptionsMonitor<T>>())
    }

    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider
            .get::<OptionsMonitor<T>>()
            .map(|monitor| (*monitor).clone())
    }
}

impl<T: Send + Sync + 'static> Resolvable for OptionsSnapshot<T> {
    fn dependency() -> Option<Dependency> {
        Some(Dependency::required_value::<OptionsSnapshot<T>>())
    }

    fn resolve(provider: &ServiceProvider) -> Result<Self, DiError> {
        provider
            .get::<OptionsSnapshot<T>>()
            .map(|snapshot| (*snapshot).clone())
    }
}

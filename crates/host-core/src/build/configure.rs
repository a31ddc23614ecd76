//! Reading the configuration at build: the host's own sections (`host`,
//! `logging`) and the application's bindings, every problem reported at once.

use std::any::Any;
use std::sync::Arc;

use host_config::{
    CONFIGURATION_TARGET, ConfigError, Configuration, ConfigurationBuilder, OptionsBinding,
    OptionsMonitor, OptionsServiceCollectionExt as _, Problem,
};
use host_di::ServiceCollection;
use serde::de::DeserializeOwned;

use crate::HostEnvironment;
use crate::build::cluster::{self, ClusterSection};
use crate::build::options::HostOptionsSection;
use crate::logging::{self, LoggingOptions};
use crate::supervision::configured::{self, ServicesSection};

/// The configuration section of the default log subscriber.
const LOGGING_SECTION: &str = "logging";

/// An application's `configure::<T>(section)`, waiting for the configuration.
pub(crate) trait PendingBinding: Send + Sync {
    /// Binds and checks the section, and registers its options with the container.
    fn bind(
        self: Box<Self>,
        configuration: &Configuration,
        services: &mut ServiceCollection,
    ) -> Result<(), ConfigError>;

    /// For the builder to hand back the binding it just stored.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: DeserializeOwned + Send + Sync + 'static> PendingBinding for OptionsBinding<T> {
    fn bind(
        self: Box<Self>,
        configuration: &Configuration,
        services: &mut ServiceCollection,
    ) -> Result<(), ConfigError> {
        let monitor = configuration.bind(*self)?;
        services.add_options_monitor(monitor);
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The configuration, read and bound.
pub(crate) struct BoundConfiguration {
    pub(crate) host_options: HostOptionsSection,
    /// `cluster`: the lease store and this instance's id.
    pub(crate) cluster: ClusterSection,
    /// `services.<name>`: per-service options; schedules follow reloads.
    pub(crate) services: OptionsMonitor<ServicesSection>,
    logging: OptionsMonitor<LoggingOptions>,
    /// The keys no field takes, logged at bind when no subscriber could
    /// hear them yet: the default one is installed after the configuration
    /// it reads is bound.
    unknown_keys: Vec<Problem>,
}

impl BoundConfiguration {
    /// Reads every layer, binds the host's sections and the application's,
    /// and registers the configuration and the options with the container.
    pub(crate) fn read(
        builder: &ConfigurationBuilder,
        environment: &HostEnvironment,
        bindings: Vec<Box<dyn PendingBinding>>,
        services: &mut ServiceCollection,
    ) -> Result<Self, ConfigError> {
        let configuration =
            builder.build(environment.environment_name(), environment.content_root())?;
        let mut errors = Vec::new();
        let host_options = configuration
            .get::<HostOptionsSection>(HostOptionsSection::KEY)
            .map_err(|error| errors.push(error))
            .ok();
        let cluster = configuration
            .get::<ClusterSection>(cluster::KEY)
            .map_err(|error| errors.push(error))
            .ok();
        let service_options = configuration
            .bind(OptionsBinding::<ServicesSection>::new(configured::KEY))
            .map_err(|error| errors.push(error))
            .ok();
        let mut logging = OptionsBinding::<LoggingOptions>::new(LOGGING_SECTION);
        logging.validate(LoggingOptions::check);
        let logging = configuration
            .bind(logging)
            .map_err(|error| errors.push(error))
            .ok();
        for binding in bindings {
            if let Err(error) = binding.bind(&configuration, services) {
                errors.push(error);
            }
        }
        match (
            host_options,
            service_options,
            logging,
            cluster,
            ConfigError::combine(errors),
        ) {
            (Some(host_options), Some(service_options), Some(logging), Some(cluster), None) => {
                services.add_options_monitor(logging.clone());
                let unknown_keys = configuration.unknown_keys();
                services.add_instance(Arc::new(configuration));
                Ok(Self {
                    host_options,
                    cluster,
                    services: service_options,
                    logging,
                    unknown_keys,
                })
            }
            (_, _, _, _, Some(error)) => Err(error),
            _ => unreachable!("a section that did not bind reported an error"),
        }
    }

    /// Installs the default log subscriber (unless the application has its
    /// own), and applies each reloaded `logging` section to it, live.
    /// Unknown keys are logged again once it is in place: at bind, no
    /// subscriber heard them.
    pub(crate) fn install_logging(&self) {
        if let Some(levels) = logging::install_default_subscriber(&self.logging.current()) {
            self.logging.on_change(move |options| levels.apply(options));
            for problem in &self.unknown_keys {
                tracing::warn!(target: CONFIGURATION_TARGET, key = problem.key(), "{problem}");
            }
        }
    }
}

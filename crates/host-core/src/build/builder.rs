//! `HostBuilder`: registrations and settings, consumed by `build()`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Weak};

use host_cluster::{ClusterStore, LeaseStore};
use host_config::{ConfigurationBuilder, OptionsBinding};
use host_di::{Injectable, ServiceCollection};
use serde::de::DeserializeOwned;

use crate::build::cluster;
use crate::build::configure::{BoundConfiguration, PendingBinding};
use crate::services::record::{HostShared, ServiceRecord};
use crate::services::registration::{
    HostedServiceCollectionExt as _, Registered, resolve_hosted_services, settings_for,
};
use crate::supervision::options::ServiceSettings;
use crate::supervision::{configured, dependencies};
use crate::systemd::Systemd;
use crate::{
    ApplicationLifetime, Host, HostEnvironment, HostError, HostOptions, HostedService, Periodic,
    PeriodicService, Schedule, ServiceControl, ServiceOptions, ServiceStates,
};

/// Builds a [`Host`]: the service container, the hosted services, the
/// configuration, the host options and the environment (as .NET's
/// `HostApplicationBuilder`).
///
/// Its methods take `&mut self`, so a library crate can extend it with an
/// extension trait (`builder.add_something(...)`, as .NET's `AddXyz`
/// extension methods); [`build`](Self::build) and [`run`](Self::run)
/// consume it.
///
/// # Examples
///
/// ```
/// use std::process::ExitCode;
/// use std::time::Duration;
/// use async_trait::async_trait;
/// use host_core::{BackgroundService, Host, ServiceContext, ServiceError};
///
/// /// Does one job, then stops the application.
/// struct Job;
///
/// #[async_trait]
/// impl BackgroundService for Job {
///     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
///         tracing::info!("working");
///         ctx.lifetime().stop_application_with_code(0);
///         Ok(())
///     }
/// }
///
/// #[tokio::main]
/// async fn main() -> ExitCode {
///     let mut builder = Host::builder();
///     builder
///         .configure_host_options(|options| options.shutdown_timeout = Duration::from_secs(5))
///         .add_hosted_service_instance(Job);
///     builder.run().await // Ctrl+C would stop it too
/// }
/// ```
#[must_use = "a builder does nothing until it is built or run"]
pub struct HostBuilder {
    services: ServiceCollection,
    options: HostOptions,
    environment: HostEnvironment,
    handle_signals: bool,
    systemd_notify: bool,
    default_logging: bool,
    configuration: ConfigurationBuilder,
    bindings: Vec<Box<dyn PendingBinding>>,
    before_build: Vec<BeforeBuild>,
    stores: cluster::Stores,
}

/// A registration an extension makes last, at `build()`.
type BeforeBuild = Box<dyn FnOnce(&mut HostBuilder) + Send + Sync>;

impl HostBuilder {
    /// A builder with the defaults: the environment of this process (see
    /// [`HostEnvironment::from_process`]), default [`HostOptions`], signals
    /// handled, and the default log subscriber.
    pub fn new() -> Self {
        Self {
            services: ServiceCollection::new(),
            options: HostOptions::default(),
            environment: HostEnvironment::from_process(),
            handle_signals: true,
            systemd_notify: true,
            default_logging: true,
            configuration: {
                let mut configuration = ConfigurationBuilder::new();
                // The stores' URLs carry their passwords.
                configuration.secret(cluster::POSTGRES_URL_KEY);
                configuration.secret(cluster::REDIS_URL_KEY);
                configuration.secret(cluster::ETCD_URL_KEY);
                configuration
            },
            bindings: Vec::new(),
            before_build: Vec::new(),
            stores: cluster::Stores::default(),
        }
    }

    /// The service collection, to register the application's services.
    pub fn services(&mut self) -> &mut ServiceCollection {
        &mut self.services
    }

    /// Registers a hosted (or background) service built by the container,
    /// which injects its dependencies. Hosted services start in registration
    /// order and stop in reverse.
    pub fn add_hosted_service<T: HostedService + Injectable>(&mut self) -> &mut Self {
        self.services.add_hosted_service::<T>();
        self
    }

    /// Registers a hosted (or background) service you have built yourself.
    pub fn add_hosted_service_instance<T: HostedService>(&mut self, service: T) -> &mut Self {
        self.services.add_hosted_service_instance(service);
        self
    }

    /// Registers a hosted (or background) service built by the container,
    /// with its [`ServiceOptions`]: restart policy, start and stop
    /// timeouts, dependencies, heartbeat (see `docs/supervision.md`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use host_core::{BackgroundService, Restart, ServiceContext, ServiceError, async_trait};
    ///
    /// #[derive(Default)]
    /// struct Billing;
    /// # impl host_di::Injectable for Billing {
    /// #     fn dependencies() -> Vec<host_di::Dependency> { Vec::new() }
    /// #     fn create(_: &host_di::ServiceProvider) -> Result<Self, host_di::DiError> { Ok(Billing) }
    /// # }
    ///
    /// #[async_trait]
    /// impl BackgroundService for Billing {
    ///     async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
    ///         ctx.stopping().await;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # let mut builder = host_core::Host::builder();
    /// builder.add_hosted_service_with::<Billing, _>(|billing| {
    ///     billing.restart(Restart::on_failure().backoff(Duration::from_millis(100), Duration::from_secs(30)))
    /// });
    /// ```
    pub fn add_hosted_service_with<T, F>(&mut self, configure: F) -> &mut Self
    where
        T: HostedService + Injectable,
        F: FnOnce(&mut ServiceOptions<T>) -> &mut ServiceOptions<T>,
    {
        self.services.add_hosted_service_with::<T, F>(configure);
        self
    }

    /// Registers a hosted (or background) service you have built yourself,
    /// with its [`ServiceOptions`].
    pub fn add_hosted_service_instance_with<T, F>(&mut self, service: T, configure: F) -> &mut Self
    where
        T: HostedService,
        F: FnOnce(&mut ServiceOptions<T>) -> &mut ServiceOptions<T>,
    {
        self.services
            .add_hosted_service_instance_with(service, configure);
        self
    }

    /// Registers `T`, constructed by the container, as a
    /// [`PeriodicService`](crate::PeriodicService) run on `schedule`.
    pub fn add_periodic<T: PeriodicService + Injectable>(
        &mut self,
        schedule: Schedule,
    ) -> &mut Self {
        self.services.add_periodic::<T>(schedule);
        self
    }

    /// [`add_periodic`](Self::add_periodic) with [`ServiceOptions`]: a
    /// restart policy for failing runs, a scope per run, timeouts.
    pub fn add_periodic_with<T, F>(&mut self, schedule: Schedule, configure: F) -> &mut Self
    where
        T: PeriodicService + Injectable,
        F: FnOnce(&mut ServiceOptions<Periodic<T>>) -> &mut ServiceOptions<Periodic<T>>,
    {
        self.services.add_periodic_with::<T, F>(schedule, configure);
        self
    }

    /// Registers an instance you have built as a
    /// [`PeriodicService`](crate::PeriodicService) run on `schedule`.
    pub fn add_periodic_instance<T: PeriodicService>(
        &mut self,
        service: T,
        schedule: Schedule,
    ) -> &mut Self {
        self.services.add_periodic_instance(service, schedule);
        self
    }

    /// [`add_periodic_instance`](Self::add_periodic_instance) with
    /// [`ServiceOptions`].
    pub fn add_periodic_instance_with<T, F>(
        &mut self,
        service: T,
        schedule: Schedule,
        configure: F,
    ) -> &mut Self
    where
        T: PeriodicService,
        F: FnOnce(&mut ServiceOptions<Periodic<T>>) -> &mut ServiceOptions<Periodic<T>>,
    {
        self.services
            .add_periodic_instance_with(service, schedule, configure);
        self
    }

    /// Runs `finish` when [`build`](Self::build) begins, after every other
    /// registration, in the order such callbacks were added. For an
    /// extension whose service must come last whatever the application
    /// registers after it: host-web adds its server here, so that the server
    /// starts after every other hosted service and stops first.
    ///
    /// ```
    /// # let mut builder = host_core::Host::builder();
    /// builder.before_build(|builder| {
    ///     builder.configure_host_options(|options| options.services_stop_concurrently = true);
    /// });
    /// ```
    pub fn before_build(
        &mut self,
        finish: impl FnOnce(&mut HostBuilder) + Send + Sync + 'static,
    ) -> &mut Self {
        self.before_build.push(Box::new(finish));
        self
    }

    /// The configuration's layers: files, environment variables, providers,
    /// secrets, reload (see `host_config` for the precedence). The
    /// configuration is read by [`build`](Self::build).
    ///
    /// ```
    /// # let mut builder = host_core::Host::builder();
    /// builder.configuration().reload_on_change(true).secret("database.dsn");
    /// ```
    pub fn configuration(&mut self) -> &mut ConfigurationBuilder {
        &mut self.configuration
    }

    /// The command line, as `std::env::args()` gives it (the first item,
    /// the program's name, is skipped): `--key=value` or `--key value`
    /// override every other configuration layer, and `--environment=Name`
    /// sets the environment. Default: none, so that nothing (a test
    /// binary's own flags, say) leaks in unless passed.
    ///
    /// ```
    /// # let mut builder = host_core::Host::builder();
    /// builder.args(["app", "--environment=Staging", "--worker.interval=5s"]);
    /// assert!(builder.environment().is_staging());
    /// ```
    pub fn args<I>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.configuration.args(args);
        if let Some(name) = self.configuration.command_line_value("environment") {
            self.environment.set_environment_name(name);
        }
        self
    }

    /// Binds the configuration section `section` to `T`, checked by
    /// [`build`](Self::build) before anything starts, and registers it for
    /// injection as `Options<T>` (the value at start), `OptionsSnapshot<T>`
    /// (per scope) and `OptionsMonitor<T>` (current value and changes).
    /// Add the application's own checks with
    /// [`validate`](OptionsBinding::validate).
    ///
    /// ```
    /// use std::time::Duration;
    /// use host_config::ValidationError;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct WorkerOptions {
    ///     #[serde(with = "host_config::duration")]
    ///     interval: Duration,
    /// }
    ///
    /// # let mut builder = host_core::Host::builder();
    /// builder.configure::<WorkerOptions>("worker").validate(|options| {
    ///     if options.interval.is_zero() {
    ///         return Err(ValidationError::key("interval", "must not be zero"));
    ///     }
    ///     Ok(())
    /// });
    /// ```
    pub fn configure<T>(&mut self, section: impl Into<String>) -> &mut OptionsBinding<T>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        self.bindings
            .push(Box::new(OptionsBinding::<T>::new(section)));
        self.bindings
            .last_mut()
            .and_then(|binding| binding.as_any_mut().downcast_mut::<OptionsBinding<T>>())
            .expect("the binding just pushed")
    }

    /// Changes the host options; the `host` configuration section overrides
    /// what is set here. Default: see [`HostOptions`].
    ///
    /// ```
    /// use std::time::Duration;
    /// # let mut builder = host_core::Host::builder();
    /// builder.configure_host_options(|options| {
    ///     options.shutdown_timeout = Duration::from_secs(10);
    ///     options.services_stop_concurrently = true;
    /// });
    /// ```
    pub fn configure_host_options(
        &mut self,
        configure: impl FnOnce(&mut HostOptions),
    ) -> &mut Self {
        configure(&mut self.options);
        self
    }

    /// The host options as configured so far.
    pub fn host_options(&self) -> &HostOptions {
        &self.options
    }

    /// The environment as configured so far, to branch on while registering
    /// (`if builder.environment().is_development() { ... }`).
    pub fn environment(&self) -> &HostEnvironment {
        &self.environment
    }

    /// Sets the environment's name. Default: `HOST_ENVIRONMENT`, else
    /// `DOTNET_ENVIRONMENT`, else `ASPNETCORE_ENVIRONMENT`, else Production
    /// (`--environment` on the command line wins over all of them).
    pub fn environment_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.environment.set_environment_name(name.into());
        self
    }

    /// Sets the application's name. Default: the executable's name.
    pub fn application_name(&mut self, name: impl Into<String>) -> &mut Self {
        self.environment.set_application_name(name.into());
        self
    }

    /// Sets the content root. Default: the current directory.
    pub fn content_root(&mut self, root: impl Into<PathBuf>) -> &mut Self {
        self.environment.set_content_root(root.into());
        self
    }

    /// The lease store cluster singletons campaign in, instead of the file
    /// lock under the content root (`cluster.directory`, by default
    /// `.host/leases`), which serves the instances of one machine. See
    /// `docs/scale-out.md`.
    pub fn lease_store(&mut self, store: impl LeaseStore) -> &mut Self {
        self.stores.leases = Some(Arc::new(store));
        self
    }

    /// The store both cluster singletons and cluster-wide schedules
    /// ([`ServiceOptions::cluster_wide`](crate::ServiceOptions::cluster_wide))
    /// use, for leases and for the claims on ticks, instead of the file
    /// lock under the content root. A store set with
    /// [`lease_store`](Self::lease_store) serves leases only: a host with a
    /// cluster-wide schedule needs this one. See `docs/scale-out.md`.
    pub fn cluster_store(&mut self, store: impl ClusterStore) -> &mut Self {
        let store = Arc::new(store);
        self.stores.leases = Some(store.clone());
        self.stores.claims = Some(store);
        self
    }

    /// Whether the host listens for SIGINT, SIGTERM and SIGQUIT (Ctrl+C on
    /// other platforms), from its start until its stop has completed; after
    /// that, while no other host listens, a signal has its default action
    /// again. Turn it off when embedding the host, when the application
    /// handles these signals itself, or in tests. Default: `true`.
    pub fn handle_signals(&mut self, handle: bool) -> &mut Self {
        self.handle_signals = handle;
        self
    }

    /// Whether the host notifies systemd (`sd_notify`) when `NOTIFY_SOCKET`
    /// is set: `STATUS=` lines, `READY=1` once started, `STOPPING=1` when
    /// the stop begins, `EXTEND_TIMEOUT_USEC` during a long start (with a
    /// [`startup_timeout`](crate::HostOptions::startup_timeout)) or stop,
    /// and `WATCHDOG=1` when `WATCHDOG_USEC` asks for it. With signals
    /// handled ([`handle_signals`](Self::handle_signals)), SIGHUP then
    /// reloads the configuration between `RELOADING=1` and `READY=1`, for
    /// `Type=notify-reload` units (Unix); otherwise SIGHUP keeps its default
    /// action. Only the
    /// run-to-exit path notifies ([`run`](Self::run), [`run_blocking`](Self::run_blocking),
    /// [`Host::run_until_exit`](crate::Host::run_until_exit)): it owns the
    /// process; a host driven by hand never speaks for it. Turn it off when
    /// the application notifies systemd itself. Default: `true`.
    pub fn systemd_notify(&mut self, notify: bool) -> &mut Self {
        self.systemd_notify = notify;
        self
    }

    /// Whether `build()` installs the default log subscriber (a
    /// `tracing-subscriber` fmt subscriber on standard error, configured by
    /// the `logging` section, overridden by `RUST_LOG`; see
    /// [`LoggingOptions`](crate::LoggingOptions)) when the application has
    /// not installed one. Default: `true`.
    pub fn default_logging(&mut self, install: bool) -> &mut Self {
        self.default_logging = install;
        self
    }

    /// Builds the host: reads the configuration, binds and checks every
    /// configured section, validates every registration and constructs the
    /// hosted services. Nothing starts.
    ///
    /// # Errors
    ///
    /// Invalid configuration (a malformed file, a bad value, a failed
    /// check: every problem is listed, with its key and source), a
    /// registration the container cannot satisfy (a missing dependency, a
    /// cycle, a singleton capturing a scoped service) or a hosted service
    /// that cannot be constructed (its constructor returned an error or
    /// panicked: the error names it, with the panic's message); the
    /// [exit code](HostError::exit_code) is 2.
    pub fn build(mut self) -> Result<Host, HostError> {
        // A callback may add another; those run too, in turn.
        while !self.before_build.is_empty() {
            for finish in std::mem::take(&mut self.before_build) {
                finish(&mut self);
            }
        }
        let Self {
            mut services,
            mut options,
            environment,
            handle_signals,
            systemd_notify,
            default_logging,
            configuration,
            bindings,
            before_build: _,
            stores,
        } = self;
        let bound = BoundConfiguration::read(&configuration, &environment, bindings, &mut services)
            .map_err(HostError::configuration)?;
        bound.host_options.apply(&mut options);
        if default_logging {
            bound.install_logging();
        }
        let lifetime = ApplicationLifetime::new();
        let states = ServiceStates::new();
        let control = ServiceControl::new();
        services.add_instance(Arc::new(lifetime.clone()));
        services.add_instance(Arc::new(environment.clone()));
        services.add_instance(Arc::new(options.clone()));
        services.add_instance(Arc::new(states.clone()));
        services.add_instance(Arc::new(control.clone()));
        let cluster_store = cluster::ClusterStoreHandle::default();
        services.add_instance(Arc::new(cluster_store.clone()));
        let provider = services.build().map_err(HostError::build)?;
        let hosted = resolve_hosted_services(&provider)?;
        let registered = provider.get_all::<Registered>().unwrap_or_default();

        let shared = Arc::new(HostShared::new(
            lifetime,
            options.background_service_failure,
            states.hub(),
            options.shutdown_timeout,
        ));
        let changed = states.change_notifier();
        let mut seen: HashMap<Cow<'static, str>, usize> = HashMap::new();
        let names: Vec<Arc<str>> = hosted
            .iter()
            .map(|service| unique_name(&mut seen, service.name()))
            .collect();
        let mut settings: Vec<Arc<ServiceSettings>> = hosted
            .iter()
            .map(|service| settings_for(&registered, service))
            .collect();
        // As registered, before the configuration: what a reload that no
        // longer sets a schedule returns to.
        let code_schedules: Vec<Option<Schedule>> = if settings.iter().any(|s| s.schedule.is_some())
        {
            settings
                .iter()
                .map(|settings| settings.schedule.clone())
                .collect()
        } else {
            Vec::new()
        };
        let service_section = bound.services.current();
        configured::apply(&service_section, &hosted, &names, &mut settings)?;
        let records: Vec<Arc<ServiceRecord>> = hosted
            .into_iter()
            .zip(names)
            .zip(settings)
            .map(|((service, name), settings)| {
                Arc::new(ServiceRecord::new(
                    name,
                    service,
                    settings,
                    changed.clone(),
                    shared.clone(),
                ))
            })
            .collect();
        configured::compile_schedules(&records)?;
        if let Some(store) =
            cluster::elect(&records, &bound.cluster, stores, environment.content_root())?
        {
            cluster_store.set(store);
        }
        states.set_records(records.clone());
        control.set_records(records.clone());
        let watched: Vec<Weak<ServiceRecord>> = records.iter().map(Arc::downgrade).collect();
        let record_names: Vec<Arc<str>> =
            records.iter().map(|record| record.name.clone()).collect();
        bound.services.on_change(move |section| {
            configured::follow_schedules(section, &watched, &record_names, &code_schedules);
        });
        let records = dependencies::order(&records)?;
        shared.set_provider(Some(provider.clone()));
        let systemd = if systemd_notify {
            Systemd::from_env()
        } else {
            None
        };
        Ok(Host::new(
            provider,
            records,
            shared,
            environment,
            options,
            states,
            handle_signals,
        )
        .with_control(control)
        .with_systemd(systemd))
    }

    /// Builds and runs the host, and returns the process's exit code (see
    /// the [table](crate::exit_code)); errors are logged. Return it from
    /// `main`.
    ///
    /// The run-to-exit path (see [`Host::run_until_exit`]): the process
    /// never outlives the stop by more than the shutdown timeout and a
    /// second, and from `main` it ends with the returned code if the
    /// runtime has not shut down 500 ms after it began to.
    pub async fn run(self) -> ExitCode {
        match self.build() {
            Ok(host) => host.run_until_exit().await,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(error.exit_code())
            }
        }
    }

    /// For a plain `fn main`: builds a multi-thread tokio runtime, runs the
    /// host on it, and returns the exit code.
    ///
    /// ```no_run
    /// fn main() -> std::process::ExitCode {
    ///     let builder = host_core::Host::builder();
    ///     builder.run_blocking()
    /// }
    /// ```
    pub fn run_blocking(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: cannot start the tokio runtime: {error}");
                return ExitCode::from(crate::exit_code::SERVICE_FAILED);
            }
        };
        let code = runtime.block_on(self.run());
        // Tasks still running (a `spawn_blocking` loop, say) must not keep
        // the process alive.
        runtime.shutdown_timeout(std::time::Duration::from_millis(100));
        // The runtime is down: nothing is left for the exit guard to watch.
        crate::lifecycle::exit_guard::disarm();
        code
    }
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBuilder")
            .field("options", &self.options)
            .field("environment", &self.environment)
            .field("handle_signals", &self.handle_signals)
            .field("systemd_notify", &self.systemd_notify)
            .field("default_logging", &self.default_logging)
            .field("configuration", &self.configuration)
            .field("bindings", &self.bindings.len())
            .finish_non_exhaustive()
    }
}

/// Names are unique within a host: a second `app::Worker` is `app::Worker#2`.
fn unique_name(seen: &mut HashMap<Cow<'static, str>, usize>, name: Cow<'static, str>) -> Arc<str> {
    // Keyed by the `Cow`: a type's name is borrowed, so the common case
    // allocates only the `Arc<str>` the record keeps (this runs per service).
    let count = match seen.get_mut(name.as_ref()) {
        Some(count) => {
            *count += 1;
            *count
        }
        None => {
            seen.insert(name.clone(), 1);
            1
        }
    };
    if count == 1 {
        return Arc::from(name.as_ref());
    }
    // `format!` costs more than the rest of this function together.
    let mut numbered = String::with_capacity(name.len() + 1 + 20);
    numbered.push_str(&name);
    numbered.push('#');
    push_decimal(&mut numbered, count);
    numbered.into()
}

/// Appends `value` in decimal.
fn push_decimal(text: &mut String, value: usize) {
    if value >= 10 {
        push_decimal(text, value / 10);
    }
    text.push(char::from(b'0' + (value % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_get_a_number() {
        let mut seen = HashMap::new();
        let mut name = |name: &'static str| unique_name(&mut seen, Cow::Borrowed(name));
        assert_eq!(&*name("a::W"), "a::W");
        assert_eq!(&*name("a::W"), "a::W#2");
        assert_eq!(&*name("a::V"), "a::V");
        assert_eq!(&*name("a::W"), "a::W#3");
        for _ in 4..=10 {
            name("a::W");
        }
        assert_eq!(&*name("a::W"), "a::W#11");
        for _ in 12..=100 {
            name("a::W");
        }
        assert_eq!(&*name("a::W"), "a::W#101");
        // A name given as an owned `String` (a `name()` override) counts with
        // the borrowed ones.
        assert_eq!(
            &*unique_name(&mut seen, Cow::Owned("a::V".into())),
            "a::V#2"
        );
    }
}

//! Reloading: a watched `appsettings` file that changes publishes the new
//! values to the monitors and their callbacks; an invalid or malformed change
//! is rejected with an error log and every value stays; `Configuration::reload`
//! reports the changed sections, publishes only those, and rejects a change
//! as a whole. A panicking check or `Deserialize` rejects a change and the
//! watcher goes on; a Kubernetes ConfigMap's symlink swap reloads.

// `figment::Jail` closures return `figment::Error`, which is large.
#![allow(clippy::result_large_err)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use host_config::{
    CONFIGURATION_TARGET, ConfigFile, Configuration, ConfigurationBuilder, OptionsBinding,
    OptionsMonitor,
};
use tokio::time::timeout;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// How long any wait may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Worker {
    #[serde(with = "host_config::duration")]
    interval: Duration,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Greeting {
    text: String,
}

fn worker(seconds: u64) -> Worker {
    Worker {
        interval: Duration::from_secs(seconds),
    }
}

/// One event logged under the configuration's target.
#[derive(Debug, Clone)]
struct Logged {
    level: tracing::Level,
    message: String,
}

fn logs() -> &'static Mutex<Vec<Logged>> {
    static LOGS: OnceLock<Mutex<Vec<Logged>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Capture);
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        Mutex::new(Vec::new())
    })
}

/// Records the messages of the configuration's target.
struct Capture;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != CONFIGURATION_TARGET {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        logs().lock().expect("logs").push(Logged {
            level: *event.metadata().level(),
            message: message.0,
        });
    }
}

/// Waits (bounded) for an error logged about `file` whose message `wanted`
/// accepts, and returns the message.
async fn rejection_of(file: &Path, wanted: impl Fn(&str) -> bool) -> String {
    let file = format!("{} changed, but the change is rejected", file.display());
    let found = timeout(PATIENCE, async {
        loop {
            let found = logs().lock().expect("logs").iter().find_map(|logged| {
                (logged.level == tracing::Level::ERROR
                    && logged.message.starts_with(&file)
                    && wanted(&logged.message))
                .then(|| logged.message.clone())
            });
            if let Some(message) = found {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("not logged: {file}"))
}

/// Replaces a file whole, as editors do, so that no reader sees half of it.
fn replace(path: &Path, text: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).expect("write");
    std::fs::rename(&staged, path).expect("rename");
}

/// Awaits the monitor's next change: `changed()` listens from the call, so
/// an edit made before the first poll is not missed.
async fn change_after<T: Send + Sync + 'static>(
    monitor: &OptionsMonitor<T>,
    edit: impl FnOnce(),
) -> Arc<T> {
    let changed = monitor.changed();
    edit();
    timeout(PATIENCE, changed)
        .await
        .expect("the change was published")
}

/// A builder whose `appsettings` files reload, soon after a change.
fn reloading() -> ConfigurationBuilder {
    let mut builder = ConfigurationBuilder::new();
    builder
        .without_env()
        .reload_on_change(true)
        .reload_delay(Duration::from_millis(50));
    builder
}

struct Watched {
    _directory: tempfile::TempDir,
    settings: PathBuf,
    configuration: Configuration,
}

/// A content root holding `appsettings.toml`, watched.
fn watched(text: &str) -> Watched {
    logs();
    let directory = tempfile::tempdir().expect("a temporary directory");
    // The logs name the real path (on macOS, /private/var for /var).
    let root = directory.path().canonicalize().expect("a real path");
    let settings = root.join("appsettings.toml");
    std::fs::write(&settings, text).expect("write");
    let configuration = reloading()
        .build("Production", &root)
        .expect("a valid configuration");
    assert!(configuration.is_watching());
    Watched {
        _directory: directory,
        settings,
        configuration,
    }
}

#[tokio::test]
async fn a_changed_file_publishes_the_new_value() {
    let watched = watched("[worker]\ninterval = \"1s\"\n");
    let monitor = watched
        .configuration
        .bind(OptionsBinding::<Worker>::new("worker"))
        .expect("valid");
    assert_eq!(*monitor.current(), worker(1));
    let (sender, mut called) = tokio::sync::mpsc::unbounded_channel();
    monitor.on_change(move |worker: &Worker| {
        let _ = sender.send(worker.clone());
    });

    let new = change_after(&monitor, || {
        replace(&watched.settings, "[worker]\ninterval = \"2s\"\n");
    })
    .await;
    assert_eq!(*new, worker(2));
    assert_eq!(*monitor.current(), worker(2));
    let seen = timeout(PATIENCE, called.recv())
        .await
        .expect("the callback ran")
        .expect("a value");
    assert_eq!(seen, worker(2));
    assert_eq!(
        watched
            .configuration
            .get::<String>("worker.interval")
            .expect("a string"),
        "2s"
    );
}

#[tokio::test]
async fn an_invalid_change_is_rejected_and_the_value_stays() {
    let watched = watched("[worker]\ninterval = \"1s\"\n");
    let mut binding = OptionsBinding::<Worker>::new("worker");
    binding.validate(
        |worker| match worker.interval >= Duration::from_millis(10) {
            true => Ok(()),
            false => Err(host_config::ValidationError::key(
                "interval",
                "must be at least 10ms",
            )),
        },
    );
    let monitor = watched.configuration.bind(binding).expect("valid");
    let new = change_after(&monitor, || {
        replace(&watched.settings, "[worker]\ninterval = \"3s\"\n");
    })
    .await;
    assert_eq!(*new, worker(3));

    let receiver = monitor.subscribe();
    replace(&watched.settings, "[worker]\ninterval = \"fast\"\n");
    let message = rejection_of(&watched.settings, |message| message.contains("\"fast\"")).await;
    assert_eq!(
        message,
        format!(
            "{} changed, but the change is rejected and the last good configuration stays: \
             invalid configuration: `worker.interval` expects a duration such as \"5s\", found \
             \"fast\"\n  from: appsettings.toml",
            watched.settings.display()
        )
    );
    assert_eq!(*monitor.current(), worker(3));
    assert!(!receiver.has_changed().expect("the sender lives"));
    assert_eq!(
        watched
            .configuration
            .get::<String>("worker.interval")
            .expect("a string"),
        "3s",
        "the configuration itself keeps the last good values"
    );

    // A value the application's check refuses is rejected too.
    replace(&watched.settings, "[worker]\ninterval = \"5ms\"\n");
    let message = rejection_of(&watched.settings, |message| message.contains("5ms")).await;
    assert!(
        message.ends_with(
            "`worker.interval` must be at least 10ms, found \"5ms\"\n  from: appsettings.toml"
        ),
        "{message}"
    );
    assert_eq!(*monitor.current(), worker(3));
    assert!(!receiver.has_changed().expect("the sender lives"));
}

#[tokio::test]
async fn a_malformed_file_is_rejected_and_a_fixed_one_reloads() {
    let watched = watched("[greeting]\ntext = \"hello\"\n");
    let monitor = watched
        .configuration
        .bind(OptionsBinding::<Greeting>::new("greeting"))
        .expect("valid");
    let receiver = monitor.subscribe();

    replace(&watched.settings, "[greeting\ntext = \"bye\"\n");
    let message = rejection_of(&watched.settings, |_| true).await;
    assert!(
        message.contains(&format!(
            "invalid configuration: {} is not valid TOML",
            watched.settings.display()
        )),
        "{message}"
    );
    assert!(message.ends_with("\n  at: line 1, column 10"), "{message}");
    assert_eq!(monitor.current().text, "hello");
    assert!(!receiver.has_changed().expect("the sender lives"));

    let new = change_after(&monitor, || {
        replace(&watched.settings, "[greeting]\ntext = \"welcome back\"\n");
    })
    .await;
    assert_eq!(new.text, "welcome back");
}

#[tokio::test]
async fn the_environments_file_reloads_once_it_is_created() {
    let watched = watched("[greeting]\ntext = \"hello\"\n");
    let monitor = watched
        .configuration
        .bind(OptionsBinding::<Greeting>::new("greeting"))
        .expect("valid");
    let environment_file = watched
        .settings
        .with_file_name("appsettings.Production.json");
    let new = change_after(&monitor, || {
        replace(
            &environment_file,
            r#"{ "greeting": { "text": "from production" } }"#,
        );
    })
    .await;
    assert_eq!(new.text, "from production");

    // Removed again: the base file's value is back.
    let new = change_after(&monitor, || {
        std::fs::remove_file(&environment_file).expect("remove");
    })
    .await;
    assert_eq!(new.text, "hello");
}

#[tokio::test]
async fn an_application_file_reloads_when_it_opts_in() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    std::fs::create_dir(root.join("conf")).expect("mkdir");
    std::fs::write(
        root.join("conf/greeting.toml"),
        "[appfile]\ntext = \"hello\"\n",
    )
    .expect("write");
    let mut builder = ConfigurationBuilder::new();
    builder
        .without_env()
        .reload_delay(Duration::from_millis(50))
        .add_file(ConfigFile::new("conf/greeting.toml").reload_on_change(true));
    let configuration = builder.build("Production", root).expect("valid");
    assert!(configuration.is_watching());
    let monitor = configuration
        .bind(OptionsBinding::<Greeting>::new("appfile"))
        .expect("valid");
    let new = change_after(&monitor, || {
        replace(
            &root.join("conf/greeting.toml"),
            "[appfile]\ntext = \"bye\"\n",
        );
    })
    .await;
    assert_eq!(new.text, "bye");
}

#[cfg(unix)]
#[tokio::test]
async fn a_content_root_reached_through_a_symlink_reloads() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let real = directory.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    let link = directory.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    std::fs::write(
        real.join("appsettings.toml"),
        "[linked]\ntext = \"hello\"\n",
    )
    .expect("write");
    let configuration = reloading().build("Production", &link).expect("valid");
    assert!(configuration.is_watching());
    let monitor = configuration
        .bind(OptionsBinding::<Greeting>::new("linked"))
        .expect("valid");
    let new = change_after(&monitor, || {
        replace(&link.join("appsettings.toml"), "[linked]\ntext = \"bye\"\n");
    })
    .await;
    assert_eq!(new.text, "bye");
}

#[test]
fn reload_reports_and_publishes_the_changed_sections_only() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let settings = directory.path().join("appsettings.toml");
    std::fs::write(
        &settings,
        "[worker]\ninterval = \"1s\"\n[greeting]\ntext = \"hello\"\n",
    )
    .expect("write");
    let mut builder = ConfigurationBuilder::new();
    builder.without_env();
    let configuration = builder
        .build("Production", directory.path())
        .expect("valid");
    assert!(!configuration.is_watching(), "not asked to reload");
    let worker_monitor = configuration
        .bind(OptionsBinding::<Worker>::new("worker"))
        .expect("valid");
    let greeting = configuration
        .bind(OptionsBinding::<Greeting>::new("greeting"))
        .expect("valid");
    let mut worker_changes = worker_monitor.subscribe();
    let greeting_changes = greeting.subscribe();

    // Nothing changed: nothing is published.
    assert_eq!(configuration.reload().expect("valid"), Vec::<String>::new());
    assert!(!worker_changes.has_changed().expect("the sender lives"));
    assert!(!greeting_changes.has_changed().expect("the sender lives"));

    std::fs::write(
        &settings,
        "[worker]\ninterval = \"2s\"\n[greeting]\ntext = \"hello\"\n",
    )
    .expect("write");
    assert_eq!(configuration.reload().expect("valid"), ["worker"]);
    assert!(worker_changes.has_changed().expect("the sender lives"));
    assert_eq!(**worker_changes.borrow_and_update(), worker(2));
    assert!(!greeting_changes.has_changed().expect("the sender lives"));

    // A key moved to another source with the same value is no change.
    std::fs::write(&settings, "[worker]\ninterval = \"2s\"\n").expect("write");
    std::fs::write(
        directory.path().join("appsettings.json"),
        r#"{ "greeting": { "text": "hello" } }"#,
    )
    .expect("write");
    assert_eq!(configuration.reload().expect("valid"), Vec::<String>::new());
    assert!(!worker_changes.has_changed().expect("the sender lives"));
    assert!(!greeting_changes.has_changed().expect("the sender lives"));
}

#[test]
fn reload_rejects_an_invalid_change_as_a_whole() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let settings = directory.path().join("appsettings.toml");
    std::fs::write(
        &settings,
        "[worker]\ninterval = \"1s\"\n[greeting]\ntext = \"hello\"\n",
    )
    .expect("write");
    let mut builder = ConfigurationBuilder::new();
    builder.without_env();
    let configuration = builder
        .build("Production", directory.path())
        .expect("valid");
    let worker_monitor = configuration
        .bind(OptionsBinding::<Worker>::new("worker"))
        .expect("valid");
    let greeting = configuration
        .bind(OptionsBinding::<Greeting>::new("greeting"))
        .expect("valid");
    let greeting_changes = greeting.subscribe();

    // The greeting's change is valid, the worker's is not: neither lands.
    std::fs::write(
        &settings,
        "[worker]\ninterval = \"fast\"\n[greeting]\ntext = \"bye\"\n",
    )
    .expect("write");
    let error = configuration.reload().expect_err("an invalid interval");
    assert_eq!(
        error.to_string(),
        "invalid configuration: `worker.interval` expects a duration such as \"5s\", found \
         \"fast\"\n  from: appsettings.toml"
    );
    assert_eq!(*worker_monitor.current(), worker(1));
    assert_eq!(greeting.current().text, "hello");
    assert!(!greeting_changes.has_changed().expect("the sender lives"));
    assert_eq!(
        configuration
            .get::<String>("greeting.text")
            .expect("a string"),
        "hello"
    );

    // A malformed file: the same.
    std::fs::write(&settings, "[greeting]\ntext = \"bye\n").expect("write");
    let error = configuration.reload().expect_err("malformed");
    assert!(error.is_malformed(), "{error}");
    assert_eq!(greeting.current().text, "hello");
    assert!(!greeting_changes.has_changed().expect("the sender lives"));

    // Fixed: both land, and both are reported.
    std::fs::write(
        &settings,
        "[worker]\ninterval = \"2s\"\n[greeting]\ntext = \"bye\"\n",
    )
    .expect("write");
    let mut changed = configuration.reload().expect("valid");
    changed.sort();
    assert_eq!(changed, ["greeting", "worker"]);
    assert_eq!(*worker_monitor.current(), worker(2));
    assert_eq!(greeting.current().text, "bye");
}

#[test]
fn a_panicking_callback_is_logged_and_the_others_still_run() {
    logs();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let settings = directory.path().join("appsettings.toml");
    std::fs::write(&settings, "[panicky]\ntext = \"hello\"\n").expect("write");
    let mut builder = ConfigurationBuilder::new();
    builder.without_env();
    let configuration = builder
        .build("Production", directory.path())
        .expect("valid");
    let greeting = configuration
        .bind(OptionsBinding::<Greeting>::new("panicky"))
        .expect("valid");
    let seen = Arc::new(Mutex::new(Vec::new()));
    greeting.on_change(|_| panic!("a callback's bug"));
    greeting.on_change({
        let seen = seen.clone();
        move |greeting: &Greeting| seen.lock().expect("seen").push(greeting.text.clone())
    });

    std::fs::write(&settings, "[panicky]\ntext = \"bye\"\n").expect("write");
    assert_eq!(configuration.reload().expect("valid"), ["panicky"]);
    assert_eq!(greeting.current().text, "bye");
    assert_eq!(*seen.lock().expect("seen"), ["bye"]);
    let logged = logs().lock().expect("logs").iter().any(|logged| {
        logged.level == tracing::Level::ERROR
            && logged.message
                == "a change callback for `reload::Greeting` panicked; the new value is in place"
    });
    assert!(logged, "{:?}", logs().lock().expect("logs"));
}

#[test]
fn reload_reads_environment_variables_again() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("APP_RELENV__TEXT", "first");
        let configuration = ConfigurationBuilder::new()
            .build("Production", jail.directory())
            .map_err(|e| e.to_string())?;
        let greeting = configuration
            .bind(OptionsBinding::<Greeting>::new("relenv"))
            .map_err(|e| e.to_string())?;
        jail.set_env("APP_RELENV__TEXT", "second");
        assert_eq!(
            configuration.reload().map_err(|e| e.to_string())?,
            ["relenv"]
        );
        assert_eq!(greeting.current().text, "second");
        Ok(())
    });
}

#[tokio::test]
async fn a_panicking_check_rejects_the_change_and_the_next_change_loads() {
    let watched = watched("[guarded]\ntext = \"hello\"\n");
    let mut binding = OptionsBinding::<Greeting>::new("guarded");
    binding.validate(|greeting| {
        assert_ne!(greeting.text, "boom", "the check's own bug");
        Ok(())
    });
    let monitor = watched.configuration.bind(binding).expect("valid");
    let receiver = monitor.subscribe();

    replace(&watched.settings, "[guarded]\ntext = \"boom\"\n");
    let message = rejection_of(&watched.settings, |message| message.contains("panicked")).await;
    assert!(
        message.ends_with(
            "the last good configuration stays: invalid configuration: `guarded` panicked in a check \
             of `reload::Greeting`: assertion `left != right` failed: the check's own bug\n  \
             left: \"boom\"\n right: \"boom\""
        ),
        "{message}"
    );
    assert_eq!(monitor.current().text, "hello");
    assert!(!receiver.has_changed().expect("the sender lives"));
    assert!(watched.configuration.is_watching());

    // The watcher lives on: the next change loads.
    let new = change_after(&monitor, || {
        replace(&watched.settings, "[guarded]\ntext = \"fixed\"\n");
    })
    .await;
    assert_eq!(new.text, "fixed");
}

#[tokio::test]
async fn a_panicking_deserializer_rejects_the_change_and_the_next_change_loads() {
    fn fragile<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        assert!(text != "boom", "the deserializer's own bug");
        Ok(text)
    }

    #[derive(Debug, serde::Deserialize)]
    struct Fragile {
        #[serde(deserialize_with = "fragile")]
        text: String,
    }

    let watched = watched("[fragile]\ntext = \"hello\"\n");
    let monitor = watched
        .configuration
        .bind(OptionsBinding::<Fragile>::new("fragile"))
        .expect("valid");
    replace(&watched.settings, "[fragile]\ntext = \"boom\"\n");
    let message = rejection_of(&watched.settings, |message| message.contains("panicked")).await;
    let (head, tail) = message
        .split_once("invalid configuration: `fragile` panicked while being read as `reload::")
        .unwrap_or_else(|| panic!("the section is named: {message}"));
    assert!(
        head.ends_with("the last good configuration stays: "),
        "{message}"
    );
    assert!(
        tail.ends_with("::Fragile`: the deserializer's own bug"),
        "{message}"
    );
    assert_eq!(monitor.current().text, "hello");
    let new = change_after(&monitor, || {
        replace(&watched.settings, "[fragile]\ntext = \"fixed\"\n");
    })
    .await;
    assert_eq!(new.text, "fixed");
}

/// Lays out `root` as the kubelet mounts a ConfigMap: `appsettings.toml ->
/// ..data/appsettings.toml`, `..data -> ..{version}`.
#[cfg(unix)]
fn configmap(root: &Path, version: &str, text: &str) {
    let dir = root.join(format!("..{version}"));
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("appsettings.toml"), text).expect("write");
    std::os::unix::fs::symlink(format!("..{version}"), root.join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/appsettings.toml", root.join("appsettings.toml"))
        .expect("symlink");
}

/// Updates a ConfigMap as the kubelet does: a new timestamped directory, a
/// `..data_tmp` symlink to it renamed over `..data`, the old directory
/// removed. No event names `appsettings.toml`.
#[cfg(unix)]
fn configmap_update(root: &Path, old: &str, new: &str, text: &str) {
    let dir = root.join(format!("..{new}"));
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("appsettings.toml"), text).expect("write");
    std::os::unix::fs::symlink(format!("..{new}"), root.join("..data_tmp")).expect("symlink");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("rename over");
    std::fs::remove_dir_all(root.join(format!("..{old}"))).expect("remove the old version");
}

#[cfg(unix)]
#[tokio::test]
async fn a_kubernetes_configmap_update_reloads() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let root = directory.path();
    configmap(root, "2026_11_29_01.000", "[mapped]\ntext = \"first\"\n");
    let configuration = reloading().build("Production", root).expect("valid");
    assert!(configuration.is_watching());
    let monitor = configuration
        .bind(OptionsBinding::<Greeting>::new("mapped"))
        .expect("valid");
    assert_eq!(monitor.current().text, "first");

    let new = change_after(&monitor, || {
        configmap_update(
            root,
            "2026_11_29_01.000",
            "2026_11_29_02.000",
            "[mapped]\ntext = \"second\"\n",
        );
    })
    .await;
    assert_eq!(new.text, "second");
    let new = change_after(&monitor, || {
        configmap_update(
            root,
            "2026_11_29_02.000",
            "2026_11_29_03.000",
            "[mapped]\ntext = \"third\"\n",
        );
    })
    .await;
    assert_eq!(new.text, "third");
}

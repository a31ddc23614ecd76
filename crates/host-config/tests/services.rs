//! A bound section in the container (`add_options_monitor`): `Options<T>` is
//! the value at start, `OptionsMonitor<T>` follows reloads, `OptionsSnapshot<T>`
//! is fixed for a scope; derived services inject all three; a singleton
//! cannot capture a snapshot.

use std::path::PathBuf;
use std::sync::Arc;

use host_config::{
    Configuration, ConfigurationBuilder, OptionsBinding, OptionsMonitor,
    OptionsServiceCollectionExt, OptionsSnapshot,
};
use host_di::{DiErrorKind, Injectable, Options, ServiceCollection};

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Greeting {
    text: String,
}

struct Fixture {
    _directory: tempfile::TempDir,
    settings: PathBuf,
    configuration: Configuration,
    monitor: OptionsMonitor<Greeting>,
}

/// A configuration with `greeting.text = "hello"`, reloaded by hand.
fn fixture() -> Fixture {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let settings = directory.path().join("appsettings.toml");
    std::fs::write(&settings, "[greeting]\ntext = \"hello\"\n").expect("write");
    let mut builder = ConfigurationBuilder::new();
    builder.without_env();
    let configuration = builder
        .build("Production", directory.path())
        .expect("valid");
    let monitor = configuration
        .bind(OptionsBinding::<Greeting>::new("greeting"))
        .expect("valid");
    Fixture {
        _directory: directory,
        settings,
        configuration,
        monitor,
    }
}

impl Fixture {
    fn change_to(&self, text: &str) {
        std::fs::write(&self.settings, format!("[greeting]\ntext = \"{text}\"\n")).expect("write");
        assert_eq!(self.configuration.reload().expect("valid"), ["greeting"]);
    }
}

#[test]
fn the_three_forms_resolve_and_age_differently() {
    let fixture = fixture();
    let mut services = ServiceCollection::new();
    services.add_options_monitor(fixture.monitor.clone());
    let provider = services.build().expect("valid registrations");

    let options = provider.get::<Options<Greeting>>().expect("registered");
    let monitor = provider
        .get::<OptionsMonitor<Greeting>>()
        .expect("registered");
    assert_eq!(options.text, "hello");
    assert_eq!(monitor.current().text, "hello");
    assert_eq!(monitor.section(), "greeting");

    let before = provider.create_scope();
    let snapshot = before.get::<OptionsSnapshot<Greeting>>().expect("scoped");
    assert_eq!(snapshot.text, "hello");

    fixture.change_to("bye");

    assert_eq!(
        provider
            .get::<Options<Greeting>>()
            .expect("registered")
            .text,
        "hello",
        "Options is the value at start"
    );
    assert_eq!(monitor.current().text, "bye", "the monitor follows");
    assert_eq!(snapshot.text, "hello", "a snapshot is fixed");
    let again = before.get::<OptionsSnapshot<Greeting>>().expect("scoped");
    assert!(
        Arc::ptr_eq(&snapshot, &again),
        "one snapshot per scope, whatever reloads meanwhile"
    );
    assert_eq!(again.value().text, "hello");

    let after = provider.create_scope();
    assert_eq!(
        after
            .get::<OptionsSnapshot<Greeting>>()
            .expect("scoped")
            .text,
        "bye",
        "a new scope sees the new value"
    );
}

#[test]
fn a_snapshot_is_not_resolvable_from_the_root() {
    let fixture = fixture();
    let mut services = ServiceCollection::new();
    services.add_options_monitor(fixture.monitor.clone());
    let provider = services.build().expect("valid registrations");
    let error = provider
        .get::<OptionsSnapshot<Greeting>>()
        .expect_err("scoped");
    assert_eq!(error.kind(), DiErrorKind::ScopedFromRoot);
}

#[derive(Injectable)]
struct Handler {
    options: Options<Greeting>,
    monitor: OptionsMonitor<Greeting>,
    snapshot: OptionsSnapshot<Greeting>,
}

#[test]
fn a_derived_service_injects_all_three() {
    let fixture = fixture();
    let mut services = ServiceCollection::new();
    services.add_options_monitor(fixture.monitor.clone());
    services.add_scoped_self::<Handler>();
    let provider = services.build().expect("valid registrations");

    let first = provider.create_scope();
    let handler = first.get::<Handler>().expect("resolved");
    assert_eq!(handler.options.text, "hello");
    assert_eq!(handler.monitor.current().text, "hello");
    assert_eq!(handler.snapshot.text, "hello");

    fixture.change_to("bye");
    assert_eq!(handler.monitor.current().text, "bye");
    assert_eq!(handler.snapshot.text, "hello");
    assert_eq!(handler.options.text, "hello");

    let second = provider.create_scope();
    let handler = second.get::<Handler>().expect("resolved");
    assert_eq!(handler.snapshot.text, "bye");
    assert_eq!(handler.options.text, "hello");
}

#[derive(Injectable)]
struct Cache {
    #[allow(dead_code)] // the captive dependency under test
    snapshot: OptionsSnapshot<Greeting>,
}

#[derive(Injectable)]
struct Watcher {
    monitor: OptionsMonitor<Greeting>,
    options: Options<Greeting>,
}

#[test]
fn a_singleton_cannot_capture_a_snapshot() {
    let fixture = fixture();
    let mut services = ServiceCollection::new();
    services.add_options_monitor(fixture.monitor.clone());
    services.add_singleton_self::<Cache>();
    let error = services.build().expect_err("a captive dependency");
    assert_eq!(error.kind(), DiErrorKind::CaptiveDependency, "{error}");
    let text = error.to_string();
    assert!(text.contains("OptionsSnapshot<"), "{text}");
    assert!(text.contains("which is scoped"), "{text}");

    // The monitor and the options are fine in a singleton.
    let mut services = ServiceCollection::new();
    services.add_options_monitor(fixture.monitor.clone());
    services.add_singleton_self::<Watcher>();
    let provider = services.build().expect("valid registrations");
    let watcher = provider.get::<Watcher>().expect("resolved");
    fixture.change_to("bye");
    assert_eq!(watcher.monitor.current().text, "bye");
    assert_eq!(watcher.options.text, "hello");
}

#[test]
fn a_monitor_that_is_not_registered_fails_the_build() {
    let mut services = ServiceCollection::new();
    services.add_singleton_self::<Watcher>();
    let error = services.build().expect_err("nothing registered");
    assert_eq!(error.kind(), DiErrorKind::NotRegistered, "{error}");
    assert!(error.to_string().contains("OptionsMonitor<"), "{error}");
}

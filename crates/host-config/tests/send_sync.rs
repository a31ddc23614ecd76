//! The public types cross threads: `Send + Sync` for the configuration, its
//! builder, bindings, monitors, snapshots, files and errors (checked at
//! compile time), and a monitor read from another thread.

use host_config::{
    ConfigError, ConfigFile, Configuration, ConfigurationBuilder, OptionsBinding, OptionsMonitor,
    OptionsSnapshot, Problem, ValidationError,
};

/// Options that are `Send + Sync`, as every bound type must be.
#[derive(Debug, serde::Deserialize)]
struct Options {
    text: String,
}

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn the_public_types_are_send_and_sync() {
    assert_send_sync::<Configuration>();
    assert_send_sync::<ConfigurationBuilder>();
    assert_send_sync::<OptionsMonitor<Options>>();
    assert_send_sync::<OptionsSnapshot<Options>>();
    assert_send_sync::<OptionsBinding<Options>>();
    assert_send_sync::<ConfigError>();
    assert_send_sync::<Problem>();
    assert_send_sync::<ValidationError>();
    assert_send_sync::<ConfigFile>();
}

#[test]
fn errors_box_into_send_sync_errors() {
    let error: Box<dyn std::error::Error + Send + Sync> =
        Box::new(ValidationError::key("text", "must not be empty"));
    assert_eq!(error.to_string(), "`text` must not be empty");
}

#[test]
fn a_monitor_is_read_from_another_thread() {
    let mut builder = ConfigurationBuilder::new();
    builder
        .without_env()
        .appsettings(false)
        .args(["app", "--threaded.text=hello"]);
    let configuration = builder
        .build("Production", std::env::temp_dir())
        .expect("valid");
    let monitor = configuration
        .bind(OptionsBinding::<Options>::new("threaded"))
        .expect("valid");
    let text = std::thread::spawn(move || monitor.current().text.clone())
        .join()
        .expect("the thread ran");
    assert_eq!(text, "hello");
}

//! Reload on change: watch the directories of the reloadable files (editors
//! replace a file rather than write it), debounce, reload the whole
//! configuration when a file's content changed.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{Config, DebounceEventResult, Debouncer, new_debouncer_opt};

use crate::CONFIGURATION_TARGET;
use crate::configuration::{Configuration, WeakConfiguration};

/// How often the fallback watcher polls, when the system's file events are
/// not available (inotify's watch limit reached, say).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the file watcher running; dropping it stops the watching.
pub(crate) struct Watcher {
    _debouncer: Box<dyn Send>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Watcher")
    }
}

/// The reloadable files, and what their content was when last looked at.
///
/// No event may name a file at all: Kubernetes mounts a ConfigMap's file as
/// a symlink through `..data`, and updates it by renaming a new `..data`
/// over the old one. So any event in a watched directory looks at every
/// file again, following its symlinks, and reloads when one's content
/// changed (and only then: an unchanged file does not reload).
pub(crate) struct WatchedFiles {
    /// Each file as given, and in its directory's canonical form (events
    /// are reported under the latter).
    files: Vec<(PathBuf, PathBuf)>,
    seen: Mutex<Vec<Fingerprint>>,
}

/// What a file held when looked at: a hash of its bytes, or why none.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Content(u64),
    Unreadable(std::io::ErrorKind),
}

impl Fingerprint {
    fn of(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut hasher = DefaultHasher::new();
                hasher.write(&bytes);
                Self::Content(hasher.finish())
            }
            Err(error) => Self::Unreadable(error.kind()),
        }
    }
}

impl WatchedFiles {
    /// Looks at `files` now: call it before the configuration reads them, so
    /// that a change in between is a change.
    pub(crate) fn new(files: Vec<PathBuf>) -> Self {
        let seen = files.iter().map(|file| Fingerprint::of(file)).collect();
        Self {
            files: files
                .into_iter()
                .map(|file| {
                    let canonical = canonical(&file);
                    (file, canonical)
                })
                .collect(),
            seen: Mutex::new(seen),
        }
    }

    /// Looks at every file again; returns the first that changed since
    /// last looked at (and remembers what each holds now).
    fn changed(&self) -> Option<&Path> {
        let now: Vec<Fingerprint> = self
            .files
            .iter()
            .map(|(file, _)| Fingerprint::of(file))
            .collect();
        let mut seen = self.seen.lock();
        let changed = seen
            .iter()
            .zip(&now)
            .position(|(before, now)| before != now);
        *seen = now;
        changed.map(|index| self.files[index].1.as_path())
    }

    fn directories(&self) -> BTreeSet<PathBuf> {
        self.files
            .iter()
            .filter_map(|(_, canonical)| canonical.parent().map(Path::to_path_buf))
            .collect()
    }
}

/// How to learn of changes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    /// The system's file events, falling back to polling every second.
    Native,
    /// Polling only, at this interval.
    #[cfg_attr(not(test), allow(dead_code))]
    Poll(Duration),
}

/// Starts watching `files`; a change reloads `configuration`. Falls back to
/// polling when the system's file events are unavailable, and logs (never
/// fails) when even that is impossible: reloading is a convenience, the
/// configuration already loaded stays valid.
pub(crate) fn watch(
    configuration: &Configuration,
    files: WatchedFiles,
    delay: Duration,
    backend: Backend,
) -> Option<Watcher> {
    if files.files.is_empty() {
        return None;
    }
    let directories = files.directories();
    let files = Arc::new(files);
    let handler = {
        let weak = configuration.downgrade();
        let files = files.clone();
        move || {
            let weak = weak.clone();
            let files = files.clone();
            move |events: DebounceEventResult| on_events(&weak, &files, events)
        }
    };
    let config = Config::default().with_timeout(delay);
    let poll_interval = match backend {
        Backend::Native => {
            let native = new_debouncer_opt::<_, RecommendedWatcher>(config.clone(), handler())
                .map_err(|error| error.to_string())
                .and_then(|debouncer| watch_all(debouncer, &directories));
            match native {
                Ok(debouncer) => {
                    return Some(Watcher {
                        _debouncer: debouncer,
                    });
                }
                Err(error) => tracing::warn!(target: CONFIGURATION_TARGET,
                    "cannot use file-system events to watch the configuration ({error}); polling every {}s instead",
                    POLL_INTERVAL.as_secs()),
            }
            POLL_INTERVAL
        }
        Backend::Poll(interval) => interval,
    };
    let polling =
        config.with_notify_config(notify::Config::default().with_poll_interval(poll_interval));
    match new_debouncer_opt::<_, PollWatcher>(polling, handler())
        .map_err(|error| error.to_string())
        .and_then(|debouncer| watch_all(debouncer, &directories))
    {
        Ok(debouncer) => Some(Watcher {
            _debouncer: debouncer,
        }),
        Err(error) => {
            tracing::error!(target: CONFIGURATION_TARGET,
                "cannot watch the configuration files for changes ({error}); they will not reload");
            None
        }
    }
}

/// `file` in its directory's canonical form: macOS reports events under the
/// real path (`/private/var/...` for a temporary directory in `/var/...`),
/// so the directories are watched, and events matched, by that form.
fn canonical(file: &Path) -> PathBuf {
    match (file.parent(), file.file_name()) {
        (Some(directory), Some(name)) => directory
            .canonicalize()
            .map_or_else(|_| file.to_path_buf(), |directory| directory.join(name)),
        _ => file.to_path_buf(),
    }
}

fn watch_all<T: notify::Watcher + Send + 'static>(
    mut debouncer: Debouncer<T>,
    directories: &BTreeSet<PathBuf>,
) -> Result<Box<dyn Send>, String> {
    for directory in directories {
        debouncer
            .watcher()
            .watch(directory, RecursiveMode::NonRecursive)
            .map_err(|error| format!("{}: {error}", directory.display()))?;
    }
    Ok(Box::new(debouncer))
}

fn on_events(weak: &WeakConfiguration, files: &WatchedFiles, events: DebounceEventResult) {
    if let Err(error) = events {
        tracing::warn!(target: CONFIGURATION_TARGET, "watching the configuration files: {error}");
        return;
    }
    // Whatever the events name (`..data`, a temporary file), look at the
    // files themselves.
    let Some(changed) = files.changed() else {
        return;
    };
    let Some(configuration) = weak.upgrade() else {
        return;
    };
    let file = changed.display();
    // Binding and checks catch their own panics; this is for the rest (an
    // application's provider), so that the watcher's thread lives on.
    let reloaded = catch_unwind(AssertUnwindSafe(|| configuration.reload()));
    match reloaded {
        Ok(Ok(sections)) if sections.is_empty() => tracing::debug!(target: CONFIGURATION_TARGET,
            "{file} changed; no bound section changed"),
        Ok(Ok(sections)) => tracing::info!(target: CONFIGURATION_TARGET,
            "{file} changed; reloaded {}", sections.join(", ")),
        Ok(Err(error)) => tracing::error!(target: CONFIGURATION_TARGET,
            "{file} changed, but the change is rejected and the last good configuration stays: {error}"),
        Err(_) => tracing::error!(target: CONFIGURATION_TARGET,
            "{file} changed, but reloading it panicked; the last good configuration stays"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::{ConfigurationBuilder, OptionsBinding};

    #[derive(Debug, serde::Deserialize)]
    struct Greeting {
        text: String,
    }

    /// A ConfigMap as the kubelet mounts it, at `version`.
    fn configmap(root: &Path, version: &str, text: &str) {
        let dir = root.join(format!("..{version}"));
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("appsettings.toml"), text).expect("write");
        symlink(format!("..{version}"), root.join("..data")).expect("symlink");
        symlink("..data/appsettings.toml", root.join("appsettings.toml")).expect("symlink");
    }

    /// The kubelet's update: a new version, `..data_tmp` renamed over `..data`.
    fn configmap_update(root: &Path, old: &str, new: &str, text: &str) {
        let dir = root.join(format!("..{new}"));
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("appsettings.toml"), text).expect("write");
        symlink(format!("..{new}"), root.join("..data_tmp")).expect("symlink");
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("rename over");
        std::fs::remove_dir_all(root.join(format!("..{old}"))).expect("remove");
    }

    #[test]
    fn only_a_change_of_content_is_a_change() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let root = directory.path();
        configmap(root, "1", "[a]\ntext = \"one\"\n");
        let file = root.join("appsettings.toml");
        let files = WatchedFiles::new(vec![file.clone()]);
        assert_eq!(files.changed(), None);

        // The same content in a new version: the kubelet's update of
        // another key of the ConfigMap, say.
        configmap_update(root, "1", "2", "[a]\ntext = \"one\"\n");
        assert_eq!(files.changed(), None);

        configmap_update(root, "2", "3", "[a]\ntext = \"two\"\n");
        assert_eq!(files.changed(), Some(canonical(&file).as_path()));
        assert_eq!(files.changed(), None, "remembered");

        std::fs::remove_file(&file).expect("remove");
        assert!(files.changed().is_some(), "removed");
        std::fs::write(&file, "[a]\ntext = \"two\"\n").expect("write");
        assert!(files.changed().is_some(), "created");
    }

    #[tokio::test]
    async fn polling_sees_a_kubernetes_configmap_update() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let root = directory.path();
        configmap(root, "2026_11_29_01.000", "[polled]\ntext = \"first\"\n");
        let mut builder = ConfigurationBuilder::new();
        builder.without_env();
        let files = WatchedFiles::new(vec![root.join("appsettings.toml")]);
        let configuration = builder.build("Production", root).expect("valid");
        let watcher = watch(
            &configuration,
            files,
            Duration::from_millis(50),
            Backend::Poll(Duration::from_millis(50)),
        )
        .expect("polling works everywhere");
        configuration.set_watcher(watcher);
        let monitor = configuration
            .bind(OptionsBinding::<Greeting>::new("polled"))
            .expect("valid");

        let changed = monitor.changed();
        configmap_update(
            root,
            "2026_11_29_01.000",
            "2026_11_29_02.000",
            "[polled]\ntext = \"second\"\n",
        );
        let new = tokio::time::timeout(Duration::from_secs(10), changed)
            .await
            .expect("the update was loaded");
        assert_eq!(new.text, "second");
    }
}

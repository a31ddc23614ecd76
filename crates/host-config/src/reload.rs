//! Reload on change: watch the directories of the reloadable files (editors
//! replace a file rather than write it), debounce, reload the whole
//! configuration.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// Starts watching `files`; a change reloads `configuration`. Falls back to
/// polling when the system's file events are unavailable, and logs (never
/// fails) when even that is impossible: reloading is a convenience, the
/// configuration already loaded stays valid.
pub(crate) fn watch(
    configuration: &Configuration,
    files: Vec<PathBuf>,
    delay: Duration,
) -> Option<Watcher> {
    if files.is_empty() {
        return None;
    }
    let files: Arc<BTreeSet<PathBuf>> =
        Arc::new(files.iter().map(|file| canonical(file)).collect());
    let directories: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|file| file.parent().map(Path::to_path_buf))
        .collect();
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
    let polling =
        config.with_notify_config(notify::Config::default().with_poll_interval(POLL_INTERVAL));
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

fn on_events(weak: &WeakConfiguration, files: &BTreeSet<PathBuf>, events: DebounceEventResult) {
    let events = match events {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(target: CONFIGURATION_TARGET, "watching the configuration files: {error}");
            return;
        }
    };
    let Some(changed) = events.iter().find(|event| files.contains(&event.path)) else {
        return;
    };
    let Some(configuration) = weak.upgrade() else {
        return;
    };
    let file = changed.path.display();
    match configuration.reload() {
        Ok(sections) if sections.is_empty() => tracing::debug!(target: CONFIGURATION_TARGET,
            "{file} changed; no bound section changed"),
        Ok(sections) => tracing::info!(target: CONFIGURATION_TARGET,
            "{file} changed; reloaded {}", sections.join(", ")),
        Err(error) => tracing::error!(target: CONFIGURATION_TARGET,
            "{file} changed, but the change is rejected and the last good configuration stays: {error}"),
    }
}

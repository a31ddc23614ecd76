//! What the benches that time child processes of their own share: the
//! kind of process (with the host's default subscriber or none) and running
//! this bench binary as such a child.
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// Whether the host installs its default subscriber, and so what kind of
/// process a timing child is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Logging {
    /// `Host::builder()` as it comes: the default subscriber at info.
    Defaults,
    /// `default_logging(false)`: no subscriber is ever installed.
    Off,
}

impl Logging {
    /// Both kinds of child process, in the order they run.
    pub(crate) const BOTH: [Logging; 2] = [Logging::Defaults, Logging::Off];

    /// Its name on the child's command line.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Logging::Defaults => "defaults",
            Logging::Off => "logging-off",
        }
    }

    /// The kind a child's command line names.
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        Self::BOTH.into_iter().find(|logging| logging.key() == key)
    }

    /// The kind of process, in words, for a table's caption.
    pub(crate) fn process(self) -> &'static str {
        match self {
            Logging::Defaults => {
                "the process where the host's default subscriber (info, to standard error) is installed"
            }
            Logging::Off => "the process where no subscriber is ever installed",
        }
    }
}

/// Runs this binary as a child with `args`; returns its standard output.
/// Standard error goes to /dev/null (the host's log lines are still
/// formatted and written); `RUST_LOG` is removed so the host's default
/// level (info) applies.
pub(crate) fn run_child(args: &[String]) -> String {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    let output = Command::new(exe)
        .arg("--child")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("the bench can run itself");
    assert!(
        output.status.success(),
        "the child `{}` failed: {} (its standard error went to /dev/null: run it by hand \
         with `--child {}` to see it)",
        args.join(" "),
        output.status,
        args.join(" ")
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

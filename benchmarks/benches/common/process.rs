//! What `process.rs` and `configuration.rs` share of a whole-process run:
//! the bare tokio process and the host's one background service (in
//! `src/`, where the binaries of `benches/process.rs` take them from too),
//! and timing a child process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../src/bare.rs"]
mod bare;
#[path = "../../src/stop_at_once.rs"]
mod stop_at_once;

pub(crate) use bare::{bare_tokio, tokio_main};
pub(crate) use stop_at_once::StopAtOnce;

/// Runs the bench binary as the child `mode` to its exit, in `directory`
/// (default: this one); returns its wall-clock time, spawn to exit.
pub(crate) fn time_child(mode: &str, directory: Option<&Path>) -> Duration {
    let exe = std::env::current_exe().expect("the bench knows its own path");
    time_exe(&exe, &["--child", mode], directory)
}

/// Runs `exe` with `args` to its exit, in `directory` (default: this one),
/// its output to /dev/null; returns its wall-clock time, spawn to exit.
pub(crate) fn time_exe(exe: &Path, args: &[&str], directory: Option<&Path>) -> Duration {
    let mut command = Command::new(exe);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(directory) = directory {
        command.current_dir(directory);
    }
    let began = Instant::now();
    let status = command.status().expect("the bench can run the child");
    let elapsed = began.elapsed();
    assert!(
        status.success(),
        "`{} {}` failed: {status}",
        exe.display(),
        args.join(" ")
    );
    elapsed
}

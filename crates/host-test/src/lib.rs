//! Test support for tests that run a host as a real process: spawn it, read
//! its standard error line by line, send it signals, wait for its exit code.
//!
//! Used by the integration tests of host-core, host-web and the examples (as
//! tower-test is for tower). Every wait is bounded by [`NO_HANG`], a
//! generous limit that makes a hang fail the test; no wait asserts speed.
//! Signals are sent with `kill`, so [`HostProcess::signal`] needs a Unix.
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Instant;
//! use host_test::HostProcess;
//!
//! let mut host = HostProcess::spawn(Command::new("target/debug/examples/worker"));
//! host.wait_for("Application started.");
//! host.signal("TERM");
//! let (code, _took) = host.wait_for_exit(Instant::now());
//! assert_eq!(code, 0, "{}", host.output());
//! ```

pub mod etcd;
pub mod netns;
pub mod postgres_server;
pub mod redis_server;

pub use etcd::{EtcdCluster, EtcdLauncher};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The limit on every wait: generous, so that only a hang fails a test.
pub const NO_HANG: Duration = Duration::from_secs(60);

/// A host process under test. Killed when dropped, if still running.
#[derive(Debug)]
pub struct HostProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl HostProcess {
    /// Spawns `command` with standard output discarded and standard error
    /// read line by line.
    ///
    /// # Panics
    ///
    /// If the process cannot be spawned.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot spawn {command:?}: {error}"));
        let (send, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("standard error is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads standard error until a line contains `text`.
    ///
    /// # Panics
    ///
    /// After [`NO_HANG`], or when the process closes standard error first,
    /// with what it wrote.
    pub fn wait_for(&mut self, text: &str) {
        self.wait_for_times(text, 1);
    }

    /// Reads standard error until `times` lines (counting those read
    /// already) contain `text`.
    ///
    /// # Panics
    ///
    /// As [`wait_for`](Self::wait_for).
    pub fn wait_for_times(&mut self, text: &str, times: usize) {
        let deadline = Instant::now() + NO_HANG;
        let mut found = self.seen.iter().filter(|line| line.contains(text)).count();
        while found < times && Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    found += usize::from(line.contains(text));
                    self.seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        assert!(
            found >= times,
            "saw {text:?} {found} times, not {times}; the process wrote:\n{}",
            self.output()
        );
    }

    /// Sends the signal `name` (`TERM`, `INT`, `QUIT`, ...) with `kill`.
    ///
    /// # Panics
    ///
    /// If `kill` fails.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit; returns its exit code and the time
    /// from `since` to the exit. Reads what is left of standard error.
    ///
    /// # Panics
    ///
    /// After [`NO_HANG`], or when a signal killed the process.
    pub fn wait_for_exit(&mut self, since: Instant) -> (i32, Duration) {
        let (status, took) = self.wait_for_status(since);
        let code = status.code().unwrap_or_else(|| {
            panic!(
                "killed by a signal, not exited; it wrote:\n{}",
                self.output()
            )
        });
        (code, took)
    }

    /// Waits for the process to end, however it ends; returns its status and
    /// the time from `since` to the end. Reads what is left of standard
    /// error.
    ///
    /// # Panics
    ///
    /// After [`NO_HANG`].
    pub fn wait_for_status(&mut self, since: Instant) -> (ExitStatus, Duration) {
        let deadline = Instant::now() + NO_HANG;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .expect("the process can be waited for")
            {
                let took = since.elapsed();
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status, took);
            }
            assert!(
                Instant::now() < deadline,
                "the process never ended; it wrote:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads what the process has written to standard error so far,
    /// without waiting for more.
    pub fn read_written(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// The lines of standard error read so far.
    pub fn lines(&self) -> &[String] {
        &self.seen
    }

    /// The lines read so far, joined, for assertions and their messages.
    pub fn output(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ends a child test process with the host's exit code, as is: the test
/// harness would otherwise turn it into its own (0 or 101).
pub fn exit_with(code: std::process::ExitCode) -> ! {
    let number = (0..=u8::MAX)
        .find(|number| std::process::ExitCode::from(*number) == code)
        .expect("an exit code is a byte");
    std::process::exit(i32::from(number));
}

/// The path of an example built by `cargo test` (beside the test binary's
/// directory), to spawn it as users run it.
///
/// # Panics
///
/// If the example was not built: run the test through `cargo test`.
pub fn example(name: &str) -> std::path::PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A command that runs the calling test binary's `child` test alone, with
/// `scenario_variable` set to `scenario`: the pattern of the real-process
/// tests, whose `child` test does nothing unless that variable is set, and
/// otherwise builds and runs the host the scenario names.
///
/// # Panics
///
/// If the test binary's path cannot be read.
pub fn child_test(scenario_variable: &str, scenario: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(scenario_variable, scenario);
    command
}

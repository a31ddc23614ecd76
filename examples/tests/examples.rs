//! The examples as users run them: real processes, real signals.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A generous bound against hanging; never a speed assertion.
const NO_HANG: Duration = Duration::from_secs(60);

/// `cargo test` builds the examples next to the test binary's directory.
fn example(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    let profile_dir = test_binary.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(name: &str, environment: &[(&str, &str)]) -> Self {
        let mut child = Command::new(example(name))
            .envs(environment.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
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

    fn wait_for(&mut self, text: &str, times: usize) {
        let deadline = Instant::now() + NO_HANG;
        let mut found = self.seen.iter().filter(|line| line.contains(text)).count();
        while found < times && Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                found += usize::from(line.contains(text));
                self.seen.push(line);
            }
        }
        assert!(
            found >= times,
            "saw {text:?} {found} times:\n{}",
            self.seen.join("\n")
        );
    }

    fn terminate(&mut self, signal: &str) -> i32 {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + NO_HANG;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status.code().expect("exited, not killed");
            }
            assert!(Instant::now() < deadline, "the example never exited");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn worker_says_hello_every_second_and_stops_on_sigterm_with_zero() {
    let mut worker = Running::start("worker", &[]);
    worker.wait_for("Application started. Press Ctrl+C to shut down.", 1);
    worker.wait_for("hello from service", 2);
    let code = worker.terminate("TERM");
    assert_eq!(code, 0, "{}", worker.seen.join("\n"));
    let hello = worker
        .seen
        .iter()
        .find(|line| line.contains("hello from service"))
        .unwrap();
    assert!(hello.contains("WARN"), "{hello}");
    assert!(hello.contains("thread=ThreadId("), "{hello}");
    assert!(
        worker
            .seen
            .iter()
            .any(|line| line.contains("Hosting environment: Production"))
    );
}

#[test]
fn worker_stops_on_ctrl_c_with_zero_and_reads_its_environment() {
    let mut worker = Running::start("worker", &[("HOST_ENVIRONMENT", "Development")]);
    worker.wait_for("hello from service", 1);
    let code = worker.terminate("INT");
    assert_eq!(code, 0, "{}", worker.seen.join("\n"));
    assert!(
        worker
            .seen
            .iter()
            .any(|line| line.contains("Hosting environment: Development"))
    );
}

#[test]
fn scoped_opens_a_scope_per_job_and_disposes_it() {
    let mut scoped = Running::start("scoped", &[]);
    scoped.wait_for("unit of work disposed with its scope job=2", 1);
    let code = scoped.terminate("TERM");
    assert_eq!(code, 0, "{}", scoped.seen.join("\n"));
    let lines: Vec<&String> = scoped
        .seen
        .iter()
        .filter(|line| line.contains("job="))
        .collect();
    assert!(lines[0].contains("processing job=1 same=true"), "{lines:?}");
    assert!(
        lines[1].contains("unit of work disposed with its scope job=1"),
        "{lines:?}"
    );
    assert!(lines[2].contains("processing job=2 same=true"), "{lines:?}");
}

/// Logging to a closed pipe (`worker 2>&1 | head`) must not keep the host
/// from stopping: the writes fail, the host carries on.
#[test]
fn worker_stops_on_sigterm_even_when_its_log_pipe_is_closed() {
    let mut child = Command::new(example("worker"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("hello from service") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the worker never said hello"
        );
    }
    drop(stderr);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + NO_HANG;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not stop with its log pipe closed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(0));
}

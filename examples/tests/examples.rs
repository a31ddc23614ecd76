//! The examples as users run them: real processes, real signals.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use host_test::{HostProcess, NO_HANG, example};

fn start(name: &str, environment: &[(&str, &str)]) -> HostProcess {
    let mut command = Command::new(example(name));
    command
        .envs(environment.iter().copied())
        .env_remove("RUST_LOG");
    HostProcess::spawn(command)
}

/// Runs the example `name` with command-line `args`.
fn start_with_args(name: &str, args: &[&str]) -> HostProcess {
    let mut command = Command::new(example(name));
    command.args(args).env_remove("RUST_LOG");
    HostProcess::spawn(command)
}

/// Sends `signal` and returns the exit code.
fn terminate(process: &mut HostProcess, signal: &str) -> i32 {
    process.signal(signal);
    process.wait_for_exit(Instant::now()).0
}

#[test]
fn worker_says_hello_every_second_and_stops_on_sigterm_with_zero() {
    let mut worker = start("worker", &[]);
    worker.wait_for("Application started. Press Ctrl+C to shut down.");
    worker.wait_for_times("hello from service", 2);
    let code = terminate(&mut worker, "TERM");
    assert_eq!(code, 0, "{}", worker.output());
    let hello = worker
        .lines()
        .iter()
        .find(|line| line.contains("hello from service"))
        .unwrap();
    assert!(hello.contains("WARN"), "{hello}");
    assert!(hello.contains("thread=ThreadId("), "{hello}");
    assert!(
        worker
            .lines()
            .iter()
            .any(|line| line.contains("Hosting environment: Production"))
    );
}

#[test]
fn the_workers_periodic_service_runs_on_the_schedule_from_the_command_line() {
    let mut worker = start_with_args("worker", &["--services.Tidy.schedule.every=200ms"]);
    worker.wait_for_times("tidying up", 3);
    let code = terminate(&mut worker, "TERM");
    assert_eq!(code, 0, "{}", worker.output());
    assert!(
        worker
            .lines()
            .iter()
            .any(|line| line.contains("tidying up") && line.contains("run=3")),
        "{}",
        worker.output()
    );
}

#[test]
fn worker_stops_on_ctrl_c_with_zero_and_reads_its_environment() {
    let mut worker = start("worker", &[("HOST_ENVIRONMENT", "Development")]);
    worker.wait_for("hello from service");
    let code = terminate(&mut worker, "INT");
    assert_eq!(code, 0, "{}", worker.output());
    assert!(
        worker
            .lines()
            .iter()
            .any(|line| line.contains("Hosting environment: Development"))
    );
}

#[test]
fn scoped_opens_a_scope_per_job_and_disposes_it() {
    let mut scoped = start("scoped", &[]);
    scoped.wait_for("unit of work disposed with its scope job=2");
    let code = terminate(&mut scoped, "TERM");
    assert_eq!(code, 0, "{}", scoped.output());
    let lines: Vec<&String> = scoped
        .lines()
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

/// Runs the worker in `directory` (its content root) with `args`.
fn start_in(
    directory: &std::path::Path,
    environment: &[(&str, &str)],
    args: &[&str],
) -> HostProcess {
    let mut command = Command::new(example("worker"));
    command
        .current_dir(directory)
        .args(args)
        .envs(environment.iter().copied())
        .env_remove("RUST_LOG");
    HostProcess::spawn(command)
}

/// Environment variables for the example.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn worker_options_come_from_appsettings_an_environment_variable_or_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("appsettings.toml"),
        "[worker]\ninterval = \"100ms\"\nmessage = \"hello from the file\"\n",
    )
    .unwrap();
    let cases: [(Env, &[&str], &str); 3] = [
        (&[], &[], "hello from the file"),
        (
            &[("APP_WORKER__MESSAGE", "hello from the environment")],
            &[],
            "hello from the environment",
        ),
        (
            &[("APP_WORKER__MESSAGE", "hello from the environment")],
            &["--worker.message=hello from the command line"],
            "hello from the command line",
        ),
    ];
    for (environment, args, expected) in cases {
        let mut worker = start_in(root.path(), environment, args);
        // At 100 ms from the file, three greetings come well within the wait.
        worker.wait_for_times(expected, 3);
        assert_eq!(terminate(&mut worker, "TERM"), 0, "{}", worker.output());
    }
}

#[test]
fn worker_refuses_a_bad_interval_with_exit_code_2() {
    let root = tempfile::tempdir().unwrap();
    let mut worker = start_in(root.path(), &[("APP_WORKER__INTERVAL", "fast")], &[]);
    let (code, _) = worker.wait_for_exit(Instant::now());
    assert_eq!(code, 2, "{}", worker.output());
    assert!(
        worker.output().contains(
            "error: invalid configuration: `worker.interval` expects a duration such as \"5s\", \
             found \"fast\"\n  from: environment variable APP_WORKER__INTERVAL"
        ),
        "{}",
        worker.output()
    );
    let mut zero = start_in(root.path(), &[], &["--worker.interval=0s"]);
    assert_eq!(zero.wait_for_exit(Instant::now()).0, 2, "{}", zero.output());
    assert!(
        zero.output()
            .contains("`worker.interval` must be longer than zero, found \"0s\"")
    );
}

/// Starts the cluster example in `dir`, its content root.
fn start_cluster_in(dir: &std::path::Path) -> HostProcess {
    let mut command = Command::new(example("cluster"));
    command.current_dir(dir).env_remove("RUST_LOG");
    HostProcess::spawn(command)
}

#[test]
fn cluster_runs_billing_on_one_instance_and_hands_over_on_kill_and_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = start_cluster_in(dir.path());
    a.wait_for("leads `billing` (fencing token 1)");
    a.wait_for("billing run 1 (fencing token 1)");
    let mut b = start_cluster_in(dir.path());
    b.wait_for("stands by:");
    // kill -9: the operating system drops a's file lock.
    a.signal("KILL");
    b.wait_for("leads `billing` (fencing token 2)");
    b.wait_for("billing run 1 (fencing token 2)");
    let mut c = start_cluster_in(dir.path());
    c.wait_for("stands by:");
    // A graceful stop: the lease is released once the work has returned.
    let code = terminate(&mut b, "TERM");
    assert_eq!(code, 0, "{}", b.output());
    assert!(
        b.lines()
            .iter()
            .any(|line| line.contains("no longer leads `billing`: its work has returned")),
        "{}",
        b.output()
    );
    c.wait_for("leads `billing` (fencing token 3)");
    c.wait_for("billing run 1 (fencing token 3)");
    assert!(
        dir.path().join(".host/leases").is_dir(),
        "the default store lives under the content root"
    );
    let code = terminate(&mut c, "TERM");
    assert_eq!(code, 0, "{}", c.output());
}

/// Short timings for the cluster example, from the command line.
const SHORT_TIMINGS: [&str; 4] = [
    "--services.Billing.cluster_singleton.name=billing",
    "--services.Billing.cluster_singleton.lease=1s",
    "--services.Billing.cluster_singleton.renew_deadline=700ms",
    "--services.Billing.cluster_singleton.retry_period=200ms",
];

/// The timestamp a log line starts with (RFC 3339, UTC, fixed width).
fn timestamp(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or_default()
}

/// A stopped leader (SIGSTOP) keeps the file lock past its lease: nobody
/// else acts meanwhile. Continued, it finds its term over, stops its work
/// and releases; then one instance leads with a larger token.
#[test]
fn a_stopped_cluster_leader_keeps_the_lock_and_hands_over_once_continued() {
    let dir = tempfile::tempdir().unwrap();
    let start = |dir: &std::path::Path| {
        let mut command = Command::new(example("cluster"));
        command
            .current_dir(dir)
            .args(SHORT_TIMINGS)
            .env_remove("RUST_LOG");
        HostProcess::spawn(command)
    };
    let mut a = start(dir.path());
    a.wait_for("billing run 1 (fencing token 1)");
    let mut b = start(dir.path());
    b.wait_for("stands by:");
    a.signal("STOP");
    // Three leases long: b keeps standing by, as the lock is still held.
    std::thread::sleep(Duration::from_secs(3));
    a.signal("CONT");
    a.wait_for("lost the lead of `billing`");
    b.wait_for("leads `billing` (fencing token 2)");
    let lost = a
        .lines()
        .iter()
        .find(|line| line.contains("lost the lead of `billing`"))
        .cloned()
        .unwrap();
    let led = b
        .lines()
        .iter()
        .find(|line| line.contains("leads `billing` (fencing token 2)"))
        .cloned()
        .unwrap();
    assert!(
        timestamp(&led) >= timestamp(&lost),
        "b led before a's term was over:\n{lost}\n{led}"
    );
    for mut instance in [a, b] {
        let code = terminate(&mut instance, "TERM");
        assert_eq!(code, 0, "{}", instance.output());
    }
}

/// Three instances run the cluster-wide report: each five-second tick is
/// reported by exactly one of them.
#[test]
fn cluster_reports_each_tick_on_one_instance() {
    let dir = tempfile::tempdir().unwrap();
    let mut instances: Vec<HostProcess> = (0..3).map(|_| start_cluster_in(dir.path())).collect();
    for instance in &mut instances {
        instance.wait_for("Application started.");
    }
    // Two ticks at least.
    std::thread::sleep(Duration::from_secs(11));
    let mut keys = Vec::new();
    for instance in &mut instances {
        let code = terminate(instance, "TERM");
        assert_eq!(code, 0, "{}", instance.output());
        keys.extend(
            instance
                .lines()
                .iter()
                .filter_map(|line| line.split("report for ").nth(1))
                .filter_map(|rest| rest.split_whitespace().next())
                .map(str::to_owned),
        );
    }
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert!(unique.len() >= 2, "ticks reported: {keys:?}");
    assert_eq!(unique.len(), keys.len(), "a tick reported twice: {keys:?}");
}

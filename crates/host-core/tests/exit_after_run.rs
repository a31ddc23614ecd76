//! The run-to-exit paths end the process once the host has stopped, even
//! when the runtime cannot shut down (a `spawn_blocking` task that never
//! returns); the embedding path never ends the process itself.
//!
//! Both need the process's main thread, which libtest's harness keeps for
//! itself: this target has no harness (`harness = false`), and its `main`
//! runs each check, spawning itself as the host process.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use host_core::{BackgroundService, Host, ServiceContext, ServiceError, async_trait};
use host_test::HostProcess;

const SCENARIO: &str = "HOST_CORE_EXIT_SCENARIO";

/// Leaves a blocking task that never returns, then asks the host to stop
/// with code 7.
struct LeavesABlockingTask;

#[async_trait]
impl BackgroundService for LeavesABlockingTask {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        drop(tokio::task::spawn_blocking(|| {
            loop {
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
        ctx.lifetime().stop_application_with_code(7);
        Ok(())
    }
}

fn builder() -> host_core::HostBuilder {
    let mut builder = Host::builder();
    builder.add_hosted_service_instance(LeavesABlockingTask);
    builder
}

/// The host process, on the main thread as under `#[tokio::main]`.
fn child(scenario: &str) -> ExitCode {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    match scenario {
        // What `#[tokio::main] async fn main() -> ExitCode` expands to: the
        // runtime is dropped as `main` returns, and its drop waits for the
        // blocking task.
        "run" => runtime().block_on(builder().run()),
        "embedded" => {
            let runtime = runtime();
            let host = builder().build().unwrap();
            runtime.block_on(host.run()).unwrap();
            // Longer than the run-to-exit path would wait.
            runtime.shutdown_timeout(Duration::from_secs(2));
            eprintln!("the embedding application carries on");
            ExitCode::SUCCESS
        }
        // `run_blocking` shuts its runtime down itself, without waiting for
        // the blocking task; what `main` does next is its own.
        "run_blocking" => {
            let code = builder().run_blocking();
            std::thread::sleep(Duration::from_secs(1));
            eprintln!("main carried on after run_blocking");
            code
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn spawn(scenario: &str) -> HostProcess {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env(SCENARIO, scenario).env("RUST_LOG", "info");
    HostProcess::spawn(command)
}

fn the_run_to_exit_path_ends_a_process_whose_runtime_cannot_shut_down() {
    let mut host = spawn("run");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 7, "{}", host.output());
    assert!(
        host.output()
            .contains("the runtime did not shut down within 500ms after the host stopped"),
        "{}",
        host.output()
    );
}

fn the_embedding_path_never_ends_the_process_itself() {
    let mut host = spawn("embedded");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", host.output());
    assert!(
        host.output()
            .contains("the embedding application carries on"),
        "{}",
        host.output()
    );
}

fn run_blocking_leaves_main_its_own_time_after_it_returns() {
    let mut host = spawn("run_blocking");
    let (code, _) = host.wait_for_exit(Instant::now());
    assert_eq!(code, 7, "{}", host.output());
    assert!(
        host.output().contains("main carried on after run_blocking"),
        "{}",
        host.output()
    );
}

fn main() -> ExitCode {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        return child(&scenario);
    }
    let checks: [(&str, fn()); 3] = [
        (
            "the_run_to_exit_path_ends_a_process_whose_runtime_cannot_shut_down",
            the_run_to_exit_path_ends_a_process_whose_runtime_cannot_shut_down,
        ),
        (
            "the_embedding_path_never_ends_the_process_itself",
            the_embedding_path_never_ends_the_process_itself,
        ),
        (
            "run_blocking_leaves_main_its_own_time_after_it_returns",
            run_blocking_leaves_main_its_own_time_after_it_returns,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(check) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

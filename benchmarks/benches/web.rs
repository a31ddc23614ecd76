//! Serving HTTP (the host-web issue, its performance targets): the same
//! `GET /hello` handler (answers `hello`) served by plain `axum::serve` and
//! by host-web in its default configuration, under load from `wrk` on
//! loopback; and, through host-web, a handler that injects a singleton
//! beside the plain one.
//!
//! Each server runs in a child process of its own (this binary, re-executed
//! with `--child <mode>`), started once and kept for the whole bench:
//!
//! - `axum`: a multi-thread tokio runtime (as `#[tokio::main]` builds it),
//!   a `tokio::net::TcpListener` on `127.0.0.1:0`, `axum::serve` of a
//!   `Router` with the one route, `with_graceful_shutdown`;
//! - `host`: the same runtime, `Host::builder()` with every default (the
//!   default log subscriber on standard error at the default level, info;
//!   signal handlers; the configuration's default sources), the argument
//!   `--web.urls=127.0.0.1:0` and `builder.web(|app| app.route("/hello",
//!   get(hello)))`: host-web's router (health endpoints, request-scope
//!   layer, shutdown `Extension`, `CatchPanicLayer`, `TraceLayer`) served
//!   by its own accept loop;
//! - `host-inject`: the same host with a singleton registered and one route,
//!   `/inject`, whose handler takes `Inject<Arc<Greeting>>` and answers
//!   the same `hello`.
//!
//! Every child prints its address on standard output and serves until its
//! standard input closes; its `RUST_LOG` and `APP_*` variables are removed,
//! so the host's defaults are in force. The hosts' standard error is kept
//! and its lines counted: at info, host-web logs nothing per request.
//!
//! The bench (`cargo bench`) runs `wrk -t1 -c32 -d5s --latency` against each
//! server, one at a time: a warm-up run of each, then rounds of one run per
//! server, in alternating order (axum, host, inject; then inject, host,
//! axum; ...), so that drift of the machine hits all alike. Each round
//! gives a pair (host / axum, and inject / host), and the targets are judged
//! on the median of the pairs' ratios: host-web's plain route against
//! axum (requests/s and p99) and, since issue 11, the injecting route
//! against axum (requests/s). The server's CPU time per request (`utime +
//! stime` of the child, from `/proc`, over the run) is reported beside wrk's
//! figures for all three. Quick mode (`HOST_BENCH_QUICK`): 1 s runs, a 1 s
//! warm-up, 2 rounds.
//!
//! A smoke run (`cargo test --benches`) needs no `wrk`: it starts the three
//! children, checks that each answers one `GET` with `200` and `hello`
//! (over a plain `TcpStream`), and stops them. Without `wrk` on the `PATH`,
//! the bench says so and skips its tables (`just bench` installs it).

mod common;

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use host_core::Host;
use host_web::{Inject, ServerAddresses, WebHostBuilderExt};
use tokio_util::sync::CancellationToken;

use common::{RunKind, median, ratio, verdict};

/// The target: host-web's requests per second over axum's, at least.
const THROUGHPUT_TARGET: f64 = 0.97;

/// The target: host-web's p99 latency over axum's, at most.
const P99_TARGET: f64 = 1.1;

/// Issue 11's target: the injecting route's requests per second over plain
/// axum's, at least.
const INJECT_THROUGHPUT_TARGET: f64 = 0.95;

/// wrk's threads and connections: one load thread, so that the server keeps
/// most of the 2-core machine, and enough connections to keep it busy.
const WRK_THREADS: u32 = 1;
const WRK_CONNECTIONS: u32 = 32;

/// How long the wrk runs are, and how many.
#[derive(Clone, Copy)]
struct Plan {
    /// Seconds of each timed wrk run.
    run_seconds: u32,
    /// Seconds of each server's warm-up run.
    warmup_seconds: u32,
    /// Rounds of timed runs: one run of each server per round.
    rounds: usize,
}

/// A full run (`cargo bench`).
const FULL_PLAN: Plan = Plan {
    run_seconds: 5,
    warmup_seconds: 3,
    rounds: 6,
};

/// Quick mode: seconds, indicative only.
const QUICK_PLAN: Plan = Plan {
    run_seconds: 1,
    warmup_seconds: 1,
    rounds: 2,
};

/// `/proc/<pid>/stat` counts CPU time in `USER_HZ` ticks, 100 a second on
/// every Linux architecture the project runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// What every handler answers.
const GREETING: &str = "hello";

/// How long a child may take to exit once its standard input is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Axum,
    Host,
    HostInject,
}

impl Server {
    const ALL: [Self; 3] = [Self::Axum, Self::Host, Self::HostInject];

    fn mode(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Host => "host",
            Self::HostInject => "host-inject",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Axum | Self::Host => "/hello",
            Self::HostInject => "/inject",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Axum => "plain `axum::serve`, `GET /hello`",
            Self::Host => "host-web (defaults), `GET /hello`",
            Self::HostInject => "host-web (defaults), `GET /inject` (`Inject<Arc<Greeting>>`)",
        }
    }
}

// ---------------------------------------------------------------------------
// The children: the servers.

/// The singleton the `/inject` handler asks for.
struct Greeting(&'static str);

async fn hello() -> &'static str {
    GREETING
}

async fn inject(Inject(greeting): Inject<Arc<Greeting>>) -> &'static str {
    greeting.0
}

/// `#[tokio::main]`, written out: a multi-thread runtime with every driver.
fn tokio_main<F: Future>(main: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(main)
}

/// Cancelled when standard input reaches its end (the bench closes it to
/// stop the child).
fn stdin_closed() -> CancellationToken {
    let closed = CancellationToken::new();
    let token = closed.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        token.cancel();
    });
    closed
}

fn child_axum() -> ExitCode {
    tokio_main(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on loopback");
        let address = listener.local_addr().expect("a bound address");
        println!("listening {address}");
        let closed = stdin_closed();
        axum::serve(listener, Router::new().route("/hello", get(hello)))
            .with_graceful_shutdown(closed.cancelled_owned())
            .await
            .expect("axum serves");
        ExitCode::SUCCESS
    })
}

fn child_host(server: Server) -> ExitCode {
    tokio_main(async {
        let mut builder = Host::builder();
        builder.args(["web", "--web.urls=127.0.0.1:0"]);
        if server == Server::HostInject {
            builder
                .services()
                .add_instance(Arc::new(Greeting(GREETING)));
            builder.web(|app| app.route("/inject", get(inject)));
        } else {
            builder.web(|app| app.route("/hello", get(hello)));
        }
        let mut host = builder.build().expect("the host builds");
        host.start().await.expect("the host starts");
        let address = host
            .services()
            .get::<ServerAddresses>()
            .expect("host-web registers its addresses")
            .first()
            .expect("the server listens");
        println!("listening {address}");
        let closed = stdin_closed();
        tokio::select! {
            () = closed.cancelled() => {}
            () = host.wait_for_shutdown() => {}
        }
        host.stop().await.expect("the host stops");
        ExitCode::SUCCESS
    })
}

fn child(args: &[String]) -> ExitCode {
    match args.first().map(String::as_str) {
        Some("axum") => child_axum(),
        Some("host") => child_host(Server::Host),
        Some("host-inject") => child_host(Server::HostInject),
        _ => {
            eprintln!("usage: web --child axum|host|host-inject");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------
// The bench's side: starting, calling and stopping the children.

/// A running server.
struct Child {
    server: Server,
    process: std::process::Child,
    address: SocketAddr,
    /// Everything the child writes to standard error (read as it comes, so
    /// that the pipe never fills).
    stderr: JoinHandle<String>,
}

impl Child {
    fn spawn(server: Server) -> Self {
        let exe = std::env::current_exe().expect("the bench knows its own path");
        let mut command = Command::new(exe);
        command
            .args(["--child", server.mode()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("APP_") {
                command.env_remove(name);
            }
        }
        let mut process = command.spawn().expect("the bench can run itself");
        let mut stderr = process.stderr.take().expect("a piped standard error");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut line = String::new();
        let _ = BufReader::new(process.stdout.take().expect("a piped standard output"))
            .read_line(&mut line);
        let Some(address) = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|address| address.parse().ok())
        else {
            let _ = process.kill();
            let _ = process.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "the `{}` child did not say where it listens (it printed {line:?}); its standard error:\n{stderr}",
                server.mode()
            );
        };
        Self {
            server,
            process,
            address,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://{}{}", self.address, self.server.path())
    }

    /// The child's CPU time so far (user + system, every thread), in s.
    fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(&self.process.id().to_string(), false)
    }

    /// One `GET` over a plain `TcpStream`; checks the answer.
    fn check_answers(&self) {
        let mut stream = TcpStream::connect(self.address).expect("the server accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.server.path(),
            self.address
        )
        .expect("the request is sent");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("the server answers and closes");
        assert!(
            response.starts_with("HTTP/1.1 200") && response.ends_with(GREETING),
            "the `{}` child answered {response:?}",
            self.server.mode()
        );
    }

    /// Closes the child's standard input, waits for its exit (which must be
    /// a success) and returns what it wrote to standard error.
    fn stop(mut self) -> String {
        drop(self.process.stdin.take());
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let status = loop {
            if let Some(status) = self.process.try_wait().expect("the child can be waited on") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.process.kill();
                let _ = self.process.wait();
                panic!("the `{}` child did not exit", self.server.mode());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = self.stderr.join().unwrap_or_default();
        assert!(
            status.success(),
            "the `{}` child failed: {status}; its standard error:\n{stderr}",
            self.server.mode()
        );
        stderr
    }
}

// ---------------------------------------------------------------------------
// CPU time, from /proc.

/// The CPU time (user + system) of process `pid` so far, in s; with
/// `reaped_children`, that of its children it has waited for instead.
fn process_cpu_seconds(pid: &str, reaped_children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses, which may hold spaces): field
    // 3 (state) first, so utime, stime, cutime, cstime (14-17) are 11-14.
    let (_, fields) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let first = if reaped_children { 13 } else { 11 };
    let user: f64 = fields.get(first)?.parse().ok()?;
    let system: f64 = fields.get(first + 1)?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

/// The busy CPU time of the whole machine so far (every CPU), in s.
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest is in user).
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&index| ticks.get(index).copied().unwrap_or(0.0))
        .sum::<f64>();
    Some(busy / TICKS_PER_SECOND)
}

/// CPU time of the bench (itself, and wrk once reaped) and of the machine.
struct CpuClock {
    server: Option<f64>,
    bench: Option<f64>,
    wrk: Option<f64>,
    machine: Option<f64>,
    at: Instant,
}

impl CpuClock {
    fn now(child: &Child) -> Self {
        Self {
            server: child.cpu_seconds(),
            bench: process_cpu_seconds("self", false),
            wrk: process_cpu_seconds("self", true),
            machine: machine_busy_seconds(),
            at: Instant::now(),
        }
    }

    /// The server's CPU time since `self`, in s, and the CPU used meanwhile
    /// by every other process of the machine (not the server, wrk or the
    /// bench), in cores (CPU s per s).
    fn since(&self, later: &Self) -> (Option<f64>, Option<f64>) {
        let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
        let server = delta(self.server, later.server);
        let others = delta(self.machine, later.machine)
            .zip(server)
            .zip(delta(self.bench, later.bench))
            .zip(delta(self.wrk, later.wrk))
            .map(|(((machine, server), bench), wrk)| {
                (machine - server - bench - wrk).max(0.0)
                    / later.at.duration_since(self.at).as_secs_f64()
            });
        (server, others)
    }
}

// ---------------------------------------------------------------------------
// wrk.

/// wrk's first line of `-v` (`wrk 4.1.0 [epoll] Copyright ...`), if wrk runs.
fn wrk_version() -> Option<String> {
    let output = Command::new("wrk")
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let line = text.lines().find(|line| line.starts_with("wrk "))?;
    Some(line.split(" Copyright").next().unwrap_or(line).to_owned())
}

/// What one wrk run measured.
struct Run {
    requests_per_second: f64,
    requests: u64,
    /// Latency percentiles, in µs.
    p50: f64,
    p90: f64,
    p99: f64,
    /// wrk's error lines (socket errors, non-2xx answers), if any.
    errors: Vec<String>,
    /// The server's CPU time per request, in µs.
    cpu_per_request: Option<f64>,
    /// CPU used by the machine's other processes during the run, in cores.
    others: Option<f64>,
}

/// A latency as wrk prints it (`151.00us`, `1.23ms`, `2.00s`), in µs.
fn latency_us(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(number) = text.strip_suffix("us") {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix("ms") {
        (number, 1e3)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60e6)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1e6)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|value| value * scale)
}

/// Parses wrk's report (`--latency`).
fn parse_wrk(report: &str) -> Option<(f64, u64, [f64; 3], Vec<String>)> {
    let mut requests_per_second = None;
    let mut requests = None;
    let mut percentiles = [None; 3];
    let mut errors = Vec::new();
    for line in report.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Requests/sec:", value] => requests_per_second = value.parse().ok(),
            [count, "requests", "in", ..] => requests = count.parse().ok(),
            [percent, value] => {
                let index = match *percent {
                    "50%" => 0,
                    "90%" => 1,
                    "99%" => 2,
                    _ => continue,
                };
                percentiles[index] = latency_us(value);
            }
            _ if line.starts_with("Socket errors") || line.starts_with("Non-2xx") => {
                errors.push(line.to_owned());
            }
            _ => {}
        }
    }
    let [p50, p90, p99] = percentiles;
    Some((requests_per_second?, requests?, [p50?, p90?, p99?], errors))
}

/// One wrk run against `child`.
fn run_wrk(child: &Child, seconds: u32) -> Run {
    let before = CpuClock::now(child);
    let output = Command::new("wrk")
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{WRK_CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg(child.url())
        .stdin(Stdio::null())
        .output()
        .expect("wrk runs");
    let (server_cpu, others) = before.since(&CpuClock::now(child));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed ({}): {report}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let Some((requests_per_second, requests, [p50, p90, p99], errors)) = parse_wrk(&report) else {
        panic!("wrk's report is not as expected:\n{report}");
    };
    let cpu_per_request = server_cpu
        .filter(|_| requests > 0)
        .map(|seconds| seconds * 1e6 / requests as f64);
    Run {
        requests_per_second,
        requests,
        p50,
        p90,
        p99,
        errors,
        cpu_per_request,
        others,
    }
}

// ---------------------------------------------------------------------------
// The report.

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// A ratio as `0.973x`: the targets sit close to 1, two decimals are not enough.
fn ratio3(value: f64) -> String {
    format!("{value:.3}x")
}

/// Median, min and max of `values` as `median (min-max)`, with `decimals`.
fn spread(values: &[f64], decimals: usize) -> String {
    format!(
        "{:.decimals$} ({:.decimals$}-{:.decimals$})",
        median(values),
        min(values),
        max(values)
    )
}

/// The ratios of `a` to `b`, run by run (one pair per round).
fn pair_ratios(a: &[Run], b: &[Run], value: fn(&Run) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| value(a) / value(b)).collect()
}

fn report(out: &mut String, runs: &[Vec<Run>; 3], stderr_lines: [usize; 2], wrk: &str, plan: Plan) {
    let [axum, host, inject] = runs;
    let Plan {
        run_seconds,
        warmup_seconds,
        rounds,
    } = plan;
    let _ = writeln!(
        out,
        "\n{wrk}, `wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{run_seconds}s --latency` on \
         loopback; a {warmup_seconds} s warm-up run per server, then {rounds} rounds of one \
         run per server in alternating order. Medians over the rounds (min-max); latencies \
         in µs; server CPU is the child's user + system time over the run, per request \
         (wrk shares the machine: this is what the server itself spent).\n"
    );
    let _ = writeln!(
        out,
        "| server | requests/s | p50 (µs) | p90 (µs) | p99 (µs) | server CPU (µs/request) | CPU / axum's |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let cpu = |runs: &[Run]| {
        median(
            &runs
                .iter()
                .filter_map(|run| run.cpu_per_request)
                .collect::<Vec<f64>>(),
        )
    };
    let axum_cpu = cpu(axum);
    for (server, runs) in Server::ALL.iter().zip([axum, host, inject]) {
        let values = |value: fn(&Run) -> f64| runs.iter().map(value).collect::<Vec<f64>>();
        let cpus: Vec<f64> = runs.iter().filter_map(|run| run.cpu_per_request).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            server.label(),
            spread(&values(|run| run.requests_per_second), 0),
            spread(&values(|run| run.p50), 0),
            median(&values(|run| run.p90)),
            spread(&values(|run| run.p99), 0),
            if cpus.is_empty() {
                "—".to_owned()
            } else {
                spread(&cpus, 2)
            },
            if cpus.is_empty() || !axum_cpu.is_finite() {
                "—".to_owned()
            } else {
                ratio(cpu(runs) / axum_cpu)
            },
        );
    }

    let throughput = pair_ratios(host, axum, |run| run.requests_per_second);
    let p99 = pair_ratios(host, axum, |run| run.p99);
    let inject_throughput = pair_ratios(inject, axum, |run| run.requests_per_second);
    let inject_p99 = pair_ratios(inject, axum, |run| run.p99);
    let di_throughput = pair_ratios(inject, host, |run| run.requests_per_second);
    let di_p99 = pair_ratios(inject, host, |run| run.p99);
    let _ = writeln!(
        out,
        "\nThe pairs, round by round (each ratio from the two runs of one round; the last \
         column is the most CPU the machine's other processes used during one of the \
         round's runs, 0 on a quiet machine):\n"
    );
    let _ = writeln!(
        out,
        "| round | host-web / axum, requests/s | host-web / axum, p99 | inject / axum, requests/s | inject / axum, p99 | inject / hello, requests/s | inject / hello, p99 | other processes (cores) |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for round in 0..throughput.len() {
        let others = [&axum[round], &host[round], &inject[round]]
            .iter()
            .filter_map(|run| run.others)
            .fold(None, |most: Option<f64>, value| {
                Some(most.map_or(value, |most| most.max(value)))
            });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            round + 1,
            ratio3(throughput[round]),
            ratio3(p99[round]),
            ratio3(inject_throughput[round]),
            ratio3(inject_p99[round]),
            ratio3(di_throughput[round]),
            ratio3(di_p99[round]),
            others.map_or_else(|| "—".to_owned(), |cores| format!("{cores:.2}")),
        );
    }
    let _ = writeln!(
        out,
        "| **median** | **{}** | **{}** | **{}** | **{}** | **{}** | **{}** | |",
        ratio3(median(&throughput)),
        ratio3(median(&p99)),
        ratio3(median(&inject_throughput)),
        ratio3(median(&inject_p99)),
        ratio3(median(&di_throughput)),
        ratio3(median(&di_p99)),
    );

    let median_of = |runs: &[Run], value: fn(&Run) -> f64| {
        median(&runs.iter().map(value).collect::<Vec<f64>>())
    };
    let _ = writeln!(
        out,
        "\n| target (median of the {} pairs) | measured | verdict |",
        throughput.len()
    );
    let _ = writeln!(out, "|---|---:|---|");
    let value = median(&throughput);
    let _ = writeln!(
        out,
        "| host-web requests/s ≥ {THROUGHPUT_TARGET}x plain axum's (host-web / axum) | {} | {} |",
        ratio3(value),
        verdict(value >= THROUGHPUT_TARGET)
    );
    let value = median(&p99);
    let _ = writeln!(
        out,
        "| host-web p99 latency ≤ {P99_TARGET}x plain axum's (host-web / axum) | {} | {} |",
        ratio3(value),
        verdict(value <= P99_TARGET)
    );
    let value = median(&inject_throughput);
    let _ = writeln!(
        out,
        "| injecting route's requests/s ≥ {INJECT_THROUGHPUT_TARGET}x plain axum's (inject / axum) | {} | {} |",
        ratio3(value),
        verdict(value >= INJECT_THROUGHPUT_TARGET)
    );
    let _ = writeln!(
        out,
        "\nFor reference (no target): ratio of the medians, host-web / axum: requests/s {}, \
         p99 {}; a request that injects a singleton / one that does not (both through \
         host-web): requests/s {}, p99 {} (median of the pairs).",
        ratio3(
            median_of(host, |run| run.requests_per_second)
                / median_of(axum, |run| run.requests_per_second)
        ),
        ratio3(median_of(host, |run| run.p99) / median_of(axum, |run| run.p99)),
        ratio3(median(&di_throughput)),
        ratio3(median(&di_p99)),
    );
    let (host_cpu, inject_cpu) = (cpu(host), cpu(inject));
    if axum_cpu.is_finite() && host_cpu.is_finite() && inject_cpu.is_finite() {
        let _ = writeln!(
            out,
            "\nServer CPU per request (medians): axum {axum_cpu:.2} µs; host-web {host_cpu:.2} µs \
             ({:+.2} µs, {}); the injecting route {inject_cpu:.2} µs ({:+.2} µs over axum, {}; \
             {:+.2} µs over host-web's plain route).",
            host_cpu - axum_cpu,
            ratio(host_cpu / axum_cpu),
            inject_cpu - axum_cpu,
            ratio(inject_cpu / axum_cpu),
            inject_cpu - host_cpu,
        );
    }

    let requests: u64 = host
        .iter()
        .chain(inject.iter())
        .map(|run| run.requests)
        .sum();
    let lines = stderr_lines[0] + stderr_lines[1];
    let _ = writeln!(
        out,
        "\nThe two host-web children wrote {} and {} lines to standard error in all \
         (default logging, level info), from start to exit, while serving {requests} timed \
         requests (warm-up not counted): {}.",
        stderr_lines[0],
        stderr_lines[1],
        if (lines as u64) < 100 {
            "the host's lifecycle messages, nothing per request".to_owned()
        } else {
            format!(
                "**{:.3} lines per request**",
                lines as f64 / requests as f64
            )
        }
    );
    let errors: Vec<String> = Server::ALL
        .iter()
        .zip([axum, host, inject])
        .flat_map(|(server, runs)| {
            runs.iter()
                .flat_map(|run| run.errors.iter())
                .map(move |error| format!("{}: {error}", server.mode()))
        })
        .collect();
    if errors.is_empty() {
        let _ = writeln!(out, "wrk reported no socket errors and no non-2xx answers.");
    } else {
        let _ = writeln!(out, "wrk reported errors: {}.", errors.join("; "));
    }
}

fn main() -> ExitCode {
    if let Some(args) = common::child_args() {
        return child(&args);
    }
    let began = Instant::now();
    let mut out = common::header("Serving HTTP: host-web beside plain axum (benches/web.rs)");
    let children = Server::ALL.map(Child::spawn);
    for child in &children {
        child.check_answers();
    }
    let wrk = wrk_version();
    let plan = match common::run_kind() {
        RunKind::Quick => QUICK_PLAN,
        RunKind::Full | RunKind::Smoke => FULL_PLAN,
    };
    let measured = match (&wrk, common::is_bench_run()) {
        (Some(wrk), true) => {
            for child in &children {
                run_wrk(child, plan.warmup_seconds);
            }
            let mut runs: [Vec<Run>; 3] = Default::default();
            for round in 0..plan.rounds {
                let mut order = [0, 1, 2];
                if round % 2 == 1 {
                    order.reverse();
                }
                for index in order {
                    runs[index].push(run_wrk(&children[index], plan.run_seconds));
                }
            }
            Some((runs, wrk.clone()))
        }
        (None, true) => {
            let _ = writeln!(
                out,
                "\n**Skipped: `wrk` is not installed** (`apt-get install -y wrk`; `just bench` \
                 installs it when it can). Each server did answer one `GET` correctly."
            );
            None
        }
        (_, false) => {
            let _ = writeln!(
                out,
                "\nSmoke run: each of the three servers answered one `GET` with `200` and \
                 `{GREETING}` (a plain `TcpStream`, no wrk), and stopped cleanly."
            );
            None
        }
    };
    let stderr = children.map(Child::stop);
    if let Some((runs, wrk)) = measured {
        let lines = |text: &String| text.lines().count();
        report(
            &mut out,
            &runs,
            [lines(&stderr[1]), lines(&stderr[2])],
            &wrk,
            plan,
        );
    }
    let _ = writeln!(out, "\n{}", common::footer(began));
    println!("{out}");
    ExitCode::SUCCESS
}

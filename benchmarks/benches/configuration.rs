//! Configuration (the host-config issue, its performance targets): loading
//! layered configuration and binding it, and what reading the configuration
//! adds to building and running a host.
//!
//! **Loading.** A content root holding an `appsettings.toml` of 200 keys
//! (10 sections of 20: strings, integers, a float, booleans, durations), 20
//! `APP_SECTION__KEY` variables in the process's environment and 10
//! `--section.key=value` arguments; one load is `ConfigurationBuilder::new()`,
//! `args`, `build("Production", root)` and three `Configuration::bind`s into
//! serde structs (20 fields each; one reads its durations with
//! `host_config::duration`). The variables are set on a child process (this
//! binary, re-executed with `--child`), so the environment layer reads real
//! variables; the child checks that each layer's values won where they should.
//! The first load of each of several fresh children gives the cold figure
//! (their median), the later loads the warm median. A breakdown (read, parse,
//! each layer alone, each bind, figment's lookups) runs in one more child,
//! and one of the default sources (below) in another.
//!
//! **Building and running a host.** A host whose configuration has no
//! sources (`appsettings(false)`, `without_env()`, no arguments) against one
//! with the default sources (the `appsettings` lookups in an empty content
//! root, the environment, one argument):
//!
//! - the whole process from spawn to exit, beside bare tokio, exactly as in
//!   `benches/process.rs` (one background service that stops the
//!   application on its first poll; the modes alternate);
//! - `HostBuilder::build()` alone, in fresh processes (the first build is
//!   the cold one), with `default_logging(false)` so that the global
//!   subscriber, installed once per process, stays out of it;
//! - the configuration work alone, as `build()` does it (build the
//!   configuration, read the `host` section, bind `logging`, register both
//!   with a service collection): even "no sources" does this, so this is
//!   what the host pays over the host before configuration.

mod common;
#[path = "common/process.rs"]
mod contenders;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_config::{
    Configuration, ConfigurationBuilder, OptionsBinding, OptionsServiceCollectionExt as _,
};
use host_core::{Host, HostBuilder, LoggingOptions};
use host_di::ServiceCollection;
use serde::Deserialize;

use common::{RunKind, median, ratio, verdict};
use contenders::{StopAtOnce, bare_tokio, time_child, tokio_main};

/// The target for loading and binding, in ms.
const LOAD_TARGET_MS: f64 = 5.0;

/// The target for what the default sources add to a whole
/// process, in ms.
const SOURCES_TARGET_MS: f64 = 0.2;

/// The foundation issue's target for the whole process against bare tokio.
const PROCESS_TARGET_RATIO: f64 = 1.5;

/// The ten sections of the generated `appsettings.toml`.
const SECTIONS: [&str; 10] = [
    "server", "database", "cache", "worker", "retry", "http", "queue", "storage", "metrics",
    "features",
];

/// The twenty keys of every section: 5 strings, 4 integers, a float, 5
/// booleans, 5 durations (in this order).
const KEYS: [&str; 20] = [
    "name", "host", "path", "label", "mode", "port", "count", "limit", "size", "ratio", "enabled",
    "verbose", "strict", "cached", "secure", "timeout", "interval", "delay", "ttl", "grace",
];

/// The durations of the file, by key (`timeout` ... `grace`).
const FILE_DURATIONS: [&str; 5] = ["250ms", "5s", "1m 30s", "2h", "30s"];

/// The 20 variables of the loading case's environment.
const ENVIRONMENT: [(&str, &str); 20] = [
    ("APP_SERVER__PORT", "9001"),
    ("APP_SERVER__HOST", "env-host"),
    ("APP_SERVER__ENABLED", "false"),
    ("APP_SERVER__TIMEOUT", "7s"),
    ("APP_DATABASE__COUNT", "77"),
    ("APP_DATABASE__RATIO", "0.75"),
    ("APP_DATABASE__NAME", "env-db"),
    ("APP_WORKER__INTERVAL", "45s"),
    ("APP_WORKER__LIMIT", "500"),
    ("APP_WORKER__VERBOSE", "true"),
    ("APP_CACHE__SIZE", "4096"),
    ("APP_CACHE__TTL", "10m"),
    ("APP_RETRY__COUNT", "9"),
    ("APP_HTTP__PORT", "8081"),
    ("APP_HTTP__TIMEOUT", "20s"),
    ("APP_QUEUE__NAME", "env-queue"),
    ("APP_QUEUE__LIMIT", "64"),
    ("APP_STORAGE__PATH", "/var/lib/env"),
    ("APP_METRICS__ENABLED", "true"),
    ("APP_FEATURES__MODE", "env"),
];

/// The loading case's command line: the program's name, then 10 arguments.
const ARGUMENTS: [&str; 11] = [
    "app",
    "--server.port=9100",
    "--worker.timeout=3s",
    "--worker.name=arg-worker",
    "--database.enabled=true",
    "--cache.mode=arg",
    "--retry.delay=2s",
    "--http.count=5",
    "--queue.secure=false",
    "--storage.size=1024",
    "--metrics.label=arg",
];

/// The host's command line with the default sources: one argument (the
/// default value of `host.shutdown_timeout`, so the run is the same).
const HOST_ARGUMENTS: [&str; 2] = ["app", "--host.shutdown_timeout=30s"];

/// How many runs each part gets, real or smoke.
#[derive(Clone, Copy)]
struct Plan {
    /// Fresh processes per loading/build contender (each gives a cold run).
    processes: usize,
    /// Warm iterations in each of them.
    iterations: usize,
    /// Iterations of the breakdown child.
    breakdown: usize,
    /// Whole processes: untimed runs of each mode, then timed ones.
    warmup: usize,
    runs: usize,
}

const BENCH_PLAN: Plan = Plan {
    processes: 15,
    iterations: 200,
    breakdown: 400,
    warmup: 5,
    runs: 60,
};

/// Quick mode: a few processes, seconds in all.
const QUICK_PLAN: Plan = Plan {
    processes: 3,
    iterations: 50,
    breakdown: 100,
    warmup: 1,
    runs: 10,
};

const SMOKE_PLAN: Plan = Plan {
    processes: 1,
    iterations: 2,
    breakdown: 2,
    warmup: 0,
    runs: 2,
};

// ---------------------------------------------------------------------------
// The loading case's options.

/// A section bound with its durations typed (`host_config::duration`).
#[derive(Debug, Deserialize)]
struct Timed {
    name: String,
    host: String,
    path: String,
    label: String,
    mode: String,
    port: u32,
    count: u32,
    limit: u64,
    size: u64,
    ratio: f64,
    enabled: bool,
    verbose: bool,
    strict: bool,
    cached: bool,
    secure: bool,
    #[serde(with = "host_config::duration")]
    timeout: Duration,
    #[serde(with = "host_config::duration")]
    interval: Duration,
    #[serde(with = "host_config::duration")]
    delay: Duration,
    #[serde(with = "host_config::duration")]
    ttl: Duration,
    #[serde(with = "host_config::duration")]
    grace: Duration,
}

/// A section bound with its durations left as text.
#[derive(Debug, Deserialize)]
struct Plain {
    name: String,
    host: String,
    path: String,
    label: String,
    mode: String,
    port: u32,
    count: u32,
    limit: u64,
    size: u64,
    ratio: f64,
    enabled: bool,
    verbose: bool,
    strict: bool,
    cached: bool,
    secure: bool,
    timeout: String,
    interval: String,
    delay: String,
    ttl: String,
    grace: String,
}

/// Touches every field, so that nothing bound goes unread.
trait Digest {
    fn digest(&self) -> u64;
}

fn text_digest(texts: &[&str]) -> u64 {
    texts.iter().map(|text| text.len() as u64).sum()
}

impl Digest for Timed {
    fn digest(&self) -> u64 {
        text_digest(&[&self.name, &self.host, &self.path, &self.label, &self.mode])
            + u64::from(self.port)
            + u64::from(self.count)
            + self.limit
            + self.size
            + self.ratio.to_bits()
            + [
                self.enabled,
                self.verbose,
                self.strict,
                self.cached,
                self.secure,
            ]
            .iter()
            .filter(|flag| **flag)
            .count() as u64
            + [
                self.timeout,
                self.interval,
                self.delay,
                self.ttl,
                self.grace,
            ]
            .iter()
            .map(|duration| duration.as_nanos() as u64)
            .sum::<u64>()
    }
}

impl Digest for Plain {
    fn digest(&self) -> u64 {
        text_digest(&[
            &self.name,
            &self.host,
            &self.path,
            &self.label,
            &self.mode,
            &self.timeout,
            &self.interval,
            &self.delay,
            &self.ttl,
            &self.grace,
        ]) + u64::from(self.port)
            + u64::from(self.count)
            + self.limit
            + self.size
            + self.ratio.to_bits()
            + [
                self.enabled,
                self.verbose,
                self.strict,
                self.cached,
                self.secure,
            ]
            .iter()
            .filter(|flag| **flag)
            .count() as u64
    }
}

/// The generated `appsettings.toml`: 10 sections of 20 keys.
fn appsettings() -> String {
    let mut text = String::new();
    for (index, section) in SECTIONS.iter().enumerate() {
        let _ = writeln!(text, "[{section}]");
        for (position, key) in KEYS.iter().enumerate() {
            let value = match position {
                0..=4 => format!("\"{section}-{key}\""),
                5 => (8000 + index).to_string(),
                6..=8 => ((index + 1) * (position + 1) * 10).to_string(),
                9 => format!("{index}.5"),
                10..=14 => ((index + position) % 2 == 0).to_string(),
                _ => format!("\"{}\"", FILE_DURATIONS[position - 15]),
            };
            let _ = writeln!(text, "{key} = {value}");
        }
        text.push('\n');
    }
    text
}

/// The loading case's three sections, bound, and the configuration (kept,
/// as an application keeps it, so that dropping it is not timed).
struct Loaded {
    _configuration: Configuration,
    worker: Arc<Timed>,
    server: Arc<Plain>,
    database: Arc<Plain>,
}

/// One load: build the configuration from every layer, bind three sections.
fn load(root: &Path) -> Loaded {
    let mut builder = ConfigurationBuilder::new();
    builder.args(ARGUMENTS);
    let configuration = builder.build("Production", root).expect("it loads");
    bind_three(configuration)
}

fn bind_three(configuration: Configuration) -> Loaded {
    let worker = configuration
        .bind(OptionsBinding::<Timed>::new("worker"))
        .expect("worker binds");
    let server = configuration
        .bind(OptionsBinding::<Plain>::new("server"))
        .expect("server binds");
    let database = configuration
        .bind(OptionsBinding::<Plain>::new("database"))
        .expect("database binds");
    Loaded {
        _configuration: configuration,
        worker: worker.current(),
        server: server.current(),
        database: database.current(),
    }
}

/// Every layer won where it should: the file below the environment below
/// the command line.
fn check(loaded: &Loaded) {
    let Loaded {
        worker,
        server,
        database,
        ..
    } = loaded;
    assert_eq!(server.port, 9100, "the argument beats the variable");
    assert_eq!(server.host, "env-host", "the variable beats the file");
    assert!(!server.enabled, "the variable beats the file");
    assert_eq!(server.timeout, "7s", "the variable beats the file");
    assert_eq!(server.name, "server-name", "the file");
    assert_eq!(worker.interval, Duration::from_secs(45), "the variable");
    assert_eq!(worker.timeout, Duration::from_secs(3), "the argument");
    assert_eq!(worker.name, "arg-worker", "the argument");
    assert_eq!(worker.limit, 500, "the variable");
    assert!(worker.verbose, "the variable");
    assert_eq!(worker.grace, Duration::from_secs(30), "the file");
    assert_eq!(worker.delay, Duration::from_secs(90), "the file");
    assert_eq!(database.count, 77, "the variable");
    assert!((database.ratio - 0.75).abs() < f64::EPSILON, "the variable");
    assert!(database.enabled, "the argument");
    assert_eq!(database.path, "database-path", "the file");
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// Child `load <root> <iterations>`: prints the ns of the first (cold) load
/// and of `iterations` more, one line.
fn child_load(root: &Path, iterations: usize) {
    let mut times = Vec::with_capacity(iterations + 1);
    for index in 0..=iterations {
        let began = Instant::now();
        let loaded = load(root);
        times.push(nanos(began.elapsed()));
        if index == 0 {
            check(&loaded);
        }
        std::hint::black_box(
            loaded.worker.digest() + loaded.server.digest() + loaded.database.digest(),
        );
    }
    print_times(&times);
}

fn print_times(times: &[u64]) {
    let line: Vec<String> = times.iter().map(u64::to_string).collect();
    println!("{}", line.join(" "));
}

/// Times steps, one sample per step and iteration, after a warm-up.
struct Timer {
    samples: Vec<Vec<f64>>,
    recording: bool,
}

impl Timer {
    fn new(steps: usize) -> Self {
        Self {
            samples: vec![Vec::new(); steps],
            recording: false,
        }
    }

    /// Times `work`; what it returns is dropped by the caller, untimed.
    fn time<R>(&mut self, step: usize, work: impl FnOnce() -> R) -> R {
        let began = Instant::now();
        let result = work();
        let elapsed = began.elapsed();
        if self.recording {
            self.samples[step].push(nanos(elapsed) as f64);
        }
        result
    }

    /// Runs `iteration` a tenth of `iterations` untimed, then `iterations`
    /// times; prints the median of each step, in ns, one line.
    fn run(mut self, iterations: usize, mut iteration: impl FnMut(&mut Self)) {
        for _ in 0..(iterations / 10).max(1) {
            iteration(&mut self);
        }
        self.recording = true;
        for _ in 0..iterations {
            iteration(&mut self);
        }
        let medians: Vec<u64> = self
            .samples
            .iter()
            .map(|values| median(values).round() as u64)
            .collect();
        print_times(&medians);
    }
}

/// The loading case's breakdown, each step timed alone (warm).
const LOAD_STEPS: [&str; 19] = [
    "read `appsettings.toml` (`std::fs::read_to_string`, 200 keys)",
    "parse it into a figment `Dict` (`toml::from_str`, as host-config does)",
    "parse it into a `toml::Table` instead (reference)",
    "clone the parsed `Dict` (host-config's file layer does, once per load)",
    "`build`: the `appsettings` files alone (1 read, 3 missing)",
    "`build`: the environment alone (20 `APP_` variables)",
    "figment's `Env::prefixed(\"APP_\").split(\"__\").iter()` alone, collected",
    "parse the 20 variables' values as figment `Value`s (host-config does, each)",
    "`build`: the 10 arguments alone",
    "`build`: no layer at all",
    "`build`: every layer (no bind)",
    "`bind` `worker` (20 keys, durations typed)",
    "`bind` `server` (20 keys)",
    "`bind` `database` (20 keys)",
    "`Figment::find_value(\"worker\")` (a `bind` does it once: a merge of the whole tree)",
    "`Figment::focus(\"worker\")` (a `bind` does it once: a clone of the whole tree)",
    "`extract_lossy::<Timed>()` of the focused figment (a `bind` does it once)",
    "`Figment::extract_inner_lossy::<Timed>(\"worker\")` (reference: one merge, no focus)",
    "drop the loaded configuration (not in the load figure)",
];

/// The LOAD_STEPS whose sum is the full load (every layer + the 3 binds).
const LOAD_FULL: [usize; 4] = [10, 11, 12, 13];

/// Child `breakdown <root> <iterations>`: the warm median of each of
/// [`LOAD_STEPS`], in ns, one line.
fn child_breakdown(root: &Path, iterations: usize) {
    let file = root.join("appsettings.toml");
    let text = std::fs::read_to_string(&file).expect("the file is there");
    let parsed = toml::from_str::<figment::value::Dict>(&text).expect("valid TOML");
    let build = |configure: &dyn Fn(&mut ConfigurationBuilder)| {
        let mut builder = ConfigurationBuilder::new();
        configure(&mut builder);
        builder.build("Production", root).expect("it loads")
    };
    Timer::new(LOAD_STEPS.len()).run(iterations, |timer| {
        timer.time(0, || std::fs::read_to_string(&file).expect("readable"));
        timer.time(1, || {
            toml::from_str::<figment::value::Dict>(&text).expect("valid TOML")
        });
        timer.time(2, || {
            toml::from_str::<toml::Table>(&text).expect("valid TOML")
        });
        timer.time(3, || parsed.clone());
        timer.time(4, || {
            build(&|builder| {
                builder.without_env();
            })
        });
        timer.time(5, || {
            build(&|builder| {
                builder.appsettings(false);
            })
        });
        timer.time(6, || {
            figment::providers::Env::prefixed("APP_")
                .split("__")
                .iter()
                .collect::<Vec<_>>()
        });
        timer.time(7, || {
            ENVIRONMENT
                .iter()
                .map(|(_, value)| value.parse::<figment::value::Value>())
                .collect::<Vec<_>>()
        });
        timer.time(8, || {
            build(&|builder| {
                builder.appsettings(false).without_env().args(ARGUMENTS);
            })
        });
        timer.time(9, || {
            build(&|builder| {
                builder.appsettings(false).without_env();
            })
        });
        let configuration = timer.time(10, || {
            build(&|builder| {
                builder.args(ARGUMENTS);
            })
        });
        let worker = timer.time(11, || {
            configuration
                .bind(OptionsBinding::<Timed>::new("worker"))
                .expect("binds")
        });
        let server = timer.time(12, || {
            configuration
                .bind(OptionsBinding::<Plain>::new("server"))
                .expect("binds")
        });
        let database = timer.time(13, || {
            configuration
                .bind(OptionsBinding::<Plain>::new("database"))
                .expect("binds")
        });
        std::hint::black_box(
            worker.current().digest() + server.current().digest() + database.current().digest(),
        );
        let figment = configuration.figment();
        timer.time(14, || figment.find_value("worker").expect("present"));
        let focused = timer.time(15, || figment.focus("worker"));
        let bound: Timed = timer.time(16, || focused.extract_lossy().expect("binds"));
        std::hint::black_box(bound.digest());
        let bound: Timed = timer.time(17, || figment.extract_inner_lossy("worker").expect("binds"));
        std::hint::black_box(bound.digest());
        drop((figment, focused, worker, server, database));
        timer.time(18, || drop(configuration));
    });
}

/// The default sources' breakdown (an empty content root, no `APP_`
/// variable), each step timed alone (warm).
const SOURCE_STEPS: [&str; 8] = [
    "`build`: the `appsettings` lookups alone (4 missing files)",
    "`build`: the environment alone (no `APP_` variable)",
    "figment's `Env::prefixed(\"APP_\").split(\"__\").iter()` alone, collected",
    "`build`: the one argument alone",
    "`build`: no layer at all",
    "`build`: the default sources",
    "`get` `host` (from the default sources)",
    "`bind` `logging` (from the default sources)",
];

/// Child `sources <iterations>` (run in the empty content root): the warm
/// median of each of [`SOURCE_STEPS`], in ns, one line.
fn child_sources(iterations: usize) {
    let root = std::env::current_dir().expect("a working directory");
    let build = |configure: &dyn Fn(&mut ConfigurationBuilder)| {
        let mut builder = ConfigurationBuilder::new();
        configure(&mut builder);
        builder.build("Production", &root).expect("it loads")
    };
    Timer::new(SOURCE_STEPS.len()).run(iterations, |timer| {
        timer.time(0, || {
            build(&|builder| {
                builder.without_env();
            })
        });
        timer.time(1, || {
            build(&|builder| {
                builder.appsettings(false);
            })
        });
        timer.time(2, || {
            figment::providers::Env::prefixed("APP_")
                .split("__")
                .iter()
                .collect::<Vec<_>>()
        });
        timer.time(3, || {
            build(&|builder| {
                builder
                    .appsettings(false)
                    .without_env()
                    .args(HOST_ARGUMENTS);
            })
        });
        timer.time(4, || {
            build(&|builder| {
                builder.appsettings(false).without_env();
            })
        });
        let configuration = timer.time(5, || {
            build(&|builder| {
                builder.args(HOST_ARGUMENTS);
            })
        });
        let host: HostSection = timer.time(6, || configuration.get("host").expect("reads"));
        std::hint::black_box(host.digest());
        let logging = timer.time(7, || {
            configuration
                .bind(OptionsBinding::<LoggingOptions>::new("logging"))
                .expect("binds")
        });
        std::hint::black_box(logging);
    });
}

// ---------------------------------------------------------------------------
// The host: whole processes, and `build()` alone.

/// Which configuration sources a host gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// `appsettings(false)`, `without_env()`, no arguments.
    None,
    /// The `appsettings` lookups, the environment, [`HOST_ARGUMENTS`].
    Default,
}

fn host_builder(sources: Sources) -> HostBuilder {
    let mut builder = Host::builder();
    match sources {
        Sources::None => {
            builder.configuration().appsettings(false).without_env();
        }
        Sources::Default => {
            builder.args(HOST_ARGUMENTS);
        }
    }
    builder
}

/// The host process of `benches/process.rs`, with the given sources.
fn process_host(sources: Sources) -> ExitCode {
    tokio_main(async {
        let mut builder = host_builder(sources);
        builder.add_hosted_service_instance(StopAtOnce);
        builder.run().await
    })
}

/// The whole-process modes, in the order they alternate.
const PROCESS_MODES: [(&str, &str); 3] = [
    ("tokio", "bare tokio (one task, cancelled)"),
    ("host-none", "host, no configuration sources"),
    ("host-default", "host, default sources (no files)"),
];

/// The in-process contenders, each in fresh processes.
const BUILD_CONTENDERS: [(&str, &str); 4] = [
    ("build-none", "`HostBuilder::build()`, no sources"),
    ("build-default", "`HostBuilder::build()`, default sources"),
    (
        "config-none",
        "its configuration work alone, no sources (build, `host`, `logging`, register)",
    ),
    (
        "config-default",
        "its configuration work alone, default sources",
    ),
];

/// The `host` section as host-core reads it (its own type is private).
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct HostSection {
    #[serde(default, with = "host_config::duration::option")]
    shutdown_timeout: Option<Duration>,
    #[serde(default, with = "host_config::duration::option")]
    startup_timeout: Option<Duration>,
    services_start_concurrently: Option<bool>,
    services_stop_concurrently: Option<bool>,
    background_service_failure: Option<String>,
    suppress_status_messages: Option<bool>,
}

impl HostSection {
    fn digest(&self) -> usize {
        usize::from(self.shutdown_timeout.is_some())
            + usize::from(self.startup_timeout.is_some())
            + usize::from(self.services_start_concurrently.is_some())
            + usize::from(self.services_stop_concurrently.is_some())
            + self
                .background_service_failure
                .as_ref()
                .map_or(0, String::len)
            + usize::from(self.suppress_status_messages.is_some())
    }
}

/// What `HostBuilder::build()` does with the configuration, outside of it:
/// build it, read `host`, bind `logging`, register both.
fn configuration_work(sources: Sources, content_root: &Path) {
    let mut builder = ConfigurationBuilder::new();
    match sources {
        Sources::None => {
            builder.appsettings(false).without_env();
        }
        Sources::Default => {
            builder.args(HOST_ARGUMENTS);
        }
    }
    let configuration = builder.build("Production", content_root).expect("it loads");
    let host: HostSection = configuration.get("host").expect("`host` reads");
    let logging = configuration
        .bind(OptionsBinding::<LoggingOptions>::new("logging"))
        .expect("`logging` binds");
    let mut services = ServiceCollection::new();
    services.add_options_monitor(logging);
    services.add_instance(Arc::new(configuration));
    std::hint::black_box((host.digest(), services));
}

/// Child `<contender> <iterations>` (run in the empty content root): the ns
/// of the first (cold) run and of `iterations` more, one line.
fn child_build(contender: &str, iterations: usize) {
    let content_root = std::env::current_dir().expect("a working directory");
    let mut times = Vec::with_capacity(iterations + 1);
    for _ in 0..=iterations {
        let elapsed = match contender {
            "build-none" | "build-default" => {
                let sources = if contender == "build-none" {
                    Sources::None
                } else {
                    Sources::Default
                };
                let began = Instant::now();
                let mut builder = host_builder(sources);
                builder
                    .default_logging(false)
                    .add_hosted_service_instance(StopAtOnce);
                let host = builder.build().expect("the host builds");
                let elapsed = began.elapsed();
                drop(host);
                elapsed
            }
            _ => {
                let sources = if contender == "config-none" {
                    Sources::None
                } else {
                    Sources::Default
                };
                let began = Instant::now();
                configuration_work(sources, &content_root);
                began.elapsed()
            }
        };
        times.push(nanos(elapsed));
    }
    print_times(&times);
}

// ---------------------------------------------------------------------------
// The parent.

/// The bench's scratch directories: a content root with the 200-key file,
/// and an empty one.
struct Scratch {
    root: PathBuf,
    files: PathBuf,
    empty: PathBuf,
}

impl Scratch {
    fn create() -> Self {
        let root =
            std::env::temp_dir().join(format!("host-bench-configuration-{}", std::process::id()));
        let files = root.join("files");
        let empty = root.join("empty");
        std::fs::create_dir_all(&files).expect("a scratch directory");
        std::fs::create_dir_all(&empty).expect("a scratch directory");
        std::fs::write(files.join("appsettings.toml"), appsettings()).expect("the file is written");
        Self { root, files, empty }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn bench_exe() -> PathBuf {
    std::env::current_exe().expect("the bench knows its own path")
}

/// Runs a measuring child to its exit; returns the numbers it printed.
fn numbers_of(mut command: Command, what: &str) -> Vec<u64> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("the bench can run itself");
    assert!(
        output.status.success(),
        "the child for {what} failed: {}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|field| field.parse().expect("a number of ns"))
        .collect()
}

/// A loading child, with the 20 variables in its environment.
fn loading_child(scratch: &Scratch, mode: &str, iterations: usize) -> Command {
    let mut command = Command::new(bench_exe());
    command
        .args(["--child", mode])
        .arg(&scratch.files)
        .arg(iterations.to_string())
        .envs(ENVIRONMENT);
    command
}

/// Cold (the first run of each fresh process) and warm (every later run)
/// figures, in ms.
#[derive(Default)]
struct ColdWarm {
    cold: Vec<f64>,
    warm: Vec<f64>,
}

impl ColdWarm {
    fn add(&mut self, times: &[u64]) {
        let (first, rest) = times.split_first().expect("at least one run");
        self.cold.push(*first as f64 / 1e6);
        self.warm.extend(rest.iter().map(|ns| *ns as f64 / 1e6));
    }

    fn cold(&self) -> f64 {
        median(&self.cold)
    }

    fn warm(&self) -> f64 {
        median(&self.warm)
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn main() -> ExitCode {
    if let Some(args) = common::child_args() {
        return child(&args);
    }
    let plan = match common::run_kind() {
        RunKind::Full => BENCH_PLAN,
        RunKind::Quick => QUICK_PLAN,
        RunKind::Smoke => SMOKE_PLAN,
    };
    let scratch = Scratch::create();
    let began = Instant::now();
    let mut out =
        common::header("Configuration: loading, binding, and the host (benches/configuration.rs)");
    let variables = std::env::vars_os().count();

    // 1. Loading 200 keys + environment + arguments, binding three sections.
    let mut loading = ColdWarm::default();
    for _ in 0..plan.processes {
        let times = numbers_of(loading_child(&scratch, "load", plan.iterations), "loading");
        loading.add(&times);
    }
    let breakdown = numbers_of(
        loading_child(&scratch, "breakdown", plan.breakdown),
        "the breakdown",
    );

    // 2a. Whole processes, alternating.
    let mut cold_process = Vec::new();
    for (mode, _) in PROCESS_MODES {
        cold_process.push(time_child(mode, Some(&scratch.empty)).as_secs_f64() * 1e3);
    }
    for _ in 0..plan.warmup {
        for (mode, _) in PROCESS_MODES {
            time_child(mode, Some(&scratch.empty));
        }
    }
    let mut processes: Vec<Vec<f64>> = vec![Vec::new(); PROCESS_MODES.len()];
    for _ in 0..plan.runs {
        for (index, (mode, _)) in PROCESS_MODES.iter().enumerate() {
            processes[index].push(time_child(mode, Some(&scratch.empty)).as_secs_f64() * 1e3);
        }
    }

    // 2b. `build()` and the configuration work alone, fresh processes,
    // alternating.
    let mut builds: Vec<ColdWarm> = BUILD_CONTENDERS
        .iter()
        .map(|_| ColdWarm::default())
        .collect();
    for _ in 0..plan.processes {
        for (index, (contender, _)) in BUILD_CONTENDERS.iter().enumerate() {
            let mut command = Command::new(bench_exe());
            command
                .args(["--child", contender])
                .arg(plan.iterations.to_string())
                .current_dir(&scratch.empty);
            builds[index].add(&numbers_of(command, contender));
        }
    }

    let mut sources_command = Command::new(bench_exe());
    sources_command
        .args(["--child", "sources"])
        .arg(plan.breakdown.to_string())
        .current_dir(&scratch.empty);
    let sources = numbers_of(sources_command, "the default sources' breakdown");

    // Part 1's tables.
    let _ = writeln!(
        out,
        "\n#### Loading 200 keys, 20 variables and 10 arguments, binding three sections\n\n\
         `ConfigurationBuilder::new()` + `args` + `build(\"Production\", root)` + 3 `bind`s (dropping \
         them is not timed); cold = the first load of each of {} fresh processes (median, min-max), warm = \
         the {} later loads of each, pooled. The children's environment holds {} \
         variables, 20 of them `APP_`.\n",
        plan.processes,
        plan.iterations,
        variables + ENVIRONMENT.len(),
    );
    let _ = writeln!(
        out,
        "| case | cold median (ms) | cold min-max (ms) | warm median (ms) | warm min (ms) | target |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| 200-key file + environment + arguments, 3 sections bound | {:.3} | {:.3}-{:.3} | {:.3} | {:.3} | < {LOAD_TARGET_MS} ms |",
        loading.cold(),
        min(&loading.cold),
        max(&loading.cold),
        loading.warm(),
        min(&loading.warm),
    );
    let full = LOAD_FULL
        .iter()
        .map(|step| breakdown.get(*step).copied().unwrap_or(0))
        .sum::<u64>() as f64
        / 1e3;
    let _ = writeln!(
        out,
        "\nBreakdown, one more process, warm medians of {} iterations (µs); the \
         share is of `build` every layer + the 3 binds ({full:.1} µs):\n",
        plan.breakdown
    );
    breakdown_table(&mut out, &LOAD_STEPS, &breakdown, full);

    // Part 2's tables.
    let _ = writeln!(
        out,
        "\n#### A host with the default sources against none: whole process and `build()`\n\n\
         {} timed runs of each mode, alternating, after {} warm-up runs each; wall clock \
         from spawn to exit, in an empty content root; cold is the very first run of each \
         mode. \"Default sources\": the 4 `appsettings` lookups (none there), the \
         environment ({} variables, no `APP_` one), one argument.\n",
        plan.runs, plan.warmup, variables,
    );
    let _ = writeln!(
        out,
        "| process | cold (ms) | warm median (ms) | warm min (ms) | warm max (ms) | vs bare tokio |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let tokio_median = median(&processes[0]);
    for (index, (_, label)) in PROCESS_MODES.iter().enumerate() {
        let warm = &processes[index];
        let _ = writeln!(
            out,
            "| {label} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            cold_process[index],
            median(warm),
            min(warm),
            max(warm),
            ratio(median(warm) / tokio_median),
        );
    }
    let process_difference = median(&processes[2]) - median(&processes[1]);
    let paired: Vec<f64> = processes[2]
        .iter()
        .zip(&processes[1])
        .map(|(default, none)| default - none)
        .collect();
    let _ = writeln!(
        out,
        "\nDefault sources minus none, whole process: {:+.3} ms (difference of the warm \
         medians); {:+.3} ms (median of the {} paired differences, each default run minus \
         the none run just before it); cold {:+.2} ms (one run each).",
        process_difference,
        median(&paired),
        paired.len(),
        cold_process[2] - cold_process[1],
    );

    let _ = writeln!(
        out,
        "\nIn-process, each contender in {} fresh processes (alternating; the first run \
         of each is cold, the {} later runs pooled are warm), `default_logging(false)`, \
         one background service registered:\n",
        plan.processes, plan.iterations,
    );
    let _ = writeln!(
        out,
        "| contender | cold median (µs) | cold min-max (µs) | warm median (µs) | warm min (µs) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for ((_, label), case) in BUILD_CONTENDERS.iter().zip(&builds) {
        let _ = writeln!(
            out,
            "| {label} | {:.1} | {:.1}-{:.1} | {:.1} | {:.1} |",
            case.cold() * 1e3,
            min(&case.cold) * 1e3,
            max(&case.cold) * 1e3,
            case.warm() * 1e3,
            min(&case.warm) * 1e3,
        );
    }
    let build_cold = (builds[1].cold() - builds[0].cold()) * 1e3;
    let build_warm = (builds[1].warm() - builds[0].warm()) * 1e3;
    let config_none_cold = builds[2].cold() * 1e3;
    let config_none_warm = builds[2].warm() * 1e3;
    let _ = writeln!(
        out,
        "\n`build()`, default sources minus none: cold {build_cold:+.1} µs, warm \
         {build_warm:+.1} µs.\n\n\"No sources\" is not the host before configuration: it \
         still builds an empty figment, reads `host`, binds `logging` and registers both. \
         That work alone costs {config_none_cold:.1} µs cold and {config_none_warm:.1} µs \
         warm, so the configuration's whole cost over the host before configuration is \
         about {:.1} µs cold (that work + the cold `build()` difference) and {:.1} µs warm \
         (that work + the whole-process difference).",
        config_none_cold + build_cold,
        config_none_warm + process_difference * 1e3,
    );

    let _ = writeln!(
        out,
        "\nWhere the default sources' time goes, one more process, warm medians of {} \
         iterations (µs); the share is of the default sources' `build` ({:.1} µs):\n",
        plan.breakdown,
        sources.get(5).copied().unwrap_or(0) as f64 / 1e3,
    );
    breakdown_table(
        &mut out,
        &SOURCE_STEPS,
        &sources,
        sources.get(5).copied().unwrap_or(0) as f64 / 1e3,
    );

    // Targets.
    let host_ratio = median(&processes[2]) / tokio_median;
    let _ = writeln!(out, "\n| target | measured | verdict |");
    let _ = writeln!(out, "|---|---:|---|");
    let _ = writeln!(
        out,
        "| loading + 3 binds < {LOAD_TARGET_MS} ms, first run in a fresh process (median) | {:.3} ms | {} |",
        loading.cold(),
        verdict(loading.cold() < LOAD_TARGET_MS),
    );
    let _ = writeln!(
        out,
        "| loading + 3 binds < {LOAD_TARGET_MS} ms, warm median | {:.3} ms | {} |",
        loading.warm(),
        verdict(loading.warm() < LOAD_TARGET_MS),
    );
    let _ = writeln!(
        out,
        "| default sources add < {SOURCES_TARGET_MS} ms to the whole process (default - none, warm medians) | {process_difference:+.3} ms | {} |",
        verdict(process_difference < SOURCES_TARGET_MS),
    );
    let _ = writeln!(
        out,
        "| host process (default sources) ≤ {PROCESS_TARGET_RATIO}x the bare tokio process | {} | {} |",
        ratio(host_ratio),
        verdict(host_ratio <= PROCESS_TARGET_RATIO),
    );
    let _ = writeln!(out, "\n{}", common::footer(began));
    println!("{out}");
    ExitCode::SUCCESS
}

/// A breakdown's table: each step's warm median and its share of `whole` (µs).
fn breakdown_table(out: &mut String, steps: &[&str], medians: &[u64], whole: f64) {
    let _ = writeln!(out, "| step | warm median (µs) | share |");
    let _ = writeln!(out, "|---|---:|---:|");
    for (label, ns) in steps.iter().zip(medians) {
        let micros = *ns as f64 / 1e3;
        let _ = writeln!(
            out,
            "| {label} | {micros:.1} | {:.0}% |",
            micros / whole * 100.0
        );
    }
}

fn child(args: &[String]) -> ExitCode {
    let number = |at: usize| args.get(at).and_then(|text| text.parse::<usize>().ok());
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("load"), Some(root)) => match number(2) {
            Some(iterations) => child_load(Path::new(root), iterations),
            None => return usage(),
        },
        (Some("breakdown"), Some(root)) => match number(2) {
            Some(iterations) => child_breakdown(Path::new(root), iterations),
            None => return usage(),
        },
        (Some("sources"), _) => match number(1) {
            Some(iterations) => child_sources(iterations),
            None => return usage(),
        },
        (Some("tokio"), _) => return bare_tokio(),
        (Some("host-none"), _) => return process_host(Sources::None),
        (Some("host-default"), _) => return process_host(Sources::Default),
        (Some(contender), _) if BUILD_CONTENDERS.iter().any(|(key, _)| *key == contender) => {
            match number(1) {
                Some(iterations) => child_build(contender, iterations),
                None => return usage(),
            }
        }
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: configuration --child load|breakdown <root> <iterations> \
         | sources <iterations> | tokio|host-none|host-default | build-none|build-default|config-none|config-default <iterations>"
    );
    ExitCode::from(2)
}

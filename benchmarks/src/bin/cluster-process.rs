//! A user's host with one cluster singleton, for `benches/cluster.rs`: the
//! bench keeps two of these running, kills the leader and times how long
//! the other takes to lead.
//!
//! `cluster-process <instance-id> <lease-ms> <renew-deadline-ms> <retry-ms>
//! file <dir>` campaigns in `FileLockStore::new(dir)`; `... postgres <url>
//! <schema>` in a PostgreSQL store in the schema `<schema>` (prefix
//! `host_`), connected at its first use. `Host::builder()` with the
//! defaults a user gets (the default subscriber on standard error, signal
//! handlers on), `cluster.instance_id` set from the command line. The
//! singleton's `execute` prints `LEADING <fencing token> <unix nanos>` to
//! standard output as it begins, then waits to be stopped.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use host_cluster::postgres::{Namespace, PostgresOptions};
use host_cluster::{ClusterError, FileLockStore, cluster_store_for_url};
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, Singleton, async_trait};

/// The singleton's lease name, the same in every instance.
const NAME: &str = "bench";

/// Says when it begins to lead, then idles until stopped.
struct Leader;

#[async_trait]
impl BackgroundService for Leader {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let token = ctx.fencing_token().map_or(0, host_core::FencingToken::get);
        // `println!` flushes at the newline: standard output is line-buffered.
        println!("LEADING {token} {}", now.as_nanos());
        ctx.stopping().await;
        Ok(())
    }
}

/// What the command line asks for.
struct Args {
    instance: String,
    singleton: Singleton,
    store: Store,
}

/// Where the singleton campaigns.
enum Store {
    File(String),
    Postgres { url: String, schema: String },
    Url { url: String, prefix: String },
}

const USAGE: &str = "usage: cluster-process <instance-id> <lease-ms> <renew-deadline-ms> \
                     <retry-ms> (file <dir> | postgres <url> <schema> | url <url> <prefix>)";

fn parse(args: &[String]) -> Result<Args, String> {
    let millis = |index: usize, what: &str| -> Result<Duration, String> {
        let text = args.get(index).ok_or_else(|| format!("no {what}"))?;
        text.parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("the {what} `{text}` is not a number of milliseconds"))
    };
    let instance = args.first().ok_or("no instance id")?.clone();
    let singleton = Singleton::new(NAME)
        .lease(millis(1, "lease")?)
        .renew_deadline(millis(2, "renew deadline")?)
        .retry_period(millis(3, "retry period")?);
    let store = match (
        args.get(4).map(String::as_str),
        args.get(5),
        args.get(6),
        args.len(),
    ) {
        (Some("file"), Some(dir), None, 6) => Store::File(dir.clone()),
        (Some("postgres"), Some(url), Some(schema), 7) => Store::Postgres {
            url: url.clone(),
            schema: schema.clone(),
        },
        (Some("url"), Some(url), Some(prefix), 7) => Store::Url {
            url: url.clone(),
            prefix: prefix.clone(),
        },
        _ => {
            return Err(
                "the store is `file <dir>`, `postgres <url> <schema>` or `url <url> <prefix>`"
                    .to_owned(),
            );
        }
    };
    Ok(Args {
        instance,
        singleton,
        store,
    })
}

async fn run(args: Args) -> Result<ExitCode, ClusterError> {
    let mut builder = Host::builder();
    // The configuration's command line: only the instance id.
    builder.args([
        "cluster-process".to_owned(),
        format!("--cluster.instance_id={}", args.instance),
    ]);
    match args.store {
        Store::File(dir) => {
            builder.lease_store(FileLockStore::new(dir));
        }
        Store::Postgres { url, schema } => {
            let store = PostgresOptions::new(&url)?
                .namespace(Namespace::new(&schema, "host_")?)
                .connect_lazily();
            builder.lease_store(store);
        }
        Store::Url { url, prefix } => {
            builder.lease_store(cluster_store_for_url(&url, None, Some(&prefix))?);
        }
    }
    let singleton = args.singleton;
    builder.add_hosted_service_instance_with(Leader, |leader| leader.cluster_singleton(singleton));
    Ok(builder.run().await)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("cluster-process: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // `#[tokio::main]`, written out.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cluster-process: {error}");
            ExitCode::FAILURE
        }
    }
}

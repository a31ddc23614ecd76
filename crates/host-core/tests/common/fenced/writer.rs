//! The instance's side: the `child` test builds a host with the named
//! lease store and one cluster singleton, a writer whose every unit of
//! work goes through the fence.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use host_cluster::FencingToken;
use host_cluster::postgres::{Fence, FenceError, Namespace};
use host_core::{BackgroundService, Host, ServiceContext, ServiceError, Singleton, async_trait};
use sqlx::PgPool;

use super::LEASE;

/// The variable that makes the `child` test run an instance:
/// `conduct|timings|target url|schema|id|store kind|store location|store
/// prefix`.
pub const SCENARIO: &str = "HOST_CLUSTER_FENCED_CHILD";

/// The singleton's lease, renew deadline and retry period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    pub lease: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for Timings {
    /// Lease 1 s, renew deadline 700 ms, retry 200 ms: short, so that
    /// each test takes seconds.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(1),
            renew_deadline: Duration::from_millis(700),
            retry_period: Duration::from_millis(200),
        }
    }
}

impl Timings {
    /// `<lease ms>,<renew deadline ms>,<retry ms>`, as the scenario
    /// carries them.
    pub fn encode(self) -> String {
        [self.lease, self.renew_deadline, self.retry_period]
            .map(|duration| duration.as_millis().to_string())
            .join(",")
    }

    fn decode(text: &str) -> Option<Self> {
        let millis: Vec<u64> = text
            .split(',')
            .map(|part| part.parse().ok())
            .collect::<Option<_>>()?;
        let [lease, renew_deadline, retry_period] = millis[..] else {
            return None;
        };
        Some(Self {
            lease: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(renew_deadline),
            retry_period: Duration::from_millis(retry_period),
        })
    }
}

/// How the writer treats the end of its term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduct {
    /// Ignores a lost term (as a leader paused in the middle of its work
    /// would), so that the fence is what stops it; once fenced, its work
    /// has returned for good.
    Stubborn,
    /// Stops writing once its term ends, and steps down when fenced, to
    /// campaign again: as an application that wants its work to go on.
    Heeding,
}

impl Conduct {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stubborn => "stubborn",
            Self::Heeding => "heeding",
        }
    }
}

/// One unit of work every 100 ms, written through the fence with the
/// term's token. Prints `LEADING <token> <term>` as a term begins, `LOST
/// <token> <term>` when it sees its term's token cancelled (within the
/// 100 ms), and `REJECTED <token> <term>: <why>` when the fence turns a
/// write away.
struct Writer {
    pool: PgPool,
    fence: Fence,
    schema: String,
    id: String,
    conduct: Conduct,
    /// How many terms this instance has led.
    terms: AtomicU32,
}

#[async_trait]
impl BackgroundService for Writer {
    async fn execute(&self, ctx: ServiceContext) -> Result<(), ServiceError> {
        let token = ctx.fencing_token().expect("a singleton that leads");
        let term = format!(
            "{}#{}",
            self.id,
            self.terms.fetch_add(1, Ordering::SeqCst) + 1
        );
        eprintln!("LEADING {token} {term}");
        let mut lost = false;
        while !ctx.lifetime().is_stop_requested() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if ctx.is_stopping() && !lost {
                lost = true;
                eprintln!("LOST {token} {term}");
                if self.conduct == Conduct::Heeding {
                    return Ok(());
                }
            }
            match self.write(token, &term).await {
                Ok(()) => {}
                Err(WriteError::Fenced(error)) => {
                    eprintln!("REJECTED {token} {term}: {error}");
                    if self.conduct == Conduct::Heeding {
                        ctx.step_down();
                    }
                    return Ok(());
                }
                Err(WriteError::Other(error)) => eprintln!("FAILED {token} {term}: {error}"),
            }
        }
        Ok(())
    }
}

enum WriteError {
    Fenced(FenceError),
    Other(String),
}

type Boxed<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl Writer {
    /// Boxed as `Send` here, where the connection's lifetimes are concrete
    /// (sqlx's executors trip the `Send` check of a generic async fn).
    fn write<'a>(
        &'a self,
        token: FencingToken,
        term: &'a str,
    ) -> Boxed<'a, Result<(), WriteError>> {
        Box::pin(self.write_unit(token, term))
    }

    async fn write_unit(&self, token: FencingToken, term: &str) -> Result<(), WriteError> {
        let other = |error: sqlx::Error| WriteError::Other(error.to_string());
        let mut tx = self.pool.begin().await.map_err(other)?;
        match self.fence.check(&mut tx, LEASE, token).await {
            Ok(()) => {}
            Err(stale @ (FenceError::Stale { .. } | FenceError::Lapsed { .. })) => {
                return Err(WriteError::Fenced(stale));
            }
            Err(error) => return Err(WriteError::Other(error.to_string())),
        }
        let insert = format!(
            "INSERT INTO {}.work (token, term, at) VALUES ($1, $2, clock_timestamp())",
            self.schema
        );
        sqlx::query(&insert)
            .bind(i64::try_from(token.get()).unwrap_or(i64::MAX))
            .bind(term)
            .execute(&mut *tx)
            .await
            .map_err(other)?;
        tx.commit().await.map_err(other)
    }
}

/// The body of the test binary's `child` test: runs an instance when
/// [`SCENARIO`] is set, and does nothing otherwise.
pub fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let fields: Vec<&str> = scenario.split('|').collect();
    let [conduct, timings, url, schema, id, kind, location, prefix] = fields[..] else {
        panic!("{SCENARIO}: conduct|timings|url|schema|id|kind|location|prefix, found {scenario}");
    };
    let timings = Timings::decode(timings)
        .unwrap_or_else(|| panic!("{SCENARIO}: lease,deadline,retry in ms, found {timings}"));
    let conduct = [Conduct::Stubborn, Conduct::Heeding]
        .into_iter()
        .find(|known| known.name() == conduct)
        .unwrap_or_else(|| panic!("{SCENARIO}: a conduct, found {conduct}"));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let code = runtime.block_on(async {
        let namespace = Namespace::new(schema, "host_").expect("a schema name");
        let pool = PgPool::connect(url).await.expect("the target database");
        let mut builder = Host::builder();
        builder.args(["child", &format!("--cluster.instance_id={id}")]);
        super::store::build(&mut builder, [kind, location, prefix], &namespace, id);
        builder.add_hosted_service_instance_with(
            Writer {
                pool,
                fence: Fence::new(&namespace),
                schema: schema.to_owned(),
                id: id.to_owned(),
                conduct,
                terms: AtomicU32::new(0),
            },
            |writer| {
                writer.cluster_singleton(
                    Singleton::new(LEASE)
                        .lease(timings.lease)
                        .renew_deadline(timings.renew_deadline)
                        .retry_period(timings.retry_period),
                )
            },
        );
        builder.run().await
    });
    drop(runtime);
    host_test::exit_with(code);
}

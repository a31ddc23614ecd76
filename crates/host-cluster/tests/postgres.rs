//! The PostgreSQL store keeps the lease and claim contracts against a real
//! server (`HOST_TEST_POSTGRES_URL`; each test prints that it was skipped
//! when it is unset), migrates safely, survives a terminated backend, never
//! shows a password, and fences writes.
#![cfg(feature = "postgres")]

mod contract;

use std::sync::Arc;
use std::time::Duration;

use contract::Timings;
use host_cluster::postgres::{Fence, FenceError, Namespace, PostgresOptions};
use host_cluster::{
    ClaimOutcome, ClaimStore, ClusterError, FencingToken, LeaseStore, PostgresStore,
};
use sqlx::{Connection as _, Executor as _, PgPool, Row};

/// Short, with room for the database's clock and a busy machine.
const TIMINGS: Timings = Timings {
    ttl: Duration::from_secs(1),
    margin: Duration::from_millis(500),
};

/// The server, or `None` (and a line saying the test was skipped).
fn url(test: &str) -> Option<String> {
    let url = std::env::var("HOST_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        println!("{test}: skipped, HOST_TEST_POSTGRES_URL is not set");
    }
    url
}

/// A schema of the test's own, so that runs never meet; dropped when the
/// test ends, passed or failed.
struct Fresh {
    url: String,
    admin: PgPool,
    namespace: Namespace,
}

impl Fresh {
    async fn new(url: &str, test: &str) -> Self {
        let schema = format!("hc_{test}_{:08x}", fastrand::u32(..));
        println!("{test}: schema {schema}");
        let admin = PgPool::connect(url).await.unwrap();
        Self {
            url: url.to_owned(),
            admin,
            namespace: Namespace::new(&schema, "host_").unwrap(),
        }
    }

    fn options(&self, url: &str) -> PostgresOptions {
        PostgresOptions::new(url)
            .unwrap()
            .namespace(self.namespace.clone())
    }

    async fn store(&self, url: &str) -> PostgresStore {
        self.options(url).connect().await.unwrap()
    }

    fn schema(&self) -> &str {
        self.namespace.schema()
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        drop_schema(&self.url, self.schema());
    }
}

/// Drops `schema` on a thread and runtime of its own: a test's runtime
/// may be unwinding.
fn drop_schema(url: &str, schema: &str) {
    let (url, sql) = (
        url.to_owned(),
        format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
    );
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            conn.execute(sql.as_str()).await
        })
    })
    .join();
    if !matches!(dropped, Ok(Ok(_))) {
        eprintln!("schema {schema} was not dropped: {dropped:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_lease_contract() {
    let Some(url) = url("lease contract") else {
        return;
    };
    let fresh = Fresh::new(&url, "leases").await;
    let store = fresh.store(&url).await;
    contract::every_check(Arc::new(store), "pg", TIMINGS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_claim_contract() {
    let Some(url) = url("claim contract") else {
        return;
    };
    let fresh = Fresh::new(&url, "claims").await;
    let store = fresh.store(&url).await;
    contract::claims::every_check(Arc::new(store), "pg", TIMINGS).await;
}

#[tokio::test]
async fn quotes_and_backslashes_in_names_round_trip() {
    let Some(url) = url("quoting") else { return };
    let fresh = Fresh::new(&url, "quoting").await;
    let store = fresh.store(&url).await;
    let (name, holder) = ("o'brien\\'; DROP TABLE x; --", "it's \\ me");
    let lease = store
        .try_acquire(name, holder, TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.current(name).await.unwrap().unwrap().holder(), holder);
    assert!(store.renew(&lease, TIMINGS.ttl).await.unwrap());
    let tick = contract::claims::tick(1);
    match store.try_claim(name, tick, holder, None).await.unwrap() {
        ClaimOutcome::Claimed(claim) => assert_eq!(claim.holder(), holder),
        other => panic!("{other:?}"),
    }
}

/// The rows of the crate's migrations table, with when each was applied.
async fn applied(pool: &PgPool, schema: &str) -> Vec<(i64, String)> {
    let sql = format!(
        "SELECT version, applied_at::text FROM \"{schema}\".host_cluster_migrations ORDER BY version"
    );
    pool.fetch_all(sql.as_str())
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let Some(url) = url("migrate twice") else {
        return;
    };
    let fresh = Fresh::new(&url, "twice").await;
    let store = fresh.store(&url).await;
    let first = applied(&fresh.admin, fresh.schema()).await;
    assert_eq!(first.len(), 1, "{first:?}");
    store.migrate().await.unwrap();
    fresh.store(&url).await;
    assert_eq!(applied(&fresh.admin, fresh.schema()).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_starting_together_all_migrate() {
    let Some(url) = url("concurrent migrations") else {
        return;
    };
    let fresh = Fresh::new(&url, "together").await;
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let options = fresh.options(&url);
            tokio::spawn(async move { options.connect().await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in futures::future::join_all(starts).await {
        stores.push(start.unwrap().expect("every instance migrates"));
    }
    assert_eq!(applied(&fresh.admin, fresh.schema()).await.len(), 1);
    let lease = stores[0]
        .try_acquire("one", "a", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stores[7]
            .try_acquire("one", "b", TIMINGS.ttl)
            .await
            .unwrap()
            .is_none()
    );
    stores[0].release(&lease).await.unwrap();
}

#[tokio::test]
async fn an_applications_own_sqlx_migrations_are_left_alone() {
    let Some(url) = url("beside _sqlx_migrations") else {
        return;
    };
    let fresh = Fresh::new(&url, "beside").await;
    fresh
        .admin
        .execute(format!("CREATE SCHEMA \"{}\"", fresh.schema()).as_str())
        .await
        .unwrap();
    // The application's pool and migrator work in the test's schema.
    let app_options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let app = PgPool::connect_with(app_options.options([("search_path", fresh.schema())]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1_orders.sql"),
        "CREATE TABLE orders (id bigint PRIMARY KEY);",
    )
    .unwrap();
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    migrator.run(&app).await.unwrap();
    let theirs = "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version";
    let before: Vec<(i64, Vec<u8>, bool)> = app
        .fetch_all(theirs)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();

    let store = fresh.store(&url).await;
    store.migrate().await.unwrap();
    let after: Vec<(i64, Vec<u8>, bool)> = app
        .fetch_all(theirs)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(after, before, "the application's migrations are untouched");
    // And the application's migrator still finds only its own.
    migrator.run(&app).await.unwrap();
    assert_eq!(applied(&fresh.admin, fresh.schema()).await.len(), 1);
}

#[tokio::test]
async fn the_migration_sql_applied_by_hand_serves_the_store() {
    let Some(url) = url("migration SQL by hand") else {
        return;
    };
    let fresh = Fresh::new(&url, "by_hand").await;
    let sql = fresh.namespace.migration_sql();
    sqlx::raw_sql(&sql).execute(&fresh.admin).await.unwrap();
    let first = applied(&fresh.admin, fresh.schema()).await;
    assert_eq!(first.len(), 1);
    // Run again, it changes nothing.
    sqlx::raw_sql(&sql).execute(&fresh.admin).await.unwrap();
    assert_eq!(applied(&fresh.admin, fresh.schema()).await, first);
    let store = fresh
        .options(&url)
        .migrate_on_connect(false)
        .connect()
        .await
        .unwrap();
    assert_eq!(store.migration_sql(), sql);
    store
        .try_acquire("one", "a", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(applied(&fresh.admin, fresh.schema()).await, first);
}

#[tokio::test]
async fn without_migrations_the_error_names_the_store() {
    let Some(url) = url("unmigrated") else { return };
    let fresh = Fresh::new(&url, "unmigrated").await;
    let store = fresh
        .options(&url)
        .migrate_on_connect(false)
        .connect()
        .await
        .unwrap();
    match store.try_acquire("one", "a", TIMINGS.ttl).await {
        Err(error @ ClusterError::Store { .. }) => {
            let text = error.to_string();
            assert!(text.contains("postgres://"), "{text}");
            assert!(text.contains("host_leases"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_backend_leaves_no_lease_beyond_its_ttl() {
    let Some(url) = url("terminated backend") else {
        return;
    };
    let fresh = Fresh::new(&url, "terminated").await;
    let app_name = format!("{}_app", fresh.schema());
    let store = fresh
        .options(&url)
        .application_name(&app_name)
        .connect()
        .await
        .unwrap();
    let lease = store
        .try_acquire("leader", "a", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    let terminated: i64 = fresh
        .admin
        .fetch_one(
            sqlx::query(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1",
            )
            .bind(&app_name),
        )
        .await
        .unwrap()
        .get(0);
    assert!(terminated >= 1, "the store's connections are found by name");
    // The next call fails or reconnects; either way the store recovers.
    let mut answers = Vec::new();
    for _ in 0..5 {
        let answer = store.current("leader").await;
        let ok = answer.is_ok();
        answers.push(answer.map(|info| info.map(|info| info.token())));
        if ok {
            break;
        }
    }
    println!("after the termination: {answers:?}");
    assert!(answers.last().unwrap().is_ok(), "{answers:?}");
    // Nothing outlived the time to live: the renew says it is lost.
    tokio::time::sleep(TIMINGS.ttl + TIMINGS.margin).await;
    assert!(!store.renew(&lease, TIMINGS.ttl).await.unwrap());
    assert!(store.current("leader").await.unwrap().is_none());
    let next = store
        .try_acquire("leader", "b", TIMINGS.ttl)
        .await
        .unwrap()
        .expect("free for another");
    assert!(next.token() > lease.token());
}

#[tokio::test]
async fn errors_and_debug_never_show_the_password() {
    let secret = "s3cret-pw";
    let closed = format!("postgres://app:{secret}@127.0.0.1:1/orders?password={secret}");
    let options = PostgresOptions::new(&closed)
        .unwrap()
        .acquire_timeout(Duration::from_secs(2));
    let debug = format!("{options:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(
        debug.contains("postgres://app@127.0.0.1:1/orders"),
        "{debug}"
    );
    let error = options.connect().await.unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(
        error
            .to_string()
            .contains("postgres://app@127.0.0.1:1/orders"),
        "{error}"
    );
    // A URL that does not parse is shown without its password.
    let error = PostgresStore::connect(&format!("postgres://app:{secret}@127.0.0.1:99999/db"))
        .await
        .unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(secret), "{text}");
    }
    // A store that connected shows its address, not its password (the
    // test server may ignore the password).
    let Some(url) = url("password in Debug") else {
        return;
    };
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let store = PostgresOptions::from_connect_options(options.password(secret))
        .connect()
        .await
        .unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains("postgres://"), "{debug}");
}

/// A target table for fenced writes, in the fresh schema.
async fn target(fresh: &Fresh) -> (PgPool, String) {
    let table = format!("\"{}\".target", fresh.schema());
    fresh
        .admin
        .execute(format!("CREATE TABLE {table} (token bigint PRIMARY KEY)").as_str())
        .await
        .unwrap();
    (fresh.admin.clone(), table)
}

/// Writes `token` into the target in a transaction fenced by `check`;
/// commits only when the fence accepts it.
async fn fenced_write(
    pool: &PgPool,
    table: &str,
    token: u64,
    check: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<(), FenceError>,
) -> Result<(), FenceError> {
    let mut tx = pool.begin().await.unwrap();
    tx.execute(format!("INSERT INTO {table} VALUES ({token})").as_str())
        .await
        .unwrap();
    check(&mut tx).await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn written(pool: &PgPool, table: &str) -> Vec<i64> {
    pool.fetch_all(format!("SELECT token FROM {table} ORDER BY token").as_str())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn the_fence_accepts_equal_and_higher_tokens_and_turns_lower_away() {
    let Some(url) = url("fence") else { return };
    let fresh = Fresh::new(&url, "fence").await;
    host_cluster::postgres::migrate(&fresh.admin, &fresh.namespace)
        .await
        .unwrap();
    let fence = Fence::new(&fresh.namespace);
    let (pool, table) = target(&fresh).await;
    for token in [5, 7] {
        fenced_write(&pool, &table, token, async |tx| {
            fence.check(tx, "billing", FencingToken::new(token)).await
        })
        .await
        .unwrap();
    }
    // Equal to the highest: the same term writing again.
    let mut tx = pool.begin().await.unwrap();
    fence
        .check(&mut tx, "billing", FencingToken::new(7))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let stale = fenced_write(&pool, &table, 6, async |tx| {
        fence.check(tx, "billing", FencingToken::new(6)).await
    })
    .await
    .unwrap_err();
    match &stale {
        FenceError::Stale {
            name,
            token,
            highest,
        } => assert_eq!(
            (name.as_str(), token.get(), highest.get()),
            ("billing", 6, 7)
        ),
        other => panic!("{other:?}"),
    }
    let text = stale.to_string();
    assert!(
        text.contains("billing") && text.contains('6') && text.contains('7'),
        "{text}"
    );
    assert_eq!(
        written(&pool, &table).await,
        [5, 7],
        "the stale write did not commit"
    );
    // Another lease name has a fence of its own.
    fenced_write(&pool, &table, 1, async |tx| {
        fence.check(tx, "mail", FencingToken::new(1)).await
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_row_check_turns_away_an_expired_or_replaced_term() {
    let Some(url) = url("lease-row fence") else {
        return;
    };
    let fresh = Fresh::new(&url, "lease_fence").await;
    let store = fresh.store(&url).await;
    let fence = store.fence();
    let (pool, table) = target(&fresh).await;
    let a = store
        .try_acquire("billing", "a", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    fenced_write(&pool, &table, a.token().get(), async |tx| {
        fence.check_lease(tx, &a).await
    })
    .await
    .unwrap();
    tokio::time::sleep(TIMINGS.ttl + TIMINGS.margin).await;
    let lapsed = fenced_write(&pool, &table, 100, async |tx| {
        fence.check_lease(tx, &a).await
    })
    .await
    .unwrap_err();
    assert!(matches!(lapsed, FenceError::Lapsed { .. }), "{lapsed:?}");
    let b = store
        .try_acquire("billing", "b", TIMINGS.ttl)
        .await
        .unwrap()
        .unwrap();
    let stale = fenced_write(&pool, &table, 101, async |tx| {
        fence.check_lease(tx, &a).await
    })
    .await
    .unwrap_err();
    match &stale {
        FenceError::Stale { token, highest, .. } => {
            assert_eq!((*token, *highest), (a.token(), b.token()));
        }
        other => panic!("{other:?}"),
    }
    fenced_write(&pool, &table, b.token().get(), async |tx| {
        fence.check_lease(tx, &b).await
    })
    .await
    .unwrap();
    assert_eq!(
        written(&pool, &table).await,
        [a.token().get() as i64, b.token().get() as i64]
    );
}

#[test]
fn its_types_are_send_and_sync() {
    fn is_send_sync<T: Send + Sync + 'static>() {}
    is_send_sync::<PostgresStore>();
    is_send_sync::<PostgresOptions>();
    is_send_sync::<Namespace>();
    is_send_sync::<Fence>();
    is_send_sync::<FenceError>();
}

#[tokio::test]
async fn the_urls_application_name_is_kept() {
    let Some(url) = url("application_name") else {
        return;
    };
    let fresh = Fresh::new(&url, "app_name").await;
    let separator = if url.contains('?') { '&' } else { '?' };
    let named = format!("{url}{separator}application_name=orders_api");
    let store = fresh.options(&named).connect().await.unwrap();
    let shown: String = store
        .pool()
        .fetch_one("SELECT current_setting('application_name')")
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "orders_api");
    let store = fresh.store(&url).await;
    let shown: String = store
        .pool()
        .fetch_one("SELECT current_setting('application_name')")
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "host-cluster");
}

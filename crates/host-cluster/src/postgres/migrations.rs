//! The crate's tables, created by its own migrations and recorded in its
//! own table (`<prefix>cluster_migrations`), never in an application's
//! `_sqlx_migrations`.
//!
//! Every migration is idempotent (`IF NOT EXISTS`) and goes out as one
//! simple query, so one implicit transaction: the body and its version row
//! commit together or not at all. Instances that start at once may race:
//! two creating the same table collide on the catalog's unique index, and
//! the loser retries, by then finding the table there.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{PgPool, Row};

use super::address::{of_options, store_error};
use super::namespace::Tables;
use super::sql::text;
use super::{Namespace, timed};
use crate::ClusterError;

/// One migration: its version, what it does, and its body.
struct Migration {
    version: i64,
    description: &'static str,
    body: fn(&Tables) -> String,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "leases, claims and fences",
    body: |t| {
        format!(
            "CREATE TABLE IF NOT EXISTS {leases} (
    name text PRIMARY KEY,
    holder text,
    token bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {claim_jobs} (
    job text PRIMARY KEY,
    token bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {claims} (
    job text NOT NULL,
    tick_ms bigint NOT NULL,
    holder text NOT NULL,
    token bigint NOT NULL,
    attempt integer NOT NULL,
    finished boolean NOT NULL,
    deadline timestamptz,
    PRIMARY KEY (job, tick_ms)
);
CREATE TABLE IF NOT EXISTS {fences} (
    name text PRIMARY KEY,
    token bigint NOT NULL
);
",
            leases = t.leases,
            claim_jobs = t.claim_jobs,
            claims = t.claims,
            fences = t.fences,
        )
    },
}];

/// The schema (unless `public`, which exists and which a role may not be
/// allowed to create in) and the migrations table.
fn bootstrap(namespace: &Namespace, t: &Tables) -> String {
    let schema = if namespace.schema() == "public" {
        String::new()
    } else {
        format!("CREATE SCHEMA IF NOT EXISTS {};\n", t.schema)
    };
    format!(
        "{schema}CREATE TABLE IF NOT EXISTS {} (
    version bigint PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
",
        t.migrations
    )
}

/// A migration's body and the row recording it.
fn step(migration: &Migration, t: &Tables) -> String {
    format!(
        "{}INSERT INTO {} (version, description) VALUES ({}, {}) ON CONFLICT (version) DO NOTHING;\n",
        (migration.body)(t),
        t.migrations,
        migration.version,
        text(migration.description),
    )
}

/// Every migration as one script, to run by hand or in one's own tooling
/// (`psql -v ON_ERROR_STOP=1 -1 -f`); running it again changes nothing.
pub(super) fn script(namespace: &Namespace) -> String {
    let t = namespace.tables();
    let mut sql = format!(
        "-- host-cluster migrations for schema {}, table prefix {:?}\n{}",
        namespace.schema(),
        namespace.prefix(),
        bootstrap(namespace, &t)
    );
    for migration in MIGRATIONS {
        sql.push_str(&format!(
            "-- {}: {}\n",
            migration.version, migration.description
        ));
        sql.push_str(&step(migration, &t));
    }
    sql
}

/// Applies the migrations not yet recorded in `namespace`.
pub(super) async fn run(
    pool: &PgPool,
    namespace: &Namespace,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let address = of_options(&pool.connect_options());
    let t = namespace.tables();
    with_retry(pool, &address, timeout, &bootstrap(namespace, &t)).await?;
    let applied: HashSet<i64> = timed(
        &address,
        timeout,
        sqlx::raw_sql(&format!("SELECT version FROM {}", t.migrations)).fetch_all(pool),
    )
    .await?
    .iter()
    .map(|row| row.try_get::<i64, _>(0))
    .collect::<Result<_, _>>()
    .map_err(|error| store_error(&address, error))?;
    for migration in MIGRATIONS {
        if !applied.contains(&migration.version) {
            with_retry(pool, &address, timeout, &step(migration, &t)).await?;
        }
    }
    Ok(())
}

/// Runs `sql`, again when it lost a race to create the same object.
async fn with_retry(
    pool: &PgPool,
    address: &str,
    timeout: Duration,
    sql: &str,
) -> Result<(), ClusterError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match timed(address, timeout, sqlx::raw_sql(sql).execute(pool)).await {
            Err(error) if attempt < 5 && lost_a_race(&error) => {
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            result => return result.map(drop),
        }
    }
}

/// `unique_violation` (on the catalog), `duplicate_table`,
/// `duplicate_schema`, `duplicate_object`: another instance created it.
fn lost_a_race(error: &ClusterError) -> bool {
    let ClusterError::Store { source, .. } = error else {
        return false;
    };
    let Some(sqlx::Error::Database(error)) = source.downcast_ref::<sqlx::Error>() else {
        return false;
    };
    matches!(
        error.code().as_deref(),
        Some("23505" | "42P07" | "42P06" | "42710")
    )
}

//! The `cluster` section, the elections of a host's cluster singletons
//! (which lease store they campaign in, as which instance), and the claims
//! of its cluster-wide schedules (in the same store).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use host_cluster::{ClaimStore, FileLockStore, LeaseStore};
use serde::Deserialize;

use crate::HostError;
use crate::scheduling::cluster_wide::ClusterTicks;
use crate::services::record::ServiceRecord;
use crate::supervision::balance::Balance;
use crate::supervision::election::{Election, holder_id};

/// The section's key.
pub(crate) const KEY: &str = "cluster";

/// `cluster`: where the lease store is and who this instance is.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ClusterSection {
    /// This instance's holder id; unique per process by default.
    instance_id: Option<String>,
    /// The file-lock store's directory, relative to the content root;
    /// `.host/leases` by default.
    directory: Option<PathBuf>,
    /// A PostgreSQL database instead of the file lock.
    postgres: Option<PostgresSection>,
    /// A Redis server instead of the file lock.
    redis: Option<RedisSection>,
    /// Whether a host's cluster singletons spread over the instances that
    /// run them (see `supervision::balance`); on by default.
    balance: Option<bool>,
    /// An etcd cluster instead of the file lock.
    etcd: Option<EtcdSection>,
}

/// `cluster.etcd`: the etcd store's members and key prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EtcdSection {
    /// The URL, `etcd://` or `etcds://` (a secret: never shown).
    url: String,
    /// The keys' prefix; the URL's path, else `host/`.
    prefix: Option<String>,
}

/// The key of the etcd store's URL, which the builder marks secret.
pub(crate) const ETCD_URL_KEY: &str = "cluster.etcd.url";

/// `cluster.redis`: the Redis store's server and key prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RedisSection {
    /// The connection URL (a secret: never shown).
    url: String,
    /// The keys' prefix; `host:` by default.
    prefix: Option<String>,
}

/// The key of the Redis store's URL, which the builder marks secret.
pub(crate) const REDIS_URL_KEY: &str = "cluster.redis.url";

/// `cluster.postgres`: the PostgreSQL store's database and tables.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PostgresSection {
    /// The connection URL (a secret: never shown).
    url: String,
    /// The tables' schema; `public` by default.
    schema: Option<String>,
    /// The tables' prefix; `host_` by default.
    prefix: Option<String>,
}

/// The key of the PostgreSQL store's URL, which the builder marks secret.
pub(crate) const POSTGRES_URL_KEY: &str = "cluster.postgres.url";

/// Why an interval cannot be cluster-wide, and what to write instead.
pub(crate) const INTERVAL_REFUSED: &str = "an interval counts from each instance's own \
    start, so instances would not agree on its ticks; use a cron expression with a seconds \
    field instead (such as \"*/10 * * * * *\" for every 10 seconds)";

/// The stores set in code: for leases ([`HostBuilder::lease_store`](crate::HostBuilder::lease_store)),
/// and for both leases and claims ([`HostBuilder::cluster_store`](crate::HostBuilder::cluster_store)).
#[derive(Default)]
pub(crate) struct Stores {
    pub(crate) leases: Option<Arc<dyn LeaseStore>>,
    pub(crate) claims: Option<Arc<dyn ClaimStore>>,
}

/// Gives each cluster singleton among `records` its election, and each
/// cluster-wide periodic service its claims: the store set in code, or the
/// file lock the section (or the default) names; the instance id the
/// section sets, or one unique to this process.
///
/// Returns the store they use, if any does.
///
/// # Errors
///
/// A singleton's timings out of order, two services of this host that are
/// the same singleton or the same cluster-wide job, a job name the store
/// cannot take, a cluster-wide service on an interval, or a cluster-wide
/// service with a store set in code that keeps no claims: a build error
/// naming them.
pub(crate) fn elect(
    records: &[Arc<ServiceRecord>],
    section: &ClusterSection,
    stores: Stores,
    content_root: &Path,
) -> Result<Option<Arc<dyn LeaseStore>>, HostError> {
    let singletons: Vec<&Arc<ServiceRecord>> = records
        .iter()
        .filter(|record| record.settings.singleton.is_some())
        .collect();
    let cluster_wide: Vec<&Arc<ServiceRecord>> = records
        .iter()
        .filter(|record| record.settings.cluster_wide.is_some())
        .collect();
    if singletons.is_empty() && cluster_wide.is_empty() {
        return Ok(None);
    }
    let mut problems = Vec::new();
    let mut jobs: HashMap<&str, &str> = HashMap::new();
    for record in &cluster_wide {
        let options = record.settings.cluster_wide.as_ref().expect("filtered");
        let job = options.job_name().unwrap_or(&record.name);
        if let Some(first) = jobs.insert(job, &record.name) {
            problems.push(format!(
                "`{first}` and `{}` are both the cluster-wide job `{job}`; their ticks would \
                 take each other's claims, so give them jobs of their own",
                record.name
            ));
        }
        // The store names `<job>.running` too: at most 255 bytes.
        let why = if job.is_empty() {
            Some("it is empty")
        } else if job.len() > 247 {
            Some("it is longer than 247 bytes")
        } else if job.chars().any(char::is_control) {
            Some("it holds a control character")
        } else {
            None
        };
        if let Some(why) = why {
            problems.push(format!(
                "`{}`: the cluster-wide job name {job:?} is invalid: {why}",
                record.name
            ));
        }
        if let Some(slot) = record.schedule()
            && !slot.timetable.borrow().is_cron()
        {
            problems.push(format!(
                "`{}`: {} cannot be cluster-wide: {INTERVAL_REFUSED}",
                record.name,
                slot.schedule()
            ));
        }
    }
    if !cluster_wide.is_empty() && stores.leases.is_some() && stores.claims.is_none() {
        let names: Vec<String> = cluster_wide
            .iter()
            .map(|record| format!("`{}`", record.name))
            .collect();
        let verb = if names.len() == 1 { "is" } else { "are" };
        problems.push(format!(
            "{} {verb} cluster-wide, but the store set with `HostBuilder::lease_store` keeps \
             leases only; set one that also keeps claims with `HostBuilder::cluster_store`",
            names.join(", ")
        ));
    }
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for record in &singletons {
        let singleton = record.settings.singleton.as_ref().expect("filtered");
        if let Err(problem) = singleton.check() {
            problems.push(format!("`{}`: {problem}", record.name));
        }
        if let Some(first) = seen.insert(singleton.name(), &record.name) {
            problems.push(format!(
                "`{first}` and `{}` are both the cluster singleton `{}`; one host runs a \
                 singleton once, so give them names of their own",
                record.name,
                singleton.name()
            ));
        }
    }
    if !problems.is_empty() {
        let what = if singletons.is_empty() {
            "invalid cluster-wide schedules"
        } else if cluster_wide.is_empty() {
            "invalid cluster singletons"
        } else {
            "invalid cluster singletons or cluster-wide schedules"
        };
        return Err(HostError::build(format!("{what}: {}", problems.join("; "))));
    }
    // Without claims set in code, there are no cluster-wide services
    // (checked above) unless the default store serves both.
    let (store, claims): (Arc<dyn LeaseStore>, Option<Arc<dyn ClaimStore>>) = match stores {
        Stores {
            leases: Some(leases),
            claims,
        } => (leases, claims),
        Stores { leases: None, .. } => {
            let store = configured_store(section)?
                .unwrap_or_else(|| Arc::new(default_store(section, content_root)));
            (store.clone(), Some(store))
        }
    };
    let holder: Arc<str> = section.instance_id.clone().unwrap_or_else(holder_id).into();
    for record in cluster_wide {
        let options = record.settings.cluster_wide.as_ref().expect("filtered");
        if let (Some(slot), Some(claims)) = (record.schedule(), &claims) {
            let _ = slot.cluster.set(Arc::new(ClusterTicks::new(
                claims.clone(),
                store.clone(),
                record.name.clone(),
                options,
                holder.clone(),
            )));
        }
    }
    let balance = balance(&singletons, section, &store, &holder);
    for record in singletons {
        let singleton = record.settings.singleton.clone().expect("filtered");
        let _ = record.election.set(Box::new(Election {
            store: store.clone(),
            singleton,
            holder: holder.clone(),
            balance: balance.clone(),
        }));
    }
    Ok(Some(store))
}

/// The group that spreads `singletons` over the instances, when there are
/// two or more and the section leaves balancing on; its member leases on the
/// timings of the singleton that retries most often.
fn balance(
    singletons: &[&Arc<ServiceRecord>],
    section: &ClusterSection,
    store: &Arc<dyn LeaseStore>,
    holder: &Arc<str>,
) -> Option<Arc<Balance>> {
    if singletons.len() < 2 || section.balance == Some(false) {
        return None;
    }
    let all: Vec<&crate::Singleton> = singletons
        .iter()
        .filter_map(|record| record.settings.singleton.as_ref())
        .collect();
    let names: Vec<&str> = all.iter().map(|singleton| singleton.name()).collect();
    let timings = all
        .iter()
        .min_by_key(|singleton| singleton.retry_period_duration())
        .map(|singleton| (*singleton).clone())?;
    Some(Arc::new(Balance::new(
        store.clone(),
        &names,
        holder.clone(),
        timings,
    )))
}

/// The store of the one section among `cluster.postgres`, `cluster.redis`
/// and `cluster.etcd` that is set, if any.
fn configured_store(
    section: &ClusterSection,
) -> Result<Option<Arc<dyn host_cluster::ClusterStore>>, HostError> {
    // (key, URL, schema, prefix) of each section set.
    let mut set = Vec::new();
    if let Some(postgres) = &section.postgres {
        let schema = postgres.schema.as_deref();
        set.push(("cluster.postgres", &postgres.url, schema, &postgres.prefix));
    }
    if let Some(redis) = &section.redis {
        set.push(("cluster.redis", &redis.url, None, &redis.prefix));
    }
    if let Some(etcd) = &section.etcd {
        set.push(("cluster.etcd", &etcd.url, None, &etcd.prefix));
    }
    match set.as_slice() {
        [] => Ok(None),
        [(key, url, schema, prefix)] => {
            host_cluster::cluster_store_for_url(url, *schema, prefix.as_deref())
                .map(Some)
                .map_err(|error| {
                    HostError::build(format!("invalid configuration: `{key}`: {error}"))
                })
        }
        several => {
            let keys: Vec<String> = several.iter().map(|(key, ..)| format!("`{key}`")).collect();
            let (last, first) = keys.split_last().expect("several");
            let all = if several.len() == 2 { "both" } else { "all" };
            Err(HostError::build(format!(
                "invalid configuration: {} and {last} are {all} set; a host uses one store",
                first.join(", ")
            )))
        }
    }
}

/// The file lock the section names, or the default one under the content
/// root.
fn default_store(section: &ClusterSection, content_root: &Path) -> FileLockStore {
    let directory = match &section.directory {
        Some(directory) => content_root.join(directory),
        None => FileLockStore::default_dir(content_root),
    };
    FileLockStore::new(directory)
}

/// The lease store a host's cluster singletons and cluster-wide schedules
/// use, resolvable from the container (for a health check, say); empty when
/// the host has none of them. Cheap to clone.
#[derive(Clone, Default)]
pub struct ClusterStoreHandle {
    store: Arc<std::sync::OnceLock<Arc<dyn LeaseStore>>>,
}

impl ClusterStoreHandle {
    pub(crate) fn set(&self, store: Arc<dyn LeaseStore>) {
        let _ = self.store.set(store);
    }

    /// The store, when the host uses one.
    pub fn get(&self) -> Option<Arc<dyn LeaseStore>> {
        self.store.get().cloned()
    }

    /// Asks the store who holds a lease no service uses: `None` when the
    /// host uses no store, else whether the store answered (the error
    /// names the store, never a password).
    pub async fn probe(&self) -> Option<Result<(), host_cluster::ClusterError>> {
        let store = self.get()?;
        Some(store.current(PROBE_LEASE).await.map(|_| ()))
    }
}

/// The lease name a probe reads.
const PROBE_LEASE: &str = "host.health-probe";

impl std::fmt::Debug for ClusterStoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStoreHandle")
            .field("in_use", &self.store.get().is_some())
            .finish()
    }
}

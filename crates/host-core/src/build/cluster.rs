//! The `cluster` section, and the elections of a host's cluster
//! singletons: which lease store they campaign in, as which instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use host_cluster::{FileLockStore, LeaseStore};
use serde::Deserialize;

use crate::HostError;
use crate::services::record::ServiceRecord;
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
}

/// Gives each cluster singleton among `records` its election: the lease
/// store set in code, or the file lock the section (or the default) names;
/// the instance id the section sets, or one unique to this process.
///
/// # Errors
///
/// A singleton's timings out of order, or two services of this host that
/// are the same singleton: a build error naming them.
pub(crate) fn elect(
    records: &[Arc<ServiceRecord>],
    section: &ClusterSection,
    store: Option<Arc<dyn LeaseStore>>,
    content_root: &Path,
) -> Result<(), HostError> {
    let singletons: Vec<&Arc<ServiceRecord>> = records
        .iter()
        .filter(|record| record.settings.singleton.is_some())
        .collect();
    if singletons.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
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
        return Err(HostError::build(format!(
            "invalid cluster singletons: {}",
            problems.join("; ")
        )));
    }
    let store = store.unwrap_or_else(|| {
        let directory = match &section.directory {
            Some(directory) => content_root.join(directory),
            None => FileLockStore::default_dir(content_root),
        };
        Arc::new(FileLockStore::new(directory))
    });
    let holder: Arc<str> = section.instance_id.clone().unwrap_or_else(holder_id).into();
    for record in singletons {
        let singleton = record.settings.singleton.clone().expect("filtered");
        let _ = record.election.set(Box::new(Election {
            store: store.clone(),
            singleton,
            holder: holder.clone(),
        }));
    }
    Ok(())
}

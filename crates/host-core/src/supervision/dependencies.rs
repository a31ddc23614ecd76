//! Dependencies between hosted services: resolving "starts after" to
//! services, the start order, and build errors for what cannot be.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use crate::HostError;
use crate::services::record::{Links, ServiceRecord};
use crate::supervision::options::Target;

/// One resolved dependency of a service.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) on: Arc<ServiceRecord>,
    /// Waits for its readiness, not only its start.
    pub(crate) ready: bool,
}

/// The services in the order they start (stop: reversed): each after what
/// it depends on, registration order breaking ties, services marked `last`
/// at the end. Sets each record's dependencies and dependents, and marks
/// the services something waits on to be ready.
///
/// # Errors
///
/// An unknown or ambiguous dependency, a dependency on a service that
/// starts last, or a cycle: a build error naming them.
pub(crate) fn order(records: &[Arc<ServiceRecord>]) -> Result<Vec<Arc<ServiceRecord>>, HostError> {
    if records
        .iter()
        .all(|record| record.settings.after.is_empty() && !record.settings.last)
    {
        // Registration order, as it has always been.
        return Ok(records.to_vec());
    }
    let edges = resolve(records)?;
    let mut links: Vec<Links> = records.iter().map(|_| Links::default()).collect();
    for (index, record) in records.iter().enumerate() {
        for &(on, ready) in &edges[index] {
            if ready {
                records[on]
                    .waits_ready
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            links[on].dependents.push(Arc::downgrade(record));
            links[index].dependencies.push(Edge {
                on: records[on].clone(),
                ready,
            });
        }
    }
    for (record, links) in records.iter().zip(links) {
        if !links.dependencies.is_empty() || !links.dependents.is_empty() {
            record.set_links(links);
        }
    }
    let sorted = sort(records, &edges)?;
    Ok(sorted
        .into_iter()
        .map(|index| records[index].clone())
        .collect())
}

/// Each service's dependencies, as indices, with whether they wait for
/// readiness.
fn resolve(records: &[Arc<ServiceRecord>]) -> Result<Vec<Vec<(usize, bool)>>, HostError> {
    let mut problems = Vec::new();
    let mut edges = vec![Vec::new(); records.len()];
    for (index, record) in records.iter().enumerate() {
        for after in &record.settings.after {
            let targets = find(records, &after.target);
            match targets.as_slice() {
                [] => problems.push(format!(
                    "`{}` starts after `{}`, which is not a registered hosted service",
                    record.name, after.target
                )),
                [_, _, ..] if matches!(after.target, Target::Name(_)) => problems.push(format!(
                    "`{}` starts after `{}`, which names several services: {}; use the full name",
                    record.name,
                    after.target,
                    targets
                        .iter()
                        .map(|&target| format!("`{}`", records[target].name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                _ => {
                    for &target in &targets {
                        if target == index {
                            problems.push(format!("`{}` starts after itself", record.name));
                        } else if records[target].settings.last {
                            problems.push(format!(
                                "`{}` cannot start after `{}`: that service starts after every \
                                 other one (and stops first)",
                                record.name, records[target].name
                            ));
                        } else if after.ready && !records[target].service.is_background() {
                            problems.push(format!(
                                "`{}` waits for `{}` to report ready, which only a background \
                                 service does (`ctx.ready()`); use `after` instead",
                                record.name, records[target].name
                            ));
                        } else {
                            edges[index].push((target, after.ready));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(edges)
    } else {
        Err(HostError::build(problems.join("; ")))
    }
}

/// The services `target` names: by type, every instance of it; by name,
/// the service of that name, else those whose name's last part it is.
fn find(records: &[Arc<ServiceRecord>], target: &Target) -> Vec<usize> {
    let matching = |wanted: &dyn Fn(&ServiceRecord) -> bool| -> Vec<usize> {
        (0..records.len())
            .filter(|&i| wanted(&records[i]))
            .collect()
    };
    match target {
        Target::Type { id, .. } => matching(&|record| {
            let service: &dyn Any = &*record.service;
            service.type_id() == *id
        }),
        Target::Name(name) => {
            let exact = matching(&|record| &*record.name == name.as_str());
            if !exact.is_empty() {
                return exact;
            }
            matching(&|record| short_name(&record.name).eq_ignore_ascii_case(name))
        }
    }
}

/// The last part of a service's name: `Worker` for `app::Worker`.
pub(crate) fn short_name(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// Kahn's algorithm, the lowest registration index first among the
/// services that are free to start; `last` services after all others.
fn sort(
    records: &[Arc<ServiceRecord>],
    edges: &[Vec<(usize, bool)>],
) -> Result<Vec<usize>, HostError> {
    let count = records.len();
    let mut waiting_on: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (index, edges) in edges.iter().enumerate() {
        for &(on, _) in edges {
            dependents[on].push(index);
        }
    }
    let is_last = |index: usize| records[index].settings.last;
    let mut free: BTreeSet<(bool, usize)> = (0..count)
        .filter(|&index| waiting_on[index] == 0)
        .map(|index| (is_last(index), index))
        .collect();
    let mut sorted = Vec::with_capacity(count);
    while let Some(next) = free.pop_first() {
        let index = next.1;
        sorted.push(index);
        for &dependent in &dependents[index] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                free.insert((is_last(dependent), dependent));
            }
        }
    }
    if sorted.len() == count {
        return Ok(sorted);
    }
    let cycle = find_cycle(edges, &waiting_on);
    let names: Vec<&str> = cycle.iter().map(|&index| &*records[index].name).collect();
    Err(HostError::build(format!(
        "the hosted services' dependencies form a cycle: {}",
        names.join(" -> ")
    )))
}

/// A cycle among the services still waiting, as the path around it (the
/// first service repeated at the end).
fn find_cycle(edges: &[Vec<(usize, bool)>], waiting_on: &[usize]) -> Vec<usize> {
    let Some(start) = (0..edges.len()).find(|&index| waiting_on[index] > 0) else {
        return Vec::new();
    };
    // Every service still waiting waits on another one still waiting:
    // follow them until one repeats.
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(&(next, _)) = edges[current].iter().find(|&&(on, _)| waiting_on[on] > 0) else {
            return path;
        };
        if let Some(at) = path.iter().position(|&seen| seen == next) {
            let mut cycle = path.split_off(at);
            cycle.push(next);
            return cycle;
        }
        path.push(next);
        current = next;
    }
}

/// The dependents of a service, alive.
pub(crate) fn alive(dependents: &[Weak<ServiceRecord>]) -> Vec<Arc<ServiceRecord>> {
    dependents.iter().filter_map(Weak::upgrade).collect()
}

//! Validation at `build()`: every declared dependency is registered, there
//! is no cycle, and no singleton needs a scoped service.

use crate::descriptor::Meta;
use crate::error::Repr;
use crate::names::{Link, Shape};
use crate::root::Lists;
use crate::{DependencyKind, DiError, Lifetime};

/// Checks the registrations; the first problem found is returned.
///
/// Services that nothing depends on are walked first, so a missing
/// dependency is reported with the longest chain that leads to it.
pub(crate) fn validate(metas: &[Meta], index: &Lists) -> Result<(), DiError> {
    let graph = Graph { metas, index };
    let mut needed = vec![false; metas.len()];
    for meta in metas {
        for (target, _) in graph.edges(meta).flatten() {
            needed[target as usize] = true;
        }
    }
    let order = (0u32..)
        .zip(&needed)
        .filter(|(_, needed)| !**needed)
        .chain((0u32..).zip(&needed).filter(|(_, needed)| **needed))
        .map(|(index, _)| index);

    let mut walk = Walk {
        graph: &graph,
        state: vec![State::New; metas.len()],
        path: Vec::new(),
    };
    for start in order {
        walk.visit(start, Shape::Arc)?;
    }

    let mut safe = vec![false; metas.len()];
    for (singleton, meta) in (0u32..).zip(metas) {
        if meta.lifetime == Lifetime::Singleton {
            let mut path = vec![(singleton, Shape::Arc)];
            graph.captive(singleton, &mut path, &mut safe)?;
        }
    }
    Ok(())
}

struct Graph<'a> {
    metas: &'a [Meta],
    index: &'a Lists,
}

impl Graph<'_> {
    /// For each declared dependency: the registrations it resolves to, or
    /// an error naming it when it is required and missing.
    fn edges<'s>(
        &'s self,
        meta: &'s Meta,
    ) -> impl Iterator<Item = Result<(u32, Shape), &'s crate::Dependency>> + 's {
        meta.dependencies
            .iter()
            .flatten()
            .flat_map(move |dependency| {
                let found = self
                    .index
                    .find(dependency.type_id, dependency.key.as_deref());
                let targets: Vec<Result<(u32, Shape), &crate::Dependency>> = match dependency.kind {
                    DependencyKind::All => {
                        found.iter().map(|&t| Ok((t, dependency.shape))).collect()
                    }
                    DependencyKind::Optional => found
                        .last()
                        .map(|&t| Ok((t, dependency.shape)))
                        .into_iter()
                        .collect(),
                    DependencyKind::Required => match found.last() {
                        Some(&t) => vec![Ok((t, dependency.shape))],
                        None => vec![Err(dependency)],
                    },
                };
                targets
            })
    }

    fn link(&self, index: u32, shape: Shape) -> Link {
        let meta = &self.metas[index as usize];
        Link::new(meta.service_name, meta.key.clone(), shape)
    }

    /// The links of `path`, without the registrations that forward to
    /// another: their service type is one the user never wrote.
    fn links(&self, path: &[(u32, Shape)]) -> Vec<Link> {
        path.iter()
            .filter(|&&(index, _)| !self.metas[index as usize].forwards)
            .map(|&(index, shape)| self.link(index, shape))
            .collect()
    }

    /// Finds a scoped service that the singleton at the start of `path`
    /// would capture, directly or through transient services.
    fn captive(
        &self,
        from: u32,
        path: &mut Vec<(u32, Shape)>,
        safe: &mut [bool],
    ) -> Result<(), DiError> {
        for (target, shape) in self.edges(&self.metas[from as usize]).flatten() {
            let meta = &self.metas[target as usize];
            match meta.lifetime {
                Lifetime::Singleton => {}
                Lifetime::Scoped => {
                    let singleton = self.metas[path[0].0 as usize].dependent_name();
                    let mut chain = self.links(path);
                    chain.push(self.link(target, shape));
                    return Err(DiError::new(Repr::Captive {
                        singleton,
                        scoped: self.link(target, shape),
                        chain,
                    }));
                }
                Lifetime::Transient if !safe[target as usize] => {
                    path.push((target, shape));
                    self.captive(target, path, safe)?;
                    path.pop();
                    safe[target as usize] = true;
                }
                Lifetime::Transient => {}
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    OnPath,
    Done,
}

struct Walk<'g, 'a> {
    graph: &'g Graph<'a>,
    state: Vec<State>,
    path: Vec<(u32, Shape)>,
}

impl Walk<'_, '_> {
    fn visit(&mut self, node: u32, shape: Shape) -> Result<(), DiError> {
        if self.state[node as usize] != State::New {
            return Ok(());
        }
        self.state[node as usize] = State::OnPath;
        self.path.push((node, shape));
        let graph = self.graph;
        let meta = &graph.metas[node as usize];
        for edge in graph.edges(meta) {
            match edge {
                Err(missing) => {
                    let mut chain = graph.links(&self.path);
                    chain.push(missing.link());
                    return Err(DiError::new(Repr::NotRegistered {
                        dependent: Some(meta.dependent_name()),
                        missing: missing.link(),
                        chain,
                    }));
                }
                Ok((target, shape)) => match self.state[target as usize] {
                    State::OnPath => {
                        let start = self
                            .path
                            .iter()
                            .position(|&(index, _)| index == target)
                            .unwrap_or(0);
                        let mut cycle = graph.links(&self.path[start..]);
                        cycle.push(graph.link(target, shape));
                        return Err(DiError::new(Repr::Cycle { cycle }));
                    }
                    State::New => self.visit(target, shape)?,
                    State::Done => {}
                },
            }
        }
        self.path.pop();
        self.state[node as usize] = State::Done;
        Ok(())
    }
}

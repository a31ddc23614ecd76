//! The crate's one error type.

use std::error::Error as StdError;
use std::fmt;

use crate::names::{Link, Shape, short_name, trait_name, write_chain};

/// A boxed error from a factory.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a service could not be registered, validated, or resolved.
///
/// The message names the service (and its key), the chain of dependencies
/// that led to it, and what to do. [`DiError::kind`] tells the cases apart.
///
/// # Examples
///
/// ```
/// use host_di::{DiErrorKind, ServiceCollection};
///
/// trait Clock: Send + Sync {}
///
/// let provider = ServiceCollection::new().build()?;
/// let err = provider.get::<dyn Clock>().err().unwrap();
/// assert_eq!(err.kind(), DiErrorKind::NotRegistered);
/// assert!(err.to_string().contains("Clock` is not registered"));
/// assert!(err.to_string().contains("help: register an implementation"));
/// # Ok::<(), host_di::DiError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DiError(Box<Repr>);

/// What kind of [`DiError`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiErrorKind {
    /// A service, or a dependency of one, is not registered.
    NotRegistered,
    /// A service needs itself, directly or through others.
    Cycle,
    /// A singleton needs a scoped service (a captive dependency).
    CaptiveDependency,
    /// A scoped service was resolved from the root provider.
    ScopedFromRoot,
    /// A factory (or [`Injectable::create`](crate::Injectable::create))
    /// returned an error of its own; see [`std::error::Error::source`].
    Factory,
    /// The provider or scope was disposed.
    Disposed,
    /// A bug in host-di: a stored service had an unexpected type.
    Internal,
}

#[derive(Debug)]
pub(crate) enum Repr {
    NotRegistered {
        /// The type whose constructor needed the missing service.
        dependent: Option<&'static str>,
        missing: Link,
        /// From the service first asked for to the missing one.
        chain: Vec<Link>,
    },
    Cycle {
        /// Starts and ends with the same service.
        cycle: Vec<Link>,
    },
    Captive {
        singleton: &'static str,
        scoped: Link,
        chain: Vec<Link>,
    },
    ScopedFromRoot {
        service: Link,
        chain: Vec<Link>,
    },
    Factory {
        service: Option<Link>,
        chain: Vec<Link>,
        source: BoxError,
    },
    TooDeep {
        service: Link,
    },
    Disposed {
        service: Link,
        scope: bool,
    },
    Internal {
        service: Link,
    },
}

impl DiError {
    /// An error for a factory to return when it cannot build its service.
    ///
    /// The container adds the service's name and the dependency chain.
    ///
    /// # Examples
    ///
    /// ```
    /// use host_di::{DiError, ServiceCollection};
    ///
    /// struct Db;
    ///
    /// let mut services = ServiceCollection::new();
    /// services.add_singleton_factory::<Db, _>(|_| Err(DiError::custom("no database url")));
    /// let provider = services.build()?;
    /// let err = provider.get::<Db>().err().unwrap();
    /// assert!(err.to_string().ends_with("Db`: no database url"));
    /// # Ok::<(), DiError>(())
    /// ```
    pub fn custom(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self::new(Repr::Factory {
            service: None,
            chain: Vec::new(),
            source: source.into(),
        })
    }

    pub(crate) fn new(repr: Repr) -> Self {
        Self(Box::new(repr))
    }

    /// What kind of error this is.
    pub fn kind(&self) -> DiErrorKind {
        match *self.0 {
            Repr::NotRegistered { .. } => DiErrorKind::NotRegistered,
            Repr::Cycle { .. } | Repr::TooDeep { .. } => DiErrorKind::Cycle,
            Repr::Captive { .. } => DiErrorKind::CaptiveDependency,
            Repr::ScopedFromRoot { .. } => DiErrorKind::ScopedFromRoot,
            Repr::Factory { .. } => DiErrorKind::Factory,
            Repr::Disposed { .. } => DiErrorKind::Disposed,
            Repr::Internal { .. } => DiErrorKind::Internal,
        }
    }

    /// The type name of the service the error is about: the missing one,
    /// the first of a cycle, the captured scoped one, the one that failed.
    pub fn service(&self) -> Option<&'static str> {
        self.link().map(|link| link.name)
    }

    /// The key of that service, for keyed services.
    pub fn key(&self) -> Option<&str> {
        self.link().and_then(|link| link.key.as_deref())
    }

    /// The chain of dependencies, from the service first asked for to the
    /// one the error is about, as shown in the message
    /// (`["app::Worker", "Arc<dyn app::Clock>"]`).
    pub fn chain(&self) -> Vec<String> {
        let links: &[Link] = match &*self.0 {
            Repr::NotRegistered { chain, .. }
            | Repr::Captive { chain, .. }
            | Repr::ScopedFromRoot { chain, .. }
            | Repr::Factory { chain, .. } => chain,
            Repr::Cycle { cycle } => cycle,
            Repr::TooDeep { .. } | Repr::Disposed { .. } | Repr::Internal { .. } => &[],
        };
        links
            .iter()
            .enumerate()
            .map(|(i, link)| {
                if i == 0 {
                    link.as_service().to_string()
                } else {
                    link.as_field().to_string()
                }
            })
            .collect()
    }

    fn link(&self) -> Option<&Link> {
        match &*self.0 {
            Repr::NotRegistered { missing, .. } => Some(missing),
            Repr::Cycle { cycle } => cycle.first(),
            Repr::Captive { scoped, .. } => Some(scoped),
            Repr::ScopedFromRoot { service, .. }
            | Repr::TooDeep { service }
            | Repr::Disposed { service, .. }
            | Repr::Internal { service } => Some(service),
            Repr::Factory { service, .. } => service.as_ref(),
        }
    }

    /// Names the service and chain of a factory's own error, once: errors
    /// from deeper resolutions already carry theirs.
    pub(crate) fn in_factory_of(mut self, service: impl FnOnce() -> (Link, Vec<Link>)) -> Self {
        if let Repr::Factory {
            service: service_slot @ None,
            chain,
            ..
        } = &mut *self.0
        {
            let (link, links) = service();
            *service_slot = Some(link);
            *chain = links;
        }
        self
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repr::NotRegistered {
                dependent,
                missing,
                chain,
            } => {
                match dependent {
                    Some(dependent) => write!(
                        f,
                        "`{dependent}` needs `{}`, which is not registered",
                        missing.as_field()
                    )?,
                    None => write!(f, "`{}` is not registered", missing.as_service())?,
                }
                write_needed_by(f, chain)?;
                write!(f, "\n  help: {}", RegisterHelp(missing))
            }
            Repr::Cycle { cycle } => {
                let first = cycle.first().map_or("?", |link| link.name);
                write!(f, "dependency cycle: `{first}` needs itself\n  cycle: ")?;
                write_chain(f, cycle)?;
                f.write_str(
                    "\n  help: a service cannot need itself, directly or through others; \
                     move what they share into a new service they all depend on",
                )
            }
            Repr::Captive {
                singleton,
                scoped,
                chain,
            } => {
                write!(
                    f,
                    "`{singleton}` is a singleton but needs `{}`, which is scoped: \
                     the singleton would keep one scope's instance forever",
                    scoped.as_field()
                )?;
                write_needed_by(f, chain)?;
                let singleton = short_name(singleton);
                let scoped = short_name(scoped.name);
                write!(
                    f,
                    "\n  help: make `{singleton}` scoped, make `{scoped}` a singleton, \
                     or inject `ServiceProvider` and resolve `{scoped}` from a scope per unit of work"
                )
            }
            Repr::ScopedFromRoot { service, chain } => {
                write!(
                    f,
                    "`{}` is scoped and cannot be resolved from the root provider",
                    service.as_service()
                )?;
                write_needed_by(f, chain)?;
                f.write_str(
                    "\n  help: create a scope with `provider.create_scope()` and resolve it from the scope",
                )
            }
            Repr::Factory {
                service,
                chain,
                source,
            } => {
                match service {
                    Some(service) => {
                        write!(f, "could not create `{}`: {source}", service.as_service())?
                    }
                    None => write!(f, "could not create a service: {source}")?,
                }
                write_needed_by(f, chain)
            }
            Repr::TooDeep { service } => write!(
                f,
                "resolving `{}` nests more than {} constructions: probably a dependency cycle through factories",
                service.as_service(),
                crate::resolution::MAX_DEPTH
            ),
            Repr::Disposed { service, scope } => write!(
                f,
                "cannot resolve `{}`: the {} has been disposed",
                service.as_service(),
                if *scope { "scope" } else { "service provider" }
            ),
            Repr::Internal { service } => write!(
                f,
                "internal error: the stored `{}` has an unexpected type (a bug in host-di)",
                service.as_service()
            ),
        }
    }
}

impl StdError for Repr {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Repr::Factory { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

/// `needed by:` when the chain says more than the first line.
fn write_needed_by(f: &mut fmt::Formatter<'_>, chain: &[Link]) -> fmt::Result {
    if chain.len() < 2 {
        return Ok(());
    }
    f.write_str("\n  needed by: ")?;
    write_chain(f, chain)
}

/// `register an implementation, e.g. services.add_singleton::<dyn Clock, ClockImpl>()`
struct RegisterHelp<'a>(&'a Link);

impl fmt::Display for RegisterHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = self.0;
        let short = short_name(link.name);
        let key = link.key.as_deref();
        if link.shape == Shape::Value {
            if let Some(inner) = short
                .strip_prefix("Options<")
                .and_then(|s| s.strip_suffix('>'))
            {
                return write!(
                    f,
                    "register its value, e.g. `services.add_options({inner} {{ .. }})`"
                );
            }
            return write!(
                f,
                "register it, e.g. `services.add_instance(Arc::new(value))`"
            );
        }
        match (trait_name(&short), key) {
            (Some(name), None) => write!(
                f,
                "register an implementation, e.g. `services.add_singleton::<{short}, {name}Impl>()`"
            ),
            (Some(name), Some(key)) => write!(
                f,
                "register an implementation, e.g. `services.add_keyed_singleton::<{short}, {name}Impl>({key:?})`"
            ),
            (None, None) => write!(
                f,
                "register it, e.g. `services.add_singleton_self::<{short}>()`"
            ),
            (None, Some(key)) => write!(
                f,
                "register it, e.g. `services.add_keyed_singleton::<{short}, {short}>({key:?})`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dependency_message() {
        let err = DiError::new(Repr::NotRegistered {
            dependent: Some("app::Worker"),
            missing: Link::new("dyn app::Clock", None, Shape::Arc),
            chain: vec![
                Link::new("app::Worker", None, Shape::Arc),
                Link::new("dyn app::Clock", None, Shape::Arc),
            ],
        });
        assert_eq!(
            err.to_string(),
            "`app::Worker` needs `Arc<dyn app::Clock>`, which is not registered\n  \
             needed by: app::Worker -> Arc<dyn app::Clock>\n  \
             help: register an implementation, e.g. `services.add_singleton::<dyn Clock, ClockImpl>()`"
        );
        assert_eq!(err.kind(), DiErrorKind::NotRegistered);
        assert_eq!(err.service(), Some("dyn app::Clock"));
        assert_eq!(err.chain(), ["app::Worker", "Arc<dyn app::Clock>"]);
    }

    #[test]
    fn custom_errors_keep_their_source() {
        let err = DiError::custom("boom").in_factory_of(|| {
            (
                Link::new("app::Db", None, Shape::Arc),
                vec![Link::new("app::Db", None, Shape::Arc)],
            )
        });
        assert_eq!(err.to_string(), "could not create `app::Db`: boom");
        assert_eq!(
            StdError::source(&err).map(ToString::to_string),
            Some("boom".into())
        );
    }
}

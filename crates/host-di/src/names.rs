//! How services are named in error messages: links of a dependency chain
//! (`app::Worker -> Arc<dyn app::Clock>`) and the short names used in the
//! `help:` lines (`dyn Clock`).

use std::fmt;
use std::sync::Arc;

/// How a dependency is asked for, which is how it is shown in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `Arc<T>`
    Arc,
    /// `Option<Arc<T>>`
    Option,
    /// `Vec<Arc<T>>`
    Vec,
    /// `T` itself, e.g. `Options<T>`.
    Value,
}

/// One link of a dependency chain, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) name: &'static str,
    pub(crate) key: Option<Arc<str>>,
    pub(crate) shape: Shape,
}

impl Link {
    pub(crate) fn new(name: &'static str, key: Option<Arc<str>>, shape: Shape) -> Self {
        Self { name, key, shape }
    }

    /// The link as a field type: `Arc<dyn app::Clock>`, `Vec<Arc<T>>`, ...
    pub(crate) fn as_field(&self) -> FieldName<'_> {
        FieldName(self)
    }

    /// The link as a service: `dyn app::Clock`.
    pub(crate) fn as_service(&self) -> ServiceName<'_> {
        ServiceName(self)
    }
}

/// Displays a [`Link`] as the field type that asked for it.
pub(crate) struct FieldName<'a>(&'a Link);

impl fmt::Display for FieldName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.0.name;
        match self.0.shape {
            Shape::Arc => write!(f, "Arc<{name}>")?,
            Shape::Option => write!(f, "Option<Arc<{name}>>")?,
            Shape::Vec => write!(f, "Vec<Arc<{name}>>")?,
            Shape::Value => f.write_str(name)?,
        }
        write_key(f, self.0.key.as_deref())
    }
}

/// Displays a [`Link`] as the service type itself.
pub(crate) struct ServiceName<'a>(&'a Link);

impl fmt::Display for ServiceName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)?;
        write_key(f, self.0.key.as_deref())
    }
}

fn write_key(f: &mut fmt::Formatter<'_>, key: Option<&str>) -> fmt::Result {
    match key {
        Some(key) => write!(f, " (key {key:?})"),
        None => Ok(()),
    }
}

/// Writes a chain: the first link as a service, the others as the fields
/// that needed them: `app::Worker -> Arc<dyn app::Clock>`.
pub(crate) fn write_chain(f: &mut fmt::Formatter<'_>, chain: &[Link]) -> fmt::Result {
    for (i, link) in chain.iter().enumerate() {
        if i == 0 {
            write!(f, "{}", link.as_service())?;
        } else {
            write!(f, " -> {}", link.as_field())?;
        }
    }
    Ok(())
}

/// A type name without module paths, for `help:` examples:
/// `dyn app::Clock` -> `dyn Clock`, `app::Cache<app::Key>` -> `Cache<Key>`.
pub(crate) fn short_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear(); // a path segment: drop it
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// The trait's own name in `dyn Trait + ..`, without generics: `Clock`.
pub(crate) fn trait_name(short: &str) -> Option<&str> {
    let rest = short.strip_prefix("dyn ")?;
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_paths() {
        assert_eq!(short_name("dyn app::Clock"), "dyn Clock");
        assert_eq!(short_name("app::db::Cache<app::Key, u8>"), "Cache<Key, u8>");
        assert_eq!(
            short_name("dyn app::Clock + core::marker::Send"),
            "dyn Clock + Send"
        );
        assert_eq!(short_name("u8"), "u8");
    }

    #[test]
    fn trait_names() {
        assert_eq!(trait_name("dyn Clock + Send"), Some("Clock"));
        assert_eq!(trait_name("dyn Handler<Req>"), Some("Handler"));
        assert_eq!(trait_name("Clock"), None);
    }

    #[test]
    fn chains_render_as_fields() {
        struct Chain(Vec<Link>);
        impl fmt::Display for Chain {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_chain(f, &self.0)
            }
        }
        let chain = Chain(vec![
            Link::new("app::Worker", None, Shape::Arc),
            Link::new("dyn app::Clock", Some("utc".into()), Shape::Arc),
            Link::new("app::Sink", None, Shape::Vec),
            Link::new("app::Tz", None, Shape::Option),
        ]);
        assert_eq!(
            chain.to_string(),
            "app::Worker -> Arc<dyn app::Clock> (key \"utc\") -> Vec<Arc<app::Sink>> -> Option<Arc<app::Tz>>"
        );
    }
}

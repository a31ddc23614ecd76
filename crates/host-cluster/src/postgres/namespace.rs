//! Where the crate's tables live: a schema and a table-name prefix, so
//! that several applications share one database without meeting.

use crate::ClusterError;

use super::sql::ident;

/// The schema and table-name prefix of the crate's tables. The default
/// is schema `public`, prefix `host_`: tables `host_leases`,
/// `host_claim_jobs`, `host_claims`, `host_fences`, and the crate's own
/// migrations table `host_cluster_migrations` (apart from an
/// application's `_sqlx_migrations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    schema: String,
    prefix: String,
}

impl Default for Namespace {
    fn default() -> Self {
        Self {
            schema: "public".to_owned(),
            prefix: "host_".to_owned(),
        }
    }
}

/// The longest table-name suffix, `cluster_migrations`, and PostgreSQL's
/// longest identifier: a longer prefix would be cut short silently.
const LONGEST_SUFFIX: usize = "cluster_migrations".len();
const LONGEST_IDENTIFIER: usize = 63;

impl Namespace {
    /// Tables named `<prefix>leases` and so on in `schema` (created by the
    /// migrations when missing).
    ///
    /// # Errors
    ///
    /// [`ClusterError::Invalid`] naming the `postgres schema` or the
    /// `postgres table prefix`: each takes lowercase ASCII letters, digits
    /// and underscores, not starting with a digit (the schema not empty),
    /// so that it needs no quoting rules and cannot inject SQL.
    pub fn new(schema: &str, prefix: &str) -> Result<Self, ClusterError> {
        check("postgres schema", schema, LONGEST_IDENTIFIER, false)?;
        check(
            "postgres table prefix",
            prefix,
            LONGEST_IDENTIFIER - LONGEST_SUFFIX,
            true,
        )?;
        Ok(Self {
            schema: schema.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The table-name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The qualified, quoted name of table `suffix`.
    fn table(&self, suffix: &str) -> String {
        format!(
            "{}.{}",
            ident(&self.schema),
            ident(&format!("{}{suffix}", self.prefix))
        )
    }

    pub(crate) fn tables(&self) -> Tables {
        Tables {
            schema: ident(&self.schema),
            leases: self.table("leases"),
            claim_jobs: self.table("claim_jobs"),
            claims: self.table("claims"),
            fences: self.table("fences"),
            migrations: self.table("cluster_migrations"),
        }
    }
}

/// The namespace's tables, quoted and qualified, ready for SQL text.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub(crate) schema: String,
    pub(crate) leases: String,
    pub(crate) claim_jobs: String,
    pub(crate) claims: String,
    pub(crate) fences: String,
    pub(crate) migrations: String,
}

fn check(
    what: &'static str,
    value: &str,
    longest: usize,
    may_be_empty: bool,
) -> Result<(), ClusterError> {
    let why = if value.is_empty() && !may_be_empty {
        "it is empty"
    } else if value.len() > longest {
        if may_be_empty {
            "it is longer than 45 bytes (table names hold at most 63)"
        } else {
            "it is longer than 63 bytes"
        }
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        "it may hold only lowercase ASCII letters, digits and underscores"
    } else if value.starts_with(|c: char| c.is_ascii_digit()) {
        "it starts with a digit"
    } else {
        return Ok(());
    };
    Err(ClusterError::Invalid {
        what,
        value: value.to_owned(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_public_and_host() {
        let tables = Namespace::default().tables();
        assert_eq!(tables.leases, "\"public\".\"host_leases\"");
        assert_eq!(tables.migrations, "\"public\".\"host_cluster_migrations\"");
    }

    #[test]
    fn bad_identifiers_are_refused_naming_which() {
        for (schema, prefix, what) in [
            ("", "p_", "postgres schema"),
            ("App", "p_", "postgres schema"),
            ("a\"b", "p_", "postgres schema"),
            ("1a", "p_", "postgres schema"),
            ("app", "p-", "postgres table prefix"),
            ("app", &"p".repeat(46), "postgres table prefix"),
        ] {
            match Namespace::new(schema, prefix) {
                Err(ClusterError::Invalid { what: found, .. }) => assert_eq!(found, what),
                other => panic!("{schema:?}/{prefix:?}: {other:?}"),
            }
        }
        Namespace::new("app_1", "").unwrap();
        Namespace::new("app", &"p".repeat(45)).unwrap();
    }
}

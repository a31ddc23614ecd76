//! The terms that wrote, read back from the work table, and the check that
//! no two of them overlapped.

use sqlx::{PgPool, Row};

/// One term's accepted work: its token, the term (`<instance>#<n>`, the
/// instance's n-th lead, so that a token handed out twice, as after a
/// Redis counter loss, still tells two terms apart), and its first and
/// last accepted write (seconds since the epoch, the database's clock).
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub token: i64,
    pub term: String,
    pub first: f64,
    pub last: f64,
}

/// The terms that wrote into `schema`'s work table, by their first write.
pub async fn read(admin: &PgPool, schema: &str) -> Vec<Term> {
    sqlx::raw_sql(&format!(
        "SELECT token, term, extract(epoch FROM min(at))::float8, \
         extract(epoch FROM max(at))::float8 \
         FROM {schema}.work GROUP BY token, term ORDER BY 3"
    ))
    .fetch_all(admin)
    .await
    .unwrap_or_else(|error| panic!("the work table of {schema}: {error}"))
    .iter()
    .map(|row| Term {
        token: row.get(0),
        term: row.get(1),
        first: row.get(2),
        last: row.get(3),
    })
    .collect()
}

/// Fails the test if a term wrote after the next one (by first write)
/// began: each term's writes all came after the previous term's last.
pub fn assert_no_overlap(terms: &[Term]) {
    for pair in terms.windows(2) {
        assert!(
            pair[0].last < pair[1].first,
            "term {} (token {}) wrote until {} after term {} (token {}) began at {}: {terms:?}",
            pair[0].term,
            pair[0].token,
            pair[0].last,
            pair[1].term,
            pair[1].token,
            pair[1].first
        );
    }
}

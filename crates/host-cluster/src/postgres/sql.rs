//! SQL text with its values inlined as literals.
//!
//! Every statement goes out as one simple query: no prepared statement,
//! named or unnamed, outlives it, so a transaction pooler may hand each
//! statement to any server connection. sqlx's unprepared queries
//! (`persistent(false)`) are not enough: they parse, then bind, each
//! ending in a Sync, and between the two PgBouncer in transaction mode may
//! move the client to another server connection, where the bind fails or,
//! worse, runs another client's unnamed statement.

use std::fmt::Write as _;
use std::time::Duration;

/// `value` as a string literal, correct whatever
/// `standard_conforming_strings` says (an `E''` string escapes both
/// quotes and backslashes). Values are checked to hold no control
/// characters, so no NUL reaches the server.
pub(crate) fn text(value: &str) -> String {
    let mut literal = String::with_capacity(value.len() + 3);
    literal.push_str("E'");
    for c in value.chars() {
        match c {
            '\'' => literal.push_str("''"),
            '\\' => literal.push_str("\\\\"),
            c => literal.push(c),
        }
    }
    literal.push('\'');
    literal
}

/// The longest span the store writes: 30 years, far inside what a
/// `timestamptz` holds, so that a huge time to live never overflows.
const LONGEST: Duration = Duration::from_secs(86400 * 365 * 30);

/// `span` as an interval expression, to the microsecond.
pub(crate) fn interval(span: Duration) -> String {
    let micros = span.min(LONGEST).as_micros();
    let mut sql = String::new();
    let _ = write!(sql, "({micros} * interval '1 microsecond')");
    sql
}

/// A quoted identifier; [`Namespace`](super::Namespace) checks that it
/// holds only lowercase letters, digits and underscores.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(text("a'b\\c"), "E'a''b\\\\c'");
        assert_eq!(text(""), "E''");
    }

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(
            interval(Duration::from_millis(1500)),
            "(1500000 * interval '1 microsecond')"
        );
        assert_eq!(interval(Duration::MAX), interval(LONGEST));
    }
}

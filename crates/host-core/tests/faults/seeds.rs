//! Which seeds a run of the fault suite covers: `HOST_FAULT_SEED=17` reruns
//! one; otherwise a count (`20`: seeds 0 to 19), a range (`100..200`) or a
//! list (`3,17,42`) from a variable, or a default.

use std::ops::Range;

/// The seeds to run: `HOST_FAULT_SEED` if set, else what `count_variable`
/// says, else `0..default`.
///
/// # Panics
///
/// A variable that is set but cannot be read as a seed, a count, a range or
/// a list: the message names the variable and the value.
pub(crate) fn seeds(count_variable: &str, default: u64) -> Vec<u64> {
    if let Some(value) = read("HOST_FAULT_SEED") {
        let seed = value.trim().parse().unwrap_or_else(|_| {
            panic!("HOST_FAULT_SEED={value:?}: not a seed (a whole number such as 17)")
        });
        return vec![seed];
    }
    match read(count_variable) {
        Some(value) => parse(&value).unwrap_or_else(|| {
            panic!(
                "{count_variable}={value:?}: neither a count (`20`), a range (`100..200`) nor \
                 a list (`3,17,42`) of seeds"
            )
        }),
        None => (0..default).collect(),
    }
}

fn read(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// A count, a range or a list of seeds.
fn parse(value: &str) -> Option<Vec<u64>> {
    let value = value.trim();
    if let Some((start, end)) = value.split_once("..") {
        let range = Range {
            start: start.trim().parse().ok()?,
            end: end.trim().parse().ok()?,
        };
        return (!range.is_empty()).then(|| range.collect());
    }
    if value.contains(',') {
        return value
            .split(',')
            .map(|seed| seed.trim().parse().ok())
            .collect();
    }
    let count: u64 = value.parse().ok()?;
    Some((0..count).collect())
}

#[test]
fn a_count_a_range_and_a_list_are_read() {
    assert_eq!(parse("3"), Some(vec![0, 1, 2]));
    assert_eq!(parse(" 5..8 "), Some(vec![5, 6, 7]));
    assert_eq!(parse("3, 17,42"), Some(vec![3, 17, 42]));
    assert_eq!(parse("8..5"), None);
    assert_eq!(parse("many"), None);
    assert_eq!(parse("1,x"), None);
}

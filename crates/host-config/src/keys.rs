//! Keys match in any case, as in .NET's configuration: layers merge key by
//! key whatever the case (the first spelling stays), one source may not
//! spell a key twice, and a section binds to its type's fields in any case.
//! Beneath `logging.level` the keys are tracing targets and keep their case.

use figment::value::{Dict, Value};

use crate::Problem;
use crate::shape::Shape;

/// Tables whose keys are case-sensitive data: tracing targets.
const CASE_SENSITIVE: &[&str] = &["logging.level"];

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether the keys of the table at `path` keep their case.
fn case_sensitive(path: &str) -> bool {
    CASE_SENSITIVE
        .iter()
        .any(|table| path.eq_ignore_ascii_case(table))
}

/// The key of `dict` that `key` names: itself, or the one key equal to it
/// in any case (none when the table is case-sensitive).
fn matching<'a>(dict: &'a Dict, key: &str, path: &str) -> Option<&'a String> {
    if let Some((found, _)) = dict.get_key_value(key) {
        return Some(found);
    }
    if case_sensitive(path) {
        return None;
    }
    dict.keys()
        .find(|candidate| candidate.eq_ignore_ascii_case(key))
}

/// `dict`'s keys spelled as `existing` (what the layers below set) spells
/// them, so that a later layer overrides an earlier one whatever the case.
pub(crate) fn respell(dict: Dict, existing: Option<&Dict>, path: &str) -> Dict {
    let Some(existing) = existing else {
        return dict;
    };
    dict.into_iter()
        .map(|(key, value)| {
            let key = matching(existing, &key, path).cloned().unwrap_or(key);
            let value = match value {
                Value::Dict(tag, inner) => {
                    let below = existing.get(&key).and_then(Value::as_dict);
                    Value::Dict(tag, respell(inner, below, &child(path, &key)))
                }
                other => other,
            };
            (key, value)
        })
        .collect()
}

/// Adds `dict`'s keys (spelled by [`respell`]) to `known`, the keys the
/// layers merged so far set: tables merge, a later value replaces an earlier
/// one, as figment merges. Only the spelling of a leaf matters here.
pub(crate) fn note(known: &mut Dict, dict: &Dict) {
    for (key, value) in dict {
        match value {
            Value::Dict(_, inner) => {
                let entry = known
                    .entry(key.clone())
                    .or_insert_with(|| Value::from(Dict::new()));
                if !matches!(entry, Value::Dict(..)) {
                    *entry = Value::from(Dict::new());
                }
                if let Value::Dict(_, below) = entry {
                    note(below, inner);
                }
            }
            _ => {
                known.insert(key.clone(), Value::from(false));
            }
        }
    }
}

/// Two keys of one table of `dict` (one source) that differ only in case:
/// they would bind to the same field, and which wins would be a guess.
pub(crate) fn clashes(dict: &Dict, path: &str, origin: &str, out: &mut Vec<Problem>) {
    let keys: Vec<&String> = dict.keys().collect();
    if !case_sensitive(path) {
        for (index, key) in keys.iter().enumerate() {
            if let Some(other) = keys[..index]
                .iter()
                .find(|other| other.eq_ignore_ascii_case(key))
            {
                out.push(Problem::new(
                    child(path, other),
                    format!(
                        "and `{}` are both set, and keys match in any case: keep one",
                        child(path, key)
                    ),
                    Some(origin.to_owned()),
                ));
            }
        }
    }
    for (key, value) in dict {
        if let Value::Dict(_, inner) = value {
            clashes(inner, &child(path, key), origin, out);
        }
    }
}

/// The value at the dotted `key` (a list's item by its index), found in
/// any case, with the key as the configuration spells it.
pub(crate) fn find(root: &Value, key: &str) -> Option<(String, Value)> {
    let mut value = root;
    let mut path = String::new();
    for segment in key.split('.') {
        let (found, inner) = match value {
            Value::Dict(_, dict) => {
                let found = matching(dict, segment, &path)?;
                (found.clone(), &dict[found])
            }
            Value::Array(_, items) => (
                segment.to_owned(),
                items.get(segment.parse::<usize>().ok()?)?,
            ),
            _ => return None,
        };
        value = inner;
        path = child(&path, &found);
    }
    Some((path, value.clone()))
}

/// A key that no field of its struct takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unknown {
    /// The full key: the section, the fields, the key as spelled.
    pub(crate) key: String,
    /// The struct's fields.
    pub(crate) expected: Vec<&'static str>,
}

/// `dict` with its keys renamed to the fields of `shape` they match in any
/// case. A key no field takes is left out and listed in `unknown`, unless
/// the struct refuses unknown fields itself: then serde reports it.
pub(crate) fn to_fields(dict: Dict, shape: &Shape, path: &str, unknown: &mut Vec<Unknown>) -> Dict {
    let (fields, denies) = match shape {
        Shape::Struct { fields, denies } => (fields, denies),
        // A map's keys are data; its values have fields.
        Shape::Map(inner) => {
            return dict
                .into_iter()
                .map(|(key, value)| {
                    let value = value_to_fields(value, inner, &child(path, &key), unknown);
                    (key, value)
                })
                .collect();
        }
        Shape::List(_) | Shape::Open => return dict,
    };
    let mut renamed = Dict::new();
    for (key, value) in dict {
        let field = fields.keys().find(|field| **field == key).or_else(|| {
            let mut matches = fields
                .keys()
                .filter(|field| field.eq_ignore_ascii_case(&key));
            match (matches.next(), matches.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        });
        let Some(field) = field else {
            if *denies {
                renamed.insert(key, value);
            } else {
                unknown.push(Unknown {
                    key: child(path, &key),
                    expected: fields.keys().copied().collect(),
                });
            }
            continue;
        };
        let value = value_to_fields(value, &fields[field], &child(path, field), unknown);
        // Two spellings of one field come from one source and were refused
        // when it loaded; should one slip through, the exact spelling wins.
        if renamed.contains_key(*field) && key != *field {
            continue;
        }
        renamed.insert((*field).to_owned(), value);
    }
    renamed
}

/// A value with the keys of its tables (a list's items' too) renamed to
/// the fields of `shape`, as [`to_fields`].
fn value_to_fields(value: Value, shape: &Shape, path: &str, unknown: &mut Vec<Unknown>) -> Value {
    match (value, shape) {
        (Value::Dict(tag, dict), _) => Value::Dict(tag, to_fields(dict, shape, path, unknown)),
        (Value::Array(tag, items), Shape::List(item)) => Value::Array(
            tag,
            items
                .into_iter()
                .enumerate()
                .map(|(index, value)| {
                    value_to_fields(value, item, &child(path, &index.to_string()), unknown)
                })
                .collect(),
        ),
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(value: serde_json::Value) -> Dict {
        let value: Value = serde_json::from_value(value).expect("a value");
        value.into_dict().expect("a table")
    }

    #[test]
    fn a_later_layer_takes_the_spelling_already_there() {
        let existing = dict(serde_json::json!({"Greeting": {"Message": "a"}}));
        let next = dict(serde_json::json!({"greeting": {"message": "b", "count": 1}}));
        let next = respell(next, Some(&existing), "");
        assert_eq!(
            next,
            dict(serde_json::json!({"Greeting": {"Message": "b", "count": 1}}))
        );
    }

    #[test]
    fn tracing_targets_keep_their_case() {
        let existing = dict(serde_json::json!({"Logging": {"Level": {"App": "debug"}}}));
        let next = dict(serde_json::json!({"logging": {"level": {"app": "warn"}}}));
        let next = respell(next, Some(&existing), "");
        assert_eq!(
            next,
            dict(serde_json::json!({"Logging": {"Level": {"app": "warn"}}}))
        );
        let mut problems = Vec::new();
        clashes(&existing, "", "x", &mut problems);
        clashes(
            &dict(serde_json::json!({"logging": {"level": {"A": "info", "a": "warn"}}})),
            "",
            "x",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn one_source_spelling_a_key_twice_is_named() {
        let mut problems = Vec::new();
        clashes(
            &dict(serde_json::json!({"Greeting": {"Message": 1, "message": 2}, "greeting": {}})),
            "",
            "appsettings.json",
            &mut problems,
        );
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "`Greeting` and `greeting` are both set, and keys match in any case: keep one\
                 \n  from: appsettings.json",
                "`Greeting.Message` and `Greeting.message` are both set, and keys match in any \
                 case: keep one\n  from: appsettings.json",
            ]
        );
    }

    #[test]
    fn keys_are_found_in_any_case() {
        let root = Value::from(dict(serde_json::json!({"Greeting": {"Message": "a"}})));
        assert_eq!(
            find(&root, "greeting.message").map(|(key, _)| key),
            Some("Greeting.Message".to_owned())
        );
        assert_eq!(find(&root, "greeting.other"), None);
        let root = Value::from(dict(serde_json::json!({"List": [{"Name": "a"}]})));
        assert_eq!(
            find(&root, "list.0.name"),
            Some(("List.0.Name".to_owned(), Value::from("a".to_owned())))
        );
        assert_eq!(find(&root, "list.1.name"), None);
    }
}

//! The shape of a type as serde's derive declares it: the field names of
//! each struct, found by deserializing the type from a probe that answers
//! one path at a time. Binding uses it to match keys to fields in any case
//! and to name the keys no field takes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

/// Deeper than this, a (recursive) type is taken as open.
const MAX_DEPTH: usize = 16;

/// What a type is, as far as keys go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A struct: its fields (as serde names them) and their shapes;
    /// `denies` when it refuses unknown fields itself.
    Struct {
        fields: BTreeMap<&'static str, Shape>,
        denies: bool,
    },
    /// A list (or a set) whose items have a shape.
    List(Box<Shape>),
    /// A map with string keys (data, kept as spelled) whose values have a
    /// shape.
    Map(Box<Shape>),
    /// Anything else: a value, an enum, a struct with a `#[serde(flatten)]`
    /// field (serde reads those as maps of anything), a map whose keys are
    /// not strings, or a type that read nothing.
    Open,
}

/// The step of a probe's path into a list's item.
const ITEM: &str = "[]";
/// The step of a probe's path into a map's value.
const VALUE: &str = "{}";
/// The key a probe offers a map.
const MAP_KEY: &str = "key";

impl Shape {
    /// The shape of `T`. A `Deserialize` that panics on the probe makes
    /// that part open: the real binding reports its panic.
    pub(crate) fn of<T: DeserializeOwned>() -> Shape {
        Self::at::<T>(&mut Vec::new())
    }

    fn at<T: DeserializeOwned>(path: &mut Vec<&'static str>) -> Shape {
        if path.len() > MAX_DEPTH {
            return Shape::Open;
        }
        let names = match probe::<T>(path, None) {
            Some(Found::Struct(names)) => names,
            Some(Found::List) => return Self::within::<T>(path, ITEM, Shape::List),
            Some(Found::Map) => return Self::within::<T>(path, VALUE, Shape::Map),
            _ => return Shape::Open,
        };
        let denies = matches!(probe::<T>(path, Some(UNKNOWN_KEY)), Some(Found::Denies));
        let mut fields = BTreeMap::new();
        for name in names {
            path.push(name);
            fields.insert(*name, Self::at::<T>(path));
            path.pop();
        }
        Shape::Struct { fields, denies }
    }

    /// A list's or a map's shape: open unless its items have fields.
    fn within<T: DeserializeOwned>(
        path: &mut Vec<&'static str>,
        step: &'static str,
        shape: fn(Box<Shape>) -> Shape,
    ) -> Shape {
        path.push(step);
        let inner = Self::at::<T>(path);
        path.pop();
        match inner {
            Shape::Open => Shape::Open,
            inner => shape(Box::new(inner)),
        }
    }
}

/// A key no struct has, to learn whether a struct refuses unknown keys.
const UNKNOWN_KEY: &str = "\u{0}host-config-probe";

/// What the probe met at the end of its path.
enum Found {
    Struct(&'static [&'static str]),
    List,
    Map,
    /// A struct that refused the unknown key.
    Denies,
}

/// Runs `T::deserialize` on a probe that walks `path` (one field per
/// struct) and records what is there; with `extra`, the struct at the end
/// of the path is offered that key (and nothing else) instead.
fn probe<T: DeserializeOwned>(path: &[&'static str], extra: Option<&'static str>) -> Option<Found> {
    let found = RefCell::new(None);
    let probe = Probe {
        path,
        extra,
        found: &found,
    };
    let _ = catch_unwind(AssertUnwindSafe(|| T::deserialize(probe)));
    found.into_inner()
}

#[derive(Clone, Copy)]
struct Probe<'a> {
    path: &'a [&'static str],
    extra: Option<&'static str>,
    found: &'a RefCell<Option<Found>>,
}

/// The probe's error: only whether a struct refused a key matters.
#[derive(Debug)]
struct ProbeError {
    unknown_field: bool,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Self {
            unknown_field: false,
        }
    }

    fn unknown_field(_: &str, _: &'static [&'static str]) -> Self {
        Self {
            unknown_field: true,
        }
    }
}

const STOP: ProbeError = ProbeError {
    unknown_field: false,
};

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        Err(STOP)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        match (self.path.split_first(), self.extra) {
            (None, None) => {
                *self.found.borrow_mut() = Some(Found::Struct(fields));
                Err(STOP)
            }
            (None, Some(key)) => {
                let result = visitor.visit_map(OneKey {
                    key: Some(key),
                    value: None,
                    _de: PhantomData,
                });
                if let Err(ProbeError {
                    unknown_field: true,
                }) = &result
                {
                    *self.found.borrow_mut() = Some(Found::Denies);
                }
                result
            }
            (Some((head, rest)), _) if fields.contains(head) => visitor.visit_map(OneKey {
                key: Some(head),
                value: Some(Probe { path: rest, ..self }),
                _de: PhantomData,
            }),
            (Some(_), _) => Err(STOP),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        match self.path.split_first() {
            None if self.extra.is_none() => {
                *self.found.borrow_mut() = Some(Found::List);
                Err(STOP)
            }
            Some((&ITEM, rest)) => visitor.visit_seq(OneItem(Some(Probe { path: rest, ..self }))),
            _ => Err(STOP),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        match self.path.split_first() {
            None if self.extra.is_none() => {
                *self.found.borrow_mut() = Some(Found::Map);
                Err(STOP)
            }
            Some((&VALUE, rest)) => visitor.visit_map(OneKey {
                key: Some(MAP_KEY),
                value: Some(Probe { path: rest, ..self }),
                _de: PhantomData,
            }),
            _ => Err(STOP),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct enum identifier
    }
}

/// A list of one item: the probe further down the path.
struct OneItem<'a>(Option<Probe<'a>>);

impl<'de> de::SeqAccess<'de> for OneItem<'_> {
    type Error = ProbeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, ProbeError> {
        match self.0.take() {
            Some(probe) => seed.deserialize(probe).map(Some),
            None => Ok(None),
        }
    }
}

/// A map of one key, whose value is the probe further down the path (or,
/// for the unknown key, anything that reads it as ignored).
struct OneKey<'a, 'de> {
    key: Option<&'static str>,
    value: Option<Probe<'a>>,
    _de: PhantomData<&'de ()>,
}

impl<'de> MapAccess<'de> for OneKey<'_, 'de> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        match self.key.take() {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        match self.value.take() {
            Some(probe) => seed.deserialize(probe),
            None => seed.deserialize(de::value::UnitDeserializer::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Outer {
        name: String,
        #[serde(with = "crate::duration")]
        interval: Duration,
        inner: Option<Inner>,
        boxed: Box<Inner>,
        map: HashMap<String, Inner>,
        #[serde(rename = "renamedKey")]
        renamed: u32,
        list: Vec<Inner>,
        names: Vec<String>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        port: u16,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Flattened {
        #[serde(flatten)]
        rest: HashMap<String, String>,
    }

    #[allow(dead_code)]
    #[derive(Deserialize)]
    struct Recursive {
        next: Option<Box<Recursive>>,
    }

    fn fields(shape: &Shape) -> Vec<&'static str> {
        match shape {
            Shape::Struct { fields, .. } => fields.keys().copied().collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn structs_name_their_fields_all_the_way_down() {
        let shape = Shape::of::<Outer>();
        assert_eq!(
            fields(&shape),
            [
                "boxed",
                "inner",
                "interval",
                "list",
                "map",
                "name",
                "names",
                "renamedKey"
            ]
        );
        let Shape::Struct {
            fields: outer,
            denies,
        } = &shape
        else {
            panic!("a struct");
        };
        assert!(!denies);
        for nested in ["inner", "boxed"] {
            assert_eq!(
                outer[nested],
                Shape::Struct {
                    fields: [("port", Shape::Open)].into_iter().collect(),
                    denies: true
                }
            );
        }
        assert_eq!(outer["map"], Shape::Map(Box::new(outer["inner"].clone())));
        assert_eq!(outer["list"], Shape::List(Box::new(outer["inner"].clone())));
        assert_eq!(outer["names"], Shape::Open);
        assert_eq!(outer["interval"], Shape::Open);
    }

    #[test]
    fn maps_flatten_and_values_are_open_and_recursion_ends() {
        assert_eq!(Shape::of::<Flattened>(), Shape::Open);
        assert_eq!(Shape::of::<HashMap<String, u32>>(), Shape::Open);
        assert_eq!(Shape::of::<HashMap<u32, Flattened>>(), Shape::Open);
        assert_eq!(Shape::of::<u32>(), Shape::Open);
        let mut shape = Shape::of::<Recursive>();
        let mut depth = 0;
        while let Shape::Struct { fields, .. } = shape {
            shape = fields["next"].clone();
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH + 1);
    }
}

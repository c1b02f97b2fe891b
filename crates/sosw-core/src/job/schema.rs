//! The job schema: which attributes of a job are chunked, outermost first.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The most chunkable attributes a schema may name. Chunking recurses once per attribute, so this also
/// bounds the recursion depth.
pub const MAX_CHUNKABLE_ATTRS: usize = 64;

/// The one key of a job schema.
const CHUNKABLE_ATTRS: &str = "chunkable_attrs";

/// A job schema (sosw 0.7's `job_schema` and each entry of `job_schema_variants`).
///
/// Names are singular (`section`, `store`, `product`): the chunker accepts both spellings in a job and
/// writes the plural (`sections`) into tasks by appending `s`. That is why, as in sosw 0.7, no name may
/// end in `s`.
///
/// In config it is `{"chunkable_attrs": [["section", {}], ["store", {}]]}` (sosw 0.7's shape; the second
/// element of each pair is ignored, as it was) or `{"chunkable_attrs": ["section", "store"]}`. A missing
/// or null `chunkable_attrs` means none (sosw 0.7's default `job_schema` is `{}`). It deserializes from
/// any serde format with that shape; a problem is reported at the offending entry (`chunkable_attrs[1]`),
/// which [`crate::config::parse_config`] turns into the full key path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobSchema {
    chunkable_attrs: Vec<String>,
}

impl JobSchema {
    /// A schema chunking `attrs` in this order. Names must be non-empty, distinct, singular (not ending in
    /// `s`), and at most [`MAX_CHUNKABLE_ATTRS`] of them.
    pub fn new<I, S>(attrs: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let chunkable_attrs: Vec<String> = attrs.into_iter().map(Into::into).collect();
        for (i, name) in chunkable_attrs.iter().enumerate() {
            check_name(i, name, &chunkable_attrs[..i])
                .map_err(|problem| schema_error(&format!("{CHUNKABLE_ATTRS}[{i}]"), problem))?;
        }
        Ok(JobSchema { chunkable_attrs })
    }

    /// Reads sosw 0.7's config shape (see the type's docs) from a JSON value. Unknown keys are rejected.
    pub fn from_config(value: &Value) -> Result<Self> {
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            schema_error(&path, err.into_inner().to_string())
        })
    }

    /// The chunkable attributes, singular, outermost first.
    pub fn chunkable_attrs(&self) -> &[String] {
        &self.chunkable_attrs
    }

    /// The chunkable attribute names as string slices, outermost first.
    pub fn attr_names(&self) -> Vec<&str> {
        self.chunkable_attrs.iter().map(String::as_str).collect()
    }

    /// Whether the schema chunks nothing (the job is only split by `period`).
    pub fn is_empty(&self) -> bool {
        self.chunkable_attrs.is_empty()
    }
}

impl Serialize for JobSchema {
    /// Writes sosw 0.7's shape, `{"chunkable_attrs": [["section", {}], ...]}`, so Python reads it too.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let pairs: Vec<Value> = self
            .chunkable_attrs
            .iter()
            .map(|name| Value::Array(vec![Value::String(name.clone()), Value::Object(Map::new())]))
            .collect();
        let mut object = Map::new();
        object.insert(CHUNKABLE_ATTRS.into(), Value::Array(pairs));
        Value::Object(object).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JobSchema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(SchemaVisitor)
    }
}

/// The schema object: only `chunkable_attrs`.
struct SchemaVisitor;

impl<'de> Visitor<'de> for SchemaVisitor {
    type Value = JobSchema;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `chunkable_attrs`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<JobSchema, A::Error> {
        let mut chunkable_attrs = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != CHUNKABLE_ATTRS {
                return Err(de::Error::unknown_field(&key, &[CHUNKABLE_ATTRS]));
            }
            if chunkable_attrs.is_some() {
                return Err(de::Error::duplicate_field(CHUNKABLE_ATTRS));
            }
            chunkable_attrs = Some(map.next_value_seed(AttrList)?);
        }
        Ok(JobSchema {
            chunkable_attrs: chunkable_attrs.unwrap_or_default(),
        })
    }
}

/// The `chunkable_attrs` list (null is an empty list). Each entry is checked against the ones before it
/// while it is read, so an error lands at the entry's own index.
struct AttrList;

impl<'de> DeserializeSeed<'de> for AttrList {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttrList {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of attribute names or [name, {}] pairs")
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Vec<String>, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Vec<String>, A::Error> {
        let mut names: Vec<String> = Vec::new();
        loop {
            let entry = AttrEntry {
                index: names.len(),
                earlier: &names,
            };
            match seq.next_element_seed(entry)? {
                Some(name) => names.push(name),
                None => return Ok(names),
            }
        }
    }
}

/// One entry: `"name"` or `["name"]` / `["name", {...}]`, validated against the names before it.
struct AttrEntry<'a> {
    index: usize,
    earlier: &'a [String],
}

impl<'de> DeserializeSeed<'de> for AttrEntry<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl AttrEntry<'_> {
    fn checked<E: de::Error>(&self, name: String) -> std::result::Result<String, E> {
        check_name(self.index, &name, self.earlier).map_err(E::custom)?;
        Ok(name)
    }
}

impl<'de> Visitor<'de> for AttrEntry<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute name or a [name, {}] pair")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> std::result::Result<String, E> {
        self.checked(name.to_owned())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<String, A::Error> {
        let name: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        // sosw 0.7's options object: read and ignored, as sosw 0.7 did.
        let _options: Option<Map<String, Value>> = seq.next_element()?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        self.checked(name)
    }
}

/// What is wrong with the name at `index`, if anything: empty, plural, repeated, or one too many.
fn check_name(index: usize, name: &str, earlier: &[String]) -> std::result::Result<(), String> {
    if index >= MAX_CHUNKABLE_ATTRS {
        return Err(format!(
            "more than {MAX_CHUNKABLE_ATTRS} attributes; at most {MAX_CHUNKABLE_ATTRS} are supported"
        ));
    }
    if name.is_empty() {
        return Err("the attribute name is empty".to_owned());
    }
    if name.ends_with('s') {
        return Err(format!(
            "`{name}` ends in `s`: a chunkable attribute is a singular name not ending in `s` (jobs use \
             the name plus `s`); use `{}`",
            name.trim_end_matches('s')
        ));
    }
    if earlier.iter().any(|e| e == name) {
        return Err(format!("`{name}` is listed twice"));
    }
    Ok(())
}

fn schema_error(path: &str, message: impl Into<String>) -> Error {
    Error::invalid("job schema", format!("at `{path}`: {}", message.into()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_sosw_pairs_and_plain_names() {
        let pairs =
            JobSchema::from_config(&json!({"chunkable_attrs": [["topic", {}], ["word", {}]]}))
                .expect("sosw 0.7 shape");
        let plain = JobSchema::from_config(&json!({"chunkable_attrs": ["topic", "word"]}))
            .expect("plain names");
        assert_eq!(pairs.chunkable_attrs(), ["topic", "word"]);
        assert_eq!(pairs, plain);
    }

    #[test]
    fn missing_chunkable_attrs_is_an_empty_schema() {
        let schema = JobSchema::from_config(&json!({})).expect("sosw's default job_schema");
        assert!(schema.is_empty());
    }

    #[test]
    fn names_ending_in_s_are_rejected_with_the_singular_suggested() {
        let err = JobSchema::from_config(&json!({"chunkable_attrs": [["sections", {}]]}))
            .expect_err("plural name");
        let msg = err.to_string();
        assert!(
            msg.contains("chunkable_attrs[0]") && msg.contains("`section`"),
            "{msg}"
        );
    }

    #[test]
    fn bad_shapes_name_the_entry() {
        for (config, path) in [
            (
                json!({"chunkable_attrs": [["a", {}], 5]}),
                "chunkable_attrs[1]",
            ),
            (json!({"chunkable_attrs": [[]]}), "chunkable_attrs[0]"),
            (
                json!({"chunkable_attrs": [[5, {}]]}),
                "chunkable_attrs[0][0]",
            ),
            (
                json!({"chunkable_attrs": [["a", 5]]}),
                "chunkable_attrs[0][1]",
            ),
            (json!({"chunkable_attrs": ["a"], "x": 1}), "x"),
            (json!({"chunkable_attrs": ["a", "a"]}), "chunkable_attrs[1]"),
            (json!({"chunkable_attrs": [""]}), "chunkable_attrs[0]"),
            (json!({"chunkable_attrs": "a"}), "chunkable_attrs"),
            (json!({"chunkable_attr": []}), "chunkable_attr"),
            (json!([]), "."),
        ] {
            let msg = JobSchema::from_config(&config)
                .expect_err("bad shape")
                .to_string();
            assert!(msg.contains(&format!("`{path}`")), "{path}: {msg}");
        }
    }

    #[test]
    fn too_many_attributes_are_rejected() {
        let names = (0..=MAX_CHUNKABLE_ATTRS).map(|i| format!("a{i}"));
        assert!(JobSchema::new(names).is_err());
    }

    #[test]
    fn serde_round_trips_through_the_sosw_shape() {
        let schema = JobSchema::new(["section", "store"]).expect("valid");
        let value = serde_json::to_value(&schema).expect("serializes");
        assert_eq!(
            value,
            json!({"chunkable_attrs": [["section", {}], ["store", {}]]})
        );
        let back: JobSchema = serde_json::from_value(value).expect("deserializes");
        assert_eq!(back, schema);
        let bad = serde_json::from_value::<JobSchema>(json!({"chunkable_attrs": ["stores"]}));
        assert!(bad.is_err());
    }
}

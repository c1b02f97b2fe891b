//! The job schema: which attributes of a job are chunked, outermost first.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::task::json_kind;

/// The most chunkable attributes a schema may name. Chunking recurses once per attribute, so this also
/// bounds the recursion depth.
pub const MAX_CHUNKABLE_ATTRS: usize = 64;

/// A job schema (sosw 0.7's `job_schema` and each entry of `job_schema_variants`).
///
/// Names are singular (`section`, `store`, `product`): the chunker accepts both spellings in a job and
/// writes the plural (`sections`) into tasks by appending `s`. That is why, as in sosw 0.7, no name may
/// end in `s`.
///
/// In config it is `{"chunkable_attrs": [["section", {}], ["store", {}]]}` (sosw 0.7's shape; the second
/// element of each pair is ignored, as it was) or `{"chunkable_attrs": ["section", "store"]}`. A missing
/// `chunkable_attrs` means none (sosw 0.7's default `job_schema` is `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
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
        if chunkable_attrs.len() > MAX_CHUNKABLE_ATTRS {
            return Err(schema_error(
                "chunkable_attrs",
                format!(
                    "{} attributes; at most {MAX_CHUNKABLE_ATTRS} are supported",
                    chunkable_attrs.len()
                ),
            ));
        }
        for (i, name) in chunkable_attrs.iter().enumerate() {
            check_name(i, name, &chunkable_attrs[..i])?;
        }
        Ok(JobSchema { chunkable_attrs })
    }

    /// Reads sosw 0.7's config shape (see the type's docs). Unknown keys are rejected.
    pub fn from_config(value: &Value) -> Result<Self> {
        let Value::Object(object) = value else {
            return Err(schema_error(
                ".",
                format!("expected an object, found {}", json_kind(value)),
            ));
        };
        if let Some(key) = object.keys().find(|k| *k != "chunkable_attrs") {
            return Err(schema_error(
                key,
                "unknown key; a job schema has only `chunkable_attrs`",
            ));
        }
        match object.get("chunkable_attrs") {
            None | Some(Value::Null) => Ok(JobSchema::default()),
            Some(Value::Array(entries)) => {
                let names = entries
                    .iter()
                    .enumerate()
                    .map(|(i, entry)| entry_name(i, entry))
                    .collect::<Result<Vec<_>>>()?;
                JobSchema::new(names)
            }
            Some(other) => Err(schema_error(
                "chunkable_attrs",
                format!("expected an array, found {}", json_kind(other)),
            )),
        }
    }

    /// The chunkable attributes, singular, outermost first.
    pub fn chunkable_attrs(&self) -> &[String] {
        &self.chunkable_attrs
    }

    /// Whether the schema chunks nothing (the job is only split by `period`).
    pub fn is_empty(&self) -> bool {
        self.chunkable_attrs.is_empty()
    }
}

impl TryFrom<Value> for JobSchema {
    type Error = Error;

    fn try_from(value: Value) -> Result<Self> {
        JobSchema::from_config(&value)
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
        object.insert("chunkable_attrs".into(), Value::Array(pairs));
        Value::Object(object).serialize(serializer)
    }
}

/// The name in one `chunkable_attrs` entry: `"name"` or `["name", {...}]`.
fn entry_name(index: usize, entry: &Value) -> Result<String> {
    match entry {
        Value::String(name) => Ok(name.clone()),
        Value::Array(pair) => match pair.first() {
            Some(Value::String(name)) => Ok(name.clone()),
            _ => Err(schema_error(
                &format!("chunkable_attrs[{index}][0]"),
                "expected the attribute name as a string",
            )),
        },
        other => Err(schema_error(
            &format!("chunkable_attrs[{index}]"),
            format!(
                "expected a name or a [name, options] pair, found {}",
                json_kind(other)
            ),
        )),
    }
}

fn check_name(index: usize, name: &str, earlier: &[String]) -> Result<()> {
    let path = format!("chunkable_attrs[{index}]");
    if name.is_empty() {
        return Err(schema_error(&path, "the attribute name is empty"));
    }
    if name.ends_with('s') {
        return Err(schema_error(
            &path,
            format!(
                "`{name}` ends in `s`; use the singular form (e.g. `{}`): the plural is derived by appending `s`",
                name.trim_end_matches('s')
            ),
        ));
    }
    if earlier.iter().any(|e| e == name) {
        return Err(schema_error(&path, format!("`{name}` is listed twice")));
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
            (json!({"chunkable_attrs": [[]]}), "chunkable_attrs[0][0]"),
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

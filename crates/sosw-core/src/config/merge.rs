//! Deep merge of JSON config documents.
//!
//! [`deep_merge`] lays one document over another: objects merge key by key, recursively; every other
//! value, lists included, is replaced by the overlay's value (`null` too).
//!
//! This deliberately differs from sosw 0.7's `recursive_update` (bug B18), which merged lists from both
//! sides into one list of unique elements through a `set`, so order was lost: a scheduler's
//! `job_schema.chunkable_attrs`, whose order is the chunking order, could come out reordered, and a list
//! could never be shortened by a later document. Here the later document's list is the list.

use serde_json::Value;

/// Lays `overlay` over `base`: objects merge recursively, anything else in `overlay` replaces what is
/// in `base`.
pub fn deep_merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_table() {
        let cases = [
            (
                "disjoint keys are united",
                json!({"a": 1}),
                json!({"b": 2}),
                json!({"a": 1, "b": 2}),
            ),
            (
                "scalars are replaced",
                json!({"a": 1}),
                json!({"a": "x"}),
                json!({"a": "x"}),
            ),
            (
                "objects merge recursively",
                json!({"t": {"a": 1, "n": {"x": 1, "y": 2}}}),
                json!({"t": {"b": 2, "n": {"y": 3}}}),
                json!({"t": {"a": 1, "b": 2, "n": {"x": 1, "y": 3}}}),
            ),
            (
                "lists are replaced, order kept (unlike sosw 0.7, B18)",
                json!({"l": [["topic", {}], ["word", {}]]}),
                json!({"l": [["word", {}], ["topic", {}]]}),
                json!({"l": [["word", {}], ["topic", {}]]}),
            ),
            (
                "a list can be shortened",
                json!({"l": [1, 2, 3]}),
                json!({"l": [1]}),
                json!({"l": [1]}),
            ),
            (
                "null replaces",
                json!({"a": {"b": 1}}),
                json!({"a": null}),
                json!({"a": null}),
            ),
            (
                "an object replaces a scalar",
                json!({"a": 1}),
                json!({"a": {"b": 1}}),
                json!({"a": {"b": 1}}),
            ),
            (
                "a scalar replaces an object",
                json!({"a": {"b": 1}}),
                json!({"a": 2}),
                json!({"a": 2}),
            ),
            (
                "an empty overlay changes nothing",
                json!({"a": [1]}),
                json!({}),
                json!({"a": [1]}),
            ),
            (
                "a non-object overlay replaces the root",
                json!({"a": 1}),
                json!([1]),
                json!([1]),
            ),
        ];
        for (name, mut base, overlay, expected) in cases {
            deep_merge(&mut base, overlay);
            assert_eq!(base, expected, "{name}");
        }
    }
}

//! The scheduler event and the job in it, as sosw 0.7 accepted them.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::task::json_kind;

/// Longest accepted `job_id` (task ids are built from it) or `labourer_id`, in bytes.
pub const MAX_JOB_ID_LEN: usize = 256;

/// Hex digits kept from the SHA-256 of a derived job id (80 bits).
pub const DERIVED_JOB_ID_HEX_LEN: usize = 20;

/// Deepest JSON nesting hashed for a derived job id. serde_json parses at most 128 levels, so only a
/// value built in code can exceed it.
const MAX_HASH_DEPTH: usize = 256;

/// The longest Lambda function name AWS allows.
const MAX_FUNCTION_NAME_LEN: usize = 64;

/// Where a job's id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobIdOrigin {
    /// The job carried a `job_id`.
    Given,
    /// Derived from the job's content by [`derive_job_id`].
    Derived,
}

/// A business job, parsed from a scheduler event.
///
/// The labourer and the id are taken out; everything else stays in [`Job::body`] and is carried into the
/// task payloads by the chunker, as sosw 0.7 did. That includes `job_schema_name` (sosw 0.7 left it in the
/// job) and a given `job_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    labourer_id: String,
    id: String,
    id_origin: JobIdOrigin,
    schema_name: Option<String>,
    /// Shared: a job is cloned onto the thread that chunks it, and its body can be large.
    body: Arc<Map<String, Value>>,
}

impl Job {
    /// Parses a scheduler event: a JSON object or a JSON string holding one. The job is the event's `job`
    /// (an object or a JSON string holding one) if present, else the whole event.
    ///
    /// The job names its labourer with `lambda_name` (a function name, `name:qualifier`, or a full or
    /// partial function ARN, reduced to the name) or `labourer_id` (taken as written); if both are given
    /// they must agree. `job_schema_name` must be a string; `job_id` and `labourer_id` non-empty strings of
    /// at most [`MAX_JOB_ID_LEN`] bytes without control characters.
    pub fn from_event(event: &Value) -> Result<Self> {
        let (mut parsed_event, mut parsed_job) = (None, None);
        let envelope = object_or_json_string(event, "event", &mut parsed_event)?;
        let job = match envelope.get("job") {
            Some(job) => object_or_json_string(job, "job", &mut parsed_job)?,
            None => envelope,
        };
        // The one copy of the job: the event may be a large list of sections.
        Job::from_job(job.clone())
    }

    /// Like [`Job::from_event`] for an event that is still text.
    pub fn from_event_str(event: &str) -> Result<Self> {
        Job::from_event(&Value::String(event.to_owned()))
    }

    /// Builds a job from the job object itself (no `job` envelope).
    pub fn from_job(mut body: Map<String, Value>) -> Result<Self> {
        let labourer_id = take_labourer(&mut body)?;
        let schema_name = optional_string(&body, "job_schema_name")?;
        let (id, id_origin) = match optional_string(&body, "job_id")? {
            Some(id) => (check_job_id(id)?, JobIdOrigin::Given),
            None => (derive_job_id(&labourer_id, &body)?, JobIdOrigin::Derived),
        };
        Ok(Job {
            labourer_id,
            id,
            id_origin,
            schema_name,
            body: Arc::new(body),
        })
    }

    /// The labourer (worker function name) the job's tasks are for.
    pub fn labourer_id(&self) -> &str {
        &self.labourer_id
    }

    /// The job's id: the given `job_id`, or [`derive_job_id`] of the labourer and body.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the id was given or derived.
    pub fn id_origin(&self) -> JobIdOrigin {
        self.id_origin
    }

    /// The `job_schema_name`, if any: the caller picks that schema variant for this job only, leaving the
    /// configured `job_schema` alone (sosw 0.7 overwrote it, bug B11).
    pub fn schema_name(&self) -> Option<&str> {
        self.schema_name.as_deref()
    }

    /// The job without `lambda_name` and `labourer_id`: what the chunker splits into task payloads.
    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// The body, consuming the job.
    pub fn into_body(self) -> Map<String, Value> {
        Arc::unwrap_or_clone(self.body)
    }
}

/// The id of a job without `job_id`: the first [`DERIVED_JOB_ID_HEX_LEN`] lowercase hex digits of the
/// SHA-256 of the canonical JSON of the two-element array `[labourer_id, body]`.
///
/// `body` is the job without `lambda_name` and `labourer_id` (see [`Job::body`]). Canonical JSON is compact
/// (no whitespace), with every object's keys sorted by their UTF-8 bytes, at every depth; strings and numbers
/// are written as serde_json writes them (so `1` and `1.0` differ). The id therefore does not depend on key
/// order, whether the labourer was named by ARN or name, or the event envelope.
///
/// A relative `period` is hashed as written: the same daily job gets the same id every day. Callers that
/// record jobs decide whether a finished record allows a rerun.
pub fn derive_job_id(labourer_id: &str, body: &Map<String, Value>) -> Result<String> {
    let mut canonical = String::from("[");
    write_canonical(&mut canonical, &Value::String(labourer_id.to_owned()), 0)?;
    canonical.push(',');
    write_canonical_object(&mut canonical, body, 0)?;
    canonical.push(']');
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(hex.chars().take(DERIVED_JOB_ID_HEX_LEN).collect())
}

fn write_canonical(out: &mut String, value: &Value, depth: usize) -> Result<()> {
    match value {
        Value::Object(object) => write_canonical_object(out, object, depth),
        Value::Array(items) => {
            check_hash_depth(depth)?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item, depth + 1)?;
            }
            out.push(']');
            Ok(())
        }
        // Scalars have one serde_json spelling; `Value`'s Display writes it compactly.
        scalar => {
            out.push_str(&scalar.to_string());
            Ok(())
        }
    }
}

fn write_canonical_object(
    out: &mut String,
    object: &Map<String, Value>,
    depth: usize,
) -> Result<()> {
    check_hash_depth(depth)?;
    let mut entries: Vec<(&String, &Value)> = object.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_canonical(out, value, depth + 1)?;
    }
    out.push('}');
    Ok(())
}

fn check_hash_depth(depth: usize) -> Result<()> {
    if depth >= MAX_HASH_DEPTH {
        return Err(Error::invalid_job(
            ".",
            format!("nested deeper than {MAX_HASH_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// An object given directly or as a JSON string (sosw 0.7 `json.loads` non-dict events and jobs once),
/// borrowed: a string is parsed into `parsed`, an object is not copied (a job can hold a list of a
/// million sections, and the caller copies what it keeps once). `path` names the value in the error
/// (`event`, `job`).
pub(crate) fn object_or_json_string<'a>(
    value: &'a Value,
    path: &str,
    parsed: &'a mut Option<Value>,
) -> Result<&'a Map<String, Value>> {
    let value: &Value = match value {
        Value::String(text) => parsed.insert(serde_json::from_str::<Value>(text).map_err(|e| {
            Error::invalid_job(path, format!("a string that is not valid JSON ({e})"))
        })?),
        other => other,
    };
    match value {
        Value::Object(object) => Ok(object),
        other => Err(Error::invalid_job(
            path,
            format!(
                "expected a JSON object (or a string holding one), found {}",
                json_kind(other)
            ),
        )),
    }
}

/// Removes `lambda_name` and `labourer_id` from the job and returns the labourer's name.
fn take_labourer(body: &mut Map<String, Value>) -> Result<String> {
    let from_lambda_name = take_string(body, "lambda_name")?
        .map(|text| {
            function_name(&text).map_err(|message| Error::invalid_job("lambda_name", message))
        })
        .transpose()?;
    let from_labourer_id = take_string(body, "labourer_id")?
        .map(check_labourer_id)
        .transpose()?;
    match (from_lambda_name, from_labourer_id) {
        (Some(a), Some(b)) if a != b => Err(Error::invalid_job(
            "labourer_id",
            format!("`{b}` disagrees with `lambda_name` (`{a}`); give one of them"),
        )),
        (Some(name), _) | (None, Some(name)) => Ok(name),
        (None, None) => Err(Error::invalid_job(
            "lambda_name",
            "missing: the job must name its worker with `lambda_name` (a function name or ARN) \
             or `labourer_id`",
        )),
    }
}

/// Removes `key` from the job; its value must be a string.
fn take_string(body: &mut Map<String, Value>, key: &str) -> Result<Option<String>> {
    // Rebuilt rather than `remove`d so the other keys keep their order with serde_json's `preserve_order`.
    let value = body.get(key).cloned();
    if value.is_some() {
        *body = std::mem::take(body)
            .into_iter()
            .filter(|(k, _)| k != key)
            .collect();
    }
    match value {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(Error::invalid_job(
            key,
            format!("expected a string, found {}", json_kind(&other)),
        )),
    }
}

/// Reduces what Lambda accepts as a `FunctionName` to the bare name: `name`, `name:qualifier`,
/// `123456789012:function:name[:qualifier]` and `arn:<partition>:lambda:<region>:<account>:function:name[:qualifier]`.
fn function_name(text: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let name = match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name]
        | ["arn", _, "lambda", _, _, "function", name, _] => *name,
        ["arn", ..] => {
            return Err(format!(
                "`{text}` is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
            ));
        }
        [_, "function", name] | [_, "function", name, _] => *name,
        [name] | [name, _] => *name,
        _ => return Err(format!("`{text}` is not a Lambda function name or ARN")),
    };
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || name.len() > MAX_FUNCTION_NAME_LEN || !valid_chars {
        return Err(format!(
            "`{name}` is not a Lambda function name (1 to {MAX_FUNCTION_NAME_LEN} letters, digits, `-` or `_`)"
        ));
    }
    Ok(name.to_owned())
}

fn optional_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(Error::invalid_job(
            key,
            format!("expected a string, found {}", json_kind(other)),
        )),
    }
}

/// A `labourer_id` is taken as written (it may name a labourer that is not a Lambda function), but must be
/// a usable key.
fn check_labourer_id(id: String) -> Result<String> {
    check_identifier(id, "labourer_id")
}

fn check_job_id(id: String) -> Result<String> {
    check_identifier(id, "job_id")
}

/// Non-empty, at most [`MAX_JOB_ID_LEN`] bytes, no control characters.
fn check_identifier(id: String, key: &str) -> Result<String> {
    let problem = if id.is_empty() {
        Some("it is empty".to_owned())
    } else if id.len() > MAX_JOB_ID_LEN {
        Some(format!(
            "it is {} bytes; the limit is {MAX_JOB_ID_LEN}",
            id.len()
        ))
    } else if id.chars().any(char::is_control) {
        Some("it contains a control character".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::invalid_job(key, problem)),
        None => Ok(id),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(event: Value) -> Job {
        Job::from_event(&event).expect("a valid event")
    }

    fn invalid_path(event: Value) -> (String, String) {
        match Job::from_event(&event) {
            Err(Error::InvalidJob { path, message }) => (path, message),
            other => panic!("expected InvalidJob for {event}, got {other:?}"),
        }
    }

    #[test]
    fn job_is_the_job_key_or_the_whole_event() {
        let direct = parse(json!({"lambda_name": "foo", "payload_attr": "val"}));
        let wrapped = parse(json!({"job": {"lambda_name": "foo", "payload_attr": "val"}}));
        assert_eq!(direct, wrapped);
        assert_eq!(direct.labourer_id(), "foo");
        assert_eq!(
            direct.body(),
            json!({"payload_attr": "val"}).as_object().expect("object")
        );
    }

    #[test]
    fn string_events_and_string_jobs_are_parsed_once() {
        let expected = parse(json!({"lambda_name": "foo", "payload_attr": "val"}));
        for event in [
            json!(r#"{"lambda_name": "foo", "payload_attr": "val"}"#),
            json!(r#"{"job": {"lambda_name": "foo", "payload_attr": "val"}}"#),
            json!(r#"{"job": "{\"lambda_name\": \"foo\", \"payload_attr\": \"val\"}"}"#),
            json!({"job": r#"{"lambda_name": "foo", "payload_attr": "val"}"#}),
        ] {
            assert_eq!(parse(event), expected);
        }
        let from_str = Job::from_event_str(r#"{"lambda_name": "foo", "payload_attr": "val"}"#);
        assert_eq!(from_str.expect("valid text"), expected);
    }

    #[test]
    fn arns_and_qualifiers_reduce_to_the_function_name() {
        for name in [
            "foo",
            "foo:prod",
            "foo:$LATEST",
            "arn:aws:lambda:us-west-2:000000000000:function:foo",
            "arn:aws:lambda:us-west-2:123:function:foo:alias",
            "arn:aws:lambda:us-west-2:000000000000:function:foo:7",
            "arn:aws-cn:lambda:cn-north-1:000000000000:function:foo",
            "000000000000:function:foo",
            "000000000000:function:foo:alias",
        ] {
            assert_eq!(
                parse(json!({"lambda_name": name})).labourer_id(),
                "foo",
                "{name}"
            );
        }
    }

    #[test]
    fn non_lambda_names_are_rejected_at_lambda_name() {
        for name in [
            "",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:us-west-2:0:layer:foo",
            "a:b:c:d:e",
            "has space",
        ] {
            let (path, message) = invalid_path(json!({"lambda_name": name}));
            assert_eq!(path, "lambda_name", "{name}: {message}");
        }
        let long = "x".repeat(65);
        assert_eq!(invalid_path(json!({"lambda_name": long})).0, "lambda_name");
    }

    #[test]
    fn labourer_id_is_accepted_instead_of_lambda_name() {
        let job = parse(json!({"labourer_id": "foo", "a": 1}));
        assert_eq!(job.labourer_id(), "foo");
        let local = parse(json!({"labourer_id": "local.hello worker"}));
        assert_eq!(
            local.labourer_id(),
            "local.hello worker",
            "taken as written"
        );
        assert_eq!(invalid_path(json!({"labourer_id": ""})).0, "labourer_id");
        assert!(!job.body().contains_key("labourer_id"));
        let both =
            parse(json!({"labourer_id": "foo", "lambda_name": "arn:aws:lambda:r:1:function:foo"}));
        assert_eq!(both.labourer_id(), "foo");
        let (path, message) = invalid_path(json!({"labourer_id": "foo", "lambda_name": "bar"}));
        assert_eq!(path, "labourer_id");
        assert!(message.contains("`bar`"), "{message}");
    }

    #[test]
    fn missing_labourer_names_lambda_name() {
        for event in [
            json!({"payload_attr": "val"}),
            json!({"job": {"payload_attr": "val"}}),
        ] {
            let (path, message) = invalid_path(event);
            assert_eq!(path, "lambda_name");
            assert!(message.contains("labourer_id"), "{message}");
        }
        assert_eq!(invalid_path(json!({"lambda_name": 5})).0, "lambda_name");
    }

    #[test]
    fn non_object_events_and_jobs_are_rejected_with_their_path() {
        for (event, path) in [
            (json!(42), "event"),
            (json!("{'payload_attr': 'val'}"), "event"),
            (json!("[1]"), "event"),
            (json!({"job": "bad one"}), "job"),
            (json!({"job": [1, 2]}), "job"),
            (json!({"job": null}), "job"),
        ] {
            assert_eq!(invalid_path(event.clone()).0, path, "{event}");
        }
    }

    #[test]
    fn derived_id_ignores_key_order_and_labourer_spelling() {
        let a = Job::from_event_str(
            r#"{"lambda_name": "w", "b": {"y": 1, "x": [1, {"q": 2, "p": 3}]}, "a": "z"}"#,
        );
        let b = Job::from_event_str(
            r#"{"a": "z", "b": {"x": [1, {"p": 3, "q": 2}], "y": 1}, "lambda_name": "arn:aws:lambda:r:1:function:w"}"#,
        );
        let (a, b) = (a.expect("valid"), b.expect("valid"));
        assert_eq!(a.id_origin(), JobIdOrigin::Derived);
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), DERIVED_JOB_ID_HEX_LEN);
        assert!(
            a.id()
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn derived_id_changes_with_the_body_or_the_labourer() {
        let base = parse(json!({"lambda_name": "w", "a": 1})).id().to_owned();
        assert_ne!(parse(json!({"lambda_name": "w", "a": 2})).id(), base);
        assert_ne!(parse(json!({"lambda_name": "v", "a": 1})).id(), base);
        assert_ne!(parse(json!({"lambda_name": "w", "a": "1"})).id(), base);
    }

    #[test]
    fn derived_id_hashes_exactly_the_documented_bytes() {
        let job = parse(json!({"lambda_name": "w", "b": 1, "a": [true, null, "é"]}));
        let canonical = r#"["w",{"a":[true,null,"é"],"b":1}]"#;
        let hex: String = Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(job.id(), &hex[..DERIVED_JOB_ID_HEX_LEN]);
    }

    #[test]
    fn given_job_id_is_kept_and_carried() {
        let job = parse(json!({"lambda_name": "w", "job_id": "daily-2026-11-25"}));
        assert_eq!(job.id(), "daily-2026-11-25");
        assert_eq!(job.id_origin(), JobIdOrigin::Given);
        assert_eq!(job.body().get("job_id"), Some(&json!("daily-2026-11-25")));
        for bad in [json!(""), json!(7), json!("a\nb"), json!("x".repeat(257))] {
            assert_eq!(
                invalid_path(json!({"lambda_name": "w", "job_id": bad})).0,
                "job_id"
            );
        }
    }

    #[test]
    fn job_schema_name_is_returned_and_still_carried() {
        let job = parse(json!({"lambda_name": "w", "job_schema_name": "hashtags"}));
        assert_eq!(job.schema_name(), Some("hashtags"));
        assert!(job.body().contains_key("job_schema_name"));
        let (path, _) = invalid_path(json!({"lambda_name": "w", "job_schema_name": ["x"]}));
        assert_eq!(path, "job_schema_name");
    }

    #[test]
    fn hashing_a_body_nested_beyond_the_limit_is_an_error() {
        let mut deep = Value::Null;
        for _ in 0..(MAX_HASH_DEPTH + 1) {
            deep = Value::Array(vec![deep]);
        }
        let mut body = Map::new();
        body.insert("deep".into(), deep);
        assert!(derive_job_id("w", &body).is_err());
    }
}

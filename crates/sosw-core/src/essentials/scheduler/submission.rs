//! What a scheduler event asks for: a job (with the requester who submitted it), or the continuation of
//! a job a previous scheduler run handed on.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::{Job, JobIdOrigin, MAX_JOB_ID_LEN, object_or_json_string, truthy};
use crate::task::json_kind;

/// The event key that marks a continuation payload (see [`continuation_payload`]).
pub const CONTINUATION_KEY: &str = "sosw_continuation";

/// The event key naming who submitted a job.
pub const REQUESTER_KEY: &str = "requester";

/// The requester recorded for a job whose event names none.
pub const DEFAULT_REQUESTER: &str = "anonymous";

/// A parsed scheduler event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Submission {
    /// A job, new or submitted again.
    Job {
        /// The job.
        job: Job,
        /// Who submitted it.
        requester: String,
    },
    /// A continuation handed on by an earlier run of the same job.
    Continuation {
        /// The job's id.
        job_id: String,
        /// The key of the spool file holding the tasks left, if the job was spooled.
        spool_key: Option<String>,
    },
}

impl Submission {
    /// Reads `event`. The requester is the event's `requester` (beside `job`, or inside the job when the
    /// whole event is the job), else `default_requester`; it is never carried into tasks and does not
    /// change a derived job id.
    pub(crate) fn parse(event: &Value, default_requester: &str) -> Result<Self> {
        let (mut parsed_event, mut parsed_job) = (None, None);
        let envelope = object_or_json_string(event, "event", &mut parsed_event)?;
        if envelope.get(CONTINUATION_KEY).is_some_and(truthy) {
            return continuation(envelope);
        }
        let (job, envelope_requester) = match envelope.get("job") {
            Some(job) => (
                object_or_json_string(job, "job", &mut parsed_job)?,
                envelope.get(REQUESTER_KEY).cloned(),
            ),
            None => (envelope, None),
        };
        // The one copy of the job (it can hold a list of a million sections); the rest is borrowed.
        let mut job = job.clone();
        let job_requester = remove_key(&mut job, REQUESTER_KEY);
        let requester = match envelope_requester.or(job_requester) {
            Some(value) => identifier(REQUESTER_KEY, &value)?,
            None => default_requester.to_owned(),
        };
        Ok(Submission::Job {
            job: Job::from_job(job)?,
            requester,
        })
    }
}

/// The event that continues job `job_id` of `labourer_id` from the spool at `spool_key` (or, without
/// one, from the job record):
///
/// ```json
/// {"sosw_continuation": true, "job_id": "<job>", "lambda_name": "<labourer>", "file_name": "<key>"}
/// ```
///
/// sosw 0.7's sibling payload was `{"file_name": "/tmp/..."}`: no labourer, and a local path (bug
/// B12). `file_name` here is the spool's key in the blob store, and is left out without a spool.
pub fn continuation_payload(job_id: &str, labourer_id: &str, spool_key: Option<&str>) -> Value {
    let mut payload = Map::new();
    payload.insert(CONTINUATION_KEY.into(), Value::Bool(true));
    payload.insert("job_id".into(), Value::String(job_id.to_owned()));
    payload.insert("lambda_name".into(), Value::String(labourer_id.to_owned()));
    if let Some(key) = spool_key {
        payload.insert("file_name".into(), Value::String(key.to_owned()));
    }
    Value::Object(payload)
}

/// The id under which a job is recorded and its tasks are named: a given `job_id` as is; a derived id
/// as is, unless the job has a `period`, which is resolved against `today`: then the id gets
/// `-YYYYMMDD`, so the same daily job submitted on two days is two jobs (and twice on one day, one).
pub fn scheduled_job_id(job: &Job, today: NaiveDate) -> String {
    let has_period = job.body().get("period").is_some_and(truthy);
    if job.id_origin() == JobIdOrigin::Derived && has_period {
        format!("{}-{}", job.id(), today.format("%Y%m%d"))
    } else {
        job.id().to_owned()
    }
}

fn continuation(envelope: &Map<String, Value>) -> Result<Submission> {
    let job_id = match envelope.get("job_id") {
        Some(value) => identifier("job_id", value)?,
        None => {
            return Err(Error::invalid_job(
                "job_id",
                "missing: a continuation names the job it continues",
            ));
        }
    };
    let spool_key = match envelope.get("file_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(other) => {
            return Err(Error::invalid_job(
                "file_name",
                format!(
                    "expected the spool's key as a string, found {}",
                    json_kind(other)
                ),
            ));
        }
    };
    Ok(Submission::Continuation { job_id, spool_key })
}

/// Removes `key`, keeping the other keys in order (serde_json's `preserve_order` may be on).
fn remove_key(object: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let value = object.get(key).cloned();
    if value.is_some() {
        *object = std::mem::take(object)
            .into_iter()
            .filter(|(k, _)| k != key)
            .collect();
    }
    value
}

/// A non-empty string of at most [`MAX_JOB_ID_LEN`] bytes without control characters.
fn identifier(key: &str, value: &Value) -> Result<String> {
    let Value::String(text) = value else {
        return Err(Error::invalid_job(
            key,
            format!("expected a string, found {}", json_kind(value)),
        ));
    };
    if text.is_empty() || text.len() > MAX_JOB_ID_LEN || text.chars().any(char::is_control) {
        return Err(Error::invalid_job(
            key,
            format!("expected 1 to {MAX_JOB_ID_LEN} bytes without control characters"),
        ));
    }
    Ok(text.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(event: Value) -> Result<Submission> {
        Submission::parse(&event, DEFAULT_REQUESTER)
    }

    fn job_and_requester(event: Value) -> (Job, String) {
        match parse(event) {
            Ok(Submission::Job { job, requester }) => (job, requester),
            other => panic!("expected a job, got {other:?}"),
        }
    }

    #[test]
    fn the_requester_is_taken_out_and_does_not_change_the_job_id() {
        let (plain, anonymous) = job_and_requester(json!({"lambda_name": "w", "a": 1}));
        assert_eq!(anonymous, DEFAULT_REQUESTER);
        let (inside, alice) =
            job_and_requester(json!({"lambda_name": "w", "a": 1, "requester": "alice"}));
        let (beside, bob) =
            job_and_requester(json!({"requester": "bob", "job": {"lambda_name": "w", "a": 1}}));
        assert_eq!((alice.as_str(), bob.as_str()), ("alice", "bob"));
        assert_eq!(inside.id(), plain.id());
        assert_eq!(beside.id(), plain.id());
        assert!(!inside.body().contains_key(REQUESTER_KEY));
    }

    #[test]
    fn a_bad_requester_is_an_invalid_job_at_requester() {
        for bad in [json!(""), json!(5), json!("a\nb")] {
            match parse(json!({"lambda_name": "w", "requester": bad})) {
                Err(Error::InvalidJob { path, .. }) => assert_eq!(path, REQUESTER_KEY),
                other => panic!("expected InvalidJob, got {other:?}"),
            }
        }
    }

    #[test]
    fn continuation_payloads_round_trip() {
        let payload =
            continuation_payload("j1", "worker", Some("sosw/scheduler/tasks_queue_j1.txt"));
        assert_eq!(
            parse(payload).ok(),
            Some(Submission::Continuation {
                job_id: "j1".into(),
                spool_key: Some("sosw/scheduler/tasks_queue_j1.txt".into()),
            })
        );
        assert_eq!(
            parse(continuation_payload("j1", "worker", None)).ok(),
            Some(Submission::Continuation {
                job_id: "j1".into(),
                spool_key: None
            })
        );
        let as_text = continuation_payload("j1", "w", None).to_string();
        assert!(matches!(
            parse(Value::String(as_text)),
            Ok(Submission::Continuation { .. })
        ));
        assert!(
            parse(json!({"sosw_continuation": true})).is_err(),
            "job_id is required"
        );
        assert!(parse(json!({"sosw_continuation": true, "job_id": "j", "file_name": 3})).is_err());
    }

    #[test]
    fn derived_ids_of_period_jobs_carry_the_day_given_ids_do_not() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).expect("a date");
        let (daily, _) = job_and_requester(json!({"lambda_name": "w", "period": "yesterday"}));
        assert_eq!(
            scheduled_job_id(&daily, day),
            format!("{}-20261125", daily.id())
        );
        let (plain, _) = job_and_requester(json!({"lambda_name": "w", "a": 1}));
        assert_eq!(scheduled_job_id(&plain, day), plain.id());
        let (given, _) =
            job_and_requester(json!({"lambda_name": "w", "job_id": "x", "period": "today"}));
        assert_eq!(scheduled_job_id(&given, day), "x");
    }
}

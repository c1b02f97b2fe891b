//! Hostile input: generated inputs for every parser that takes data from outside (the scheduler's job
//! parser and chunker, the worker assistant's report, the config loader, DynamoDB item decoding).
//! Each target runs a counted number of cases; no input may panic, and every rejection must be the
//! error kind of its parser with a message that names what is wrong. Per-target totals are printed.
//!
//! `SOSW_RELIABILITY_FULL=1` runs 300,000 inputs per target (1,200,000 in all); the default 2,000.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};
use sosw::Error;
use sosw::config::{
    OrchestratorConfig, ScavengerConfig, SchedulerConfig, WorkerAssistantConfig, parse_config,
};
use sosw::essentials::worker_assistant::AssistantRequest;
use sosw::job::{Chunker, Job, JobSchema, PeriodRegistry};

use crate::size;

/// Keys the parsers know, mixed with others, so generated objects often reach deep into them.
const KEYS: &[&str] = &[
    "lambda_name",
    "labourer_id",
    "job",
    "job_id",
    "job_schema_name",
    "sections",
    "stores",
    "products",
    "isolate_sections",
    "isolate_stores",
    "max_sections_per_batch",
    "period",
    "action",
    "actions",
    "task_id",
    "stats",
    "result",
    "retryable",
    "attempt",
    "task_config",
    "labourers",
    "max_simultaneous_invocations",
    "duration",
    "cooldown",
    "max_attempts",
    "retry",
    "policy",
    "health_metrics",
    "arn",
    "greenfield",
    "attempts",
    "payload",
    "completed_at",
    "created_at",
    "closed_at",
    "failed_attempts",
    "desired_launch_time",
    "enqueue_batch_size",
    "sns_config",
    "retry_tasks_limit",
    "mark_task_as_completed",
    "x",
    "",
];

/// Strings that mean something somewhere: actions, periods, numbers as text, ids.
const WORDS: &[&str] = &[
    "mark_task_as_completed",
    "mark_task_as_failed",
    "today",
    "yesterday",
    "last_3_days",
    "previous_2_days",
    "1_days_back",
    "w",
    "w1",
    "arn:aws:lambda:us-east-1:1:function:w",
    "42",
    "-1",
    "1e400",
    "NaN",
    "{\"a\": 1}",
    "[1, 2]",
    "true",
    "",
    " ",
    "\u{0}",
    "é",
    "exponential",
    "linear",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-5i64..2_000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(Value::from),
        ".{0,16}".prop_map(Value::String),
    ]
}

/// Any JSON value, at most 4 levels deep, objects keyed mostly by the parsers' keys.
fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object at the root (most real inputs are), sometimes any JSON.
fn any_document() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::collection::btree_map(key(), any_json(), 0..8)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => any_json(),
    ]
}

/// Runs `test` on `cases` inputs of `strategy`; returns how many inputs were generated.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u64,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> u64 {
    let count = AtomicU64::new(0);
    let config = Config {
        cases: u32::try_from(cases).unwrap_or(u32::MAX),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let started = std::time::Instant::now();
    let result = runner.run(&strategy, |input| {
        count.fetch_add(1, Ordering::Relaxed);
        test(input)
    });
    let total = count.load(Ordering::Relaxed);
    println!(
        "hostile input `{name}`: {total} inputs, {:.1} s, {}",
        started.elapsed().as_secs_f64(),
        if result.is_ok() {
            "no panic, every rejection named"
        } else {
            "FAILED"
        }
    );
    if let Err(e) = result {
        panic!("`{name}`: {e}");
    }
    total
}

fn named(ok: bool, what: &str, err: &Error) -> Result<(), TestCaseError> {
    prop_assert!(
        ok,
        "{what}: unexpected error kind or an empty message: {err:?}"
    );
    Ok(())
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap_or_default()
}

/// A job rejection names the key path and says what is wrong.
fn job_error(err: &Error) -> Result<(), TestCaseError> {
    let ok = matches!(err, Error::InvalidJob { path, message } if !path.is_empty() && !message.is_empty());
    named(ok, "job", err)
}

fn job_parser_and_chunker(cases: u64) -> u64 {
    let schema = JobSchema::new(["section", "store", "product"]).unwrap_or_else(|e| panic!("{e}"));
    let periods = PeriodRegistry::default();
    let chunker = Chunker::new(&schema, &periods)
        .with_max_tasks(5_000)
        .with_max_output_bytes(4 << 20);
    fuzz(
        "job parser and chunker",
        cases,
        any_document(),
        |event| match Job::from_event(&event) {
            Err(e) => job_error(&e),
            Ok(job) => match chunker.chunk(&job, today()) {
                Ok(tasks) => {
                    prop_assert!(tasks.len() <= 5_000);
                    Ok(())
                }
                Err(e) => job_error(&e),
            },
        },
    )
}

fn worker_assistant_payload(cases: u64) -> u64 {
    fuzz("worker assistant report", cases, any_document(), |event| {
        match AssistantRequest::from_event(&event) {
            Ok(request) => {
                // What parses also round-trips through the assistant's own event form.
                let again = AssistantRequest::from_event(&request.to_event());
                prop_assert_eq!(again.ok(), Some(request));
                Ok(())
            }
            Err(e) => {
                let ok = matches!(&e, Error::Invalid { what: "worker assistant request", message }
                    if message.contains('`') || message.contains("JSON object"));
                named(ok, "worker assistant report", &e)
            }
        }
    })
}

fn config_error(err: &Error) -> Result<(), TestCaseError> {
    // An empty key's path is the empty string; its message then names it as ``.
    let ok = matches!(err, Error::Config { document, path, message }
        if !document.is_empty() && !message.is_empty()
            && (!path.is_empty() || message.contains("``")));
    named(ok, "config", err)
}

fn config_loader(cases: u64) -> u64 {
    fuzz(
        "config loader",
        cases,
        (0..4u8, any_document()),
        |(which, doc)| {
            let result = match which {
                0 => parse_config::<OrchestratorConfig>("sosw_orchestrator_config", doc).map(drop),
                1 => parse_config::<SchedulerConfig>("sosw_scheduler_config", doc).map(drop),
                2 => parse_config::<WorkerAssistantConfig>("sosw_worker_assistant_config", doc)
                    .map(drop),
                _ => parse_config::<ScavengerConfig>("sosw_scavenger_config", doc).map(drop),
            };
            match result {
                Ok(()) => Ok(()),
                Err(e) => config_error(&e),
            }
        },
    )
}

fn attribute() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(AttributeValue::S),
        proptest::sample::select(WORDS).prop_map(|w| AttributeValue::S(w.to_owned())),
        any::<i64>().prop_map(|n| AttributeValue::N(n.to_string())),
        (0i64..5_000).prop_map(|n| AttributeValue::N(n.to_string())),
        proptest::sample::select(
            &[
                "1.5",
                "-0",
                "1e3",
                "NaN",
                "",
                "x",
                "99999999999999999999999"
            ][..]
        )
        .prop_map(|n| AttributeValue::N(n.to_owned())),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| AttributeValue::B(Blob::new(b))),
        proptest::collection::vec("[a-z0-9]{0,4}", 0..3).prop_map(AttributeValue::Ss),
        proptest::collection::vec("-?[0-9]{1,3}", 0..3).prop_map(AttributeValue::Ns),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            proptest::collection::hash_map(key(), inner, 0..4).prop_map(AttributeValue::M),
        ]
    })
}

/// An item of the task table: usually with the key attributes, with values of any type.
fn item() -> impl Strategy<Value = HashMap<String, AttributeValue>> {
    (
        proptest::option::weighted(0.9, ".{0,10}"),
        proptest::option::weighted(0.9, attribute()),
        proptest::option::weighted(0.9, attribute()),
        proptest::collection::hash_map(key(), attribute(), 0..6),
    )
        .prop_map(|(id, labourer, greenfield, mut rest)| {
            if let Some(id) = id {
                rest.insert("task_id".into(), AttributeValue::S(id));
            }
            if let Some(l) = labourer {
                rest.insert("labourer_id".into(), l);
            }
            if let Some(g) = greenfield {
                rest.insert("greenfield".into(), g);
            }
            rest
        })
}

fn dynamodb_item_decoding(cases: u64) -> u64 {
    fuzz(
        "DynamoDB item decoding",
        cases,
        item(),
        |item| match sosw::aws::dynamodb::decode_task(item, "sosw_tasks") {
            Ok(_) => Ok(()),
            Err(e) => {
                let ok = matches!(&e, Error::Decode { table, message, .. }
                    if table == "sosw_tasks" && !message.is_empty());
                named(ok, "DynamoDB item", &e)
            }
        },
    )
}

#[test]
fn hostile_inputs_never_panic_and_every_rejection_is_named() {
    let per_target = size(2_000, 300_000);
    let totals = [
        job_parser_and_chunker(per_target),
        worker_assistant_payload(per_target),
        config_loader(per_target),
        dynamodb_item_decoding(per_target),
    ];
    let total: u64 = totals.iter().sum();
    println!(
        "hostile input: {total} inputs in all over {} targets",
        totals.len()
    );
    assert!(total >= per_target * 4);
}

//! Chunking tests: the worked examples of the reference, sosw 0.7's own unit-test payloads, the tutorial
//! job, a corpus of sosw 0.7.47 outputs, the kept quirks and the deliberate differences.

use serde_json::json;

use super::*;

/// The day every test chunks on; `D-2` and `D-1` are 2026-11-23 and 2026-11-24.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).expect("a valid date")
}

fn schema(attrs: &[&str]) -> JobSchema {
    JobSchema::new(attrs.iter().copied()).expect("a valid schema")
}

fn body(job: &Value) -> &Map<String, Value> {
    job.as_object().expect("test jobs are objects")
}

fn chunk_with(attrs: &[&str], job: Value) -> Result<Vec<Value>> {
    let schema = schema(attrs);
    let periods = PeriodRegistry::default();
    let tasks = Chunker::new(&schema, &periods).chunk_body("L", body(&job), today())?;
    Ok(tasks.into_iter().map(Value::Object).collect())
}

/// Chunks with the reference's schema (`section`, `store`, `product`) and labourer `L`.
fn chunk(job: Value) -> Vec<Value> {
    chunk_with(&["section", "store", "product"], job).expect("the job chunks")
}

fn chunk_error(job: Value) -> (String, String) {
    match chunk_with(&["section", "store", "product"], job) {
        Err(Error::InvalidJob { path, message }) => (path, message),
        other => panic!("expected InvalidJob, got {other:?}"),
    }
}

// ---- The worked examples of the reference (§8), one test per row ----

#[test]
fn example_isolated_sections_keep_unisolated_stores_as_a_list() {
    let tasks = chunk(json!({
        "sections": {"s1": {"stores": {"a": null, "b": null}}, "s2": null},
        "isolate_sections": true,
    }));
    assert_eq!(
        tasks,
        [
            json!({"isolate_sections": true, "sections": ["s1"], "stores": ["a", "b"], "labourer_id": "L"}),
            json!({"isolate_sections": true, "sections": ["s2"], "labourer_id": "L"}),
        ]
    );
}

#[test]
fn example_nested_isolate_stores_splits_only_its_section() {
    let tasks = chunk(json!({
        "sections": {"s1": {"isolate_stores": true, "stores": {"a": null, "b": null}}, "s2": null},
        "isolate_sections": true,
    }));
    assert_eq!(
        tasks,
        [
            json!({"isolate_sections": true, "isolate_stores": true, "sections": ["s1"], "stores": ["a"], "labourer_id": "L"}),
            json!({"isolate_sections": true, "isolate_stores": true, "sections": ["s1"], "stores": ["b"], "labourer_id": "L"}),
            json!({"isolate_sections": true, "sections": ["s2"], "labourer_id": "L"}),
        ]
    );
}

#[test]
fn example_max_sections_per_batch_makes_batches_of_flat_values() {
    let tasks = chunk(json!({"sections": ["a", "b", "c", "d", "e"], "max_sections_per_batch": 2}));
    let batch = |v: Value| json!({"max_sections_per_batch": 2, "sections": v, "labourer_id": "L"});
    assert_eq!(
        tasks,
        [
            batch(json!(["a", "b"])),
            batch(json!(["c", "d"])),
            batch(json!(["e"]))
        ]
    );
}

#[test]
fn example_isolated_products_carry_their_section_and_store() {
    let tasks = chunk(json!({
        "sections": {"s1": {"stores": {"st1": {"products": ["p1", "p2", "p3"]}, "st2": null}}},
        "isolate_products": true,
    }));
    let product = |p: &str| json!({"isolate_products": true, "sections": ["s1"], "stores": ["st1"], "products": [p], "labourer_id": "L"});
    assert_eq!(
        tasks,
        [
            product("p1"),
            product("p2"),
            product("p3"),
            json!({"isolate_products": true, "sections": ["s1"], "stores": ["st2"], "labourer_id": "L"}),
        ]
    );
}

#[test]
fn example_dates_are_the_outer_loop() {
    let tasks = chunk(json!({
        "period": "last_2_days",
        "isolate_days": true,
        "sections": ["a", "b"],
        "isolate_sections": true,
    }));
    let task = |d: &str, s: &str| json!({"isolate_sections": true, "date_list": [d], "sections": [s], "labourer_id": "L"});
    assert_eq!(
        tasks,
        [
            task("2026-11-23", "a"),
            task("2026-11-23", "b"),
            task("2026-11-24", "a"),
            task("2026-11-24", "b"),
        ]
    );
}

#[test]
fn example_tutorial_job_makes_one_task_per_date_topic_and_word() {
    let tasks = hashtag_tasks();
    assert_eq!(tasks.len(), 36);
    assert_eq!(
        tasks[0],
        json!({
            "date_list": ["2026-11-23"],
            "topics": ["cars"],
            "words": ["toyota"],
            "isolate_topics": true,
            "isolate_words": true,
            "labourer_id": "sosw_tutorial_pull_tweeter_hashtags",
        })
    );
}

#[test]
fn example_flat_list_at_a_non_last_level_passes_through_where_sosw_crashed() {
    // sosw 0.7 raised AttributeError here (B13).
    let tasks = chunk(json!({"sections": ["a", "b", "c"]}));
    assert_eq!(
        tasks,
        [json!({"sections": ["a", "b", "c"], "labourer_id": "L"})]
    );
}

#[test]
fn example_job_without_chunkable_keys_is_unchanged_plus_labourer() {
    let tasks = chunk(json!({"a": 1, "b": {"c": [1, 2]}}));
    assert_eq!(
        tasks,
        [json!({"a": 1, "b": {"c": [1, 2]}, "labourer_id": "L"})]
    );
}

#[test]
fn task_order_follows_the_key_order_of_the_jobs_objects() {
    // Python iterates dicts in document order; serde_json does too with `preserve_order`, else sorted.
    let job: Value = serde_json::from_str(
        r#"{"isolate_sections": true, "max_sections_per_batch": 2, "sections": {"s2": null, "s3": null, "s1": null}}"#,
    )
    .expect("valid JSON");
    let keys: Vec<Value> = body(&job["sections"]).keys().map(|k| json!(k)).collect();
    let tasks = chunk(job);
    let batches: Vec<&Value> = tasks.iter().map(|t| &t["sections"]).collect();
    assert_eq!(batches, [&json!(keys[..2]), &json!(keys[2..])]);
}

// ---- The tutorial job file ----

/// `examples/jobs/hashtags.json`, parsed as the scheduler would and chunked with the tutorial's schema.
fn hashtag_tasks() -> Vec<Value> {
    let event: Value =
        serde_json::from_str(include_str!("../../../../../examples/jobs/hashtags.json"))
            .expect("the example job is JSON");
    let job = Job::from_event(&event).expect("the example job parses");
    let schema = JobSchema::from_config(&json!({"chunkable_attrs": [["topic", {}], ["word", {}]]}))
        .expect("the tutorial schema");
    let periods = PeriodRegistry::default();
    let tasks = Chunker::new(&schema, &periods)
        .chunk(&job, today())
        .expect("the example job chunks");
    tasks.into_iter().map(Value::Object).collect()
}

#[test]
fn hashtag_tasks_cover_every_date_topic_and_word_once_in_order() {
    let tasks = hashtag_tasks();
    let words = [
        (
            "cars",
            ["toyota", "mazda", "nissan", "racing", "automobile", "car"],
        ),
        (
            "food",
            ["recipe", "cooking", "eating", "food", "meal", "tasty"],
        ),
        (
            "shows",
            ["opera", "cinema", "movie", "concert", "show", "musical"],
        ),
    ];
    let mut expected = Vec::new();
    for date in ["2026-11-23", "2026-11-24"] {
        for (topic, topic_words) in &words {
            for word in topic_words {
                expected.push(json!({
                    "date_list": [date],
                    "topics": [topic],
                    "words": [word],
                    "isolate_topics": true,
                    "isolate_words": true,
                    "labourer_id": "sosw_tutorial_pull_tweeter_hashtags",
                }));
            }
        }
    }
    assert_eq!(tasks, expected);
}

// ---- sosw 0.7's own unit-test payload (test_scheduler.py), counts per section/store ----

fn sosw_payload() -> Value {
    json!({
        "sections": {
            "section_funerals": {"stores": {"store_flowers": null, "store_caskets": null}},
            "section_weddings": {"stores": {
                "store_flowers": null,
                "store_limos": null,
                "store_music": {"products": ["product_march", "product_chorus", 740, "product,4", "product 5"]},
            }},
            "section_conversions": {"stores": {
                "store_training": {"products": {"product_history": null, "product_prayer": null}},
                "store_baptizing": null,
                "store_circumcision": null,
            }},
            "section_gifts": null,
        }
    })
}

fn count(tasks: &[Value], key: &str, value: &str) -> usize {
    tasks
        .iter()
        .filter(|t| t.get(key) == Some(&json!([value])))
        .count()
}

#[test]
fn nested_isolate_products_split_only_their_stores() {
    let mut job = sosw_payload();
    job["sections"]["section_weddings"]["stores"]["store_music"]["isolate_products"] = json!(true);
    job["sections"]["section_conversions"]["stores"]["store_training"]["isolate_products"] =
        json!(true);
    let tasks = chunk(job);
    for (key, value, n) in [
        ("sections", "section_funerals", 1),
        ("sections", "section_weddings", 7),
        ("sections", "section_conversions", 4),
        ("stores", "store_training", 2),
        ("stores", "store_baptizing", 1),
        ("sections", "section_gifts", 1),
    ] {
        assert_eq!(count(&tasks, key, value), n, "{key} = {value}");
    }
}

#[test]
fn nested_max_products_per_batch_batches_that_store_only() {
    let mut job = sosw_payload();
    job["sections"]["section_weddings"]["stores"]["store_music"]["max_products_per_batch"] =
        json!(2);
    let tasks = chunk(job);
    for (value, n) in [
        ("section_weddings", 5),
        ("section_funerals", 1),
        ("section_conversions", 1),
        ("section_gifts", 1),
    ] {
        assert_eq!(count(&tasks, "sections", value), n, "{value}");
    }
    let batches: Vec<&Value> = tasks
        .iter()
        .filter(|t| t.get("stores") == Some(&json!(["store_music"])))
        .filter_map(|t| t.get("products"))
        .collect();
    assert_eq!(
        batches,
        [
            &json!(["product_march", "product_chorus"]),
            &json!([740, "product,4"]),
            &json!(["product 5"])
        ]
    );
}

#[test]
fn root_isolate_stores_applies_to_every_section() {
    let mut job = sosw_payload();
    job["isolate_stores"] = json!(true);
    let tasks = chunk(job);
    for (value, n) in [
        ("section_funerals", 2),
        ("section_weddings", 3),
        ("section_conversions", 3),
        ("section_gifts", 1),
    ] {
        assert_eq!(count(&tasks, "sections", value), n, "{value}");
    }
}

#[test]
fn unchunkable_custom_values_without_isolation_pass_through_as_written() {
    let job =
        json!({"sections": {"section_funerals": {"custom": "data"}, "section_weddings": null}});
    let tasks = chunk(job.clone());
    let mut expected = job;
    expected["labourer_id"] = json!("L");
    assert_eq!(tasks, [expected]);
}

#[test]
fn a_sub_level_without_isolation_keeps_an_unflattenable_value_as_written() {
    let mut job = sosw_payload();
    job["isolate_sections"] = json!(true);
    job["sections"]["section_conversions"]["stores"]["store_training"] = json!("some_string");
    let tasks = chunk(job);
    let conversions = tasks
        .iter()
        .find(|t| t.get("sections") == Some(&json!(["section_conversions"])))
        .expect("a task for section_conversions");
    assert_eq!(
        conversions["stores"]["store_training"],
        json!("some_string")
    );
}

#[test]
fn a_deeper_unchunkable_value_is_preserved_in_the_payload() {
    let mut job = sosw_payload();
    let training = &mut job["sections"]["section_conversions"]["stores"]["store_training"];
    training["isolate_products"] = json!(true);
    training["products"]["product_book"] =
        json!({"product_versions": {"audio": null, "paper": null}});
    let tasks = chunk(job);
    assert!(
        tasks
            .iter()
            .any(|t| t.get("product_versions") == Some(&json!({"audio": null, "paper": null}))),
        "{tasks:?}"
    );
}

#[test]
fn sosw_real_payload_with_dates_makes_ten_tasks() {
    let tasks = chunk(json!({
        "period": "last_2_days", "isolate_days": true,
        "sections": {
            "111": {"all_campaigns": true},
            "222": {"all_campaigns": true},
            "333": {
                "isolate_stores": true,
                "all_campaigns": false,
                "stores": {"333-111": null, "333-222": null, "333-333": {"keep_me": 7}},
            }
        },
        "isolate_sections": "True",
    }));
    assert_eq!(tasks.len(), 10);
    assert_eq!(tasks[4]["keep_me"], json!(7), "{:?}", tasks[4]);
}

// ---- A corpus of sosw 0.7.47 outputs ----

/// Jobs chunked by sosw 0.7.47's `Scheduler` itself (`construct_job_data` behind its root check; chunkable
/// `section`, `store`, `product`; labourer `L`; today 2026-11-25), one JSON object per line:
/// `{"job": ..., "tasks": [...]}`. The jobs were generated at random (flags with truthy and falsy values,
/// batch sizes, custom keys, nested and flat values, periods) and kept when sosw 0.7 chunked them without
/// an error, identically under three hash seeds, and outside the documented B11 difference.
const SOSW_CORPUS: &str = include_str!("../testdata/sosw-0.7.47-chunking.jsonl");

/// The extended corpus, made by `scripts/sosw07-chunking-corpus.sh` with sosw 0.7.47's own `Scheduler`
/// (same schema, labourer and day): objects of nulls at every level, falsy isolation flags (`false`, `0`,
/// `""`, `null`, `[]`, `{}`), keys in non-alphabetical order, flat lists mixing strings, integers and floats,
/// and periods with `isolate_days` beside isolation at several levels. Kept where sosw 0.7 chunked the job
/// without an error, identically under three hash seeds, and outside the documented B11 difference.
const SOSW_EXTENDED_CORPUS: &str = include_str!("../testdata/sosw-0.7.47-chunking-extended.jsonl");

/// Chunks every job of `corpus` and compares the tasks with sosw 0.7.47's as JSON text, so the order of
/// the tasks, of the keys in each task and of the values in each list all count. Returns how many jobs
/// and tasks matched.
fn check_corpus(name: &str, corpus: &str) -> (usize, usize) {
    let mut jobs = 0;
    let mut tasks_seen = 0;
    for (line_no, line) in corpus.lines().enumerate() {
        let case: Value = serde_json::from_str(line).expect("corpus lines are JSON");
        let tasks = chunk(case["job"].clone());
        let ours = serde_json::to_string(&tasks).expect("tasks serialise");
        let theirs = serde_json::to_string(&case["tasks"]).expect("fixture tasks serialise");
        assert_eq!(ours, theirs, "{name} line {}: {}", line_no + 1, case["job"]);
        jobs += 1;
        tasks_seen += tasks.len();
    }
    (jobs, tasks_seen)
}

#[test]
fn every_corpus_job_chunks_exactly_as_sosw_did() {
    let (jobs, _) = check_corpus("sosw-0.7.47-chunking.jsonl", SOSW_CORPUS);
    assert_eq!(jobs, 300);
}

#[test]
fn every_extended_corpus_job_chunks_exactly_as_sosw_did_in_order() {
    let (jobs, tasks) = check_corpus("sosw-0.7.47-chunking-extended.jsonl", SOSW_EXTENDED_CORPUS);
    assert_eq!(jobs, 561);
    assert!(tasks > jobs, "the corpus chunks into {tasks} tasks");
}

#[test]
fn serde_json_keeps_the_written_key_order() {
    let text = r#"{"zeta":1,"alpha":{"m":null,"b":null},"a":[2,"x",1.5]}"#;
    let value: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(serde_json::to_string(&value).expect("serialises"), text);
}

// ---- sosw 0.7 quirks kept on purpose ----

#[test]
fn quirk_keys_beside_a_passed_through_list_are_not_carried() {
    let tasks = chunk(json!({
        "isolate_sections": true,
        "sections": {"s1": {"stores": {"a": null, "b": null}, "note": "x"}},
    }));
    assert_eq!(
        tasks,
        [
            json!({"isolate_sections": true, "sections": ["s1"], "stores": ["a", "b"], "labourer_id": "L"})
        ]
    );
}

#[test]
fn quirk_a_one_key_object_passes_through_wrapped_in_a_list() {
    let tasks = chunk(json!({
        "isolate_sections": true,
        "sections": {"s1": {"stores": {"a": {"products": ["p1"]}}}},
    }));
    assert_eq!(tasks[0]["stores"], json!([{"a": {"products": ["p1"]}}]));
}

#[test]
fn quirk_a_branch_needing_chunking_without_values_makes_no_task() {
    let tasks = chunk(json!({
        "isolate_sections": true,
        "isolate_stores": true,
        "sections": {"s1": null, "s2": {"stores": {"a": null}}, "s3": {"other": 1}},
    }));
    let sections: Vec<&Value> = tasks.iter().map(|t| &t["sections"]).collect();
    assert_eq!(sections, [&json!(["s1"]), &json!(["s2"])]);
    assert!(chunk(json!({"isolate_sections": true, "sections": []})).is_empty());
}

#[test]
fn quirk_flags_are_python_truthy_and_ancestors_override_descendants() {
    let tasks = chunk(json!({"isolate_sections": "false", "sections": ["a", "b"]}));
    assert_eq!(tasks.len(), 2, "the string \"false\" is truthy");
    let tasks = chunk(json!({
        "isolate_sections": true,
        "isolate_stores": false,
        "sections": {"s1": {"isolate_stores": true, "stores": {"a": null, "b": null}}},
    }));
    assert_eq!(
        tasks,
        [
            json!({"isolate_sections": true, "isolate_stores": false, "sections": ["s1"], "stores": ["a", "b"], "labourer_id": "L"})
        ],
        "the root's false wins"
    );
}

#[test]
fn quirk_singular_batch_key_isolates_but_does_not_size_batches() {
    let tasks = chunk(json!({"max_section_per_batch": 2, "sections": ["a", "b", "c"]}));
    assert_eq!(tasks.len(), 3);
    let tasks = chunk(
        json!({"isolate_sections": true, "max_sections_per_batch": 1_000_000, "sections": ["a", "b"]}),
    );
    assert_eq!(
        tasks.len(),
        2,
        "a batch size equal to MAX_BATCH means unset"
    );
}

#[test]
fn quirk_a_root_without_chunking_or_period_is_scheduled_as_written() {
    let job = json!({"isolate_days": true, "period": "", "sections": {"a": null}});
    let mut expected = job.clone();
    expected["labourer_id"] = json!("L");
    assert_eq!(chunk(job), [expected]);
}

// ---- Deliberate differences from sosw 0.7 ----

#[test]
fn difference_a_root_needing_no_chunking_still_expands_its_period() {
    let tasks = chunk(json!({"a": 1, "period": "last_2_days", "isolate_days": true}));
    assert_eq!(
        tasks,
        [
            json!({"a": 1, "date_list": ["2026-11-23"], "labourer_id": "L"}),
            json!({"a": 1, "date_list": ["2026-11-24"], "labourer_id": "L"}),
        ]
    );
}

#[test]
fn difference_an_empty_schema_chunks_only_by_period() {
    let job = json!({"sections": ["a", "b"], "isolate_sections": true, "period": "yesterday"});
    let tasks = chunk_with(&[], job).expect("an empty schema works");
    assert_eq!(
        tasks,
        [
            json!({"sections": ["a", "b"], "isolate_sections": true, "date_list": ["2026-11-24"], "labourer_id": "L"})
        ]
    );
}

#[test]
fn difference_a_singular_attribute_is_chunked_once_into_the_plural_key() {
    let tasks = chunk(json!({"isolate_sections": true, "section": {"s1": null, "s2": null}}));
    assert_eq!(
        tasks,
        [
            json!({"isolate_sections": true, "sections": ["s1"], "labourer_id": "L"}),
            json!({"isolate_sections": true, "sections": ["s2"], "labourer_id": "L"}),
        ]
    );
    let both = chunk(json!({"isolate_sections": true, "section": ["x"], "sections": ["y"]}));
    let values: Vec<&Value> = both.iter().map(|t| &t["sections"]).collect();
    assert_eq!(values, [&json!(["y"]), &json!(["x"])], "plural first");
}

#[test]
fn difference_a_flat_list_under_isolation_below_it_is_not_a_crash() {
    let tasks = chunk(json!({"isolate_stores": true, "sections": ["a", "b"]}));
    assert_eq!(
        tasks,
        [json!({"isolate_stores": true, "sections": ["a", "b"], "labourer_id": "L"})]
    );
}

#[test]
fn batch_sizes_are_read_like_python_int() {
    for (size, batches) in [
        (json!("2"), 2),
        (json!(2.9), 2),
        (json!(true), 3),
        (json!(" 3 "), 1),
    ] {
        let tasks = chunk(json!({"max_sections_per_batch": size, "sections": ["a", "b", "c"]}));
        assert_eq!(tasks.len(), batches, "{size}");
    }
}

// ---- Errors ----

#[test]
fn bad_batch_sizes_name_the_key() {
    // A root that needs no chunking never reads the batch size, in sosw 0.7 as here.
    let unread = chunk(json!({"max_sections_per_batch": 0, "sections": ["a"]}));
    assert_eq!(
        unread,
        [json!({"max_sections_per_batch": 0, "sections": ["a"], "labourer_id": "L"})]
    );
    for size in [
        json!(0),
        json!(-2),
        json!("abc"),
        json!(null),
        json!([2]),
        json!(0.5),
    ] {
        let job =
            json!({"isolate_sections": true, "max_sections_per_batch": size, "sections": ["a"]});
        let (path, message) = chunk_error(job);
        assert_eq!(path, "max_sections_per_batch", "{size}");
        assert!(message.contains("at least 1"), "{message}");
    }
    let (path, _) = chunk_error(json!({
        "isolate_sections": true,
        "sections": {"s1": {"isolate_stores": true, "max_stores_per_batch": "x", "stores": ["a"]}},
    }));
    assert_eq!(path, "sections.s1.max_stores_per_batch");
}

#[test]
fn a_scalar_where_the_next_level_belongs_names_its_path() {
    let mut job = sosw_payload();
    job["sections"]["section_conversions"]["isolate_stores"] = json!(true);
    job["sections"]["section_conversions"]["stores"]["store_training"] = json!("some_string");
    let (path, message) = chunk_error(job);
    assert_eq!(path, "sections.section_conversions.stores.store_training");
    assert!(
        message.contains("expected an object") && message.contains("a string"),
        "{message}"
    );

    let mut job = sosw_payload();
    job["sections"]["section_conversions"]["isolate_stores"] = json!(true);
    job["sections"]["section_conversions"]["stores"]["store_training"] = json!(["just_a_string"]);
    assert_eq!(
        chunk_error(job).0,
        "sections.section_conversions.stores.store_training"
    );
}

#[test]
fn nested_values_among_flat_ones_name_their_index() {
    let (path, message) =
        chunk_error(json!({"isolate_sections": true, "sections": ["a", {"b": 1}]}));
    assert_eq!(path, "sections[1]");
    assert!(message.contains("an object"), "{message}");
    let (path, _) = chunk_error(json!({"isolate_sections": true, "sections": [["a"]]}));
    assert_eq!(path, "sections[0]");
}

#[test]
fn bad_periods_are_errors_at_period() {
    assert_eq!(chunk_error(json!({"period": 7})).0, "period");
    assert_eq!(chunk_error(json!({"period": "fortnight"})).0, "period");
    let (path, message) = chunk_error(json!({"period": "last_0_days", "isolate_days": true}));
    assert_eq!(path, "period");
    assert!(message.contains("no dates"), "{message}");
    let tasks = chunk(json!({"period": "last_0_days"}));
    assert_eq!(tasks, [json!({"date_list": [], "labourer_id": "L"})]);
}

#[test]
fn a_hundred_thousand_tasks_chunk_in_one_pass() {
    let products: Vec<String> = (0..40).map(|p| format!("p{p}")).collect();
    let stores: Map<String, Value> = (0..50)
        .map(|t| (format!("t{t}"), json!({"products": products})))
        .collect();
    let sections: Map<String, Value> = (0..50)
        .map(|s| (format!("s{s}"), json!({"stores": stores})))
        .collect();
    let tasks = chunk(json!({"isolate_products": true, "sections": sections}));
    assert_eq!(tasks.len(), 100_000);
    assert_eq!(tasks[0]["products"], json!(["p0"]));
}

#[test]
fn the_task_cap_stops_a_runaway_job() {
    let schema = schema(&["section"]);
    let periods = PeriodRegistry::default();
    let chunker = Chunker::new(&schema, &periods).with_max_tasks(10);
    let job = json!({"isolate_sections": true, "isolate_days": true, "period": "last_5_days", "sections": ["a", "b", "c"]});
    match chunker.chunk_body("L", body(&job), today()) {
        Err(Error::InvalidJob { message, .. }) => {
            assert!(message.contains("more than 10 tasks"), "{message}")
        }
        other => panic!("expected the cap, got {other:?}"),
    }
    let small = json!({"isolate_sections": true, "sections": ["a", "b"]});
    assert_eq!(
        chunker
            .chunk_body("L", body(&small), today())
            .expect("under the cap")
            .len(),
        2
    );
}

#[test]
fn the_byte_cap_stops_a_large_value_carried_into_every_task() {
    let schema = schema(&["section"]);
    let periods = PeriodRegistry::default();
    let job =
        json!({"isolate_sections": true, "blob": "x".repeat(1000), "sections": ["a", "b", "c"]});
    let chunker = Chunker::new(&schema, &periods).with_max_output_bytes(2500);
    match chunker.chunk_body("L", body(&job), today()) {
        Err(Error::InvalidJob { message, .. }) => {
            assert!(message.contains("exceed 2500 bytes"), "{message}")
        }
        other => panic!("expected the byte cap, got {other:?}"),
    }
    let exact: usize = chunk_with(&["section"], job.clone())
        .expect("chunks")
        .iter()
        .map(|t| t.to_string().len())
        .sum();
    let fits = Chunker::new(&schema, &periods).with_max_output_bytes(exact);
    assert_eq!(
        fits.chunk_body("L", body(&job), today())
            .expect("fits exactly")
            .len(),
        3
    );
}

#[test]
fn labourer_id_is_set_on_every_task_even_over_a_body_key() {
    let tasks = chunk(json!({"labourer_id": "other", "isolate_sections": true, "sections": ["a"]}));
    assert_eq!(tasks[0]["labourer_id"], json!("L"));
}

#[test]
fn isolation_key_matching_follows_sosw_regex() {
    for key in [
        "isolate_x",
        "isolate_",
        "max_x_per_batch",
        "max__per_batch",
        "max_a_per_batches",
    ] {
        assert!(is_isolation_key(key), "{key}");
    }
    for key in [
        "isolatex",
        "max_per_batch",
        "max_a-b_per_batch",
        "maximum_per_batch",
        "x_isolate_y",
    ] {
        assert!(!is_isolation_key(key), "{key}");
    }
}

#[test]
fn truthiness_is_pythons() {
    for falsy in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!([]),
        json!({}),
    ] {
        assert!(!truthy(&falsy), "{falsy}");
    }
    for truthy_value in [
        json!(true),
        json!(-1),
        json!(0.5),
        json!("0"),
        json!("false"),
        json!([0]),
        json!({"a": null}),
    ] {
        assert!(truthy(&truthy_value), "{truthy_value}");
    }
}

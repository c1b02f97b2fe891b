//! Chunking a job into task payloads, as sosw 0.7's `construct_job_data`, `chunk_dates` and `chunk_job` did.
//!
//! # The algorithm
//!
//! 1. **Dates.** A truthy `period` is resolved by the [`PeriodRegistry`] and removed with `isolate_days`.
//!    With a truthy `isolate_days` there is one job per date with `date_list: [d]`, else one job with the
//!    whole `date_list`. Dates are the outer loop.
//! 2. **Attributes**, recursively, in the schema's order (`section`, `store`, `product`). At each level a
//!    job *needs chunking* if a truthy `isolate_<attr>`, `isolate_<attr>s`, `max_<attr>_per_batch` or
//!    `max_<attr>s_per_batch` is in the level's job or inherited from an ancestor (ancestors win), or if a
//!    deeper level of it needs chunking.
//!    * If it does, the values of `<attr>s` (or `<attr>`) are split: an object of nulls or a flat list into
//!      batches of `max_<attr>s_per_batch` (1 if unset); any other object gives one task per key, recursing
//!      into object values for the next attribute (or merging them into the task at the last level).
//!    * If it does not, a flat list (or an object of nulls, or a one-key object) passes through under the
//!      plural key; anything else passes through as written.
//! 3. Every task gets `labourer_id`, like the rows of sosw 0.7's queue file; the task store takes it out of
//!    the worker payload, as sosw 0.7's `create_task` did.
//!
//! Output keys for chunked attributes are always plural. Truthiness is Python's: `null`, `false`, `0`, `""`,
//! `[]` and `{}` are false, everything else (including the string `"false"`) is true.
//!
//! # Where this differs from sosw 0.7 (0.7.47)
//!
//! Every input sosw 0.7 chunks deterministically without crashing gives the same tasks in the same order,
//! including its quirks: a level that passes a flat list through drops the other keys of that level, and a
//! level that needs chunking but has no values yields no task (both are logged as warnings here). The
//! differences:
//!
//! * A job whose root needs no chunking still has its `period` expanded (sosw 0.7 left `period` and
//!   `isolate_days` raw in the single task, B11). An empty schema works the same way (sosw 0.7 crashed).
//! * A flat list at a level that is not the last is chunked as flat values (sosw 0.7 crashed, B13).
//! * A job spelling an attribute in the singular (`section`) is chunked once; sosw 0.7 chunked it twice (the
//!   second copy kept the raw key) in hash-set order. Where both spellings are present the plural comes first.
//! * sosw 0.7 also read flags spelled `isolate_<attr>ss` at the top of each level; only the two spellings
//!   above count here.
//! * `max_<attr>s_per_batch` must be a whole number of at least 1 (numbers are truncated and numeric
//!   strings read, as Python's `int()` did); sosw 0.7 crashed on 0 and silently dropped the values when it
//!   was negative.
//! * `period` must be a string and match a pattern exactly (see [`PeriodRegistry`]); with `isolate_days` it
//!   must give at least one date.
//! * Bad shapes are [`Error::InvalidJob`] naming the key path, and a job's output is capped in tasks
//!   ([`DEFAULT_MAX_TASKS`]) and bytes ([`DEFAULT_MAX_OUTPUT_BYTES`]).
//!
//! Task order, the order of values in a task and the key order of every task follow the job's key order,
//! as Python's dicts did: the workspace builds serde_json with its `preserve_order` feature, so a
//! `serde_json::Map` keeps insertion order. Keys are removed by rebuilding the map, never with
//! `Map::remove` (which would swap the last key into the gap).

use std::borrow::{Borrow, Cow};

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::payload::Job;
use crate::job::period::PeriodRegistry;
use crate::job::schema::JobSchema;
use crate::task::json_kind;

/// A task payload as the chunker produces it, `labourer_id` included.
pub type TaskPayload = Map<String, Value>;

/// sosw 0.7's batch size when `max_<attr>s_per_batch` is not given. Not configurable, as in sosw 0.7; a
/// given batch size equal to it also means "not given".
pub const MAX_BATCH: usize = 1_000_000;

/// The default cap on the number of tasks one job may produce.
pub const DEFAULT_MAX_TASKS: usize = 1_000_000;

/// The default cap on the total size of one job's tasks, as compact JSON: 512 MiB. It stops a large value
/// carried into every task from exhausting memory long before the task cap.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 512 * 1024 * 1024;

/// Splits jobs into task payloads with a schema and the date periods.
#[derive(Debug, Clone)]
pub struct Chunker<'a> {
    schema: &'a JobSchema,
    periods: &'a PeriodRegistry,
    max_tasks: usize,
    max_output_bytes: usize,
}

impl<'a> Chunker<'a> {
    /// A chunker for `schema`, resolving `period` with `periods`, capped at [`DEFAULT_MAX_TASKS`] tasks
    /// and [`DEFAULT_MAX_OUTPUT_BYTES`].
    pub fn new(schema: &'a JobSchema, periods: &'a PeriodRegistry) -> Self {
        Chunker {
            schema,
            periods,
            max_tasks: DEFAULT_MAX_TASKS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }

    /// Caps the number of tasks one job may produce; more is an [`Error::InvalidJob`].
    pub fn with_max_tasks(mut self, max_tasks: usize) -> Self {
        self.max_tasks = max_tasks;
        self
    }

    /// Caps the total size of one job's tasks, counted as compact JSON; more is an [`Error::InvalidJob`].
    pub fn with_max_output_bytes(mut self, max_output_bytes: usize) -> Self {
        self.max_output_bytes = max_output_bytes;
        self
    }

    /// The task payloads of `job`, in order, for the day `today`.
    pub fn chunk(&self, job: &Job, today: NaiveDate) -> Result<Vec<TaskPayload>> {
        self.chunk_body(job.labourer_id(), job.body(), today)
    }

    /// The task payloads of a job body (a job without `lambda_name`) for `labourer_id`, which is set on every
    /// task (over any `labourer_id` in the body).
    pub fn chunk_body(
        &self,
        labourer_id: &str,
        body: &Map<String, Value>,
        today: NaiveDate,
    ) -> Result<Vec<TaskPayload>> {
        let mut tasks = Vec::new();
        self.each_of_body(labourer_id, body, today, &mut |task| {
            tasks.push(task);
            Ok(())
        })?;
        Ok(tasks)
    }

    /// Hands the task payloads of `job` to `sink` one by one, in order, as they are made: the same
    /// tasks as [`chunk`](Self::chunk) in bounded memory, whatever the job's size. Stops at the first
    /// error, of the job (a cap passed, a bad value) or of `sink`: the tasks handed on before it are
    /// valid, the job is not; check a whole job first (e.g. with a counting sink) when nothing may be
    /// written for a bad one. Returns how many tasks were handed on.
    pub fn each(
        &self,
        job: &Job,
        today: NaiveDate,
        sink: &mut dyn FnMut(TaskPayload) -> Result<()>,
    ) -> Result<u64> {
        self.each_of_body(job.labourer_id(), job.body(), today, sink)
    }

    /// [`each`](Self::each) of a job body for `labourer_id`, as [`chunk_body`](Self::chunk_body).
    pub fn each_of_body(
        &self,
        labourer_id: &str,
        body: &Map<String, Value>,
        today: NaiveDate,
        sink: &mut dyn FnMut(TaskPayload) -> Result<()>,
    ) -> Result<u64> {
        let mut run = Run {
            attrs: self.schema.chunkable_attrs(),
            labourer_id: Value::String(labourer_id.to_owned()),
            max_tasks: self.max_tasks,
            max_output_bytes: self.max_output_bytes,
            output_bytes: 0,
            count: 0,
            sink,
        };
        let empty = Map::new();
        // Decided on the job as written, before `period` is consumed, as sosw 0.7 did.
        let chunk_attrs = !run.attrs.is_empty() && run.needs_chunking(0, body, &empty);
        let has_period = body.get("period").is_some_and(truthy);
        if !chunk_attrs && !has_period {
            // sosw 0.7 scheduled such a job as written, `isolate_days` and a falsy `period` included, as
            // `{'labourer_id': ..., **job}`: the labourer goes first here.
            let mut task = Map::new();
            task.insert("labourer_id".into(), run.labourer_id.clone());
            task.extend(body.iter().map(|(k, v)| (k.clone(), v.clone())));
            run.emit(task, ".")?;
        } else {
            expand_period(body, self.periods, today, &mut |dated| {
                if chunk_attrs {
                    run.chunk_level(0, dated, &empty, "")
                } else {
                    run.emit(dated.clone(), ".")
                }
            })?;
        }
        Ok(run.count)
    }
}

/// sosw 0.7's `chunk_dates`: one job per date with `isolate_days`, else one job with every date; each
/// handed to `each` as it is made. The body is copied at most once (without `period` and
/// `isolate_days`, one `date_list` after another), and not at all when it has neither key: a job can
/// hold a list of a million sections.
fn expand_period(
    body: &Map<String, Value>,
    periods: &PeriodRegistry,
    today: NaiveDate,
    each: &mut dyn FnMut(&Map<String, Value>) -> Result<()>,
) -> Result<()> {
    const CONSUMED: [&str; 2] = ["period", "isolate_days"];
    let isolate = body.get("isolate_days").is_some_and(truthy);
    let period = match body.get("period") {
        Some(Value::String(period)) if !period.is_empty() => period,
        Some(other) if truthy(other) => {
            return Err(Error::invalid_job(
                "period",
                format!(
                    "expected a period name such as `last_2_days`, found {}",
                    json_kind(other)
                ),
            ));
        }
        _ if CONSUMED.iter().any(|key| body.contains_key(*key)) => {
            return each(&without(body, &CONSUMED));
        }
        _ => return each(body),
    };
    let dates = periods.date_strings(period, today)?;
    if isolate && dates.is_empty() {
        return Err(Error::invalid_job(
            "period",
            format!("`{period}` gives no dates, so `isolate_days` would schedule nothing"),
        ));
    }
    let mut job = without(body, &CONSUMED);
    if isolate {
        for date in dates {
            // Set again in place: the key keeps its position, as a fresh copy's would.
            job.insert("date_list".into(), Value::Array(vec![Value::String(date)]));
            each(&job)?;
        }
        Ok(())
    } else {
        job.insert(
            "date_list".into(),
            Value::Array(dates.into_iter().map(Value::String).collect()),
        );
        each(&job)
    }
}

/// One chunking of one job: the schema's attributes, the labourer, the caps, and where the tasks go.
struct Run<'a> {
    attrs: &'a [String],
    labourer_id: Value,
    max_tasks: usize,
    max_output_bytes: usize,
    output_bytes: usize,
    /// Tasks handed to `sink` so far.
    count: u64,
    sink: &'a mut dyn FnMut(TaskPayload) -> Result<()>,
}

impl Run<'_> {
    /// sosw 0.7's `needs_chunking` for the attribute at `level`, over the job `own` with `inherited` keys
    /// on top (`{**own, **inherited}` in Python). Recursion follows the schema, so its depth is bounded by
    /// [`crate::job::MAX_CHUNKABLE_ATTRS`].
    fn needs_chunking(
        &self,
        level: usize,
        own: &Map<String, Value>,
        inherited: &Map<String, Value>,
    ) -> bool {
        let Some(attr) = self.attrs.get(level) else {
            return false;
        };
        let get = |key: &str| inherited.get(key).or_else(|| own.get(key));
        if flag_keys(attr).iter().any(|k| get(k).is_some_and(truthy)) {
            return true;
        }
        if level + 1 >= self.attrs.len() {
            return false;
        }
        // This level's isolation flags override the same keys of every sub-object.
        let pushed: Map<String, Value> = own
            .iter()
            .chain(inherited)
            .filter(|(k, _)| is_isolation_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        spellings(attr).iter().any(|spelling| {
            values_of(get(spelling)).iter().any(|value| {
                // Flat values hold no deeper level (sosw 0.7 crashed on them, B13).
                let Value::Object(object) = value else {
                    return false;
                };
                object.values().any(|sub| match sub {
                    Value::Object(sub) => self.needs_chunking(level + 1, sub, &pushed),
                    _ => false,
                })
            })
        })
    }

    /// sosw 0.7's `chunk_job` for the attribute at `level`: `job` is this level's object, `skeleton` what the
    /// levels above put in every task, `path` the key path of `job` (`""` at the root).
    fn chunk_level(
        &mut self,
        level: usize,
        job: &Map<String, Value>,
        skeleton: &Map<String, Value>,
        path: &str,
    ) -> Result<()> {
        let Some(attr) = self.attrs.get(level) else {
            return self.emit(merged(job, skeleton), path);
        };
        let batch = batch_size(attr, job, skeleton, path)?;
        if self.needs_chunking(level, job, skeleton) {
            // Isolation without a batch size means one value per task.
            let batch = if batch == MAX_BATCH { 1 } else { batch };
            self.chunk_values(level, job, skeleton, path, batch)
        } else {
            self.pass_through(attr, job, skeleton, path, batch)
        }
    }

    /// The chunking branch: splits the values of the level's attribute into tasks.
    fn chunk_values(
        &mut self,
        level: usize,
        job: &Map<String, Value>,
        skeleton: &Map<String, Value>,
        path: &str,
        batch: usize,
    ) -> Result<()> {
        let Some(attr) = self.attrs.get(level) else {
            return Ok(());
        };
        let spellings = spellings(attr);
        // What every task of this level carries: the skeleton, then this level's other keys.
        let mut task_skeleton = skeleton.clone();
        for (key, value) in job.iter().filter(|(k, _)| !spellings.contains(k)) {
            task_skeleton.insert(key.clone(), value.clone());
        }
        let mut found = false;
        for spelling in &spellings {
            let Some(value) = job.get(spelling) else {
                continue;
            };
            let values = values_of(Some(value));
            found |= !values.is_empty();
            let at = join(path, spelling);
            if values.iter().all(|v| v.is_object()) {
                for (i, object) in values.into_iter().enumerate() {
                    let object_path = if value.is_array() {
                        format!("{at}[{i}]")
                    } else {
                        at.clone()
                    };
                    if let Value::Object(object) = object {
                        self.chunk_object(level, object, &task_skeleton, &object_path, batch)?;
                    }
                }
            } else {
                let flat = flat_values(&values, &at, value.is_array())?;
                self.push_batches(&task_skeleton, &spellings[0], &flat, batch, &at)?;
            }
        }
        if !found {
            tracing::warn!(
                path = display_path(path),
                "sosw 0.7 quirk kept: `{}` needs chunking here but has no values, so this part of the job \
                 makes no task",
                spellings[0]
            );
        }
        Ok(())
    }

    /// One object of values: its keys in batches if every value is null, else one task per key.
    fn chunk_object(
        &mut self,
        level: usize,
        object: &Map<String, Value>,
        task_skeleton: &Map<String, Value>,
        path: &str,
        batch: usize,
    ) -> Result<()> {
        let Some(attr) = self.attrs.get(level) else {
            return Ok(());
        };
        let plural = format!("{attr}s");
        if object.values().all(Value::is_null) {
            let keys: Vec<Value> = object.keys().map(|k| Value::String(k.clone())).collect();
            return self.push_batches(task_skeleton, &plural, &keys, batch, path);
        }
        let has_next = level + 1 < self.attrs.len();
        for (name, sub) in object {
            let item_path = join(path, name);
            let mut task = task_skeleton.clone();
            task.insert(
                plural.clone(),
                Value::Array(vec![Value::String(name.clone())]),
            );
            match sub {
                Value::Object(sub) if has_next => {
                    self.chunk_level(level + 1, sub, &task, &item_path)?
                }
                Value::Object(sub) => {
                    task.extend(sub.iter().map(|(k, v)| (k.clone(), v.clone())));
                    self.emit(task, &item_path)?;
                }
                Value::Null => self.emit(task, &item_path)?,
                other => {
                    let expected = if has_next {
                        "an object (the next chunkable level) or null"
                    } else {
                        "an object (merged into the task) or null"
                    };
                    return Err(Error::invalid_job(
                        item_path,
                        format!("expected {expected}, found {}", json_kind(other)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The branch where this level needs no chunking: a flat value passes through under the plural key,
    /// anything else as written.
    fn pass_through(
        &mut self,
        attr: &str,
        job: &Map<String, Value>,
        skeleton: &Map<String, Value>,
        path: &str,
        batch: usize,
    ) -> Result<()> {
        let spellings = spellings(attr);
        // sosw 0.7 took the first spelling present (in hash-set order; the plural first here). A falsy value
        // is dropped from the task.
        let taken = spellings
            .iter()
            .find_map(|s| job.get(s.as_str()).map(|value| (s, value)));
        let mut put_back = None;
        if let Some((spelling, value)) = taken
            && truthy(value)
        {
            if let Some(values) = pass_through_values(value) {
                if job.len() > 1 {
                    tracing::warn!(
                        path = display_path(path),
                        dropped = ?job.keys().filter(|k| *k != spelling).collect::<Vec<_>>(),
                        "sosw 0.7 quirk kept: keys beside a passed-through `{}` are not carried",
                        spellings[0]
                    );
                }
                return self.push_batches(skeleton, &spellings[0], &values, batch, path);
            }
            // Not a flat value: sosw 0.7 put it back (last) and scheduled this level as written.
            put_back = Some((spelling.clone(), value.clone()));
        }
        // Here sosw 0.7 merged the other way round: this level's keys win over the skeleton.
        let mut task = skeleton.clone();
        match taken {
            Some((spelling, _)) => task.extend(
                job.iter()
                    .filter(|(k, _)| *k != spelling)
                    .map(|(k, v)| (k.clone(), v.clone())),
            ),
            None => task.extend(job.iter().map(|(k, v)| (k.clone(), v.clone()))),
        }
        task.extend(put_back);
        self.emit(task, path)
    }

    /// One task per batch of `values` under `plural`.
    fn push_batches(
        &mut self,
        task_skeleton: &Map<String, Value>,
        plural: &str,
        values: &[impl Borrow<Value>],
        batch: usize,
        path: &str,
    ) -> Result<()> {
        for chunk in values.chunks(batch.max(1)) {
            let mut task = task_skeleton.clone();
            let chunk = chunk.iter().map(|v| v.borrow().clone()).collect();
            task.insert(plural.to_owned(), Value::Array(chunk));
            self.emit(task, path)?;
        }
        Ok(())
    }

    /// Adds a finished task: `labourer_id` goes on last, as sosw 0.7 merged its skeleton last (a task that
    /// already has the key keeps it where it is, as Python's `dict.update` did).
    fn emit(&mut self, mut task: TaskPayload, path: &str) -> Result<()> {
        if self.count >= self.max_tasks as u64 {
            return Err(Error::invalid_job(
                display_path(path),
                format!(
                    "the job makes more than {} tasks; split it into smaller jobs",
                    self.max_tasks
                ),
            ));
        }
        task.insert("labourer_id".into(), self.labourer_id.clone());
        self.output_bytes = self.output_bytes.saturating_add(json_len(&task));
        if self.output_bytes > self.max_output_bytes {
            return Err(Error::invalid_job(
                display_path(path),
                format!(
                    "the job's tasks exceed {} bytes of JSON; split it into smaller jobs or carry less \
                     data in every task",
                    self.max_output_bytes
                ),
            ));
        }
        self.count += 1;
        (self.sink)(task)
    }
}

/// The length of `task` as compact JSON, counted without building the string.
fn json_len(task: &TaskPayload) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Map` to a sink that never fails cannot fail; count what was written either way.
    let _ = serde_json::to_writer(&mut counter, task);
    counter.0
}

/// `map` without `keys`, in its order.
fn without(map: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `{**job, **skeleton}`: the skeleton wins.
fn merged(job: &Map<String, Value>, skeleton: &Map<String, Value>) -> Map<String, Value> {
    let mut out = job.clone();
    out.extend(skeleton.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// The two spellings of a chunkable attribute, plural first.
fn spellings(attr: &str) -> [String; 2] {
    [format!("{attr}s"), attr.to_owned()]
}

/// The keys that make a level need chunking when truthy.
fn flag_keys(attr: &str) -> [String; 4] {
    [
        format!("isolate_{attr}"),
        format!("isolate_{attr}s"),
        format!("max_{attr}_per_batch"),
        format!("max_{attr}s_per_batch"),
    ]
}

/// sosw 0.7 pushed down every key matching `isolate_\w*|max_\w*_per_batch` with `re.match` (a prefix
/// match): any key starting with `isolate_`, or `max_` followed by word characters containing `_per_batch`.
fn is_isolation_key(key: &str) -> bool {
    if key.starts_with("isolate_") {
        return true;
    }
    let Some(rest) = key.strip_prefix("max_") else {
        return false;
    };
    let word_len = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    rest.get(..word_len)
        .is_some_and(|word| word.contains("_per_batch"))
}

/// sosw 0.7's `get_list_of_multiple_or_one_or_empty_from_dict` for one key: nothing for a missing or
/// falsy value, the elements of an array, else the value itself.
fn values_of(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(value) if truthy(value) => match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        },
        _ => Vec::new(),
    }
}

/// Strings, numbers and booleans (Python's bool is an int) are flat values.
fn is_flat(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// The values to chunk when they are not all objects: every one must be flat. `in_array` says whether they
/// came from an array (for the error path).
fn flat_values<'a>(values: &[&'a Value], path: &str, in_array: bool) -> Result<Vec<&'a Value>> {
    if let Some((i, bad)) = values.iter().enumerate().find(|(_, v)| !is_flat(v)) {
        let at = if in_array {
            format!("{path}[{i}]")
        } else {
            path.to_owned()
        };
        return Err(Error::invalid_job(
            at,
            format!(
                "expected a flat value (string or number) among values that are not all objects, found {}",
                json_kind(bad)
            ),
        ));
    }
    Ok(values.to_vec())
}

/// sosw 0.7's `validate_list_of_vals` on an unchunked level's value: a flat list, the keys of an object of
/// nulls, or a one-key object wrapped in a list; `None` where sosw 0.7 raised (the value is then kept as is).
/// A list is borrowed, not copied.
fn pass_through_values(value: &Value) -> Option<Vec<Cow<'_, Value>>> {
    match value {
        Value::Array(items) if items.iter().all(is_flat) => {
            Some(items.iter().map(Cow::Borrowed).collect())
        }
        Value::Object(object) if object.values().all(Value::is_null) => Some(
            object
                .keys()
                .map(|k| Cow::Owned(Value::String(k.clone())))
                .collect(),
        ),
        Value::Object(object) if object.len() == 1 => Some(vec![Cow::Borrowed(value)]),
        _ => None,
    }
}

/// The batch size for `attr` at this level: `max_<attr>s_per_batch` from the level's job, else inherited
/// from the skeleton, else [`MAX_BATCH`]. Read as Python's `int()` did, and at least 1.
fn batch_size(
    attr: &str,
    job: &Map<String, Value>,
    skeleton: &Map<String, Value>,
    path: &str,
) -> Result<usize> {
    let key = format!("max_{attr}s_per_batch");
    let (value, at) = match (job.get(&key), skeleton.get(&key)) {
        (Some(v), _) => (v, join(path, &key)),
        (None, Some(v)) => (v, key.clone()),
        (None, None) => return Ok(MAX_BATCH),
    };
    python_int(value).filter(|n| *n >= 1).ok_or_else(|| {
        Error::invalid_job(
            at,
            format!(
                "expected a whole number of at least 1, found {}",
                describe(value)
            ),
        )
    })
}

/// Python's `int(value)` for the JSON values it accepts, as a positive size; `None` for anything else.
fn python_int(value: &Value) -> Option<usize> {
    let number: i128 = match value {
        Value::Bool(b) => i128::from(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i128::from(i),
            (_, Some(u), _) => i128::from(u),
            // Truncation toward zero is what int() does to a float; the cast saturates.
            (_, _, Some(f)) if f.is_finite() => f.trunc() as i128,
            _ => return None,
        },
        Value::String(text) => {
            let text = text.trim();
            let digits = text.strip_prefix('+').unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // More digits than fit are far above any useful batch size.
            digits.parse::<i128>().unwrap_or(i128::MAX)
        }
        _ => return None,
    };
    if number < 1 {
        return None;
    }
    Some(usize::try_from(number).unwrap_or(usize::MAX))
}

/// A short description of a value for error messages: scalars are shown, containers named.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(_) | Value::Object(_) | Value::Null => json_kind(value).to_owned(),
        scalar => format!("`{scalar}`"),
    }
}

/// Python truthiness of a JSON value.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

#[cfg(test)]
mod tests;

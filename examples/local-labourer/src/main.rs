//! A labourer of your own, run on this machine by sosw's local runner: the scheduler chunks a job into
//! one task per word, the orchestrator invokes [`measure`] in-process for each, the worker assistant
//! records the outcomes and the scavenger closes the tasks, all over the embedded SQLite store.
//!
//! `cargo run -p local-labourer [-- state.sqlite]` (in memory without a path) prints what the job came
//! to. The same worker runs on Lambda with `sosw::worker::run(worker_fn(measure))` (see
//! `examples/hello-worker`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sosw::config::StaticConfigSource;
use sosw::embedded::SqliteTaskStore;
use sosw::local::{
    LabourerProgress, LabourerSummary, LocalConfigs, LocalRunner, RunObserver, WorkerRegistry,
};
use sosw::notify::LogNotifier;
use sosw::worker::{WorkError, WorkerContext, worker_fn};

/// The labourer's id: the name its worker is registered under, and the job's `lambda_name`.
const LABOURER: &str = "measure_words";

/// The job: one task per word (`isolate_words`). `r2d2` is not a word this worker measures.
fn job() -> Value {
    json!({"job": {
        "lambda_name": LABOURER,
        "isolate_words": true,
        "words": ["orchestrator", "scheduler", "scavenger", "worker", "r2d2"],
    }})
}

/// One task's payload, as the scheduler's chunking writes it.
#[derive(Deserialize)]
struct Words {
    words: Vec<String>,
}

/// The worker: counts letters. A word with a digit is invalid input, a failure no retry can fix.
async fn measure(task: Words, ctx: WorkerContext) -> Result<Value, WorkError> {
    if let Some(word) = task
        .words
        .iter()
        .find(|w| w.chars().any(|c| c.is_ascii_digit()))
    {
        return Err(WorkError::non_retryable(format!("`{word}` is not a word")));
    }
    let letters: usize = task.words.iter().map(|w| w.chars().count()).sum();
    ctx.add("letters", letters as u64);
    Ok(json!({ "letters": letters }))
}

/// The configs a local run reads: the labourer's timings (seconds, so the run takes about one), the
/// scheduler's chunking by `word`, and the local runner's pace.
fn configs() -> StaticConfigSource {
    let mut source = StaticConfigSource::new();
    source.insert(
        "sosw_essential_config",
        json!({"task_config": {"labourers": {LABOURER: {
            "max_simultaneous_invocations": 2, "duration": 5, "cooldown": 1, "max_attempts": 3,
            "retry": {"policy": "exponential", "base_secs": 1, "cap_secs": 2},
        }}}}),
    );
    source.insert(
        "sosw_scheduler_config",
        json!({"job_schema": {"chunkable_attrs": [["word", {}]]}}),
    );
    source.insert(
        "sosw_local_config",
        json!({"poll_interval_ms": 50, "scavenge_interval_ms": 100}),
    );
    source
}

/// Runs the job with this labourer on `store` until it is finished; returns its line of the summary.
async fn run(store: SqliteTaskStore) -> sosw::Result<LabourerSummary> {
    let configs = LocalConfigs::load(&configs()).await?;
    let workers = WorkerRegistry::new().register(LABOURER, |_work_time| worker_fn(measure));
    let runner = LocalRunner::new(Arc::new(store), configs, &workers, Arc::new(LogNotifier))?;
    let job_id = runner.submit(&job()).await?.job_id;
    let summary = runner
        .run_until_finished(&[job_id], &Quiet, Some(Duration::from_secs(60)))
        .await?;
    Ok(summary.total())
}

/// Progress is not shown: the summary is printed at the end.
struct Quiet;

impl RunObserver for Quiet {
    fn update(&self, _progress: &[LabourerProgress]) {}
}

#[tokio::main]
async fn main() -> ExitCode {
    let store = match std::env::args().nth(1) {
        Some(path) => SqliteTaskStore::open(Path::new(&path)),
        None => SqliteTaskStore::in_memory(),
    };
    match async { run(store?).await }.await {
        Ok(total) => {
            println!(
                "{LABOURER}: {} tasks, {} completed, {} dead, {} retried",
                total.tasks, total.completed, total.dead, total.retried
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("local-labourer failed: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_job_runs_to_completion_with_the_invalid_word_dead() {
        let store = SqliteTaskStore::in_memory().expect("an in-memory store");
        let total = run(store).await.expect("the job finishes");
        assert_eq!(
            (total.tasks, total.completed, total.dead, total.open),
            (5, 4, 1, 0),
            "{total:?}"
        );
        // The dead task failed for good on its first attempt: nothing was retried.
        assert_eq!((total.retried, total.reruns), (0, 0), "{total:?}");
    }

    #[tokio::test]
    async fn the_worker_counts_letters_and_rejects_digits() {
        let ctx = WorkerContext::new(None);
        let words = Words {
            words: vec!["sosw".into()],
        };
        assert_eq!(
            measure(words, ctx.clone()).await.ok(),
            Some(json!({"letters": 4}))
        );
        let invalid = Words {
            words: vec!["c3po".into()],
        };
        let err = measure(invalid, ctx).await.expect_err("a failure");
        assert!(!err.is_retryable());
        assert_eq!(err.message(), "`c3po` is not a word");
    }
}

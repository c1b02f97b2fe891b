//! Where a local task runs: a registered in-process worker or a child process, and how its outcome
//! reaches the worker assistant.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::config::{LOCAL_CONFIG_NAME, LocalConfig};
use crate::invoke::command::{
    CommandInvoker, CommandSpec, ExitHook, OutputTail, ProcessExit, failure_result,
};
use crate::invoke::inprocess::{InProcessInvoker, LocalHandler, handler_fn};
use sosw_core::config::TaskConfig;
use sosw_core::error::{Error, Result};
use sosw_core::essentials::worker_assistant::{AssistantRequest, WorkerAssistant};
use sosw_core::invoke::{InvokeOutcome, Invoker};
use sosw_core::processor::Stats;
use sosw_core::task::{Labourer, TaskId};
use sosw_core::worker::{Reporter, StoreReporter, Worker, WorkerRunner};

/// Builds a worker's handler from its simulated work time and the reporter its outcomes go to.
type Factory = Arc<dyn Fn(Duration, Arc<dyn Reporter>) -> Arc<dyn LocalHandler> + Send + Sync>;

/// Workers compiled into a program, by name, for local runs.
#[derive(Clone, Default)]
pub struct WorkerRegistry {
    factories: BTreeMap<String, Factory>,
}

impl fmt::Debug for WorkerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

impl WorkerRegistry {
    /// No workers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the worker `make(work_time)` under `name`. A labourer runs it when its id is `name` or
    /// when `sosw_local_config.workers.<labourer>.worker` names it.
    pub fn register<W, F>(mut self, name: impl Into<String>, make: F) -> Self
    where
        W: Worker + 'static,
        F: Fn(Duration) -> W + Send + Sync + 'static,
    {
        let factory: Factory = Arc::new(move |work_time, reporter| {
            let runner = Arc::new(WorkerRunner::new(make(work_time), reporter));
            Arc::new(handler_fn(move |payload: Value| {
                let runner = Arc::clone(&runner);
                async move {
                    // The outcome is reported to the worker assistant before this returns; an error
                    // here is the task's failure, already recorded (or a report that could not be
                    // delivered, which leaves the task to expire and retry).
                    if let Err(err) = runner.handle_payload(payload, None, "local").await {
                        tracing::debug!(error = %err, "local worker failed");
                    }
                }
            }))
        });
        self.factories.insert(name.into(), factory);
        self
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}

/// The invoker of a local run: `command` labourers as child processes, the others in-process.
#[derive(Clone)]
pub struct LocalInvoker {
    in_process: InProcessInvoker,
    commands: CommandInvoker,
    /// The labourer id of each command function.
    command_functions: HashMap<String, String>,
    deliveries: Arc<OnceLock<Mutex<std::fs::File>>>,
}

impl fmt::Debug for LocalInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalInvoker")
            .field("in_process", &self.in_process)
            .field("commands", &self.command_functions)
            .finish()
    }
}

impl LocalInvoker {
    /// An invoker for every labourer of `task_config`, each run as `local` says, reporting through
    /// `assistant`. A labourer with no way to run here is an error that says what to add.
    pub fn for_labourers(
        task_config: &TaskConfig,
        local: &LocalConfig,
        registry: &WorkerRegistry,
        assistant: Arc<WorkerAssistant>,
    ) -> Result<Self> {
        let reporter: Arc<dyn Reporter> = Arc::new(StoreReporter::new(Arc::clone(&assistant)));
        let hook = Arc::new(ReportExitToAssistant::new(assistant));
        let mut in_process = InProcessInvoker::new();
        let mut commands = CommandInvoker::new(hook);
        let mut command_functions = HashMap::new();
        for labourer in task_config.labourers_resolved() {
            let function = labourer.function().to_owned();
            if let Some(command) = local.commands.get(&labourer.id) {
                let spec = command_spec(&labourer.id, command, local.base_dir.as_deref())?;
                commands = commands.register(function.clone(), spec);
                command_functions.insert(function, labourer.id.clone());
                continue;
            }
            let (name, work_ms) = match local.workers.get(&labourer.id) {
                Some(worker) => (worker.worker.as_str(), worker.work_ms),
                None => (labourer.id.as_str(), 0),
            };
            let Some(factory) = registry.factories.get(name) else {
                return Err(no_worker(&labourer, name, registry));
            };
            let handler = factory(Duration::from_millis(work_ms), Arc::clone(&reporter));
            in_process = in_process.register_shared(function, handler);
        }
        Ok(LocalInvoker {
            in_process,
            commands,
            command_functions,
            deliveries: Arc::new(OnceLock::new()),
        })
    }

    /// Appends one JSON line per invocation to `path` from now on: `{"task_id": "...", "attempt": n}`
    /// (`attempt` = the payload's `attempts` + 1), the delivery log the queue checker
    /// (`sosw::testing::checker`, feature `test-util`) reads. The file is opened for appending, so a
    /// resumed run adds to the log of the run it continues. Set once; a second call is an error.
    pub fn log_deliveries_to(&self, path: &Path) -> Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        self.deliveries
            .set(Mutex::new(file))
            .map_err(|_| Error::invalid("delivery log", "a delivery log is already set"))
    }

    /// Writes the delivery of `payload` to the delivery log, if one is set.
    fn log_delivery(&self, payload: &Value) -> Result<()> {
        let Some(log) = self.deliveries.get() else {
            return Ok(());
        };
        let task_id = payload.get("task_id").cloned().unwrap_or(Value::Null);
        let attempts = payload.get("attempts").and_then(Value::as_u64).unwrap_or(0);
        let line = serde_json::json!({"task_id": task_id, "attempt": attempts + 1});
        let mut file = log
            .lock()
            .map_err(|_| Error::invalid("delivery log", "a writer panicked"))?;
        writeln!(file, "{line}").map_err(|source| Error::Io {
            path: "the delivery log".into(),
            source,
        })
    }

    /// Workers and processes running now.
    pub fn in_flight(&self) -> usize {
        self.in_process.in_flight() + self.commands.in_flight()
    }

    /// Notifies `ended` each time a worker or process ends, after its outcome is reported.
    pub fn notify_ended(&self, ended: Arc<tokio::sync::Notify>) {
        self.in_process.notify_ended(Arc::clone(&ended));
        self.commands.notify_ended(ended);
    }

    /// Waits until no worker or process runs.
    pub async fn wait_idle(&self) {
        self.in_process.wait_idle().await;
        self.commands.wait_idle().await;
    }

    /// Kills every running worker process (with everything it started) and starts no more; their
    /// tasks are not reported, so they expire and run again on a resumed run, as after a crash.
    pub fn stop(&self) {
        self.commands.stop();
    }

    /// Checks that the command of `labourer_id`, if it runs as one, can start: the error names the
    /// labourer, the command and why it cannot.
    pub fn check_command(&self, labourer_id: &str) -> Result<()> {
        for (function, id) in &self.command_functions {
            if id != labourer_id {
                continue;
            }
            if let Some(spec) = self.commands.spec(function) {
                spec.check()
                    .map_err(|reason| cannot_start(labourer_id, &spec.display(), &reason))?;
            }
        }
        Ok(())
    }

    /// The configuration error that stops a run: a worker process that could not start.
    pub fn fatal_error(&self) -> Option<Error> {
        let failure = self.commands.start_failure()?;
        let labourer = self
            .command_functions
            .get(&failure.function)
            .map_or(failure.function.as_str(), String::as_str);
        Some(cannot_start(labourer, &failure.command, &failure.reason))
    }
}

/// A `command` labourer whose program cannot start: a config error naming the labourer, the command
/// and the reason.
fn cannot_start(labourer_id: &str, command: &str, reason: &str) -> Error {
    Error::Config {
        document: LOCAL_CONFIG_NAME.to_owned(),
        path: format!("commands.{labourer_id}.command"),
        message: format!(
            "labourer `{labourer_id}` cannot start its command `{command}`: {reason}. Relative \
             paths are relative to the config directory"
        ),
    }
}

/// The process of one `command` labourer, its relative paths resolved against `base` (the config
/// directory).
pub fn command_spec(
    labourer_id: &str,
    command: &super::CommandLabourer,
    base: Option<&Path>,
) -> Result<CommandSpec> {
    let Some((program, args)) = command.command.split_first() else {
        return Err(Error::Config {
            document: LOCAL_CONFIG_NAME.to_owned(),
            path: format!("commands.{labourer_id}.command"),
            message: format!(
                "labourer `{labourer_id}` has an empty command: give the program and its \
                 arguments, e.g. [\"python3\", \"../../workers/hashtags.py\"]"
            ),
        });
    };
    let resolve = |path: PathBuf| {
        // `./worker.sh` names `<base>/worker.sh`, and says so in messages.
        let path = path
            .strip_prefix(".")
            .map_or(path.clone(), Path::to_path_buf);
        match base {
            _ if path.is_absolute() => path,
            Some(base) => base.join(path),
            None => std::path::absolute(&path).unwrap_or(path),
        }
    };
    let mut program = PathBuf::from(program);
    // A bare name is looked up in PATH; anything with a directory in it is a path.
    if program.components().count() > 1 {
        program = resolve(program);
    }
    let mut spec = CommandSpec::new(program).args(args.iter().cloned());
    let dir = match &command.dir {
        Some(dir) => Some(resolve(dir.clone())),
        None => base.map(Path::to_path_buf),
    };
    if let Some(dir) = dir {
        spec = spec.current_dir(dir);
    }
    for (key, value) in &command.env {
        spec = spec.env(key.clone(), value.clone());
    }
    if let Some(secs) = command.timeout_secs {
        spec = spec.timeout(Duration::from_secs(secs));
    }
    Ok(spec)
}

fn no_worker(labourer: &Labourer, name: &str, registry: &WorkerRegistry) -> Error {
    let known: Vec<&str> = registry.names().collect();
    Error::invalid(
        "local config",
        format!(
            "labourer `{}` has no way to run here: no worker named `{name}` is registered (known: {}) \
             and `sosw_local_config.commands` has no entry for it; add \
             `\"workers\": {{\"{}\": {{\"worker\": \"<name>\"}}}}` or \
             `\"commands\": {{\"{}\": {{\"command\": [\"<program>\", ...]}}}}` to sosw_local_config.json",
            labourer.id,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
            labourer.id,
            labourer.id
        ),
    )
}

#[async_trait]
impl Invoker for LocalInvoker {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
        self.log_delivery(payload)?;
        if self.command_functions.contains_key(function) {
            self.commands.invoke(function, payload).await
        } else {
            self.in_process.invoke(function, payload).await
        }
    }
}

/// An [`ExitHook`] that reports a process's exit to the worker assistant, as a Lambda worker reports
/// its outcome: exit code 0 completes the task; any other exit is a retryable failure with the exit
/// under `result.exit` and the process's last lines under `result.output`, so the task retries at once (with the labourer's delay) and dies after
/// `max_attempts`.
pub struct ReportExitToAssistant {
    assistant: Arc<WorkerAssistant>,
}

impl ReportExitToAssistant {
    /// A hook reporting through `assistant`.
    pub fn new(assistant: Arc<WorkerAssistant>) -> Self {
        ReportExitToAssistant { assistant }
    }
}

#[async_trait]
impl ExitHook for ReportExitToAssistant {
    async fn exited(&self, function: &str, payload: &Value, exit: ProcessExit, output: OutputTail) {
        let Some(task_id) = payload
            .get("task_id")
            .and_then(Value::as_str)
            .and_then(|id| TaskId::new(id).ok())
        else {
            tracing::warn!(function, %exit, "a command worker's payload has no valid task_id");
            return;
        };
        let mut request = if exit.success() {
            AssistantRequest::completed(task_id)
        } else {
            let mut failed = AssistantRequest::failed(task_id, true);
            failed.result.extend(failure_result(&exit, &output));
            failed
        };
        request.attempt = payload
            .get("attempts")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n + 1).ok());
        if let Err(err) = self.assistant.handle(&request, &mut Stats::new()).await {
            tracing::warn!(function, task_id = %request.task_id, %exit, error = %err,
                "a command worker's exit could not be reported; the task will expire and retry");
        }
    }
}

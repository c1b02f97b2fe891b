//! `command` labourers: one child process per task.
//!
//! The contract, kept deliberately small:
//! * the process is `program args...` with the configured environment and working directory; stdout
//!   and stderr are inherited (the worker's logs go where the runner's go);
//! * the worker payload (sosw 0.7's contract, see
//!   [`Task::worker_payload`](sosw_core::task::Task::worker_payload)) is written to its stdin as one JSON
//!   document, then stdin is closed;
//! * exit status 0 means the task succeeded, anything else (a non-zero code, a signal, the optional
//!   timeout) that it failed;
//! * [`CommandInvoker::invoke`] returns [`InvokeOutcome::Accepted`] as soon as the process has started
//!   ([`InvokeOutcome::Rejected`] if it cannot start or the function has no command), and the
//!   [`ExitHook`] the caller provides hears how it ended. [`ReportExitToStore`] is the usual hook: it
//!   completes or records a failure of the task in the store.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use super::tracker::Tracker;
use sosw_core::clock::Clock;
use sosw_core::error::Result;
use sosw_core::invoke::{InvokeOutcome, Invoker};
use sosw_core::store::{ReportOutcome, TaskReport, TaskReports};
use sosw_core::task::TaskId;

/// How to start the process of one `command` labourer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program: a path, or a name looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Working directory; default the runner's.
    pub current_dir: Option<PathBuf>,
    /// Kill the process after this long and report [`ProcessExit::TimedOut`]; default no limit.
    pub timeout: Option<Duration>,
}

impl CommandSpec {
    /// `program` with no arguments, no extra environment and no timeout.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        CommandSpec {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            timeout: None,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            // A runner that goes away takes its workers with it instead of leaving orphans.
            .kill_on_drop(true);
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }
}

/// How a `command` labourer's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessExit {
    /// It exited with this code; 0 is success.
    Exited(i32),
    /// It was ended by a signal.
    Signalled,
    /// It ran past [`CommandSpec::timeout`] and was killed.
    TimedOut,
    /// Waiting for it failed.
    WaitFailed(String),
}

impl ProcessExit {
    /// Whether the task succeeded: exit code 0.
    pub fn success(&self) -> bool {
        *self == ProcessExit::Exited(0)
    }

    fn from_status(status: ExitStatus) -> Self {
        match status.code() {
            Some(code) => ProcessExit::Exited(code),
            None => ProcessExit::Signalled,
        }
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessExit::Exited(code) => write!(f, "exit code {code}"),
            ProcessExit::Signalled => f.write_str("killed by a signal"),
            ProcessExit::TimedOut => f.write_str("timed out"),
            ProcessExit::WaitFailed(e) => write!(f, "waiting for it failed: {e}"),
        }
    }
}

/// Hears how each process of a [`CommandInvoker`] ended.
#[async_trait]
pub trait ExitHook: Send + Sync + 'static {
    /// The process started for `function` with `payload` on its stdin ended with `exit`.
    async fn exited(&self, function: &str, payload: &Value, exit: ProcessExit);
}

/// Runs a child process per task for the registered `command` labourers.
#[derive(Clone)]
pub struct CommandInvoker {
    commands: HashMap<String, CommandSpec>,
    hook: Arc<dyn ExitHook>,
    tracker: Tracker,
}

impl fmt::Debug for CommandInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandInvoker")
            .field("commands", &self.commands)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl CommandInvoker {
    /// An invoker with no commands whose process exits go to `hook`.
    pub fn new(hook: Arc<dyn ExitHook>) -> Self {
        CommandInvoker {
            commands: HashMap::new(),
            hook,
            tracker: Tracker::default(),
        }
    }

    /// Registers the command of `function` (a labourer id or function name).
    pub fn register(mut self, function: impl Into<String>, spec: CommandSpec) -> Self {
        self.commands.insert(function.into(), spec);
        self
    }

    /// Processes running now (started and not yet reported to the hook).
    pub fn in_flight(&self) -> usize {
        self.tracker.running()
    }

    /// Waits until every started process has ended and its hook has returned.
    pub async fn wait_idle(&self) {
        self.tracker.wait_idle().await;
    }
}

#[async_trait]
impl Invoker for CommandInvoker {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
        let Some(spec) = self.commands.get(function) else {
            return Ok(InvokeOutcome::Rejected(format!(
                "no command is registered for `{function}`"
            )));
        };
        let input = match serde_json::to_vec(payload) {
            Ok(bytes) => bytes,
            Err(e) => {
                return Ok(InvokeOutcome::Rejected(format!(
                    "the payload cannot be written as JSON: {e}"
                )));
            }
        };
        let child = match spec.command().spawn() {
            Ok(child) => child,
            Err(e) => {
                return Ok(InvokeOutcome::Rejected(format!(
                    "cannot start `{}` for `{function}`: {e}",
                    spec.program.display()
                )));
            }
        };
        let job = self.tracker.start();
        let hook = Arc::clone(&self.hook);
        let (function, payload, timeout) = (function.to_string(), payload.clone(), spec.timeout);
        tokio::spawn(async move {
            let _job = job;
            let exit = supervise(child, input, timeout).await;
            hook.exited(&function, &payload, exit).await;
        });
        Ok(InvokeOutcome::Accepted)
    }
}

/// Feeds `input` to the child's stdin, closes it, and waits for the child (killing it at `timeout`).
async fn supervise(mut child: Child, input: Vec<u8>, timeout: Option<Duration>) -> ProcessExit {
    if let Some(mut stdin) = child.stdin.take() {
        // A worker that exits without reading its input closes the pipe: not our failure, its exit
        // status tells.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
    }
    let waited = match timeout {
        None => child.wait().await,
        Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
            Ok(waited) => waited,
            Err(_) => {
                let _ = child.kill().await;
                return ProcessExit::TimedOut;
            }
        },
    };
    match waited {
        Ok(status) => ProcessExit::from_status(status),
        Err(e) => ProcessExit::WaitFailed(e.to_string()),
    }
}

/// The usual [`ExitHook`]: exit code 0 completes the task in the store, anything else records a failure
/// report (`failed_attempts += 1`, with `result_exit` saying how it ended). The task is found by the
/// `task_id` of its payload.
pub struct ReportExitToStore {
    store: Arc<dyn TaskReports>,
    clock: Arc<dyn Clock>,
}

impl ReportExitToStore {
    /// A hook reporting to `store` at `clock`'s time.
    pub fn new(store: Arc<dyn TaskReports>, clock: Arc<dyn Clock>) -> Self {
        ReportExitToStore { store, clock }
    }
}

#[async_trait]
impl ExitHook for ReportExitToStore {
    async fn exited(&self, function: &str, payload: &Value, exit: ProcessExit) {
        let Some(task_id) = payload_task_id(payload) else {
            tracing::warn!(function, %exit, "a command worker's payload has no valid task_id");
            return;
        };
        let now = self.clock.now_secs();
        let reported = if exit.success() {
            self.store
                .complete(&task_id, &TaskReport::default(), now)
                .await
        } else {
            let mut report = TaskReport::default();
            report
                .result
                .insert("exit".into(), Value::from(exit.to_string()));
            self.store.record_failure(&task_id, &report, now).await
        };
        match reported {
            Ok(ReportOutcome::Recorded(_)) => {
                tracing::debug!(function, task_id = %task_id, %exit, "command worker reported");
            }
            Ok(other) => {
                tracing::info!(function, task_id = %task_id, %exit, outcome = ?other, "report not recorded");
            }
            Err(e) => {
                tracing::warn!(function, task_id = %task_id, %exit, error = %e, "report failed");
            }
        }
    }
}

fn payload_task_id(payload: &Value) -> Option<TaskId> {
    payload
        .get("task_id")
        .and_then(Value::as_str)
        .and_then(|id| TaskId::new(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// Remembers every exit.
    #[derive(Default)]
    struct Exits(Mutex<Vec<(String, Value, ProcessExit)>>);

    #[async_trait]
    impl ExitHook for Exits {
        async fn exited(&self, function: &str, payload: &Value, exit: ProcessExit) {
            self.0
                .lock()
                .expect("lock")
                .push((function.to_string(), payload.clone(), exit));
        }
    }

    fn sh(script: &str) -> CommandSpec {
        CommandSpec::new("sh").args(["-c", script])
    }

    async fn run_one(spec: CommandSpec, payload: Value) -> (InvokeOutcome, Vec<ProcessExit>) {
        let exits = Arc::new(Exits::default());
        let invoker = CommandInvoker::new(exits.clone()).register("w", spec);
        let outcome = invoker.invoke("w", &payload).await.expect("invoke");
        invoker.wait_idle().await;
        let seen = exits.0.lock().expect("lock");
        (outcome, seen.iter().map(|(_, _, e)| e.clone()).collect())
    }

    #[tokio::test]
    async fn the_payload_arrives_on_stdin_and_the_exit_code_reaches_the_hook() {
        // Exits 0 only if stdin holds exactly the payload's JSON.
        let payload = json!({"task_id": "t1", "n": 5});
        let expected = serde_json::to_string(&payload).expect("json");
        let spec = sh(&format!(r#"test "$(cat)" = '{expected}'"#));
        let (outcome, exits) = run_one(spec, payload).await;
        assert_eq!(outcome, InvokeOutcome::Accepted);
        assert_eq!(exits, vec![ProcessExit::Exited(0)]);
        assert!(exits[0].success());
    }

    #[tokio::test]
    async fn a_non_zero_exit_is_a_failure() {
        let (outcome, exits) = run_one(sh("exit 3"), json!({})).await;
        assert_eq!(outcome, InvokeOutcome::Accepted);
        assert_eq!(exits, vec![ProcessExit::Exited(3)]);
        assert!(!exits[0].success());
    }

    #[tokio::test]
    async fn a_process_past_its_timeout_is_killed() {
        let spec = sh("sleep 30").timeout(Duration::from_millis(100));
        let (_, exits) = run_one(spec, json!({})).await;
        assert_eq!(exits, vec![ProcessExit::TimedOut]);
    }

    #[tokio::test]
    async fn a_program_that_cannot_start_or_is_not_registered_is_rejected() {
        let spec = CommandSpec::new("./no-such-program-here");
        let (outcome, exits) = run_one(spec, json!({})).await;
        assert!(
            matches!(&outcome, InvokeOutcome::Rejected(m) if m.contains("cannot start")),
            "{outcome:?}"
        );
        assert!(
            exits.is_empty(),
            "the hook hears only about started processes"
        );
        let invoker = CommandInvoker::new(Arc::new(Exits::default()));
        let outcome = invoker.invoke("other", &json!({})).await.expect("invoke");
        assert!(matches!(outcome, InvokeOutcome::Rejected(_)));
    }

    #[tokio::test]
    async fn report_exit_to_store_completes_on_zero_and_records_a_failure_otherwise() {
        use crate::SqliteTaskStore;
        use sosw_core::clock::ManualClock;
        use sosw_core::store::{ClaimOutcome, EnqueueMode, TaskClaims, TaskLookup, TaskQueue};
        use sosw_core::task::Task;

        let store = Arc::new(SqliteTaskStore::in_memory().expect("store"));
        let tasks = [
            Task::new("ok", "w", json!({}), 2000, 0.0),
            Task::new("bad", "w", json!({}), 3000, 0.0),
        ];
        store
            .enqueue(&tasks, EnqueueMode::Fresh)
            .await
            .expect("enqueue");
        let hook = Arc::new(ReportExitToStore::new(
            store.clone(),
            Arc::new(ManualClock::at_secs(1_700_000_100)),
        ));
        let invoker = CommandInvoker::new(hook)
            .register("ok", sh("cat > /dev/null; exit 0"))
            .register("bad", sh("cat > /dev/null; exit 4"));
        for task in &tasks {
            let ClaimOutcome::Claimed(claimed) = store
                .claim(&task.task_id, 1_700_000_000)
                .await
                .expect("claim")
            else {
                panic!("a queued task is claimed");
            };
            let id = claimed.task_id.as_str().to_string();
            let outcome = invoker
                .invoke(&id, &claimed.worker_payload())
                .await
                .expect("invoke");
            assert_eq!(outcome, InvokeOutcome::Accepted);
        }
        invoker.wait_idle().await;
        let ok = store
            .get_task(&tasks[0].task_id)
            .await
            .expect("get")
            .expect("live");
        assert_eq!(ok.completed_at, Some(1_700_000_100));
        let bad = store
            .get_task(&tasks[1].task_id)
            .await
            .expect("get")
            .expect("live");
        assert_eq!(bad.completed_at, None);
        assert_eq!(bad.failed_attempts, Some(1));
        assert_eq!(bad.extra.get("result_exit"), Some(&json!("exit code 4")));
    }

    #[test]
    fn exits_read_as_sentences() {
        assert_eq!(ProcessExit::Exited(2).to_string(), "exit code 2");
        assert_eq!(ProcessExit::TimedOut.to_string(), "timed out");
        assert_eq!(payload_task_id(&json!({"task_id": ""})), None);
        assert_eq!(
            payload_task_id(&json!({"task_id": "a"})).map(|t| t.to_string()),
            Some("a".into())
        );
    }
}

//! `command` labourers: one child process per task.
//!
//! The contract, kept deliberately small:
//! * the process is `program args...` with the configured environment and working directory, in a
//!   process group of its own; its stdout and stderr are captured (each line is logged at `debug`, and
//!   the last lines are kept, see [`OutputTail`]), so they never mix into the runner's own output;
//! * the worker payload (sosw 0.7's contract, see
//!   [`Task::worker_payload`](sosw_core::task::Task::worker_payload)) is written to its stdin as one JSON
//!   document, then stdin is closed;
//! * exit status 0 means the task succeeded, anything else (a non-zero code, a signal, the optional
//!   timeout) that it failed;
//! * when the process ends, on a timeout, or when [`CommandInvoker::stop`] is called or the invoker's
//!   runtime goes away, its whole process group is killed: a wrapper script's children go with it and
//!   keep no pipe open;
//! * [`CommandInvoker::invoke`] returns [`InvokeOutcome::Accepted`] as soon as the process has started
//!   ([`InvokeOutcome::Rejected`] if it cannot start, which [`CommandInvoker::start_failure`] then
//!   reports too, or the function has no command), and the [`ExitHook`] the caller provides hears how
//!   it ended. [`ReportExitToStore`] is the usual hook: it completes or records a failure of the task in
//!   the store.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::tracker::Tracker;
use sosw_core::clock::Clock;
use sosw_core::error::Result;
use sosw_core::invoke::{InvokeOutcome, Invoker};
use sosw_core::store::{ReportOutcome, TaskReport, TaskReports};
use sosw_core::task::TaskId;

/// Most lines of a process's output kept in its [`OutputTail`].
pub const TAIL_LINES: usize = 20;

/// Most bytes of a process's output kept in its [`OutputTail`] (a longer line is cut).
pub const TAIL_BYTES: usize = 4096;

/// How long the output of a process is read after its process group was killed: a process that left
/// the group may still hold the pipes, and is not waited for longer.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

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
    /// Kill the process group after this long and report [`ProcessExit::TimedOut`]; default no limit.
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

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The command line as one string, for messages: `python3 worker.py`.
    pub fn display(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks, without starting anything, that the program can start: a path must be an executable
    /// file, a bare name must be found as one in `PATH` (the spec's own `PATH` if it sets one), and the
    /// working directory must exist. Returns the program's path, or why it cannot start.
    pub fn check(&self) -> std::result::Result<PathBuf, String> {
        if let Some(dir) = &self.current_dir
            && !dir.is_dir()
        {
            return Err(format!(
                "its working directory `{}` is not a directory",
                dir.display()
            ));
        }
        if self.program.as_os_str().is_empty() {
            return Err("the program is an empty string".into());
        }
        if self.program.components().count() > 1 || self.program.is_absolute() {
            let path = match (&self.current_dir, self.program.is_relative()) {
                (Some(dir), true) => dir.join(&self.program),
                _ => self.program.clone(),
            };
            return executable(&path).map(|()| path);
        }
        let search = self
            .env
            .iter()
            .rev()
            .find(|(key, _)| key == "PATH")
            .map(|(_, value)| value.into())
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        for dir in std::env::split_paths(&search) {
            let candidate = dir.join(&self.program);
            if executable(&candidate).is_ok() {
                return Ok(candidate);
            }
        }
        Err(format!(
            "`{}` is not found in PATH ({})",
            self.program.display(),
            std::env::join_paths(std::env::split_paths(&search))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        ))
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own: a timeout or a stop ends the process and everything it started, and
            // a Ctrl-C on the terminal reaches sosw only, which then ends the groups itself.
            .process_group(0)
            // A runner that goes away takes its workers with it instead of leaving orphans.
            .kill_on_drop(true);
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }
}

/// Whether `path` is a file this process may execute, or why not.
fn executable(path: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(err) => Err(format!("`{}`: {err}", path.display())),
        Ok(meta) if meta.is_dir() => Err(format!("`{}` is a directory", path.display())),
        Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err(format!(
            "`{}` is not executable (chmod +x it, or run it through its interpreter)",
            path.display()
        )),
        Ok(_) => Ok(()),
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

/// The last lines a process wrote to its stdout and stderr (in the order they came), at most
/// [`TAIL_LINES`] lines and [`TAIL_BYTES`] bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputTail {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: u64,
}

impl OutputTail {
    /// Adds a line, dropping the oldest ones past the bounds.
    pub fn push(&mut self, line: impl Into<String>) {
        let mut line: String = line.into();
        if line.len() > TAIL_BYTES {
            let mut cut = TAIL_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES || self.bytes > TAIL_BYTES {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.dropped += 1;
            }
        }
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(String::as_str)
    }

    /// Whether the process wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines written before the kept ones.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept lines joined with newlines.
    pub fn text(&self) -> String {
        self.lines().collect::<Vec<_>>().join("\n")
    }
}

/// Hears how each process of a [`CommandInvoker`] ended.
#[async_trait]
pub trait ExitHook: Send + Sync + 'static {
    /// The process started for `function` with `payload` on its stdin ended with `exit`, having
    /// written `output` last.
    async fn exited(&self, function: &str, payload: &Value, exit: ProcessExit, output: OutputTail);
}

/// A process that could not start: the command, for which function, and the system's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// The function (labourer) it was started for.
    pub function: String,
    /// The command line.
    pub command: String,
    /// Why it could not start, as the system said.
    pub reason: String,
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot start `{}` for `{}`: {}",
            self.command, self.function, self.reason
        )
    }
}

/// The process groups running now, to end them all at a stop.
#[derive(Debug, Default, Clone)]
struct Groups(Arc<Mutex<HashSet<i32>>>);

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i32>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One process group: killed when dropped, so a supervisor that is cancelled (a runtime shutting
/// down) leaves nothing behind.
struct Group {
    pgid: Option<i32>,
    groups: Groups,
}

impl Group {
    fn new(pid: Option<u32>, groups: &Groups) -> Self {
        let pgid = pid.and_then(|pid| i32::try_from(pid).ok());
        if let Some(pgid) = pgid {
            groups.lock().insert(pgid);
        }
        Group {
            pgid,
            groups: groups.clone(),
        }
    }

    /// Sends SIGKILL to every process of the group (none left is fine).
    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            kill_group(pgid);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            kill_group(pgid);
            self.groups.lock().remove(&pgid);
        }
    }
}

fn kill_group(pgid: i32) {
    match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(err) => tracing::warn!(pgid, error = %err, "cannot kill a worker's process group"),
    }
}

/// Runs a child process per task for the registered `command` labourers.
#[derive(Clone)]
pub struct CommandInvoker {
    commands: HashMap<String, CommandSpec>,
    hook: Arc<dyn ExitHook>,
    tracker: Tracker,
    groups: Groups,
    stopping: Arc<AtomicBool>,
    start_failure: Arc<Mutex<Option<StartFailure>>>,
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
            groups: Groups::default(),
            stopping: Arc::new(AtomicBool::new(false)),
            start_failure: Arc::new(Mutex::new(None)),
        }
    }

    /// Registers the command of `function` (a labourer id or function name).
    pub fn register(mut self, function: impl Into<String>, spec: CommandSpec) -> Self {
        self.commands.insert(function.into(), spec);
        self
    }

    /// The command registered for `function`.
    pub fn spec(&self, function: &str) -> Option<&CommandSpec> {
        self.commands.get(function)
    }

    /// Processes running now (started and not yet reported to the hook).
    pub fn in_flight(&self) -> usize {
        self.tracker.running()
    }

    /// Waits until every started process has ended and its hook has returned.
    pub async fn wait_idle(&self) {
        self.tracker.wait_idle().await;
    }

    /// Notifies `ended` each time a process ends (after its outcome is reported), so a caller can
    /// refill the freed slot at once.
    pub fn notify_ended(&self, ended: Arc<tokio::sync::Notify>) {
        self.tracker.notify_ended(ended);
    }

    /// The first process that could not start, if any did: a configuration error that retrying does
    /// not mend.
    pub fn start_failure(&self) -> Option<StartFailure> {
        self.start_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Kills the process group of every running process; their exits are not reported to the hook
    /// (their tasks expire and run again, as after a crash), and no process starts from now on.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let groups: Vec<i32> = self.groups.lock().iter().copied().collect();
        for pgid in groups {
            kill_group(pgid);
        }
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
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(InvokeOutcome::Rejected("the invoker is stopping".into()));
        }
        let input = match serde_json::to_vec(payload) {
            Ok(bytes) => bytes,
            Err(e) => {
                return Ok(InvokeOutcome::Rejected(format!(
                    "the payload cannot be written as JSON: {e}"
                )));
            }
        };
        let mut child = match spec.command().spawn() {
            Ok(child) => child,
            Err(e) => {
                let failure = StartFailure {
                    function: function.to_owned(),
                    command: spec.display(),
                    reason: e.to_string(),
                };
                let message = failure.to_string();
                self.start_failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(failure);
                return Ok(InvokeOutcome::Rejected(message));
            }
        };
        let group = Group::new(child.id(), &self.groups);
        let tail = Arc::new(Mutex::new(OutputTail::default()));
        let task_id = payload
            .get("task_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        .map(|stream| {
            tokio::spawn(read_lines(
                stream,
                Arc::clone(&tail),
                function.to_owned(),
                task_id.clone(),
            ))
        })
        .collect();
        let job = self.tracker.start();
        let hook = Arc::clone(&self.hook);
        let stopping = Arc::clone(&self.stopping);
        let (function, payload, timeout) = (function.to_string(), payload.clone(), spec.timeout);
        tokio::spawn(async move {
            let _job = job;
            let exit = supervise(child, &group, input, timeout).await;
            // Whatever the worker left running goes now, so that its pipes close.
            group.kill();
            for mut reader in readers {
                if tokio::time::timeout(DRAIN_LIMIT, &mut reader)
                    .await
                    .is_err()
                {
                    reader.abort();
                }
            }
            drop(group);
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let output = std::mem::take(&mut *tail.lock().unwrap_or_else(|p| p.into_inner()));
            hook.exited(&function, &payload, exit, output).await;
        });
        Ok(InvokeOutcome::Accepted)
    }
}

/// Reads `stream` to its end, logging each line and keeping the last ones in `tail`. Lines are cut
/// at [`TAIL_BYTES`], so a process writing without newlines costs no more memory.
async fn read_lines(
    mut stream: Box<dyn AsyncRead + Send + Unpin>,
    tail: Arc<Mutex<OutputTail>>,
    function: String,
    task_id: String,
) {
    let mut chunk = [0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    let flush = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .to_owned();
        tracing::debug!(function = %function, task_id = %task_id, "worker: {text}");
        tail.lock().unwrap_or_else(|p| p.into_inner()).push(text);
        line.clear();
    };
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for piece in chunk[..n].split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match piece.split_last() {
                Some((&b'\n', body)) => (body, true),
                _ => (piece, false),
            };
            let room = TAIL_BYTES.saturating_sub(line.len());
            line.extend_from_slice(&body[..body.len().min(room)]);
            if ends {
                flush(&mut line);
            }
        }
    }
    if !line.is_empty() {
        flush(&mut line);
    }
}

/// Feeds `input` to the child's stdin, closes it, and waits for the child (killing its group at
/// `timeout`).
async fn supervise(
    mut child: Child,
    group: &Group,
    input: Vec<u8>,
    timeout: Option<Duration>,
) -> ProcessExit {
    if let Some(mut stdin) = child.stdin.take() {
        // Written beside the wait, so a worker that never reads a large payload does not block it. A
        // worker that exits without reading its input closes the pipe: not our failure, its exit
        // status tells.
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let waited = match timeout {
        None => child.wait().await,
        Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
            Ok(waited) => waited,
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
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
/// report (`failed_attempts += 1`, with `result_exit` saying how it ended and `result_output` the last
/// lines it wrote). The task is found by the `task_id` of its payload.
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

/// The `result` keys of a failed process's report: `exit` (how it ended) and, when it wrote
/// anything, `output` (its last lines).
pub fn failure_result(exit: &ProcessExit, output: &OutputTail) -> Vec<(String, Value)> {
    let mut result = vec![("exit".to_owned(), Value::from(exit.to_string()))];
    if !output.is_empty() {
        result.push(("output".to_owned(), Value::from(output.text())));
    }
    result
}

#[async_trait]
impl ExitHook for ReportExitToStore {
    async fn exited(&self, function: &str, payload: &Value, exit: ProcessExit, output: OutputTail) {
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
            report.result.extend(failure_result(&exit, &output));
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
    struct Exits(Mutex<Vec<(String, Value, ProcessExit, OutputTail)>>);

    #[async_trait]
    impl ExitHook for Exits {
        async fn exited(
            &self,
            function: &str,
            payload: &Value,
            exit: ProcessExit,
            output: OutputTail,
        ) {
            self.0.lock().expect("lock").push((
                function.to_string(),
                payload.clone(),
                exit,
                output,
            ));
        }
    }

    fn sh(script: &str) -> CommandSpec {
        CommandSpec::new("sh").args(["-c", script])
    }

    async fn run_one(spec: CommandSpec, payload: Value) -> (InvokeOutcome, Vec<ProcessExit>) {
        let (outcome, ends) = run_one_with_output(spec, payload).await;
        (outcome, ends.into_iter().map(|(e, _)| e).collect())
    }

    async fn run_one_with_output(
        spec: CommandSpec,
        payload: Value,
    ) -> (InvokeOutcome, Vec<(ProcessExit, OutputTail)>) {
        let exits = Arc::new(Exits::default());
        let invoker = CommandInvoker::new(exits.clone()).register("w", spec);
        let outcome = invoker.invoke("w", &payload).await.expect("invoke");
        invoker.wait_idle().await;
        let seen = exits.0.lock().expect("lock");
        (
            outcome,
            seen.iter()
                .map(|(_, _, e, o)| (e.clone(), o.clone()))
                .collect(),
        )
    }

    /// Whether a process with `SOSW_TEST_MARKER=<marker>` in its environment is still alive.
    fn alive(marker: &str) -> bool {
        let needle = format!("SOSW_TEST_MARKER={marker}");
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .any(|entry| {
                std::fs::read(entry.path().join("environ"))
                    .map(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                    .unwrap_or(false)
            })
    }

    #[tokio::test]
    async fn a_timeout_ends_the_whole_process_group_of_a_wrapper_script() {
        // The wrapper starts a sleeping child in the background (a grandchild of sosw's), then waits.
        let marker = format!("sosw-group-test-{}", std::process::id());
        let spec = sh("sleep 30 & echo started; wait")
            .env("SOSW_TEST_MARKER", marker.clone())
            .timeout(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let (_, ends) = run_one_with_output(spec, json!({})).await;
        assert_eq!(ends[0].0, ProcessExit::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no open pipe holds the supervisor: {:?}",
            started.elapsed()
        );
        assert_eq!(ends[0].1.text(), "started", "the output is captured");
        assert!(!alive(&marker), "the wrapper's child is gone too");
    }

    #[tokio::test]
    async fn a_wrapper_that_exits_leaves_no_child_behind_and_its_output_is_kept() {
        let marker = format!("sosw-leftover-test-{}", std::process::id());
        let script =
            "sleep 30 & for i in $(seq 1 30); do echo line $i; done; echo oops >&2; exit 5";
        let spec = sh(script).env("SOSW_TEST_MARKER", marker.clone());
        let (_, ends) = run_one_with_output(spec, json!({})).await;
        let (exit, output) = &ends[0];
        assert_eq!(*exit, ProcessExit::Exited(5));
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES, "{lines:?}");
        // stdout and stderr are read side by side: their lines interleave as they arrive.
        assert!(
            lines.contains(&"oops") && lines.contains(&"line 30"),
            "{lines:?}"
        );
        assert!(!lines.contains(&"line 1"), "{lines:?}");
        assert_eq!(output.dropped(), 11);
        assert!(
            !alive(&marker),
            "the background child is killed with the group"
        );
    }

    #[test]
    fn an_output_tail_is_bounded_in_bytes_too() {
        let mut tail = OutputTail::default();
        tail.push("x".repeat(10_000));
        assert_eq!(tail.text().len(), TAIL_BYTES);
        tail.push("y");
        assert_eq!(tail.text(), "y", "the long line made room for the new one");
        assert_eq!(tail.dropped(), 1);
    }

    #[test]
    fn check_tells_why_a_program_cannot_start() {
        assert!(CommandSpec::new("sh").check().is_ok());
        let missing = CommandSpec::new("no-such-program-sosw").check();
        assert!(
            missing
                .as_ref()
                .is_err_and(|e| e.contains("not found in PATH")),
            "{missing:?}"
        );
        let dir = CommandSpec::new("/tmp").check();
        assert!(
            dir.as_ref().is_err_and(|e| e.contains("is a directory")),
            "{dir:?}"
        );
        let plain = std::env::temp_dir().join(format!("sosw-not-exec-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").expect("write");
        let not_exec = CommandSpec::new(&plain).check();
        let _ = std::fs::remove_file(&plain);
        assert!(
            not_exec
                .as_ref()
                .is_err_and(|e| e.contains("not executable")),
            "{not_exec:?}"
        );
        let bad_dir = CommandSpec::new("sh").current_dir("/no/such/dir").check();
        assert!(
            bad_dir
                .as_ref()
                .is_err_and(|e| e.contains("working directory")),
            "{bad_dir:?}"
        );
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
        let invoker = CommandInvoker::new(Arc::new(Exits::default()))
            .register("w", CommandSpec::new("./no-such-program-here"));
        assert_eq!(invoker.start_failure(), None);
        invoker.invoke("w", &json!({})).await.expect("invoke");
        let failure = invoker.start_failure().expect("remembered");
        assert_eq!(failure.function, "w");
        assert_eq!(failure.command, "./no-such-program-here");
        assert!(failure.reason.contains("No such file"), "{failure}");
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
            .register("bad", sh("cat > /dev/null; echo no luck >&2; exit 4"));
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
        assert_eq!(bad.extra.get("result_output"), Some(&json!("no luck")));
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

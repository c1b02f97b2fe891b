//! `TaskManager` over the store under test: every method, as user code and the essentials call it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::support::{NOW, Scope, WINDOW, claim, live, put, report};
use sosw_core::Result;
use sosw_core::invoke::{InvokeOutcome, Invoker};
use sosw_core::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, MoveOutcome, ReportOutcome, TaskStore,
};
use sosw_core::task::greenfield::{INVOCATION_DELTA, invoked_at};
use sosw_core::task::receipt::{CLAIM_RECEIPT_KEY, redeem};
use sosw_core::task::{Labourer, Markers, TaskInvocation, TaskManager};

/// An invoker answering `outcome` to every call and keeping what it was sent.
struct Recording {
    outcome: InvokeOutcome,
    sent: Mutex<Vec<(String, Value)>>,
}

impl Recording {
    fn new(outcome: InvokeOutcome) -> Self {
        Recording {
            outcome,
            sent: Mutex::new(Vec::new()),
        }
    }

    fn sent(&self) -> Vec<(String, Value)> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Invoker for Recording {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((function.to_owned(), payload.clone()));
        Ok(self.outcome.clone())
    }
}

/// `create_task` puts each new task at the tail of its labourer's queue (2000, 3000, ...) with sosw 0.7's
/// payload construction; `create_tasks` writes a batch; the queue readers (`get_next_for_labourer`,
/// `get_length_of_queue_for_labourer`, `get_oldest/newest_greenfield_for_labourer`) and
/// `get_task_by_id` see them.
pub async fn task_manager_creates_tasks_and_reads_the_queue<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("tm-create");
    let tasks = TaskManager::new(Arc::clone(&store));
    assert_eq!(
        tasks
            .get_oldest_greenfield_for_labourer(&s.labourer, NOW)
            .await
            .expect("oldest"),
        None,
        "an empty queue has no head"
    );
    let first = tasks
        .create_task(&s.labourer, json!({"word": "one"}), NOW)
        .await
        .expect("create_task");
    let second = tasks
        .create_task(&s.labourer, json!("{\"word\": \"two\"}"), NOW)
        .await
        .expect("create_task");
    let third = tasks
        .create_task(&s.labourer, json!("plain text"), NOW)
        .await
        .expect("create_task");
    assert_eq!(
        [first.greenfield, second.greenfield, third.greenfield],
        [2000, 3000, 4000],
        "each new task goes to the queue's tail"
    );
    assert_eq!(second.payload, json!({"word": "two"}), "JSON text is read");
    assert_eq!(
        third.payload,
        json!({"payload": "plain text"}),
        "other text is wrapped"
    );
    assert_eq!((first.attempts, first.created_at), (0, NOW as f64));
    assert_eq!(
        tasks.get_task_by_id(&second.task_id).await.expect("get"),
        Some(second.clone()),
        "the row is what create_task returned"
    );

    let batch = vec![s.task(10, 5000), s.task(11, 6000)];
    let written = tasks
        .create_tasks(&batch, EnqueueMode::Fresh)
        .await
        .expect("create_tasks");
    assert_eq!(written.written, 2);
    let again = tasks
        .create_tasks(&batch, EnqueueMode::SkipExisting)
        .await
        .expect("create_tasks");
    assert_eq!(
        (again.written, again.skipped_existing),
        (0, 2),
        "existing ids skipped"
    );

    assert_eq!(
        tasks
            .get_length_of_queue_for_labourer(&s.labourer, NOW)
            .await
            .expect("length"),
        5
    );
    assert_eq!(
        tasks
            .get_oldest_greenfield_for_labourer(&s.labourer, NOW)
            .await
            .expect("oldest"),
        Some(2000)
    );
    assert_eq!(
        tasks
            .get_newest_greenfield_for_labourer(&s.labourer, NOW)
            .await
            .expect("newest"),
        Some(6000)
    );
    let next = tasks
        .get_next_for_labourer(&s.labourer, NOW, 2)
        .await
        .expect("next");
    assert_eq!(
        next.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>(),
        vec![first.task_id.clone(), second.task_id.clone()],
        "lowest greenfield first, within the limit"
    );
    assert_eq!(
        tasks
            .get_length_of_queue_for_labourer(&s.other(), NOW)
            .await
            .expect("length"),
        0,
        "other labourers' queues are their own"
    );
}

/// `invoke_task` claims and invokes with the pre-claim worker payload; a task already claimed is
/// skipped without an invocation; a refused invocation releases the claim; `mark_task_invoked`,
/// `release_claim` and `get_count_of_running_tasks_for_labourer` follow the greenfield rules.
pub async fn task_manager_invokes_tasks_and_counts_running<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("tm-invoke");
    let tasks = TaskManager::new(Arc::clone(&store));
    put(&*store, &s.queued(3)).await;
    let mut labourer = Labourer::new(&s.labourer);
    labourer.arn = Some(format!(
        "arn:aws:lambda:us-west-2:000000000000:function:{}",
        s.labourer
    ));

    let accepting = Recording::new(InvokeOutcome::Accepted);
    let outcome = tasks
        .invoke_task(&accepting, &labourer, &s.id(0), NOW)
        .await
        .expect("invoke_task");
    assert_eq!(outcome, TaskInvocation::Invoked);
    let sent = accepting.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].0,
        labourer.function(),
        "sent to the labourer's function"
    );
    // A store that gives claim receipts adds one under `sosw_claim`; the rest is sosw 0.7's payload.
    let mut payload = sent[0].1.clone();
    let receipt = payload
        .as_object_mut()
        .and_then(|event| event.shift_remove(CLAIM_RECEIPT_KEY));
    assert_eq!(
        payload,
        s.task(0, 2000).worker_payload(),
        "the worker gets the pre-claim row's payload"
    );
    let row = live(&*store, &s.id(0)).await;
    assert_eq!((row.greenfield, row.attempts), (invoked_at(NOW), 1));
    if receipt.is_some() {
        let (claimed, _) =
            redeem(&sent[0].1, &s.id(0)).expect("the receipt in the event is redeemed");
        assert_eq!(claimed, row, "the receipt names the claimed row exactly");
    }

    let again = tasks
        .invoke_task(&accepting, &labourer, &s.id(0), NOW + 1)
        .await
        .expect("invoke_task");
    assert_eq!(
        again,
        TaskInvocation::Skipped,
        "an invoked task is not invoked again"
    );
    assert_eq!(accepting.sent().len(), 1, "nothing sent for a skipped task");

    let refusing = Recording::new(InvokeOutcome::Rejected("function missing".into()));
    let refused = tasks
        .invoke_task(&refusing, &labourer, &s.id(1), NOW)
        .await
        .expect("invoke_task");
    assert_eq!(refused, TaskInvocation::Released("function missing".into()));
    assert_eq!(
        live(&*store, &s.id(1)).await,
        s.task(1, 3000),
        "a refused task is back in the queue as it was"
    );

    let unsure = Recording::new(InvokeOutcome::Unknown("timed out".into()));
    let unknown = tasks
        .invoke_task(&unsure, &labourer, &s.id(1), NOW)
        .await
        .expect("invoke_task");
    assert_eq!(unknown, TaskInvocation::Unknown("timed out".into()));
    assert_eq!(
        live(&*store, &s.id(1)).await.greenfield,
        invoked_at(NOW),
        "an unknown outcome keeps the claim"
    );

    let claimed = match tasks.mark_task_invoked(&s.id(2), NOW).await.expect("claim") {
        ClaimOutcome::Claimed(task) => task,
        ClaimOutcome::AlreadyClaimed => panic!("a queued task is claimed"),
    };
    assert_eq!(claimed, s.task(2, 4000));
    assert_eq!(
        tasks.mark_task_invoked(&s.id(2), NOW).await.expect("claim"),
        ClaimOutcome::AlreadyClaimed
    );
    let markers = Markers::new(NOW, WINDOW);
    assert_eq!(
        tasks
            .get_count_of_running_tasks_for_labourer(&s.labourer, &markers)
            .await
            .expect("count"),
        3,
        "three invoked tasks occupy slots"
    );
    assert!(tasks.release_claim(&claimed, NOW).await.expect("release"));
    assert_eq!(
        tasks
            .get_count_of_running_tasks_for_labourer(&s.labourer, &markers)
            .await
            .expect("count"),
        2,
        "a released task frees its slot"
    );
    let later = Markers::new(NOW + i64::try_from(WINDOW).unwrap_or(0) + 1, WINDOW);
    assert_eq!(
        tasks
            .get_count_of_running_tasks_for_labourer(&s.labourer, &later)
            .await
            .expect("count"),
        0,
        "past duration + cooldown nothing runs any more"
    );
    assert_eq!(
        tasks.markers_for(&labourer, NOW).invoked,
        NOW + INVOCATION_DELTA,
        "the manager's markers are sosw 0.7's"
    );
}

/// Reports, the archive and the retry table through the manager: `mark_task_completed`,
/// `mark_task_failed`, `get_completed_tasks_for_labourer`, `get_expired_tasks_for_labourer`,
/// `archive_task`, `get_closed_task_by_id`, `get_closed_tasks_for_labourer`,
/// `get_average_labourer_duration`, `move_task_to_retry_table`, `get_tasks_to_retry_for_labourer`,
/// `get_length_of_retry_queue_for_labourer`, `get_retry_task_by_id`, `retry_task`, `retry_due_tasks`
/// and `redrive_task`.
pub async fn task_manager_closes_retries_and_redrives_tasks<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("tm-close");
    let tasks = TaskManager::new(Arc::clone(&store));
    put(&*store, &s.queued(5)).await;
    let labourer = Labourer::new(&s.labourer);
    let markers = Markers::new(NOW, WINDOW);

    // Task 0 runs for 40 s and completes; task 1 expires; task 2 fails.
    claim(&*store, &s.id(0), NOW - 100).await;
    claim(&*store, &s.id(1), NOW - 5000).await;
    claim(&*store, &s.id(2), NOW - 10).await;
    let done = tasks
        .mark_task_completed(&s.id(0), &report(json!({"rows": 3}), json!({})), NOW - 60)
        .await
        .expect("complete");
    assert!(matches!(done, ReportOutcome::Recorded(ref t) if t.completed_at == Some(NOW - 60)));
    let failed = tasks
        .mark_task_failed(
            &s.id(2),
            &report(json!({}), json!({"why": "boom"})),
            NOW - 5,
        )
        .await
        .expect("fail");
    assert!(matches!(failed, ReportOutcome::Recorded(ref t) if t.failed_attempts == Some(1)));
    let queued_done = tasks
        .mark_task_completed(&s.id(4), &report(json!({}), json!({})), NOW)
        .await
        .expect("complete");
    assert!(
        matches!(queued_done, ReportOutcome::Recorded(_)),
        "a queued task may be reported completed (it leaves the queue)"
    );
    assert_eq!(
        tasks
            .mark_task_completed(&s.id(4), &report(json!({}), json!({})), NOW)
            .await
            .expect("complete"),
        ReportOutcome::AlreadyCompleted
    );

    let completed = tasks
        .get_completed_tasks_for_labourer(&s.labourer, NOW, 10)
        .await
        .expect("completed");
    let mut completed_ids: Vec<_> = completed.iter().map(|t| t.task_id.clone()).collect();
    completed_ids.sort();
    let mut want = vec![s.id(0), s.id(4)];
    want.sort();
    assert_eq!(completed_ids, want);
    let expired = tasks
        .get_expired_tasks_for_labourer(&s.labourer, &markers, 10)
        .await
        .expect("expired");
    assert_eq!(
        expired
            .iter()
            .map(|t| t.task_id.clone())
            .collect::<Vec<_>>(),
        vec![s.id(1)]
    );

    let row0 = live(&*store, &s.id(0)).await;
    assert_eq!(
        tasks
            .archive_task(&row0, ClosedStatus::Completed, NOW)
            .await
            .expect("archive"),
        MoveOutcome::Moved
    );
    assert_eq!(
        tasks
            .archive_task(&row0, ClosedStatus::Completed, NOW)
            .await
            .expect("archive"),
        MoveOutcome::Conflict,
        "an archived task is not archived twice"
    );
    let closed = tasks
        .get_closed_task_by_id(&s.id(0))
        .await
        .expect("closed")
        .expect("task 0 is closed");
    assert_eq!(closed.closed_at, Some(NOW));
    let sample = tasks
        .get_closed_tasks_for_labourer(&s.labourer, ClosedStatus::Completed, 10)
        .await
        .expect("closed sample");
    assert_eq!(
        sample.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>(),
        vec![s.id(0)]
    );
    assert_eq!(
        tasks
            .get_average_labourer_duration(&labourer, 10)
            .await
            .expect("average"),
        Some(40),
        "claimed at NOW - 100, completed at NOW - 60"
    );

    let row1 = live(&*store, &s.id(1)).await;
    assert_eq!(
        tasks
            .move_task_to_retry_table(&row1, NOW - 1)
            .await
            .expect("to retry"),
        MoveOutcome::Moved
    );
    let row2 = live(&*store, &s.id(2)).await;
    assert_eq!(
        tasks
            .move_task_to_retry_table(&row2, NOW + 600)
            .await
            .expect("to retry"),
        MoveOutcome::Moved
    );
    assert_eq!(
        tasks
            .get_length_of_retry_queue_for_labourer(&s.labourer)
            .await
            .expect("retry length"),
        2
    );
    let due = tasks
        .get_tasks_to_retry_for_labourer(&s.labourer, NOW, 10)
        .await
        .expect("due");
    assert_eq!(
        due.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>(),
        vec![s.id(1)],
        "only the due retry"
    );
    assert_eq!(
        tasks
            .retry_due_tasks(&s.labourer, NOW, 10)
            .await
            .expect("requeue"),
        1
    );
    assert_eq!(
        live(&*store, &s.id(1)).await.greenfield,
        4999,
        "ahead of the queue head (task 3 at 5000; task 4 left the queue when it completed)"
    );
    let waiting = tasks
        .get_retry_task_by_id(&s.labourer, &s.id(2))
        .await
        .expect("retry row")
        .expect("task 2 waits for retry");
    assert_eq!(
        tasks.retry_task(&waiting, 1500).await.expect("retry_task"),
        MoveOutcome::Moved
    );
    assert_eq!(live(&*store, &s.id(2)).await.greenfield, 1500);

    let row3 = claim(&*store, &s.id(3), NOW - 9000).await;
    let row3 = live(&*store, &row3.task_id).await;
    assert_eq!(
        tasks
            .archive_task(&row3, ClosedStatus::Dead, NOW)
            .await
            .expect("archive dead"),
        MoveOutcome::Moved
    );
    let dead = tasks
        .get_closed_task_by_id(&s.id(3))
        .await
        .expect("closed")
        .expect("task 3 is dead");
    assert_eq!(
        tasks.redrive_task(&dead, 1200).await.expect("redrive"),
        MoveOutcome::Moved
    );
    let back = live(&*store, &s.id(3)).await;
    assert_eq!((back.greenfield, back.attempts), (1200, 0));
    assert_eq!(back.payload, s.task(3, 0).payload, "the payload is intact");
}

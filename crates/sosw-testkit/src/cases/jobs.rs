//! Job records: creation once, requesters, enqueue progress, atomic counters, the one finish, listing.
//!
//! These cases take a [`JobStore`], not a `TaskStore`; [`job_store_conformance!`] runs them. Each uses
//! job ids of its own, random per run.
//!
//! [`job_store_conformance!`]: crate::job_store_conformance

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::support::NOW;
use sosw_core::error::Error;
use sosw_core::store::{CreateJobOutcome, JobCounts, JobRecord, JobStatus, JobStore};
use sosw_core::task::TaskId;

/// `returned`, a record an update returned, with `expected`'s body if it came without one: updates may
/// leave the body out (see [`JobStore`]); everything else must be there.
fn as_returned(returned: &JobRecord, expected: &JobRecord) -> JobRecord {
    let mut returned = returned.clone();
    if returned.job.is_null() {
        returned.job = expected.job.clone();
    }
    returned
}

/// The job ids of one case run.
struct Jobs {
    prefix: String,
}

impl Jobs {
    fn new(case: &str) -> Self {
        let random = TaskId::generate();
        Jobs {
            prefix: format!("{case}-{}", &random.as_str()[..12]),
        }
    }

    /// Job id number `n` of this run.
    fn id(&self, n: u64) -> String {
        format!("{}-{n}", self.prefix)
    }

    /// A freshly accepted job `n`: requested, nothing enqueued, one requester.
    fn requested(&self, n: u64) -> JobRecord {
        JobRecord {
            job_id: self.id(n),
            labourer_id: format!("{}-lab", self.prefix),
            status: JobStatus::Requested,
            total: None,
            enqueued: 0,
            counts: JobCounts::default(),
            created_at: NOW,
            started_at: None,
            finished_at: None,
            requesters: vec!["first".into()],
            job: json!({"lambda_name": "lab", "n": n}),
        }
    }
}

/// Creates `record`, which must be new.
async fn create<S: JobStore + ?Sized>(store: &S, record: &JobRecord) {
    let outcome = store.create_job(record).await.expect("create_job succeeds");
    assert_eq!(
        outcome,
        CreateJobOutcome::Created,
        "create_job of new job `{}`",
        record.job_id
    );
}

/// The record of `job_id`, which must exist.
async fn job<S: JobStore + ?Sized>(store: &S, job_id: &str) -> JobRecord {
    store
        .get_job(job_id)
        .await
        .expect("get_job succeeds")
        .unwrap_or_else(|| panic!("job `{job_id}` should exist"))
}

/// A job of `sections` sections of a scattered word each (a pseudo-random hex string, so that
/// compression does not shrink it much): about 50 bytes of JSON a section. DynamoDB's store keeps a
/// small job inside its record and a large one in an item of its own; jobs of both sizes go through
/// every store the same way.
pub fn job_of_sections(sections: usize) -> Value {
    let mut x: u64 = 7;
    let sections: serde_json::Map<String, Value> = (0..sections)
        .map(|i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (
                format!("section_{i}"),
                json!({"words": [format!("{x:016x}")]}),
            )
        })
        .collect();
    json!({"lambda_name": "lab", "sections": sections})
}

/// `create_job` writes a new record (`Created`); creating the same id again, even with other fields, is
/// `Exists` holding the stored record, which stays unchanged. A job never created reads as `None`.
/// The same for a small job and a large one (100 sections, about 5 KB).
pub async fn create_job_writes_once_and_keeps_the_original<S: JobStore + 'static>(store: Arc<S>) {
    let j = Jobs::new("create");
    let small = j.requested(1);
    let large = JobRecord {
        job: job_of_sections(100),
        ..j.requested(2)
    };
    for original in [small, large] {
        create_once(&*store, original).await;
    }
}

async fn create_once<S: JobStore>(store: &S, original: JobRecord) {
    assert_eq!(
        store
            .get_job(&original.job_id)
            .await
            .expect("get_job succeeds"),
        None,
        "a job not yet created"
    );
    create(store, &original).await;
    assert_eq!(job(store, &original.job_id).await, original);

    let mut resubmitted = original.clone();
    resubmitted.requesters = vec!["second".into()];
    resubmitted.created_at = NOW + 60;
    resubmitted.job = json!({"changed": true});
    let outcome = store
        .create_job(&resubmitted)
        .await
        .expect("create_job succeeds");
    assert_eq!(
        outcome,
        CreateJobOutcome::Exists(Box::new(original.clone())),
        "a second create returns the stored record"
    );
    assert_eq!(
        job(store, &original.job_id).await,
        original,
        "a second create changes nothing"
    );
}

/// An empty job id is refused as invalid, and nothing is written.
pub async fn create_job_refuses_an_empty_job_id<S: JobStore + 'static>(store: Arc<S>) {
    let mut nameless = Jobs::new("nameless").requested(1);
    nameless.job_id = String::new();
    let err = store
        .create_job(&nameless)
        .await
        .expect_err("an empty job id");
    assert!(
        matches!(err, Error::Invalid { what: "job id", .. }),
        "an empty job id is an invalid job id, got {err:?}"
    );
}

/// Every field of a record comes back as written, through `get_job` and `list_jobs`: a full record
/// (every option set, a nested job with unicode, floats, nulls and large numbers) and a minimal one
/// (options unset, no requesters, a null job).
pub async fn every_job_field_round_trips<S: JobStore + 'static>(store: Arc<S>) {
    let j = Jobs::new("roundtrip");
    let full = JobRecord {
        status: JobStatus::FinishedWithFailures,
        total: Some(1_000_000),
        enqueued: 999_999,
        counts: JobCounts {
            completed: 700_000,
            failed: 12,
            dead: 3,
            cancelled: 0,
        },
        started_at: Some(NOW + 5),
        finished_at: Some(NOW + 86_400),
        requesters: vec![
            "arn:aws:sns:eu-west-1:123456789012:done".into(),
            "ü-ñ 😀".into(),
            String::new(),
        ],
        job: json!({
            "lambda_name": "lab",
            "isolate_days": true,
            "period": "last_3_days",
            "nested": {"list": [1, 2.5, null, "x", {"deep": [[]]}], "empty": {}},
            "big": 18_446_744_073_709_551_615_u64,
            "negative": -42,
            "text": "quote \" backslash \\ newline \n",
        }),
        created_at: NOW + 1,
        ..j.requested(1)
    };
    let minimal = JobRecord {
        requesters: vec![],
        job: Value::Null,
        ..j.requested(2)
    };
    let large = JobRecord {
        job: job_of_sections(500),
        ..j.requested(3)
    };
    for record in [&full, &minimal, &large] {
        create(&*store, record).await;
        assert_eq!(
            &job(&*store, &record.job_id).await,
            record,
            "get_job returns job `{}` as written",
            record.job_id
        );
    }
    let listed = store
        .list_jobs(usize::MAX)
        .await
        .expect("list_jobs succeeds");
    for record in [&full, &minimal, &large] {
        let found = listed.iter().find(|r| r.job_id == record.job_id);
        assert_eq!(
            found,
            Some(record),
            "list_jobs returns the record as written"
        );
    }
}

/// `add_requester` appends a requester not yet listed and returns the record after the change; one
/// already listed changes nothing (the record comes back as it is); the order is first submission. A
/// missing job is `None` and is not created.
pub async fn add_requester_appends_each_requester_once_in_order<S: JobStore + 'static>(
    store: Arc<S>,
) {
    let j = Jobs::new("requester");
    let record = j.requested(1);
    create(&*store, &record).await;

    let steps = [
        ("second", vec!["first", "second"]),
        ("first", vec!["first", "second"]),
        ("third", vec!["first", "second", "third"]),
        ("second", vec!["first", "second", "third"]),
    ];
    for (requester, want) in steps {
        let after = store
            .add_requester(&record.job_id, requester)
            .await
            .expect("add_requester succeeds")
            .unwrap_or_else(|| panic!("add_requester of `{requester}` finds the job"));
        assert_eq!(after.requesters, want, "after adding `{requester}`");
        let expected = JobRecord {
            requesters: want.iter().map(|r| r.to_string()).collect(),
            ..record.clone()
        };
        assert_eq!(
            as_returned(&after, &expected),
            expected,
            "only the requesters change"
        );
        assert_eq!(job(&*store, &record.job_id).await, expected, "as stored");
    }

    let missing = j.id(9);
    let outcome = store
        .add_requester(&missing, "anyone")
        .await
        .expect("add_requester succeeds");
    assert_eq!(outcome, None, "add_requester of a missing job");
    let row = store.get_job(&missing).await.expect("get_job succeeds");
    assert_eq!(row, None, "add_requester creates no job");
}

/// Eight concurrent submitters each add five requesters of their own and one shared requester: every
/// requester ends up listed exactly once, and each submitter's own ones in the order it added them.
pub async fn concurrent_requesters_are_each_listed_once<S: JobStore + 'static>(store: Arc<S>) {
    const SUBMITTERS: usize = 8;
    const EACH: usize = 5;
    let j = Jobs::new("requesters");
    let mut record = j.requested(1);
    record.requesters.clear();
    create(&*store, &record).await;

    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|s| {
            let store = Arc::clone(&store);
            let job_id = record.job_id.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    add(&*store, &job_id, &format!("s{s}-{n}")).await;
                    add(&*store, &job_id, "shared").await;
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.await.expect("a submitter does not panic");
    }

    let listed = job(&*store, &record.job_id).await.requesters;
    let distinct: HashSet<&String> = listed.iter().collect();
    assert_eq!(
        distinct.len(),
        listed.len(),
        "no requester twice: {listed:?}"
    );
    assert_eq!(
        listed.len(),
        SUBMITTERS * EACH + 1,
        "every requester listed: {listed:?}"
    );
    for s in 0..SUBMITTERS {
        let own: Vec<&String> = listed
            .iter()
            .filter(|r| r.starts_with(&format!("s{s}-")))
            .collect();
        let want: Vec<String> = (0..EACH).map(|n| format!("s{s}-{n}")).collect();
        assert_eq!(
            own,
            want.iter().collect::<Vec<_>>(),
            "submitter {s}'s order"
        );
    }
}

async fn add<S: JobStore + ?Sized>(store: &S, job_id: &str, requester: &str) {
    let after = store
        .add_requester(job_id, requester)
        .await
        .expect("add_requester succeeds")
        .unwrap_or_else(|| panic!("job `{job_id}` exists"));
    assert!(
        after.requesters.iter().any(|r| r == requester),
        "the returned record lists `{requester}`"
    );
}

/// `record_progress`: the first call moves a requested job to running with `started_at = now`; later
/// calls keep both. `enqueued` only grows (a smaller value is ignored); `total` is set when given and
/// kept when not. Nothing else changes. Progress of a missing job is not an error and creates nothing.
pub async fn record_progress_grows_enqueued_and_starts_the_job_once<S: JobStore + 'static>(
    store: Arc<S>,
) {
    let j = Jobs::new("progress");
    let record = j.requested(1);
    create(&*store, &record).await;

    let steps = [
        (10, None, NOW + 5, 10, None),
        (4, None, NOW + 9, 10, None),
        (25, None, NOW + 20, 25, None),
        (30, Some(30), NOW + 30, 30, Some(30)),
        (12, None, NOW + 40, 30, Some(30)),
    ];
    for (enqueued, total, now, want_enqueued, want_total) in steps {
        store
            .record_progress(&record.job_id, enqueued, total, now)
            .await
            .expect("record_progress succeeds");
        let expected = JobRecord {
            status: JobStatus::Running,
            started_at: Some(NOW + 5),
            enqueued: want_enqueued,
            total: want_total,
            ..record.clone()
        };
        assert_eq!(
            job(&*store, &record.job_id).await,
            expected,
            "after progress ({enqueued}, {total:?}) at {now}"
        );
    }

    let missing = j.id(9);
    store
        .record_progress(&missing, 5, Some(5), NOW)
        .await
        .expect("record_progress of a missing job succeeds");
    let row = store.get_job(&missing).await.expect("get_job succeeds");
    assert_eq!(row, None, "record_progress creates no job");
}

/// `reopen_job` takes redriven tasks out of `dead`, makes a finished job `running` again without
/// `finished_at`, and returns the record; the job can then finish again exactly once. More redriven
/// than dead is an error naming the job and leaves it alone; a missing job is `None`.
pub async fn reopen_job_takes_redriven_tasks_out_of_dead<S: JobStore + 'static>(store: Arc<S>) {
    let j = Jobs::new("reopen");
    let mut record = j.requested(1);
    record.status = JobStatus::Running;
    record.total = Some(5);
    record.counts = JobCounts {
        completed: 3,
        failed: 4,
        dead: 2,
        cancelled: 0,
    };
    create(&*store, &record).await;
    let finished = store
        .finish_job(&record.job_id, JobStatus::FinishedWithFailures, NOW)
        .await
        .expect("finish_job succeeds");
    assert!(finished, "setup: the job finishes");

    let after = store
        .reopen_job(&record.job_id, 1)
        .await
        .expect("reopen_job succeeds");
    record.counts.dead = 1;
    let after = after.map(|a| as_returned(&a, &record));
    assert_eq!(after.as_ref(), Some(&record), "returned after the reopen");
    assert_eq!(
        job(&*store, &record.job_id).await,
        record,
        "stored after the reopen"
    );

    let err = store
        .reopen_job(&record.job_id, 2)
        .await
        .expect_err("more redriven than dead");
    let msg = err.to_string();
    assert!(
        msg.contains(&record.job_id) && msg.contains("dead"),
        "the error names the job and its dead count: {msg}"
    );
    assert_eq!(
        job(&*store, &record.job_id).await,
        record,
        "a refused reopen changes nothing"
    );

    let again = store
        .finish_job(&record.job_id, JobStatus::FinishedWithFailures, NOW + 5)
        .await
        .expect("finish_job succeeds");
    assert!(again, "a reopened job finishes again");

    let missing = store
        .reopen_job(&j.id(9), 1)
        .await
        .expect("reopen_job of a missing job succeeds");
    assert_eq!(missing, None, "a missing job is None");
}

/// `add_outcomes` adds each counter of the delta and returns the record after the change; nothing else
/// changes. A missing job is `None` and is not created.
pub async fn add_outcomes_adds_to_the_counters<S: JobStore + 'static>(store: Arc<S>) {
    let j = Jobs::new("outcomes");
    let mut record = j.requested(1);
    record.status = JobStatus::Running;
    record.total = Some(10);
    record.counts = JobCounts {
        completed: 1,
        failed: 2,
        dead: 3,
        cancelled: 0,
    };
    create(&*store, &record).await;

    let deltas = [(4, 0, 0), (0, 1, 0), (2, 5, 1), (0, 0, 0)];
    for (completed, failed, dead) in deltas {
        let delta = JobCounts {
            completed,
            failed,
            dead,
            cancelled: 0,
        };
        record.counts.completed += completed;
        record.counts.failed += failed;
        record.counts.dead += dead;
        let after = store
            .add_outcomes(&record.job_id, delta)
            .await
            .expect("add_outcomes succeeds");
        let after = after.map(|a| as_returned(&a, &record));
        assert_eq!(after.as_ref(), Some(&record), "returned after {delta:?}");
        assert_eq!(
            job(&*store, &record.job_id).await,
            record,
            "stored after {delta:?}"
        );
    }

    let missing = j.id(9);
    let delta = JobCounts {
        completed: 1,
        ..JobCounts::default()
    };
    let outcome = store
        .add_outcomes(&missing, delta)
        .await
        .expect("add_outcomes succeeds");
    assert_eq!(outcome, None, "add_outcomes of a missing job");
    let row = store.get_job(&missing).await.expect("get_job succeeds");
    assert_eq!(row, None, "add_outcomes creates no job");
}

/// Eight concurrent tasks each add `{completed: 1}` 125 times: the counter ends at exactly 1,000, and the
/// records returned carry every value from 1 to 1,000 once (each increment saw its own result).
pub async fn concurrent_outcomes_lose_no_increment<S: JobStore + 'static>(store: Arc<S>) {
    const ADDERS: u64 = 8;
    const EACH: u64 = 125;
    let j = Jobs::new("atomic");
    let record = j.requested(1);
    create(&*store, &record).await;

    let adders: Vec<_> = (0..ADDERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let job_id = record.job_id.clone();
            tokio::spawn(async move { add_completions(&*store, &job_id, EACH).await })
        })
        .collect();
    let mut seen = Vec::new();
    for adder in adders {
        seen.extend(adder.await.expect("an adder does not panic"));
    }

    let stored = job(&*store, &record.job_id).await;
    assert_eq!(
        stored.counts.completed,
        ADDERS * EACH,
        "every increment counted"
    );
    assert_eq!((stored.counts.failed, stored.counts.dead), (0, 0));
    seen.sort_unstable();
    let want: Vec<u64> = (1..=ADDERS * EACH).collect();
    assert!(
        seen == want,
        "each returned record holds a distinct count 1..=1000"
    );
}

/// One adder of the race: the `completed` count of every record it got back.
async fn add_completions<S: JobStore + ?Sized>(store: &S, job_id: &str, times: u64) -> Vec<u64> {
    let one = JobCounts {
        completed: 1,
        ..JobCounts::default()
    };
    let mut seen = Vec::new();
    for _ in 0..times {
        let after = store
            .add_outcomes(job_id, one)
            .await
            .expect("add_outcomes succeeds")
            .unwrap_or_else(|| panic!("job `{job_id}` exists"));
        seen.push(after.counts.completed);
    }
    seen
}

/// `finish_job` moves a requested or running job to the given final status with `finished_at = now`
/// and returns `true`; a finished job stays as it finished (`false` for a second finish, and progress
/// does not make it running again). A missing job is `false` and is not created.
pub async fn finish_job_finishes_an_unfinished_job_once<S: JobStore + 'static>(store: Arc<S>) {
    let j = Jobs::new("finish");
    let requested = j.requested(1);
    let mut running = j.requested(2);
    running.status = JobStatus::Running;
    running.started_at = Some(NOW);
    running.total = Some(3);
    for (record, status) in [
        (&requested, JobStatus::Finished),
        (&running, JobStatus::FinishedWithFailures),
    ] {
        create(&*store, record).await;
        let finished = store
            .finish_job(&record.job_id, status, NOW + 100)
            .await
            .expect("finish_job succeeds");
        assert!(finished, "finish of {:?} job", record.status);
        let expected = JobRecord {
            status,
            finished_at: Some(NOW + 100),
            ..record.clone()
        };
        assert_eq!(job(&*store, &record.job_id).await, expected, "finished");

        let again = store
            .finish_job(&record.job_id, JobStatus::Finished, NOW + 200)
            .await
            .expect("finish_job succeeds");
        assert!(!again, "a finished job is not finished again");
        store
            .record_progress(&record.job_id, 3, Some(3), NOW + 300)
            .await
            .expect("record_progress succeeds");
        let after = job(&*store, &record.job_id).await;
        assert_eq!(
            (after.status, after.finished_at),
            (status, Some(NOW + 100)),
            "a finished job stays finished"
        );
    }

    let missing = j.id(9);
    let finished = store
        .finish_job(&missing, JobStatus::Finished, NOW)
        .await
        .expect("finish_job succeeds");
    assert!(!finished, "finish of a missing job");
    let row = store.get_job(&missing).await.expect("get_job succeeds");
    assert_eq!(row, None, "finish_job creates no job");
}

/// Eight concurrent callers finish one job, each with its own status and time: exactly one gets `true`,
/// and the record holds that caller's status and time.
pub async fn concurrent_finishers_finish_a_job_once<S: JobStore + 'static>(store: Arc<S>) {
    const CALLERS: i64 = 8;
    let j = Jobs::new("finishers");
    let record = j.requested(1);
    create(&*store, &record).await;

    let callers: Vec<_> = (0..CALLERS)
        .map(|c| {
            let store = Arc::clone(&store);
            let job_id = record.job_id.clone();
            let status = if c % 2 == 0 {
                JobStatus::Finished
            } else {
                JobStatus::FinishedWithFailures
            };
            tokio::spawn(async move {
                let won = store
                    .finish_job(&job_id, status, NOW + c)
                    .await
                    .expect("finish_job succeeds");
                won.then_some((status, NOW + c))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for caller in callers {
        winners.extend(caller.await.expect("a caller does not panic"));
    }

    assert_eq!(winners.len(), 1, "exactly one finisher wins: {winners:?}");
    let stored = job(&*store, &record.job_id).await;
    assert_eq!(
        Some((stored.status, stored.finished_at.unwrap_or_default())),
        winners.first().copied(),
        "the record holds the winner's status and time"
    );
}

/// `list_jobs` returns up to `limit` jobs, newest `created_at` first; `limit` 0 returns none.
///
/// The case's jobs are created far in the future (and later for later runs), so they are the newest in
/// any store the suite shares.
pub async fn list_jobs_is_newest_first_within_limit<S: JobStore + 'static>(store: Arc<S>) {
    let j = Jobs::new("list");
    let base = newest_created_at();
    // Created out of order, so insertion order cannot pass for newest first.
    let offsets = [3, 0, 4, 1, 2];
    for (n, offset) in offsets.into_iter().enumerate() {
        let record = JobRecord {
            created_at: base + offset,
            ..j.requested(n as u64)
        };
        create(&*store, &record).await;
    }
    let newest_first: Vec<String> = [2, 0, 4, 3, 1].map(|n| j.id(n)).to_vec();

    for limit in [0, 1, 3, 5] {
        let listed = store.list_jobs(limit).await.expect("list_jobs succeeds");
        let ids: Vec<String> = listed.into_iter().map(|r| r.job_id).collect();
        assert_eq!(ids, newest_first[..limit], "list_jobs({limit})");
    }

    let all = store
        .list_jobs(usize::MAX)
        .await
        .expect("list_jobs succeeds");
    let times: Vec<i64> = all.iter().map(|r| r.created_at).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "the whole listing is newest first: {times:?}"
    );
    let ours: Vec<&String> = all
        .iter()
        .map(|r| &r.job_id)
        .filter(|id| id.starts_with(&j.prefix))
        .collect();
    assert_eq!(
        ours,
        newest_first.iter().collect::<Vec<_>>(),
        "all five listed"
    );
}

/// A `created_at` after every other case's and, ten seconds per wall-clock second, after every earlier
/// run's: around the year 2100.
fn newest_created_at() -> i64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let since = i64::try_from(wall).unwrap_or(i64::MAX / 20) - NOW;
    4_000_000_000 + 10 * since.max(0)
}

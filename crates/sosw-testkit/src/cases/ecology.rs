//! The shared ecology record: a versioned item per labourer, written only on the version read
//! (compare-and-set), which every orchestrator's rate limit and controller state go through.

use std::sync::Arc;

use super::support::Scope;
use sosw_core::ecology::rate::RateLog;
use sosw_core::store::{EcologyRecord, OutcomeCounts, TaskStore, VersionedEcology, take_rate};
use sosw_core::task::RateLimit;

/// A record with `n` invocations in its rate log, to tell writes apart.
fn record(n: u64) -> EcologyRecord {
    let mut rate = RateLog::default();
    rate.take(1_000, 60_000, 1_700_000_000_000, n);
    EcologyRecord {
        rate,
        controller: None,
    }
}

/// A labourer without a record reads as version 0 and a default record. A write on version 0 creates
/// it (version 1); a second write on version 0 is refused and changes nothing; a write on the current
/// version replaces it and a stale one is refused. Another labourer's record is its own.
pub async fn ecology_record_is_written_only_on_the_version_read<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("ecology");
    let read = |labourer: String| {
        let store = Arc::clone(&store);
        async move {
            store
                .read_ecology(&labourer)
                .await
                .expect("read_ecology succeeds")
        }
    };
    assert_eq!(
        read(s.labourer.clone()).await,
        VersionedEcology::default(),
        "no record: version 0, default record"
    );
    let write = |version: u64, rec: EcologyRecord| {
        let store = Arc::clone(&store);
        let labourer = s.labourer.clone();
        async move {
            store
                .write_ecology(&labourer, version, &rec)
                .await
                .expect("write_ecology succeeds")
        }
    };
    assert!(write(0, record(1)).await, "the first write creates it");
    assert!(
        !write(0, record(2)).await,
        "a second first write is refused"
    );
    assert_eq!(
        read(s.labourer.clone()).await,
        VersionedEcology {
            version: 1,
            record: record(1),
            outcomes: OutcomeCounts::default(),
        },
        "the refused write changed nothing"
    );
    assert!(write(1, record(3)).await, "a write on the version read");
    assert!(!write(1, record(4)).await, "a write on a stale version");
    assert!(
        !write(7, record(5)).await,
        "a write on a version never seen"
    );
    assert_eq!(
        read(s.labourer.clone()).await,
        VersionedEcology {
            version: 2,
            record: record(3),
            outcomes: OutcomeCounts::default(),
        }
    );
    assert_eq!(
        read(s.other()).await,
        VersionedEcology::default(),
        "another labourer's record is its own"
    );
}

/// Eight takers racing for one rate limit (50 per minute) at the same instant, each asking for 3 at a
/// time many times: the grants add up to exactly the limit, and the record counts exactly what was
/// granted (no write was lost to another: a lost write would leave the log counting less than was
/// granted, and later takers would be granted beyond the limit).
pub async fn concurrent_rate_takers_never_grant_more_than_the_limit<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    const TAKERS: usize = 8;
    const ROUNDS: usize = 40;
    let s = Scope::new("rate");
    let limit = RateLimit {
        tasks: 50,
        period_secs: 60,
    };
    let now_ms = 1_700_000_000_000;
    let takers: Vec<_> = (0..TAKERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let labourer = s.labourer.clone();
            tokio::spawn(async move {
                let mut granted = 0;
                for _ in 0..ROUNDS {
                    granted += take_rate(&*store, &labourer, limit, now_ms, 3)
                        .await
                        .expect("take_rate succeeds");
                }
                granted
            })
        })
        .collect();
    let mut total = 0;
    for taker in takers {
        total += taker.await.expect("a taker does not panic");
    }
    assert_eq!(total, 50, "grants in total: exactly the limit");
    let stored = store
        .read_ecology(&s.labourer)
        .await
        .expect("read_ecology succeeds");
    assert_eq!(
        stored.record.rate.used(60_000, now_ms),
        50,
        "the log counts every grant"
    );
    let later = take_rate(&*store, &s.labourer, limit, now_ms + 59_000, 10)
        .await
        .expect("take_rate succeeds");
    assert_eq!(later, 0, "nothing more within the period");
    let next = take_rate(&*store, &s.labourer, limit, now_ms + 61_000, 10)
        .await
        .expect("take_rate succeeds");
    assert_eq!(next, 10, "a period later the limit is free again");
}

/// Outcomes added by many concurrent callers all count, before the labourer has a record (the first
/// record write, on version 0, still succeeds and keeps them) and after; writing the record never
/// changes the counters, and adding outcomes never changes the version.
pub async fn outcome_counters_add_up_and_survive_record_writes<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    const ADDERS: u64 = 8;
    const ADDS: u64 = 10;
    let s = Scope::new("outcomes");
    let add_many = |labourer: String| {
        let adders: Vec<_> = (0..ADDERS)
            .map(|_| {
                let store = Arc::clone(&store);
                let labourer = labourer.clone();
                tokio::spawn(async move {
                    for _ in 0..ADDS {
                        let one = OutcomeCounts {
                            succeeded: 2,
                            failed: 1,
                            throttled: 3,
                        };
                        store
                            .add_outcomes(&labourer, &one)
                            .await
                            .expect("add_outcomes succeeds");
                    }
                })
            })
            .collect();
        async move {
            for adder in adders {
                adder.await.expect("an adder does not panic");
            }
        }
    };
    add_many(s.labourer.clone()).await;
    let n = ADDERS * ADDS;
    let expected = |times: u64| OutcomeCounts {
        succeeded: 2 * n * times,
        failed: n * times,
        throttled: 3 * n * times,
    };
    let read = store
        .read_ecology(&s.labourer)
        .await
        .expect("read_ecology succeeds");
    assert_eq!(read.version, 0, "adding outcomes writes no record");
    assert_eq!(read.record, EcologyRecord::default());
    assert_eq!(read.outcomes, expected(1), "every increment counts");
    assert!(
        store
            .write_ecology(&s.labourer, 0, &record(4))
            .await
            .expect("write_ecology succeeds"),
        "the first record write succeeds on an item holding only counters"
    );
    add_many(s.labourer.clone()).await;
    let read = store
        .read_ecology(&s.labourer)
        .await
        .expect("read_ecology succeeds");
    assert_eq!(
        (read.version, read.record, read.outcomes),
        (1, record(4), expected(2)),
        "the record write kept the counters and the adds kept the record"
    );
    assert!(
        store
            .write_ecology(&s.labourer, 1, &record(5))
            .await
            .expect("write_ecology succeeds")
    );
    let read = store
        .read_ecology(&s.labourer)
        .await
        .expect("read_ecology succeeds");
    assert_eq!(read.outcomes, expected(2), "a second write kept them too");
}

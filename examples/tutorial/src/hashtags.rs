//! The tutorial labourers: count how often a hashtag was used on a day.
//!
//! The sosw tutorial's worker pulls tweets for one topic, word and day. These workers do the same
//! shape of work without a network: the "count" is derived from a hash of the day, topic and word, so
//! every run of a job gives the same results and a test can predict them.
//!
//! * [`HashtagWorker`] (labourer `sosw_tutorial_pull_tweeter_hashtags`) always succeeds.
//! * [`FlakyHashtagWorker`] (labourer `sosw_tutorial_flaky_hashtags`) fails the first attempt of
//!   about one task in four (retryable: the task is retried and then succeeds), and always fails for the
//!   word `racing` (retryable too, so the task is retried until `max_attempts` and then goes to the dead
//!   letters). Use it to watch retries and dead tasks.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sosw::worker::{WorkError, Worker, WorkerContext};

/// The labourer id (Lambda name) of [`HashtagWorker`], as in the sosw tutorial.
pub const HASHTAGS_LABOURER: &str = "sosw_tutorial_pull_tweeter_hashtags";

/// The labourer id of [`FlakyHashtagWorker`].
pub const FLAKY_HASHTAGS_LABOURER: &str = "sosw_tutorial_flaky_hashtags";

/// The word [`FlakyHashtagWorker`] never manages to count.
pub const ALWAYS_FAILING_WORD: &str = "racing";

/// One task of the tutorial job: the chunker's lists, each with one value when the job isolates them.
#[derive(Debug, Clone, Deserialize)]
pub struct HashtagChunk {
    /// The days to count (`YYYY-MM-DD`).
    #[serde(default)]
    pub date_list: Vec<String>,
    /// The topics (`cars`, `food`, ...).
    #[serde(default)]
    pub topics: Vec<String>,
    /// The words to count as hashtags.
    #[serde(default)]
    pub words: Vec<String>,
}

/// What a tutorial worker returns for one chunk: one count per (day, topic, word).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashtagCounts {
    /// The counts, in the chunk's order (days, then topics, then words).
    pub counts: Vec<HashtagCount>,
    /// The sum of the counts.
    pub total: u64,
}

/// How often `#word` was used about `topic` on `date` (simulated, deterministic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashtagCount {
    /// The day.
    pub date: String,
    /// The topic.
    pub topic: String,
    /// The word.
    pub word: String,
    /// The simulated number of uses.
    pub count: u64,
}

/// The simulated number of uses of `#word` about `topic` on `date`: 0 to 999, the same every time.
pub fn simulated_count(date: &str, topic: &str, word: &str) -> u64 {
    let digest = Sha256::digest(format!("{date}\n{topic}\n{word}").as_bytes());
    u64::from(u16::from_be_bytes([digest[0], digest[1]])) % 1000
}

/// Counts every (day, topic, word) of `chunk`, rejecting a chunk with nothing to count.
pub fn count_chunk(chunk: &HashtagChunk) -> Result<HashtagCounts, WorkError> {
    if chunk.words.is_empty() {
        return Err(WorkError::non_retryable(
            "the task has no `words` to count; the job must list words (see examples/jobs/hashtags.json)",
        ));
    }
    let dates: Vec<&str> = if chunk.date_list.is_empty() {
        vec!["today"]
    } else {
        chunk.date_list.iter().map(String::as_str).collect()
    };
    let topics: Vec<&str> = if chunk.topics.is_empty() {
        vec![""]
    } else {
        chunk.topics.iter().map(String::as_str).collect()
    };
    let mut counts = Vec::new();
    for date in &dates {
        for topic in &topics {
            for word in &chunk.words {
                counts.push(HashtagCount {
                    date: (*date).to_owned(),
                    topic: (*topic).to_owned(),
                    word: word.clone(),
                    count: simulated_count(date, topic, word),
                });
            }
        }
    }
    let total = counts.iter().map(|c| c.count).sum();
    Ok(HashtagCounts { counts, total })
}

/// The tutorial worker: counts hashtags, taking `work_time` per task to stand in for the API calls.
#[derive(Debug, Clone, Default)]
pub struct HashtagWorker {
    /// How long each task pretends to work.
    pub work_time: Duration,
}

impl HashtagWorker {
    /// A worker that pretends each task takes `work_time`.
    pub fn new(work_time: Duration) -> Self {
        HashtagWorker { work_time }
    }
}

#[async_trait]
impl Worker for HashtagWorker {
    type Payload = HashtagChunk;
    type Output = HashtagCounts;

    async fn work(
        &self,
        chunk: HashtagChunk,
        ctx: WorkerContext,
    ) -> Result<HashtagCounts, WorkError> {
        if !self.work_time.is_zero() {
            tokio::time::sleep(self.work_time).await;
        }
        let counts = count_chunk(&chunk)?;
        ctx.add("hashtags_counted", counts.counts.len() as u64);
        ctx.add("tweets", counts.total);
        Ok(counts)
    }
}

/// The tutorial worker with failures: see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct FlakyHashtagWorker {
    inner: HashtagWorker,
}

impl FlakyHashtagWorker {
    /// A flaky worker that pretends each task takes `work_time`.
    pub fn new(work_time: Duration) -> Self {
        FlakyHashtagWorker {
            inner: HashtagWorker::new(work_time),
        }
    }
}

/// Whether [`FlakyHashtagWorker`] fails `chunk` on attempt `attempt` (1 is the first).
pub fn flaky_fails(chunk: &HashtagChunk, attempt: u32) -> bool {
    if chunk.words.iter().any(|w| w == ALWAYS_FAILING_WORD) {
        return true;
    }
    let key = format!(
        "{}|{}|{}",
        chunk.date_list.join(","),
        chunk.topics.join(","),
        chunk.words.join(",")
    );
    attempt <= 1 && Sha256::digest(key.as_bytes())[0] % 4 == 0
}

#[async_trait]
impl Worker for FlakyHashtagWorker {
    type Payload = HashtagChunk;
    type Output = HashtagCounts;

    async fn work(
        &self,
        chunk: HashtagChunk,
        ctx: WorkerContext,
    ) -> Result<HashtagCounts, WorkError> {
        if flaky_fails(&chunk, ctx.attempt()) {
            if !self.inner.work_time.is_zero() {
                tokio::time::sleep(self.inner.work_time).await;
            }
            return Err(WorkError::retryable(format!(
                "the (simulated) hashtag API refused to count {:?} on attempt {}",
                chunk.words,
                ctx.attempt()
            )));
        }
        self.inner.work(chunk, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(date: &str, topic: &str, word: &str) -> HashtagChunk {
        HashtagChunk {
            date_list: vec![date.into()],
            topics: vec![topic.into()],
            words: vec![word.into()],
        }
    }

    #[test]
    fn counts_are_deterministic_and_bounded() {
        let a = simulated_count("2026-11-16", "cars", "toyota");
        assert_eq!(a, simulated_count("2026-11-16", "cars", "toyota"));
        assert!(a < 1000);
        let differ = ["mazda", "nissan", "car", "automobile"]
            .iter()
            .any(|w| simulated_count("2026-11-16", "cars", w) != a);
        assert!(differ, "different words should not all count the same");
    }

    #[test]
    fn a_chunk_counts_every_day_topic_and_word() {
        let c = HashtagChunk {
            date_list: vec!["2026-11-16".into(), "2026-11-17".into()],
            topics: vec!["food".into()],
            words: vec!["meal".into(), "tasty".into()],
        };
        let out = count_chunk(&c).expect("counts");
        assert_eq!(out.counts.len(), 4);
        assert_eq!(out.counts[1].word, "tasty");
        assert_eq!(out.counts[2].date, "2026-11-17");
        assert_eq!(out.total, out.counts.iter().map(|c| c.count).sum::<u64>());
    }

    #[test]
    fn a_chunk_without_words_is_not_retryable() {
        let err = count_chunk(&HashtagChunk {
            date_list: vec![],
            topics: vec!["cars".into()],
            words: vec![],
        })
        .expect_err("no words");
        assert!(!err.is_retryable());
        assert!(err.message().contains("words"), "{}", err.message());
    }

    #[test]
    fn the_flaky_worker_always_fails_racing_and_some_first_attempts() {
        assert!(flaky_fails(&chunk("2026-11-16", "cars", "racing"), 1));
        assert!(flaky_fails(&chunk("2026-11-16", "cars", "racing"), 9));
        let words = [
            "toyota",
            "mazda",
            "nissan",
            "automobile",
            "car",
            "recipe",
            "cooking",
        ];
        let dates = ["2026-11-16", "2026-11-17"];
        let mut first = 0;
        for d in dates {
            for w in words {
                let c = chunk(d, "cars", w);
                assert!(!flaky_fails(&c, 2), "a second attempt of {w} must succeed");
                first += usize::from(flaky_fails(&c, 1));
            }
        }
        assert!(
            first > 0 && first < 14,
            "some, not all, first attempts fail: {first}"
        );
    }
}

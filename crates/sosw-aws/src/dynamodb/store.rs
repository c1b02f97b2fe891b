//! The store handle: a client, the table names and the retry policy for batch leftovers.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;

use sosw_core::store::TableNames;

/// How unprocessed items of `BatchWriteItem` / unprocessed keys of `BatchGetItem` are resent.
///
/// DynamoDB returns them when a partition is throttled; they are resent after an exponential backoff
/// with jitter (`base_delay * 2^attempt`, capped at `max_delay`, the upper half randomised), at most
/// `max_retries` times, after which the call fails with a retryable [`sosw_core::Error::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRetry {
    /// Resends after the first request. Default 8.
    pub max_retries: u32,
    /// Backoff before the first resend. Default 50 ms.
    pub base_delay: Duration,
    /// Longest backoff. Default 5 s.
    pub max_delay: Duration,
}

impl Default for BatchRetry {
    fn default() -> Self {
        BatchRetry {
            max_retries: 8,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl BatchRetry {
    /// The pause before resend number `attempt` (0-based): half fixed, half random, so concurrent
    /// writers spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(30)));
        let ceiling = exp.min(self.max_delay);
        let half = ceiling / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 { 0 } else { random_u64() % nanos };
        half + Duration::from_nanos(jitter)
    }
}

/// Random bits for jitter without another dependency.
fn random_u64() -> u64 {
    let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
    hi ^ lo
}

/// The [`sosw_core::store::TaskStore`] over DynamoDB with sosw 0.7's tables, items and request shapes, so
/// it shares a deployment with Python sosw 0.7 essentials and workers.
///
/// Cheap to clone (one `Arc`). Construction makes no request (sosw 0.7 called `DescribeTable` in every
/// constructor, bug B16); create the tables with [`super::create_tables`] or CloudFormation.
///
/// Notes on the mapping:
/// * Queries on the greenfield index are eventually consistent (a GSI cannot be read consistently);
///   claims, reports and moves are conditional writes, so a stale read never double-invokes or loses a
///   task.
/// * [`sosw_core::store::TaskArchive::closed_sample`] reads the closed table's index, which projects only
///   `completed_at`, `greenfield` and `attempts` besides the keys: the returned tasks carry the
///   requested `labourer_id`, an empty payload and `created_at = 0`.
/// * [`sosw_core::store::EnqueueMode::SkipExisting`] looks for a waiting retry under the task's own
///   `labourer_id` (the retry table's hash key).
#[derive(Debug, Clone)]
pub struct DynamoTaskStore {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub client: Client,
    pub tables: TableNames,
    pub batch_retry: BatchRetry,
    /// Jobs this store created (`requested`) and has recorded no progress of yet: their first
    /// progress starts them in the same update (`jobs.rs`).
    pub created_here: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl DynamoTaskStore {
    /// A store over `tables` through `client`. Makes no request.
    pub fn new(client: Client, tables: TableNames) -> Self {
        DynamoTaskStore {
            inner: Arc::new(Inner {
                client,
                tables,
                batch_retry: BatchRetry::default(),
                created_here: Default::default(),
            }),
        }
    }

    /// The same store with another policy for resending unprocessed batch items.
    pub fn with_batch_retry(self, batch_retry: BatchRetry) -> Self {
        DynamoTaskStore {
            inner: Arc::new(Inner {
                client: self.inner.client.clone(),
                tables: self.inner.tables.clone(),
                batch_retry,
                created_here: Default::default(),
            }),
        }
    }

    /// The table names this store uses.
    pub fn tables(&self) -> &TableNames {
        &self.inner.tables
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn batch_retry(&self) -> &BatchRetry {
        &self.inner.batch_retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let policy = BatchRetry {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for attempt in 0..8 {
            let ceiling = (Duration::from_millis(100) * 2u32.pow(attempt)).min(policy.max_delay);
            let d = policy.delay(attempt);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "attempt {attempt}: {d:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        assert_eq!(
            BatchRetry {
                base_delay: Duration::ZERO,
                ..policy
            }
            .delay(3),
            Duration::ZERO
        );
    }
}

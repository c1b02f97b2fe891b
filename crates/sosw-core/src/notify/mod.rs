//! The `Notifier` port: dead-task alerts and job-finished messages.
//!
//! * [`NotificationQueue`]: sosw 0.7's SnsManager: messages are queued per recipient, subject and
//!   attributes, joined, and sent on [`NotificationQueue::commit`], which every essential calls at the
//!   end of its run. Dropping a queue with messages in it logs them as an error instead of sending them
//!   (sosw 0.7 relied on `__del__` to send, bug B19).
//! * Adapters: SNS (`sosw_aws::sns::SnsNotifier`); [`LogNotifier`], [`FileNotifier`] and
//!   [`MemoryNotifier`] for local mode and tests.
//! * [`jobs`]: job counters after a task closes, and the job-finished message to every requester.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

pub mod jobs;
mod local;
mod queue;

pub use local::{FileNotifier, LogNotifier, MemoryNotifier};
pub use queue::{MAX_MESSAGE_BYTES, NotificationQueue, SEPARATOR};

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Where it goes: an SNS topic ARN, a Lambda function, a log target, ...
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The body.
    pub message: String,
    /// String attributes (SNS message attributes).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// Delivers notifications.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers every notification; returns an error naming the first that could not be delivered.
    async fn notify(&self, notifications: &[Notification]) -> Result<()>;
}

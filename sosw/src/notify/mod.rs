//! The `Notifier` port: dead-task alerts and job-finished messages.
//!
//! Adapters: SNS ([`crate::aws`]) and a log/file adapter for local mode.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

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

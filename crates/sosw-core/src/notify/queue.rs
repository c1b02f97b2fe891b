//! SnsManager-style batching: queue now, send one joined message per recipient, subject and attributes
//! on commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Notification, Notifier};
use crate::error::Result;

/// What joins queued messages into one notification (sosw 0.7's SnsManager separator).
pub const SEPARATOR: &str = "\n\n#####\n\n";

/// The largest notification body sent, in bytes: SNS's limit is 256 KiB; a batch that would exceed it
/// is split into several notifications.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 - 1024;

/// One group of queued messages with the same destination, subject and attributes.
#[derive(Debug)]
struct Batch {
    recipient: Option<String>,
    subject: String,
    attributes: BTreeMap<String, String>,
    messages: Vec<String>,
}

impl Batch {
    fn matches(
        &self,
        recipient: Option<&str>,
        subject: &str,
        attributes: &BTreeMap<String, String>,
    ) -> bool {
        self.recipient.as_deref() == recipient
            && self.subject == subject
            && &self.attributes == attributes
    }

    /// The batch's messages joined by [`SEPARATOR`] into bodies of at most [`MAX_MESSAGE_BYTES`].
    fn bodies(&self) -> Vec<String> {
        let mut bodies: Vec<String> = Vec::new();
        let mut current = String::new();
        for message in &self.messages {
            let extra = if current.is_empty() {
                message.len()
            } else {
                SEPARATOR.len() + message.len()
            };
            if !current.is_empty() && current.len() + extra > MAX_MESSAGE_BYTES {
                bodies.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push_str(SEPARATOR);
            }
            current.push_str(message);
        }
        if !current.is_empty() {
            bodies.push(current);
        }
        bodies
    }
}

/// Messages waiting to be sent, grouped per recipient, subject and attributes (sosw 0.7's SnsManager).
///
/// Messages without a recipient go to the queue's default recipient; with no default either, they are
/// written to the log at `warn` level on commit, so they are never silently lost.
pub struct NotificationQueue {
    notifier: Arc<dyn Notifier>,
    default_recipient: Option<String>,
    batches: Vec<Batch>,
}

impl std::fmt::Debug for NotificationQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationQueue")
            .field("default_recipient", &self.default_recipient)
            .field("batches", &self.batches)
            .finish_non_exhaustive()
    }
}

impl NotificationQueue {
    /// An empty queue delivering through `notifier`; messages without a recipient go to
    /// `default_recipient`.
    pub fn new(notifier: Arc<dyn Notifier>, default_recipient: Option<String>) -> Self {
        NotificationQueue {
            notifier,
            default_recipient,
            batches: Vec::new(),
        }
    }

    /// Queues `message` for `recipient` (or the default recipient) under `subject`. Messages with the
    /// same destination, subject and attributes are sent together.
    pub fn send(
        &mut self,
        recipient: Option<&str>,
        subject: &str,
        message: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) {
        let recipient = recipient.or(self.default_recipient.as_deref());
        let message = message.into();
        if let Some(batch) = self
            .batches
            .iter_mut()
            .find(|b| b.matches(recipient, subject, &attributes))
        {
            batch.messages.push(message);
            return;
        }
        self.batches.push(Batch {
            recipient: recipient.map(str::to_string),
            subject: subject.to_string(),
            attributes,
            messages: vec![message],
        });
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.messages.len()).sum()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Sends everything queued, one notification per batch (more if a batch exceeds
    /// [`MAX_MESSAGE_BYTES`]), and empties the queue. Returns how many notifications went to the
    /// notifier. On a delivery error the queue is still emptied (what was delivered must not be sent
    /// twice) and the error is returned; the adapter has logged what it could not deliver.
    pub async fn commit(&mut self) -> Result<usize> {
        let batches = std::mem::take(&mut self.batches);
        let mut notifications = Vec::new();
        for batch in &batches {
            let Some(recipient) = &batch.recipient else {
                for body in batch.bodies() {
                    tracing::warn!(
                        subject = %batch.subject, attributes = ?batch.attributes, message = %body,
                        "notification without a recipient (no topic configured): logged only"
                    );
                }
                continue;
            };
            for body in batch.bodies() {
                notifications.push(Notification {
                    recipient: recipient.clone(),
                    subject: batch.subject.clone(),
                    message: body,
                    attributes: batch.attributes.clone(),
                });
            }
        }
        if notifications.is_empty() {
            return Ok(0);
        }
        self.notifier.notify(&notifications).await?;
        Ok(notifications.len())
    }
}

impl Drop for NotificationQueue {
    fn drop(&mut self) {
        // A drop may happen on a panic path or inside no runtime: sending here would be unreliable
        // (sosw 0.7's `__del__`, bug B19). Make the loss loud instead; callers commit explicitly.
        for batch in &self.batches {
            tracing::error!(
                recipient = ?batch.recipient, subject = %batch.subject, messages = ?batch.messages,
                "notification queue dropped without commit: these messages were not sent"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::MemoryNotifier;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn messages_are_grouped_per_recipient_subject_and_attributes() {
        let sink = Arc::new(MemoryNotifier::default());
        let mut q = NotificationQueue::new(sink.clone(), Some("arn:aws:sns:r:1:default".into()));
        q.send(None, "dead", "a", BTreeMap::new());
        q.send(None, "dead", "b", BTreeMap::new());
        q.send(Some("arn:aws:sns:r:1:other"), "dead", "c", BTreeMap::new());
        q.send(None, "info", "d", BTreeMap::new());
        q.send(None, "dead", "e", attrs(&[("requester", "x")]));
        assert_eq!(q.len(), 5);
        assert!(sink.sent().is_empty(), "nothing goes out before commit");
        assert_eq!(q.commit().await.expect("commits"), 4);
        let sent = sink.sent();
        assert_eq!(sent[0].message, format!("a{SEPARATOR}b"));
        assert_eq!(sent[0].recipient, "arn:aws:sns:r:1:default");
        assert_eq!(sent[1].recipient, "arn:aws:sns:r:1:other");
        assert_eq!(
            (sent[2].subject.as_str(), sent[2].message.as_str()),
            ("info", "d")
        );
        assert_eq!(sent[3].attributes, attrs(&[("requester", "x")]));
        assert!(q.is_empty());
        assert_eq!(q.commit().await.expect("empty commit"), 0, "sent once only");
        assert_eq!(sink.sent().len(), 4);
    }

    #[tokio::test]
    async fn messages_without_any_recipient_are_logged_not_sent() {
        let sink = Arc::new(MemoryNotifier::default());
        let mut q = NotificationQueue::new(sink.clone(), None);
        q.send(None, "dead", "a", BTreeMap::new());
        assert_eq!(q.commit().await.expect("commits"), 0);
        assert!(sink.sent().is_empty());
    }

    #[tokio::test]
    async fn an_oversized_batch_is_split_below_the_sns_limit() {
        let sink = Arc::new(MemoryNotifier::default());
        let mut q = NotificationQueue::new(sink.clone(), Some("t".into()));
        let chunk = "x".repeat(100 * 1024);
        for _ in 0..5 {
            q.send(None, "s", chunk.clone(), BTreeMap::new());
        }
        assert_eq!(q.commit().await.expect("commits"), 3);
        let sent = sink.sent();
        assert!(sent.iter().all(|n| n.message.len() <= MAX_MESSAGE_BYTES));
        let total: usize = sent.iter().map(|n| n.message.matches(&chunk).count()).sum();
        assert_eq!(total, 5, "every message is sent exactly once");
    }

    #[tokio::test]
    async fn dropping_an_uncommitted_queue_sends_nothing() {
        let sink = Arc::new(MemoryNotifier::default());
        {
            let mut q = NotificationQueue::new(sink.clone(), Some("t".into()));
            q.send(None, "s", "lost loudly", BTreeMap::new());
        }
        assert!(sink.sent().is_empty());
    }
}

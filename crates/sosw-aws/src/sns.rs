//! The SNS [`Notifier`]: one `Publish` per notification, to the topic ARN in its recipient.
//!
//! The region and credentials come from the SDK config the caller loads (the Lambda's own region,
//! or an emulator's), never a built-in region (sosw 0.7 defaulted to us-west-2, bug B19). Batching is
//! done before it, by [`sosw_core::notify::NotificationQueue`].

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::sdk_errors::is_transient;
use sosw_core::error::{Error, Result};
use sosw_core::notify::{Notification, Notifier};

/// SNS's limit on a subject: fewer than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// Delivers notifications with SNS `Publish`.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
}

impl SnsNotifier {
    /// A notifier using `sdk`'s region, credentials and endpoint.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        SnsNotifier {
            client: Client::new(sdk),
        }
    }

    /// A notifier using an existing client.
    pub fn from_client(client: Client) -> Self {
        SnsNotifier { client }
    }

    async fn publish(&self, n: &Notification) -> Result<()> {
        let attributes = message_attributes(n)?;
        let subject = sns_subject(&n.subject);
        self.client
            .publish()
            .topic_arn(&n.recipient)
            .set_subject((!subject.is_empty()).then_some(subject))
            .message(&n.message)
            .set_message_attributes((!attributes.is_empty()).then_some(attributes))
            .send()
            .await
            .map_err(|err| {
                let retryable = is_transient(&err);
                Error::service("SNS", "Publish", retryable, err.into_service_error())
            })?;
        Ok(())
    }
}

/// A subject SNS accepts: ASCII, no control characters, fewer than 100 characters.
pub fn sns_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| match c {
            c if c.is_ascii_control() => ' ',
            c if c.is_ascii() => c,
            _ => '?',
        })
        .take(MAX_SUBJECT_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

fn message_attributes(n: &Notification) -> Result<HashMap<String, MessageAttributeValue>> {
    n.attributes
        .iter()
        .map(|(name, value)| {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::invalid("notification attribute", e.to_string()))?;
            Ok((name.clone(), value))
        })
        .collect()
}

#[async_trait]
impl Notifier for SnsNotifier {
    /// Publishes every notification, even after one fails; returns the first failure, after logging
    /// each undelivered message so none is lost without a trace.
    async fn notify(&self, notifications: &[Notification]) -> Result<()> {
        let mut first_error = None;
        for n in notifications {
            if let Err(err) = self.publish(n).await {
                tracing::error!(
                    topic = %n.recipient, subject = %n.subject, message = %n.message,
                    error = %err, "SNS publish failed: notification not delivered"
                );
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
    use aws_sdk_sns::types::error::NotFoundException;
    use aws_smithy_mocks::{mock, mock_client};
    use std::collections::BTreeMap;

    fn note(recipient: &str, subject: &str) -> Notification {
        let mut attributes = BTreeMap::new();
        attributes.insert("requester".to_string(), "alice".to_string());
        Notification {
            recipient: recipient.into(),
            subject: subject.into(),
            message: "Closing dead task: t1 ".into(),
            attributes,
        }
    }

    #[test]
    fn subjects_are_made_acceptable_to_sns() {
        assert_eq!(sns_subject("``sosw`` Dead Task"), "``sosw`` Dead Task");
        assert_eq!(sns_subject("a\nb\tc"), "a b c");
        assert_eq!(sns_subject("é"), "?");
        assert_eq!(sns_subject(&"x".repeat(300)).len(), MAX_SUBJECT_CHARS);
    }

    #[tokio::test]
    async fn publish_request_carries_topic_subject_message_and_string_attributes() {
        let rule = mock!(Client::publish)
            .match_requests(|req| {
                req.topic_arn() == Some("arn:aws:sns:us-east-1:1:t")
                    && req.subject() == Some("``sosw`` Dead Task")
                    && req.message() == Some("Closing dead task: t1 ")
                    && req.message_attributes().is_some_and(|attrs| {
                        attrs.get("requester").is_some_and(|v| {
                            v.data_type() == "String" && v.string_value() == Some("alice")
                        })
                    })
            })
            .then_output(|| PublishOutput::builder().message_id("m1").build());
        let client = mock_client!(aws_sdk_sns, [&rule]);
        SnsNotifier::from_client(client)
            .notify(&[note("arn:aws:sns:us-east-1:1:t", "``sosw`` Dead Task")])
            .await
            .expect("published");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_publish_is_returned_after_trying_the_rest() {
        let missing = mock!(Client::publish)
            .match_requests(|req| req.topic_arn() == Some("arn:aws:sns:us-east-1:1:gone"))
            .then_error(|| {
                PublishError::NotFoundException(
                    NotFoundException::builder().message("no topic").build(),
                )
            });
        let ok =
            mock!(Client::publish).then_output(|| PublishOutput::builder().message_id("m").build());
        let client = mock_client!(
            aws_sdk_sns,
            aws_smithy_mocks::RuleMode::MatchAny,
            [&missing, &ok]
        );
        let err = SnsNotifier::from_client(client)
            .notify(&[
                note("arn:aws:sns:us-east-1:1:gone", "s"),
                note("arn:aws:sns:us-east-1:1:t", "s"),
            ])
            .await
            .expect_err("one failed");
        assert!(!err.is_retryable(), "a missing topic stays missing: {err}");
        assert!(
            matches!(
                &err,
                Error::Service {
                    service: "SNS",
                    operation: "Publish",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(ok.num_calls(), 1, "the second notification was still sent");
    }
}

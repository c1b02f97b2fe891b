//! [`ScheduleRules`] over EventBridge: is the one rule a function follows enabled?
//!
//! The function is told its rule's name (the essentials' stack sets `SOSW_SCHEDULE_RULE` to its
//! schedule) and asks about that rule only: `DescribeRule` for its state, `ListTargetsByRule` for at
//! least one target. Both take the rule's ARN as their IAM resource, so the role grants them on that
//! one rule. sosw 0.7 scanned every rule of the account (`ListRules`, which IAM grants only on `"*"`,
//! then `ListTargetsByRule` on each rule until one targeted the function), which a least-privilege
//! role denies as soon as another rule is listed first.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::operation::describe_rule::DescribeRuleError;
use aws_sdk_eventbridge::types::RuleState;

use super::sdk_errors::is_transient;
use sosw_core::error::{Error, Result};
use sosw_core::siblings::ScheduleRules;

/// The state of one named EventBridge rule (default event bus).
#[derive(Debug, Clone)]
pub struct EventBridgeRules {
    client: Client,
    rule: String,
}

impl EventBridgeRules {
    /// Lookups of the rule named `rule`, with `sdk`'s region, credentials and endpoint.
    pub fn new(sdk: &aws_config::SdkConfig, rule: impl Into<String>) -> Self {
        Self::from_client(Client::new(sdk), rule)
    }

    /// Lookups of the rule named `rule` with an existing client.
    pub fn from_client(client: Client, rule: impl Into<String>) -> Self {
        EventBridgeRules {
            client,
            rule: rule.into(),
        }
    }

    /// The rule's name.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The rule's state, `None` when it does not exist.
    async fn state(&self) -> Result<Option<RuleState>> {
        match self.client.describe_rule().name(&self.rule).send().await {
            Ok(rule) => Ok(Some(rule.state().cloned().unwrap_or(RuleState::Disabled))),
            Err(err) => {
                let retryable = is_transient(&err);
                match err.into_service_error() {
                    DescribeRuleError::ResourceNotFoundException(_) => Ok(None),
                    other => Err(Error::service(
                        "EventBridge",
                        "DescribeRule",
                        retryable,
                        other,
                    )),
                }
            }
        }
    }

    /// Whether the rule has at least one target.
    async fn has_targets(&self) -> Result<bool> {
        let page = self
            .client
            .list_targets_by_rule()
            .rule(&self.rule)
            .limit(1)
            .send()
            .await
            .map_err(|err| {
                let retryable = is_transient(&err);
                Error::service(
                    "EventBridge",
                    "ListTargetsByRule",
                    retryable,
                    err.into_service_error(),
                )
            })?;
        Ok(!page.targets().is_empty())
    }
}

#[async_trait]
impl ScheduleRules for EventBridgeRules {
    /// Whether the named rule exists, is enabled and has a target (a rule without targets schedules
    /// nothing). A missing rule is `false`, with a warning naming it.
    async fn schedule_enabled(&self, function_arn: &str) -> Result<bool> {
        match self.state().await? {
            None => {
                tracing::warn!(rule = %self.rule, function = %function_arn,
                    "the schedule rule does not exist (check SOSW_SCHEDULE_RULE)");
                Ok(false)
            }
            Some(RuleState::Enabled) => self.has_targets().await,
            Some(_) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::describe_rule::DescribeRuleOutput;
    use aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleOutput;
    use aws_sdk_eventbridge::types::Target;
    use aws_sdk_eventbridge::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    const ME: &str = "arn:aws:lambda:us-east-1:123456789012:function:sosw_scheduler";

    fn target(arn: &str) -> Target {
        Target::builder().id("1").arn(arn).build().expect("target")
    }

    #[tokio::test]
    async fn an_enabled_rule_with_a_target_is_on_and_only_that_rule_is_read() {
        let describe = mock!(Client::describe_rule)
            .match_requests(|r| r.name() == Some("sosw-essentials"))
            .then_output(|| {
                DescribeRuleOutput::builder()
                    .name("sosw-essentials")
                    .state(RuleState::Enabled)
                    .build()
            });
        let targets = mock!(Client::list_targets_by_rule)
            .match_requests(|r| r.rule() == Some("sosw-essentials"))
            .then_output(|| {
                ListTargetsByRuleOutput::builder()
                    .targets(target(
                        "arn:aws:lambda:us-east-1:123456789012:function:sosw_orchestrator",
                    ))
                    .build()
            });
        // Strict order: any other request (ListRules, another rule) fails the test.
        let client = mock_client!(
            aws_sdk_eventbridge,
            RuleMode::Sequential,
            [&describe, &targets]
        );
        let rules = EventBridgeRules::from_client(client, "sosw-essentials");
        assert!(rules.schedule_enabled(ME).await.expect("looks up"));
        assert_eq!((describe.num_calls(), targets.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_disabled_rule_is_off_without_reading_its_targets() {
        let describe = mock!(Client::describe_rule).then_output(|| {
            DescribeRuleOutput::builder()
                .state(RuleState::Disabled)
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&describe]);
        let rules = EventBridgeRules::from_client(client, "r");
        assert!(!rules.schedule_enabled(ME).await.expect("looks up"));
    }

    #[tokio::test]
    async fn an_enabled_rule_without_targets_is_off() {
        let describe = mock!(Client::describe_rule).then_output(|| {
            DescribeRuleOutput::builder()
                .state(RuleState::Enabled)
                .build()
        });
        let targets = mock!(Client::list_targets_by_rule)
            .then_output(|| ListTargetsByRuleOutput::builder().build());
        let client = mock_client!(
            aws_sdk_eventbridge,
            RuleMode::Sequential,
            [&describe, &targets]
        );
        let rules = EventBridgeRules::from_client(client, "r");
        assert!(!rules.schedule_enabled(ME).await.expect("looks up"));
    }

    #[tokio::test]
    async fn a_missing_rule_is_off_and_other_errors_are_errors() {
        let missing = mock!(Client::describe_rule).then_error(|| {
            DescribeRuleError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&missing]);
        let rules = EventBridgeRules::from_client(client, "gone");
        assert!(!rules.schedule_enabled(ME).await.expect("looks up"));

        let denied = mock!(Client::describe_rule)
            .then_error(|| DescribeRuleError::unhandled("AccessDeniedException: not authorized"));
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&denied]);
        let err = EventBridgeRules::from_client(client, "r")
            .schedule_enabled(ME)
            .await
            .expect_err("an access error is not `off`");
        assert!(err.to_string().contains("DescribeRule"), "{err}");
    }
}

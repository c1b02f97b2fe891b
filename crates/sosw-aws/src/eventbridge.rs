//! [`ScheduleRules`] over EventBridge: is an enabled rule targeting this function?
//!
//! Reads every page of `ListRules` (default event bus) and, for each enabled rule, every page of
//! `ListTargetsByRule`, stopping at the first match. sosw 0.7 read only the first page of rules (bug
//! B20), so a function targeted by its 101st rule could never spawn a sibling.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::RuleState;

use super::sdk_errors::is_transient;
use sosw_core::error::{Error, Result};
use sosw_core::siblings::{ScheduleRules, same_function};

/// EventBridge rule lookups.
#[derive(Debug, Clone)]
pub struct EventBridgeRules {
    client: Client,
    page_size: Option<i32>,
}

impl EventBridgeRules {
    /// Lookups with `sdk`'s region, credentials and endpoint.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_client(Client::new(sdk))
    }

    /// Lookups with an existing client.
    pub fn from_client(client: Client) -> Self {
        EventBridgeRules {
            client,
            page_size: None,
        }
    }

    /// Asks for pages of at most `size` items (the service default is 100).
    pub fn with_page_size(mut self, size: i32) -> Self {
        self.page_size = Some(size);
        self
    }

    async fn rule_targets(&self, rule: &str, function_arn: &str) -> Result<bool> {
        let mut token = None;
        loop {
            let page = self
                .client
                .list_targets_by_rule()
                .rule(rule)
                .set_limit(self.page_size)
                .set_next_token(token)
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
            if page
                .targets()
                .iter()
                .any(|t| same_function(t.arn(), function_arn))
            {
                return Ok(true);
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(false);
            }
        }
    }
}

#[async_trait]
impl ScheduleRules for EventBridgeRules {
    async fn targets_function(&self, function_arn: &str) -> Result<bool> {
        let mut token = None;
        loop {
            let page = self
                .client
                .list_rules()
                .set_limit(self.page_size)
                .set_next_token(token)
                .send()
                .await
                .map_err(|err| {
                    let retryable = is_transient(&err);
                    Error::service(
                        "EventBridge",
                        "ListRules",
                        retryable,
                        err.into_service_error(),
                    )
                })?;
            for rule in page.rules() {
                let enabled = rule.state() == Some(&RuleState::Enabled);
                if let (true, Some(name)) = (enabled, rule.name())
                    && self.rule_targets(name, function_arn).await?
                {
                    return Ok(true);
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::list_rules::ListRulesOutput;
    use aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleOutput;
    use aws_sdk_eventbridge::types::{Rule, Target};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    const ME: &str = "arn:aws:lambda:us-east-1:123456789012:function:sosw_scheduler";

    fn rule(name: &str, state: RuleState) -> Rule {
        Rule::builder().name(name).state(state).build()
    }

    fn target(arn: &str) -> Target {
        Target::builder().id("1").arn(arn).build().expect("target")
    }

    #[tokio::test]
    async fn every_page_of_rules_and_targets_is_read_and_qualifiers_match() {
        let first = mock!(Client::list_rules)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                ListRulesOutput::builder()
                    .rules(rule("disabled", RuleState::Disabled))
                    .rules(rule("other", RuleState::Enabled))
                    .next_token("p2")
                    .build()
            });
        let second = mock!(Client::list_rules)
            .match_requests(|r| r.next_token() == Some("p2"))
            .then_output(|| {
                ListRulesOutput::builder()
                    .rules(rule("mine", RuleState::Enabled))
                    .build()
            });
        let other_targets = mock!(Client::list_targets_by_rule)
            .match_requests(|r| r.rule() == Some("other"))
            .then_output(|| {
                ListTargetsByRuleOutput::builder()
                    .targets(target("arn:aws:lambda:us-east-1:123456789012:function:x"))
                    .build()
            });
        let mine_page1 = mock!(Client::list_targets_by_rule)
            .match_requests(|r| r.rule() == Some("mine") && r.next_token().is_none())
            .then_output(|| {
                ListTargetsByRuleOutput::builder()
                    .targets(target("arn:aws:lambda:us-east-1:123456789012:function:y"))
                    .next_token("t2")
                    .build()
            });
        let mine_page2 = mock!(Client::list_targets_by_rule)
            .match_requests(|r| r.rule() == Some("mine") && r.next_token() == Some("t2"))
            .then_output(|| {
                ListTargetsByRuleOutput::builder()
                    .targets(target(&format!("{ME}:live")))
                    .build()
            });
        let disabled_targets = mock!(Client::list_targets_by_rule)
            .match_requests(|r| r.rule() == Some("disabled"))
            .then_output(|| {
                ListTargetsByRuleOutput::builder()
                    .targets(target(ME))
                    .build()
            });
        let client = mock_client!(
            aws_sdk_eventbridge,
            RuleMode::MatchAny,
            [
                &first,
                &second,
                &other_targets,
                &mine_page1,
                &mine_page2,
                &disabled_targets
            ]
        );
        let rules = EventBridgeRules::from_client(client);
        assert!(rules.targets_function(ME).await.expect("looks up"));
        assert_eq!(second.num_calls(), 1, "the second page of rules was read");
        assert_eq!(
            mine_page2.num_calls(),
            1,
            "the second page of targets was read"
        );
        assert_eq!(
            disabled_targets.num_calls(),
            0,
            "disabled rules are not asked"
        );
    }

    #[tokio::test]
    async fn no_matching_target_is_false() {
        let rules_rule = mock!(Client::list_rules).then_output(|| {
            ListRulesOutput::builder()
                .rules(rule("r", RuleState::Enabled))
                .build()
        });
        let targets = mock!(Client::list_targets_by_rule).then_output(|| {
            ListTargetsByRuleOutput::builder()
                .targets(target("arn:aws:lambda:us-east-1:123456789012:function:x"))
                .build()
        });
        let client = mock_client!(
            aws_sdk_eventbridge,
            RuleMode::MatchAny,
            [&rules_rule, &targets]
        );
        assert!(
            !EventBridgeRules::from_client(client)
                .targets_function(ME)
                .await
                .expect("looks up")
        );
    }
}

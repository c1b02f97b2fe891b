//! Notifications through the real SNS adapter on the moto server: the scavenger's batched dead-task
//! alert, and a job-finished message reaching two requester topics once each. What moto's SNS delivered
//! is read back by an HTTP endpoint subscribed to each topic.
//!
//! Skipped without `SOSW_MOTO_ENDPOINT` (failed with `SOSW_REQUIRE_EMULATORS=1`).

use crate::worker_support;

use std::sync::Arc;

use aws_sdk_sns::Client as SnsClient;
use serde_json::{Value, json};
use sosw::aws::sns::SnsNotifier;
use sosw::essentials::worker_assistant::AssistantRequest;
use sosw::notify::SEPARATOR;
use sosw::notify::jobs::JOB_FINISHED_SUBJECT;
use sosw::processor::Stats;
use sosw::store::JobStatus;
use sosw_integration_tests::{moto_config, unique_prefix};
use worker_support::Harness;
use worker_support::jobs::running_job;
use worker_support::moto::SnsInbox;

async fn topic(sns: &SnsClient, name: &str) -> String {
    sns.create_topic()
        .name(format!("{}{name}", unique_prefix()))
        .send()
        .await
        .expect("topic created on moto")
        .topic_arn()
        .expect("topic ARN")
        .to_string()
}

#[tokio::test]
async fn dead_tasks_reach_the_sns_topic_in_one_batched_message() {
    let Some(sdk) = moto_config().await else {
        return;
    };
    let sns = SnsClient::new(&sdk);
    let dead_topic = topic(&sns, "dead").await;
    let inbox = SnsInbox::start().await;
    inbox.subscribe(&sns, &dead_topic).await;
    let mut h = Harness::new(json!({"duration": 60, "cooldown": 30, "max_attempts": 1}))
        .with_notifier(Arc::new(SnsNotifier::new(&sdk)));
    h.dead_topic = dead_topic.clone();
    let tasks = h.enqueue("sns-dead", 2, None).await;
    for t in &tasks {
        h.claim(&t.task_id).await;
    }
    h.clock.advance_secs(90);
    let report = h.scavenger(0).run().await;
    assert_eq!(report.labourers["w1"].dead, 2);
    assert_eq!(report.notify_error, None);

    let messages = inbox.messages(&dead_topic);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (subject, body) = &messages[0];
    assert_eq!(subject, "``sosw`` Dead Task");
    assert_eq!(
        body,
        &format!(
            "Closing dead task: {} {SEPARATOR}Closing dead task: {} ",
            tasks[0].task_id, tasks[1].task_id
        )
    );
}

#[tokio::test]
async fn a_finished_job_reaches_each_of_two_requester_topics_exactly_once() {
    let Some(sdk) = moto_config().await else {
        return;
    };
    let sns = SnsClient::new(&sdk);
    let (team_a, team_b) = (topic(&sns, "team-a").await, topic(&sns, "team-b").await);
    let inbox = SnsInbox::start().await;
    inbox.subscribe(&sns, &team_a).await;
    inbox.subscribe(&sns, &team_b).await;
    let h = Harness::new(json!({"max_attempts": 3}))
        .with_notifier(Arc::new(SnsNotifier::new(&sdk)))
        .with_jobs();
    let jobs = h.job_store.clone();
    jobs.create_job(&running_job("moto-job", "w1", 2, &[&team_a, &team_b]))
        .await
        .expect("job");
    let tasks = h.enqueue("moto-job", 2, Some("moto-job")).await;
    let assistant = h.assistant(0);
    for t in &tasks {
        h.claim(&t.task_id).await;
        let request = AssistantRequest::completed(t.task_id.clone());
        let reply = assistant
            .handle(&request, &mut Stats::new())
            .await
            .expect("completed");
        assert_eq!(reply.notify_error, None);
        // A duplicate delivery of the same report must not notify again.
        assistant
            .handle(&request, &mut Stats::new())
            .await
            .expect("duplicate");
    }
    assert_eq!(
        jobs.get_job("moto-job")
            .await
            .expect("get")
            .expect("job")
            .status,
        JobStatus::Finished
    );
    for requester in [&team_a, &team_b] {
        let messages = inbox.messages(requester);
        assert_eq!(messages.len(), 1, "{requester}: {messages:?}");
        let (subject, body) = &messages[0];
        assert_eq!(subject, JOB_FINISHED_SUBJECT);
        let body: Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(body["job_id"], "moto-job");
        assert_eq!(body["completed"], 2);
        assert_eq!(body["requester"], requester.as_str());
    }
}

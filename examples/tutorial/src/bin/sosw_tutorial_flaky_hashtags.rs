//! The flaky tutorial worker on Lambda (function `sosw_tutorial_flaky_hashtags`): fails some first
//! attempts and every task with the word `racing`, to show retries and dead tasks.

use sosw_tutorial::hashtags::FlakyHashtagWorker;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    sosw_tutorial::lambda::init_logs();
    sosw::worker::run(FlakyHashtagWorker::default()).await
}

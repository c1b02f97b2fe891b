//! The tutorial worker on Lambda (function `sosw_tutorial_pull_tweeter_hashtags`): counts hashtags and
//! reports each task to the worker assistant, as configured in its `<function>_config` row.

use sosw_tutorial::hashtags::HashtagWorker;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    sosw_tutorial::lambda::init_logs();
    sosw::worker::run(HashtagWorker::default()).await
}

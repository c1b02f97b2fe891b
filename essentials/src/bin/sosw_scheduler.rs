//! `sosw_scheduler` on Lambda: turns jobs into queued tasks.

use lambda_runtime::service_fn;
use sosw::lambda::settings::SCHEDULER_FUNCTION;
use sosw::lambda::{Settings, aws, init_tracing};
use sosw::processor::diagnostic;

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Settings::from_env(SCHEDULER_FUNCTION)?;
    let clients = aws::Clients::new(aws::sdk_config().await);
    let handler = aws::load_scheduler(&clients, &settings).await?;
    lambda_runtime::run(service_fn(|event| async {
        handler.handle(event).await.map_err(diagnostic)
    }))
    .await
}

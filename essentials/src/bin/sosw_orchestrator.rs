//! `sosw_orchestrator` on Lambda: invokes queued tasks as fast as each labourer's health allows.

use lambda_runtime::service_fn;
use sosw::lambda::settings::ORCHESTRATOR_FUNCTION;
use sosw::lambda::{Settings, aws, init_tracing};
use sosw::processor::diagnostic;

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Settings::from_env(ORCHESTRATOR_FUNCTION)?;
    let clients = aws::Clients::new(aws::sdk_config().await);
    let handler = aws::load_orchestrator(&clients, &settings).await?;
    lambda_runtime::run(service_fn(|event| async {
        handler.handle(event).await.map_err(diagnostic)
    }))
    .await
}

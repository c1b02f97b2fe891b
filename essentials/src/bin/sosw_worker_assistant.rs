//! `sosw_worker_assistant` on Lambda: closes tasks on their workers' reports.

use sosw_essentials::settings::WORKER_ASSISTANT_FUNCTION;
use sosw_essentials::{Settings, aws, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Settings::from_env(WORKER_ASSISTANT_FUNCTION)?;
    let clients = aws::Clients::new(aws::sdk_config().await);
    let assistant = aws::load_worker_assistant(&clients, &settings).await?;
    sosw::processor::serve(assistant).await
}

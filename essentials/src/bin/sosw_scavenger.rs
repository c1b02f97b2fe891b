//! `sosw_scavenger` on Lambda: archives, retries or buries what the workers left behind.

use sosw_essentials::settings::SCAVENGER_FUNCTION;
use sosw_essentials::{Settings, aws, init_tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Settings::from_env(SCAVENGER_FUNCTION)?;
    let clients = aws::Clients::new(aws::sdk_config().await);
    let scavenger = aws::load_scavenger(&clients, &settings).await?;
    sosw::processor::serve(scavenger).await
}

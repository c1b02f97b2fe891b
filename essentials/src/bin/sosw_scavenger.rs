//! `sosw_scavenger` on Lambda: archives, retries or buries what the workers left behind.

use lambda_runtime::service_fn;
use sosw::lambda::metrics::{Metrics, scavenger_output_metrics};
use sosw::lambda::settings::SCAVENGER_FUNCTION;
use sosw::lambda::{MeteredService, Settings, aws, init_tracing};
use sosw::processor::ProcessorService;
use sosw::processor::diagnostic;

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Settings::from_env(SCAVENGER_FUNCTION)?;
    let clients = aws::Clients::new(aws::sdk_config().await);
    let scavenger = aws::load_scavenger(&clients, &settings).await?;
    let service = MeteredService::new(
        ProcessorService::new(scavenger, &settings.function_name),
        Metrics::from_settings(&settings),
        scavenger_output_metrics,
    );
    lambda_runtime::run(service_fn(|event| async {
        service.handle(event).await.map_err(diagnostic)
    }))
    .await
}

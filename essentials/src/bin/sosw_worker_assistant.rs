//! `sosw_worker_assistant` on Lambda: closes tasks on their workers' reports.

use lambda_runtime::service_fn;
use sosw::lambda::metrics::{Metrics, assistant_output_metrics};
use sosw::lambda::settings::WORKER_ASSISTANT_FUNCTION;
use sosw::lambda::{MeteredService, Settings, aws, init_tracing};
use sosw::processor::ProcessorService;
use sosw::processor::diagnostic;

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Settings::from_env(WORKER_ASSISTANT_FUNCTION)?;
    let clients = aws::Clients::new(aws::sdk_config().await);
    let assistant = aws::load_worker_assistant(&clients, &settings).await?;
    let service = MeteredService::new(
        ProcessorService::new(assistant, &settings.function_name),
        Metrics::from_settings(&settings),
        assistant_output_metrics,
    );
    lambda_runtime::run(service_fn(|event| async {
        service.handle(event).await.map_err(diagnostic)
    }))
    .await
}

//! The four essentials' Lambda `main`, one line each: [`run_essential`].
//!
//! Every essential is a [`Processor`](sosw_core::processor::Processor) run by one
//! [`ProcessorService`](crate::service::ProcessorService): the service hands it the invocation's
//! context (the deadline, so the scheduler continues a job as a sibling before it and the orchestrator
//! refills slots until it), counts its stats, prints the EMF metrics it names, and turns its errors into
//! `Retryable` / `NonRetryable` diagnostics.
//!
//! ```no_run
//! // One thread: see "Runtime" in the `sosw_essentials` docs.
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     sosw_lambda::run_essential(sosw_lambda::Essential::Scheduler).await
//! }
//! ```

use crate::settings::{
    ORCHESTRATOR_FUNCTION, SCAVENGER_FUNCTION, SCHEDULER_FUNCTION, Settings,
    WORKER_ASSISTANT_FUNCTION,
};
use crate::{aws, init_tracing};

/// One of the four essentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Essential {
    /// `sosw_scheduler`: turns jobs into queued tasks.
    Scheduler,
    /// `sosw_orchestrator`: invokes queued tasks as fast as each labourer's health allows.
    Orchestrator,
    /// `sosw_scavenger`: archives, retries or buries what the workers left behind.
    Scavenger,
    /// `sosw_worker_assistant`: closes tasks on their workers' reports.
    WorkerAssistant,
}

impl Essential {
    /// Its function name when `AWS_LAMBDA_FUNCTION_NAME` is not set (and its config row's prefix).
    pub fn default_function_name(self) -> &'static str {
        match self {
            Essential::Scheduler => SCHEDULER_FUNCTION,
            Essential::Orchestrator => ORCHESTRATOR_FUNCTION,
            Essential::Scavenger => SCAVENGER_FUNCTION,
            Essential::WorkerAssistant => WORKER_ASSISTANT_FUNCTION,
        }
    }
}

/// Runs `essential` as this Lambda function: JSON logs, settings from the environment, the AWS
/// clients and the function's config read once per container ([`aws`]'s `load_*`), then one
/// [`ProcessorService`](crate::service::ProcessorService) until the runtime stops. A config that
/// cannot be read is returned as the error, which Lambda reports as an init error.
pub async fn run_essential(essential: Essential) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = Settings::from_env(essential.default_function_name())?;
    let clients = aws::Clients::new(aws::sdk_config().await);
    match essential {
        Essential::Scheduler => {
            aws::load_scheduler(&clients, &settings)
                .await?
                .serve()
                .await
        }
        Essential::Orchestrator => {
            aws::load_orchestrator(&clients, &settings)
                .await?
                .serve()
                .await
        }
        Essential::Scavenger => {
            aws::load_scavenger(&clients, &settings)
                .await?
                .serve()
                .await
        }
        Essential::WorkerAssistant => {
            aws::load_worker_assistant(&clients, &settings)
                .await?
                .serve()
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_essential_defaults_to_its_sosw_07_function_name() {
        let names = [
            Essential::Scheduler,
            Essential::Orchestrator,
            Essential::Scavenger,
            Essential::WorkerAssistant,
        ]
        .map(Essential::default_function_name);
        assert_eq!(
            names,
            [
                "sosw_scheduler",
                "sosw_orchestrator",
                "sosw_scavenger",
                "sosw_worker_assistant"
            ]
        );
    }
}

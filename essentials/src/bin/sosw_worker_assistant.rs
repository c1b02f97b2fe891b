//! `sosw_worker_assistant` on Lambda: closes tasks on their workers' reports.

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sosw::lambda::run_essential(sosw::lambda::Essential::WorkerAssistant).await
}

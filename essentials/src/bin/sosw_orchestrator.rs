//! `sosw_orchestrator` on Lambda: invokes queued tasks as fast as each labourer's health allows.

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sosw::lambda::run_essential(sosw::lambda::Essential::Orchestrator).await
}

//! `sosw_scheduler` on Lambda: turns jobs into queued tasks.

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sosw::lambda::run_essential(sosw::lambda::Essential::Scheduler).await
}

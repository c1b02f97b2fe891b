//! `sosw_scavenger` on Lambda: archives, retries or buries what the workers left behind.

// One thread: see "Runtime" in the `sosw_essentials` docs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    sosw::lambda::run_essential(sosw::lambda::Essential::Scavenger).await
}

//! A Lambda Invoke API on loopback that only counts: every function name is a function that does
//! nothing, so an `Event` invocation answers `202` at once, and `GetFunctionConfiguration` answers a
//! 900 s timeout. Both implementations' Lambda clients are pointed at it, so the orchestrator's
//! invocation rate is measured without a real worker.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sosw_testkit::lambda_api::InvokeApi;

/// The running receiver; it stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where Lambda clients send their requests.
    pub url: String,
    api: Arc<InvokeApi>,
}

impl Receiver {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> std::io::Result<Receiver> {
        let api = InvokeApi::builder()
            .any_function(|_| async { Ok(Value::Null) })
            .timeout(Duration::from_secs(900))
            .start()
            .await?;
        Ok(Receiver {
            url: api.url(),
            api: Arc::new(api),
        })
    }

    /// Invocations received so far; resets the count.
    pub fn take(&self) -> u64 {
        self.api.take_invocations()
    }
}

//! A minimal Lambda Invoke API on loopback that only counts: `Invoke` answers 202 (an accepted `Event`
//! invocation), `GetFunctionConfiguration` answers a 900 s timeout. Both implementations' Lambda clients
//! are pointed at it, so the orchestrator's invocation rate is measured without a real worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::http::{Message, serve};

/// The running receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where Lambda clients send their requests.
    pub url: String,
    invocations: Arc<AtomicU64>,
}

impl Receiver {
    /// Starts the receiver on a free loopback port.
    pub async fn start() -> std::io::Result<Receiver> {
        let invocations = Arc::new(AtomicU64::new(0));
        let counter = invocations.clone();
        let url = serve(move |request: Message| {
            let counter = counter.clone();
            async move { Some(answer(&request, &counter)) }
        })
        .await?;
        Ok(Receiver { url, invocations })
    }

    /// Invocations received so far; resets the count.
    pub fn take(&self) -> u64 {
        self.invocations.swap(0, Ordering::SeqCst)
    }
}

fn answer(request: &Message, invocations: &AtomicU64) -> Message {
    let (method, path) = request.method_path();
    let function = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
        .to_owned();
    if method == "POST" && path.ends_with("/invocations") {
        invocations.fetch_add(1, Ordering::SeqCst);
        return Message::response(202, &[("content-type", "application/json")], Vec::new());
    }
    if method == "GET" && path.ends_with("/configuration") {
        let body = json!({"FunctionName": function, "Timeout": 900, "MemorySize": 128, "Runtime": "provided.al2023"});
        return Message::response(
            200,
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        );
    }
    let body = json!({"Type": "User", "message": format!("not emulated: {method} {path}")});
    Message::response(
        404,
        &[("x-amzn-errortype", "ResourceNotFoundException")],
        body.to_string().into_bytes(),
    )
}

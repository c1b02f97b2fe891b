//! A Lambda Runtime API on loopback for the cold-start measurement: hands out one event, then holds
//! the next poll open; reports when the runtime posts the answer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::http::{Message, serve};

const RUNTIME: &str = "/2018-06-01/runtime";

/// The running server: its address (`host:port`, as `AWS_LAMBDA_RUNTIME_API` takes it) and the answers
/// posted back (path, body).
#[derive(Debug)]
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`.
    pub address: String,
    /// One item per answer the runtime posted: the path (`.../response` or `.../error`) and the body.
    pub answers: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl RuntimeApi {
    /// Starts a server that hands `event` to function `function` once.
    pub async fn start(function: &str, event: Value) -> std::io::Result<RuntimeApi> {
        let (posted, answers) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(Some(event)));
        let arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{function}");
        let url = serve(move |request: Message| {
            let pending = pending.clone();
            let posted = posted.clone();
            let arn = arn.clone();
            async move {
                let (method, path) = request.method_path();
                if method == "GET" && path == format!("{RUNTIME}/invocation/next") {
                    let event = pending.lock().ok()?.take()?;
                    let deadline = SystemTime::now()
                        .checked_add(Duration::from_secs(900))
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_millis().to_string())
                        .unwrap_or_default();
                    let headers = [
                        ("content-type", "application/json"),
                        ("lambda-runtime-aws-request-id", "cold-start-1"),
                        ("lambda-runtime-deadline-ms", deadline.as_str()),
                        ("lambda-runtime-invoked-function-arn", arn.as_str()),
                    ];
                    return Some(Message::response(
                        200,
                        &headers,
                        event.to_string().into_bytes(),
                    ));
                }
                let _ = posted.send((path.to_owned(), request.body.clone()));
                Some(Message::response(202, &[], b"{\"status\":\"OK\"}".to_vec()))
            }
        })
        .await?;
        let address = url.trim_start_matches("http://").to_owned();
        Ok(RuntimeApi { address, answers })
    }
}

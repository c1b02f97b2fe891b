//! HTTP test servers for the end-to-end tests and the bench, on hyper (feature `http`): a fake Lambda
//! Runtime API ([`RuntimeApi`]), a fake Lambda Invoke API ([`InvokeApi`]), and the pieces of a
//! forwarding proxy ([`TestServer`] and [`Upstream`]).
//!
//! Every server listens on a fresh port of `127.0.0.1`, serves HTTP/1.1 with keep-alive, hands its
//! handlers whole requests (the body collected) and stops when its handle is dropped: the listener is
//! closed and every open connection, a held long poll included, is dropped.
//!
//! ```
//! use serde_json::json;
//! use sosw_testkit::lambda_api::{FunctionError, InvokeApi};
//!
//! # async fn example() -> std::io::Result<()> {
//! let api = InvokeApi::builder()
//!     .function("worker", |invocation| async move {
//!         match invocation.json() {
//!             Ok(event) => Ok(json!({"echo": event})),
//!             Err(e) => Err(FunctionError::new("Malformed", e.to_string())),
//!         }
//!     })
//!     .start()
//!     .await?;
//! // Point a Lambda client at `api.url()`; `api.invocations_of("worker")` counts what it sent.
//! # Ok(())
//! # }
//! ```

mod invoke;
mod proxy;
mod runtime;
mod server;

pub use invoke::{FunctionError, Invocation, InvocationType, InvokeApi, InvokeApiBuilder};
pub use proxy::{Upstream, UpstreamError};
pub use runtime::{Answer, InitError, PendingAnswer, RuntimeApi, RuntimeApiBuilder};
pub use server::{Request, Response, TestServer, json_response};

/// The `http` crate these servers' [`Request`] and [`Response`] come from.
pub use http;

/// The body type of [`Request`] and [`Response`].
pub use bytes::Bytes;

#[cfg(test)]
mod tests;

//! The server every fake API runs on: hyper's HTTP/1.1 connection, a handler per request.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// A request as a handler gets it: the body already collected.
pub type Request = http::Request<Bytes>;

/// A handler's answer. Its `content-length` and `transfer-encoding` headers are ignored: the server
/// sends the body with its own length.
pub type Response = http::Response<Bytes>;

/// A response with `status`, `content-type: application/json` and `body` serialized.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A running HTTP/1.1 server on `127.0.0.1`, answering every request with a handler; stops when
/// dropped.
///
/// A handler that does not finish holds its connection open (a long poll) until the client goes away
/// or the server is dropped.
#[derive(Debug)]
pub struct TestServer {
    address: SocketAddr,
    accept: JoinHandle<()>,
}

impl TestServer {
    /// Starts serving `handler` on a free port of `127.0.0.1`. Must be called within a Tokio runtime,
    /// which runs the server's tasks.
    pub async fn start<H, F>(handler: H) -> io::Result<TestServer>
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let accept = tokio::spawn(accept_loop(listener, Arc::new(handler)));
        Ok(TestServer { address, accept })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`, for an SDK client's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // The accept task owns the connections' tasks: aborting it drops them all.
        self.accept.abort();
    }
}

async fn accept_loop<H, F>(listener: TcpListener, handler: Arc<H>)
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(TokioIo::new(stream), handler.clone()));
                }
                // Out of file descriptors, say: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection<H, F>(io: TokioIo<tokio::net::TcpStream>, handler: Arc<H>)
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let service = service_fn(move |request: http::Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let (parts, body) = request.into_parts();
            let response = match body.collect().await {
                Ok(body) => handler(Request::from_parts(parts, body.to_bytes())).await,
                Err(e) => json_response(
                    400,
                    &serde_json::json!({"message": format!("unreadable request body: {e}")}),
                ),
            };
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(CONTENT_LENGTH);
            parts.headers.remove(TRANSFER_ENCODING);
            Ok::<_, Infallible>(http::Response::from_parts(parts, Full::new(body)))
        }
    });
    // A connection error (the client went away, a malformed request) ends this connection only.
    let _ = http1::Builder::new().serve_connection(io, service).await;
}

/// Locks `mutex`, poisoned or not (a panicking handler must not take the server down).
pub(super) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

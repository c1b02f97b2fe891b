//! The client half of a forwarding proxy: sends a [`Request`] on to an upstream server.

use bytes::Bytes;
use http::Uri;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::server::{Request, Response};

/// Why [`Upstream::send`] failed: the connection, or an unreadable answer.
pub type UpstreamError = Box<dyn std::error::Error + Send + Sync>;

/// A client for one upstream server (`http://host:port`), with pooled keep-alive connections. Cheap to
/// clone; the clones share the pool.
///
/// A forwarding proxy is a [`TestServer`](super::TestServer) whose handler sends each request, as is
/// or rewritten, with [`Upstream::send`] and answers with what came back:
///
/// ```
/// use sosw_testkit::lambda_api::{Response, TestServer, Upstream, json_response};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let upstream = Upstream::new("http://127.0.0.1:8000")?;
/// let proxy = TestServer::start(move |request| {
///     let upstream = upstream.clone();
///     async move {
///         match upstream.send(request).await {
///             Ok(answer) => answer,
///             Err(e) => json_response(502, &serde_json::json!({"message": e.to_string()})),
///         }
///     }
/// })
/// .await?;
/// // Clients talk to `proxy.url()`.
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
}

impl Upstream {
    /// A client for `url` (`http://host:port`; a path is ignored). Does not connect yet.
    pub fn new(url: &str) -> Result<Upstream, UpstreamError> {
        let uri: Uri = url.parse()?;
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            return Err(format!("not an absolute http://host:port URL: {url}").into());
        };
        if scheme != http::uri::Scheme::HTTP {
            return Err(format!("only plain http is supported: {url}").into());
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Ok(Upstream {
            client: Client::builder(TokioExecutor::new()).build(connector),
            scheme,
            authority,
        })
    }

    /// Sends `request` (its path and query, method, headers and body) to the upstream and collects
    /// the answer. The headers go as they are, `Host` included (a client's signature covers it),
    /// except the framing ones: the body is sent with its own length.
    pub async fn send(&self, request: Request) -> Result<Response, UpstreamError> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()?;
        for framing in [CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION] {
            parts.headers.remove(framing);
        }
        if !parts.headers.contains_key(HOST)
            && let Ok(host) = self.authority.as_str().parse()
        {
            parts.headers.insert(HOST, host);
        }
        let answer = self
            .client
            .request(http::Request::from_parts(parts, Full::new(body)))
            .await?;
        let (mut parts, body) = answer.into_parts();
        let body = body.collect().await?.to_bytes();
        parts.headers.remove(TRANSFER_ENCODING);
        Ok(Response::from_parts(parts, body))
    }
}

//! Just enough HTTP/1.1 for the harness's loopback servers: read a request or response with a
//! `content-length` or chunked body, write one back. Keep-alive connections are served in a loop.

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One HTTP message: the start line, the headers (names lower-cased) and the body.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// `POST /path HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub start: String,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Message {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request's method and path.
    pub fn method_path(&self) -> (&str, &str) {
        let mut parts = self.start.split_whitespace();
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
    }

    /// A response with `status` and a body; `content-length` is set here.
    pub fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Message {
        Message {
            start: format!("HTTP/1.1 {status} X"),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    /// Writes the message with a fresh `content-length` (any transfer encoding is dropped).
    pub async fn write_to<W: AsyncWrite + Unpin>(&self, out: &mut W) -> io::Result<()> {
        let mut head = format!("{}\r\n", self.start);
        for (name, value) in &self.headers {
            if name != "content-length" && name != "transfer-encoding" {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        out.write_all(head.as_bytes()).await?;
        out.write_all(&self.body).await?;
        out.flush().await
    }
}

/// Reads one message; `None` at a clean end of stream or on malformed input.
pub async fn read_message<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Option<Message> {
    let mut start = String::new();
    if reader.read_line(&mut start).await.ok()? == 0 {
        return None;
    }
    let mut message = Message {
        start: start.trim_end().to_owned(),
        ..Message::default()
    };
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        message
            .headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    if message
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        message.body = read_chunked(reader).await?;
    } else {
        let length = message
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        message.body = vec![0; length];
        reader.read_exact(&mut message.body).await.ok()?;
    }
    Some(message)
}

async fn read_chunked<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).await.ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut trailer = String::new();
            while reader.read_line(&mut trailer).await.ok()? > 2 {
                trailer.clear();
            }
            return Some(body);
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).await.ok()?;
        chunk.truncate(size);
        body.extend(chunk);
    }
}

/// Serves `handler` on a fresh loopback port until the process ends; returns `http://127.0.0.1:<port>`.
/// A handler answering `None` holds the connection open without answering (a Runtime API long poll).
pub async fn serve<H, F>(handler: H) -> io::Result<String>
where
    H: Fn(Message) -> F + Send + Sync + 'static,
    F: Future<Output = Option<Message>> + Send + 'static,
{
    let handler = Arc::new(handler);
    serve_stateful(
        || (),
        move |request, ()| {
            let answer = handler(request);
            async move { (answer.await, ()) }
        },
    )
    .await
}

/// A connection to an upstream server, opened on first use and reopened once if it was closed.
#[derive(Debug)]
pub struct Upstream {
    address: String,
    connection: Option<BufReader<TcpStream>>,
}

impl Upstream {
    /// A connection to `address` (`host:port`), opened on first use.
    pub fn new(address: String) -> Upstream {
        Upstream {
            address,
            connection: None,
        }
    }

    /// Sends `request` to the upstream and reads its answer.
    pub async fn round_trip(&mut self, request: &Message) -> Option<Message> {
        for _ in 0..2 {
            if self.connection.is_none() {
                let stream = TcpStream::connect(&self.address).await.ok()?;
                let _ = stream.set_nodelay(true);
                self.connection = Some(BufReader::new(stream));
            }
            let connection = self.connection.as_mut()?;
            if request.write_to(connection.get_mut()).await.is_ok()
                && let Some(answer) = read_message(connection).await
            {
                return Some(answer);
            }
            self.connection = None;
        }
        None
    }
}

/// Serves `handler` with one [`Upstream`] connection to `address` per client connection.
pub async fn serve_with_upstream<H, F>(address: String, handler: H) -> io::Result<String>
where
    H: Fn(Message, Upstream) -> F + Send + Sync + 'static,
    F: Future<Output = (Option<Message>, Upstream)> + Send + 'static,
{
    serve_stateful(move || Upstream::new(address.clone()), handler).await
}

/// Serves `handler` with a state per connection made by `init`.
async fn serve_stateful<S, I, H, F>(init: I, handler: H) -> io::Result<String>
where
    S: Send + 'static,
    I: Fn() -> S + Send + Sync + 'static,
    H: Fn(Message, S) -> F + Send + Sync + 'static,
    F: Future<Output = (Option<Message>, S)> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_connection(stream, init(), handler.clone()));
        }
    });
    Ok(url)
}

async fn serve_connection<S, H, F>(stream: TcpStream, mut state: S, handler: Arc<H>)
where
    H: Fn(Message, S) -> F + Send + Sync + 'static,
    F: Future<Output = (Option<Message>, S)> + Send + 'static,
{
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    while let Some(request) = read_message(&mut reader).await {
        let (answer, next) = handler(request, state).await;
        state = next;
        let Some(response) = answer else {
            std::future::pending::<()>().await;
            return;
        };
        if response.write_to(&mut writer).await.is_err() {
            return;
        }
    }
}

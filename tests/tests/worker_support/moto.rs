//! The moto server over plain HTTP: an SNS subscriber that receives what moto delivers, the control API
//! (Lambda without Docker), and IAM roles for functions.
//!
//! Published messages are read through a real `http` subscription rather than moto's
//! `/moto-api/data.json`, which fails as soon as a Lambda function exists on a server without Docker.

use std::sync::{Arc, Mutex};

use aws_sdk_sns::Client as SnsClient;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `host:port` of an `http://host:port` endpoint.
fn authority(endpoint: &str) -> &str {
    endpoint.trim_start_matches("http://").trim_end_matches('/')
}

/// Sends one request and returns the response body; panics on anything but 2xx.
pub async fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let host = authority(endpoint);
    let mut stream = TcpStream::connect(host).await.expect("connect to moto");
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send to moto");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read from moto");
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_ok = head
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    assert!(status_ok, "moto answered {head}");
    body.to_string()
}

/// An HTTP endpoint subscribed to SNS topics: keeps the body of every notification moto posts.
pub struct SnsInbox {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl SnsInbox {
    /// Starts listening on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port");
        let url = format!("http://{}/", listener.local_addr().expect("local address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if let Some(body) = receive(stream).await {
                    sink.lock().expect("inbox lock").push(body);
                }
            }
        });
        SnsInbox { url, received }
    }

    /// Subscribes this inbox to `topic_arn`.
    pub async fn subscribe(&self, sns: &SnsClient, topic_arn: &str) {
        sns.subscribe()
            .topic_arn(topic_arn)
            .protocol("http")
            .endpoint(&self.url)
            .send()
            .await
            .expect("subscribed on moto");
    }

    /// `(subject, message)` of every notification received from `topic_arn`, in order.
    pub fn messages(&self, topic_arn: &str) -> Vec<(String, String)> {
        self.received
            .lock()
            .expect("inbox lock")
            .iter()
            .filter(|n| n["TopicArn"] == topic_arn)
            .map(|n| {
                let text = |k: &str| n[k].as_str().unwrap_or_default().to_string();
                (text("Subject"), text("Message"))
            })
            .collect()
    }
}

/// Reads one HTTP request, answers 200, and returns its JSON body.
async fn receive(mut stream: TcpStream) -> Option<Value> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let body_start = loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..body_start]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < body_start + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
    serde_json::from_slice(&data[body_start..]).ok()
}

/// Makes moto's Lambda run functions without Docker (functions must be created after this).
pub async fn lambda_without_docker(endpoint: &str) {
    http(
        endpoint,
        "POST",
        "/moto-api/config",
        &[("Content-Type", "application/json")],
        r#"{"lambda":{"use_docker":false}}"#,
    )
    .await;
}

/// Creates the IAM role `name` (moto's Lambda needs one to create a function) and returns its ARN.
pub async fn create_role(endpoint: &str, name: &str) -> String {
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
    );
    let xml = http(
        endpoint,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            ),
        ],
        &body,
    )
    .await;
    let start = xml
        .find("<Arn>")
        .map(|i| i + 5)
        .expect("role ARN in the answer");
    let end = xml[start..].find("</Arn>").expect("end of role ARN") + start;
    xml[start..end].to_string()
}

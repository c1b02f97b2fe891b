//! Setting up moto server's Lambda without Docker: its control API, an IAM role, a function.

use std::io::{Read, Write};
use std::net::TcpStream;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use sosw_integration_tests::{MOTO_ENDPOINT_VAR, moto_config, unique_prefix};

/// An empty zip archive (just the end-of-central-directory record): moto stores the code, never runs
/// it without Docker.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A minimal HTTP/1.1 POST to moto (its control API and IAM need no SDK); returns status and body.
fn post(endpoint: &str, path: &str, content_type: &str, extra: &str, body: &str) -> (u16, String) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("moto is reachable");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Switches moto's Lambda to its Docker-free mode and creates an IAM role; returns the role ARN.
fn prepare_moto(endpoint: &str, role: &str) -> String {
    let (status, body) = post(
        endpoint,
        "/moto-api/config",
        "application/json",
        "",
        r#"{"lambda": {"use_docker": false}}"#,
    );
    assert!(status < 300, "moto config: {body}");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument={}",
        form_encode(policy)
    );
    // moto routes by the service named in the credential scope; the signature is not checked.
    let auth = "Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/iam/aws4_request, \
                SignedHeaders=host, Signature=0\r\n";
    let (status, body) = post(
        endpoint,
        "/",
        "application/x-www-form-urlencoded",
        auth,
        &form,
    );
    assert!(status < 300, "IAM CreateRole: {body}");
    let arn = body
        .split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next())
        .expect("CreateRole answers with the role's ARN");
    arn.to_string()
}

/// A Lambda client on moto with a fresh function of timeout `timeout`; `None` when moto is not set.
pub async fn moto_function(timeout: i32) -> Option<(aws_config::SdkConfig, String)> {
    let sdk = moto_config().await?;
    let function = create_function(&sdk, timeout).await;
    Some((sdk, function))
}

/// Creates a fresh function of timeout `timeout` on moto (at `SOSW_MOTO_ENDPOINT`); returns its name.
pub async fn create_function(sdk: &aws_config::SdkConfig, timeout: i32) -> String {
    let endpoint = std::env::var(MOTO_ENDPOINT_VAR).expect("the moto endpoint is set");
    let prefix = unique_prefix();
    let role = prepare_moto(&endpoint, &format!("{prefix}role"));
    let function = format!("{prefix}worker");
    Client::new(sdk)
        .create_function()
        .function_name(&function)
        .runtime(Runtime::Python312)
        .role(role)
        .handler("index.handler")
        .timeout(timeout)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(EMPTY_ZIP.to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("moto creates the function");
    function
}

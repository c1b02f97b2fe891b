//! The HTTP client of the AWS SDK clients: the SDK's default (hyper, rustls over aws-lc, proxy from the
//! environment), except that TLS is set up on the first `https` request instead of when each SDK client
//! is built.
//!
//! The default client builds a complete TLS connector, trust roots included, in every SDK client's
//! constructor and throws it away (it does so to load the native root certificates early), then builds
//! its own on the first request. Loading and parsing the system's root certificates is most of an
//! essential's start-up work (about three quarters of its instructions on a Debian image, which keeps
//! each root both in a bundle and in a directory). [`lazy_tls_client`] builds nothing in constructors and
//! sends `http://` requests (emulators such as DynamoDB Local or moto) through a connector without TLS,
//! so a process that only talks plain HTTP never loads the roots; an `https://` request builds the TLS
//! connector once, with the same roots and settings the default client uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared;

/// The SDK config of a Lambda container (or a command line): region, credentials and endpoints from
/// the environment (`AWS_REGION`, the function's role, `AWS_ENDPOINT_URL` for emulators), over
/// [`lazy_tls_client`]. When `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set (Lambda always sets
/// them for the function's role), the environment credentials provider, which the default chain would
/// pick first anyway, is used without building the rest of the chain (its web identity provider builds
/// an STS client); otherwise the default chain (profiles, SSO, container and instance roles).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(lazy_tls_client());
    if has_env_credentials(|name| std::env::var(name).ok()) {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    loader.load().await
}

/// Whether `lookup` has the access key and secret the SDK reads from the environment (blank values
/// count as unset, as the SDK counts them).
pub fn has_env_credentials(lookup: impl Fn(&str) -> Option<String>) -> bool {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|name| lookup(name).is_some_and(|value| !value.trim().is_empty()))
}

/// The SDK's default HTTP client with TLS set up on the first `https` request (see the module docs).
/// Pass it to `aws_config::ConfigLoader::http_client`.
pub fn lazy_tls_client() -> SharedHttpClient {
    LazyTlsClient {
        plain: connector_client(false),
        tls: connector_client(true),
        connectors: Arc::new(Mutex::new(HashMap::new())),
    }
    .into_shared()
}

/// A client building connectors as the SDK's default client does (`aws-smithy-runtime`'s
/// `default_https_client`), with TLS or without.
fn connector_client(with_tls: bool) -> SharedHttpClient {
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = ConnectorBuilder::default();
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        if with_tls {
            builder
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .build()
        } else {
            builder.build_http()
        }
    })
}

/// Connectors are shared by the settings that shape them, as the SDK's client shares its own.
type SettingsKey = (Option<Duration>, Option<Duration>);

#[derive(Debug, Clone)]
struct LazyTlsClient {
    plain: SharedHttpClient,
    tls: SharedHttpClient,
    connectors: Arc<Mutex<HashMap<SettingsKey, SharedHttpConnector>>>,
}

impl HttpClient for LazyTlsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connectors
            .entry(key)
            .or_insert_with(|| {
                SchemeConnector {
                    plain: self.plain.http_connector(settings, components),
                    tls_client: self.tls.clone(),
                    settings: settings.clone(),
                    components: components.clone(),
                    tls: Arc::new(OnceLock::new()),
                }
                .into_shared()
            })
            .clone()
    }

    // No `validate_base_client_config`: building a connector there is what this client avoids.

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.tls.connector_metadata()
    }
}

/// Sends `http://` requests without TLS and builds the TLS connector on the first other request.
#[derive(Debug, Clone)]
struct SchemeConnector {
    plain: SharedHttpConnector,
    tls_client: SharedHttpClient,
    settings: HttpConnectorSettings,
    components: RuntimeComponents,
    tls: Arc<OnceLock<SharedHttpConnector>>,
}

impl HttpConnector for SchemeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if is_plain_http(request.uri()) {
            return self.plain.call(request);
        }
        self.tls
            .get_or_init(|| {
                self.tls_client
                    .http_connector(&self.settings, &self.components)
            })
            .call(request)
    }
}

/// Whether `uri` is an `http://` URI (the scheme is case-insensitive).
fn is_plain_http(uri: &str) -> bool {
    uri.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn env_credentials_need_a_key_and_a_secret() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(has_env_credentials(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ])));
        assert!(!has_env_credentials(env(&[("AWS_ACCESS_KEY_ID", "AKIA")])));
        assert!(!has_env_credentials(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", " "),
        ])));
        assert!(!has_env_credentials(env(&[])));
    }

    #[test]
    fn only_http_uris_skip_tls() {
        assert!(is_plain_http("http://127.0.0.1:8000/"));
        assert!(is_plain_http("HTTP://localhost"));
        assert!(!is_plain_http("https://dynamodb.us-east-1.amazonaws.com/"));
        assert!(!is_plain_http("http:/"));
        assert!(!is_plain_http(""));
    }

    fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(lazy_tls_client())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("key", "secret", None, None, "test"))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// A one-connection server: returns the first bytes it read, answering `answer` when given.
    async fn serve_once(
        answer: Option<&'static str>,
    ) -> std::io::Result<(String, tokio::task::JoinHandle<Vec<u8>>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let handle = tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return Vec::new();
            };
            let mut buffer = vec![0u8; 4096];
            let read = socket.read(&mut buffer).await.unwrap_or(0);
            buffer.truncate(read);
            if let Some(answer) = answer {
                let _ = socket.write_all(answer.as_bytes()).await;
            }
            buffer
        });
        Ok((address, handle))
    }

    #[tokio::test]
    async fn http_endpoints_are_served_without_tls() -> Result<(), Box<dyn std::error::Error>> {
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: 17\r\n\r\n{\"TableNames\":[]}";
        let (address, server) = serve_once(Some(answer)).await?;
        let out = client(&format!("http://{address}"))
            .list_tables()
            .send()
            .await?;
        assert!(out.table_names().is_empty());
        assert!(server.await?.starts_with(b"POST / HTTP/1.1"));
        Ok(())
    }

    #[tokio::test]
    async fn https_endpoints_get_tls() -> Result<(), Box<dyn std::error::Error>> {
        let (address, server) = serve_once(None).await?;
        let sent = client(&format!("https://{address}"))
            .list_tables()
            .send()
            .await;
        assert!(sent.is_err(), "the test server speaks no TLS");
        // 0x16: a TLS handshake record (the ClientHello), not an HTTP request line.
        assert_eq!(server.await?.first(), Some(&0x16));
        Ok(())
    }
}

//! [`S3BlobStore`]: the [`BlobStore`] port over one S3 bucket (the scheduler's `queue_bucket`).

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use sosw_core::blob::{BlobStore, check_key};
use sosw_core::error::{BoxError, Error, Result};

/// The store name in [`Error::Store`].
const STORE: &str = "S3";

/// Error codes after which the same request may succeed later.
const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeTooSkewed",
];

/// A [`BlobStore`] over the bucket `bucket`. Keys are object keys as given ([`check_key`] applies).
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// A store over `bucket`, using `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3BlobStore {
            client,
            bucket: bucket.into(),
        }
    }

    /// An S3 client from shared SDK config. `force_path_style` addresses buckets as
    /// `<endpoint>/<bucket>/<key>`, which S3 emulators need; AWS itself wants `false`.
    pub fn client(sdk: &aws_config::SdkConfig, force_path_style: bool) -> Client {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(force_path_style)
            .build();
        Client::from_conf(config)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket in the client's region, for tests and local tooling. A bucket this account
    /// already owns is fine.
    pub async fn create_bucket(&self) -> Result<()> {
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        let region = self.client.config().region().map(ToString::to_string);
        if let Some(region) = region.filter(|r| r != "us-east-1") {
            let location = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build();
            request = request.create_bucket_configuration(location);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(self.sdk_error("create bucket", &self.bucket, e)),
        }
    }

    fn sdk_error<E>(
        &self,
        operation: &'static str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let retryable = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(ctx) => {
                ctx.err()
                    .code()
                    .is_some_and(|c| RETRYABLE_CODES.contains(&c))
                    || ctx.raw().status().is_server_error()
            }
            _ => false,
        };
        let source: BoxError = format!(
            "s3://{}/{key}: {}",
            self.bucket,
            aws_sdk_s3::error::DisplayErrorContext(&err)
        )
        .into();
        Error::store(STORE, operation, retryable, source)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.sdk_error("put object", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), GetObjectError::NoSuchKey(_)) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.sdk_error("get object", key, e)),
        };
        let body = out.body.collect().await.map_err(|e| {
            Error::store(
                STORE,
                "get object",
                true,
                format!("s3://{}/{key}: {e}", self.bucket),
            )
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<bool> {
        check_key(from)?;
        check_key(to)?;
        // `check_key` allows only characters that need no URL encoding in `x-amz-copy-source`.
        let source = format!("{}/{from}", self.bucket);
        let copied = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .send()
            .await;
        match copied {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NoSuchKey") => Ok(false),
            Err(e) => Err(self.sdk_error("copy object", from, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.sdk_error("delete object", key, e))?;
        Ok(())
    }
}

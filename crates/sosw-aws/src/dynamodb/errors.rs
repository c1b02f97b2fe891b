//! SDK errors mapped to [`sosw_core::Error`] at the adapter edge.
//!
//! Conditional-check failures never come through here as errors: the callers turn them into
//! outcomes first ([`written`] does so for one conditional write).

use std::fmt;

use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::CreateUnhandledError;

use sosw_core::error::{BoxError, Error};

/// The store name in [`Error::Store`].
pub(crate) const STORE: &str = "DynamoDB";

/// Error codes after which the same request may succeed later.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
    "ServiceUnavailable",
];

/// Cancellation-reason codes of a transaction that may succeed when retried.
const RETRYABLE_CANCELLATIONS: &[&str] = &[
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// A source error with the table it happened on, so messages say which table to look at.
#[derive(Debug)]
pub(crate) struct OnTable {
    table: String,
    source: BoxError,
}

impl fmt::Display for OnTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "table `{}`: {}", self.table, self.source)
    }
}

impl std::error::Error for OnTable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// Whether an error code is one of the retryable ones.
pub(crate) fn is_retryable_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
}

/// Whether a transaction cancellation reason is worth retrying.
pub(crate) fn is_retryable_cancellation(code: &str) -> bool {
    RETRYABLE_CANCELLATIONS.contains(&code)
}

/// Whether an SDK error may go away on retry: transport failures, timeouts, server errors, throttling.
pub(crate) fn is_retryable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            is_retryable_code(ctx.err().code()) || ctx.raw().status().is_server_error()
        }
        _ => false,
    }
}

/// Maps an SDK error of `operation` on `table`, keeping the service error as the source.
pub(crate) fn sdk_error<E>(
    operation: &'static str,
    table: &str,
    err: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + CreateUnhandledError + 'static,
{
    let retryable = is_retryable(&err);
    store_error(operation, table, retryable, err.into_service_error())
}

/// The outcome of a conditional write: `true` when written, `false` when DynamoDB refused its
/// condition (`refused` tells that error apart), any other failure an error of `operation` on
/// `table`.
pub(crate) fn written<O, E>(
    operation: &'static str,
    table: &str,
    result: std::result::Result<O, SdkError<E, HttpResponse>>,
    refused: fn(&E) -> bool,
) -> std::result::Result<bool, Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + CreateUnhandledError + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(refused) => Ok(false),
        Err(e) => Err(sdk_error(operation, table, e)),
    }
}

/// The outcome of a conditional write that asked for the item back on refusal
/// (`ReturnValuesOnConditionCheckFailure::AllOld`): `None` when written, `Some(item)` when
/// DynamoDB refused its condition (`refused` tells that error apart, `old` takes the item out of
/// it: `None` inside when there was no item), any other failure an error of `operation` on `table`.
pub(crate) fn refused_item<O, E>(
    operation: &'static str,
    table: &str,
    result: std::result::Result<O, SdkError<E, HttpResponse>>,
    refused: fn(&E) -> bool,
    old: fn(E) -> Option<super::codec::Item>,
) -> std::result::Result<Option<Option<super::codec::Item>>, Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + CreateUnhandledError + 'static,
{
    match result {
        Ok(_) => Ok(None),
        Err(e) if e.as_service_error().is_some_and(refused) => {
            Ok(Some(old(e.into_service_error())))
        }
        Err(e) => Err(sdk_error(operation, table, e)),
    }
}

/// An [`Error::Store`] for `operation` on `table`.
pub(crate) fn store_error(
    operation: &'static str,
    table: &str,
    retryable: bool,
    source: impl Into<BoxError>,
) -> Error {
    let source = OnTable {
        table: table.to_owned(),
        source: source.into(),
    };
    Error::store(STORE, operation, retryable, source)
}

/// A request that could not be built (a bug here, not a user error): not retryable.
pub(crate) fn build_error(operation: &'static str, table: &str, err: BuildError) -> Error {
    store_error(operation, table, false, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_conflicts_are_retryable_validation_is_not() {
        assert!(is_retryable_code(Some("ThrottlingException")));
        assert!(is_retryable_code(Some(
            "ProvisionedThroughputExceededException"
        )));
        assert!(is_retryable_code(Some("TransactionConflictException")));
        assert!(!is_retryable_code(Some("ValidationException")));
        assert!(!is_retryable_code(None));
        assert!(is_retryable_cancellation("TransactionConflict"));
        assert!(!is_retryable_cancellation("ConditionalCheckFailed"));
    }

    #[test]
    fn store_errors_name_the_table_and_keep_the_source() {
        let err = store_error("claim", "sosw_tasks", true, "boom");
        assert!(err.is_retryable());
        let msg = err.to_string();
        assert!(
            msg.contains("DynamoDB claim failed") && msg.contains("`sosw_tasks`"),
            "{msg}"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("table `sosw_tasks`: boom"));
    }
}

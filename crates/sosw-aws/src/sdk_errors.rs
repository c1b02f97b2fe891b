//! Classifying AWS SDK errors at the adapter edge: may the same call succeed later?

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

/// Service error codes that mean "try again later" on every AWS API this crate calls.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalException",
    "ServiceException",
    "EC2ThrottledException",
    "KMSThrottlingException",
    "ResourceConflictException",
];

/// Whether `err` may go away if the same call is made again later: timeouts, connection failures,
/// unreadable answers, throttling and the services' internal errors.
pub(crate) fn is_transient<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code) || code.contains("Throttl")),
        _ => false,
    }
}

//! The one error type of the `sosw` crate.
//!
//! Every variant says what went wrong in words a user can act on. SDK and SQLite errors are mapped at the
//! adapter edge and keep their source; conditional-check failures never arrive here, they are domain
//! outcomes (see [`crate::store::ClaimOutcome`] and friends).

use std::error::Error as StdError;

/// A boxed error source kept for `Error::source()` chains.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The result type of the `sosw` crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `sosw`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config document is invalid. `path` is the dotted key path (`task_config.labourers.x.arn`).
    #[error("invalid config `{document}` at `{path}`: {message}")]
    Config {
        /// The config document (`sosw_orchestrator_config`, a file name, ...).
        document: String,
        /// Dotted path of the offending key, or `.` for the document itself.
        path: String,
        /// What is wrong and, where possible, what would be right.
        message: String,
    },

    /// A value given to sosw (a task, a payload, a job) is invalid.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// What was being validated (`task id`, `task payload`, ...).
        what: &'static str,
        /// What is wrong.
        message: String,
    },

    /// A scheduler job is invalid. `path` is the dotted key path of the offending value inside the job
    /// (`sections.s1.stores`, `period`), `event` or `job` for the envelope, or `.` for the job itself.
    #[error("invalid job at `{path}`: {message}")]
    InvalidJob {
        /// Dotted key path of the offending value; array elements as `key[3]`.
        path: String,
        /// What is wrong and what was expected.
        message: String,
    },

    /// A stored item could not be decoded into a task (a row written by something else, or corrupted).
    #[error("cannot decode {what} from the {table} table: {message}")]
    Decode {
        /// What was being decoded (`task`, `config row`, ...).
        what: &'static str,
        /// The table or store it came from.
        table: String,
        /// What is wrong, naming the attribute where known.
        message: String,
    },

    /// A labourer named in a task or job is not configured.
    #[error(
        "unknown labourer `{0}`: add it under `task_config.labourers` in the essential's config"
    )]
    UnknownLabourer(String),

    /// The backing store failed. `retryable` says whether the same call may succeed later
    /// (throttling, timeouts, transaction conflicts).
    #[error("{store} {operation} failed: {source}")]
    Store {
        /// Which store (`DynamoDB`, `SQLite`).
        store: &'static str,
        /// The operation that failed (`claim`, `enqueue`, ...).
        operation: &'static str,
        /// Whether retrying the same call later can succeed.
        retryable: bool,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// A call to an AWS service other than the task store failed (SNS `Publish`, Lambda `Invoke`,
    /// EventBridge `ListRules`, ...), or it answered with a failure (a function error, an unexpected
    /// status). `retryable` says whether the same call may succeed later.
    #[error("{service} {operation} failed: {source}")]
    Service {
        /// The service (`SNS`, `Lambda`, `EventBridge`).
        service: &'static str,
        /// The operation (`Publish`, `Invoke`, ...).
        operation: &'static str,
        /// Whether retrying the same call later can succeed.
        retryable: bool,
        /// The underlying error, or a description of the failed answer.
        #[source]
        source: BoxError,
    },

    /// A feature that is named in the docs or config but not built yet.
    #[error("{0} is not implemented in this version of sosw")]
    NotImplemented(&'static str),

    /// File-system I/O failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the operation may succeed when retried later (the Lambda diagnostic `Retryable`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                retryable: true,
                ..
            } | Error::Service {
                retryable: true,
                ..
            }
        )
    }

    /// Shorthand for an [`Error::Invalid`].
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            message: message.into(),
        }
    }

    /// Shorthand for an [`Error::Service`].
    pub fn service(
        service: &'static str,
        operation: &'static str,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Service {
            service,
            operation,
            retryable,
            source: source.into(),
        }
    }

    /// Shorthand for an [`Error::InvalidJob`].
    pub fn invalid_job(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidJob {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The message with every cause in the source chain that adds something, joined by `: `.
    /// The top message alone often hides the reason: an SDK's `dispatch failure` says nothing of
    /// the refused connection or the missing region under it. What users read (the command line,
    /// a Lambda diagnostic) uses this.
    pub fn with_causes(&self) -> String {
        with_causes(self)
    }

    /// Shorthand for an [`Error::Store`].
    pub fn store(
        store: &'static str,
        operation: &'static str,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Store {
            store,
            operation,
            retryable,
            source: source.into(),
        }
    }
}

/// `err`'s message and every cause in its source chain whose text the message so far does not
/// already contain, joined by `: ` (see [`Error::with_causes`]).
pub fn with_causes(err: &(dyn StdError + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_retryable_store_errors_are_retryable() {
        assert!(Error::store("SQLite", "claim", true, "busy").is_retryable());
        assert!(!Error::store("SQLite", "claim", false, "corrupt").is_retryable());
        assert!(!Error::invalid("task id", "empty").is_retryable());
        assert!(Error::service("SNS", "Publish", true, "throttled").is_retryable());
        assert!(!Error::service("Lambda", "Invoke", false, "no such function").is_retryable());
    }

    #[test]
    fn invalid_job_message_names_the_key_path() {
        let msg = Error::invalid_job("sections.s1.stores", "expected an object").to_string();
        assert_eq!(
            msg,
            "invalid job at `sections.s1.stores`: expected an object"
        );
        assert!(!Error::invalid_job(".", "x").is_retryable());
    }

    #[test]
    fn unknown_labourer_message_says_what_to_do() {
        let msg = Error::UnknownLabourer("w1".into()).to_string();
        assert!(
            msg.contains("`w1`") && msg.contains("task_config.labourers"),
            "{msg}"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Cause {
        text: &'static str,
        #[source]
        source: Option<Box<Cause>>,
    }

    #[test]
    fn with_causes_adds_each_cause_the_message_does_not_already_say() {
        let root = Cause {
            text: "Connection refused (os error 111)",
            source: None,
        };
        let io = Cause {
            text: "io error",
            source: Some(Box::new(root)),
        };
        let dispatch = Cause {
            text: "dispatch failure",
            source: Some(Box::new(io)),
        };
        let err = Error::store("DynamoDB", "get config", true, dispatch);
        assert_eq!(
            err.to_string(),
            "DynamoDB get config failed: dispatch failure"
        );
        assert_eq!(
            err.with_causes(),
            "DynamoDB get config failed: dispatch failure: io error: Connection refused (os error 111)"
        );
        let repeated = Error::store(
            "SQLite",
            "claim",
            false,
            Cause {
                text: "database is locked",
                source: Some(Box::new(Cause {
                    text: "locked",
                    source: None,
                })),
            },
        );
        assert_eq!(
            repeated.with_causes(),
            "SQLite claim failed: database is locked",
            "a cause the message already says is not repeated"
        );
    }
}

//! Logs as JSON lines for CloudWatch, one object per event with its fields at the top level, so Logs
//! Insights can filter on `fields.task_id` or `level` without parsing text.

use tracing_subscriber::EnvFilter;

/// The level when neither `RUST_LOG` nor `AWS_LAMBDA_LOG_LEVEL` sets one.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// The standard filter variable (`info`, `sosw=debug,info`, ...).
pub const RUST_LOG_VAR: &str = "RUST_LOG";

/// The level set by Lambda's advanced logging controls (`INFO`, `DEBUG`, ...).
pub const LAMBDA_LOG_LEVEL_VAR: &str = "AWS_LAMBDA_LOG_LEVEL";

/// The filter directives from `lookup`: `RUST_LOG`, else `AWS_LAMBDA_LOG_LEVEL` in lower case, else
/// [`DEFAULT_LOG_LEVEL`]. Blank values count as unset.
pub fn log_directives(lookup: impl Fn(&str) -> Option<String>) -> String {
    let read = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    read(RUST_LOG_VAR)
        .or_else(|| read(LAMBDA_LOG_LEVEL_VAR).map(|level| level.trim().to_ascii_lowercase()))
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string())
}

/// The filter for `directives`; directives that do not parse give [`DEFAULT_LOG_LEVEL`] and the reason,
/// since a typo in `RUST_LOG` must not keep a function from starting.
pub fn log_filter(directives: &str) -> (EnvFilter, Option<String>) {
    match EnvFilter::try_new(directives) {
        Ok(filter) => (filter, None),
        Err(err) => (
            EnvFilter::new(DEFAULT_LOG_LEVEL),
            Some(format!("`{directives}` is not a valid log filter: {err}")),
        ),
    }
}

/// Installs the JSON subscriber for this process, with the level from the environment (see
/// [`log_directives`]). Lambda stamps every line with its time, so the lines carry none. Returns
/// `false` when a subscriber was installed already (a test harness), which is left in place.
pub fn init_tracing() -> bool {
    let directives = log_directives(|name| std::env::var(name).ok());
    let (filter, problem) = log_filter(&directives);
    let installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .without_time()
        .with_env_filter(filter)
        .try_init()
        .is_ok();
    if let Some(problem) = problem {
        tracing::warn!(%problem, level = DEFAULT_LOG_LEVEL, "log filter ignored");
    }
    installed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directives(vars: &[(&str, &str)]) -> String {
        log_directives(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn rust_log_wins_then_the_lambda_level_then_info() {
        assert_eq!(directives(&[]), "info");
        assert_eq!(directives(&[(LAMBDA_LOG_LEVEL_VAR, "DEBUG")]), "debug");
        assert_eq!(
            directives(&[(RUST_LOG_VAR, "sosw=trace"), (LAMBDA_LOG_LEVEL_VAR, "WARN")]),
            "sosw=trace"
        );
        assert_eq!(directives(&[(RUST_LOG_VAR, " ")]), "info");
    }

    #[test]
    fn a_bad_filter_falls_back_to_info_and_says_why() {
        let (_, problem) = log_filter("sosw=debug,info");
        assert_eq!(problem, None);
        let (filter, problem) = log_filter("sosw=loud");
        assert_eq!(filter.to_string(), "info");
        assert!(problem.is_some_and(|p| p.contains("sosw=loud")));
    }
}

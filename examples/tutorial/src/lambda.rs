//! What the example workers need on Lambda besides [`sosw::worker::run`]: logs as JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs a JSON log subscriber for CloudWatch, filtered by `RUST_LOG` (default `info`). Lambda
/// stamps each line with its time, so the lines carry none. A subscriber installed already is kept.
pub fn init_logs() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .without_time()
        .with_env_filter(filter)
        .try_init();
}

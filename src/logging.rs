//! Log set-up: text or JSON lines on stderr, level from `TRUST_INJECTOR_LOG`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// The variable holding the log filter (`RUST_LOG` syntax).
pub const LOG_ENV: &str = "TRUST_INJECTOR_LOG";

/// Installs the global subscriber. A bad filter falls back to `info` and says
/// so, rather than running silent.
pub fn init(format: LogFormat) {
    let (filter, bad) = match std::env::var(LOG_ENV) {
        Ok(v) if !v.is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new("info"), Some(format!("{LOG_ENV}={v}: {e}"))),
        },
        _ => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    if let Some(bad) = bad {
        tracing::warn!("invalid log filter, using info: {bad}");
    }
}

//! Log set-up: text or JSON lines on stderr, level from `TRUST_INJECTOR_LOG`.
//!
//! The filter is tracing-subscriber's `Targets` (`target=level` pairs and a bare
//! default level, comma-separated: the `RUST_LOG` syntax), not `EnvFilter`:
//! `EnvFilter`'s extras (span and field-value directives) need the `regex`
//! crates, which grow the binary's text, and every page of text the daemon
//! maps counts in its idle memory (figures: docs/performance.md).

use crate::config::LogFormat;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// The variable holding the log filter (`RUST_LOG` syntax).
pub const LOG_ENV: &str = "TRUST_INJECTOR_LOG";

/// Installs the global subscriber. A bad filter falls back to `info` and says
/// so, rather than running silent.
pub fn init(format: LogFormat) {
    let (filter, bad) = match std::env::var(LOG_ENV) {
        Ok(v) => filter_from(Some(&v)),
        Err(std::env::VarError::NotPresent) => filter_from(None),
        // Not silently "unset": the user set something and expects it used.
        Err(std::env::VarError::NotUnicode(v)) => (
            filter_from(None).0,
            Some(format!("{LOG_ENV}={}: not UTF-8", v.to_string_lossy())),
        ),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    match format {
        LogFormat::Text => tracing_subscriber::registry().with(filter).with(fmt).init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(fmt.json().flatten_event(true))
            .init(),
    }
    if let Some(bad) = bad {
        tracing::warn!("invalid log filter, using info: {bad}");
    }
}

/// The filter `value` asks for (`info` when unset or empty), and the complaint
/// to log when it does not parse.
fn filter_from(value: Option<&str>) -> (Targets, Option<String>) {
    let info = || Targets::new().with_default(LevelFilter::INFO);
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => match v.parse::<Targets>() {
            Ok(f) => (f, None),
            Err(e) => (info(), Some(format!("{LOG_ENV}={v}: {e}"))),
        },
        _ => (info(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn unset_and_empty_mean_info() {
        for v in [None, Some(""), Some("  ")] {
            let (f, bad) = filter_from(v);
            assert!(bad.is_none());
            assert!(f.would_enable("trust_injector", &Level::INFO));
            assert!(!f.would_enable("trust_injector", &Level::DEBUG));
        }
    }

    #[test]
    fn rust_log_syntax_levels_and_targets() {
        let (f, bad) = filter_from(Some("warn,trust_injector::daemon=trace"));
        assert!(bad.is_none());
        assert!(f.would_enable("trust_injector::daemon::watch", &Level::TRACE));
        assert!(!f.would_enable("trust_injector::trust", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::WARN));
        let (f, _) = filter_from(Some("TRACE"));
        assert!(f.would_enable("anything", &Level::TRACE));
        let (f, _) = filter_from(Some("off"));
        assert!(!f.would_enable("anything", &Level::ERROR));
    }

    #[test]
    fn a_bad_filter_falls_back_to_info_and_names_the_variable() {
        let (f, bad) = filter_from(Some("trust_injector=loud"));
        let bad = bad.expect("an invalid level is refused");
        assert!(
            bad.starts_with("TRUST_INJECTOR_LOG=trust_injector=loud: "),
            "{bad}"
        );
        assert!(f.would_enable("trust_injector", &Level::INFO));
    }
}

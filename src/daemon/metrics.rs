//! Prometheus metrics. Names are part of the user contract.

use crate::serve::exposition::{openmetrics_to_text004, Format};
use crate::trust::bundle::Bundle;
use crate::trust::policy::Concern;
use crate::trust::warning;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of the per-certificate expiry gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertLabels {
    pub subject: String,
    pub sha256: String,
}

/// Label of the certificate warnings gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// One of [`warning::CODES`], the codes of `docs/diagnosing.md`.
    pub code: &'static str,
}

/// Labels of the notification counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    /// `url` or `signal`.
    pub kind: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// Every metric the sidecar exports. Updated only by the reconcile loop;
/// read by the HTTP server when scraped.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    bundle_certificates: Gauge,
    custom_certificates: Gauge,
    publishes: Counter,
    reconciles: Counter,
    /// Counted by the inventory where a read fails (once per new failure).
    pub source_errors: Counter,
    publish_errors: Counter,
    files_in_error: Gauge,
    last_publish: Gauge<f64, AtomicU64>,
    expiry: Family<CertLabels, Gauge>,
    /// Custom certificates expiring within `policy::EXPIRY_WARNING_DAYS`.
    expiring_soon: Gauge,
    notifications: Family<NotifyLabels, Counter>,
    /// `--retain-removed`: certificates kept in their grace period.
    retained: Gauge,
    /// Published custom certificates per warning code: what readiness and
    /// the error metrics do not see (an intermediate without its root
    /// publishes fine, yet .NET trusts nothing through it).
    warnings: Family<CodeLabel, Gauge>,
    /// `run --check`: the backends' results.
    pub(crate) backends: super::backend_metrics::BackendMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            bundle_certificates: Gauge::default(),
            custom_certificates: Gauge::default(),
            publishes: Counter::default(),
            reconciles: Counter::default(),
            source_errors: Counter::default(),
            publish_errors: Counter::default(),
            files_in_error: Gauge::default(),
            last_publish: Gauge::default(),
            expiry: Family::default(),
            expiring_soon: Gauge::default(),
            notifications: Family::default(),
            retained: Gauge::default(),
            warnings: Family::default(),
            backends: Default::default(),
            registry: Registry::default(),
        };
        // Every code from the start, at zero: an alert on one code then has
        // a series to compare, before any warning and after the last.
        for code in warning::CODES {
            let _ = m.warnings.get_or_create(&CodeLabel { code });
        }
        registry.register(
            "trust_injector_bundle_certificates",
            "Certificates in the published bundle",
            m.bundle_certificates.clone(),
        );
        registry.register(
            "trust_injector_custom_certificates",
            "Certificates from the sources in the published bundle",
            m.custom_certificates.clone(),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "trust_injector_publishes",
            "Publishes that wrote the bundle or the hashed directory",
            m.publishes.clone(),
        );
        registry.register(
            "trust_injector_reconciles",
            "Full re-reads of the base and the sources (events, resyncs, signals, expiry)",
            m.reconciles.clone(),
        );
        registry.register(
            "trust_injector_source_errors",
            "Source files or directories that could not be read or parsed",
            m.source_errors.clone(),
        );
        registry.register(
            "trust_injector_publish_errors",
            "Publishes that failed (the previous bundle stayed in place)",
            m.publish_errors.clone(),
        );
        registry.register(
            "trust_injector_source_files_in_error",
            "Source files currently in error (their last good certificates are kept)",
            m.files_in_error.clone(),
        );
        registry.register(
            "trust_injector_last_publish_timestamp_seconds",
            "Unix time of the last publish that wrote something",
            m.last_publish.clone(),
        );
        registry.register(
            "trust_injector_certificate_expiry_timestamp_seconds",
            "notAfter of each custom certificate in the bundle, Unix time",
            m.expiry.clone(),
        );
        registry.register(
            "trust_injector_certificates_expiring_soon",
            "Custom certificates in the bundle expiring within 30 days (or kept expired)",
            m.expiring_soon.clone(),
        );
        registry.register(
            "trust_injector_notifications",
            "Change notifications sent to the application, by kind and outcome",
            m.notifications.clone(),
        );
        registry.register(
            "trust_injector_retained_certificates",
            "Certificates kept in the bundle after they left the sources (--retain-removed)",
            m.retained.clone(),
        );
        registry.register(
            "trust_injector_certificate_warnings",
            "Custom certificates in the published bundle with a warning, by code (docs/diagnosing.md)",
            m.warnings.clone(),
        );
        m.backends.register(&mut registry);
        // Info metrics get `_info` appended: trust_injector_build_info{version}.
        registry.register(
            "trust_injector_build",
            "Build information",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        Metrics { registry, ..m }
    }

    /// A reconcile began: the base and the sources are read again.
    pub(crate) fn record_reconcile(&self) {
        self.reconciles.inc();
    }

    /// A publish wrote something at `now` (Unix seconds).
    pub(crate) fn record_publish(&self, now: i64) {
        self.publishes.inc();
        self.last_publish.set(now as f64);
    }

    /// A publish failed; the previous bundle stayed in place.
    pub(crate) fn record_publish_failure(&self) {
        self.publish_errors.inc();
    }

    /// `--retain-removed`: how many certificates are in their grace period.
    pub(crate) fn record_retained(&self, count: usize) {
        self.retained.set(count as i64);
    }

    /// A change notification of `kind` (`url` or `signal`) ended with
    /// `outcome` (`ok` or `error`: [`NotificationOutcome::as_str`], taken as
    /// text so that metrics import nothing of the daemon, which counts
    /// through them).
    ///
    /// [`NotificationOutcome::as_str`]: crate::daemon::status::NotificationOutcome::as_str
    pub(crate) fn record_notification(&self, kind: &str, outcome: &str) {
        self.notifications
            .get_or_create(&NotifyLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Records what a successful publish put in the bundle: its sizes, the
    /// source files in error, what expires soon and each custom
    /// certificate's expiry. Called once per publish, so the gauges always
    /// describe the bundle on disk.
    pub fn record_bundle(&self, bundle: &Bundle, files_in_error: usize) {
        let m = self;
        m.bundle_certificates.set(bundle.entries.len() as i64);
        m.custom_certificates.set(bundle.custom_count() as i64);
        m.files_in_error.set(files_in_error as i64);
        // Same rule as the warnings (policy::Concern::ExpiresSoon); an expired
        // certificate kept by --keep-expired needs rotating even more.
        m.expiring_soon.set(
            bundle
                .entries
                .iter()
                .filter(|e| {
                    e.concerns.iter().any(|c| {
                        matches!(c, Concern::ExpiresSoon)
                            || (e.origin.is_custom() && matches!(c, Concern::ExpiredKept))
                    })
                })
                .count() as i64,
        );
        let custom = || bundle.entries.iter().filter(|e| e.origin.is_custom());
        for code in warning::CODES {
            let count = custom()
                .filter(|e| e.concerns.iter().any(|c| c.code() == code))
                .count();
            m.warnings
                .get_or_create(&CodeLabel { code })
                .set(count as i64);
        }
        m.expiry.clear();
        for e in custom() {
            m.expiry
                .get_or_create(&CertLabels {
                    subject: label_value(&e.cert.subject),
                    sha256: e.cert.sha256.clone(),
                })
                .set(e.cert.not_after);
        }
    }

    /// The exposition in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error here would only come from
        // a metric's own encoder, and an empty scrape is the honest result.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        match format {
            Format::OpenMetrics => out,
            Format::Text004 => openmetrics_to_text004(&out),
        }
    }
}

/// Makes text safe as a Prometheus label value (the encoder does not escape):
/// backslash, double quote and newline escaped as the format says, other
/// control characters replaced.
pub fn label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text004_names_families_by_their_samples() {
        let m = Metrics::new();
        m.publishes.inc();
        let text = m.encode(Format::Text004);
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains(" info\n"), "{text}");
        assert!(
            text.contains("# TYPE trust_injector_publishes_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP trust_injector_publishes_total "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE trust_injector_build_info gauge\ntrust_injector_build_info{"),
            "{text}"
        );
        let om = m.encode(Format::OpenMetrics);
        assert!(om.ends_with("# EOF\n"), "{om}");
    }
}

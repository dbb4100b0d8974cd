//! Prometheus metrics. Names are part of the user contract.

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
    pub registry: Registry,
    pub bundle_certificates: Gauge,
    pub custom_certificates: Gauge,
    pub publishes: Counter,
    pub reconciles: Counter,
    pub source_errors: Counter,
    pub publish_errors: Counter,
    pub files_in_error: Gauge,
    pub last_publish: Gauge<f64, AtomicU64>,
    pub expiry: Family<CertLabels, Gauge>,
    /// Custom certificates expiring within `policy::EXPIRY_WARNING_DAYS`.
    pub expiring_soon: Gauge,
    pub notifications: Family<NotifyLabels, Counter>,
    /// `--retain-removed`: certificates kept in their grace period.
    pub retained: Gauge,
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
            registry: Registry::default(),
        };
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

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an error here would only come from
        // a metric's own encoder, and an empty scrape is the honest result.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
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

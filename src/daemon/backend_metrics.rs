//! The backend checks' metrics (names in the contract, "Backend checks"):
//! one series per configured backend, labelled with its URL.

use super::metrics::label_value;
use crate::checks::outcome::{BackendStatus, CheckResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The `backend` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabel {
    pub backend: String,
}

/// The labels of the checks counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendResultLabels {
    pub backend: String,
    /// One of [`CheckResult::as_str`].
    pub result: &'static str,
}

/// Updated by the checker thread after each round (through the daemon's
/// sink), read when scraped.
#[derive(Debug, Default)]
pub struct BackendMetrics {
    trusted: Family<BackendLabel, Gauge>,
    reachable: Family<BackendLabel, Gauge>,
    last_check: Family<BackendLabel, Gauge<f64, AtomicU64>>,
    leaf_expiry: Family<BackendLabel, Gauge>,
    checks: Family<BackendResultLabels, Counter>,
    only_by_retained: Gauge,
}

impl BackendMetrics {
    /// Registers every backend metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let b = self;
        let r = registry;
        r.register(
            "trust_injector_backend_trusted",
            "1 when the backend's chain is trusted by the published bundle, 0 when not (or not reachable)",
            b.trusted.clone(),
        );
        r.register(
            "trust_injector_backend_reachable",
            "1 when the backend answered the TLS handshake with a chain, 0 when not",
            b.reachable.clone(),
        );
        r.register(
            "trust_injector_backend_last_check_timestamp_seconds",
            "Unix time of the backend's last check",
            b.last_check.clone(),
        );
        r.register(
            "trust_injector_backend_leaf_expiry_timestamp_seconds",
            "notAfter of the certificate the backend sent, Unix time",
            b.leaf_expiry.clone(),
        );
        // prometheus-client appends `_total` to counters.
        r.register(
            "trust_injector_backend_checks",
            "Backend checks by result (trusted, not_trusted, refused, timeout, not_tls, handshake_failed, unreachable)",
            b.checks.clone(),
        );
        r.register(
            "trust_injector_backends_trusted_only_by_retained",
            "Backends that only a CA in its --retain-removed grace still anchors",
            b.only_by_retained.clone(),
        );
    }

    /// Records a round: `checked` are this round's results (counted),
    /// `all` the latest of every backend (the gauges).
    pub fn record(&self, checked: &[BackendStatus], all: &[BackendStatus]) {
        for s in checked {
            let backend = label_value(&s.url);
            // Every result from the first check, at zero: an alert on a
            // rate then has a series to compare.
            for result in CheckResult::ALL {
                let labels = BackendResultLabels {
                    backend: backend.clone(),
                    result: result.as_str(),
                };
                let counter = self.checks.get_or_create(&labels);
                if result == s.result {
                    counter.inc();
                }
            }
        }
        for s in all {
            let label = BackendLabel {
                backend: label_value(&s.url),
            };
            let trusted = s.result == CheckResult::Trusted;
            self.trusted.get_or_create(&label).set(i64::from(trusted));
            let reachable = s.result.reachable();
            self.reachable
                .get_or_create(&label)
                .set(i64::from(reachable));
            self.last_check
                .get_or_create(&label)
                .set(s.checked_at_unix as f64);
            match s.leaf_expiry_unix {
                Some(t) => {
                    self.leaf_expiry.get_or_create(&label).set(t);
                }
                None => {
                    self.leaf_expiry.remove(&label);
                }
            }
        }
        let retained = all
            .iter()
            .filter(|s| s.trusted_only_by_retained.is_some())
            .count();
        self.only_by_retained.set(retained as i64);
    }
}

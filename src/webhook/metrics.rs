//! The webhook's metrics: reviews by outcome, their latency, and the serving
//! certificate (its expiry is what pages someone before the API server starts
//! failing every call).

use crate::serve::exposition::{openmetrics_to_text004, Format};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Label of the review counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    /// One of [`Outcome::label`].
    pub outcome: &'static str,
}

/// What became of one request to the webhook endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Allowed with a patch that adds the sidecar.
    Injected,
    /// Allowed unchanged: already carries the sidecar (reinvocation, or a
    /// workload injected by `inject`).
    Unchanged,
    /// Allowed unchanged: not opted in, opted out, or not a CREATE.
    Skipped,
    /// Already injected by another trust-injector version: annotated
    /// (`trust-injector.io/outdated`), its injection left as it is.
    Outdated,
    /// Answered with an HTTP error: malformed or unexpected review.
    Rejected,
    /// The pod could not be mutated (bad annotation): denied with a reason,
    /// never allowed half-patched.
    Denied,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 6] = [
        Outcome::Injected,
        Outcome::Unchanged,
        Outcome::Skipped,
        Outcome::Outdated,
        Outcome::Rejected,
        Outcome::Denied,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Injected => "injected",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Outdated => "outdated",
            Outcome::Rejected => "rejected",
            Outcome::Denied => "denied",
        }
    }
}

/// Certificate reloads by result.
#[derive(Debug, Default)]
pub(crate) struct Reloads {
    /// A new pair went into service.
    pub ok: Counter,
    /// A pair did not load; the previous one (if any) kept serving.
    pub error: Counter,
}

/// Every webhook metric.
#[derive(Debug)]
pub(crate) struct WebhookMetrics {
    /// What `/metrics` encodes.
    registry: Registry,
    /// Requests by [`Outcome`]: the rate of `rejected` or `denied` is what
    /// to alert on besides the expiry.
    pub reviews: Family<OutcomeLabel, Counter>,
    /// Seconds from the request's arrival to its answer, body read included.
    pub duration: Histogram,
    /// notAfter of the serving certificate in service (Unix time); 0 before one loads.
    pub cert_expiry: Gauge,
    /// Certificate loads, to see a Secret that keeps failing to load.
    pub cert_reloads: Reloads,
}

impl WebhookMetrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let reviews = Family::<OutcomeLabel, Counter>::default();
        // Every outcome shows from the start, so a rate() over a counter that
        // appears only on the first failure is never missed.
        for o in Outcome::ALL {
            let _ = reviews.get_or_create(&OutcomeLabel { outcome: o.label() });
        }
        // 0.5 ms .. ~1 s: the API server gives the whole call a few seconds.
        let duration = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.0005, 2.0, 12,
        ));
        let m = WebhookMetrics {
            registry: Registry::default(),
            reviews,
            duration,
            cert_expiry: Gauge::default(),
            cert_reloads: Reloads::default(),
        };
        registry.register(
            "trust_injector_webhook_reviews",
            "Admission requests answered, by outcome",
            m.reviews.clone(),
        );
        registry.register(
            "trust_injector_webhook_review_duration_seconds",
            "Time to answer an admission request, body read included",
            m.duration.clone(),
        );
        registry.register(
            "trust_injector_webhook_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in service, Unix time",
            m.cert_expiry.clone(),
        );
        let reloads = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "trust_injector_webhook_certificate_reloads",
            "Loads of the serving certificate files, by result (ok counts changes only)",
            reloads.clone(),
        );
        // One statement each: `get_or_create` returns a guard on the family's
        // lock, and a second call while the first guard lives deadlocks.
        let ok = reloads
            .get_or_create(&OutcomeLabel { outcome: "ok" })
            .clone();
        let error = reloads
            .get_or_create(&OutcomeLabel { outcome: "error" })
            .clone();
        let cert_reloads = Reloads { ok, error };
        registry.register(
            "trust_injector_build",
            "Build information",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        WebhookMetrics {
            registry,
            cert_reloads,
            ..m
        }
    }

    /// Counts one answered request.
    pub(crate) fn record(&self, outcome: Outcome, seconds: f64) {
        self.reviews
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc();
        self.duration.observe(seconds);
    }

    /// The exposition in `format`: Prometheus asks for OpenMetrics, and the
    /// body must be in the format its `Content-Type` names or it refuses it.
    pub(crate) fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an empty scrape is the honest
        // result of an encoder error.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        match format {
            Format::OpenMetrics => out,
            Format::Text004 => openmetrics_to_text004(&out),
        }
    }
}

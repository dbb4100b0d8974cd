//! The HTTP endpoints: probes, Prometheus metrics with the contract's names, and
//! /status describing exactly what is on disk.

mod common;

use common::atomic_writer::AtomicWriter;
use common::bundle::{self, sha256_hex, BUNDLE};
use common::daemon::{metric_sum, Daemon};
use common::pki::{self, Chain};
use common::s;
use serde_json::Value;

const METRICS: &[&str] = &[
    "trust_injector_bundle_certificates",
    "trust_injector_custom_certificates",
    "trust_injector_publishes_total",
    "trust_injector_source_errors_total",
    "trust_injector_last_publish_timestamp_seconds",
    "trust_injector_certificate_expiry_timestamp_seconds",
    "trust_injector_build_info",
];

/// Fingerprints may be printed as lower/upper hex, with or without colons.
fn norm(fp: &str) -> String {
    fp.replace(':', "").to_ascii_lowercase()
}

/// Every string in a JSON document.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|i| strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

fn has_string(v: &Value, pred: impl Fn(&str) -> bool) -> bool {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.iter().any(|s| pred(s))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn probes_metrics_and_status_describe_the_published_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = Chain::new("Endpoints");
    // A subject built to break naive label escaping and line-oriented formats.
    let evil =
        pki::root("Evil \"Quote\" \\ back\nslash {label=\"x\"} 1\n-----END CERTIFICATE-----\n# x");
    let secret = AtomicWriter::new(&tmp.path().join("secret"));
    secret.write(&[
        ("root.crt", chain.root.pem().as_bytes()),
        ("intermediate.crt", chain.intermediate.pem().as_bytes()),
        ("evil.crt", evil.pem().as_bytes()),
    ]);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let started = unix_now();
    let mut d = Daemon::builder(&out)
        .args(["--source", s(secret.dir()), "--base", "embedded"])
        .start();
    let customs = [&evil, &chain.intermediate, &chain.root];
    let fps = d.wait_bundle("custom CAs", |b| {
        customs.iter().all(|c| b.contains(&c.sha256()))
    });

    assert_eq!(d.get("/healthz").0, 200);
    assert_eq!(d.get("/readyz").0, 200);
    assert_eq!(d.get("/no-such-endpoint").0, 404);

    // --- /metrics ---
    let m = d.metrics();
    for name in METRICS {
        assert!(
            metric_sum(&m, name).is_some(),
            "/metrics has a sample of {name}:\n{m}"
        );
    }
    assert_eq!(
        metric_sum(&m, "trust_injector_bundle_certificates"),
        Some(fps.len() as f64)
    );
    assert_eq!(
        metric_sum(&m, "trust_injector_custom_certificates"),
        Some(3.0)
    );
    assert!(metric_sum(&m, "trust_injector_publishes_total").unwrap() >= 1.0);
    let last = metric_sum(&m, "trust_injector_last_publish_timestamp_seconds").unwrap();
    assert!(
        last >= started - 5.0 && last <= unix_now() + 5.0,
        "last publish timestamp {last} is about now"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("trust_injector_build_info{")
                && l.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))),
        "build_info carries the version:\n{m}"
    );
    let expiry: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("trust_injector_certificate_expiry_timestamp_seconds{"))
        .collect();
    assert_eq!(expiry.len(), 3, "one expiry series per custom CA:\n{m}");
    for c in customs {
        let line = expiry
            .iter()
            .find(|l| norm(l).contains(&c.sha256()))
            .unwrap_or_else(|| panic!("expiry series for {}:\n{m}", c.sha256()));
        assert!(line.contains("subject="), "{line}");
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let want = c.cert.params().not_after.unix_timestamp() as f64;
        assert!(
            (v - want).abs() < 2.0,
            "expiry {v} vs not_after {want}: {line}"
        );
    }
    // Every line of the exposition is a comment or `name[{labels}] value`.
    for l in m.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(
            l.starts_with("trust_injector_")
                || l.starts_with("process_")
                || l.starts_with("go_")
                || l.split(['{', ' '])
                    .next()
                    .unwrap()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "malformed exposition line (label escaping?): {l:?}"
        );
        assert!(
            l.rsplit(' ').next().unwrap().parse::<f64>().is_ok(),
            "malformed exposition line (label escaping?): {l:?}"
        );
    }

    // --- /status ---
    let file_sha = sha256_hex(&std::fs::read(out.join(BUNDLE)).unwrap());
    let st = d.status();
    if let Some(b) = st.get("bundle") {
        assert_eq!(
            b.get("sha256").and_then(Value::as_str).map(norm),
            Some(file_sha.clone()),
            "bundle.sha256 is the SHA-256 of the file on disk: {b}"
        );
        let count = b
            .as_object()
            .unwrap()
            .values()
            .any(|v| v.as_u64() == Some(fps.len() as u64));
        assert!(count, "bundle certificate count {} in {b}", fps.len());
    } else {
        panic!("/status has no `bundle` object: {st}");
    }
    assert!(
        has_string(&st, |x| x.contains(s(&out.join(BUNDLE)))
            || x.contains(s(&out))),
        "/status names the bundle path"
    );
    assert!(
        has_string(&st, |x| x.contains(s(secret.dir()))),
        "/status names the source"
    );
    for c in customs {
        assert!(
            has_string(&st, |x| norm(x) == c.sha256()),
            "/status lists custom certificate {}",
            c.sha256()
        );
    }
    assert!(
        has_string(&st, |x| x.contains("Endpoints Test Intermediate CA")),
        "/status lists subjects"
    );

    // After a change, /status follows the file on disk.
    secret.write(&[("root.crt", chain.root.pem().as_bytes())]);
    d.wait_bundle("intermediate and evil removed", |b| {
        !b.contains(&evil.sha256()) && b.contains(&chain.root.sha256())
    });
    common::wait_until(common::PATIENCE, "/status follows the new bundle", || {
        let file_sha = sha256_hex(&std::fs::read(out.join(BUNDLE)).unwrap());
        d.status()["bundle"]["sha256"].as_str().map(norm) == Some(file_sha)
    });
    assert_eq!(
        d.metric("trust_injector_custom_certificates"),
        Some(1.0),
        "custom count follows"
    );
    // The published bundle is well formed even with that subject around.
    bundle::fingerprints(&std::fs::read_to_string(out.join(BUNDLE)).unwrap()).unwrap();
    let st = d.stop();
    assert!(st.success(), "{st}");
}

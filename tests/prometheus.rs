//! A real Prometheus server (Debian's `prometheus` package) scrapes the sidecar,
//! the way the README's alerts rely on: the target must be `up`, and the series the
//! alerts use must hold the right values. Everything stays on loopback.

mod common;

use common::daemon::{free_port, http_get, Fixture};
use common::pki::Chain;
use common::{s, wait_for};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// Prometheus starts in a few seconds and scrapes every second; this bounds
/// "it happened at all" on a loaded machine.
const PROMETHEUS_PATIENCE: Duration = Duration::from_secs(60);

/// A Prometheus server with its own configuration and storage, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Starts a server on 127.0.0.1 that scrapes `target_port` every second.
    fn start(dir: &Path, target_port: u16) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: trust-injector\n    static_configs:\n\
                 \x20     - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.join("prometheus.log");
        let child = common::tools::clean_command("prometheus")
            .arg(format!("--config.file={}", s(&config)))
            .arg(format!("--storage.tsdb.path={}", s(&dir.join("data"))))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("prometheus.err")).unwrap())
            .current_dir(dir)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            port,
            log: dir.join("prometheus.err"),
        }
    }

    /// `GET /api/v1/<path>`'s `data`, once the server answers with success.
    fn api(&mut self, path: &str) -> Option<Value> {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!(
                "prometheus exited ({st}):\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        let (code, body) = http_get(self.port, &format!("/api/v1/{path}")).ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (code == 200 && v["status"] == "success").then(|| v["data"].clone())
    }

    /// The samples of an instant query once it returns at least `min` series.
    fn query(&mut self, expr: &str, min: usize) -> Vec<Value> {
        wait_for(
            PROMETHEUS_PATIENCE,
            &format!("Prometheus has {expr}"),
            || {
                let data = self.api(&format!("query?query={expr}"))?;
                let result = data["result"].as_array()?.clone();
                (result.len() >= min).then_some(result)
            },
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sample's value (Prometheus sends `[time, "value"]`).
fn value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {sample}"))
}

#[test]
fn a_real_prometheus_scrapes_the_sidecar_and_sees_the_custom_certificates() {
    let chain = Chain::new("Scraped");
    let f = Fixture::with_secret(&[
        ("root.crt", chain.root.pem().as_bytes()),
        ("intermediate.crt", chain.intermediate.pem().as_bytes()),
    ]);
    let d = f.daemon().base("embedded").start();

    let prom_dir = f.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    let mut prom = Prometheus::start(&prom_dir, d.port);

    // The target is up: Prometheus parsed the scrape (a body it cannot parse
    // marks it down, with the parser's message in lastError).
    let target = wait_for(PROMETHEUS_PATIENCE, "the sidecar target is up", || {
        let data = prom.api("targets")?;
        let t = data["activeTargets"].as_array()?.first()?.clone();
        (t["health"] == "up").then_some(t)
    });
    assert_eq!(target["lastError"], "", "{target}");

    let custom = prom.query("trust_injector_custom_certificates", 1);
    assert_eq!(custom.len(), 1, "{custom:?}");
    assert_eq!(value(&custom[0]), 2.0, "{custom:?}");

    let expiry = prom.query("trust_injector_certificate_expiry_timestamp_seconds", 2);
    assert_eq!(
        expiry.len(),
        2,
        "one series per custom certificate: {expiry:?}"
    );
    for cert in [&chain.root, &chain.intermediate] {
        let series = expiry
            .iter()
            .find(|e| e["metric"]["sha256"] == cert.sha256().as_str())
            .unwrap_or_else(|| panic!("expiry series for {}: {expiry:?}", cert.sha256()));
        let want = cert.cert.params().not_after.unix_timestamp() as f64;
        assert!(
            (value(series) - want).abs() < 2.0,
            "expiry of {}: {series} vs notAfter {want}",
            cert.sha256()
        );
        assert!(series["metric"]["subject"].is_string(), "{series}");
    }

    // The info metric and a counter come through under their contract names.
    let build = prom.query("trust_injector_build_info", 1);
    assert_eq!(build[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
    let publishes = prom.query("trust_injector_publishes_total", 1);
    assert!(value(&publishes[0]) >= 1.0, "{publishes:?}");
    let bundle = prom.query("trust_injector_bundle_certificates", 1);
    assert_eq!(
        value(&bundle[0]),
        common::bundle::read_bundle(&f.out).unwrap().len() as f64
    );
}

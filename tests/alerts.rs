//! The alert rules of `docs/observability.md`, as a user copies them: `promtool check
//! rules` accepts them, and `promtool test rules` on the series a real sidecar exports
//! for a Secret holding an intermediate without its root (the most common .NET
//! mistake, which readiness and the error metrics do not see) fires
//! `TrustInjectorMissingRoot`, while a Secret with the whole chain fires nothing.

mod common;

use common::daemon::Fixture;
use common::pki::Chain;
use common::tools;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The first ```yaml block under `## Alerts` in docs/observability.md.
fn documented_rules() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/observability.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let alerts = &doc[doc.find("\n## Alerts").expect("no ## Alerts section")..];
    let start = alerts
        .find("```yaml\n")
        .expect("no yaml block under ## Alerts")
        + 8;
    let len = alerts[start..].find("```").unwrap();
    alerts[start..start + len].to_string()
}

/// Every sample of a 0.0.4 scrape as a promtool input series, constant for an hour.
fn input_series(metrics: &str) -> String {
    let mut out = String::new();
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let series = series.replace('\'', "''");
        out.push_str(&format!(
            "      - series: '{series}'\n        values: '{value}x60'\n"
        ));
    }
    out
}

/// `promtool test rules` with `rules.yaml` and the series, expecting `firing`
/// (alertname, and the `code` label) at 10 minutes.
fn promtool_test(dir: &Path, metrics: &str, firing: &[(&str, &str)]) -> tools::Out {
    let mut tests = String::new();
    for name in [
        "TrustInjectorMissingRoot",
        "TrustInjectorCertificateWarning",
    ] {
        let alerts: String = firing
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, code)| format!("          - exp_labels:\n              code: {code}\n"))
            .collect();
        let exp = if alerts.is_empty() {
            "        exp_alerts: []\n".to_string()
        } else {
            format!("        exp_alerts:\n{alerts}")
        };
        tests.push_str(&format!(
            "      - eval_time: 10m\n        alertname: {name}\n{exp}"
        ));
    }
    let file = dir.join("test.yaml");
    std::fs::write(
        &file,
        format!(
            "rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{}    alert_rule_test:\n{tests}",
            input_series(metrics)
        ),
    )
    .unwrap();
    tools::run(
        tools::clean_command("promtool")
            .args(["test", "rules"])
            .arg(&file)
            .current_dir(dir),
        T,
    )
}

/// The metrics of a sidecar whose Secret holds `files`.
fn scrape(files: &[(&str, &[u8])]) -> String {
    let f = Fixture::with_secret(files);
    let mut d = f.daemon().start();
    d.wait_ready();
    let metrics = d.metrics();
    d.stop();
    metrics
}

#[test]
fn documented_alerts_check_and_fire_on_missing_root() {
    tools::require("promtool");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), documented_rules()).unwrap();
    let check = tools::run(
        tools::clean_command("promtool")
            .args(["check", "rules", "rules.yaml"])
            .current_dir(dir.path()),
        T,
    );
    assert!(check.ok(), "promtool check rules:\n{}", check.text());

    let chain = Chain::new("Alert");
    let inter = chain.intermediate.pem();
    let only_intermediate = scrape(&[("ca.crt", inter.as_bytes())]);
    let out = promtool_test(
        dir.path(),
        &only_intermediate,
        &[("TrustInjectorMissingRoot", "missing_root")],
    );
    assert!(
        out.ok(),
        "promtool test rules:\n{}\nmetrics:\n{only_intermediate}",
        out.text()
    );

    let whole = format!("{}{}", chain.root.pem(), inter);
    let whole_chain = scrape(&[("ca.crt", whole.as_bytes())]);
    let out = promtool_test(dir.path(), &whole_chain, &[]);
    assert!(
        out.ok(),
        "promtool test rules:\n{}\nmetrics:\n{whole_chain}",
        out.text()
    );
}

//! The Helm chart `deploy/charts/trust-injector`, rendered by Helm's own engine (PyPI's
//! `helm-python-sdk`, offline) and judged by the tools users and CI run:
//! - a matrix of values (each TLS mode, monitoring and OpenShift on and off, sidecar
//!   mode native, classic and picked from the cluster's version) renders, every object that is not
//!   a CRD kind passes `kubernetes-validate --strict` on 1.29 and on the newest version
//!   it knows, and the CRD kinds it cannot check are exactly the named ones;
//! - `helm lint --strict` (the SDK's) finds nothing above info, values.schema.json
//!   refuses unknown keys and an incomplete `tls.mode=secret`, and checkov fails no
//!   check but those docs/chart.md lists with its reasons;
//! - the PrometheusRule passes `promtool check rules`, and `promtool test rules` makes
//!   every alert fire on its failure and stay quiet on healthy series; the sidecar's
//!   alerts are docs/observability.md's, every runbook_url points at a section of
//!   docs/chart.md, and every metric the rules and dashboard name is one we export;
//! - the Helm-generated serving certificate survives an upgrade: rendered against a
//!   loopback Kubernetes API holding the installed Secret, `lookup` keeps it;
//! - a real Prometheus (Debian's) scraping a real sidecar on loopback returns series
//!   for every sidecar dashboard query and rule selector, fires nothing while healthy,
//!   and fires `TrustInjectorSourceInError` once a Secret file is broken; the same
//!   for the webhook's series.
//!
//! `.ci/validate.sh` adds what needs kubectl: the default rendering against
//! `kubectl kustomize k8s/webhook/base` and `k8s/webhook/cert-manager`.

mod common;

use common::tools;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// Kinds kubernetes-validate has no schema for (CRDs); every other kind is validated.
const CRD_KINDS: [&str; 5] = [
    "Certificate",
    "Issuer",
    "PodMonitor",
    "ServiceMonitor",
    "PrometheusRule",
];

/// Renders each case `{name, namespace, values}` of the JSON file argv[2] with the
/// chart argv[1]; prints `[{notes, docs}]` as JSON. A case whose values the chart
/// refuses gives `{error}` instead.
const RENDER: &str = r#"
import json, sys, yaml
import helm_python as helm
chart = helm.Chart.load(sys.argv[1])
out = []
for case in json.load(open(sys.argv[2])):
    try:
        files = chart.render(case["values"], name=case["name"], namespace=case["namespace"])
    except helm.HelmError as e:
        out.append({"error": str(e)})
        continue
    docs, notes = [], ""
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    out.append({"notes": notes, "docs": docs})
print(json.dumps(out))
"#;

/// `helm lint --strict` at each Kubernetes version argv[2:], and the schema on the
/// values of the JSON file argv[1]: prints `{lint: [...], schema: [error or null]}`.
const LINT: &str = r#"
import json, sys
import helm_python as helm
chart_dir, cases, versions = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3:]
lint = [helm.lint(chart_dir, {}, strict=True, kube_version=v) for v in versions]
chart = helm.Chart.load(chart_dir)
schema = []
for values in cases:
    try:
        chart.validate_schema(values)
        schema.append(None)
    except helm.HelmValuesError as e:
        schema.append(str(e))
print(json.dumps({"lint": lint, "schema": schema}))
"#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("deploy/charts/trust-injector")
}

/// The test virtualenv's python (with `helm_python`, PyYAML) and kubernetes-validate.
fn venv() -> (PathBuf, PathBuf) {
    tools::venv_python("helm_python, yaml")
}

/// Runs a Python snippet with the JSON `input` written to a file (its argv[2]).
fn python_json(python: &Path, code: &str, input: &Value, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.json");
    std::fs::write(&file, input.to_string()).unwrap();
    let out = tools::run(
        Command::new(python)
            .args(["-c", code])
            .arg(chart_dir())
            .arg(&file)
            .args(extra),
        T,
    );
    assert!(out.ok(), "{}", out.text());
    serde_json::from_str(&out.stdout).unwrap()
}

fn render(python: &Path, cases: &[Value]) -> Vec<Value> {
    let out = python_json(python, RENDER, &Value::from(cases.to_vec()), &[]);
    out.as_array().unwrap().clone()
}

fn monitoring(on: bool) -> Value {
    json!({
        "webhook": {"podMonitor": {"enabled": on}, "serviceMonitor": {"enabled": on}},
        "sidecars": {"podMonitor": {"enabled": on}},
        "prometheusRule": {"enabled": on},
        "dashboard": {"enabled": on},
    })
}

/// A base64 PEM CA for `tls.mode=secret` (any certificate: only its form matters here).
fn some_ca_bundle() -> String {
    use base64::Engine;
    let chain = common::pki::Chain::new("chart");
    base64::engine::general_purpose::STANDARD.encode(chain.root.pem())
}

fn tls(mode: &str, ca: &str) -> Value {
    match mode {
        "secret" => {
            json!({"mode": "secret", "existingSecret": {"name": "my-webhook-tls", "caBundle": ca}})
        }
        m => json!({"mode": m}),
    }
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn env_of(docs: &[Value], name: &str) -> Option<String> {
    let dep = find(docs, "Deployment")[0];
    dep["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].as_str().unwrap().to_string())
}

/// What each TLS mode must give: where the caBundle comes from and which objects.
fn check_tls(mode: &str, docs: &[Value], ca: &str) {
    let mwc = find(docs, "MutatingWebhookConfiguration")[0];
    let bundles: BTreeSet<_> = mwc["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["clientConfig"]["caBundle"].as_str().map(str::to_string))
        .collect();
    let secrets = find(docs, "Secret");
    let annotation = &mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"];
    match mode {
        "helm" => {
            assert_eq!(secrets.len(), 1, "one generated Secret");
            let ca_crt = secrets[0]["data"]["ca.crt"].as_str().map(str::to_string);
            assert_eq!(
                bundles,
                BTreeSet::from([ca_crt]),
                "caBundle is the Secret's CA"
            );
            assert!(annotation.is_null());
        }
        "certManager" => {
            assert_eq!(bundles, BTreeSet::from([None]), "cert-manager injects it");
            assert!(annotation.is_string(), "no inject-ca-from annotation");
            assert_eq!(find(docs, "Certificate").len(), 2);
            assert!(secrets.is_empty());
        }
        _ => {
            assert_eq!(bundles, BTreeSet::from([Some(ca.to_string())]));
            assert!(secrets.is_empty() && annotation.is_null());
            let vols = &find(docs, "Deployment")[0]["spec"]["template"]["spec"]["volumes"];
            assert_eq!(vols[0]["secret"]["secretName"], "my-webhook-tls");
        }
    }
}

/// Every case of the matrix: TLS mode x monitoring x sidecar mode.
fn matrix(ca: &str) -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    for tls_mode in ["helm", "certManager", "secret"] {
        for mon in [false, true] {
            for mode in ["", "native", "classic"] {
                // OpenShift rides with monitoring, so each is on and off in every TLS
                // and sidecar mode without doubling the matrix.
                let label = format!("tls={tls_mode} monitoring=openshift={mon} mode={mode:?}");
                let values = json!({
                    "tls": tls(tls_mode, ca),
                    "monitoring": monitoring(mon),
                    "openshift": mon,
                    "sidecar": {"mode": mode, "include": ["*.crt", "ca.pem"]},
                });
                cases.push((label, values));
            }
        }
    }
    cases
}

#[test]
fn every_values_combination_renders_and_validates_strict() {
    let (python, kv) = venv();
    let ca = some_ca_bundle();
    let cases = matrix(&ca);
    let inputs: Vec<Value> = cases
        .iter()
        .map(|(_, v)| json!({"name": "trust-injector", "namespace": "trust-injector", "values": v}))
        .collect();
    let rendered = render(&python, &inputs);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for ((label, values), out) in cases.iter().zip(&rendered) {
        assert!(out["error"].is_null(), "{label}: {}", out["error"]);
        let docs = out["docs"].as_array().unwrap();
        check_tls(values["tls"]["mode"].as_str().unwrap(), docs, &ca);
        // An unset mode is picked from the cluster's version: the SDK renders as the
        // newest Kubernetes, which runs native sidecars.
        let mode = values["sidecar"]["mode"].as_str().unwrap();
        let want = if mode.is_empty() { "native" } else { mode };
        assert_eq!(
            env_of(docs, "TRUST_INJECTOR_WEBHOOK_MODE").as_deref(),
            Some(want),
            "{label}"
        );
        assert_eq!(
            env_of(docs, "TRUST_INJECTOR_WEBHOOK_INCLUDE").as_deref(),
            Some("*.crt,ca.pem"),
            "{label}"
        );
        // OpenShift assigns the user and fsGroup from the namespace's range.
        let pod_sc = &find(docs, "Deployment")[0]["spec"]["template"]["spec"]["securityContext"];
        let fixed = ["runAsUser", "runAsGroup", "fsGroup"].map(|k| pod_sc[k].is_null());
        assert_eq!(fixed, [values["openshift"] == true; 3], "{label}: {pod_sc}");
        assert_eq!(pod_sc["runAsNonRoot"], true, "{label}");
        // ... and what the webhook injects gets no fixed user either.
        let openshift = env_of(docs, "TRUST_INJECTOR_WEBHOOK_OPENSHIFT");
        let want = (values["openshift"] == true).then(|| "true".to_string());
        assert_eq!(openshift, want, "{label}");
        let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        let monitored = values["monitoring"]["prometheusRule"]["enabled"] == true;
        for kind in ["PodMonitor", "ServiceMonitor", "PrometheusRule"] {
            assert_eq!(kinds.contains(kind), monitored, "{label}: {kind}");
        }
        let dashboard = find(docs, "ConfigMap")
            .iter()
            .any(|c| c["metadata"]["labels"]["grafana_dashboard"] == "1");
        assert_eq!(dashboard, monitored, "{label}: the dashboard ConfigMap");
        for kind in ["NetworkPolicy", "PodDisruptionBudget", "Pod"] {
            assert!(kinds.contains(kind), "{label}: no {kind}");
        }
        // Everything but the CRD kinds goes to kubernetes-validate, one file per case.
        let (crd, core): (Vec<&Value>, Vec<&Value>) = docs
            .iter()
            .partition(|d| CRD_KINDS.contains(&d["kind"].as_str().unwrap()));
        for d in crd {
            let api = d["apiVersion"].as_str().unwrap();
            assert!(
                api == "cert-manager.io/v1" || api == "monitoring.coreos.com/v1",
                "{label}: {api}"
            );
        }
        let file = dir.path().join(format!("case-{}.yaml", files.len()));
        let text: Vec<String> = core.iter().map(|d| d.to_string()).collect();
        std::fs::write(&file, text.join("\n---\n")).unwrap();
        files.push((label.clone(), file));
    }
    let latest = tools::run(
        Command::new(kv.parent().unwrap().join("python")).args([
            "-c",
            "from kubernetes_validate.utils import latest_version; print(latest_version())",
        ]),
        T,
    );
    assert!(latest.ok(), "{}", latest.text());
    for version in ["1.29.0", latest.stdout.trim()] {
        let out = tools::run(
            tools::clean_command(kv.to_str().unwrap())
                .args(["--strict", "-k", version])
                .args(files.iter().map(|(_, f)| f)),
            T,
        );
        let text = out.text();
        let labels: Vec<&String> = files.iter().map(|(l, _)| l).collect();
        assert!(
            out.ok(),
            "kubernetes-validate -k {version}:\n{text}\ncases: {labels:?}"
        );
        assert!(!text.contains("Couldn't find schema"), "{text}");
    }
}

#[test]
fn lint_is_clean_and_the_schema_refuses_unknown_keys() {
    let (python, _) = venv();
    let cases = json!([
        {},
        {"replicas": 3},
        {"monitoring": {"webhook": {"podmonitor": {"enabled": true}}}},
        {"sidecar": {"mode": "auto"}},
        {"tls": {"mode": "secret"}},
        {"tls": {"mode": "secret", "existingSecret": {"name": "x", "caBundle": "LS0t"}}},
    ]);
    let out = python_json(&python, LINT, &cases, &["v1.27.0", "v1.29.0", "v1.34.0"]);
    for report in out["lint"].as_array().unwrap() {
        assert_eq!(report["errors"], json!([]), "{report}");
        let above_info: Vec<_> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64().unwrap() > 1)
            .collect();
        assert!(above_info.is_empty(), "{above_info:?}");
    }
    let schema = out["schema"].as_array().unwrap();
    assert!(schema[0].is_null(), "defaults refused: {}", schema[0]);
    for (i, needle) in [
        (1, "replicas"),
        (2, "podmonitor"),
        (3, "mode"),
        (4, "existingSecret"),
    ] {
        let err = schema[i]
            .as_str()
            .unwrap_or_else(|| panic!("case {i} accepted"));
        assert!(err.contains(needle), "{err}");
    }
    assert!(schema[5].is_null(), "{}", schema[5]);
}

/// Renders the chart with default values as Helm would for a cluster at each Kubernetes
/// version argv[2:] and prints the sidecar mode the webhook is given, per version. The
/// SDK's `Chart.render` has no `kube_version` argument, but the library's render options
/// take one (the same field `helm template --kube-version` sets), so the native call is
/// used with the pinned SDK (tests/programs.tsv).
const MODE_BY_VERSION: &str = r#"
import json, re, sys
import helm_python as helm
from helm_python import chart as c
chart = helm.Chart.load(sys.argv[1])
out = {}
for v in sys.argv[3:]:
    opts = json.dumps({"name": "t", "namespace": "t", "kube_version": v})
    files = json.loads(c._native.call_string("helm_render", chart._raw(), c._dumps({}), opts))
    text = "\n".join(files.values())
    out[v] = re.findall(r'TRUST_INJECTOR_WEBHOOK_MODE\s+value: "?(\w+)', text)
print(json.dumps(out))
"#;

#[test]
fn an_unset_mode_is_classic_before_kubernetes_1_29_and_native_from_it() {
    let (python, _) = venv();
    let versions = ["v1.25.0", "v1.28.15", "v1.29.0", "v1.34.1"];
    let out = python_json(&python, MODE_BY_VERSION, &json!({}), &versions);
    assert_eq!(
        out,
        json!({
            "v1.25.0": ["classic"],
            "v1.28.15": ["classic"],
            "v1.29.0": ["native"],
            "v1.34.1": ["native"],
        })
    );
}

/// The rendered PrometheusRule's groups, as a Prometheus rules file (JSON is YAML).
fn chart_rules(python: &Path, namespace: &str) -> Value {
    let out = render(
        python,
        &[
            json!({"name": "trust-injector", "namespace": namespace, "values": {"monitoring": monitoring(true)}}),
        ],
    );
    let docs = out[0]["docs"].as_array().unwrap().clone();
    json!({"groups": find(&docs, "PrometheusRule")[0]["spec"]["groups"]})
}

fn alerts(rules: &Value) -> Vec<&Value> {
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect()
}

/// The first ```yaml block under `## Alerts` in docs/observability.md.
fn documented_rules() -> Value {
    let doc = std::fs::read_to_string(root().join("docs/observability.md")).unwrap();
    let alerts = &doc[doc.find("\n## Alerts").unwrap()..];
    let start = alerts.find("```yaml\n").unwrap() + 8;
    let len = alerts[start..].find("```").unwrap();
    serde_saphyr::from_str(&alerts[start..start + len]).unwrap()
}

#[test]
fn chart_alerts_are_the_documented_ones_with_runbooks_and_real_metrics() {
    let (python, _) = venv();
    let rules = chart_rules(&python, "trust-injector");
    let chart: Vec<&Value> = alerts(&rules);
    for rule in &chart {
        let name = rule["alert"].as_str().unwrap();
        assert!(
            rule["labels"]["severity"].is_string(),
            "{name}: no severity"
        );
        assert!(rule["for"].is_string(), "{name}: no for");
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = url.rsplit_once('#').unwrap().1;
        assert_eq!(anchor, name.to_lowercase(), "{name}: {url}");
        let doc = std::fs::read_to_string(root().join("docs/chart.md")).unwrap();
        assert!(
            doc.contains(&format!("\n### {name}\n")),
            "docs/chart.md has no runbook section `### {name}`"
        );
    }
    // The sidecar's alerts are docs/observability.md's, expression for expression.
    let documented = documented_rules();
    for rule in alerts(&documented) {
        let name = &rule["alert"];
        let ours = chart.iter().find(|r| &r["alert"] == name);
        let ours = ours.unwrap_or_else(|| panic!("the chart has no {name}"));
        assert_eq!(ours["expr"], rule["expr"], "{name}");
    }
    // Every metric named by the rules and the dashboard is one the code registers.
    let sources = [
        "src/daemon/metrics.rs",
        "src/daemon/backend_metrics.rs",
        "src/webhook/metrics.rs",
    ]
    .map(|p| std::fs::read_to_string(root().join(p)).unwrap())
    .concat();
    let dashboard = std::fs::read_to_string(chart_dir().join("files/dashboard.json")).unwrap();
    let text = format!("{rules}{dashboard}");
    let names: BTreeSet<&str> = text
        .match_indices("trust_injector_")
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let base = ["_total", "_bucket", "_info"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            sources.contains(&format!("\"{base}\"")),
            "{name} is not a metric we export"
        );
    }
}

/// One promtool unit test per alert: `fire` series make it fire at 90 minutes (after the longest `for`) with
/// `labels`; the healthy series keep every alert quiet.
struct Case {
    alert: &'static str,
    fire: &'static [(&'static str, &'static str)],
    labels: &'static [(&'static str, &'static str)],
}

const NS: &str = "namespace=\"trust-injector\"";

fn cases() -> Vec<Case> {
    vec![
        Case { alert: "TrustInjectorSourceInError", fire: &[("trust_injector_source_files_in_error", "1x200")], labels: &[] },
        Case { alert: "TrustInjectorPublishFailing", fire: &[("trust_injector_publish_errors_total", "0+1x200")], labels: &[] },
        Case { alert: "TrustInjectorCAExpiringSoon", fire: &[("trust_injector_certificates_expiring_soon", "1x200")], labels: &[] },
        Case { alert: "TrustInjectorCAExpiresIn7Days", fire: &[("trust_injector_certificate_expiry_timestamp_seconds{subject=\"CN=x\",sha256=\"ab\"}", "86400x200")], labels: &[("subject", "CN=x"), ("sha256", "ab")] },
        Case { alert: "TrustInjectorMissingRoot", fire: &[("trust_injector_certificate_warnings{code=\"missing_root\"}", "1x200")], labels: &[("code", "missing_root")] },
        Case { alert: "TrustInjectorCertificateWarning", fire: &[("trust_injector_certificate_warnings{code=\"not_ca\"}", "1x200")], labels: &[("code", "not_ca")] },
        Case { alert: "TrustInjectorNoCustomCA", fire: &[("trust_injector_custom_certificates", "0x200")], labels: &[] },
        Case { alert: "TrustInjectorBackendNotTrusted", fire: &[("trust_injector_backend_trusted{backend=\"https://b/\"}", "0x200"), ("trust_injector_backend_reachable{backend=\"https://b/\"}", "1x200")], labels: &[("backend", "https://b/")] },
        Case { alert: "TrustInjectorBackendOnlyRetainedCA", fire: &[("trust_injector_backends_trusted_only_by_retained", "1x200")], labels: &[] },
        Case { alert: "TrustInjectorWebhookDown", fire: &[("up{namespace=\"trust-injector\",pod=\"trust-injector-webhook-7d9-abc\"}", "0x200")], labels: &[] },
        Case { alert: "TrustInjectorWebhookCertificateExpiring", fire: &[("trust_injector_webhook_certificate_expiry_timestamp_seconds{namespace=\"trust-injector\"}", "86400x200")], labels: &[("namespace", "trust-injector")] },
        Case { alert: "TrustInjectorWebhookDenials", fire: &[("trust_injector_webhook_reviews_total{namespace=\"trust-injector\",outcome=\"denied\"}", "0+1x200")], labels: &[] },
        Case { alert: "TrustInjectorWebhookSlow", fire: &[
            ("trust_injector_webhook_review_duration_seconds_bucket{namespace=\"trust-injector\",le=\"2\"}", "0+1x200"),
            ("trust_injector_webhook_review_duration_seconds_bucket{namespace=\"trust-injector\",le=\"+Inf\"}", "0+10x200"),
        ], labels: &[] },
        Case { alert: "TrustInjectorWebhookRejectedByAPIServer", fire: &[("apiserver_admission_webhook_rejection_count{name=\"namespace.inject.trust-injector.io\",error_type=\"calling_webhook_error\",type=\"admit\",operation=\"CREATE\",rejection_code=\"500\"}", "0+1x200")], labels: &[("name", "namespace.inject.trust-injector.io"), ("error_type", "calling_webhook_error")] },
    ]
}

/// Series of a healthy install: nothing in error, CAs far from expiry, a webhook up,
/// answering fast, and an API server that refuses nothing of ours (another webhook's
/// rejections do not count).
fn healthy() -> Vec<(String, &'static str)> {
    vec![
        ("trust_injector_source_files_in_error".into(), "0x200"),
        ("trust_injector_publish_errors_total".into(), "3x200"),
        ("trust_injector_certificates_expiring_soon".into(), "0x200"),
        ("trust_injector_certificate_expiry_timestamp_seconds{subject=\"CN=x\",sha256=\"ab\"}".into(), "99999999999x200"),
        ("trust_injector_certificate_warnings{code=\"missing_root\"}".into(), "0x200"),
        ("trust_injector_certificate_warnings{code=\"expires_soon\"}".into(), "1x200"),
        ("trust_injector_certificate_warnings{code=\"not_ca\"}".into(), "0x200"),
        ("trust_injector_custom_certificates".into(), "2x200"),
        // A trusted backend, and one that is down: unreachable is not untrusted.
        ("trust_injector_backend_trusted{backend=\"https://ok/\"}".into(), "1x200"),
        ("trust_injector_backend_reachable{backend=\"https://ok/\"}".into(), "1x200"),
        ("trust_injector_backend_trusted{backend=\"https://down/\"}".into(), "0x200"),
        ("trust_injector_backend_reachable{backend=\"https://down/\"}".into(), "0x200"),
        ("trust_injector_backends_trusted_only_by_retained".into(), "0x200"),
        (format!("up{{{NS},pod=\"trust-injector-webhook-7d9-abc\"}}"), "1x200"),
        (format!("up{{{NS},pod=\"trust-injector-webhook-7d9-def\"}}"), "0x200"),
        (format!("trust_injector_webhook_certificate_expiry_timestamp_seconds{{{NS}}}"), "99999999999x200"),
        (format!("trust_injector_webhook_reviews_total{{{NS},outcome=\"denied\"}}"), "2x200"),
        (format!("trust_injector_webhook_reviews_total{{{NS},outcome=\"injected\"}}"), "0+5x200"),
        (format!("trust_injector_webhook_review_duration_seconds_bucket{{{NS},le=\"0.01\"}}"), "0+10x200"),
        (format!("trust_injector_webhook_review_duration_seconds_bucket{{{NS},le=\"+Inf\"}}"), "0+10x200"),
        ("apiserver_admission_webhook_rejection_count{name=\"other.example.com\",error_type=\"calling_webhook_error\"}".into(), "0+1x200"),
        ("apiserver_admission_webhook_rejection_count{name=\"inject.trust-injector.io\",error_type=\"no_error\"}".into(), "4x200"),
    ]
}

fn series_yaml(series: &[(String, &str)]) -> String {
    series
        .iter()
        .map(|(s, v)| format!("      - series: '{s}'\n        values: '{v}'\n"))
        .collect()
}

#[test]
fn every_chart_alert_fires_on_its_failure_and_stays_quiet_when_healthy() {
    let (python, _) = venv();
    tools::require("promtool");
    let dir = tempfile::tempdir().unwrap();
    let rules = chart_rules(&python, "trust-injector");
    std::fs::write(dir.path().join("rules.yaml"), rules.to_string()).unwrap();
    let check = tools::run(
        tools::clean_command("promtool")
            .args(["check", "rules"])
            .arg(dir.path().join("rules.yaml")),
        T,
    );
    assert!(check.ok(), "promtool check rules:\n{}", check.text());

    let names: BTreeSet<String> = alerts(&rules)
        .iter()
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect();
    let cases = cases();
    let tested: BTreeSet<String> = cases.iter().map(|c| c.alert.to_string()).collect();
    assert_eq!(names, tested, "every chart alert has a promtool case");

    let mut tests = String::new();
    for c in &cases {
        let series: Vec<(String, &str)> = c.fire.iter().map(|(s, v)| (s.to_string(), *v)).collect();
        tests.push_str(&format!(
            "  - interval: 1m\n    input_series:\n{}    alert_rule_test:\n      - eval_time: 90m\n        alertname: {}\n        exp_alerts:\n{}",
            series_yaml(&series),
            c.alert,
            expected_alert(&rules, c),
        ));
    }
    let quiet: String = names
        .iter()
        .map(|n| {
            format!("      - eval_time: 90m\n        alertname: {n}\n        exp_alerts: []\n")
        })
        .collect();
    tests.push_str(&format!(
        "  - interval: 1m\n    input_series:\n{}    alert_rule_test:\n{quiet}",
        series_yaml(&healthy())
    ));
    let file = dir.path().join("test.yaml");
    std::fs::write(
        &file,
        format!("rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n{tests}"),
    )
    .unwrap();
    let out = tools::run(
        tools::clean_command("promtool")
            .args(["test", "rules"])
            .arg(&file),
        T,
    );
    assert!(
        out.ok(),
        "promtool test rules:\n{}\n{}",
        out.text(),
        std::fs::read_to_string(&file).unwrap()
    );
}

/// The alert `c` expects, as promtool wants it: its labels (the rule's and the
/// series') and its annotations with `{{ $labels.x }}` filled in.
fn expected_alert(rules: &Value, c: &Case) -> String {
    let rule = alerts(rules)
        .into_iter()
        .find(|r| r["alert"] == c.alert)
        .unwrap();
    let mut labels = format!(
        "              severity: {}\n",
        rule["labels"]["severity"].as_str().unwrap()
    );
    for (k, v) in c.labels {
        labels.push_str(&format!("              {k}: {v}\n"));
    }
    let mut annotations = String::new();
    for (k, v) in rule["annotations"].as_object().unwrap() {
        let mut v = v.as_str().unwrap().to_string();
        for (lk, lv) in c.labels {
            v = v.replace(&format!("{{{{ $labels.{lk} }}}}"), lv);
        }
        annotations.push_str(&format!("              {k}: {}\n", Value::from(v)));
    }
    format!("          - exp_labels:\n{labels}            exp_annotations:\n{annotations}")
}

/// The checks docs/chart.md lists as left on purpose (`| CKV_... |` rows).
fn checkov_skips() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/chart.md")).unwrap();
    let section = &doc[doc
        .find("### checkov findings")
        .expect("no checkov section")..];
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| CKV_"))
        .map(|l| format!("CKV_{}", l.split(' ').next().unwrap()))
        .collect()
}

#[test]
fn checkov_passes_but_for_the_documented_skips() {
    let (python, _) = venv();
    let checkov = tools::require("checkov");
    let ca = some_ca_bundle();
    let cases: Vec<Value> = ["helm", "certManager", "secret"]
        .iter()
        .map(|m| {
            json!({"name": "trust-injector", "namespace": "trust-injector",
                   "values": {"tls": tls(m, &ca), "monitoring": monitoring(*m == "helm")}})
        })
        .collect();
    // checkov skips hidden directories, which tempdir()'s `.tmpXXXX` is.
    let dir = tempfile::Builder::new()
        .prefix("chart-checkov")
        .tempdir()
        .unwrap();
    for (i, out) in render(&python, &cases).iter().enumerate() {
        let docs: Vec<String> = out["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        std::fs::write(
            dir.path().join(format!("case-{i}.yaml")),
            docs.join("\n---\n"),
        )
        .unwrap();
    }
    let skips = checkov_skips();
    assert!(skips.len() >= 4, "{skips:?}");
    let out = tools::run(
        tools::clean_command(checkov.to_str().unwrap())
            .args(["--framework", "kubernetes", "--skip-download", "--quiet"])
            .args(["--output", "json", "--skip-check", &skips.join(",")])
            .arg("-d")
            .arg(dir.path())
            .env("BC_SKIP_MAPPING", "TRUE"),
        T,
    );
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov gave no JSON ({e}):\n{}", out.text()));
    let summary = &report["summary"];
    let passed = summary["passed"].as_u64();
    assert!(
        passed > Some(100),
        "checkov checked too little:\n{}",
        out.text()
    );
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| format!("{} {} {}", c["check_id"], c["resource"], c["check_name"]))
        .collect();
    assert!(
        failed.is_empty() && summary["failed"] == 0,
        "checkov failures not fixed nor explained in docs/chart.md:\n{}",
        failed.join("\n")
    );
}

/// Renders the default chart twice offline, then as `helm upgrade` would against a
/// cluster holding the first rendering's Secret: a minimal Kubernetes API on loopback
/// (discovery and that one Secret) answers the chart's `lookup`. Prints the three
/// renderings' Secret data and caBundles as JSON.
const UPGRADE: &str = r#"
import json, sys, threading, yaml
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import helm_python as helm

OBJECTS = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret", "verbs": ["get"]}]},
}
class Api(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        obj = OBJECTS.get(self.path.split("?")[0])
        body = json.dumps(obj or {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404}).encode()
        self.send_response(200 if obj else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}"

chart = helm.Chart.load(sys.argv[1])
def tls(files):
    docs = [d for p, t in files.items() if not p.endswith("NOTES.txt") for d in yaml.safe_load_all(t) if d]
    secret = next(d for d in docs if d["kind"] == "Secret")
    mwc = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
    return {"secret": secret, "caBundles": [h["clientConfig"]["caBundle"] for h in mwc["webhooks"]]}
first = tls(chart.render({}, name="trust-injector", namespace="trust-injector"))
second = tls(chart.render({}, name="trust-injector", namespace="trust-injector"))
path = "/api/v1/namespaces/trust-injector/secrets/" + first["secret"]["metadata"]["name"]
OBJECTS[path] = first["secret"]
kubeconfig = f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{url}"}}}}]
users: [{{name: nobody, user: {{}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: nobody, namespace: trust-injector}}}}]
current-context: fake
"""
with helm.Config(namespace="trust-injector", kubeconfig_content=kubeconfig) as cfg:
    upgraded = tls(cfg.render(chart, {}, name="trust-injector", namespace="trust-injector", is_upgrade=True))
print(json.dumps({"first": first, "second": second, "upgraded": upgraded}))
"#;

#[test]
fn helm_generated_certificate_is_kept_across_upgrades() {
    let (python, _) = venv();
    let out = python_json(&python, UPGRADE, &json!(null), &[]);
    let data = |k: &str| out[k]["secret"]["data"].clone();
    let bundles = |k: &str| out[k]["caBundles"].clone();
    for k in ["first", "second", "upgraded"] {
        let ca = data(k)["ca.crt"].clone();
        assert!(ca.is_string(), "{k}: no ca.crt");
        assert_eq!(
            bundles(k),
            json!([ca, ca]),
            "{k}: caBundle is not the Secret's CA"
        );
    }
    // Without a cluster to look into, every rendering makes a new pair: what an
    // upgrade would do without `lookup`, refusing Pods until the new CA is everywhere.
    assert!(
        data("first") != data("second"),
        "two offline renderings gave the same pair"
    );
    // With the first install's Secret in the cluster, the upgrade keeps it whole.
    assert!(
        data("upgraded") == data("first"),
        "the upgrade made a new certificate instead of keeping the installed one"
    );
}

/// A real Prometheus (Debian's) on loopback, scraping a sidecar and a webhook with
/// the labels a PodMonitor gives (`namespace`, `pod`) and evaluating the chart's rules
/// every second; killed on drop.
struct Prometheus {
    child: std::process::Child,
    port: u16,
    err: PathBuf,
}

impl Prometheus {
    /// `targets`: (job, port); the sidecars' job gets a Pod of namespace `apps`, the
    /// webhook's a Pod of the Deployment `trust-injector-webhook` in `trust-injector`.
    fn start(dir: &Path, targets: &[(&str, u16)], rules: &Value) -> Prometheus {
        std::fs::write(dir.join("rules.yaml"), rules.to_string()).unwrap();
        let jobs: String = targets
            .iter()
            .map(|(job, port)| {
                let (ns, pod) = match *job {
                    "webhook" => ("trust-injector", "trust-injector-webhook-7d9-abc"),
                    _ => ("apps", "gateway-5c9-x1"),
                };
                format!(
                    "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels: {{namespace: {ns}, pod: {pod}}}\n"
                )
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yaml]\nscrape_configs:\n{jobs}"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = common::daemon::free_port();
        let err = dir.join("prometheus.err");
        let child = tools::clean_command(tools::require("prometheus").to_str().unwrap())
            .arg("--config.file=prometheus.yml")
            .arg("--storage.tsdb.path=data")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .current_dir(dir)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, port, err }
    }

    /// The `data` of `GET /api/v1/query?query=expr` once it succeeds.
    fn query(&mut self, expr: &str) -> Option<Vec<Value>> {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!(
                "prometheus exited ({st}):\n{}",
                std::fs::read_to_string(&self.err).unwrap_or_default()
            );
        }
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (code, body) = common::daemon::http_get(self.port, &path).ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        assert!(code == 200 || code == 503, "{expr}: {code} {body}");
        (v["status"] == "success").then(|| v["data"]["result"].as_array().unwrap().clone())
    }

    /// The series of `expr` once there are any (bounded by [`PROMETHEUS_PATIENCE`]).
    fn series(&mut self, expr: &str) -> Vec<Value> {
        common::wait_for(
            PROMETHEUS_PATIENCE,
            &format!("Prometheus returns series for {expr}"),
            || self.query(expr).filter(|r| !r.is_empty()),
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus starts in seconds and scrapes every second: this bounds "at all".
const PROMETHEUS_PATIENCE: Duration = Duration::from_secs(90);

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The vector selectors (`name{matchers}`) of our metrics and `up` in a PromQL
/// expression, each of which must select series on a real scrape.
fn selectors(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find(|c: char| c.is_ascii_lowercase()) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let after = &tail[end..];
        let matchers = if after.starts_with('{') {
            &after[..=after.find('}').unwrap()]
        } else {
            ""
        };
        if name.starts_with("trust_injector_") || (name == "up" && !matchers.is_empty()) {
            out.push(format!("{name}{matchers}"));
        }
        rest = &tail[end + matchers.len()..];
    }
    out
}

/// The query of every dashboard panel.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(chart_dir().join("files/dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect()
}

/// The chart's rules of `group` with every `for` at 0s: an alert fires at its first
/// true evaluation, so firing means "the expression matched" without waiting minutes.
fn rules_now(python: &Path, group: &str) -> Value {
    let rules = chart_rules(python, "trust-injector");
    let mut groups: Vec<Value> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["name"] == group)
        .cloned()
        .collect();
    assert_eq!(groups.len(), 1, "no rule group {group}");
    for rule in groups[0]["rules"].as_array_mut().unwrap() {
        rule["for"] = json!("0s");
    }
    json!({ "groups": groups })
}

/// Every dashboard query about `what` (`sidecars` or `webhook`), and every selector
/// of every rule, returns series from the real scrape: no typo'd metric or label.
/// The API server's own metric needs an API server, and is left out by name.
fn assert_series(prom: &mut Prometheus, rules: &Value, webhook: bool) {
    let apiserver = "apiserver_admission_webhook_rejection_count";
    let queries: Vec<String> = dashboard_queries()
        .into_iter()
        .filter(|e| !e.contains(apiserver) && e.contains("webhook") == webhook)
        .collect();
    assert!(queries.len() >= 3, "{queries:?}");
    for expr in &queries {
        prom.series(expr);
    }
    let mut checked = 0;
    for rule in alerts(rules) {
        for sel in selectors(rule["expr"].as_str().unwrap()) {
            prom.series(&sel);
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} selectors");
    // After a few evaluations on healthy series, nothing fires.
    prom.series("count_over_time(up[1m]) >= 5");
    let firing = prom.query("ALERTS").unwrap();
    assert!(firing.is_empty(), "alerts on a healthy install: {firing:?}");
}

#[test]
fn a_real_prometheus_finds_the_sidecar_series_and_a_broken_secret_fires_its_alert() {
    use common::daemon::Fixture;
    use common::pki::Chain;
    let (python, _) = venv();
    let chain = Chain::new("Chart");
    let f = Fixture::with_secret(&[
        ("root.crt", chain.root.pem().as_bytes()),
        ("intermediate.crt", chain.intermediate.pem().as_bytes()),
    ]);
    // A backend checked against the bundle (run --check), so the backend series exist.
    let backend = common::https::HttpsServer::start(&chain.server_pem());
    let check = format!("https://localhost:{}/", backend.port);
    let sidecar = f
        .daemon()
        .base("embedded")
        .args(["--check", &check])
        .start();
    let rules = rules_now(&python, "trust-injector-sidecar");
    let dir = f.path().join("prometheus");
    std::fs::create_dir(&dir).unwrap();
    let mut prom = Prometheus::start(&dir, &[("sidecars", sidecar.port)], &rules);
    prom.series("up{job=\"sidecars\"} == 1");
    assert_series(&mut prom, &rules, false);

    // A Secret file that does not parse: the source alert fires.
    f.secret.write(&[
        ("root.crt", chain.root.pem().as_bytes()),
        (
            "intermediate.crt",
            b"-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
        ),
    ]);
    let fired =
        prom.series("ALERTS{alertname=\"TrustInjectorSourceInError\",alertstate=\"firing\"}");
    assert_eq!(fired[0]["metric"]["severity"], "warning", "{fired:?}");
}

/// The webhook's /metrics answers in the format the scraper asks for, as the
/// sidecar's does (src/serve/exposition.rs): a body under the wrong
/// `Content-Type` is refused by Prometheus and the target stays down.
#[test]
fn a_real_prometheus_scrapes_the_webhook_and_finds_its_series() {
    let (python, _) = venv();
    let chain = common::pki::Chain::new("Chart");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    chain.leaf.write_pem(&cert);
    std::fs::write(&key, chain.leaf.key_pem()).unwrap();
    let mut webhook = common::webhook::Webhook::start(&cert, &key, &[]);
    webhook.wait_ready();
    let rules = rules_now(&python, "trust-injector-webhook");
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    let mut prom = Prometheus::start(&prom_dir, &[("webhook", webhook.probe_port)], &rules);
    prom.series("up{job=\"webhook\"} == 1");
    assert_series(&mut prom, &rules, true);
}

/// Chart.yaml follows Cargo.toml's version (chart and app), its Artifact Hub
/// annotations are the YAML lists Artifact Hub reads, and the image they name is the
/// one the chart deploys by default.
#[test]
fn chart_metadata_follows_cargo_and_artifact_hub() {
    let chart: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(chart["version"], version);
    assert_eq!(chart["appVersion"], version);
    let ann = chart["annotations"].as_object().unwrap();
    let list = |key: &str| -> Vec<Value> {
        let text = ann[key].as_str().unwrap_or_else(|| panic!("no {key}"));
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    let images = list("artifacthub.io/images");
    assert_eq!(
        images[0]["image"],
        format!("ghcr.io/trust-injector/trust-injector:{version}").as_str()
    );
    for link in list("artifacthub.io/links") {
        assert!(
            link["name"].is_string() && link["url"].is_string(),
            "{link}"
        );
    }
    for change in list("artifacthub.io/changes") {
        let kind = change["kind"].as_str().unwrap();
        assert!(
            [
                "added",
                "changed",
                "deprecated",
                "removed",
                "fixed",
                "security"
            ]
            .contains(&kind),
            "{change}"
        );
    }
    assert_eq!(ann["artifacthub.io/license"], "Apache-2.0");
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        values["image"]["repository"],
        "ghcr.io/trust-injector/trust-injector"
    );
}

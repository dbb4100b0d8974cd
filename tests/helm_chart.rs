//! The webhook opt-in through a chart that templates labels unquoted, as the official
//! azure-api-management-gateway chart does (`{{ $key }}: {{ $value }}`): rendered with
//! Helm's own engine (PyPI's `helm-python-sdk`, offline, no `helm` binary), the value
//! `enabled` gives a Deployment that `kubernetes-validate --strict` accepts and whose
//! pod label the shipped webhook configuration selects; `true` gives a YAML boolean,
//! which the API server refuses as a label value (the README's old advice).

mod common;

use common::tools;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
const LABEL: &str = "trust-injector.io/inject";

/// Renders the fixture chart with one `--set`-style expression, as `helm template`
/// would, and prints the manifests.
const RENDER: &str = r#"
import sys
import helm_python as helm
chart = helm.Chart.load(sys.argv[1])
values = helm.parse_set_string(sys.argv[2])
for path, text in sorted(chart.render(values, name="gw", namespace="apps").items()):
    print(f"---\n# Source: {path}\n{text}")
"#;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test virtualenv's python, which has `helm_python` beside `kubernetes-validate`.
fn venv_python() -> (PathBuf, PathBuf) {
    tools::venv_python("helm_python")
}

fn render(python: &Path, set: &str) -> String {
    let chart = root().join("tests/fixtures/helm-unquoted-labels");
    let out = tools::run(
        Command::new(python)
            .args(["-c", RENDER])
            .arg(chart)
            .arg(set),
        T,
    );
    assert!(out.ok(), "render --set {set}: {}", out.text());
    out.stdout
}

/// `kubernetes-validate --strict` against Kubernetes 1.29; the combined output.
fn validate(kv: &Path, yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = tools::run(
        tools::clean_command(kv.to_str().unwrap())
            .args(["--strict", "--quiet", "-k", "1.29.0"])
            .arg(&file),
        T,
    );
    (out.ok(), out.text())
}

fn pod_label(yaml: &str) -> Value {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap();
    let d = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    d["spec"]["template"]["metadata"]["labels"][LABEL].clone()
}

/// The values the shipped pod webhook's objectSelector accepts.
fn selected_values() -> Vec<Value> {
    let path = root().join("k8s/webhook/base/mutatingwebhookconfiguration.yaml");
    let mwc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let hook = mwc["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "inject.trust-injector.io")
        .unwrap();
    let expr = &hook["objectSelector"]["matchExpressions"][0];
    assert_eq!(
        (&expr["key"], &expr["operator"]),
        (&Value::from(LABEL), &Value::from("In"))
    );
    expr["values"].as_array().unwrap().clone()
}

#[test]
fn enabled_survives_unquoted_label_templating_and_true_does_not() {
    let (python, kv) = venv_python();

    let enabled = render(&python, r"commonLabels.trust-injector\.io/inject=enabled");
    let (ok, text) = validate(&kv, &enabled);
    assert!(
        ok,
        "kubernetes-validate refused the `enabled` rendering:\n{text}\n{enabled}"
    );
    let label = pod_label(&enabled);
    assert_eq!(label, Value::from("enabled"), "{enabled}");
    assert!(
        selected_values().contains(&label),
        "{:?}",
        selected_values()
    );

    // What the README used to advise: from --set or --set-string alike, the chart
    // writes `true` bare, a YAML boolean, and the Deployment is invalid.
    let truthy = render(&python, r"commonLabels.trust-injector\.io/inject=true");
    assert!(truthy.contains(&format!("{LABEL}: true\n")), "{truthy}");
    let (ok, text) = validate(&kv, &truthy);
    assert!(
        !ok,
        "kubernetes-validate accepted a boolean label value:\n{truthy}"
    );
    assert!(text.contains(LABEL) || text.contains("labels"), "{text}");
}

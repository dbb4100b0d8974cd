//! YAML read as Kubernetes reads it, for tests that inspect manifests.

use serde_json::Value;

/// Every document of a YAML stream, parsed (empty documents dropped). As Kubernetes
/// reads YAML, `0440` is octal.
pub fn docs(text: &str) -> Vec<Value> {
    let mut opts = serde_saphyr::Options::default();
    opts.legacy_octal_numbers = true;
    let values: Vec<Value> = serde_saphyr::from_multiple_with_options(text, opts)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    values.into_iter().filter(|v| !v.is_null()).collect()
}

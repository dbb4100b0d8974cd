//! Finds the pod templates in Kubernetes manifests (YAML streams, JSON, `kind: List`)
//! and runs the mutation on each. A document that is not changed is written back as the
//! exact text it was read as; a changed one is re-serialised from its untyped value, so
//! its unknown fields and field order survive.

use super::mutate::{self, InjectError, InjectOptions, Outcome, SkipReason, HELM_HOOK};
use super::stream;
use serde_json::Value;

/// Inject, or take out an earlier injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add trust-injector (or re-inject, replacing an earlier injection).
    Inject,
    /// Take out what the status annotation says was added.
    Remove,
}

/// One input: its name (a path, or `-` for stdin) for messages, and its text.
#[derive(Debug, Clone)]
pub struct Input {
    /// How errors name this input: the path as given, or `-`.
    pub name: String,
    /// The whole text, kept so untouched documents are written back exactly.
    pub text: String,
}

/// What became of each workload, for the summary on stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Workloads changed (injected, re-injected or removed).
    pub changed: usize,
    /// Workloads already as asked.
    pub unchanged: usize,
    /// Workloads deliberately left alone, with the reason, e.g. `Pod/gw-test: a Helm hook`.
    pub skipped: Vec<String>,
    /// Containers of injected workloads left without trust, with the reason (the
    /// `trust-injector.io/skipped` annotation), e.g. `Deployment/x: container istio-proxy
    /// left without trust: a known mesh or infrastructure proxy`.
    pub left_out: Vec<String>,
}

/// A manifest that cannot be processed. Names the file, the document (1-based), the
/// line of its first line, and the workload when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{file}: document {index} (line {line}){}: {reason}", workload.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
pub struct ManifestError {
    /// The input's name, so a user with many files knows which one.
    pub file: String,
    /// 1-based index of the document in its file (Helm streams have many).
    pub index: usize,
    /// 1-based line where the document's body starts (or where the parser stopped).
    pub line: usize,
    /// `Kind/name` of the workload, when the error is about one.
    pub workload: Option<String>,
    /// What is wrong, naming the container when it is about one.
    pub reason: String,
}

/// Kinds whose pod template we mutate, with their one served apiVersion and the path
/// of the template inside the object (empty: the object is the pod).
const WORKLOADS: &[(&str, &str, &[&str])] = &[
    ("Pod", "v1", &[]),
    ("ReplicationController", "v1", &["spec", "template"]),
    ("Deployment", "apps/v1", &["spec", "template"]),
    ("StatefulSet", "apps/v1", &["spec", "template"]),
    ("DaemonSet", "apps/v1", &["spec", "template"]),
    ("ReplicaSet", "apps/v1", &["spec", "template"]),
    ("Job", "batch/v1", &["spec", "template"]),
    (
        "CronJob",
        "batch/v1",
        &["spec", "jobTemplate", "spec", "template"],
    ),
];

/// A failure inside one document, before the file and document are known.
struct DocError {
    /// `Kind/name`, when known.
    workload: Option<String>,
    /// What is wrong.
    reason: String,
}

/// Processes every input and returns the whole output, or the first error (then
/// nothing may be written: a post-renderer's partial output would be applied).
pub fn process(
    inputs: &[Input],
    opts: &InjectOptions,
    action: Action,
) -> Result<(String, Summary), ManifestError> {
    let mut out = String::new();
    let mut summary = Summary::default();
    for (n, input) in inputs.iter().enumerate() {
        let text = process_one(input, opts, action, &mut summary)?;
        // Files are joined into one YAML stream; a JSON file is a YAML document too.
        if n > 0 && !text.is_empty() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !text.starts_with("---") {
                out.push_str("---\n");
            }
        }
        out.push_str(&text);
    }
    Ok((out, summary))
}

fn process_one(
    input: &Input,
    opts: &InjectOptions,
    action: Action,
    summary: &mut Summary,
) -> Result<String, ManifestError> {
    let trimmed = input.text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return process_json(input, opts, action, summary);
    }
    let mut out = String::with_capacity(input.text.len() + input.text.len() / 4);
    for (i, doc) in stream::split(&input.text).iter().enumerate() {
        let fail = |e: DocError| ManifestError {
            file: input.name.clone(),
            index: i + 1,
            line: doc.line,
            workload: e.workload,
            reason: e.reason,
        };
        let mut value: Value = if doc.body.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str_with_options(doc.body, yaml_options())
                .map_err(|e| fail(yaml_error(&e, doc.line)))?
        };
        if value.is_null() || !mutate_doc(&mut value, opts, action, summary).map_err(fail)? {
            out.push_str(doc.head);
            out.push_str(doc.body);
            continue;
        }
        let yaml = serde_saphyr::to_string(&value).map_err(|e| {
            fail(DocError {
                workload: None,
                reason: format!("cannot write the document back as YAML: {e}"),
            })
        })?;
        // Keep the separator and the comments before the body (Helm's `# Source:`).
        if doc.head.is_empty() && (i > 0 || doc.body.starts_with("---")) {
            out.push_str("---\n");
        }
        out.push_str(doc.head);
        out.push_str(&yaml);
        if !yaml.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// A JSON file is one document (an object or a List); written back as JSON if changed.
fn process_json(
    input: &Input,
    opts: &InjectOptions,
    action: Action,
    summary: &mut Summary,
) -> Result<String, ManifestError> {
    let fail = |line: usize, e: DocError| ManifestError {
        file: input.name.clone(),
        index: 1,
        line,
        workload: e.workload,
        reason: e.reason,
    };
    let mut value: Value = serde_json::from_str(&input.text).map_err(|e| {
        fail(
            e.line(),
            DocError {
                workload: None,
                reason: format!("invalid JSON: {e}"),
            },
        )
    })?;
    if !mutate_doc(&mut value, opts, action, summary).map_err(|e| fail(1, e))? {
        return Ok(input.text.clone());
    }
    // Serialising a Value has no known way to fail (its keys are strings); if
    // it ever did, an empty manifest must not be written in its place.
    let mut s = serde_json::to_string_pretty(&value).map_err(|e| {
        fail(
            1,
            DocError {
                workload: None,
                reason: format!("cannot write the document back as JSON: {e}"),
            },
        )
    })?;
    s.push('\n');
    Ok(s)
}

/// Read YAML the way Kubernetes does (sigs.k8s.io/yaml, YAML 1.1): `0444` is octal,
/// as in `defaultMode: 0444`; YAML 1.2 would read 444. The parser's nesting budget (64
/// by default) is raised: a chart's CRDs nest their schemas deeper than that (two
/// levels per `properties`). 512 keeps recursion well inside the stack
/// on `inject`'s worker thread (see `cli::STACK`; a 490-deep document is tested in a
/// debug build); the other budgets (alias bombs, node counts) stay as they are.
pub const MAX_DEPTH: usize = 512;

fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.legacy_octal_numbers = true;
    if let Some(b) = o.budget.as_mut() {
        b.max_depth = MAX_DEPTH;
    }
    o
}

/// The parser's message, with its line made relative to the file.
fn yaml_error(e: &serde_saphyr::Error, first_line: usize) -> DocError {
    let at = e
        .location()
        .map(|l| {
            let line = first_line as u64 + l.line() - 1;
            format!(" at line {line} column {}", l.column())
        })
        .unwrap_or_default();
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("").trim();
    // The parser leads with "error: line L column C: ", relative to the document.
    let reason = match first.strip_prefix("error: line ") {
        Some(rest) => rest.split_once(": ").map_or(rest, |(_, r)| r),
        None => first,
    };
    DocError {
        workload: None,
        reason: format!("invalid YAML{at}: {reason}"),
    }
}

/// Mutates one document (an object or a List of them); true if it changed.
fn mutate_doc(
    doc: &mut Value,
    opts: &InjectOptions,
    action: Action,
    summary: &mut Summary,
) -> Result<bool, DocError> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if kind == "List" || (kind.ends_with("List") && doc.get("items").is_some()) {
        let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) else {
            return Err(DocError {
                workload: Some(kind),
                reason: "items is not a list".into(),
            });
        };
        let mut changed = false;
        for item in items {
            changed |= mutate_object(item, opts, action, summary)?;
        }
        return Ok(changed);
    }
    mutate_object(doc, opts, action, summary)
}

/// Mutates one Kubernetes object if it is a workload; true if it changed.
fn mutate_object(
    obj: &mut Value,
    opts: &InjectOptions,
    action: Action,
    summary: &mut Summary,
) -> Result<bool, DocError> {
    if !obj.is_object() {
        return Err(DocError {
            workload: None,
            reason: "not a Kubernetes object (a map with apiVersion and kind)".into(),
        });
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let Some(&(kind, api, path)) = WORKLOADS.iter().find(|w| w.0 == kind) else {
        return Ok(false);
    };
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(no name)");
    let workload = format!("{kind}/{name}");
    let err = |reason: String| DocError {
        workload: Some(workload.clone()),
        reason,
    };
    let version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if version != api {
        return Err(err(format!(
            "apiVersion {version:?} is not the one served for {kind} ({api})"
        )));
    }
    let hook = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(HELM_HOOK));
    if hook && action == Action::Inject {
        summary
            .skipped
            .push(format!("{workload}: {}", SkipReason::HelmHook));
        return Ok(false);
    }
    let mut template = obj;
    for key in path {
        template = match template.get_mut(*key) {
            Some(t) if t.is_object() => t,
            _ => return Err(err(format!("no pod template at {}", path.join(".")))),
        };
    }
    let result = match action {
        Action::Inject => mutate::inject_template(template, opts),
        Action::Remove => mutate::remove_template(template),
    };
    match result.map_err(|e: InjectError| err(e.to_string()))? {
        Outcome::Injected => {
            summary.changed += 1;
            let left_out = template
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(mutate::ANN_SKIPPED))
                .and_then(Value::as_str)
                .unwrap_or("");
            for entry in left_out.split("; ").filter(|e| !e.is_empty()) {
                let (name, why) = entry.split_once(": ").unwrap_or((entry, "left out"));
                summary.left_out.push(format!(
                    "{workload}: container {name} left without trust: {why}"
                ));
            }
            return Ok(true);
        }
        Outcome::Unchanged => summary.unchanged += 1,
        Outcome::Skipped(r) => summary.skipped.push(format!("{workload}: {r}")),
    }
    Ok(false)
}

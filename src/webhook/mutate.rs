//! The decision for one pod, and its patch, on top of `inject`'s mutation:
//! the webhook only adds the admission rules (opt-in label, CREATE only,
//! leave injected pods alone) and turns the mutated pod into a JSONPatch.

use crate::inject::{self, InjectOptions, SkipReason};
use crate::webhook::metrics::Outcome;
use crate::webhook::patch;
use crate::webhook::review::{PodReview, Verdict};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tracing::{debug, info, warn};

/// The opt-in label, on the pod or on its namespace; the same key as
/// `inject`'s opt-out annotation, as Istio pairs them.
pub(crate) const OPT_IN_LABEL: &str = inject::mutate::ANN_INJECT;
/// Its values that ask for the sidecar: `enabled` beside `"true"`, because a
/// chart that templates labels unquoted turns `true` into a YAML boolean,
/// which the API server refuses as a label value.
pub(crate) const OPT_IN_VALUES: [&str; 2] = ["true", "enabled"];

/// Whether the pod asks for the sidecar. The webhook configuration's
/// selectors are the gate: a pod labelled with an opt-in value (the pod
/// webhook), or with no such label in a namespace labelled so (the namespace
/// webhook, which the API server calls only for unlabelled pods). The pod's
/// own label decides over its namespace's: any other value keeps it out.
fn asks_for_sidecar(pod: &Value) -> bool {
    let label = pod
        .pointer("/metadata/labels")
        .and_then(|l| l.get(OPT_IN_LABEL));
    match label {
        None => true,
        Some(v) => v.as_str().is_some_and(|v| OPT_IN_VALUES.contains(&v)),
    }
}

/// The most containers (init, regular and ephemeral together) a pod may
/// have for the webhook to add the sidecar; more are denied. A review's cost
/// and its patch grow with the containers that get the trust; real pods
/// have a handful, and this bounds what one pod can make the webhook do.
pub(crate) const MAX_CONTAINERS: usize = 250;

/// Turns reviews into verdicts with the webhook's defaults.
pub(crate) struct Mutator {
    /// What the webhook's flags say; each pod's annotations override it,
    /// exactly as `inject` reads them.
    pub defaults: InjectOptions,
}

impl Mutator {
    /// The verdict for one review: a whole patch, no patch, or a denial;
    /// never a partial patch.
    pub(crate) fn review(&self, review: PodReview<'_>) -> Result<(Outcome, Verdict), MutateError> {
        let allow = || Verdict::Allow {
            patch: Vec::new(),
            warnings: Vec::new(),
        };
        let raw = match review.pod {
            Some(raw) if review.operation == "CREATE" && review.sub_resource.is_none() => raw,
            _ => {
                debug!(operation = %review.operation, "not a pod CREATE; allowed unchanged");
                return Ok((Outcome::Skipped, allow()));
            }
        };
        let pod: Value = serde_json::from_str(raw.get())?;
        let who = pod_name(&pod, &review.namespace);
        if !asks_for_sidecar(&pod) {
            debug!(pod = %who, "{OPT_IN_LABEL} label is neither of {OPT_IN_VALUES:?}; allowed unchanged");
            return Ok((Outcome::Skipped, allow()));
        }
        // Already carries a sidecar, ours (reinvocation) or from a workload
        // `inject` changed: its owner's choice stands, whatever our defaults.
        if pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(inject::mutate::ANN_STATUS))
            .is_some()
        {
            return self.already_injected(pod, raw, &who);
        }
        let containers = container_count(&pod);
        if containers > MAX_CONTAINERS {
            let message = format!(
                "trust-injector: pod {who} has {containers} containers; the webhook adds its sidecar to pods of at most {MAX_CONTAINERS}"
            );
            warn!(pod = %who, containers, "pod denied: too many containers");
            return Ok((Outcome::Denied, Verdict::Deny { message }));
        }
        // The one tree: mutated in place (discarded on error); the "before"
        // of the patch is the request's text.
        let mut after = template_of(pod);
        match inject::mutate::inject_in_place(&mut after, &self.defaults) {
            Ok(None) => {
                let ops = patch::diff(&template_text(raw)?, &after)?;
                if ops.is_empty() {
                    return Ok((Outcome::Unchanged, allow()));
                }
                let warnings = skipped_warnings(&after);
                info!(pod = %who, operations = ops.len(), skipped = warnings.len(), "sidecar added");
                let verdict = Verdict::Allow {
                    patch: ops,
                    warnings,
                };
                Ok((Outcome::Injected, verdict))
            }
            Ok(Some(reason)) => {
                info!(pod = %who, %reason, "left alone");
                let warnings = match reason {
                    // Asked for by the pod's owner: nothing to tell them.
                    SkipReason::OptedOut | SkipReason::HelmHook => Vec::new(),
                    _ => vec![format!("trust-injector: pod left without trust: {reason}")],
                };
                Ok((
                    Outcome::Skipped,
                    Verdict::Allow {
                        patch: Vec::new(),
                        warnings,
                    },
                ))
            }
            Err(e) => {
                // Denied, not allowed without the sidecar: a gateway started
                // without its CAs fails later and far from the cause.
                let message = format!("trust-injector: cannot add the sidecar to pod {who}: {e}");
                warn!(pod = %who, error = %e, "pod denied");
                Ok((Outcome::Denied, Verdict::Deny { message }))
            }
        }
    }
}

impl Mutator {
    /// A pod that already carries an injection stays as it is, but one made by
    /// another version gets the outdated annotation, a warning, and its own outcome
    /// in `/metrics`. A marker that cannot be read is left to its owner, as before.
    fn already_injected(
        &self,
        pod: Value,
        raw: &RawValue,
        who: &str,
    ) -> Result<(Outcome, Verdict), MutateError> {
        let mut after = template_of(pod);
        let theirs = match inject::mutate::mark_outdated(&mut after) {
            Ok(Some(v)) => v,
            Ok(None) | Err(_) => {
                debug!(pod = %who, "already injected; allowed unchanged");
                return Ok((Outcome::Unchanged, Verdict::allow()));
            }
        };
        let patch = patch::diff(&template_text(raw)?, &after)?;
        info!(pod = %who, version = %theirs, "injected by another version; annotated");
        let warnings = vec![format!(
            "trust-injector: pod injected by trust-injector {theirs}, not {}; left as it is",
            env!("CARGO_PKG_VERSION")
        )];
        Ok((Outcome::Outdated, Verdict::Allow { patch, warnings }))
    }
}

/// One AdmissionReview warning per container the injection left out, from the
/// annotation that records them on the pod (the same words in both places).
fn skipped_warnings(after: &Value) -> Vec<String> {
    let skipped = after
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(inject::mutate::ANN_SKIPPED))
        .and_then(Value::as_str)
        .unwrap_or("");
    skipped
        .split("; ")
        .filter(|s| !s.is_empty())
        .map(|s| match s.split_once(": ") {
            Some((name, why)) => {
                format!("trust-injector: container {name} left without trust: {why}")
            }
            None => format!("trust-injector: container {s} left without trust"),
        })
        .collect()
}

/// Why a review could not be decided: a bug, never the pod's fault (the
/// body was JSON when it was read). Answered with HTTP 500, never with an
/// empty patch that would admit the pod without its sidecar.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MutateError {
    #[error("cannot re-read the pod from the request: {0}")]
    Json(#[from] serde_json::Error),
}

/// `{"metadata": …, "spec": …}` of the pod as sent, as text: the "before"
/// that [`template_of`] is the "after" of.
fn template_text(pod: &RawValue) -> Result<Box<RawValue>, serde_json::Error> {
    let members: BTreeMap<&str, &RawValue> = serde_json::from_str(pod.get())?;
    let mut text = String::from("{");
    for key in ["metadata", "spec"] {
        if let Some(v) = members.get(key) {
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(&format!("{key:?}:"));
            text.push_str(v.get());
        }
    }
    text.push('}');
    RawValue::from_string(text)
}

/// `{metadata, spec}` of the pod, the shape `inject` mutates: the patch can
/// then only touch those two, and every path in it is also a path in the pod.
fn template_of(mut pod: Value) -> Value {
    let mut t = Map::new();
    for key in ["metadata", "spec"] {
        if let Some(v) = pod.get_mut(key) {
            t.insert(key.to_string(), v.take());
        }
    }
    Value::Object(t)
}

/// Init, regular and ephemeral containers together.
fn container_count(pod: &Value) -> usize {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
        .map(Vec::len)
        .sum()
}

/// `namespace/name` for logs; `generateName*` for pods a controller creates.
fn pod_name(pod: &Value, namespace: &str) -> String {
    let meta = pod.get("metadata");
    let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    let name = match (field("name"), field("generateName")) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(g)) => format!("{g}*"),
        _ => "(unnamed)".to_string(),
    };
    format!("{namespace}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::review::PodReview;
    use serde_json::json;

    /// The verdict for `pod` in a CREATE review, through its JSON text as
    /// the server has it.
    fn decide(m: &Mutator, pod: Value) -> (Outcome, Verdict) {
        let raw = serde_json::value::to_raw_value(&pod).unwrap();
        m.review(PodReview {
            uid: "u".into(),
            operation: "CREATE".into(),
            sub_resource: None,
            namespace: "apps".into(),
            pod: Some(&raw),
        })
        .unwrap()
    }

    /// The warnings of a review that skipped `pod` and admits it unchanged
    /// (asserted: the outcome is `Skipped` and the patch empty).
    fn skipped_unchanged(m: &Mutator, pod: Value) -> Vec<String> {
        let (outcome, verdict) = decide(m, pod);
        assert_eq!(outcome, Outcome::Skipped);
        let Verdict::Allow { patch, warnings } = verdict else {
            panic!("denied")
        };
        assert!(patch.is_empty());
        warnings
    }

    fn opted_in() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "gw-", "labels": {OPT_IN_LABEL: "true"}},
            "spec": {"initContainers": [{"name": "setup", "image": "busybox"}],
                     "containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}
        })
    }

    /// The patched pod is exactly `inject`'s result, and a second review of
    /// it returns no patch.
    #[test]
    fn patch_gives_injects_result_and_reinvocation_is_a_no_op() {
        let m = Mutator {
            defaults: InjectOptions::default(),
        };
        let pod = opted_in();
        let (outcome, verdict) = decide(&m, pod.clone());
        assert_eq!(outcome, Outcome::Injected);
        let Verdict::Allow { patch, .. } = verdict else {
            panic!("denied")
        };
        let mut expected = template_of(pod.clone());
        inject::inject_template(&mut expected, &InjectOptions::default()).unwrap();
        let mut patched = pod.clone();
        apply(&mut patched, &patch);
        assert_eq!(template_of(patched.clone()), expected);
        assert_eq!(
            (patched["apiVersion"].clone(), patched["kind"].clone()),
            (json!("v1"), json!("Pod"))
        );
        let (again, _) = decide(&m, patched);
        assert_eq!(again, Outcome::Unchanged);
    }

    /// `enabled` survives unquoted templating; an unlabelled pod came through
    /// the namespace webhook; any other value of the pod's label keeps it out.
    #[test]
    fn opt_in_values_namespace_opt_in_and_opt_out() {
        let m = Mutator {
            defaults: InjectOptions::default(),
        };
        for (labels, want) in [
            (json!({OPT_IN_LABEL: "true"}), Outcome::Injected),
            (json!({OPT_IN_LABEL: "enabled"}), Outcome::Injected),
            (json!({}), Outcome::Injected),
            (json!({OPT_IN_LABEL: "false"}), Outcome::Skipped),
            (json!({OPT_IN_LABEL: "disabled"}), Outcome::Skipped),
        ] {
            let mut pod = opted_in();
            pod["metadata"]["labels"] = labels.clone();
            assert_eq!(decide(&m, pod).0, want, "{labels}");
        }
        let mut pod = opted_in();
        pod["metadata"]["annotations"] = json!({OPT_IN_LABEL: "false"});
        assert_eq!(decide(&m, pod).0, Outcome::Skipped);
    }

    /// The patch carries what is added, not the pod: the same bytes whether
    /// the containers' environments are small or large.
    #[test]
    fn patch_size_follows_what_is_added_not_the_pod() {
        let m = Mutator {
            defaults: InjectOptions::default(),
        };
        let patch_bytes = |env_each: usize| {
            let mut pod = opted_in();
            let env: Vec<Value> = (0..env_each)
                .map(|i| json!({"name": format!("V{i}"), "value": "x".repeat(40)}))
                .collect();
            for c in pod["spec"]["containers"].as_array_mut().unwrap() {
                c["env"] = Value::Array(env.clone());
            }
            let (_, verdict) = decide(&m, pod);
            let Verdict::Allow { patch, .. } = verdict else {
                panic!("denied")
            };
            serde_json::to_vec(&patch).unwrap().len()
        };
        assert_eq!(patch_bytes(1), patch_bytes(2000));
    }

    /// Past the cap, an opted-in pod is denied with the reason, before any
    /// copy of it is made.
    #[test]
    fn too_many_containers_are_denied_by_name() {
        let m = Mutator {
            defaults: InjectOptions::default(),
        };
        let mut pod = opted_in();
        let many: Vec<Value> = (0..MAX_CONTAINERS)
            .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
            .collect();
        pod["spec"]["containers"] = Value::Array(many);
        let (outcome, verdict) = decide(&m, pod);
        assert_eq!(outcome, Outcome::Denied);
        let Verdict::Deny { message } = verdict else {
            panic!("allowed")
        };
        assert!(
            message.contains(&format!("{}", MAX_CONTAINERS + 1)),
            "{message}"
        );
        assert!(
            message.contains(&format!("at most {MAX_CONTAINERS}")),
            "{message}"
        );
    }

    /// Containers left out are AdmissionReview warnings (kubectl prints them) with
    /// the annotation's reason; a pod with nothing to configure is allowed with one.
    #[test]
    fn skipped_containers_become_warnings() {
        let m = Mutator {
            defaults: InjectOptions::default(),
        };
        let mut pod = opted_in();
        pod["spec"]["containers"][1]["name"] = json!("istio-proxy");
        let (outcome, verdict) = decide(&m, pod.clone());
        assert_eq!(outcome, Outcome::Injected);
        let Verdict::Allow { warnings, .. } = verdict else {
            panic!("denied")
        };
        assert_eq!(
            warnings,
            ["trust-injector: container istio-proxy left without trust: a known mesh or infrastructure proxy"]
        );
        let body = crate::webhook::review::response(
            "u",
            &Verdict::Allow {
                patch: vec![json!({})],
                warnings,
            },
        )
        .unwrap();
        let doc: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["response"]["warnings"].as_array().unwrap().len(), 1);
        pod["spec"]["containers"] = json!([{"name": "linkerd-proxy", "image": "l"}]);
        let warnings = skipped_unchanged(&m, pod);
        assert!(
            warnings[0].contains("no container to configure"),
            "{warnings:?}"
        );
    }

    /// A pod that node affinity sends only to Windows nodes is admitted unchanged with
    /// the reason as a warning, as one with a Windows nodeSelector is.
    #[test]
    fn windows_only_affinity_is_a_warning() {
        let m = Mutator {
            defaults: InjectOptions::default(),
        };
        let mut pod = opted_in();
        pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/os", "operator": "NotIn", "values": ["linux"]},
            ]}],
        }}});
        assert_eq!(
            skipped_unchanged(&m, pod),
            ["trust-injector: pod left without trust: a Windows pod (the sidecar image is Linux-only)"]
        );
    }

    /// A pod injected by another version keeps its injection, gets the outdated
    /// annotation and a warning, and counts as `outdated`; a second review is a no-op.
    #[test]
    fn an_injection_by_another_version_is_reported() {
        let m = Mutator {
            defaults: InjectOptions::default(),
        };
        let mut pod = opted_in();
        let mut t = template_of(pod.clone());
        inject::inject_template(&mut t, &InjectOptions::default()).unwrap();
        let status = t["metadata"]["annotations"][inject::mutate::ANN_STATUS]
            .as_str()
            .unwrap()
            .replacen(env!("CARGO_PKG_VERSION"), "0.0.1", 1);
        t["metadata"]["annotations"][inject::mutate::ANN_STATUS] = json!(status);
        pod["metadata"] = t["metadata"].clone();
        pod["spec"] = t["spec"].clone();
        let (outcome, verdict) = decide(&m, pod.clone());
        assert_eq!(outcome, Outcome::Outdated);
        let Verdict::Allow { patch, warnings } = verdict else {
            panic!("denied")
        };
        assert!(warnings[0].contains("0.0.1"), "{warnings:?}");
        apply(&mut pod, &patch);
        let note = &pod["metadata"]["annotations"][inject::mutate::ANN_OUTDATED];
        assert!(note.as_str().unwrap().contains("0.0.1"), "{note}");
        assert_eq!(pod["spec"], t["spec"]);
        let (_, again) = decide(&m, pod);
        let Verdict::Allow { patch, .. } = again else {
            panic!("denied")
        };
        assert!(patch.is_empty(), "{patch:?}");
    }

    /// A minimal RFC 6902 add/remove/replace, to check the glue in-process;
    /// tests/webhook.rs applies patches with Python's `jsonpatch`.
    fn apply(doc: &mut Value, ops: &[Value]) {
        for op in ops {
            let path = op["path"].as_str().unwrap();
            let (parent, last) = path.rsplit_once('/').unwrap();
            let last = last.replace("~1", "/").replace("~0", "~");
            match (op["op"].as_str().unwrap(), doc.pointer_mut(parent).unwrap()) {
                ("remove", Value::Object(m)) => {
                    m.shift_remove(&last);
                }
                (_, Value::Object(m)) => {
                    m.insert(last, op["value"].clone());
                }
                ("add", Value::Array(v)) if last == "-" => v.push(op["value"].clone()),
                ("add", Value::Array(v)) => v.insert(last.parse().unwrap(), op["value"].clone()),
                ("replace", Value::Array(v)) => {
                    v[last.parse::<usize>().unwrap()] = op["value"].clone()
                }
                ("remove", Value::Array(v)) => {
                    v.remove(last.parse().unwrap());
                }
                (o, _) => panic!("cannot {o} at {path}"),
            }
        }
    }
}

//! Pods the sidecar cannot work in, and the sidecar's port: issue 27's "never inject
//! what cannot work". A pod that cannot take the sidecar is skipped with a reason
//! rather than admitted with a sidecar that never starts or takes a port its
//! application needs.

use super::*;

/// The sidecar's probe and metrics port when the pod leaves it free: the Component's.
pub const DEFAULT_PORT: u16 = 9898;
/// How far past [`DEFAULT_PORT`] a free port is searched for; a pod declaring every
/// one of these is skipped rather than given a port nobody expects.
const PORT_SEARCH: u16 = 100;

/// The node label every kubelet sets to its operating system.
const OS_LABEL: &str = "kubernetes.io/os";

/// The image is Linux-only: a pod scheduled to Windows nodes (`spec.os.name`, a
/// `nodeSelector` on `kubernetes.io/os`, or a required node affinity that admits no
/// Linux node) could never start it.
pub(super) fn is_windows(spec: &Value) -> bool {
    let os = spec.pointer("/os/name").and_then(Value::as_str);
    let selector = spec
        .pointer("/nodeSelector/kubernetes.io~1os")
        .and_then(Value::as_str);
    os == Some("windows") || selector == Some("windows") || affinity_excludes_linux(spec)
}

/// True when `requiredDuringSchedulingIgnoredDuringExecution` leaves no Linux node:
/// its terms are ORed, so every term must rule Linux out. A pod with no such affinity,
/// or with one term that allows Linux, may land on Linux and is injected.
fn affinity_excludes_linux(spec: &Value) -> bool {
    let terms = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    // No term at all matches no node; the scheduler rejects the pod, not us.
    terms.is_some_and(|t| !t.is_empty() && t.iter().all(term_excludes_linux))
}

/// A term's `matchExpressions` are ANDed: one that rules Linux out rules out the term.
/// Only what names the OS plainly counts (`In` without `linux`, `NotIn` with it): a
/// pod is skipped only when it clearly cannot run on Linux.
fn term_excludes_linux(term: &Value) -> bool {
    let exprs = term.get("matchExpressions").and_then(Value::as_array);
    exprs.into_iter().flatten().any(|e| {
        if e.get("key").and_then(Value::as_str) != Some(OS_LABEL) {
            return false;
        }
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match e.get("operator").and_then(Value::as_str) {
            Some("In") => !values.contains(&"linux"),
            Some("NotIn") => values.contains(&"linux"),
            // Exists, DoesNotExist, Gt, Lt: not a statement about Linux; inject.
            _ => false,
        }
    })
}

/// The first port from [`DEFAULT_PORT`] that no container of the pod declares
/// (`containerPort`, any protocol: containers share the pod's network namespace);
/// `None` when every one searched is taken. Called after our own containers were
/// removed, so a re-injection does not see its own port as taken.
pub(super) fn free_port(spec: &Value) -> Option<u16> {
    let used: Vec<u64> = ["initContainers", "containers"]
        .iter()
        .filter_map(|f| spec.get(*f).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("containerPort").and_then(Value::as_u64))
        .collect();
    (DEFAULT_PORT..DEFAULT_PORT + PORT_SEARCH).find(|p| !used.contains(&u64::from(*p)))
}

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

/// The image is Linux-only: a pod scheduled to Windows nodes (`spec.os.name`, or a
/// `nodeSelector` on `kubernetes.io/os`) could never start it.
pub(super) fn is_windows(spec: &Value) -> bool {
    let os = spec.pointer("/os/name").and_then(Value::as_str);
    let selector = spec
        .pointer("/nodeSelector/kubernetes.io~1os")
        .and_then(Value::as_str);
    os == Some("windows") || selector == Some("windows")
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

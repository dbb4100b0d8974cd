//! Which containers of the pod get the trust, which image gives the base roots, and
//! which containers are left out and why.
//!
//! A platform team turns injection on for a whole namespace without reading the pod
//! specs, so the default must be right for pods nobody here has seen: every workload
//! container, but never a mesh or infrastructure proxy (their own trust is the mesh's
//! business), and never a container that already chose its own trust without saying
//! so in the pod (the annotation decides: deny or skip).

use super::*;

/// Containers that a mesh or another infrastructure injector adds, left out by default:
/// they terminate or originate mTLS with the mesh's own roots, and the OpenSSL
/// variables would change what they trust. Naming one in `trust-injector.io/containers`
/// still configures it. Documented in docs/inject.md ("Which containers").
pub const KNOWN_PROXIES: &[&str] = &[
    // Istio (sidecar and init containers, classic and native-sidecar modes).
    "istio-proxy",
    "istio-init",
    "istio-validation",
    // Linkerd.
    "linkerd-proxy",
    "linkerd-init",
    "linkerd-network-validator",
    "linkerd-debug",
    // Consul service mesh.
    "consul-dataplane",
    "consul-connect-inject-init",
    "consul-sidecar",
    // Kuma / Kong Mesh.
    "kuma-sidecar",
    "kuma-init",
    // Open Service Mesh's init container ("envoy", its proxy, is too common a name).
    "osm-init",
];

/// What a container already sets that we would set, or `None`: the OpenSSL variables,
/// the variables of the opted-in `runtimes` (a plain `JAVA_TOOL_OPTIONS` without a
/// truststore is appended to, not a conflict), or the trust mount.
pub(super) fn conflict_of(c: &Value, runtimes: &[Runtime]) -> Option<String> {
    let env = c.get("env").and_then(Value::as_array);
    let own = |e: &&Value| is_trust_env(e) || is_runtime_conflict(e, runtimes);
    if let Some(e) = env.into_iter().flatten().find(own) {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("");
        return Some(format!("env {name}"));
    }
    let mounts = c.get("volumeMounts").and_then(Value::as_array);
    if mounts.into_iter().flatten().any(is_trust_mount) {
        return Some(format!("a volumeMount at {TRUST_DIR} or named {VOL_TRUST}"));
    }
    None
}

pub(super) fn is_trust_env(e: &Value) -> bool {
    matches!(
        e.get("name").and_then(Value::as_str),
        Some(SSL_CERT_FILE | SSL_CERT_DIR)
    )
}

pub(super) fn is_trust_mount(e: &Value) -> bool {
    e.get("name").and_then(Value::as_str) == Some(VOL_TRUST)
        || e.get("mountPath")
            .and_then(Value::as_str)
            .is_some_and(|p| p.trim_end_matches('/') == TRUST_DIR)
}

/// The outcome of choosing: never an empty `targets`.
#[derive(Debug)]
pub(super) struct Choice {
    /// Containers (regular, then init) that get the env and the mount, in pod order.
    pub targets: Vec<String>,
    /// The image whose roots start the bundle.
    pub roots_image: String,
    /// `name: reason` of each container left without trust, for the annotation.
    pub skipped: Vec<String>,
}

/// Why no container is left to configure: the pod is skipped with this reason.
pub(super) struct NoTarget;

/// Chooses the targets of `spec` per `o`; `Ok(Err(NoTarget))` when every candidate
/// was left out (the pod is then skipped, not refused).
pub(super) fn choose(
    spec: &Value,
    o: &InjectOptions,
) -> Result<Result<Choice, NoTarget>, InjectError> {
    let regular = named(spec, "containers")?;
    if regular.is_empty() {
        return Err(InjectError::Shape("spec.containers is empty".into()));
    }
    let inits = named(spec, "initContainers")?;
    let mut skipped = Vec::new();
    let candidates: Vec<&Value> = if o.containers.is_empty() {
        let inits = inits.iter().filter(|_| o.init_containers);
        let mut cs = Vec::new();
        for (name, c) in regular.iter().chain(inits) {
            if KNOWN_PROXIES.contains(&name.as_str()) {
                skipped.push(format!("{name}: a known mesh or infrastructure proxy"));
            } else {
                cs.push(*c);
            }
        }
        cs
    } else {
        for want in &o.containers {
            if !regular.iter().chain(&inits).any(|(n, _)| n == want) {
                return Err(InjectError::UnknownContainer(want.clone()));
            }
        }
        let all = regular.iter().chain(&inits);
        all.filter(|(n, _)| o.containers.contains(n))
            .map(|(_, c)| *c)
            .collect()
    };
    let mut targets = Vec::new();
    for c in candidates {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match conflict_of(c, &o.runtimes) {
            Some(what) if !o.force && o.on_conflict == OnConflict::Skip => skipped.push(format!(
                "{name}: already has {what} ({ANN_ON_CONFLICT}: skip)"
            )),
            Some(what) if !o.force => {
                return Err(InjectError::Conflict {
                    container: name,
                    what,
                })
            }
            _ => targets.push(name),
        }
    }
    let Some(first) = targets.first() else {
        return Ok(Err(NoTarget));
    };
    let from = o.roots_from.as_deref().unwrap_or(first);
    let (_, c) = regular
        .iter()
        .chain(&inits)
        .find(|(n, _)| n == from)
        .ok_or_else(|| InjectError::UnknownContainer(from.to_string()))?;
    let roots_image = c
        .get("image")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| InjectError::NoImage(from.to_string()))?
        .to_string();
    Ok(Ok(Choice {
        targets,
        roots_image,
        skipped,
    }))
}

/// `(name, container)` of each entry of `spec[field]` (absent = none).
fn named<'a>(spec: &'a Value, field: &str) -> Result<Vec<(String, &'a Value)>, InjectError> {
    match spec.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(cs)) => cs
            .iter()
            .map(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .map(|n| (n.to_string(), c))
                    .ok_or_else(|| {
                        InjectError::Shape(format!("an entry of spec.{field} has no name"))
                    })
            })
            .collect(),
        Some(_) => Err(InjectError::Shape(format!("spec.{field} is not a list"))),
    }
}

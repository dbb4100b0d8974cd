//! What to inject: the options the flags and the webhook's settings fill, and each
//! template's annotations override.

use super::*;

/// Backends the sidecar checks (`run --check`), comma-separated URLs: passed to the
/// sidecar as `TRUST_INJECTOR_CHECKS`.
pub const ANN_CHECKS: &str = "trust-injector.io/checks";

/// Which layout to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Kubernetes >= 1.29: the sidecar is an init container with `restartPolicy: Always`,
    /// so the application starts only once a bundle is published.
    #[default]
    Native,
    /// Before 1.29: a `run --once` init container publishes first, a regular container
    /// keeps the bundle current.
    Classic,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Mode::Native),
            "classic" => Ok(Mode::Classic),
            _ => Err(format!("{s:?} is not native or classic")),
        }
    }
}

/// What to do with a chosen container that already sets SSL_CERT_FILE/SSL_CERT_DIR or
/// mounts something at the trust path: its owner chose its own trust, so it is never
/// silently overwritten (`--force` of `inject` replaces it, recorded and undoable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Refuse the pod, naming the container and the remedies.
    #[default]
    Deny,
    /// Leave that container without trust, listed in the skipped annotation and, from
    /// the webhook, in the AdmissionReview's warnings.
    Skip,
}

impl std::str::FromStr for OnConflict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "deny" => Ok(OnConflict::Deny),
            "skip" => Ok(OnConflict::Skip),
            _ => Err(format!("{s:?} is not deny or skip")),
        }
    }
}

/// What to inject. The flags of `inject` and the webhook's settings fill it; annotations
/// on each pod template override it for that workload.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectOptions {
    /// The CA Secret mounted as the sidecar's source (a whole directory, optional).
    pub secret: String,
    /// The trust-injector image; by default this build's own version, so a newer binary
    /// re-injects a newer sidecar.
    pub image: String,
    /// Containers that get SSL_CERT_FILE/SSL_CERT_DIR and the mount; empty = every
    /// application container (all of `spec.containers`).
    pub containers: Vec<String>,
    /// `--include` globs passed to the sidecar, for Secrets that also hold other keys.
    pub include: Vec<String>,
    /// Native sidecar or the pre-1.29 layout.
    pub mode: Mode,
    /// The sidecar's ResourceRequirements (JSON object).
    pub resources: Value,
    /// Take over a container's own SSL_CERT_FILE/SSL_CERT_DIR or mount at the trust path
    /// instead of refusing; what was displaced is recorded and `remove` puts it back.
    pub force: bool,
    /// Backend URLs the sidecar checks against the bundle (`--check`); annotation only.
    pub checks: Vec<String>,
    /// A chosen container that already sets its own trust: deny or skip (unless `force`).
    pub on_conflict: OnConflict,
    /// With no explicit `containers`, also configure the workload's own init containers.
    pub init_containers: bool,
    /// The container whose image gives the base roots; `None` = the first target.
    pub roots_from: Option<String>,
    /// OpenShift's restricted-v2 SCC: no fixed `runAsUser`/`runAsGroup` on what we add
    /// (the namespace's UID range assigns them); everything else stays restricted.
    pub openshift: bool,
    /// Runtimes that get their own variable besides the OpenSSL ones (annotation only,
    /// [`ANN_RUNTIMES`]); `java` also makes the sidecar publish `truststore.p12`.
    pub runtimes: Vec<Runtime>,
}

impl Default for InjectOptions {
    fn default() -> Self {
        InjectOptions {
            secret: DEFAULT_SECRET.to_string(),
            image: format!(
                "ghcr.io/trust-injector/trust-injector:{}",
                env!("CARGO_PKG_VERSION")
            ),
            containers: Vec::new(),
            include: Vec::new(),
            mode: Mode::Native,
            resources: default_resources(),
            force: false,
            checks: Vec::new(),
            on_conflict: OnConflict::Deny,
            init_containers: false,
            roots_from: None,
            openshift: false,
            runtimes: Vec::new(),
        }
    }
}

/// The Component's sidecar resources: it idles at a few MiB; the memory-backed `trust`
/// volume is charged to it.
pub fn default_resources() -> Value {
    json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}})
}

/// `defaults` with the template's own annotations applied on top.
pub(super) fn effective_options(
    template: &Value,
    defaults: &InjectOptions,
) -> Result<InjectOptions, InjectError> {
    let mut o = defaults.clone();
    let Some(ann) = annotations(template)? else {
        return Ok(o);
    };
    let get = |name: &'static str| -> Result<Option<&str>, InjectError> {
        match ann.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(_) => Err(InjectError::BadAnnotation {
                name,
                reason: "not a string".into(),
            }),
        }
    };
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    let non_empty = |name: &'static str, s: &str| -> Result<String, InjectError> {
        if s.is_empty() {
            return Err(InjectError::BadAnnotation {
                name,
                reason: "empty".into(),
            });
        }
        Ok(s.to_string())
    };
    if let Some(s) = get(ANN_SECRET)? {
        o.secret = non_empty(ANN_SECRET, s)?;
    }
    if let Some(s) = get(ANN_IMAGE)? {
        o.image = non_empty(ANN_IMAGE, s)?;
    }
    if let Some(s) = get(ANN_CONTAINERS)? {
        o.containers = list(s);
    }
    if let Some(s) = get(ANN_INCLUDE)? {
        o.include = list(s);
    }
    if let Some(s) = get(ANN_CHECKS)? {
        o.checks = checks(s, list(s))?;
    }
    if let Some(s) = get(ANN_MODE)? {
        o.mode = s.parse().map_err(|reason| InjectError::BadAnnotation {
            name: ANN_MODE,
            reason,
        })?;
    }
    if let Some(s) = get(ANN_ON_CONFLICT)? {
        o.on_conflict = s.parse().map_err(|reason| InjectError::BadAnnotation {
            name: ANN_ON_CONFLICT,
            reason,
        })?;
    }
    if let Some(s) = get(ANN_INIT_CONTAINERS)? {
        o.init_containers = bool_annotation(ANN_INIT_CONTAINERS, s)?;
    }
    if let Some(s) = get(ANN_OPENSHIFT)? {
        o.openshift = bool_annotation(ANN_OPENSHIFT, s)?;
    }
    if let Some(s) = get(ANN_RUNTIMES)? {
        o.runtimes = parse_runtimes(s)?;
    }
    if let Some(s) = get(ANN_ROOTS_FROM)? {
        o.roots_from = Some(non_empty(ANN_ROOTS_FROM, s)?);
    }
    if let Some(s) = get(ANN_RESOURCES)? {
        o.resources = match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Err(bad_resources("not a JSON object".into())),
            Err(e) => return Err(bad_resources(e.to_string())),
        };
    }
    Ok(o)
}

/// The annotation's URLs, each parsed as the sidecar will parse it, so a bad one is
/// refused here naming the annotation rather than crash-looping the sidecar.
fn checks(value: &str, urls: Vec<String>) -> Result<Vec<String>, InjectError> {
    for url in &urls {
        if let Err(e) = crate::checks::url::parse_backend(url) {
            return Err(InjectError::BadAnnotation {
                name: ANN_CHECKS,
                reason: format!("{value:?}: {e}"),
            });
        }
    }
    Ok(urls)
}

/// `"true"` or `"false"`, nothing else: a typo must not silently mean either.
fn bool_annotation(name: &'static str, s: &str) -> Result<bool, InjectError> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(InjectError::BadAnnotation {
            name,
            reason: format!("{s:?} is not \"true\" or \"false\""),
        }),
    }
}

pub(super) fn bad_resources(reason: String) -> InjectError {
    InjectError::BadAnnotation {
        name: ANN_RESOURCES,
        reason,
    }
}

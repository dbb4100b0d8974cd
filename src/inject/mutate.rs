//! The one pod mutation: adds trust-injector to a pod template, or takes it out again.
//!
//! Shared by `trust-injector inject` (files, stdin, Helm post-renderer) and the admission
//! webhook, so both give the pod that the kustomize Component
//! (k8s/components/trust-injector) gives: CI compares them. The template is an untyped
//! JSON value so that fields newer than any schema we know survive untouched.
//!
//! What was added is recorded in one annotation ([`ANN_STATUS`], like istioctl's
//! `sidecar.istio.io/status`); removal reads it instead of guessing by names, and
//! re-injection is "remove, then inject", which makes it idempotent and lets other
//! options or a newer version replace an earlier injection cleanly.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

mod fit;
mod json;
mod options;
mod outdated;
mod parts;
mod runtimes;
mod targets;

pub use fit::DEFAULT_PORT;
use fit::*;
use json::*;
use options::effective_options;
pub use options::{default_resources, InjectOptions, Mode, OnConflict};
pub use outdated::{injected_by_other_version, mark_outdated};
use parts::*;
use runtimes::*;
pub use runtimes::{Runtime, ANN_RUNTIMES};
pub use targets::KNOWN_PROXIES;
use targets::*;

/// Prefix of every annotation we read or write: the project's own, so it cannot clash.
pub const PREFIX: &str = "trust-injector.io/";
/// `"false"` opts a workload out (`inject` and the webhook's default-on namespaces).
pub const ANN_INJECT: &str = "trust-injector.io/inject";
/// The marker: a JSON record of what was injected. Removal relies on it alone.
pub const ANN_STATUS: &str = "trust-injector.io/status";
/// Name of the CA Secret (overrides `--secret`).
pub const ANN_SECRET: &str = "trust-injector.io/secret";
/// Sidecar image (overrides `--image`).
pub const ANN_IMAGE: &str = "trust-injector.io/image";
/// Comma-separated names of the containers that get the trust (overrides `--container`).
pub const ANN_CONTAINERS: &str = "trust-injector.io/containers";
/// Comma-separated globs for the Secret's keys (overrides `--include`).
pub const ANN_INCLUDE: &str = "trust-injector.io/include";
/// `native` or `classic` (overrides `--mode`).
pub const ANN_MODE: &str = "trust-injector.io/mode";
/// The sidecar's resources as a JSON ResourceRequirements (overrides `--resources`).
pub const ANN_RESOURCES: &str = "trust-injector.io/resources";
/// `deny` (the default) or `skip`: what to do with a container that already sets its own
/// SSL_CERT_FILE/SSL_CERT_DIR or mounts something at the trust path.
pub const ANN_ON_CONFLICT: &str = "trust-injector.io/on-conflict";
/// `"true"`: the workload's own init containers get the trust too (when
/// `trust-injector.io/containers` does not name the containers itself).
pub const ANN_INIT_CONTAINERS: &str = "trust-injector.io/init-containers";
/// The container whose image gives the base roots (default: the first target).
pub const ANN_ROOTS_FROM: &str = "trust-injector.io/roots-from";
/// Written by us: the containers left without trust and why (`name: reason; ...`), so
/// nobody has to guess why a container does not trust the private CAs.
pub const ANN_SKIPPED: &str = "trust-injector.io/skipped";
/// `"true"`: OpenShift mode (no fixed UIDs) for this workload (overrides `--openshift`).
pub const ANN_OPENSHIFT: &str = "trust-injector.io/openshift";
/// Written by the webhook on a pod that an other trust-injector version injected.
pub const ANN_OUTDATED: &str = "trust-injector.io/outdated";
/// Helm marks hook documents (the chart's test Pod, jobs) with this; we leave them alone
/// because a hook runs once and its pod does not need a rotating bundle.
pub const HELM_HOOK: &str = "helm.sh/hook";

/// Where the bundle is published inside every pod; the application's env points here.
pub const TRUST_DIR: &str = "/var/run/trust";
const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
const SSL_CERT_DIR: &str = "SSL_CERT_DIR";
/// Names of what we add, the same as the Component's so both give the same pod.
const INSTALL_INIT: &str = "trust-injector-install";
const COPY_INIT: &str = "copy-gateway-roots";
const SIDECAR: &str = "trust-injector";
const ONCE_INIT: &str = "trust-injector-init";
const VOL_SECRET: &str = "custom-ca";
const VOL_BIN: &str = "trust-bin";
const VOL_BASE: &str = "base";
const VOL_TRUST: &str = "trust";

/// The CA Secret's name when nothing else says: the Component's, so switching between
/// the Component and `inject` keeps the Secret.
pub const DEFAULT_SECRET: &str = "apim-gateway-custom-ca";

/// What happened to one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Changed: injected, re-injected with other options, or removed.
    Injected,
    /// Already as asked (injected with the same options, or nothing to remove).
    Unchanged,
    /// Deliberately left alone.
    Skipped(SkipReason),
}

/// Why a template was left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Annotated `trust-injector.io/inject: "false"`.
    OptedOut,
    /// A Helm hook (`helm.sh/hook`): runs once, not worth a sidecar.
    HelmHook,
    /// `hostNetwork: true`: the sidecar's port would be the node's.
    HostNetwork,
    /// Scheduled to Windows nodes (`spec.os.name`, a `kubernetes.io/os` nodeSelector, a
    /// required node affinity that admits no Linux node):
    /// the sidecar's image is Linux-only.
    Windows,
    /// The pod's containers declare every port the sidecar could take.
    NoFreePort,
    /// Every candidate container was left out (known proxies, or containers with their
    /// own trust under `on-conflict: skip`).
    NoTarget,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipReason::OptedOut => "opted out (trust-injector.io/inject: \"false\")",
            SkipReason::HelmHook => "a Helm hook (helm.sh/hook)",
            SkipReason::HostNetwork => "hostNetwork pod",
            SkipReason::Windows => "a Windows pod (the sidecar image is Linux-only)",
            SkipReason::NoFreePort => "no free port for the sidecar's probes (the pod's containers declare all of 9898-9997)",
            SkipReason::NoTarget => {
                "no container to configure (each is a known mesh proxy or sets its own trust under trust-injector.io/on-conflict: skip)"
            }
        })
    }
}

/// Why a template could not be mutated. The caller adds the document and workload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InjectError {
    /// The template is not shaped like a pod template.
    #[error("not a pod template: {0}")]
    Shape(String),
    /// A container already sets what we would set (refused unless `force`).
    /// The message names what works from the webhook too, which has no
    /// `--force`: drop the entry, leave the container out, or opt the pod out.
    #[error(
        "container {container:?} already has {what}: remove that from the container, \
         leave the container out with the annotation {ANN_CONTAINERS} (or every such \
         container with {ANN_ON_CONFLICT}: skip), or opt the pod out with the annotation \
         {ANN_INJECT}: \"false\" (`trust-injector inject --force` replaces it instead)"
    )]
    Conflict { container: String, what: String },
    /// Something of the pod already uses a name we add.
    #[error("the pod already has a {kind} named {name:?} that trust-injector did not add")]
    NameTaken { kind: &'static str, name: String },
    /// `--container` or the annotation names a container the pod does not have.
    #[error("no container named {0:?} in the pod")]
    UnknownContainer(String),
    /// An annotation of ours has a value we cannot use.
    #[error("annotation {name}: {reason}")]
    BadAnnotation { name: &'static str, reason: String },
    /// A classic sidecar never exits, so a Job's pod would never complete.
    #[error("--mode classic would keep this run-to-completion pod (restartPolicy {0}) from ever completing; use native (Kubernetes >= 1.29)")]
    ClassicRunToCompletion(String),
    /// The marker annotation cannot be read, so removal would have to guess.
    #[error("annotation {ANN_STATUS} cannot be read: {0}")]
    BadStatus(String),
    /// The marker annotation could not be written (serialising it has no
    /// known way to fail; without it `--remove` could not undo the injection).
    #[error("annotation {ANN_STATUS} cannot be written: {0}")]
    StatusNotWritten(String),
    /// A target container has no image, which the init container that
    /// copies the application's CA bundle must run.
    #[error("container {0:?} has no image: the init container that copies its CA bundle runs that image")]
    NoImage(String),
}

/// What the marker annotation records: every name we added and every entry we displaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    /// The trust-injector version that injected (a newer one re-injects).
    version: String,
    /// The layout, for people reading the annotation.
    mode: Mode,
    /// Init containers we added, removed by name.
    init_containers: Vec<String>,
    /// Regular containers we added (the classic sidecar), removed by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    containers: Vec<String>,
    /// Volumes we added, removed by name.
    volumes: Vec<String>,
    /// Containers that got the env and the mount.
    targets: Vec<String>,
    /// Env variables of `trust-injector.io/runtimes` added to each target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    runtime_env: Vec<String>,
    /// Entries of a target's `env`/`volumeMounts` that `force` (or, for a plain
    /// `JAVA_TOOL_OPTIONS`, appending to it) took over, to restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    displaced: Vec<Displaced>,
}

/// One entry taken out of a container's list by `force`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Displaced {
    /// The container it was taken from.
    container: String,
    /// `env` or `volumeMounts`.
    field: String,
    /// Its position in that list, where removal puts it back.
    index: usize,
    /// The entry itself, exactly as it was.
    value: Value,
}

/// Adds trust-injector to `template`, a Pod or a PodTemplateSpec (`{metadata, spec}`).
/// Per-template annotations override `defaults`. On error the template is unchanged.
pub fn inject_template(
    template: &mut Value,
    defaults: &InjectOptions,
) -> Result<Outcome, InjectError> {
    if let Some(reason) = skip_reason(template)? {
        return Ok(Outcome::Skipped(reason));
    }
    let mut work = template.clone();
    // A pod with nothing left to configure keeps any earlier injection as it is: the
    // reason is reported, and nothing already working is taken away by surprise.
    if let Some(reason) = inject_in_place(&mut work, defaults)? {
        return Ok(Outcome::Skipped(reason));
    }
    if work == *template {
        return Ok(Outcome::Unchanged);
    }
    *template = work;
    Ok(Outcome::Injected)
}

/// The same mutation without a working copy, for a caller that already
/// holds the original elsewhere and drops `template` on error (the webhook,
/// whose pods can be megabytes): `Some` when the template is to be left
/// alone (unchanged then); on error it may be half changed.
pub fn inject_in_place(
    template: &mut Value,
    defaults: &InjectOptions,
) -> Result<Option<SkipReason>, InjectError> {
    if let Some(reason) = skip_reason(template)? {
        return Ok(Some(reason));
    }
    let opts = effective_options(template, defaults)?;
    remove_template(template)?;
    apply(template, &opts)
}

/// Takes out what the marker annotation says was injected, and restores what `force`
/// displaced. A template without the marker is unchanged.
pub fn remove_template(template: &mut Value) -> Result<Outcome, InjectError> {
    let Some(raw) = annotations(template)?.and_then(|a| a.get(ANN_STATUS)) else {
        return Ok(Outcome::Unchanged);
    };
    let raw = raw
        .as_str()
        .ok_or_else(|| InjectError::BadStatus("not a string".into()))?;
    let status: Status =
        serde_json::from_str(raw).map_err(|e| InjectError::BadStatus(e.to_string()))?;
    let spec = spec_mut(template)?;
    remove_named(spec, "initContainers", &status.init_containers);
    remove_named(spec, "containers", &status.containers);
    remove_named(spec, "volumes", &status.volumes);
    for target in &status.targets {
        let Some(c) = find_container_mut(spec, target) else {
            continue;
        };
        let mut env = vec![SSL_CERT_FILE.to_string(), SSL_CERT_DIR.to_string()];
        env.extend(status.runtime_env.iter().cloned());
        remove_named(c, "env", &env);
        remove_named(c, "volumeMounts", &[VOL_TRUST.into()]);
    }
    for d in &status.displaced {
        if let Some(c) = find_container_mut(spec, &d.container) {
            let list = list_mut(c, &d.field);
            let at = d.index.min(list.len());
            list.insert(at, d.value.clone());
        }
    }
    let meta = template
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| InjectError::Shape("metadata is not an object".into()))?;
    if let Some(ann) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        ann.shift_remove(ANN_STATUS);
        ann.shift_remove(ANN_SKIPPED);
        ann.shift_remove(ANN_OUTDATED);
        if ann.is_empty() {
            meta.shift_remove("annotations");
        }
    }
    if meta.is_empty() {
        if let Some(t) = template.as_object_mut() {
            t.shift_remove("metadata");
        }
    }
    Ok(Outcome::Injected)
}

/// Opt-out, Helm hooks and hostNetwork, checked before anything else.
fn skip_reason(template: &Value) -> Result<Option<SkipReason>, InjectError> {
    let ann = annotations(template)?;
    if ann.and_then(|a| a.get(ANN_INJECT)).and_then(Value::as_str) == Some("false") {
        return Ok(Some(SkipReason::OptedOut));
    }
    if ann.is_some_and(|a| a.contains_key(HELM_HOOK)) {
        return Ok(Some(SkipReason::HelmHook));
    }
    let spec = template
        .get("spec")
        .ok_or_else(|| InjectError::Shape("no spec".into()))?;
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        return Ok(Some(SkipReason::HostNetwork));
    }
    if is_windows(spec) {
        return Ok(Some(SkipReason::Windows));
    }
    Ok(None)
}

/// The template's `metadata.annotations`, if any.
fn annotations(template: &Value) -> Result<Option<&Map<String, Value>>, InjectError> {
    if !template.is_object() {
        return Err(InjectError::Shape("not an object".into()));
    }
    match template.get("metadata").and_then(|m| m.get("annotations")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(InjectError::Shape(
            "metadata.annotations is not a map".into(),
        )),
    }
}

/// Injects into a template that carries no earlier injection; `Some` when no container
/// is left to configure (the template is then unchanged).
fn apply(template: &mut Value, o: &InjectOptions) -> Result<Option<SkipReason>, InjectError> {
    let spec = spec_mut(template)?;
    let restart = spec.get("restartPolicy").and_then(Value::as_str);
    if let (Mode::Classic, Some(r @ ("Never" | "OnFailure"))) = (o.mode, restart) {
        return Err(InjectError::ClassicRunToCompletion(r.into()));
    }
    let choice = match choose(spec, o)? {
        Ok(c) => c,
        Err(NoTarget) => return Ok(Some(SkipReason::NoTarget)),
    };
    check_names_free(spec)?;
    let Some(port) = free_port(spec) else {
        return Ok(Some(SkipReason::NoFreePort));
    };
    let mut displaced = Vec::new();
    for t in &choice.targets {
        // Present: choose took every name from the pod.
        if let Some(c) = find_container_mut(spec, t) {
            wire_target(c, t, &o.runtimes, &mut displaced);
        }
    }
    let app_image = choice.roots_image.as_str();
    let (inits, containers) = match o.mode {
        Mode::Native => (
            vec![
                install_init(o),
                copy_init(app_image, o),
                sidecar(o, true, port),
            ],
            vec![],
        ),
        Mode::Classic => (
            vec![install_init(o), copy_init(app_image, o), once_init(o)],
            vec![sidecar(o, false, port)],
        ),
    };
    let status = Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        mode: o.mode,
        init_containers: names_of(&inits),
        containers: names_of(&containers),
        volumes: names_of(&volumes(&o.secret)),
        targets: choice.targets,
        runtime_env: o.runtimes.iter().map(|r| r.var().to_string()).collect(),
        displaced,
    };
    // Before the first change: on error the template is unchanged.
    let status =
        serde_json::to_string(&status).map_err(|e| InjectError::StatusNotWritten(e.to_string()))?;
    // Ours first, as the kustomize Component's strategic merge puts them: the
    // workload's own init containers then start with the bundle published, and
    // `inject`, the webhook and the Component give the same pod, order included.
    list_mut(spec, "initContainers").splice(0..0, inits);
    list_mut(spec, "containers").extend(containers);
    list_mut(spec, "volumes").splice(0..0, volumes(&o.secret));
    if !choice.skipped.is_empty() {
        set_annotation(template, ANN_SKIPPED, choice.skipped.join("; "))?;
    }
    set_annotation(template, ANN_STATUS, status)?;
    Ok(None)
}

/// Refuses a pod whose own containers or volumes use the names we add.
fn check_names_free(spec: &Value) -> Result<(), InjectError> {
    let taken = |field: &str, name: &str| {
        spec.get(field).and_then(Value::as_array).is_some_and(|l| {
            l.iter()
                .any(|e| e.get("name").and_then(Value::as_str) == Some(name))
        })
    };
    for name in [VOL_SECRET, VOL_BIN, VOL_BASE, VOL_TRUST] {
        if taken("volumes", name) {
            return Err(InjectError::NameTaken {
                kind: "volume",
                name: name.into(),
            });
        }
    }
    for name in [INSTALL_INIT, COPY_INIT, SIDECAR, ONCE_INIT] {
        if taken("initContainers", name) || taken("containers", name) {
            return Err(InjectError::NameTaken {
                kind: "container",
                name: name.into(),
            });
        }
    }
    Ok(())
}

/// Appends SSL_CERT_FILE, SSL_CERT_DIR, the runtimes' variables and the read-only trust
/// mount to one container, first displacing what is already there: [`choose`] refused or
/// skipped a conflicting container unless `force` asked for exactly this. A plain
/// `JAVA_TOOL_OPTIONS` is displaced too, and ours carries its value with ours appended.
fn wire_target(c: &mut Value, name: &str, runtimes: &[Runtime], displaced: &mut Vec<Displaced>) {
    let java = runtimes.contains(&Runtime::Java);
    let is_java =
        |e: &Value| java && e.get("name").and_then(Value::as_str) == Some(JAVA_TOOL_OPTIONS);
    let java_before = c
        .get("env")
        .and_then(Value::as_array)
        .and_then(|env| env.iter().rev().find(|e| is_java(e)))
        .filter(|e| java_appendable(e))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(String::from);
    for field in ["env", "volumeMounts"] {
        let conflicts = |e: &Value| match field {
            "env" => is_trust_env(e) || is_runtime_conflict(e, runtimes) || is_java(e),
            _ => is_trust_mount(e),
        };
        let list = list_mut(c, field);
        // Back to front, so each recorded index is where the entry goes back on removal
        // once the ones before it are back.
        let mut taken = Vec::new();
        for i in (0..list.len()).rev() {
            if conflicts(&list[i]) {
                taken.push((i, list.remove(i)));
            }
        }
        displaced.extend(taken.into_iter().rev().map(|(index, value)| Displaced {
            container: name.into(),
            field: field.into(),
            index,
            value,
        }));
        if list.is_empty() {
            drop_if_empty(c, field);
        }
    }
    list_mut(c, "env").extend([
        json!({"name": SSL_CERT_FILE, "value": format!("{TRUST_DIR}/ca-certificates.crt")}),
        json!({"name": SSL_CERT_DIR, "value": format!("{TRUST_DIR}/certs")}),
    ]);
    list_mut(c, "env").extend(runtime_env(runtimes, java_before.as_deref()));
    list_mut(c, "volumeMounts")
        .push(json!({"name": VOL_TRUST, "mountPath": TRUST_DIR, "readOnly": true}));
}

#[cfg(test)]
mod tests;

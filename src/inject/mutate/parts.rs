//! The containers and volumes we add, written as the kustomize Component writes them
//! so that `inject`, the webhook and the Component give the same pod.

use super::*;

/// The per-container security settings of the Component: Pod Security "restricted"
/// without touching the pod-level securityContext, which stays the owner's. OpenShift's
/// restricted-v2 SCC rejects a UID outside the namespace's range, so there the user and
/// group are left to it; `runAsNonRoot` still holds.
pub(super) fn restricted(uid: u32, o: &InjectOptions) -> Value {
    let mut s = Map::new();
    if !o.openshift {
        s.insert("runAsUser".into(), json!(uid));
        s.insert("runAsGroup".into(), json!(uid));
    }
    s.insert("runAsNonRoot".into(), json!(true));
    s.insert("allowPrivilegeEscalation".into(), json!(false));
    s.insert("readOnlyRootFilesystem".into(), json!(true));
    s.insert("capabilities".into(), json!({"drop": ["ALL"]}));
    s.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
    Value::Object(s)
}

/// Our binary in our image (the Dockerfile's ENTRYPOINT), which the exec probes run.
const SIDECAR_BINARY: &str = "/trust-injector";
/// Where `install_init` puts our static binary for `copy_init` to run.
const BIN_DIR: &str = "/var/run/trust-bin";
/// Where `copy_init` writes the application image's roots.
const BASE_DIR: &str = "/var/run/trust-base";
/// Where the sidecar sees them: its `--base system` looks there first, and falls back
/// to the embedded Mozilla roots (logged, and in `/status`) when the image had none.
const SIDECAR_BASE_DIR: &str = "/etc/ssl/certs";

/// The resources of the two short init containers: they copy one file each.
fn copy_resources() -> Value {
    json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}})
}

/// Copies our static binary into `trust-bin`, so that `copy_init` needs nothing from
/// the application's image: no shell, no `cp`, no particular bundle path.
pub(super) fn install_init(o: &InjectOptions) -> Value {
    json!({
        "name": INSTALL_INIT,
        "image": o.image,
        "args": ["roots", format!("--install={BIN_DIR}")],
        "securityContext": restricted(65532, o),
        "resources": copy_resources(),
        "volumeMounts": [{"name": VOL_BIN, "mountPath": BIN_DIR}],
    })
}

/// Runs our binary inside the application's image: it finds that image's public roots
/// at the distributions' paths and writes them into `base`, so the bundle starts from
/// exactly what the application would trust anyway.
pub(super) fn copy_init(app_image: &str, o: &InjectOptions) -> Value {
    json!({
        "name": COPY_INIT,
        "image": app_image,
        "command": [format!("{BIN_DIR}/trust-injector"), "roots", format!("--out={BASE_DIR}")],
        "securityContext": restricted(65532, o),
        "resources": copy_resources(),
        "volumeMounts": [
            {"name": VOL_BIN, "mountPath": BIN_DIR, "readOnly": true},
            {"name": VOL_BASE, "mountPath": BASE_DIR},
        ],
    })
}

/// `run` arguments shared by the sidecar and the classic `--once` init container.
/// `port` is the sidecar's listening port (ignored with `once`, which listens nowhere).
pub(super) fn run_args(o: &InjectOptions, once: bool, port: u16) -> Value {
    let mut args = vec!["run".to_string()];
    if once {
        args.push("--once".into());
    }
    args.push("--source=/etc/trust-injector/custom".into());
    args.extend(o.include.iter().map(|g| format!("--include={g}")));
    args.push("--base=system".into());
    if o.runtimes.contains(&Runtime::Java) {
        args.push("--pkcs12".into());
    }
    args.push(format!("--out-dir={TRUST_DIR}"));
    args.push(if once {
        "--listen=off".to_string()
    } else {
        format!("--listen=0.0.0.0:{port}")
    });
    json!(args)
}

/// The sidecar's mounts: the Secret as a whole directory (never subPath: only directory
/// mounts see the kubelet's updates), the copied roots, and the output.
pub(super) fn sidecar_mounts() -> Value {
    json!([
        {"name": VOL_SECRET, "mountPath": "/etc/trust-injector/custom", "readOnly": true},
        {"name": VOL_BASE, "mountPath": SIDECAR_BASE_DIR, "readOnly": true},
        {"name": VOL_TRUST, "mountPath": TRUST_DIR},
    ])
}

/// The long-running sidecar: native (init container, `restartPolicy: Always`, the
/// application waits for its startupProbe) or classic (a regular container).
pub(super) fn sidecar(o: &InjectOptions, native: bool, port: u16) -> Value {
    let mut c = Map::new();
    c.insert("name".into(), json!(SIDECAR));
    c.insert("image".into(), json!(o.image));
    if native {
        c.insert("restartPolicy".into(), json!("Always"));
    }
    c.insert("args".into(), run_args(o, false, port));
    if !o.checks.is_empty() {
        let checks = o.checks.join(",");
        c.insert(
            "env".into(),
            json!([{"name": "TRUST_INJECTOR_CHECKS", "value": checks}]),
        );
    }
    c.insert(
        "ports".into(),
        json!([{"name": "trust-http", "containerPort": port}]),
    );
    // `exec` probes that ask over loopback: a mesh's redirection never sees them
    // (src/inject/probe.rs says why).
    let exec = |which: &str| json!({"command": [SIDECAR_BINARY, "probe", which, format!("--port={port}")]});
    if native {
        c.insert(
            "startupProbe".into(),
            json!({"exec": exec("ready"), "periodSeconds": 1, "failureThreshold": 30}),
        );
    } else {
        c.insert(
            "readinessProbe".into(),
            json!({"exec": exec("ready"), "periodSeconds": 10}),
        );
    }
    c.insert(
        "livenessProbe".into(),
        json!({"exec": exec("live"), "periodSeconds": 10, "failureThreshold": 3}),
    );
    c.insert("securityContext".into(), restricted(65532, o));
    c.insert("resources".into(), o.resources.clone());
    c.insert("volumeMounts".into(), sidecar_mounts());
    Value::Object(c)
}

/// Classic layout: publish once before the application starts.
pub(super) fn once_init(o: &InjectOptions) -> Value {
    json!({
        "name": ONCE_INIT,
        "image": o.image,
        "args": run_args(o, true, DEFAULT_PORT),
        "securityContext": restricted(65532, o),
        "resources": o.resources,
        "volumeMounts": sidecar_mounts(),
    })
}

/// The CA Secret (optional: the pod starts with the base roots before it exists; mode
/// 0444), our binary, the copied roots, and the memory-backed output.
pub(super) fn volumes(secret: &str) -> [Value; 4] {
    [
        json!({"name": VOL_SECRET, "secret": {"secretName": secret, "optional": true, "defaultMode": 0o444}}),
        json!({"name": VOL_BIN, "emptyDir": {"sizeLimit": "16Mi"}}),
        json!({"name": VOL_BASE, "emptyDir": {"sizeLimit": "4Mi"}}),
        json!({"name": VOL_TRUST, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}),
    ]
}

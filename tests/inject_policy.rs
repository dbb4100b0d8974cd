//! Issue 27: an injected workload is as secure as it was. For a hardened Deployment
//! (`tests/fixtures/inject/policy/hardened.yaml`, no checkov failure) and the
//! gateway the complete examples start from (`k8s/gateway/plain-gateway.yaml`),
//! injected natively, with `--mode classic` and with `--openshift`:
//!
//! - **checkov** (the pinned version, `tests/programs.tsv`) fails no check on the
//!   injected output that it did not fail on the input (check IDs per resource). With
//!   the default image, a tag, exactly the two image-pinning checks docs/inject.md
//!   lists are added; pinned by digest (`--image REPO@sha256:…`), none.
//! - **Pod Security `restricted`**: every injected pod passes the profile, checked by
//!   [`restricted_violations`] (the rules of
//!   <https://kubernetes.io/docs/concepts/security/pod-security-standards/>, baseline
//!   included), and so do the containers and volumes we add on their own, in a pod with
//!   no `securityContext` of its own, so any restricted workload stays restricted.

mod common;

use common::tools;
use common::trust_injector;
use common::yaml::docs;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// The sidecar's image pinned by digest, as a hardened cluster pulls it.
const PINNED: &str = "--image=ghcr.io/trust-injector/trust-injector@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The checks the default image (a tag, not a digest) adds; docs/inject.md lists them.
const TAG_ONLY: [&str; 2] = ["CKV_K8S_15", "CKV_K8S_43"];

/// The inputs: name and path from the repository's root.
const INPUTS: [(&str, &str); 2] = [
    ("hardened", "tests/fixtures/inject/policy/hardened.yaml"),
    ("gateway", "k8s/gateway/plain-gateway.yaml"),
];

/// The injections compared: name and `inject` flags.
const MODES: [(&str, &[&str]); 3] = [
    ("native", &[PINNED]),
    ("classic", &[PINNED, "--mode", "classic"]),
    ("openshift", &[PINNED, "--openshift"]),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(input: &str) -> String {
    std::fs::read_to_string(root().join(input)).unwrap_or_else(|e| panic!("{input}: {e}"))
}

fn inject(args: &[&str], input: &str) -> String {
    let mut cmd = trust_injector();
    cmd.arg("inject").args(args).arg(root().join(input));
    let out = tools::run(&mut cmd, T);
    assert!(out.ok(), "inject {args:?} {input}:\n{}", out.text());
    out.stdout
}

/// checkov over every file of `dir`: the failed checks, as `CHECK_ID resource`, by file.
fn checkov_failures(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let checkov = tools::require("checkov");
    let out = tools::run(
        tools::clean_command(checkov.to_str().unwrap())
            .args(["--framework", "kubernetes", "--skip-download", "--quiet"])
            .args(["--output", "json", "-d"])
            .arg(dir)
            .env("BC_SKIP_MAPPING", "TRUE"),
        T,
    );
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov gave no JSON ({e}):\n{}", out.text()));
    assert!(
        report["summary"]["passed"].as_u64() > Some(100),
        "checkov checked too little:\n{}",
        out.text()
    );
    let mut by_file: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let failed = report["results"]["failed_checks"].as_array();
    for c in failed.into_iter().flatten() {
        let file = c["file_path"].as_str().unwrap().trim_start_matches('/');
        let check = format!("{} {}", c["check_id"].as_str().unwrap(), c["resource"]);
        by_file.entry(file.to_string()).or_default().insert(check);
    }
    by_file
}

#[test]
fn injection_adds_no_checkov_failure() {
    // checkov skips hidden directories, which tempdir()'s `.tmpXXXX` is.
    let dir = tempfile::Builder::new()
        .prefix("inject-checkov")
        .tempdir()
        .unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    for (name, input) in INPUTS {
        write(&format!("{name}.yaml"), &read(input));
        for (mode, args) in MODES {
            write(&format!("{name}-{mode}.yaml"), &inject(args, input));
        }
    }
    write("hardened-tag.yaml", &inject(&[], INPUTS[0].1));
    let failures = checkov_failures(dir.path());
    let of = |file: &str| failures.get(file).cloned().unwrap_or_default();
    assert_eq!(
        of("hardened.yaml"),
        BTreeSet::new(),
        "the fixture must pass"
    );
    assert!(
        !of("gateway.yaml").is_empty(),
        "checkov did not read the gateway"
    );
    for (name, _) in INPUTS {
        let before = of(&format!("{name}.yaml"));
        for (mode, _) in MODES {
            let after = of(&format!("{name}-{mode}.yaml"));
            let new: Vec<_> = after.difference(&before).collect();
            assert!(new.is_empty(), "{name} {mode}: inject added {new:?}");
        }
    }
    let tag = of("hardened-tag.yaml");
    let ids: BTreeSet<&str> = tag.iter().map(|c| c.split(' ').next().unwrap()).collect();
    assert_eq!(ids, TAG_ONLY.into(), "the default image's tag: {tag:?}");
}

/// Volume types the restricted profile allows ("Volume Types").
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Sysctls the baseline profile allows ("Sysctls").
const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// SELinux types the baseline profile allows ("SELinux"; empty: unset).
const SELINUX_TYPES: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// What a pod spec breaks of Pod Security `restricted` (which includes `baseline`), by
/// the Pod Security Standards' names of the controls; empty when it passes.
fn restricted_violations(spec: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let psc = &spec["securityContext"];
    for ns in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[ns] == true {
            bad.push(format!("Host Namespaces: {ns}"));
        }
    }
    for s in psc["sysctls"].as_array().into_iter().flatten() {
        if !SAFE_SYSCTLS.contains(&s["name"].as_str().unwrap_or("")) {
            bad.push(format!("Sysctls: {}", s["name"]));
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let obj = v.as_object().unwrap();
        let kinds: Vec<&String> = obj.keys().filter(|k| *k != "name").collect();
        if kinds.len() != 1 || !RESTRICTED_VOLUMES.contains(&kinds[0].as_str()) {
            bad.push(format!("Volume Types: {} is {kinds:?}", v["name"]));
        }
    }
    bad.extend(context_violations("pod", psc));
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|f| spec[*f].as_array())
        .flatten();
    for c in containers {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        bad.extend(context_violations(name, sc));
        bad.extend(container_violations(name, c, sc, psc));
    }
    bad
}

/// The controls a pod's or a container's `securityContext` can break on its own.
fn context_violations(who: &str, sc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    if sc["windowsOptions"]["hostProcess"] == true {
        bad.push(format!("HostProcess: {who}"));
    }
    if sc["runAsUser"] == 0 {
        bad.push(format!("Running as Non-root user: {who} runAsUser 0"));
    }
    let se = &sc["seLinuxOptions"];
    if !SELINUX_TYPES.contains(&se["type"].as_str().unwrap_or(""))
        || !se["user"].is_null()
        || !se["role"].is_null()
    {
        bad.push(format!("SELinux: {who} {se}"));
    }
    for profile in [&sc["seccompProfile"], &sc["appArmorProfile"]] {
        if profile["type"] == "Unconfined" {
            bad.push(format!("Seccomp/AppArmor: {who} Unconfined"));
        }
    }
    bad
}

/// The per-container controls, the pod-level settings counting where the container
/// leaves them unset (as the profile allows).
fn container_violations(name: &str, c: &Value, sc: &Value, psc: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let or_pod = |k: &str| if sc[k].is_null() { &psc[k] } else { &sc[k] };
    if sc["privileged"] == true {
        bad.push(format!("Privileged Containers: {name}"));
    }
    if !matches!(sc["procMount"].as_str(), None | Some("Default")) {
        bad.push(format!("/proc Mount Type: {name}"));
    }
    for p in c["ports"].as_array().into_iter().flatten() {
        if !matches!(p["hostPort"].as_u64(), None | Some(0)) {
            bad.push(format!("Host Ports: {name} {}", p["hostPort"]));
        }
    }
    if sc["allowPrivilegeEscalation"] != false {
        bad.push(format!("Privilege Escalation: {name}"));
    }
    if *or_pod("runAsNonRoot") != true {
        bad.push(format!("Running as Non-root: {name}"));
    }
    if !matches!(
        or_pod("seccompProfile")["type"].as_str(),
        Some("RuntimeDefault" | "Localhost")
    ) {
        bad.push(format!(
            "Seccomp: {name} neither RuntimeDefault nor Localhost"
        ));
    }
    let caps = &sc["capabilities"];
    let drops = caps["drop"].as_array().into_iter().flatten();
    if !drops.clone().any(|d| d == "ALL") {
        bad.push(format!("Capabilities: {name} does not drop ALL"));
    }
    for add in caps["add"].as_array().into_iter().flatten() {
        if add != "NET_BIND_SERVICE" {
            bad.push(format!("Capabilities: {name} adds {add}"));
        }
    }
    bad
}

/// The pod spec of the one Deployment of a stream.
fn deployment_pod(text: &str) -> Value {
    let d = docs(text);
    let dep = d.iter().find(|d| d["kind"] == "Deployment").unwrap();
    dep["spec"]["template"]["spec"].clone()
}

/// What we added alone: our containers and volumes (by the status annotation) in a pod
/// with no `securityContext`, so each must be restricted by its own settings.
fn ours_alone(text: &str) -> Value {
    let d = docs(text);
    let dep = d.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let status = &dep["spec"]["template"]["metadata"]["annotations"]["trust-injector.io/status"];
    let status: Value = serde_json::from_str(status.as_str().unwrap()).unwrap();
    let spec = &dep["spec"]["template"]["spec"];
    let pick = |field: &str, names: &Value| -> Value {
        let names: Vec<&Value> = names.as_array().into_iter().flatten().collect();
        let list = spec[field].as_array().into_iter().flatten();
        Value::Array(
            list.filter(|x| names.contains(&&x["name"]))
                .cloned()
                .collect(),
        )
    };
    serde_json::json!({
        "initContainers": pick("initContainers", &status["initContainers"]),
        "containers": pick("containers", &status["containers"]),
        "volumes": pick("volumes", &status["volumes"]),
    })
}

#[test]
fn injected_pods_pass_pod_security_restricted() {
    for (name, input) in INPUTS {
        let plain = read(input);
        let before = restricted_violations(&deployment_pod(&plain));
        assert_eq!(before, Vec::<String>::new(), "{name} before injection");
        let default = [("default", &[][..])];
        for (mode, args) in default.into_iter().chain(MODES) {
            let out = inject(args, input);
            let pod = deployment_pod(&out);
            assert_eq!(
                restricted_violations(&pod),
                Vec::<String>::new(),
                "{name} {mode}"
            );
            let ours = ours_alone(&out);
            assert!(
                ours["initContainers"].as_array().unwrap().len() >= 3,
                "{ours}"
            );
            assert_eq!(
                restricted_violations(&ours),
                Vec::<String>::new(),
                "{name} {mode}: ours alone"
            );
        }
    }
}

/// The checker catches what it is for: each change breaks one control.
#[test]
fn the_restricted_checker_catches_each_control() {
    let plain = read(INPUTS[0].1);
    let good = deployment_pod(&plain);
    let cases: [(&str, &str, Value); 10] = [
        ("/hostNetwork", "Host Namespaces", true.into()),
        (
            "/volumes/0",
            "Volume Types",
            serde_json::json!({"name": "h", "hostPath": {"path": "/"}}),
        ),
        (
            "/containers/0/securityContext/privileged",
            "Privileged",
            true.into(),
        ),
        (
            "/containers/0/securityContext/allowPrivilegeEscalation",
            "Privilege Escalation",
            true.into(),
        ),
        (
            "/containers/0/securityContext/runAsNonRoot",
            "Non-root",
            false.into(),
        ),
        (
            "/containers/0/securityContext/runAsUser",
            "Non-root user",
            0.into(),
        ),
        (
            "/containers/0/securityContext/seccompProfile/type",
            "Seccomp",
            "Unconfined".into(),
        ),
        (
            "/containers/0/securityContext/capabilities/drop/0",
            "does not drop ALL",
            "NET_RAW".into(),
        ),
        ("/containers/0/ports/0/hostPort", "Host Ports", 8080.into()),
        (
            "/containers/0/securityContext/procMount",
            "/proc Mount",
            "Unmasked".into(),
        ),
    ];
    for (pointer, control, value) in cases {
        let mut pod = good.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let slot = pod
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{parent}"));
        match slot {
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
            Value::Object(o) => {
                o.insert(key.into(), value);
            }
            _ => panic!("{pointer}"),
        }
        let bad = restricted_violations(&pod);
        assert!(
            bad.iter().any(|b| b.contains(control)),
            "{pointer}: {bad:?}"
        );
    }
}

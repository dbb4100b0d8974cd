//! `trust-injector webhook`: real AdmissionReview requests over HTTPS to the
//! running server, answered the way the API server expects; the patches
//! applied by an independent JSON-patch implementation (Python's
//! `jsonpatch`) and the result validated with `kubernetes-validate --strict`.

mod common;

use common::atomic_writer::AtomicWriter;
use common::pki::{Cert, Chain};
use common::python;
use common::webhook::{self as wh, Req, Webhook};
use common::{tools, wait_until, PATIENCE};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// A serving-certificate volume laid out by the kubelet, and the chain in it.
struct TlsVolume {
    _dir: tempfile::TempDir,
    writer: AtomicWriter,
    chain: Chain,
    ca_file: PathBuf,
}

impl TlsVolume {
    fn new() -> TlsVolume {
        let dir = tempfile::tempdir().unwrap();
        let writer = AtomicWriter::new(&dir.path().join("tls"));
        let chain = Chain::new("webhook");
        let ca_file = dir.path().join("ca.crt");
        chain.root.write_pem(&ca_file);
        let v = TlsVolume {
            _dir: dir,
            writer,
            chain,
            ca_file,
        };
        v.serve(&v.chain.leaf);
        v
    }

    /// Puts `leaf` (signed by the chain's intermediate) in the volume.
    fn serve(&self, leaf: &Cert) {
        let crt = format!("{}{}", leaf.pem(), self.chain.intermediate.pem());
        self.writer.write(&[
            ("tls.crt", crt.as_bytes()),
            ("tls.key", leaf.key_pem().as_bytes()),
        ]);
    }

    fn cert(&self) -> PathBuf {
        self.writer.dir().join("tls.crt")
    }
    fn key(&self) -> PathBuf {
        self.writer.dir().join("tls.key")
    }

    fn start(&self, extra: &[&str]) -> Webhook {
        let mut w = Webhook::start(&self.cert(), &self.key(), extra);
        w.wait_ready();
        w
    }

    fn send(&self, w: &Webhook, reqs: &[Req]) -> Vec<wh::Answer> {
        wh::send(w.port, &self.ca_file, "localhost", reqs)
    }
}

fn pod(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    })
}

fn metric(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{labels} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name}{labels} in:\n{text}"))
}

/// Each malformed or unexpected request gets its documented HTTP error with a
/// `Status` body naming the problem and a log line, and the server goes on.
#[test]
fn malformed_and_unexpected_requests_get_documented_errors() {
    let tls = TlsVolume::new();
    let w = tls.start(&["--max-body-bytes=65536"]);
    let mut deployment = wh::review_for("u-deploy", "apps", &pod("p", json!({})));
    deployment["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    let mut beta = wh::review_for("u-beta", "apps", &pod("p", json!({})));
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut oversize = wh::review_for("u-big", "apps", &pod("p", json!({})));
    oversize["request"]["object"]["metadata"]["annotations"] = json!({"big": "x".repeat(200_000)});
    let mut get = Req::raw(Vec::new());
    get.method = "GET";
    let mut other_path = Req::review(&wh::review_for("u", "apps", &pod("p", json!({}))));
    other_path.path = "/validate";
    let mut text = Req::review(&wh::review_for("u", "apps", &pod("p", json!({}))));
    text.content_type = "text/plain";
    let cases: Vec<(Req, u16, &str)> = vec![
        (
            Req::raw(b"{\"apiVersion\": \"admission.k8s.io/v1\", ".to_vec()),
            400,
            "not JSON",
        ),
        (Req::review(&beta), 400, "admission.k8s.io/v1beta1"),
        (Req::review(&deployment), 400, "apps/v1/Deployment"),
        (Req::review(&oversize), 413, "65536 bytes"),
        (get, 405, "POST /mutate"),
        (other_path, 404, "/validate"),
        (text, 415, "application/json"),
        (
            Req::review(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})),
            400,
            "no request",
        ),
    ];
    let (reqs, expected): (Vec<Req>, Vec<(u16, &str)>) =
        cases.into_iter().map(|(r, c, m)| (r, (c, m))).unzip();
    let mut reqs = reqs;
    reqs.push(Req::review(&wh::review_for(
        "u-after",
        "apps",
        &pod("p", json!({})),
    )));
    let answers = tls.send(&w, &reqs);
    for (a, (code, needle)) in answers.iter().zip(&expected) {
        assert_eq!(a.status, *code, "{needle}: {a:?}");
        let status = a.json();
        assert_eq!(status["kind"], "Status", "{a:?}");
        assert_eq!(status["code"], *code, "{a:?}");
        let msg = status["message"].as_str().unwrap();
        assert!(
            msg.contains(needle),
            "message {msg:?} should mention {needle:?}"
        );
        assert!(
            w.logs()
                .lines()
                .any(|l| l.contains("admission request refused") && l.contains(msg)),
            "no log line for {msg:?}:\n{}",
            w.logs()
        );
    }
    let last = answers.last().unwrap();
    assert_eq!(last.status, 200, "server still answers: {last:?}");
    assert_eq!(last.json()["response"]["uid"], "u-after");
    let m = w.metrics();
    assert_eq!(
        metric(
            &m,
            "trust_injector_webhook_reviews_total",
            "{outcome=\"rejected\"}"
        ),
        expected.len() as f64
    );
}

/// No certificate yet: alive, not ready, and saying why; ready the moment the
/// Secret appears, with its expiry exported.
#[test]
fn ready_once_a_certificate_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AtomicWriter::new(&dir.path().join("tls"));
    let mut w = Webhook::start(
        &writer.dir().join("tls.crt"),
        &writer.dir().join("tls.key"),
        &[],
    );
    wait_until(PATIENCE, "/healthz answers", || {
        common::daemon::http_get(w.probe_port, "/healthz").map(|(c, _)| c) == Ok(200)
    });
    let (code, body) = w.get("/readyz");
    assert_eq!(code, 503);
    assert!(body.contains("no serving certificate"), "{body}");
    let chain = Chain::new("late");
    let crt = format!("{}{}", chain.leaf.pem(), chain.intermediate.pem());
    writer.write(&[
        ("tls.crt", crt.as_bytes()),
        ("tls.key", chain.leaf.key_pem().as_bytes()),
    ]);
    w.wait_ready();
    let der = chain.leaf.der();
    let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
    let expiry = metric(
        &w.metrics(),
        "trust_injector_webhook_certificate_expiry_timestamp_seconds",
        "",
    );
    assert_eq!(expiry, x509.validity().not_after.timestamp() as f64);
    assert!(w.stop().success());
}

/// Loops calls until a stop file appears, alternating a fresh connection and
/// one kept alive, printing `fresh|kept <sha256 of the served cert>` per
/// successful call and `ERR ...` for any failure.
const CALLER: &str = r#"
import hashlib, http.client, json, os, socket, ssl, sys
port, cafile, stop, body = int(sys.argv[1]), sys.argv[2], sys.argv[3], open(sys.argv[4], "rb").read()
ctx = ssl.create_default_context(cafile=cafile)
kept = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
i = 0
while not os.path.exists(stop):
    i += 1
    fresh = i % 2 == 0
    conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20) if fresh else kept
    try:
        conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        sha = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
        data = json.loads(resp.read())
        if resp.status != 200 or data["response"]["uid"] != "u-rot":
            print("ERR", resp.status, data, flush=True)
        else:
            print("fresh" if fresh else "kept", sha, flush=True)
    except Exception as e:
        print("ERR", repr(e), flush=True)
    if fresh:
        conn.close()
"#;

/// The certificate files are replaced (kubelet-style) while a client keeps
/// calling: every call succeeds, new connections see the new certificate, and
/// a pair that does not match leaves the previous one in service.
#[test]
fn certificate_rotation_under_load_drops_nothing() {
    let tls = TlsVolume::new();
    let w = tls.start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (stop, body, log) = (
        dir.path().join("stop"),
        dir.path().join("body.json"),
        dir.path().join("calls.log"),
    );
    let review = wh::review_for("u-rot", "apps", &pod("p", json!({})));
    std::fs::write(&body, serde_json::to_vec(&review).unwrap()).unwrap();
    let mut client = tools::clean_command("python3")
        .arg("-c")
        .arg(CALLER)
        .arg(w.port.to_string())
        .arg(&tls.ca_file)
        .arg(&stop)
        .arg(&body)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let lines = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    wait_until(PATIENCE, "50 calls before rotating", || lines().len() >= 50);
    let old = tls.chain.leaf.sha256();
    let new_leaf = tls.chain.intermediate.leaf("localhost");
    let new = new_leaf.sha256();
    tls.serve(&new_leaf);
    wait_until(
        PATIENCE,
        "a new connection sees the new certificate",
        || lines().iter().any(|l| *l == format!("fresh {new}")),
    );
    // A hand-made Secret whose key belongs to another certificate.
    let stranger = tls.chain.intermediate.leaf("localhost");
    let crt = format!("{}{}", stranger.pem(), tls.chain.intermediate.pem());
    tls.writer.write(&[
        ("tls.crt", crt.as_bytes()),
        ("tls.key", new_leaf.key_pem().as_bytes()),
    ]);
    wait_until(PATIENCE, "the mismatched pair is refused", || {
        w.logs().contains("does not belong to the certificate")
    });
    let seen = lines().len();
    wait_until(PATIENCE, "50 more calls", || lines().len() >= seen + 50);
    std::fs::write(&stop, b"").unwrap();
    assert!(client.wait().unwrap().success());
    let all = lines();
    let errors: Vec<&String> = all.iter().filter(|l| l.starts_with("ERR")).collect();
    assert!(
        errors.is_empty(),
        "failed calls: {errors:?}\nlogs:\n{}",
        w.logs()
    );
    let first_new = all
        .iter()
        .position(|l| *l == format!("fresh {new}"))
        .unwrap();
    for l in &all[first_new..] {
        if l.starts_with("fresh") {
            assert_eq!(
                *l,
                format!("fresh {new}"),
                "a new connection after the swap saw an old certificate"
            );
        }
    }
    assert!(all[..first_new]
        .iter()
        .any(|l| *l == format!("fresh {old}")));
    assert!(
        all.iter().any(|l| *l == format!("kept {old}")),
        "the kept connection went on"
    );
    let m = w.metrics();
    assert!(
        metric(
            &m,
            "trust_injector_webhook_certificate_reloads_total",
            "{outcome=\"error\"}"
        ) >= 1.0
    );
    assert_eq!(
        metric(
            &m,
            "trust_injector_webhook_reviews_total",
            "{outcome=\"rejected\"}"
        ),
        0.0
    );
}

/// `webhook certs` makes a CA and a serving certificate for the Service names
/// the API server uses; a client trusting only the printed caBundle accepts it.
#[test]
fn certs_command_makes_what_the_api_server_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let mut cmd = common::trust_injector();
    cmd.args(["webhook", "certs", "--namespace", "ti-system", "--out-dir"])
        .arg(&out);
    let run = tools::run(&mut cmd, Duration::from_secs(60));
    assert!(run.ok(), "{}", run.text());
    use base64::Engine;
    let bundle = base64::engine::general_purpose::STANDARD
        .decode(run.stdout.trim())
        .expect("stdout is the base64 caBundle");
    assert_eq!(bundle, std::fs::read(out.join("ca.crt")).unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "tls.key is private");
    let mut verify = tools::clean_command("openssl");
    verify
        .args([
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_hostname",
        ])
        .arg("trust-injector-webhook.ti-system.svc")
        .arg("-CAfile")
        .arg(out.join("ca.crt"))
        .arg(out.join("tls.crt"));
    let v = tools::run(&mut verify, Duration::from_secs(30));
    assert!(v.ok(), "{}", v.text());
    let w = {
        let mut w = Webhook::start(&out.join("tls.crt"), &out.join("tls.key"), &[]);
        w.wait_ready();
        w
    };
    let review = wh::review_for("u-certs", "apps", &pod("p", json!({})));
    let a = wh::send(
        w.port,
        &out.join("ca.crt"),
        "trust-injector-webhook.ti-system.svc",
        &[Req::review(&review)],
    );
    assert_eq!(a[0].status, 200);
    // Existing files are never overwritten.
    let again = tools::run(&mut cmd, Duration::from_secs(60));
    assert_eq!(again.code(), Some(1), "{}", again.text());
    assert!(again.stderr.contains("ca.crt"), "{}", again.text());
}

const IMAGE: &str = "registry.example/trust-injector:test";

/// The decoded JSONPatch of an allowed answer (None when it carries none),
/// after checking the envelope the API server checks.
fn patch_of(a: &wh::Answer, uid: &str) -> Option<Value> {
    assert_eq!(a.status, 200, "{a:?}");
    let doc = a.json();
    assert_eq!(doc["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(doc["kind"], "AdmissionReview");
    let r = &doc["response"];
    assert_eq!(r["uid"], uid, "uid echoed");
    assert_eq!(r["allowed"], true, "{doc}");
    let patch = r.get("patch")?;
    assert_eq!(r["patchType"], "JSONPatch");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch.as_str().unwrap())
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// What `trust-injector inject` makes of `pod` (a JSON manifest in, JSON out).
fn inject_cli(pod: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, serde_json::to_vec_pretty(pod).unwrap()).unwrap();
    let mut cmd = common::trust_injector();
    cmd.args(["inject", "--image", IMAGE]).arg(&file);
    let out = tools::run(&mut cmd, Duration::from_secs(60));
    assert!(out.ok(), "inject failed:\n{}", out.text());
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inject output ({e}): {}", out.stdout))
}

fn opted_in(name: &str) -> Value {
    pod(
        name,
        json!({"app": "gw", "trust-injector.io/inject": "true"}),
    )
}

/// The pods the issue lists, sent over HTTPS: each answer echoes the uid,
/// injected pods come back as patches that Python's `jsonpatch` applies and
/// `kubernetes-validate --strict` accepts, and a second review of a patched
/// pod (reinvocation) returns no patch.
#[test]
fn opted_in_pods_get_the_sidecar_by_patch() {
    let tls = TlsVolume::new();
    let w = tls.start(&[&format!("--image={IMAGE}")]);
    let mut rs_pod = opted_in("");
    let meta = rs_pod["metadata"].as_object_mut().unwrap();
    meta.remove("name");
    meta.remove("namespace");
    meta.insert("generateName".into(), json!("gateway-7d9c5b-"));
    meta.insert("ownerReferences".into(), json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gateway-7d9c5b",
        "uid": "0b6f5c8e-2f53-4b7a-9d1e-3c1f0e6a7b21", "controller": true, "blockOwnerDeletion": true}]));
    meta["labels"]["pod-template-hash"] = json!("7d9c5b");
    let mut several = opted_in("several");
    several["spec"] = json!({
        "initContainers": [{"name": "migrate", "image": "registry.example/migrate:1"},
                            {"name": "wait-db", "image": "registry.example/wait:1"}],
        "containers": [{"name": "gateway", "image": "mcr.microsoft.com/azure-api-management/gateway:v2",
                        "env": [{"name": "config.service.auth", "value": "x"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                       {"name": "log-shipper", "image": "registry.example/fluent-bit:3"}],
        "volumes": [{"name": "data", "emptyDir": {}}]
    });
    let cases = [
        ("u-opt-in", opted_in("gw")),
        ("u-rs", rs_pod),
        ("u-several", several),
    ];
    let reqs: Vec<Req> = cases
        .iter()
        .map(|(uid, p)| Req::review(&wh::review_for(uid, "apps", p)))
        .collect();
    let answers = tls.send(&w, &reqs);
    let mut reinvoke = Vec::new();
    for ((uid, pod), a) in cases.iter().zip(&answers) {
        let patch = patch_of(a, uid).unwrap_or_else(|| panic!("{uid}: no patch: {a:?}"));
        let patched = wh::apply_patch(pod, &patch);
        assert_eq!(
            patched,
            inject_cli(pod),
            "{uid}: the webhook's pod is inject's pod"
        );
        // The API server names a generateName pod after admission; the
        // validator wants the name the pod will have.
        let mut named = patched.clone();
        if named["metadata"].get("name").is_none() {
            named["metadata"]["name"] = json!("gateway-7d9c5b-x7k2p");
        }
        wh::validate_strict(&named);
        let spec = &patched["spec"];
        let sidecars: Vec<&Value> = spec["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["image"] == IMAGE && c["name"] == "trust-injector")
            .collect();
        assert_eq!(
            sidecars.len(),
            1,
            "{uid}: one sidecar of the webhook's image: {spec}"
        );
        // The binary our image installs for the roots' init container is the same image.
        let install = &spec["initContainers"][0];
        assert_eq!(
            (&install["name"], &install["image"]),
            (&json!("trust-injector-install"), &json!(IMAGE))
        );
        assert_eq!(sidecars[0]["restartPolicy"], "Always");
        for c in spec["containers"].as_array().unwrap() {
            assert!(
                c["env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["name"] == "SSL_CERT_FILE"),
                "{uid}: container {} has no SSL_CERT_FILE",
                c["name"]
            );
        }
        // What was there stays there, in order.
        let before: Vec<&Value> = pod["spec"]["initContainers"]
            .as_array()
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        // inject's marker names what it added.
        let marker: Value = serde_json::from_str(
            patched["metadata"]["annotations"]["trust-injector.io/status"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let added = marker["initContainers"].as_array().unwrap();
        let after: Vec<&Value> = spec["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !added.contains(&c["name"]))
            .collect();
        assert_eq!(
            before, after,
            "{uid}: the pod's own init containers are kept in order"
        );
        reinvoke.push(Req::review(&wh::review_for(
            &format!("{uid}-again"),
            "apps",
            &patched,
        )));
    }
    let again = tls.send(&w, &reinvoke);
    for ((uid, _), a) in cases.iter().zip(&again) {
        assert_eq!(
            patch_of(a, &format!("{uid}-again")),
            None,
            "reinvocation patched again"
        );
    }
    let m = w.metrics();
    assert_eq!(
        metric(
            &m,
            "trust_injector_webhook_reviews_total",
            "{outcome=\"injected\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "trust_injector_webhook_reviews_total",
            "{outcome=\"unchanged\"}"
        ),
        3.0
    );
}

/// A pod label other than the opt-in values (it wins over a labelled
/// namespace), an opt-out annotation, a pod whose workload was injected
/// with other options: allowed with no patch. A pod that cannot be mutated
/// is denied with the reason, never allowed without its sidecar.
#[test]
fn other_pods_are_left_alone_or_denied() {
    let tls = TlsVolume::new();
    let w = tls.start(&[&format!("--image={IMAGE}")]);
    let mut opted_out = opted_in("out");
    opted_out["metadata"]["annotations"] = json!({"trust-injector.io/inject": "false"});
    // Injected with a Secret named by annotation, then the annotation dropped:
    // the webhook's defaults now differ from what the pod carries.
    let mut custom = opted_in("custom");
    custom["metadata"]["annotations"] = json!({"trust-injector.io/secret": "team-cas"});
    let first = tls.send(&w, &[Req::review(&wh::review_for("u-c", "apps", &custom))]);
    let mut injected = wh::apply_patch(&custom, &patch_of(&first[0], "u-c").unwrap());
    injected["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("trust-injector.io/secret");
    let mut clash = opted_in("clash");
    clash["spec"]["volumes"] = json!([{"name": "trust", "emptyDir": {}}]);
    let answers = tls.send(
        &w,
        &[
            Req::review(&wh::review_for(
                "u-none",
                "apps",
                &pod(
                    "plain",
                    json!({"app": "x", "trust-injector.io/inject": "false"}),
                ),
            )),
            Req::review(&wh::review_for("u-out", "apps", &opted_out)),
            Req::review(&wh::review_for("u-done", "apps", &injected)),
            Req::review(&wh::review_for("u-clash", "apps", &clash)),
        ],
    );
    for (a, uid) in answers.iter().zip(["u-none", "u-out", "u-done"]) {
        assert_eq!(patch_of(a, uid), None, "{uid} was patched");
    }
    let denied = answers[3].json();
    assert_eq!(denied["response"]["uid"], "u-clash");
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    assert!(denied["response"].get("patch").is_none());
    let msg = denied["response"]["status"]["message"].as_str().unwrap();
    assert!(msg.contains("apps/clash") && msg.contains("trust"), "{msg}");
    assert!(w.logs().contains("pod denied"), "{}", w.logs());
}

/// Issue 27: over real HTTPS, containers left out come back as AdmissionReview
/// warnings and in the pod's annotation; a Windows pod is allowed unchanged with
/// the reason; a port in use is not the sidecar's; a pod injected by another
/// version is annotated and counted as `outdated` in /metrics.
#[test]
fn workloads_get_trust_or_a_stated_reason() {
    let tls = TlsVolume::new();
    let w = tls.start(&[&format!("--image={IMAGE}")]);
    let mut mesh = opted_in("mesh");
    mesh["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "istio/proxyv2", "ports": [{"containerPort": 9898}]}));
    let mut windows = opted_in("win");
    windows["spec"]["os"] = json!({"name": "windows"});
    let mut old = opted_in("old");
    old["metadata"]["annotations"] = json!({"trust-injector.io/status":
        r#"{"version":"0.0.1","mode":"native","initContainers":[],"volumes":[],"targets":[]}"#});
    let answers = tls.send(
        &w,
        &[
            Req::review(&wh::review_for("u-mesh", "apps", &mesh)),
            Req::review(&wh::review_for("u-win", "apps", &windows)),
            Req::review(&wh::review_for("u-old", "apps", &old)),
        ],
    );
    let warnings = |a: &wh::Answer| a.json()["response"]["warnings"].clone();
    let patched = wh::apply_patch(&mesh, &patch_of(&answers[0], "u-mesh").unwrap());
    assert_eq!(
        warnings(&answers[0]),
        json!(["trust-injector: container istio-proxy left without trust: a known mesh or infrastructure proxy"])
    );
    let skipped = &patched["metadata"]["annotations"]["trust-injector.io/skipped"];
    assert!(
        skipped.as_str().unwrap().starts_with("istio-proxy: "),
        "{skipped}"
    );
    let proxy = patched["spec"]["containers"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(proxy.get("env").is_none(), "{proxy}");
    let sidecar = &patched["spec"]["initContainers"][2];
    assert_eq!(sidecar["ports"][0]["containerPort"], 9899, "{sidecar}");
    assert_eq!(patch_of(&answers[1], "u-win"), None);
    let why = warnings(&answers[1]).to_string();
    assert!(why.contains("Windows"), "{why}");
    let marked = wh::apply_patch(&old, &patch_of(&answers[2], "u-old").unwrap());
    let note = &marked["metadata"]["annotations"]["trust-injector.io/outdated"];
    assert!(note.as_str().unwrap().contains("0.0.1"), "{note}");
    assert_eq!(marked["spec"], old["spec"]);
    let m = w.metrics();
    let count = |o: &str| {
        metric(
            &m,
            "trust_injector_webhook_reviews_total",
            &format!("{{outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(
        (count("outdated"), count("skipped"), count("injected")),
        (1.0, 1.0, 1.0)
    );
}

/// Sends the headers of a review declaring a body that never comes, over TLS
/// (Python's ssl), and prints the status line of the answer.
const SLOW_CLIENT: &str = r#"
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
with tls_connect(ctx, port, timeout=30) as tls:
    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    print(recv_until(tls, b"\r\n").split(b"\r\n")[0].decode())
"#;

/// A body that does not arrive within --request-timeout gets 408, and the
/// connection is not held open.
#[test]
fn a_stalled_body_times_out() {
    let tls = TlsVolume::new();
    let w = tls.start(&["--request-timeout=1"]);
    let mut cmd = python::command(SLOW_CLIENT);
    cmd.arg(w.port.to_string()).arg(&tls.ca_file);
    let started = std::time::Instant::now();
    let out = tools::run(&mut cmd, Duration::from_secs(30));
    assert!(out.ok(), "{}", out.text());
    assert_eq!(
        out.stdout.trim(),
        "HTTP/1.1 408 Request Timeout",
        "{}",
        out.text()
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(w.logs().contains("--request-timeout"), "{}", w.logs());
}

/// SIGTERM: not ready at once, still answering during --shutdown-delay, then
/// exit 0.
#[test]
fn sigterm_drains_then_exits_cleanly() {
    let tls = TlsVolume::new();
    let mut w = tls.start(&["--shutdown-delay=2"]);
    unsafe { libc::kill(w.pid(), libc::SIGTERM) };
    wait_until(PATIENCE, "/readyz turns 503", || w.get("/readyz").0 == 503);
    let review = wh::review_for("u-drain", "apps", &pod("p", json!({})));
    let a = tls.send(&w, &[Req::review(&review)]);
    assert_eq!(a[0].status, 200, "served while draining");
    assert!(w.stop().success(), "exit 0; logs:\n{}", w.logs());
    assert!(w.logs().contains("stopped"), "{}", w.logs());
}

/// Streams a chunked body (no Content-Length) of `total` bytes and prints
/// the status line of the answer.
const CHUNKED_CLIENT: &str = r#"
port, cafile, total = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=cafile)
with tls_connect(ctx, port, timeout=30) as tls:
    tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 16384
    sent = 0
    while sent < total:
        tls.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sent += len(chunk)
    tls.sendall(b"0\r\n\r\n")
    print(recv_until(tls, b"\r\n").split(b"\r\n")[0].decode())
"#;

/// Without a declared length the limit holds while reading: 413, not an
/// unbounded buffer.
#[test]
fn a_chunked_body_over_the_limit_is_refused() {
    let tls = TlsVolume::new();
    let w = tls.start(&["--max-body-bytes=65536"]);
    let mut cmd = python::command(CHUNKED_CLIENT);
    cmd.arg(w.port.to_string()).arg(&tls.ca_file).arg("262144");
    let out = tools::run(&mut cmd, Duration::from_secs(30));
    assert!(out.ok(), "{}", out.text());
    assert_eq!(
        out.stdout.trim(),
        "HTTP/1.1 413 Payload Too Large",
        "{}",
        out.text()
    );
}

/// A TLS client for the hostile connections below, trusting `ca_file`.
fn hostile_tls_config(ca_file: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Issue 24 item 5: one peer opens 600 connections (more than the 512 the
/// webhook holds) that finish the TLS handshake and then idle, or send
/// headers and a few bytes of a body that never completes. With a request
/// timeout of 300 s none of them times out during the test, so a review
/// served at all was served by taking the place of a waiting connection.
#[test]
fn idle_and_slow_connections_do_not_starve_a_review() {
    use std::io::Write;
    let tls = TlsVolume::new();
    let w = tls.start(&["--request-timeout=300"]);
    let config = hostile_tls_config(&tls.ca_file);
    let mut hostile = Vec::new();
    for i in 0..600 {
        let sock = std::net::TcpStream::connect(("127.0.0.1", w.port)).unwrap();
        sock.set_read_timeout(Some(PATIENCE)).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(std::sync::Arc::clone(&config), name).unwrap();
        let mut s = rustls::StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn
                .complete_io(&mut s.sock)
                .unwrap_or_else(|e| panic!("hostile handshake {i}: {e}"));
        }
        if i % 2 == 1 {
            // Slow body: the headers promise 100 kB, a few bytes follow.
            let _ = s.write_all(
                b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"apiVersion\":",
            );
            let _ = s.flush();
        }
        hostile.push(s);
    }
    let review = wh::review_for("u-crowded", "apps", &opted_in("crowded"));
    let a = tls.send(&w, &[Req::review(&review)]);
    assert_eq!(a[0].status, 200, "{}", a[0].body);
    assert!(
        patch_of(&a[0], "u-crowded").is_some(),
        "the review is answered with its patch: {}",
        a[0].body
    );
    assert_eq!(w.get("/healthz").0, 200);
    drop(hostile);
}

/// Issue 25 item 9: the log gives the serving certificate's notAfter in
/// RFC 3339, as `/status` writes times (it gave Unix seconds).
#[test]
fn the_loaded_certificate_is_logged_with_its_rfc3339_expiry() {
    let tls = TlsVolume::new();
    let w = tls.start(&[]);
    let der = tls.chain.leaf.der();
    let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
    let expected = x509
        .validity()
        .not_after
        .to_datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let logs = w.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("serving certificate loaded"))
        .unwrap_or_else(|| panic!("no load logged:\n{logs}"));
    assert!(
        line.contains(&format!("not_after={expected}")),
        "expected not_after={expected} in: {line}"
    );
}

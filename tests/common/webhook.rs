//! Running `trust-injector webhook` on loopback, and talking to it the way the
//! API server does: AdmissionReview JSON over HTTPS, from Python's `ssl` and
//! `http.client` (an outside TLS stack, verifying the served chain).

use super::daemon::{free_port, http_get};
use super::process::Process;
use super::tools;
use super::wait_for_else;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// A running webhook, stopped with SIGTERM on drop.
pub struct Webhook {
    process: Process,
    pub port: u16,
    pub probe_port: u16,
}

impl Webhook {
    /// `trust-injector webhook` on free loopback ports with the certificate
    /// files given and `extra` arguments. Does not wait for readiness.
    pub fn start(cert: &Path, key: &Path, extra: &[&str]) -> Webhook {
        let (port, probe_port) = (free_port(), free_port());
        let mut cmd = super::trust_injector();
        cmd.arg("webhook")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--probe-listen=127.0.0.1:{probe_port}"))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .args(extra)
            .env("TRUST_INJECTOR_LOG", "info");
        Webhook {
            process: Process::spawn(&mut cmd, "trust-injector webhook"),
            port,
            probe_port,
        }
    }

    /// Waits for `/readyz` 200, panicking with the logs if it exits first.
    pub fn wait_ready(&mut self) {
        let last = RefCell::new(None);
        wait_for_else(
            super::PATIENCE,
            || {
                format!(
                    "/readyz not 200 (last: {:?}); logs:\n{}",
                    last.borrow(),
                    self.logs()
                )
            },
            || {
                if let Some(st) = self.process.exited() {
                    panic!("webhook exited ({st}); logs:\n{}", self.logs());
                }
                let answer = http_get(self.probe_port, "/readyz");
                let ready = matches!(answer, Ok((200, _)));
                *last.borrow_mut() = Some(answer);
                ready.then_some(())
            },
        )
    }

    /// GET on the plain-HTTP probe port.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.probe_port, path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}; logs:\n{}", self.logs()))
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").1
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }

    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// SIGTERM and the exit status (panics after 10 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        if let Some(st) = self.process.exited() {
            return st;
        }
        self.process.signal(libc::SIGTERM);
        match self.process.wait_exit(Duration::from_secs(10)) {
            Some(st) => st,
            None => {
                self.process.kill();
                panic!("webhook ignored SIGTERM for 10 s; logs:\n{}", self.logs());
            }
        }
    }
}

/// Sends each request of a JSON list on one keep-alive connection (a new one
/// after the server closes it) and prints a JSON list of answers: status,
/// content type, body, and the SHA-256 of the certificate the server showed.
const CLIENT: &str = r#"
import base64, hashlib, http.client, json
port, cafile, servername = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
class Conn(http.client.HTTPSConnection):
    # TCP to loopback, SNI and name check for `servername` (a Service name
    # that does not resolve here).
    def connect(self):
        self.sock = tls_connect(ctx, port, timeout=20, servername=servername)
conn = Conn(servername, port, context=ctx, timeout=20)
out = []
for r in json.load(sys.stdin):
    if r.get("new_connection"):
        conn.close()
    body = base64.b64decode(r["body_b64"])
    headers = {"Content-Type": r.get("content_type", "application/json")}
    try:
        conn.request(r.get("method", "POST"), r.get("path", "/mutate"), body=body, headers=headers)
        # Before the response: one saying `Connection: close` takes the socket.
        peer = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
        resp = conn.getresponse()
        data = resp.read()
        out.append({"status": resp.status, "content_type": resp.getheader("Content-Type"),
                    "body": data.decode("utf-8", "replace"), "peer_sha256": peer})
    except Exception as e:
        out.append({"error": repr(e)})
        conn.close()
print(json.dumps(out))
"#;

/// One request to send.
pub struct Req {
    pub method: &'static str,
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Req {
    /// `POST /mutate` with a JSON body.
    pub fn review(doc: &Value) -> Req {
        Req::raw(serde_json::to_vec(doc).unwrap())
    }
    /// `POST /mutate` with these bytes as the body.
    pub fn raw(body: Vec<u8>) -> Req {
        Req {
            method: "POST",
            path: "/mutate",
            content_type: "application/json",
            body,
        }
    }
}

/// The answer to one [`Req`].
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub peer_sha256: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {}", self.body))
    }
}

/// Sends `reqs` over HTTPS to `port`, trusting only `cafile`, with SNI and
/// name check `servername`. Panics on a transport error.
pub fn send(port: u16, cafile: &Path, servername: &str, reqs: &[Req]) -> Vec<Answer> {
    use base64::Engine;
    let list: Vec<Value> = reqs
        .iter()
        .map(|r| {
            json!({"method": r.method, "path": r.path, "content_type": r.content_type,
                   "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body)})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("requests.json");
    std::fs::write(&input, serde_json::to_vec(&list).unwrap()).unwrap();
    let mut cmd = super::python::command(CLIENT);
    cmd.arg(port.to_string())
        .arg(cafile)
        .arg(servername)
        .stdin(std::fs::File::open(&input).unwrap());
    let out = run_with_stdin(cmd);
    let answers: Vec<Value> = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("client output is not JSON ({e}):\n{}", out.text()));
    answers
        .into_iter()
        .map(|a| {
            assert!(a.get("error").is_none(), "request failed: {a}");
            Answer {
                status: a["status"].as_u64().unwrap() as u16,
                content_type: a["content_type"].as_str().unwrap_or("").to_string(),
                body: a["body"].as_str().unwrap().to_string(),
                peer_sha256: a["peer_sha256"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// `tools::run` closes stdin; this keeps the file given as stdin.
fn run_with_stdin(mut cmd: std::process::Command) -> tools::Out {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run python3 client");
    let o = tools::Out {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(o.ok(), "python3 client failed:\n{}", o.text());
    o
}

/// An `AdmissionReview` request for `pod`, as the API server sends a CREATE.
pub fn review_for(uid: &str, namespace: &str, pod: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"].as_str().unwrap_or(""),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// The `jsonpatch` program (Python's `jsonpatch` package): applies `patch` to
/// `doc` independently of our code.
pub fn apply_patch(doc: &Value, patch: &Value) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (d, p) = (dir.path().join("doc.json"), dir.path().join("patch.json"));
    std::fs::write(&d, serde_json::to_vec(doc).unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec(patch).unwrap()).unwrap();
    let mut cmd = tools::clean_command("jsonpatch");
    cmd.arg(&d).arg(&p);
    let out = tools::run(&mut cmd, Duration::from_secs(60));
    assert!(out.ok(), "jsonpatch failed:\n{}", out.text());
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("jsonpatch output ({e}): {}", out.stdout))
}

/// `kubernetes-validate --strict` on `doc` (a whole object); panics with its output.
pub fn validate_strict(doc: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("object.json");
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let mut cmd = tools::clean_command("kubernetes-validate");
    cmd.arg("--strict").arg(&path);
    let out = tools::run(&mut cmd, Duration::from_secs(120));
    assert!(
        out.ok(),
        "kubernetes-validate --strict refused:\n{}\n{}",
        out.text(),
        serde_json::to_string_pretty(doc).unwrap()
    );
}

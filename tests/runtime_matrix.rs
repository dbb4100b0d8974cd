//! The README's "Which runtimes pick up a rotation", measured: each runtime that
//! runs here gets a long-running client started before a CA rotation, and is
//! asked afterwards whether each of its ways of trusting still works.
//!
//! Every scenario is the same: the Secret holds root Old and the HTTPS server
//! serves a chain from Old; the client starts and succeeds; then the Secret is
//! rotated (through the kubelet AtomicWriter) to root New only and the server
//! switches to a chain from New. What was loaded before the rotation trusts Old
//! alone and now fails; what is read after it trusts New and succeeds. A
//! restarted client always succeeds.
//!
//! The client programs live in tests/runtimes/ and are built here. Every client
//! runs with the CA-related variables of this machine removed
//! (`tools::clean_command`), except the one a test sets deliberately.

mod common;

use common::long_client::LongClient;
use common::python;
use common::rotation::Rotation;
use common::tools::{self, Trust};
use common::{s, wait_until, PATIENCE};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn runtimes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtimes")
}

// ---------------------------------------------------------------- Python, OpenSSL

/// Python's ssl module (OpenSSL underneath: an `SSLContext` is an `SSL_CTX`).
///   old        create_default_context() made at start (reads SSL_CERT_FILE then)
///   new        create_default_context() made now
///   capath-old a context made at start with capath=CERTS (hashed directory)
const PY_LONG_CLIENT: &str = r#"
port, capath = int(sys.argv[1]), sys.argv[2]
old = ssl.create_default_context()
capath_old = ssl.create_default_context(cafile=None, capath=capath)
def get(ctx):
    try:
        data = http_get(ctx, port)
    except Exception as e:
        return "fail " + str(e).replace("\n", " ")
    return "ok" if data.startswith(b"HTTP/1.0 200") else "fail " + repr(data[:60])
print("ready", flush=True)
for line in sys.stdin:
    mode = line.strip()
    if mode == "old":
        print(get(old), flush=True)
    elif mode == "new":
        print(get(ssl.create_default_context()), flush=True)
    elif mode == "capath-old":
        print(get(capath_old), flush=True)
    else:
        print("fail unknown mode " + mode, flush=True)
"#;

fn python_client(r: &Rotation) -> LongClient {
    let mut cmd = python::command(PY_LONG_CLIENT);
    // Deliberately: the variable an application container is given.
    cmd.env("SSL_CERT_FILE", r.bundle())
        .arg(r.port().to_string())
        .arg(r.certs());
    LongClient::start("python3", cmd, r.tmp().join("python.stderr"))
}

#[test]
fn python_new_context_follows_a_rotation_a_long_lived_one_does_not() {
    tools::require("python3");
    let mut r = Rotation::start(&[]);
    let mut client = python_client(&r);
    client.expect_ok("old", "before rotation");
    client.expect_ok("new", "before rotation");
    client.expect_ok("capath-old", "before rotation");

    r.rotate();
    let why = client.expect_fail("old", "after rotation (SSLContext made before it)");
    assert!(why.contains("CERTIFICATE_VERIFY_FAILED"), "{why}");
    client.expect_ok("new", "after rotation (new SSLContext)");
    // A hashed directory is searched at verification time, so even a context
    // made before the rotation finds a CA with a new subject there.
    client.expect_ok(
        "capath-old",
        "after rotation (capath, context made before it)",
    );

    drop(client);
    let mut restarted = python_client(&r);
    restarted.expect_ok("old", "after a restart");
}

#[test]
fn openssl_a_new_ssl_ctx_per_run_follows_a_rotation() {
    tools::require("openssl");
    let mut r = Rotation::start(&[]);
    // openssl s_client builds a new SSL_CTX on every run, from the files as
    // they are at that moment. (A long-lived SSL_CTX loaded with a CAfile does
    // not re-read it: shown with Python's SSLContext, which is one.)
    for trust in [Trust::File(&r.bundle()), Trust::Dir(&r.certs())] {
        let res = tools::s_client(r.port(), trust);
        assert!(res.ok(), "s_client before rotation:\n{}", res.text());
    }
    r.rotate();
    for trust in [Trust::File(&r.bundle()), Trust::Dir(&r.certs())] {
        let res = tools::s_client(r.port(), trust);
        assert!(res.ok(), "s_client after rotation:\n{}", res.text());
    }
}

#[test]
fn curl_every_run_reads_the_current_bundle() {
    tools::require("curl");
    let mut r = Rotation::start(&[]);
    let run = |bundle: &Path, port: u16| {
        let mut cmd = tools::clean_command("curl");
        // Deliberately: the variable curl reads.
        cmd.env("CURL_CA_BUNDLE", bundle).args([
            "-q",
            "-sS",
            "--fail",
            "--max-time",
            "15",
            "--noproxy",
            "*",
        ]);
        cmd.arg(format!("https://localhost:{port}/"));
        tools::run(&mut cmd, Duration::from_secs(30))
    };
    let res = run(&r.bundle(), r.port());
    assert!(res.ok(), "curl before rotation:\n{}", res.text());
    r.rotate();
    let res = run(&r.bundle(), r.port());
    assert!(res.ok(), "curl after rotation:\n{}", res.text());
}

// ---------------------------------------------------------------- Go

#[test]
fn go_loads_system_roots_once_and_needs_a_restart_or_a_handled_signal() {
    tools::require("go");
    let go = tools::require("go");
    let build_dir = tempfile::tempdir().unwrap();
    // The process name is the binary's: unique per test process, so the
    // daemon's signal reaches this client only.
    let name = format!("tigo{}", std::process::id() % 100_000);
    let binary = build_dir.path().join(&name);
    let mut build = tools::clean_command(s(&go));
    build
        .args(["build", "-o"])
        .arg(&binary)
        .arg(runtimes_dir().join("tlsclient.go"))
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", "0");
    let out = tools::run(&mut build, Duration::from_secs(300));
    assert!(out.ok(), "go build:\n{}", out.text());

    let signal = format!("HUP:{name}");
    let mut r = Rotation::start(&["--on-change-signal", &signal]);
    let start = |r: &Rotation| {
        let mut cmd = tools::clean_command(s(&binary));
        // Deliberately SSL_CERT_FILE; SSL_CERT_DIR at an empty directory so
        // Go does not add the machine's /etc/ssl/certs.
        let empty = r.tmp().join("empty-cert-dir");
        std::fs::create_dir_all(&empty).unwrap();
        cmd.env("SSL_CERT_FILE", r.bundle())
            .env("SSL_CERT_DIR", &empty)
            .arg(r.port().to_string());
        LongClient::start("go client", cmd, r.tmp().join("go.stderr"))
    };
    let mut client = start(&r);
    client.expect_ok("system", "before rotation");
    client.expect_ok("reloaded", "before rotation");

    r.rotate();
    // The daemon sent SIGHUP to the client (by name) after the changed publish.
    wait_until(
        PATIENCE,
        "the Go client handled the daemon's SIGHUP",
        || {
            writeln!(client.stdin, "reloads").unwrap();
            client.line("reloads") != "0"
        },
    );
    let why = client.expect_fail("system", "after rotation (roots loaded once)");
    assert!(why.contains("certificate"), "{why}");
    client.expect_ok("reloaded", "after rotation (pool re-read on SIGHUP)");

    drop(client);
    let mut restarted = start(&r);
    restarted.expect_ok("system", "after a restart");
}

// ---------------------------------------------------------------- Java

/// Compiles tests/runtimes/TlsClient.java into a temporary directory.
pub fn build_java_client(dir: &Path) {
    let mut javac = tools::clean_command("javac");
    javac
        .arg("-d")
        .arg(dir)
        .arg(runtimes_dir().join("TlsClient.java"));
    let out = tools::run(&mut javac, Duration::from_secs(300));
    assert!(out.ok(), "javac:\n{}", out.text());
}

#[test]
fn java_default_context_keeps_the_truststore_it_started_with() {
    tools::require("java");
    tools::require("javac");
    let mut r = Rotation::start(&["--pkcs12"]);
    let classes = r.tmp().join("classes");
    build_java_client(&classes);
    let start = |r: &Rotation| {
        let mut cmd = tools::clean_command("java");
        // Deliberately the truststore, and no password: none is set.
        cmd.arg(format!(
            "-Djavax.net.ssl.trustStore={}",
            r.daemon.out_dir.join("truststore.p12").display()
        ))
        .arg("-cp")
        .arg(&classes)
        .arg("TlsClient")
        .arg(r.port().to_string());
        LongClient::start("java client", cmd, r.tmp().join("java.stderr"))
    };
    let mut client = start(&r);
    client.expect_ok("default", "before rotation");
    client.expect_ok("new", "before rotation");

    r.rotate();
    let why = client.expect_fail("default", "after rotation (default SSLContext)");
    assert!(why.contains("SSLHandshakeException"), "{why}");
    // Java's TrustStoreManager reloads the truststore when its modification
    // time changed, for every SSLContext initialised with the default trust
    // managers after the rotation.
    client.expect_ok("new", "after rotation (new SSLContext)");

    drop(client);
    let mut restarted = start(&r);
    restarted.expect_ok("default", "after a restart");
}

// ---------------------------------------------------------------- Node.js

fn node_client(r: &Rotation, use_openssl_ca: bool, env: &[(&str, &Path)]) -> LongClient {
    tools::require("node");
    let mut cmd = tools::clean_command("node");
    if use_openssl_ca {
        cmd.arg("--use-openssl-ca");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env("TI_BUNDLE", r.bundle())
        .arg(runtimes_dir().join("tlsclient.js"))
        .arg(r.port().to_string());
    LongClient::start("node client", cmd, r.tmp().join("node.stderr"))
}

#[test]
fn node_extra_ca_certs_is_read_once_at_start() {
    let mut r = Rotation::start(&[]);
    let bundle = r.bundle();
    let mut client = node_client(&r, false, &[("NODE_EXTRA_CA_CERTS", &bundle)]);
    client.expect_ok("default", "before rotation");
    client.expect_ok("reread", "before rotation");

    r.rotate();
    let why = client.expect_fail("default", "after rotation (NODE_EXTRA_CA_CERTS)");
    assert!(why.to_ascii_lowercase().contains("certificate"), "{why}");
    client.expect_ok("reread", "after rotation (ca read per request)");

    drop(client);
    let mut restarted = node_client(&r, false, &[("NODE_EXTRA_CA_CERTS", &bundle)]);
    restarted.expect_ok("default", "after a restart");
}

#[test]
fn node_use_openssl_ca_with_ssl_cert_file_is_read_once_at_start() {
    let mut r = Rotation::start(&[]);
    let bundle = r.bundle();
    let mut client = node_client(&r, true, &[("SSL_CERT_FILE", &bundle)]);
    client.expect_ok("default", "before rotation");

    r.rotate();
    let why = client.expect_fail(
        "default",
        "after rotation (--use-openssl-ca, SSL_CERT_FILE)",
    );
    assert!(why.to_ascii_lowercase().contains("certificate"), "{why}");
    client.expect_ok("reread", "after rotation (ca read per request)");

    drop(client);
    let mut restarted = node_client(&r, true, &[("SSL_CERT_FILE", &bundle)]);
    restarted.expect_ok("default", "after a restart");
}

#[test]
fn node_use_openssl_ca_with_ssl_cert_dir_finds_a_new_ca() {
    let mut r = Rotation::start(&[]);
    let certs = r.certs();
    // SSL_CERT_FILE at a file without our CAs, so only the directory can help.
    let empty = r.tmp().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let env: [(&str, &Path); 2] = [("SSL_CERT_DIR", &certs), ("SSL_CERT_FILE", &empty)];
    let mut client = node_client(&r, true, &env);
    client.expect_ok("default", "before rotation");

    r.rotate();
    // The hashed directory is searched at verification time.
    client.expect_ok("default", "after rotation (--use-openssl-ca, SSL_CERT_DIR)");
}

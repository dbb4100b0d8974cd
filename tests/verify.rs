//! `trust-injector verify URL --bundle FILE`: one loopback HTTPS server per
//! cause of "not trusted", each case asserting the cause line and the exit
//! code. The servers are Python's `ssl` (tests/common/https.rs), so the
//! tests need `python3` and fail without it.

mod common;

use common::atomic_writer::AtomicWriter;
use common::faulty;
use common::https::HttpsServer;
use common::openssl;
use common::pki::{self, Cert, Chain};
use common::tools::{self, Out, Trust};
use common::{s, trust_injector};
use std::path::Path;
use std::time::Duration;

/// Runs `verify https://127.0.0.1:PORT/ --bundle BUNDLE ARGS...`.
fn verify(port: u16, bundle: &Path, args: &[&str]) -> Out {
    let mut cmd = trust_injector();
    cmd.arg("verify")
        .arg(format!("https://127.0.0.1:{port}/"))
        .arg("--bundle")
        .arg(bundle)
        .args(args);
    tools::run(&mut cmd, Duration::from_secs(60))
}

fn write_bundle(dir: &Path, name: &str, certs: &[&Cert]) -> std::path::PathBuf {
    let path = dir.join(name);
    let pem: String = certs.iter().map(|c| c.pem()).collect();
    common::write_file(&path, pem);
    path
}

/// The `cause:` lines of a report.
fn causes(out: &Out) -> Vec<&str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("cause:"))
        .collect()
}

struct Case {
    name: &'static str,
    /// What the server presents: certificates in order, the first one's key.
    served: String,
    /// What the bundle holds (PEM).
    bundle: String,
    args: &'static [&'static str],
    exit: i32,
    /// The code on the first cause line; `None` for trusted.
    cause: Option<&'static str>,
    /// Text the first cause line must contain (names the certificate at fault).
    mentions: Vec<String>,
}

#[test]
fn each_cause_is_named_with_its_exit_code() {
    tools::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();

    let c = Chain::new("Good");
    cases.push(Case {
        name: "trusted",
        served: faulty::server_pem(&[&c.leaf, &c.intermediate]),
        bundle: c.root.pem(),
        args: &["--servername", "localhost"],
        exit: 0,
        cause: None,
        mentions: vec![],
    });

    let c = Chain::new("Unknown");
    let other = pki::root("Some Other Root CA");
    cases.push(Case {
        name: "unknown issuer",
        served: faulty::server_pem(&[&c.leaf, &c.intermediate]),
        bundle: other.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("unknown_issuer"),
        mentions: vec!["Unknown Test Root CA".into()],
    });

    let c = Chain::new("NoInter");
    cases.push(Case {
        name: "server sends no intermediate",
        served: faulty::server_pem(&[&c.leaf]),
        bundle: c.root.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("missing_intermediate"),
        mentions: vec![
            "sends no intermediate".into(),
            "NoInter Test Intermediate CA".into(),
        ],
    });

    let c = Chain::new("Expired");
    let leaf = faulty::expired_leaf(&c.intermediate);
    cases.push(Case {
        name: "expired leaf",
        served: faulty::server_pem(&[&leaf, &c.intermediate]),
        bundle: c.root.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("expired"),
        mentions: vec!["server's certificate".into(), "expired at".into()],
    });

    let c = Chain::new("Future");
    let leaf = faulty::future_leaf(&c.intermediate);
    cases.push(Case {
        name: "leaf not yet valid",
        served: faulty::server_pem(&[&leaf, &c.intermediate]),
        bundle: c.root.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("not_yet_valid"),
        mentions: vec!["not valid before".into()],
    });

    let c = Chain::new("Name");
    cases.push(Case {
        name: "hostname mismatch",
        served: faulty::server_pem(&[&c.leaf, &c.intermediate]),
        bundle: c.root.pem(),
        args: &["--servername", "backend.example.com"],
        exit: 1,
        cause: Some("hostname_mismatch"),
        mentions: vec!["backend.example.com".into(), "localhost, 127.0.0.1".into()],
    });

    let other = pki::root("Unrelated Root CA");
    cases.push(Case {
        name: "self-signed leaf",
        served: faulty::server_pem(&[&faulty::self_signed_leaf()]),
        bundle: other.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("self_signed_leaf"),
        mentions: vec!["self-signed".into()],
    });

    let c = Chain::new("Eku");
    let leaf = faulty::client_only_leaf(&c.intermediate);
    cases.push(Case {
        name: "missing serverAuth",
        served: faulty::server_pem(&[&leaf, &c.intermediate]),
        bundle: c.root.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("missing_server_auth"),
        mentions: vec!["clientAuth".into(), "serverAuth".into()],
    });

    let root = pki::root("NotCa Test Root CA");
    let fake = faulty::non_ca_intermediate(&root, "NotCa Fake Intermediate");
    let leaf = pki::signed(pki::leaf_params("localhost"), &fake);
    cases.push(Case {
        name: "intermediate is not a CA",
        served: faulty::server_pem(&[&leaf, &fake]),
        bundle: root.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("intermediate_not_ca"),
        mentions: vec!["NotCa Fake Intermediate".into()],
    });

    let c = Chain::new("Partial");
    cases.push(Case {
        name: "anchor not self-signed (.NET)",
        served: faulty::server_pem(&[&c.leaf, &c.intermediate]),
        bundle: c.intermediate.pem(),
        args: &["--servername", "localhost"],
        exit: 1,
        cause: Some("partial_chain_only"),
        mentions: vec![
            "Partial Test Intermediate CA".into(),
            ".NET".into(),
            "Partial Test Root CA".into(),
        ],
    });

    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let server = HttpsServer::start(&case.served);
        let bundle = dir.path().join(format!("bundle-{i}.pem"));
        common::write_file(&bundle, &case.bundle);
        let out = verify(server.port, &bundle, case.args);
        // Shown with --nocapture: the README's examples come from here.
        eprintln!("=== {}\n{}", case.name, out.stdout);
        let first = causes(&out).first().map(|l| l.to_string());
        let ok = out.code() == Some(case.exit)
            && match case.cause {
                None => first.is_none() && out.stdout.contains("result:   TRUSTED"),
                Some(code) => first.as_deref().is_some_and(|l| {
                    l.starts_with(&format!("cause:    {code}: "))
                        && case.mentions.iter().all(|m| l.contains(m.as_str()))
                }),
            };
        if !ok {
            failures.push(format!(
                "case {:?}: want exit {} cause {:?} mentioning {:?}\n{}",
                case.name,
                case.exit,
                case.cause,
                case.mentions,
                out.text()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn trusted_report_names_the_chain_and_the_anchor_in_json() {
    tools::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let c = Chain::new("Json");
    let server = HttpsServer::start(&c.server_pem());
    let bundle = write_bundle(dir.path(), "bundle.pem", &[&c.root]);
    let out = verify(
        server.port,
        &bundle,
        &["--servername", "localhost", "--json"],
    );
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON output");
    assert_eq!(v["verdict"], "trusted", "{v:#}");
    assert_eq!(v["server_name"], "localhost");
    assert_eq!(v["chain"].as_array().map(Vec::len), Some(2), "{v:#}");
    assert_eq!(v["chain"][0]["subject"], "CN=localhost");
    assert_eq!(v["chain"][1]["subject"], "CN=Json Test Intermediate CA");
    assert_eq!(v["anchor"]["subject"], "CN=Json Test Root CA");
    assert_eq!(v["anchor"]["sha256"], c.root.sha256());
    assert_eq!(v["anchor"]["self_signed"], true);
    assert!(v["causes"].as_array().is_some_and(Vec::is_empty), "{v:#}");
    // The server sends its intermediate: nothing to say about the chain served.
    assert!(!out.stdout.contains("omits its intermediate"), "{v:#}");
    assert!(v["protocol"]
        .as_str()
        .is_some_and(|p| p.starts_with("TLSv1.")));
}

#[test]
fn untrusted_json_carries_code_message_and_fix() {
    tools::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let c = Chain::new("JsonBad");
    let server = HttpsServer::start(&faulty::server_pem(&[&c.leaf]));
    let bundle = write_bundle(dir.path(), "bundle.pem", &[&c.root]);
    let out = verify(
        server.port,
        &bundle,
        &["--servername", "localhost", "--json"],
    );
    assert_eq!(out.code(), Some(1), "{}", out.text());
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON output");
    assert_eq!(v["verdict"], "not_trusted");
    assert_eq!(v["causes"][0]["code"], "missing_intermediate", "{v:#}");
    assert!(v["causes"][0]["fix"]
        .as_str()
        .is_some_and(|f| f.contains("full chain")));
    assert!(v["anchor"].is_null());
}

#[test]
fn expiring_leaf_is_trusted_with_a_warning() {
    tools::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let c = Chain::new("Soon");
    let leaf = faulty::expiring_leaf(&c.intermediate);
    let server = HttpsServer::start(&faulty::server_pem(&[&leaf, &c.intermediate]));
    let bundle = write_bundle(dir.path(), "bundle.pem", &[&c.root]);
    let out = verify(server.port, &bundle, &["--servername", "localhost"]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains("expires at")),
        "{}",
        out.text()
    );
}

#[test]
fn not_tls_refused_and_silent_backends_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let root = pki::root("Any Root CA");
    let bundle = write_bundle(dir.path(), "bundle.pem", &[&root]);

    let port = faulty::plain_http_server(1);
    let out = verify(port, &bundle, &[]);
    assert_eq!(out.code(), Some(3), "{}", out.text());
    assert!(
        causes(&out)
            .first()
            .is_some_and(|l| l.starts_with("cause:    not_tls: ")),
        "{}",
        out.text()
    );

    let port = faulty::refused_port();
    let out = verify(port, &bundle, &[]);
    assert_eq!(out.code(), Some(3), "{}", out.text());
    assert!(
        causes(&out)
            .first()
            .is_some_and(|l| l.starts_with("cause:    connection_refused: ")),
        "{}",
        out.text()
    );

    let port = faulty::silent_server(1, Duration::from_secs(10));
    let started = std::time::Instant::now();
    let out = verify(port, &bundle, &["--timeout", "1"]);
    assert_eq!(out.code(), Some(3), "{}", out.text());
    assert!(
        causes(&out)
            .first()
            .is_some_and(|l| l.starts_with("cause:    timeout: ")),
        "{}",
        out.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "--timeout 1 honoured"
    );
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let root = pki::root("Usage Root CA");
    let bundle = write_bundle(dir.path(), "bundle.pem", &[&root]);
    let empty = dir.path().join("empty.pem");
    common::write_file(&empty, "");

    let run = |args: &[&str]| {
        let mut cmd = trust_injector();
        cmd.arg("verify").args(args);
        tools::run(&mut cmd, Duration::from_secs(30))
    };
    for (args, needle) in [
        (vec!["https://127.0.0.1:0/", "--bundle", s(&bundle)], "port"),
        (vec!["ftp://127.0.0.1/", "--bundle", s(&bundle)], "port"),
        (
            vec!["https://127.0.0.1:1/", "--bundle", "/nonexistent/b.pem"],
            "--bundle /nonexistent/b.pem",
        ),
        (vec!["https://127.0.0.1:1/", "--bundle", s(&empty)], "empty"),
        (
            vec![
                "https://127.0.0.1:1/",
                "--bundle",
                s(&bundle),
                "--servername",
                "not a name",
            ],
            "--servername",
        ),
        (vec!["https://127.0.0.1:1/"], "--bundle"),
    ] {
        let out = run(&args);
        assert_eq!(out.code(), Some(2), "{args:?}\n{}", out.text());
        assert!(out.stderr.contains(needle), "{args:?}\n{}", out.text());
    }
}

/// The claim behind `partial_chain_only`, checked with OpenSSL itself: with
/// only the intermediate as CAfile, the default rules refuse the backend and
/// `-partial_chain` accepts it.
#[test]
fn partial_chain_claim_matches_openssl() {
    tools::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let c = Chain::new("OsslPartial");
    let server = HttpsServer::start(&c.server_pem());
    let bundle = write_bundle(dir.path(), "inter.pem", &[&c.intermediate]);
    let s_client = |partial: bool| {
        let extra: &[&str] = if partial { &["-partial_chain"] } else { &[] };
        tools::s_client_with(server.port, Trust::File(&bundle), extra)
    };
    assert!(!s_client(false).ok(), "OpenSSL default rules refuse");
    let out = s_client(true);
    assert!(out.ok(), "OpenSSL -partial_chain accepts\n{}", out.text());
    let out = verify(server.port, &bundle, &["--servername", "localhost"]);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(
        out.stdout.contains("cause:    partial_chain_only: "),
        "{}",
        out.text()
    );
}

fn der_of(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    common::bundle::parse_pem_certs(&text).unwrap().remove(0)
}

/// SHA-1 and RSA-1024 are named as such, not mistaken for an unknown issuer
/// (ring reports a small RSA key as a bad signature). The chains come from
/// `openssl` (rcgen cannot make them) and go straight to the diagnosis: an
/// OpenSSL server at its default security level would refuse to serve them.
#[test]
fn weak_algorithms_are_named() {
    use trust_injector::cert::Certificate;
    use trust_injector::verify::diagnose;
    tools::require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write_file(
        &d.join("leaf.cnf"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    );
    for (name, bits) in [("strong", 2048), ("weak", 1024)] {
        openssl::self_signed_ca(d, name, &format!("{name} CA"), bits, "-sha256");
    }
    openssl::request(d, "leaf", "localhost");
    for (ca, digest, out) in [
        ("strong", "-sha1", "sha1-leaf.pem"),
        ("weak", "-sha256", "weak-leaf.pem"),
    ] {
        openssl::sign_request(d, "leaf", ca, (digest, 30), "leaf.cnf", out);
    }
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (leaf, ca, needle) in [
        ("sha1-leaf.pem", "strong.pem", "sha1WithRSAEncryption"),
        ("weak-leaf.pem", "weak.pem", "RSA 1024 bits"),
    ] {
        let chain = [rustls_pki_types::CertificateDer::from(der_of(
            &d.join(leaf),
        ))];
        let bundle = [Certificate::from_der(&der_of(&d.join(ca))).unwrap()];
        let diagnosis = diagnose(&chain, &bundle, &name, now);
        let first = &diagnosis.causes[0];
        assert_eq!(first.code, "weak_algorithm", "{leaf}: {diagnosis:?}");
        assert!(first.message.contains(needle), "{leaf}: {diagnosis:?}");
    }
}

/// A Secret volume with one broken file is verified as the sidecar would publish
/// it (the good files), with a warning naming the broken one; and a server that
/// sends no intermediate, trusted only because the bundle holds it, is said so.
#[test]
fn secret_with_a_broken_file_and_a_server_omitting_its_intermediate() {
    tools::require("python3");
    let dir = tempfile::tempdir().unwrap();
    let c = Chain::new("Omit");
    let vol = AtomicWriter::new(&dir.path().join("secret"));
    vol.write(&[
        ("root.crt", c.root.pem().as_bytes()),
        ("intermediate.crt", c.intermediate.pem().as_bytes()),
        ("broken.crt", b"-----BEGIN CERTIFICATE-----\nAAAA\n"),
    ]);
    let leaf_only = format!("{}{}", c.leaf.pem(), c.leaf.key_pem());
    let server = HttpsServer::start(&leaf_only);

    let out = verify(server.port, vol.dir(), &["--servername", "localhost"]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert!(out.stdout.contains("TRUSTED"), "{}", out.text());
    let warnings: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("broken.crt") && w.contains("left out")),
        "{}",
        out.text()
    );
    assert!(
        out.stdout.contains("omits its intermediate")
            && out.stdout.contains("CN=Omit Test Intermediate CA"),
        "{}",
        out.text()
    );

    // JSON says the same; a single broken bundle file is still a usage error.
    let json = verify(
        server.port,
        vol.dir(),
        &["--servername", "localhost", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON output");
    assert_eq!(v["verdict"], "trusted", "{v:#}");
    let said = |needle: &str| {
        v["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().unwrap().contains(needle)))
    };
    assert!(
        said("broken.crt") && said("omits its intermediate"),
        "{v:#}"
    );
    let broken = vol.dir().join("broken.crt");
    let out = verify(server.port, &broken, &[]);
    assert_eq!(out.code(), Some(2), "{}", out.text());
}

//! One certificate OpenSSL cannot decode must never break the bundle for every
//! OpenSSL client in the pod. Differential: well over 40 hostile subject,
//! issuer and extension encodings (`common::hostile_der`) sit in one Secret
//! beside a good CA; for each, real `openssl x509` says whether OpenSSL
//! decodes it. One it cannot decode must be an error of its file; whatever
//! is published must load in `openssl`, `curl` and Python's `ssl` and still
//! trust the good CA, and every hostile certificate in `certs/` must carry the
//! name `openssl x509 -hash` gives it.

mod common;

use common::bundle::{hashed_dir_map, sha256_hex, BUNDLE};
use common::daemon::Fixture;
use common::hostile_der::{cases, Case};
use common::https::HttpsServer;
use common::tools::{curl, openssl_verify, python, require, Trust};
use common::{faulty, pki};
use std::collections::BTreeMap;

/// What `openssl x509 -hash` makes of a DER certificate (`None`: OpenSSL cannot decode it).
fn openssl_decodes(der: &[u8]) -> Option<String> {
    common::openssl::x509_hash_der(der)
}

/// The state and error `/status` gives the Secret file `key`.
fn file_status(status: &serde_json::Value, key: &str) -> (String, String) {
    let files = status["sources"][0]["files"].as_array().expect("files");
    let f = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap_or("")
                .ends_with(&format!("/{key}"))
        })
        .unwrap_or_else(|| panic!("{key} not in /status: {status:#}"));
    (
        f["state"].as_str().unwrap_or("").to_string(),
        f["error"].as_str().unwrap_or("").to_string(),
    )
}

fn files_in_error(status: &serde_json::Value) -> usize {
    status["sources"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "error")
        .count()
}

#[test]
fn no_hostile_certificate_breaks_the_bundle_for_real_clients() {
    require("openssl");
    let root = pki::root("Good Root");
    let leaf = root.leaf("localhost");
    let spki = rcgen::KeyPair::generate().unwrap().public_key_der();
    let all: Vec<Case> = cases(&spki);
    assert!(all.len() >= 40, "only {} cases", all.len());

    let keys: Vec<String> = (0..all.len())
        .map(|i| format!("hostile-{i:03}.pem"))
        .collect();
    let pems: Vec<String> = all.iter().map(|c| pki::pem_of_der(&c.der)).collect();
    let mut payload: Vec<(&str, &[u8])> = vec![("good.pem", root.pem().leak().as_bytes())];
    for (k, p) in keys.iter().zip(&pems) {
        payload.push((k, p.as_bytes()));
    }
    let fixture = Fixture::with_secret(&payload);
    let mut daemon = fixture.daemon().start();
    let status = daemon.status();

    let bundle = fixture.out.join(BUNDLE);
    let published = std::fs::read_to_string(&bundle).unwrap();
    let certs_dir = fixture.out.join("certs");
    let hashed: BTreeMap<String, String> = hashed_dir_map(&certs_dir, true);
    let mut decoded_but_refused = Vec::new();
    let mut failures = Vec::new();
    for ((case, key), pem) in all.iter().zip(&keys).zip(&pems) {
        let openssl = openssl_decodes(&case.der);
        let (state, error) = file_status(&status, key);
        let in_bundle = published.contains(pem.as_str());
        match (&openssl, state.as_str(), in_bundle) {
            (None, "error", false) => {}
            (Some(_), "error", false) => decoded_but_refused.push(&case.label),
            (Some(hash), "ok", true) => {
                let named = hashed
                    .iter()
                    .find(|(_, sha)| **sha == sha256_hex(&case.der))
                    .map(|(name, _)| name.clone());
                match named {
                    Some(n) if n.starts_with(&format!("{hash}.")) => {}
                    other => failures.push(format!(
                        "{}: in certs/ as {other:?}, openssl hash {hash}",
                        case.label
                    )),
                }
            }
            _ => failures.push(format!(
                "{}: openssl decodes: {:?}, /status {state} {error:?}, in bundle: {in_bundle}",
                case.label,
                openssl.is_some()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Refusing more than OpenSSL is safe, but only these are refused on
    // purpose: BER's constructed strings (DER forbids them, OpenSSL
    // reassembles them) and a date that is no date (OpenSSL only reads it
    // when it verifies; the sidecar needs it to drop expired CAs).
    const ON_PURPOSE: [&str; 2] = ["constructed UTF8String", "UTCTime with a month 13"];
    assert!(
        decoded_but_refused
            .iter()
            .all(|l| ON_PURPOSE.iter().any(|p| l.ends_with(p))),
        "OpenSSL loads these, the sidecar refuses them: {decoded_but_refused:#?}"
    );

    // Each refusal is a file in error, counted and keeping the sidecar unready.
    let in_error = files_in_error(&status);
    assert!(in_error > 40, "only {in_error} files in error");
    assert_eq!(
        daemon.metric("trust_injector_source_files_in_error"),
        Some(in_error as f64)
    );
    assert_eq!(daemon.get("/readyz").0, 503);

    // Whatever was published loads in every real client and trusts the root.
    let server = HttpsServer::start(&faulty::server_pem(&[&leaf]));
    let dir = tempfile::tempdir().unwrap();
    let leaf_path = dir.path().join("leaf.pem");
    std::fs::write(&leaf_path, leaf.pem()).unwrap();
    for trust in [Trust::File(&bundle), Trust::Dir(&certs_dir)] {
        let v = openssl_verify(trust, &leaf_path, &leaf_path);
        assert!(v.ok(), "openssl verify {trust:?}:\n{}", v.text());
        let c = curl(server.port, trust);
        assert!(c.ok(), "curl {trust:?}:\n{}", c.text());
        let p = python(server.port, trust);
        assert!(p.ok(), "python {trust:?}:\n{}", p.text());
    }
    // And `run --once` agrees: a file in error is a failed run.
    let out = tempfile::tempdir().unwrap();
    let once = common::run_once_on(fixture.secret.dir(), "none", out.path(), &[]);
    assert_ne!(once.code(), Some(0), "{}", once.text());
    daemon.stop();
}

#[test]
fn a_rotation_to_a_certificate_openssl_cannot_decode_keeps_the_last_good() {
    use common::hostile_der::{certificate, name_of, tlv};
    let root = pki::root("Last Good Root");
    let fixture = Fixture::with_ca(&root.pem());
    let mut daemon = fixture.daemon().no_debounce().start();
    daemon.wait_bundle("the good root", |b| b == [root.sha256()]);

    let spki = rcgen::KeyPair::generate().unwrap().public_key_der();
    let name = name_of(&[tlv(0x0c, b"bad \xff UTF-8")]);
    let hostile = pki::pem_of_der(&certificate(7, &name, &name, &spki, Some(&[])));
    fixture.secret.write(&[("ca.crt", hostile.as_bytes())]);
    daemon.wait_status("ca.crt in error", |s| files_in_error(s) == 1);
    let (_, error) = file_status(&daemon.status(), "ca.crt");
    assert!(error.contains("OpenSSL cannot load"), "{error}");
    assert_eq!(
        common::bundle::read_bundle(&fixture.out).unwrap(),
        [root.sha256()]
    );
    daemon.stop();
}

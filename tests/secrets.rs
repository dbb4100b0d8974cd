//! Private keys never leak: fed in every position, in every common encoding,
//! no run of their bytes appears in the bundle, the hashed directory, the logs,
//! /status or /metrics, in any encoding (tests/common/leak.rs).

mod common;

use common::bundle::read_bundle;
use common::daemon::Fixture;
use common::leak::{self, Key};
use common::openssl::openssl;
use common::pki;
use common::tools::require;
use common::{wait_until, write_file, PATIENCE};
use std::path::Path;

/// Private keys as PEM: PKCS#8, PKCS#1 RSA, SEC1 EC, encrypted PKCS#8.
fn keys(dir: &Path) -> Vec<(String, String)> {
    require("openssl");
    let run = |args: &[&str]| openssl(dir, args);
    run(&["genrsa", "-traditional", "-out", "rsa.pem", "2048"]);
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec.pem",
    ]);
    run(&["genpkey", "-algorithm", "ed25519", "-out", "p8.pem"]);
    run(&[
        "pkcs8", "-topk8", "-in", "ec.pem", "-v2", "aes256", "-passout", "pass:x", "-out",
        "enc.pem",
    ]);
    let mut out: Vec<(String, String)> = ["rsa.pem", "ec.pem", "p8.pem", "enc.pem"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap()))
        .collect();
    out.push(("rcgen".into(), pki::root("Key Owner").key_pem()));
    out
}

#[test]
fn private_keys_never_appear_in_any_output() {
    let f = Fixture::new();
    let keydir = f.path().join("keys");
    std::fs::create_dir(&keydir).unwrap();
    let keys = keys(&keydir);
    let out = &f.out;
    let src = f.path().join("src");
    let a = pki::root("Secret Test A");
    let b = pki::root("Secret Test B");

    // Every position: alone, before, after, between, with a broken block, as DER.
    for (i, (name, key)) in keys.iter().enumerate() {
        write_file(&src.join(format!("{i}-only-{name}")), key);
        write_file(
            &src.join(format!("{i}-before-{name}")),
            format!("{key}{}", a.pem()),
        );
        write_file(
            &src.join(format!("{i}-after-{name}")),
            format!("{}{key}", a.pem()),
        );
        write_file(
            &src.join(format!("{i}-between-{name}")),
            format!("{}{key}{}", a.pem(), b.pem()),
        );
        write_file(
            &src.join(format!("{i}-broken-{name}")),
            format!("{key}-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"),
        );
        let der = {
            use base64::Engine;
            let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        };
        write_file(&src.join(format!("{i}-der-{name}")), der);
    }

    let d = f
        .daemon_on(&src)
        .resync(0)
        // Its state file in the out-dir is one more output to search.
        .args(["--retain-removed", "1h"])
        .env("TRUST_INJECTOR_LOG", "trace")
        .start();
    wait_until(PATIENCE, "the certificates next to the keys", || {
        read_bundle(out).is_some_and(|b| b.len() == 2)
    });

    let places = leak::daemon_outputs(&d);
    assert!(places.len() > 5, "published files found");
    assert!(
        String::from_utf8_lossy(&places[0].1)
            .to_ascii_lowercase()
            .contains("private key"),
        "the skipped keys are warned about"
    );
    let keys: Vec<Key> = keys
        .iter()
        .map(|(name, pem)| Key::from_pem(name, pem))
        .collect();
    leak::assert_no_key_material(&keys, &places);
}

#[test]
fn the_leak_check_sees_every_encoding_of_every_kind_of_key() {
    // The check above passes vacuously if its decoders are broken; this
    // feeds it each encoding a careless log line would produce.
    let tmp = tempfile::tempdir().unwrap();
    for (name, pem) in keys(tmp.path()) {
        leak::assert_detects_every_encoding(&Key::from_pem(&name, &pem));
    }
}

//! Private keys never leak: fed in every position, in every common encoding,
//! no run of their bytes appears in the bundle, the hashed directory, the logs,
//! /status or /metrics.

mod common;

use common::bundle::read_bundle;
use common::daemon::Daemon;
use common::pki;
use common::tools::{clean_command, require};
use common::{wait_until, write_file, PATIENCE};
use std::path::Path;

/// Private keys as PEM: PKCS#8, PKCS#1 RSA, SEC1 EC, encrypted PKCS#8.
fn keys(dir: &Path) -> Vec<(String, String)> {
    require("openssl");
    let run = |args: &[&str]| {
        let o = clean_command("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
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

/// The runs of a key that must never appear: every 24-character window of its
/// base64 body (a shorter run could occur by chance in other base64).
fn needles(pem: &str) -> Vec<String> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let chars: Vec<char> = body.chars().collect();
    chars
        .windows(24)
        .step_by(6)
        .map(|w| w.iter().collect())
        .collect()
}

#[test]
fn private_keys_never_appear_in_any_output() {
    let tmp = tempfile::tempdir().unwrap();
    let keydir = tmp.path().join("keys");
    std::fs::create_dir(&keydir).unwrap();
    let keys = keys(&keydir);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let src = tmp.path().join("src");
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

    let d = Daemon::builder(&out)
        .args(["--base", "none", "--resync", "0"])
        .env("TRUST_INJECTOR_LOG", "trace")
        .arg("--source")
        .arg(&src)
        .start();
    wait_until(PATIENCE, "the certificates next to the keys", || {
        read_bundle(&out).is_some_and(|b| b.len() == 2)
    });

    let mut haystacks: Vec<(String, String)> = vec![
        ("logs".into(), d.logs()),
        ("/status".into(), d.get("/status").1),
        ("/metrics".into(), d.metrics()),
    ];
    let walk = walkdir(&out);
    assert!(walk.len() > 2, "published files found: {walk:?}");
    for path in walk {
        let bytes = std::fs::read(&path).unwrap();
        haystacks.push((
            path.display().to_string(),
            String::from_utf8_lossy(&bytes).into(),
        ));
    }
    assert!(
        haystacks[0].1.to_ascii_lowercase().contains("private key"),
        "the skipped keys are warned about"
    );
    for (name, key) in &keys {
        for needle in needles(key) {
            for (where_, text) in &haystacks {
                assert!(
                    !text.contains(&needle),
                    "bytes of key {name} found in {where_}"
                );
            }
        }
    }
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

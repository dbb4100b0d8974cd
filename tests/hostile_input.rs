//! A corpus of hostile inputs, fed to a running daemon that already published
//! a good CA. Each gets a clear error (or the documented treatment), the good
//! CA stays published, nothing panics, and memory stays bounded.

mod common;

use common::bundle::{read_bundle, BUNDLE};
use common::daemon::Fixture;
use common::pki;
use common::{error_about, wait_for_else, wait_until, write_file, PATIENCE};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// A certificate whose subject tries to inject lines and PEM markers.
fn evil_subject_cert() -> Vec<u8> {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        "evil\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMIIB\r\n# x\"}{",
    );
    dn.push(DnType::OrganizationName, "Quote \" Backslash \\ Tab \t");
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn pem_block(label: &str, body: &str) -> String {
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

/// DER that nests SEQUENCEs `depth` deep inside a CERTIFICATE block.
fn deeply_nested(depth: usize) -> Vec<u8> {
    let mut der = vec![0x05, 0x00];
    for _ in 0..depth {
        let len = der.len();
        let mut next = vec![0x30, 0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        next.extend_from_slice(&der);
        der = next;
    }
    der
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    let s = base64::engine::general_purpose::STANDARD.encode(bytes);
    s.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn vm_hwm_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn hostile_files_are_errors_for_themselves_alone() {
    let f = Fixture::new();
    let (tmp, out) = (f.path(), &f.out);
    let src = tmp.join("src");
    let good = pki::root("Good CA");
    good.write_pem(&src.join("good.crt"));
    let d = f.daemon_on(&src).resync(0).start();
    wait_until(PATIENCE, "good CA", || {
        read_bundle(out).is_some_and(|b| b == vec![good.sha256()])
    });

    let cert_pem = good.pem();
    let body: String = cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n");
    // (file name, bytes, words the file's error must contain)
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.pem",
            cert_pem.as_bytes()[..cert_pem.len() / 2].to_vec(),
            "no END line",
        ),
        (
            "garbage-pem.pem",
            pem_block("CERTIFICATE", "!!!not base64 at all!!!").into_bytes(),
            "base64",
        ),
        (
            "headers.pem",
            pem_block(
                "CERTIFICATE",
                &format!("Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{body}"),
            )
            .into_bytes(),
            "base64",
        ),
        (
            "nul-in-base64.pem",
            pem_block("CERTIFICATE", &body.replacen('A', "A\0", 3)).into_bytes(),
            "base64",
        ),
        (
            "ten-thousand.pem",
            cert_pem.repeat(10_000).into_bytes(),
            "larger than",
        ),
        (
            "deep-asn1.pem",
            pem_block("CERTIFICATE", &b64(&deeply_nested(100_000))).into_bytes(),
            "certificate block 1",
        ),
        (
            "oversized-length.der",
            vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00],
            "neither PEM nor",
        ),
        (
            "huge-line.pem",
            pem_block("CERTIFICATE", &"QUFB".repeat(200_000)).into_bytes(),
            "certificate block 1",
        ),
        (
            "random.bin",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "neither PEM nor",
        ),
        ("empty.pem", Vec::new(), "empty"),
    ];
    for (name, bytes, _) in &cases {
        write_file(&src.join(name), bytes);
    }
    // A non-UTF-8, a 255-byte name, and a symlink pointing outside the source.
    let weird = src.join(OsStr::from_bytes(b"ca-\xff\xfe.crt"));
    let weird_ca = pki::root("Weird Name CA");
    weird_ca.write_pem(&weird);
    let long_ca = pki::root("Long Name CA");
    long_ca.write_pem(&src.join(format!("{}.crt", "l".repeat(251))));
    let outside = tmp.join("outside.crt");
    let outside_ca = pki::root("Outside CA");
    outside_ca.write_pem(&outside);
    std::os::unix::fs::symlink(&outside, src.join("escape.crt")).unwrap();
    // A link out of the source whose target's name tries to start log lines of
    // its own (the skip reason names the target).
    let crafted = tmp.join("x\n-----BEGIN CERTIFICATE-----\nMIIB");
    outside_ca.write_pem(&crafted);
    std::os::unix::fs::symlink(&crafted, src.join("crafted-link.crt")).unwrap();
    let evil = evil_subject_cert();
    write_file(&src.join("evil.der"), &evil);
    let evil_sha = common::bundle::sha256_hex(&evil);

    wait_until(PATIENCE, "every hostile file reported", || {
        let status = d.status();
        cases
            .iter()
            .all(|(name, _, _)| error_about(&status, name).is_some())
    });
    d.assert_running("after the hostile corpus");
    wait_until(PATIENCE, "the crafted link reported as skipped", || {
        d.status().to_string().contains("crafted-link.crt")
    });
    let status = d.status();
    for (name, _, words) in &cases {
        let err = error_about(&status, name).unwrap().to_string();
        assert!(
            err.contains(words),
            "{name}: error {err} should say {words:?}"
        );
    }
    let taken = |b: &Vec<String>| {
        b.contains(&weird_ca.sha256()) && b.contains(&long_ca.sha256()) && b.contains(&evil_sha)
    };
    wait_for_else(
        PATIENCE,
        || {
            format!(
                "valid weird-named files not taken; status: {}\nlogs:\n{}",
                d.status(),
                d.logs()
            )
        },
        || read_bundle(out).filter(|b| taken(b)),
    );
    let bundle = read_bundle(out).unwrap();
    assert!(bundle.contains(&good.sha256()), "the good CA is kept");
    assert!(
        !bundle.contains(&outside_ca.sha256()),
        "a symlink out of the source is not followed"
    );

    // The crafted subject adds no line and no marker to the bundle.
    let text = std::fs::read_to_string(out.join(BUNDLE)).unwrap();
    let begins = text.lines().filter(|l| l.starts_with("-----BEGIN")).count();
    let ends = text.lines().filter(|l| l.starts_with("-----END")).count();
    assert_eq!((begins, ends), (bundle.len(), bundle.len()), "{text}");
    for line in text.lines() {
        assert!(
            line.starts_with("# ")
                || line.starts_with("-----")
                || line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
            "unexpected bundle line {line:?}"
        );
    }
    // Nor to the logs or the metrics exposition.
    let logs = d.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(
        !logs
            .lines()
            .any(|l| l.starts_with("-----") || l.starts_with("MIIB")),
        "a subject broke a log line:\n{logs}"
    );
    let metrics = d.metrics();
    for line in metrics.lines() {
        assert!(
            line.starts_with('#') || line.starts_with("trust_injector_"),
            "metric line {line:?}"
        );
    }
    assert!(metrics.contains(&evil_sha));
    // Memory stays bounded: a 5 MiB file is refused before it is read whole.
    let hwm = vm_hwm_kib(d.pid());
    assert!(hwm < 128 * 1024, "peak RSS {hwm} KiB");
}

//! PEM that OpenSSL reads is read; PEM that looks like a certificate but that
//! OpenSSL would skip or refuse is an error of its file, never "empty". Real
//! `openssl crl2pkcs7 -nocrl -certfile` is the judge of what OpenSSL takes,
//! and a rotation through the kubelet's AtomicWriter shows the CA is no
//! longer dropped silently.

mod common;

use common::bundle::{fingerprints, sha256_hex};
use common::daemon::Fixture;
use common::openssl::openssl;
use common::pki;
use common::tools::{clean_command, require, run};
use std::path::Path;
use std::time::Duration;

/// The certificates OpenSSL takes from `file`, as SHA-256 fingerprints
/// (none when it refuses the file).
fn openssl_takes(file: &Path) -> Vec<String> {
    let mut p7 = clean_command("openssl");
    p7.args(["crl2pkcs7", "-nocrl", "-certfile"]).arg(file);
    let p7 = run(&mut p7, Duration::from_secs(30));
    if !p7.ok() {
        return Vec::new();
    }
    let dir = tempfile::tempdir().unwrap();
    let p7_file = dir.path().join("p7.pem");
    std::fs::write(&p7_file, &p7.stdout).unwrap();
    let mut certs = clean_command("openssl");
    certs.args(["pkcs7", "-print_certs", "-in"]).arg(&p7_file);
    let certs = run(&mut certs, Duration::from_secs(30));
    assert!(certs.ok(), "{}", certs.text());
    fingerprints(&certs.stdout).unwrap()
}

/// What `inspect --json` makes of `file`: the fingerprints taken, and the
/// file's error if it is in error.
fn ours(file: &Path) -> (Vec<String>, Option<String>) {
    let mut cmd = common::trust_injector();
    cmd.args(["inspect", "--json"]).arg(file);
    let out = run(&mut cmd, Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}\n{}", out.text()));
    let taken = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha256"].as_str().unwrap().to_string())
        .collect();
    let error = v["errors"]
        .as_array()
        .unwrap()
        .first()
        .map(|e| e["error"].to_string());
    (taken, error)
}

/// What the sidecar must do with a file.
#[derive(Debug, PartialEq)]
enum Want {
    /// Take every certificate in it, as OpenSSL does.
    TakeAll,
    /// Call the file in error: OpenSSL would skip or refuse a certificate in it.
    Error,
    /// Call the file in error although OpenSSL reads it: trust settings the
    /// bundle cannot carry.
    ErrorTrustSettings,
}

fn relabel(pem: &str, label: &str) -> String {
    pem.replace("CERTIFICATE-----", &format!("{label}-----"))
}

#[test]
fn takes_what_openssl_takes_and_calls_the_rest_an_error() {
    require("openssl");
    let (a, b) = (pki::root("PEM Form A"), pki::root("PEM Form B"));
    let (a, b) = (a.pem(), b.pem());
    let dir = tempfile::tempdir().unwrap();
    let trusted = |extra: &[&str]| {
        std::fs::write(dir.path().join("a.pem"), &a).unwrap();
        let mut args = vec!["x509", "-in", "a.pem", "-trustout", "-out", "t.pem"];
        args.extend_from_slice(extra);
        openssl(dir.path(), &args);
        std::fs::read_to_string(dir.path().join("t.pem")).unwrap()
    };
    let bom = "\u{feff}";
    let cases: Vec<(&str, String, usize, Want)> = vec![
        (
            "BOM before the first block",
            format!("{bom}{a}"),
            1,
            Want::TakeAll,
        ),
        (
            "BOM before the second block",
            format!("{a}{bom}{b}"),
            2,
            Want::TakeAll,
        ),
        (
            "X509 CERTIFICATE label",
            relabel(&a, "X509 CERTIFICATE"),
            1,
            Want::TakeAll,
        ),
        (
            "TRUSTED CERTIFICATE, no settings",
            relabel(&a, "TRUSTED CERTIFICATE"),
            1,
            Want::TakeAll,
        ),
        (
            "TRUSTED CERTIFICATE for serverAuth",
            trusted(&["-addtrust", "serverAuth", "-setalias", "ca"]),
            1,
            Want::TakeAll,
        ),
        (
            "CRLF line ends",
            format!("{a}{b}").replace('\n', "\r\n"),
            2,
            Want::TakeAll,
        ),
        (
            "markers with trailing blanks",
            format!("{a}{b}").replace("-----\n", "-----  \n"),
            2,
            Want::TakeAll,
        ),
        (
            "joined without a newline",
            format!("{}{b}", a.trim_end()),
            2,
            Want::Error,
        ),
        (
            "text before a BEGIN on its line",
            format!("{a}junk{b}"),
            2,
            Want::Error,
        ),
        ("indented BEGIN", format!("{a}  {b}"), 2, Want::Error),
        ("two BOMs", format!("{bom}{bom}{a}"), 1, Want::Error),
        (
            "lower-case label",
            format!("{a}{}", b.replace("CERTIFICATE", "certificate")),
            2,
            Want::Error,
        ),
        (
            "END label differs",
            format!(
                "{a}{}",
                b.replacen("END CERTIFICATE", "END X509 CERTIFICATE", 1)
            ),
            2,
            Want::Error,
        ),
        (
            "TRUSTED CERTIFICATE rejecting clientAuth",
            trusted(&["-addtrust", "serverAuth", "-addreject", "clientAuth"]),
            1,
            Want::ErrorTrustSettings,
        ),
        (
            "TRUSTED CERTIFICATE for clientAuth only",
            trusted(&["-addtrust", "clientAuth"]),
            1,
            Want::ErrorTrustSettings,
        ),
    ];
    let in_file = |n: usize| -> Vec<String> {
        let all = [sha256_hex(&pki_der(&a)), sha256_hex(&pki_der(&b))];
        all[..n].to_vec()
    };
    let mut failures = Vec::new();
    for (label, text, n, want) in cases {
        let file = dir.path().join("case.pem");
        std::fs::write(&file, &text).unwrap();
        let theirs = openssl_takes(&file);
        let (taken, error) = ours(&file);
        let mut expected = in_file(n);
        expected.sort();
        let mut theirs_sorted = theirs.clone();
        theirs_sorted.sort();
        let ok = match want {
            Want::TakeAll => {
                error.is_none() && sorted(taken.clone()) == expected && theirs_sorted == expected
            }
            Want::Error => error.is_some() && theirs.len() < n,
            Want::ErrorTrustSettings => error.is_some() && theirs_sorted == expected,
        };
        if !ok {
            failures.push(format!(
                "{label}: want {want:?}; openssl takes {}, the sidecar {} with error {error:?}",
                theirs.len(),
                taken.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The DER of a single-certificate PEM.
fn pki_der(pem: &str) -> Vec<u8> {
    common::bundle::parse_pem_certs(pem).unwrap().remove(0)
}

#[test]
fn a_rotation_to_pem_openssl_reads_keeps_the_ca_and_a_broken_join_keeps_the_last_good() {
    let (old, new) = (pki::root("Rotation Old"), pki::root("Rotation New"));
    let fixture = Fixture::with_ca(&old.pem());
    let mut daemon = fixture.daemon().no_debounce().start();
    daemon.wait_bundle("the old CA", |b| b == [old.sha256()]);

    // The new CA, saved by an editor that writes a byte-order mark.
    let with_bom = format!("\u{feff}{}", new.pem());
    fixture.secret.write(&[("ca.crt", with_bom.as_bytes())]);
    daemon.wait_bundle("the new CA, read through its BOM", |b| b == [new.sha256()]);

    // Both CAs, joined without a newline: OpenSSL refuses the file, so the
    // file is in error and the new CA it last gave stays published.
    let joined = format!("{}{}", new.pem().trim_end(), old.pem());
    fixture.secret.write(&[("ca.crt", joined.as_bytes())]);
    daemon.wait_status("ca.crt in error", |s| {
        s["sources"][0]["files"][0]["state"] == "error"
    });
    assert_eq!(
        daemon.metric("trust_injector_source_files_in_error"),
        Some(1.0)
    );
    assert_eq!(
        common::bundle::read_bundle(&fixture.out).unwrap(),
        [new.sha256()]
    );
    daemon.stop();
}

//! `trust-injector inspect PATH...`: Secret volumes, bundles, hashed
//! directories and DER files; bad files reported per file; the same warnings
//! as the publish loop. Weak-key and SHA-1 certificates are made with the
//! `openssl` program (rcgen cannot), so those tests need it and fail without it.

mod common;

use common::atomic_writer::AtomicWriter;
use common::daemon::Fixture;
use common::faulty;
use common::openssl;
use common::pki::{self, Chain};
use common::tools::{self, Out};
use common::{s, trust_injector};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn inspect(args: &[&str]) -> Out {
    let mut cmd = trust_injector();
    cmd.arg("inspect").args(args);
    tools::run(&mut cmd, Duration::from_secs(60))
}

fn inspect_json(paths: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(paths);
    let out = inspect(&args);
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect --json output is JSON ({e})\n{}", out.text()));
    (out.code(), v)
}

/// The certificate objects of a report whose subject is `subject`.
fn by_subject<'a>(v: &'a Value, subject: &str) -> Vec<&'a Value> {
    v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["subject"] == subject)
        .collect()
}

fn warning_codes(c: &Value) -> Vec<String> {
    c["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn secret_volume_with_a_bad_file_lists_the_rest_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let c = Chain::new("Vol");
    let vol = AtomicWriter::new(&dir.path().join("secret"));
    vol.write(&[
        ("root.crt", c.root.pem().as_bytes()),
        ("intermediate.crt", c.intermediate.pem().as_bytes()),
        ("broken.crt", b"-----BEGIN CERTIFICATE-----\nAAAA\n"),
    ]);
    let secret = s(vol.dir());

    let out = inspect(&[secret]);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    let header = out.stdout.lines().next().unwrap_or_default();
    for col in [
        "SUBJECT",
        "ISSUER",
        "NOT AFTER",
        "DAYS",
        "CA",
        "SELF",
        "SHA256",
        "FILE",
    ] {
        assert!(header.contains(col), "header has {col}: {header}");
    }
    let root_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("CN=Vol Test Root CA "))
        .unwrap_or_else(|| panic!("root row\n{}", out.text()));
    assert!(root_line.contains(&c.root.sha256()[..12]), "{root_line}");
    assert!(
        root_line.ends_with("/root.crt") && !root_line.contains("..data"),
        "the file as the user sees it, not ..data: {root_line}"
    );
    // --wide: whole paths and 16 digits of the SHA-256.
    let wide = inspect(&["--wide", secret]);
    let root_line = wide
        .stdout
        .lines()
        .find(|l| l.starts_with("CN=Vol Test Root CA "))
        .unwrap_or_else(|| panic!("root row\n{}", wide.text()));
    assert!(root_line.contains(&c.root.sha256()[..16]), "{root_line}");
    assert!(
        root_line.ends_with(&format!("{secret}/root.crt")),
        "the file as the user sees it, not ..data: {root_line}"
    );
    assert!(
        out.stdout
            .contains(&format!("error: {secret}/broken.crt: ")),
        "{}",
        out.text()
    );
    assert!(
        out.stdout
            .contains("2 certificate(s), 0 warning(s), 1 file(s) with errors"),
        "{}",
        out.text()
    );

    let (code, v) = inspect_json(&[secret]);
    assert_eq!(code, Some(1));
    assert_eq!(v["certificates"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(v["errors"][0]["file"], format!("{secret}/broken.crt"));
    let root = by_subject(&v, "CN=Vol Test Root CA")[0];
    assert_eq!(root["sha256"], c.root.sha256());
    assert_eq!(root["ca"], true);
    assert_eq!(root["self_signed"], true);
    assert_eq!(root["issuer"], "CN=Vol Test Root CA");
    assert_eq!(root["key_algorithm"], "EC");
    assert_eq!(root["key_bits"], 256);
    assert_eq!(root["signature_algorithm"], "ecdsa-with-SHA256");
    assert!(root["days_left"].as_i64().unwrap() >= 363, "{root:#}");
    for field in [
        "not_before",
        "not_after",
        "subject_hash",
        "issuer_hash",
        "expired",
        "index",
    ] {
        assert!(!root[field].is_null(), "{field} present: {root:#}");
    }
    let inter = by_subject(&v, "CN=Vol Test Intermediate CA")[0];
    assert_eq!(inter["self_signed"], false);
    assert!(
        warning_codes(inter).is_empty(),
        "its root is listed too: {inter:#}"
    );
}

#[test]
fn anchor_warnings_match_the_publish_loop() {
    let dir = Fixture::new();
    let c = Chain::new("Warn");
    let soon = faulty::intermediate_valid_for(&c.root, "Warn Soon Intermediate", 7);
    let secret = dir.path().join("secret");
    common::write_file(&secret.join("intermediate.crt"), c.intermediate.pem());
    // 90 days: the chain's own leaf (30 days) would also count as expiring soon.
    let leaf = pki::signed(pki::leaf_params("localhost"), &c.intermediate);
    common::write_file(&secret.join("leaf.crt"), leaf.pem());
    common::write_file(&secret.join("soon.crt"), soon.pem());

    let (code, v) = inspect_json(&[s(&secret)]);
    assert_eq!(code, Some(0), "{v:#}");
    let inter = by_subject(&v, "CN=Warn Test Intermediate CA")[0];
    assert_eq!(warning_codes(inter), vec!["missing_root"], "{inter:#}");
    assert!(inter["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .contains(".NET"));
    let leaf = by_subject(&v, "CN=localhost")[0];
    assert!(
        warning_codes(leaf).contains(&"not_ca".to_string()),
        "{leaf:#}"
    );
    let soon_row = by_subject(&v, "CN=Warn Soon Intermediate")[0];
    assert!(
        warning_codes(soon_row).contains(&"expires_soon".to_string()),
        "{soon_row:#}"
    );

    // The text table carries the same warnings under each row.
    let out = inspect(&[s(&secret)]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert!(
        out.stdout.contains("    warning: missing_root: "),
        "{}",
        out.text()
    );
    assert!(
        out.stdout.contains("    warning: expires_soon: "),
        "{}",
        out.text()
    );

    // And /status of the sidecar says the same, from the same checks.
    let mut d = dir.daemon().start();
    d.wait_ready();
    let status = d.status();
    let certs = status["custom_certificates"].as_array().unwrap();
    let status_inter = certs
        .iter()
        .find(|c| c["subject"] == "CN=Warn Test Intermediate CA")
        .unwrap();
    // One shape everywhere: {code, message}, the same in /status as in inspect --json.
    assert_eq!(
        status_inter["warnings"][0], inter["warnings"][0],
        "{status_inter:#}"
    );
    assert_eq!(
        d.metric("trust_injector_certificates_expiring_soon"),
        Some(1.0),
        "{}",
        d.metrics()
    );
    // The .NET mistake (an intermediate without its root) is a metric an alert can see;
    // every code is exported, zero included.
    let metrics = d.metrics();
    // Both intermediates lack their root; the leaf is no CA.
    for (code, want) in [("missing_root", 2), ("not_ca", 1), ("weak_key", 0)] {
        let line = format!("trust_injector_certificate_warnings{{code=\"{code}\"}} {want}");
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    // And the log line carries the same code and message.
    let logs = d.logs();
    let line = common::log_lines_about(&logs, "code=missing_root", &["warn"]);
    assert!(
        line.iter()
            .any(|l| l.contains(inter["warnings"][0]["message"].as_str().unwrap())),
        "{logs}"
    );
    d.stop();
}

#[test]
fn weak_keys_and_sha1_signatures_are_flagged() {
    tools::require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A self-signed RSA-1024 CA: weak key (its SHA-1 self-signature is not
    // flagged: nobody checks an anchor's own signature).
    openssl::self_signed_ca(d, "weak", "Weak RSA CA", 1024, "-sha1");
    // A strong CA that signs an intermediate with SHA-1.
    openssl::self_signed_ca(d, "ca", "Strong RSA CA", 2048, "-sha256");
    openssl::request(d, "sha1", "SHA1 Intermediate");
    common::write_file(&d.join("ext.cnf"), "basicConstraints=critical,CA:TRUE\n");
    openssl::sign_request(d, "sha1", "ca", ("-sha1", 90), "ext.cnf", "sha1.pem");

    let (code, v) = inspect_json(&[
        s(&d.join("weak.pem")),
        s(&d.join("ca.pem")),
        s(&d.join("sha1.pem")),
    ]);
    assert_eq!(code, Some(0), "{v:#}");
    let weak = by_subject(&v, "CN=Weak RSA CA")[0];
    assert_eq!(weak["key_algorithm"], "RSA");
    assert_eq!(weak["key_bits"], 1024);
    assert_eq!(warning_codes(weak), vec!["weak_key"], "{weak:#}");
    let strong = by_subject(&v, "CN=Strong RSA CA")[0];
    assert_eq!(strong["key_bits"], 2048);
    assert!(warning_codes(strong).is_empty(), "{strong:#}");
    let sha1 = by_subject(&v, "CN=SHA1 Intermediate")[0];
    assert_eq!(sha1["signature_algorithm"], "sha1WithRSAEncryption");
    assert_eq!(warning_codes(sha1), vec!["weak_signature"], "{sha1:#}");
}

#[test]
fn hashed_directory_bundle_and_der_files() {
    let dir = Fixture::new();
    let c = Chain::new("Hashed");
    let src = dir.path().join("src");
    common::write_file(
        &src.join("ca.crt"),
        format!("{}{}", c.root.pem(), c.intermediate.pem()),
    );
    let out_dir = &dir.out;
    common::publish_once(&src, "none", out_dir, &["--listen", "off"]);

    // certs/ is a symlink to a versioned directory of <hash>.<n> files.
    let certs = out_dir.join(common::bundle::CERTS);
    let (code, v) = inspect_json(&[s(&certs)]);
    assert_eq!(code, Some(0), "{v:#}");
    let rows = v["certificates"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v:#}");
    for r in rows {
        let file = r["file"].as_str().unwrap();
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(r["subject_hash"].as_str().unwrap()),
            "{name} is named by its subject hash: {r:#}"
        );
        assert!(file.starts_with(s(&certs)), "path under certs/: {file}");
    }

    // The bundle lists the same certificates.
    let (code, v) = inspect_json(&[s(&out_dir.join(common::bundle::BUNDLE))]);
    assert_eq!(code, Some(0));
    let mut shas: Vec<&str> = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sha256"].as_str().unwrap())
        .collect();
    shas.sort();
    let mut want = vec![c.root.sha256(), c.intermediate.sha256()];
    want.sort();
    assert_eq!(shas, want);

    // A DER file is read; a missing path is an error of its own; exit 1.
    let der = dir.path().join("leaf.der");
    common::write_file(&der, c.leaf.der());
    let missing = dir.path().join("nope.pem");
    let out = inspect(&[s(&der), s(&missing)]);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(out.stdout.contains("CN=localhost"), "{}", out.text());
    assert!(
        out.stdout
            .contains(&format!("error: {}: no such file", s(&missing))),
        "{}",
        out.text()
    );
    let ok = inspect(&[s(&der)]);
    assert_eq!(ok.code(), Some(0), "{}", ok.text());
}

#[test]
fn a_whole_tls_secret_is_a_warning_as_in_the_sidecar() {
    let dir = Fixture::new();
    let c = Chain::new("TlsSecret");
    let vol = AtomicWriter::new(&dir.path().join("tls-secret"));
    vol.write(&[
        ("ca.crt", c.root.pem().as_bytes()),
        ("tls.crt", c.server_pem().as_bytes()),
        ("tls.key", c.leaf.key_pem().as_bytes()),
    ]);
    let secret = s(vol.dir());
    let out = inspect(&[secret]);
    assert_eq!(
        out.code(),
        Some(0),
        "a key file is not an error:\n{}",
        out.text()
    );
    assert!(
        out.stdout
            .contains(&format!("warning: {secret}/tls.key: empty: ")),
        "{}",
        out.text()
    );
    assert!(!out.stdout.contains("error:"), "{}", out.text());
    assert!(
        !out.stdout.contains("BEGIN") && !out.stdout.contains("PRIVATE KEY-----"),
        "nothing of the key is printed:\n{}",
        out.text()
    );
    let (code, v) = inspect_json(&[secret]);
    assert_eq!(code, Some(0));
    assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{v:#}");
    assert_eq!(v["file_warnings"][0]["code"], "empty", "{v:#}");
    assert_eq!(v["file_warnings"][0]["file"], format!("{secret}/tls.key"));

    // The sidecar says the same of that file: `empty`, and exit 0 with --once.
    let once = common::run_once_on(vol.dir(), "none", &dir.out, &[]);
    assert_eq!(once.code(), Some(0), "{}", once.text());
}

/// A DN with several long attributes, like many public roots.
fn long_dn(cn: &str) -> rcgen::DistinguishedName {
    let mut d = rcgen::DistinguishedName::new();
    d.push(rcgen::DnType::CountryName, "US");
    d.push(
        rcgen::DnType::OrganizationName,
        "Example Trust Services Incorporated, a very long organisation name",
    );
    d.push(
        rcgen::DnType::OrganizationalUnitName,
        "www.example.com/CPS is incorporated by reference, (c) 2026 Example",
    );
    d.push(rcgen::DnType::CommonName, cn);
    d
}

#[test]
fn rows_fit_a_terminal_and_wide_prints_everything() {
    let dir = tempfile::tempdir().unwrap();
    let long = common::pki::root_with_dn(long_dn(
        "Example Long Named Root Certification Authority - G2",
    ));
    let old = common::pki::expired_root("Inspect Expired Root");
    let deep = dir
        .path()
        .join("a/rather/deeply/nested/directory/of/secret/volumes/for/the/gateway");
    let file = deep.join("ca-chain-with-a-long-file-name.crt");
    common::write_file(&file, format!("{}{}", long.pem(), old.pem()));

    let out = inspect(&[s(&file)]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    // The other attributes go, the common name stays whole (the row grows instead).
    assert!(
        out.stdout
            .contains("CN=Example Long Named Root Certification Authority - G2  "),
        "a long subject is shortened to its whole common name:\n{}",
        out.stdout
    );
    assert!(!out.stdout.contains("OU=www.example.com"), "{}", out.stdout);
    assert!(
        out.stdout.contains("long-file-name.crt"),
        "the end of the path stays:\n{}",
        out.stdout
    );
    // inspect has no --keep-expired: the warning speaks of the sidecar.
    assert!(out.stdout.contains("warning: expired: "), "{}", out.stdout);
    assert!(!out.stdout.contains("kept because of"), "{}", out.stdout);
    assert!(
        out.stdout.contains("the sidecar drops it"),
        "{}",
        out.stdout
    );

    let wide = inspect(&["--wide", s(&file)]);
    assert_eq!(wide.code(), Some(0), "{}", wide.text());
    assert!(
        wide.stdout
            .contains("OU=www.example.com/CPS is incorporated by reference"),
        "--wide prints whole subjects:\n{}",
        wide.stdout
    );
    assert!(
        wide.stdout.contains(s(&file)),
        "and whole paths:\n{}",
        wide.stdout
    );
}

/// Two CAs that differ only at the end of their common name stay apart in the
/// table (no CN is cut), and a published bundle marks its base roots apart from
/// the custom certificates.
#[test]
fn common_names_stay_whole_and_custom_is_marked_apart_from_base() {
    let dir = Fixture::new();
    let root = common::pki::root_with_dn(long_dn("Contoso Example Root CA"));
    let one = root.intermediate("Contoso Example Issuing CA 1");
    let two = root.intermediate("Contoso Example Issuing CA 2");
    let src = dir.path().join("src");
    common::write_file(
        &src.join("chain.crt"),
        format!("{}{}{}", root.pem(), one.pem(), two.pem()),
    );

    let out = inspect(&[s(&src)]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    for n in [1, 2] {
        let cn = format!("CN=Contoso Example Issuing CA {n} ");
        let row = out.stdout.lines().find(|l| l.starts_with(&cn));
        assert!(
            row.is_some_and(|r| r.contains(" custom ")),
            "no custom row for {cn}:\n{}",
            out.stdout
        );
    }

    // The sidecar's own bundle: embedded public roots, then the custom chain.
    let once = tools::run(
        trust_injector()
            .args([
                "run", "--once", "--listen", "off", "--base", "embedded", "--source",
            ])
            .arg(&src)
            .arg("--out-dir")
            .arg(&dir.out),
        Duration::from_secs(60),
    );
    assert_eq!(once.code(), Some(0), "{}", once.text());
    let bundle = dir.out.join("ca-certificates.crt");
    let (code, v) = inspect_json(&[s(&bundle)]);
    assert_eq!(code, Some(0), "{v:#}");
    let rows = v["certificates"].as_array().unwrap();
    let origin = |o: &str| rows.iter().filter(|r| r["origin"] == o).count();
    assert_eq!(origin("custom"), 3, "{v:#}");
    assert_eq!(origin("base"), rows.len() - 3, "{v:#}");
    assert!(origin("base") > 100, "{v:#}");
    for r in rows.iter().filter(|r| r["origin"] == "base") {
        assert!(r["self_signed"] == true, "a base root: {r:#}");
    }
}

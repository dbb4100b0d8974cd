//! Command line: exit codes, messages that name the flag or path, environment
//! variables (a flag wins over its variable), --version.

mod common;

use common::bundle::{self, BUNDLE, CERTS};
use common::pki;
use common::tools::{self, Out};
use common::{run_once, run_once_ok, s, trust_injector, write_file};
use std::os::unix::fs::PermissionsExt;

use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn assert_usage_error(out: &Out, names: &[&str]) {
    assert_eq!(out.code(), Some(2), "expected exit 2:\n{}", out.text());
    let all = format!("{}{}", out.stderr, out.stdout);
    assert!(
        names.iter().any(|n| all.contains(n)),
        "the message names one of {names:?}:\n{}",
        out.text()
    );
}

/// A source directory with one CA, and an empty out-dir.
fn setup() -> (tempfile::TempDir, pki::Cert) {
    let tmp = tempfile::tempdir().unwrap();
    let ca = pki::root("CLI Test CA");
    ca.write_pem(&tmp.path().join("src/ca.crt"));
    std::fs::create_dir(tmp.path().join("out")).unwrap();
    (tmp, ca)
}

#[test]
fn no_source_is_a_usage_error_naming_source() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_once(&["--out-dir", s(tmp.path())]);
    assert_usage_error(&out, &["--source"]);

    // The daemon mode too, and with no subcommand at all (`run` is the default).
    let mut cmd = trust_injector();
    cmd.args(["run", "--listen", "off", "--out-dir", s(tmp.path())]);
    assert_usage_error(&tools::run(&mut cmd, T), &["--source"]);
    let mut cmd = trust_injector();
    cmd.env("TRUST_INJECTOR_OUT_DIR", tmp.path())
        .env("TRUST_INJECTOR_LISTEN", "off");
    assert_usage_error(&tools::run(&mut cmd, T), &["--source"]);
}

#[test]
fn bad_flag_values_are_usage_errors_naming_the_flag() {
    let (tmp, _) = setup();
    let src = tmp.path().join("src");
    let outd = tmp.path().join("out");
    for (flag, value) in [
        ("--listen", "not-an-address"),
        ("--listen", "127.0.0.1:99999"),
        ("--resync", "soon"),
        ("--debounce", "-5"),
        ("--log-format", "xml"),
    ] {
        // Daemon mode, so that --listen matters; it must refuse before serving.
        let mut cmd = trust_injector();
        cmd.args([
            "run",
            "--source",
            s(&src),
            "--out-dir",
            s(&outd),
            "--base",
            "none",
        ]);
        if flag != "--listen" {
            cmd.args(["--listen", "off"]);
        }
        cmd.args([flag, value]);
        let out = tools::run(&mut cmd, T);
        assert_usage_error(&out, &[flag]);
    }
}

#[test]
fn base_inside_out_dir_is_refused() {
    let (tmp, _) = setup();
    let src = tmp.path().join("src");
    let outd = tmp.path().join("out");
    let base = outd.join("base.pem");
    pki::root("Base Root").write_pem(&base);
    std::fs::create_dir(outd.join("sub")).unwrap();
    for b in [base.clone(), outd.join("sub/../base.pem")] {
        let out = run_once(&["--source", s(&src), "--out-dir", s(&outd), "--base", s(&b)]);
        assert_usage_error(&out, &["--base", s(&b), s(&base)]);
    }
    // Same thing through a differently spelled out-dir.
    let spelled = tmp.path().join("out/../out/");
    let out = run_once(&[
        "--source",
        s(&src),
        "--out-dir",
        s(&spelled),
        "--base",
        s(&base),
    ]);
    assert_usage_error(&out, &["--base", s(&base)]);
    assert!(!outd.join(BUNDLE).exists(), "nothing published");
}

#[test]
fn unusable_out_dir_is_a_usage_error_naming_it() {
    let (tmp, _) = setup();
    let src = tmp.path().join("src");
    let file = tmp.path().join("a-file");
    write_file(&file, "x");
    for outd in [file.clone(), file.join("out")] {
        let out = run_once(&["--source", s(&src), "--base", "none", "--out-dir", s(&outd)]);
        assert_usage_error(&out, &[s(&outd)]);
    }
    // A missing out-dir: either created and used, or refused naming it.
    let missing = tmp.path().join("missing/out");
    let out = run_once(&[
        "--source",
        s(&src),
        "--base",
        "none",
        "--out-dir",
        s(&missing),
    ]);
    match out.code() {
        Some(0) => assert!(missing.join(BUNDLE).is_file(), "{}", out.text()),
        _ => assert_usage_error(&out, &[s(&missing)]),
    }
}

#[test]
fn once_with_an_invalid_file_exits_1_naming_it() {
    let (tmp, _) = setup();
    write_file(
        &tmp.path().join("src/broken.crt"),
        "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    );
    let out = run_once(&[
        "--source",
        s(&tmp.path().join("src")),
        "--base",
        "none",
        "--out-dir",
        s(&tmp.path().join("out")),
    ]);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(
        format!("{}{}", out.stderr, out.stdout).contains("broken.crt"),
        "names the file:\n{}",
        out.text()
    );
}

#[test]
fn once_publishes_and_exits_0() {
    let (tmp, ca) = setup();
    let outd = tmp.path().join("out");
    run_once_ok(&[
        "--source",
        s(&tmp.path().join("src")),
        "--base",
        "none",
        "--out-dir",
        s(&outd),
    ]);
    assert_eq!(bundle::read_bundle(&outd).unwrap(), [ca.sha256()]);
    let mode = std::fs::metadata(outd.join(BUNDLE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "bundle mode");
    assert!(
        std::fs::symlink_metadata(outd.join(CERTS))
            .unwrap()
            .file_type()
            .is_symlink(),
        "certs is a symlink to a versioned directory"
    );
    let map = bundle::hashed_dir_map(&outd.join(CERTS), false);
    assert_eq!(map.values().cloned().collect::<Vec<_>>(), [ca.sha256()]);
    for name in map.keys() {
        let mode = std::fs::metadata(outd.join(CERTS).join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o444, 0o444, "certs/{name} is readable by all");
    }
    common::assert_clean_out_dir(&outd);
}

#[test]
fn environment_variables_configure_run() {
    let tmp = tempfile::tempdir().unwrap();
    let a = pki::root("Env A CA");
    let b = pki::root("Env B CA");
    let expired = pki::expired_root("Env Expired CA");
    a.write_pem(&tmp.path().join("a.crt"));
    b.write_pem(&tmp.path().join("dir/b.crt"));
    expired.write_pem(&tmp.path().join("dir/c-expired.crt"));
    let outd = tmp.path().join("out");
    std::fs::create_dir(&outd).unwrap();
    let sources = format!(
        "{},{}",
        s(&tmp.path().join("a.crt")),
        s(&tmp.path().join("dir"))
    );
    let mut cmd = trust_injector();
    cmd.args(["run", "--once"])
        .env("TRUST_INJECTOR_SOURCES", &sources)
        .env("TRUST_INJECTOR_BASE", "none")
        .env("TRUST_INJECTOR_OUT_DIR", &outd)
        .env("TRUST_INJECTOR_KEEP_EXPIRED", "true")
        .env("TRUST_INJECTOR_LOG_FORMAT", "json")
        .env("TRUST_INJECTOR_LISTEN", "off")
        .env("TRUST_INJECTOR_RESYNC", "0")
        .env("TRUST_INJECTOR_DEBOUNCE", "10");
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert_eq!(
        bundle::read_bundle(&outd).unwrap(),
        [a.sha256(), b.sha256(), expired.sha256()],
        "both sources in order, expired kept"
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!lines.is_empty(), "something was logged");
    for l in lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_ok(),
            "TRUST_INJECTOR_LOG_FORMAT=json gives JSON lines, got: {l}"
        );
    }
}

#[test]
fn a_flag_wins_over_its_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let a = pki::root("Flag A CA");
    let b = pki::root("Flag B CA");
    a.write_pem(&tmp.path().join("a.crt"));
    b.write_pem(&tmp.path().join("b.crt"));
    let env_out = tmp.path().join("env-out");
    let flag_out = tmp.path().join("flag-out");
    std::fs::create_dir(&env_out).unwrap();
    std::fs::create_dir(&flag_out).unwrap();
    let mut cmd = trust_injector();
    cmd.args(["run", "--once"])
        .args(["--source", s(&tmp.path().join("b.crt"))])
        .args(["--base", "none", "--out-dir", s(&flag_out)])
        .args(["--log-format", "text"])
        .env("TRUST_INJECTOR_SOURCES", tmp.path().join("a.crt"))
        .env("TRUST_INJECTOR_BASE", "embedded")
        .env("TRUST_INJECTOR_OUT_DIR", &env_out)
        .env("TRUST_INJECTOR_LOG_FORMAT", "json");
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert_eq!(bundle::read_bundle(&flag_out).unwrap(), [b.sha256()]);
    assert!(!env_out.join(BUNDLE).exists(), "variable's out-dir unused");
    let first = out.stderr.lines().chain(out.stdout.lines()).next();
    if let Some(l) = first {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_err(),
            "--log-format text wins over the variable: {l}"
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    let out = tools::run(trust_injector().arg("--version"), T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert!(
        out.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        out.text()
    );
}

#[test]
fn base_system_never_reads_ssl_cert_file() {
    // This machine's own SSL_CERT_FILE could point at our output; the base must
    // come from the distro paths (or the embedded roots), never the variables.
    let (tmp, ca) = setup();
    let poison = pki::root("Poison From SSL_CERT_FILE");
    let poison_file = tmp.path().join("poison/bundle.pem");
    poison.write_pem(&poison_file);
    let outd = tmp.path().join("out");
    let mut cmd = trust_injector();
    cmd.args(["run", "--once", "--base", "system"])
        .args([
            "--source",
            s(&tmp.path().join("src")),
            "--out-dir",
            s(&outd),
        ])
        .env("SSL_CERT_FILE", &poison_file)
        .env("SSL_CERT_DIR", tmp.path().join("poison"));
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let b = bundle::read_bundle(&outd).unwrap();
    assert!(!b.contains(&poison.sha256()), "SSL_CERT_FILE was read");
    assert!(b.len() > 50, "a system/embedded base was used: {}", b.len());
    assert_eq!(b.last(), Some(&ca.sha256()));
}

#[test]
fn base_path_is_used_in_its_own_order() {
    let (tmp, ca) = setup();
    let b1 = pki::root("Base One");
    let b2 = pki::root("Base Two");
    let base = tmp.path().join("base.pem");
    write_file(&base, format!("{}{}", b1.pem(), b2.pem()));
    let outd = tmp.path().join("out");
    run_once_ok(&[
        "--source",
        s(&tmp.path().join("src")),
        "--base",
        s(&base),
        "--out-dir",
        s(&outd),
    ]);
    assert_eq!(
        bundle::read_bundle(&outd).unwrap(),
        [b1.sha256(), b2.sha256(), ca.sha256()]
    );
}

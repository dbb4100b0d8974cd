//! Command line: exit codes, messages that name the flag or path, environment
//! variables (a flag wins over its variable), --version.

mod common;

use common::bundle::{self, BUNDLE, CERTS};
use common::daemon::{free_port, Fixture};
use common::pki;
use common::tools::{self, Out};
use common::{publish_once, run_once, run_once_ok, run_once_on, s, trust_injector, write_file};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

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

/// A source directory (`src/` in the fixture, the third value) with one CA, and
/// the empty out-dir.
fn setup() -> (Fixture, pki::Cert, PathBuf) {
    let tmp = Fixture::new();
    let ca = pki::root("CLI Test CA");
    let src = tmp.path().join("src");
    ca.write_pem(&src.join("ca.crt"));
    (tmp, ca, src)
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
    let (tmp, _, src) = setup();
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
            s(&tmp.out),
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
    let (tmp, _, src) = setup();
    let base = tmp.out.join("base.pem");
    pki::root("Base Root").write_pem(&base);
    std::fs::create_dir(tmp.out.join("sub")).unwrap();
    for b in [base.clone(), tmp.out.join("sub/../base.pem")] {
        let out = run_once_on(&src, s(&b), &tmp.out, &[]);
        assert_usage_error(&out, &["--base", s(&b), s(&base)]);
    }
    // Same thing through a differently spelled out-dir.
    let spelled = tmp.path().join("out/../out/");
    let out = run_once_on(&src, s(&base), &spelled, &[]);
    assert_usage_error(&out, &["--base", s(&base)]);
    assert!(!tmp.out.join(BUNDLE).exists(), "nothing published");
}

#[test]
fn unusable_out_dir_is_a_usage_error_naming_it() {
    let (tmp, _, src) = setup();
    let file = tmp.path().join("a-file");
    write_file(&file, "x");
    for outd in [file.clone(), file.join("out")] {
        let out = run_once_on(&src, "none", &outd, &[]);
        assert_usage_error(&out, &[s(&outd)]);
    }
    // A missing out-dir: either created and used, or refused naming it.
    let missing = tmp.path().join("missing/out");
    let out = run_once_on(&src, "none", &missing, &[]);
    match out.code() {
        Some(0) => assert!(missing.join(BUNDLE).is_file(), "{}", out.text()),
        _ => assert_usage_error(&out, &[s(&missing)]),
    }
}

#[test]
fn once_with_an_invalid_file_exits_1_naming_it() {
    let (tmp, _, src) = setup();
    write_file(
        &src.join("broken.crt"),
        "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    );
    let out = run_once_on(&src, "none", &tmp.out, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(
        format!("{}{}", out.stderr, out.stdout).contains("broken.crt"),
        "names the file:\n{}",
        out.text()
    );
}

#[test]
fn once_publishes_and_exits_0() {
    let (tmp, ca, src) = setup();
    publish_once(&src, "none", &tmp.out, &[]);
    assert_eq!(bundle::read_bundle(&tmp.out).unwrap(), [ca.sha256()]);
    let mode = std::fs::metadata(tmp.out.join(BUNDLE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "bundle mode");
    assert!(
        std::fs::symlink_metadata(tmp.out.join(CERTS))
            .unwrap()
            .file_type()
            .is_symlink(),
        "certs is a symlink to a versioned directory"
    );
    let map = bundle::hashed_dir_map(&tmp.out.join(CERTS), false);
    assert_eq!(map.values().cloned().collect::<Vec<_>>(), [ca.sha256()]);
    for name in map.keys() {
        let mode = std::fs::metadata(tmp.out.join(CERTS).join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o444, 0o444, "certs/{name} is readable by all");
    }
    common::assert_clean_out_dir(&tmp.out);
}

#[test]
fn environment_variables_configure_run() {
    let tmp = Fixture::new();
    let a = pki::root("Env A CA");
    let b = pki::root("Env B CA");
    let expired = pki::expired_root("Env Expired CA");
    a.write_pem(&tmp.path().join("a.crt"));
    b.write_pem(&tmp.path().join("dir/b.crt"));
    expired.write_pem(&tmp.path().join("dir/c-expired.crt"));
    let outd = &tmp.out;
    let sources = format!(
        "{},{}",
        s(&tmp.path().join("a.crt")),
        s(&tmp.path().join("dir"))
    );
    let mut cmd = trust_injector();
    cmd.args(["run", "--once"])
        .env("TRUST_INJECTOR_SOURCES", &sources)
        .env("TRUST_INJECTOR_BASE", "none")
        .env("TRUST_INJECTOR_OUT_DIR", outd)
        .env("TRUST_INJECTOR_KEEP_EXPIRED", "true")
        .env("TRUST_INJECTOR_LOG_FORMAT", "json")
        .env("TRUST_INJECTOR_LISTEN", "off")
        .env("TRUST_INJECTOR_RESYNC", "0")
        .env("TRUST_INJECTOR_DEBOUNCE", "10");
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert_eq!(
        bundle::read_bundle(outd).unwrap(),
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
    let (tmp, ca, src) = setup();
    let poison = pki::root("Poison From SSL_CERT_FILE");
    let poison_file = tmp.path().join("poison/bundle.pem");
    poison.write_pem(&poison_file);
    let mut cmd = trust_injector();
    cmd.args(["run", "--once", "--base", "system"])
        .args(["--source", s(&src), "--out-dir", s(&tmp.out)])
        .env("SSL_CERT_FILE", &poison_file)
        .env("SSL_CERT_DIR", tmp.path().join("poison"));
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let b = bundle::read_bundle(&tmp.out).unwrap();
    assert!(!b.contains(&poison.sha256()), "SSL_CERT_FILE was read");
    assert!(b.len() > 50, "a system/embedded base was used: {}", b.len());
    assert_eq!(b.last(), Some(&ca.sha256()));
}

#[test]
fn base_path_is_used_in_its_own_order() {
    let (tmp, ca, src) = setup();
    let b1 = pki::root("Base One");
    let b2 = pki::root("Base Two");
    let base = tmp.path().join("base.pem");
    write_file(&base, format!("{}{}", b1.pem(), b2.pem()));
    publish_once(&src, s(&base), &tmp.out, &[]);
    assert_eq!(
        bundle::read_bundle(&tmp.out).unwrap(),
        [b1.sha256(), b2.sha256(), ca.sha256()]
    );
}

/// Runs `run --once` with `vars` set, sources and out-dir from the flags.
fn once_with_env(args: &[&str], vars: &[(&str, &str)]) -> Out {
    let mut cmd = trust_injector();
    cmd.args(["run", "--once"]).args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    tools::run(&mut cmd, T)
}

#[test]
fn boolean_variables_accept_the_usual_spellings() {
    let tmp = tempfile::tempdir().unwrap();
    let expired = pki::expired_root("Bool Expired CA");
    let current = pki::root("Bool Current CA");
    write_file(
        &tmp.path().join("src/cas.pem"),
        format!("{}{}", current.pem(), expired.pem()),
    );
    let src = tmp.path().join("src");
    for (value, keep) in [
        ("1", true),
        ("0", false),
        ("true", true),
        ("false", false),
        ("yes", true),
        ("no", false),
        ("on", true),
        ("off", false),
        ("TRUE", true),
        ("Off", false),
    ] {
        let outd = tmp.path().join(format!("out-{value}"));
        std::fs::create_dir(&outd).unwrap();
        let args = ["--source", s(&src), "--base", "none", "--out-dir", s(&outd)];
        let out = once_with_env(
            &args,
            &[
                ("TRUST_INJECTOR_KEEP_EXPIRED", value),
                ("TRUST_INJECTOR_PKCS12", value),
            ],
        );
        assert_eq!(out.code(), Some(0), "{value}: {}", out.text());
        // The certificates of one file are published in SHA-256 order (docs/publishing.md).
        let want = if keep {
            let mut both = vec![current.sha256(), expired.sha256()];
            both.sort();
            both
        } else {
            vec![current.sha256()]
        };
        assert_eq!(bundle::read_bundle(&outd).unwrap(), want, "{value}");
        assert_eq!(
            outd.join("truststore.p12").is_file(),
            keep,
            "TRUST_INJECTOR_PKCS12={value}"
        );
    }
}

#[test]
fn a_bad_variable_is_named_not_its_flag() {
    let (tmp, _, src) = setup();
    let missing = tmp.path().join("missing");
    for (var, value) in [
        ("TRUST_INJECTOR_KEEP_EXPIRED", "maybe"),
        ("TRUST_INJECTOR_PKCS12", "2"),
        ("TRUST_INJECTOR_RESYNC", "soon"),
        ("TRUST_INJECTOR_DEBOUNCE", "-5"),
        ("TRUST_INJECTOR_LOG_FORMAT", "xml"),
        ("TRUST_INJECTOR_LISTEN", "nope"),
        ("TRUST_INJECTOR_OUT_DIR", s(&missing)),
    ] {
        let mut cmd = trust_injector();
        cmd.args(["run", "--source", s(&src), "--base", "none"]);
        if var != "TRUST_INJECTOR_LISTEN" {
            cmd.args(["--listen", "off"]);
        }
        if var != "TRUST_INJECTOR_OUT_DIR" {
            cmd.args(["--out-dir", s(&tmp.out)]);
        }
        cmd.env(var, value);
        let out = tools::run(&mut cmd, T);
        assert_usage_error(&out, &[&format!("{var}={value}")]);
        let flag = format!(
            "--{}",
            var["TRUST_INJECTOR_".len()..]
                .replace('_', "-")
                .to_lowercase()
        );
        assert!(
            !out.stderr.contains(&flag),
            "{var}: the message names the variable, not {flag}:\n{}",
            out.text()
        );
    }
    // The same value given as a flag names the flag.
    let out = run_once(&[
        "--source",
        s(&src),
        "--out-dir",
        s(&tmp.out),
        "--resync",
        "soon",
    ]);
    assert_usage_error(&out, &["--resync"]);
    assert!(
        !out.stderr.contains("TRUST_INJECTOR_RESYNC="),
        "{}",
        out.text()
    );
}

#[test]
fn a_negative_resync_says_what_is_expected() {
    let (tmp, _, src) = setup();
    for flag in ["--resync", "--debounce"] {
        let out = run_once(&["--source", s(&src), "--out-dir", s(&tmp.out), flag, "-1"]);
        assert_usage_error(&out, &[flag]);
        assert!(
            out.stderr.contains("whole number") && out.stderr.contains("negative"),
            "{flag} -1 says what is expected:\n{}",
            out.text()
        );
        assert!(!out.stderr.contains("invalid digit"), "{}", out.text());
    }
}

/// Lines of stderr that mention `needle`.
fn count_lines(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn once_again_says_unchanged_and_counts_dropped_base_roots() {
    let (tmp, ca, src) = setup();
    let live = pki::root("Base Live Root");
    let base = tmp.path().join("base.pem");
    let old: Vec<pki::Cert> = (0..5)
        .map(|i| pki::expired_root(&format!("Base Old Root {i}")))
        .collect();
    let mut pem = live.pem();
    for c in &old {
        pem.push_str(&c.pem());
    }
    write_file(&base, pem);
    let args = [
        "--source",
        s(&src),
        "--base",
        s(&base),
        "--out-dir",
        s(&tmp.out),
    ];
    let first = run_once_ok(&args);
    let again = run_once_ok(&args);
    let sha = bundle::sha256_hex(&std::fs::read(tmp.out.join(BUNDLE)).unwrap());
    assert_eq!(
        bundle::read_bundle(&tmp.out).unwrap(),
        [live.sha256(), ca.sha256()]
    );
    let unchanged: Vec<&str> = again
        .stderr
        .lines()
        .filter(|l| l.contains("unchanged"))
        .collect();
    assert_eq!(unchanged.len(), 1, "{}", again.text());
    assert!(
        unchanged[0].contains(&sha),
        "with the bundle's SHA-256 {sha}: {}",
        unchanged[0]
    );
    assert!(!first.stderr.contains("unchanged"), "{}", first.text());
    for out in [&first, &again] {
        let dropped = common::log_lines_about(&out.stderr, "dropped", &["info"]);
        assert_eq!(dropped.len(), 1, "one INFO line:\n{}", out.text());
        assert!(
            dropped[0].contains("dropped=5"),
            "with the count: {}",
            dropped[0]
        );
        assert!(
            common::log_lines_about(&out.stderr, "", &["warn"]).is_empty(),
            "no WARN about base roots the user cannot act on:\n{}",
            out.text()
        );
    }
}

#[test]
fn errors_are_printed_once_and_say_how_to_fix() {
    let (tmp, _, src) = setup();
    let missing = tmp.path().join("missing");
    let out = run_once(&["--source", s(&src), "--out-dir", s(&missing)]);
    assert_usage_error(&out, &[s(&missing)]);
    assert_eq!(
        count_lines(&out.stderr, s(&missing)),
        1,
        "once:\n{}",
        out.text()
    );
    assert!(
        out.stderr.contains("mkdir -p"),
        "says how to fix it:\n{}",
        out.text()
    );

    // A busy port: held by a real listener for the length of the run.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let mut cmd = trust_injector();
    cmd.args(["run", "--source", s(&src), "--base", "none"])
        .args(["--out-dir", s(&tmp.out), "--listen", &addr]);
    let out = tools::run(&mut cmd, T);
    assert_usage_error(&out, &["--listen"]);
    assert_eq!(count_lines(&out.stderr, &addr), 1, "once:\n{}", out.text());
    assert!(
        out.stderr.contains("choose another --listen"),
        "{}",
        out.text()
    );
}

#[test]
fn once_logs_name_the_documented_codes_and_no_empty_fields() {
    let tmp = Fixture::new();
    let chain = pki::Chain::new("Codes");
    // An intermediate without its root: the documented `missing_root`.
    chain
        .intermediate
        .write_pem(&tmp.path().join("src/intermediate.crt"));
    write_file(&tmp.path().join("src/broken.crt"), "not a certificate\n");
    let outd = &tmp.out;
    let out = run_once_on(&tmp.path().join("src"), "none", outd, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(out.stderr.contains("code=missing_root"), "{}", out.text());
    assert!(!out.stderr.contains("MissingRoot"), "{}", out.text());
    assert!(
        !out.stderr.contains("=\"\""),
        "no empty field:\n{}",
        out.text()
    );
    assert!(!out.stderr.contains("kept=0"), "{}", out.text());
    assert_eq!(
        count_lines(&out.stderr, "broken.crt"),
        1,
        "the broken file is reported once:\n{}",
        out.text()
    );
}

#[test]
fn help_says_run_is_the_default_and_lists_exit_codes() {
    let top = tools::run(trust_injector().arg("--help"), T);
    assert_eq!(top.code(), Some(0), "{}", top.text());
    assert!(top.stdout.contains("the default command"), "{}", top.stdout);
    assert!(top.stdout.contains("runs `run`"), "{}", top.stdout);
    for sub in [
        &["--help"][..],
        &["run", "--help"],
        &["inspect", "--help"],
        &["verify", "--help"],
    ] {
        let out = tools::run(trust_injector().args(sub), T);
        assert!(
            out.stdout.contains("Exit codes: 0 "),
            "{sub:?}:\n{}",
            out.stdout
        );
    }
    let verify = tools::run(trust_injector().args(["verify", "--help"]), T);
    assert!(
        verify.stdout.contains("--bundle <FILE|DIR>"),
        "{}",
        verify.stdout
    );
    let verify_exit = verify
        .stdout
        .lines()
        .find(|l| l.starts_with("Exit codes"))
        .unwrap();
    assert!(verify_exit.contains("3 could not connect"), "{verify_exit}");
}

#[test]
fn verify_of_plain_http_does_not_suggest_http() {
    // A real plain-HTTP server: Python's http.server on a loopback port.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = tools::clean_command("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_until(T, "http.server listens", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let ca = pki::root("Verify HTTP CA");
    let bundle_file = dir.path().join("bundle.pem");
    ca.write_pem(&bundle_file);
    let run = |url: String| {
        let mut cmd = trust_injector();
        cmd.args(["verify", &url, "--bundle", s(&bundle_file)]);
        tools::run(&mut cmd, T)
    };
    let with_http = run(format!("http://127.0.0.1:{port}/"));
    let bare = run(format!("127.0.0.1:{port}"));
    let _ = server.kill();
    let _ = server.wait();
    for out in [&with_http, &bare] {
        assert_eq!(out.code(), Some(3), "{}", out.text());
        assert!(out.stdout.contains("not_tls"), "{}", out.text());
    }
    let fix = |out: &Out| {
        out.stdout
            .lines()
            .find(|l| l.starts_with("fix:"))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        !fix(&with_http).contains("or http://"),
        "{}",
        with_http.text()
    );
    assert!(fix(&with_http).contains("https://"), "{}", with_http.text());
    assert!(
        fix(&bare).contains("http://"),
        "the hint stays for a bare address: {}",
        bare.text()
    );
}

/// `run --once` serves no `/status`, so its note about dropped base roots
/// must not send the user there; the debug level lists each root instead.
#[test]
fn once_points_at_no_status_it_does_not_serve() {
    let (tmp, _, src) = setup();
    let base = tmp.path().join("base.pem");
    let old: Vec<pki::Cert> = (0..2)
        .map(|i| pki::expired_root(&format!("Once Old Root {i}")))
        .collect();
    write_file(&base, format!("{}{}", old[0].pem(), old[1].pem()));
    let args = [
        "--source",
        s(&src),
        "--base",
        s(&base),
        "--out-dir",
        s(&tmp.out),
    ];
    let out = once_with_env(&args, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let dropped = common::log_lines_about(&out.stderr, "dropped=2", &["info"]);
    assert_eq!(dropped.len(), 1, "{}", out.text());
    assert!(!out.stderr.contains("/status"), "{}", out.text());
    assert!(
        dropped[0].contains("TRUST_INJECTOR_LOG=debug"),
        "{}",
        dropped[0]
    );
    let debug = once_with_env(&args, &[("TRUST_INJECTOR_LOG", "debug")]);
    for root in ["Once Old Root 0", "Once Old Root 1"] {
        assert!(debug.stderr.contains(root), "{root}:\n{}", debug.text());
    }
}

#[test]
fn every_command_help_lists_its_exit_codes() {
    for sub in ["inject", "webhook", "help"] {
        let out = tools::run(trust_injector().args([sub, "--help"]), T);
        assert_eq!(out.code(), Some(0), "{sub} --help:\n{}", out.text());
        assert!(
            out.stdout.contains("Exit codes: 0 "),
            "{sub}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn help_command_takes_help_and_names_commands() {
    let out = tools::run(trust_injector().args(["help", "--help"]), T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert!(
        out.stdout.contains("Usage: trust-injector help"),
        "{}",
        out.stdout
    );
    let via_help = tools::run(trust_injector().args(["help", "inspect"]), T);
    let via_flag = tools::run(trust_injector().args(["inspect", "--help"]), T);
    assert_eq!(via_help.code(), Some(0), "{}", via_help.text());
    assert_eq!(via_help.stdout, via_flag.stdout);
    let nested = tools::run(trust_injector().args(["help", "webhook", "certs"]), T);
    assert!(
        nested
            .stdout
            .contains("Usage: trust-injector webhook certs"),
        "{}",
        nested.text()
    );
    // The webhook's own `help`, as before, and with --help too.
    let webhook_help = tools::run(trust_injector().args(["webhook", "help", "certs"]), T);
    let certs_flag = tools::run(trust_injector().args(["webhook", "certs", "--help"]), T);
    assert_eq!(webhook_help.code(), Some(0), "{}", webhook_help.text());
    assert_eq!(webhook_help.stdout, certs_flag.stdout);
    let out = tools::run(trust_injector().args(["webhook", "help", "--help"]), T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let top = tools::run(trust_injector().arg("help"), T);
    assert!(top.stdout.contains("runs `run`"), "{}", top.text());
    let unknown = tools::run(trust_injector().args(["help", "nope"]), T);
    assert_usage_error(&unknown, &["nope"]);
}

/// `webhook --image` follows the scheme of its other options
/// (TRUST_INJECTOR_WEBHOOK_IMAGE) and still reads its former variable
/// TRUST_INJECTOR_IMAGE; the new name wins when both are set. A blank image
/// is refused before anything is served, and a blank --secret only after the
/// image was accepted, which shows which value was read.
#[test]
fn webhook_image_variable_and_its_former_name() {
    let webhook = |vars: &[(&str, &str)]| {
        let mut cmd = trust_injector();
        cmd.args([
            "webhook",
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "off",
        ])
        .args(["--secret", " "])
        .env_remove("TRUST_INJECTOR_IMAGE")
        .env_remove("TRUST_INJECTOR_WEBHOOK_IMAGE");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        tools::run(&mut cmd, T)
    };
    for var in ["TRUST_INJECTOR_WEBHOOK_IMAGE", "TRUST_INJECTOR_IMAGE"] {
        let out = webhook(&[(var, " ")]);
        assert_usage_error(&out, &["--image"]);
        assert!(!out.stderr.contains("--secret"), "{var}:\n{}", out.text());
    }
    let both = webhook(&[
        ("TRUST_INJECTOR_IMAGE", " "),
        ("TRUST_INJECTOR_WEBHOOK_IMAGE", "registry.example/ti:1"),
    ]);
    assert_usage_error(&both, &["--secret"]);
    assert!(!both.stderr.contains("--image"), "{}", both.text());
}

/// Values parsed into their types as the command line is read: each refusal
/// exits 2 and names what the user set, the flag or the variable.
#[test]
fn refused_values_name_the_flag_or_the_variable_that_set_them() {
    let (tmp, _, src) = setup();
    let run_with = |args: &[&str], vars: &[(&str, &str)]| {
        let mut cmd = trust_injector();
        cmd.args([
            "run",
            "--once",
            "--source",
            s(&src),
            "--out-dir",
            s(&tmp.out),
        ])
        .args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        tools::run(&mut cmd, T)
    };
    // (flags, variables, what the message names, why it says it refused).
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 8] = [
        (
            &["--on-change-signal", "KILL:app"],
            &[],
            "--on-change-signal",
            "KILL is refused",
        ),
        (
            &[],
            &[("TRUST_INJECTOR_ON_CHANGE_SIGNAL", "KILL:app")],
            "TRUST_INJECTOR_ON_CHANGE_SIGNAL=KILL:app",
            "KILL is refused",
        ),
        (
            &["--on-change-url", "https://app/reload"],
            &[],
            "--on-change-url",
            "only http://",
        ),
        (
            &[],
            &[("TRUST_INJECTOR_BASE", "")],
            "TRUST_INJECTOR_BASE=",
            "empty value",
        ),
        (
            &["--retain-removed", "3w"],
            &[],
            "--retain-removed",
            "unknown unit",
        ),
        (
            &[],
            &[("TRUST_INJECTOR_RETAIN_REMOVED", "3w")],
            "TRUST_INJECTOR_RETAIN_REMOVED=3w",
            "unknown unit",
        ),
        (
            &[],
            &[("TRUST_INJECTOR_INCLUDE", "ca-[0-9.crt")],
            "TRUST_INJECTOR_INCLUDE=\"ca-[0-9.crt\"",
            "unclosed",
        ),
        (
            &["--pkcs12", "--pkcs12-password-file", "/nonexistent/pw"],
            &[("TRUST_INJECTOR_PKCS12_PASSWORD", "secret")],
            "TRUST_INJECTOR_PKCS12_PASSWORD and --pkcs12-password-file: give one or the other",
            "",
        ),
    ];
    for (args, vars, named, why) in cases {
        let out = run_with(args, vars);
        assert_usage_error(&out, &[named]);
        assert!(
            out.stderr.contains(why),
            "{args:?} {vars:?}:\n{}",
            out.text()
        );
        assert!(!out.stderr.contains("secret"), "{}", out.text());
    }
    // An out-dir set by its variable, overlapping a source: the variable is named.
    let mut cmd = trust_injector();
    cmd.args(["run", "--once", "--source", s(&src)])
        .env("TRUST_INJECTOR_OUT_DIR", &src);
    let out = tools::run(&mut cmd, T);
    assert_usage_error(&out, &[&format!("TRUST_INJECTOR_OUT_DIR={}", s(&src))]);
    assert!(out.stderr.contains("overlaps"), "{}", out.text());
}

#[test]
fn webhook_mode_is_checked_as_it_is_read() {
    let webhook = |args: &[&str], vars: &[(&str, &str)]| {
        let mut cmd = trust_injector();
        cmd.args([
            "webhook",
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "off",
        ])
        .args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        tools::run(&mut cmd, T)
    };
    let out = webhook(&["--mode", "sidecar"], &[]);
    assert_usage_error(&out, &["--mode"]);
    assert!(out.stderr.contains("native or classic"), "{}", out.text());
    let out = webhook(&[], &[("TRUST_INJECTOR_WEBHOOK_MODE", "sidecar")]);
    assert_usage_error(&out, &["TRUST_INJECTOR_WEBHOOK_MODE=sidecar"]);
    let out = webhook(&[], &[("TRUST_INJECTOR_WEBHOOK_RESOURCES", "[]")]);
    assert_usage_error(&out, &["TRUST_INJECTOR_WEBHOOK_RESOURCES=[]"]);
}

/// `inject` on a container without an image: the init container that copies
/// the application's CA bundle would run an empty image. Refused, naming the
/// container, and nothing is written.
#[test]
fn inject_refuses_a_container_without_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deploy.yaml");
    write_file(
        &manifest,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: gw\nspec:\n  template:\n    \
         spec:\n      containers:\n        - name: gateway\n",
    );
    let out = tools::run(trust_injector().arg("inject").arg(&manifest), T);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(
        out.stderr.contains("\"gateway\" has no image"),
        "{}",
        out.text()
    );
    assert!(out.stdout.is_empty(), "nothing written:\n{}", out.stdout);
}

#[test]
fn inject_output_must_name_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cm.yaml");
    write_file(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    );
    let inner = dir.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    let mut cmd = trust_injector();
    cmd.current_dir(&inner)
        .args(["inject", "--output", ".."])
        .arg(&manifest);
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(out.stderr.contains("..: not a file name"), "{}", out.text());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 2, "no temporary file left beside: {left:?}");
}

/// A log filter that is not UTF-8 is said to be ignored, not silently taken
/// as unset.
#[test]
fn a_log_filter_that_is_not_utf8_is_reported() {
    use std::os::unix::ffi::OsStrExt;
    let (tmp, _, src) = setup();
    let mut cmd = trust_injector();
    cmd.args(["run", "--once", "--base", "none", "--source", s(&src)])
        .args(["--out-dir", s(&tmp.out)])
        .env(
            "TRUST_INJECTOR_LOG",
            std::ffi::OsStr::from_bytes(b"debug\xff"),
        );
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let warned = common::log_lines_about(&out.stderr, "TRUST_INJECTOR_LOG=", &["warn"]);
    assert_eq!(warned.len(), 1, "{}", out.text());
    assert!(warned[0].contains("not UTF-8"), "{}", warned[0]);
}

/// A clock set before 1970 is read as it is, not as 1970: at 1969-12-30
/// 12:00 UTC a certificate valid until 1970-01-11 has 11 whole days left
/// (1970-01-01 would say 10).
#[test]
fn a_clock_before_1970_is_read_as_it_is() {
    use rcgen::date_time_ymd;
    let faketime = tools::require("faketime");
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::root_valid(
        "Before Epoch CA",
        date_time_ymd(1969, 1, 1),
        date_time_ymd(1970, 1, 11),
    );
    let file = dir.path().join("ca.crt");
    ca.write_pem(&file);
    let mut cmd = std::process::Command::new(faketime);
    cmd.arg("1969-12-30 12:00:00")
        .arg(env!("CARGO_BIN_EXE_trust-injector"))
        .args(["inspect", "--json"])
        .arg(&file)
        .env("TZ", "UTC");
    let out = tools::run(&mut cmd, T);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        find_number(&report, "days_left"),
        Some(11),
        "{}",
        out.stdout
    );
}

/// The first number under `key` anywhere in `v`.
fn find_number(v: &serde_json::Value, key: &str) -> Option<i64> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(serde_json::Value::as_i64)
            .or_else(|| m.values().find_map(|x| find_number(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_number(x, key)),
        _ => None,
    }
}

/// `run`, `inject` and `webhook` share flag names (`--listen`, `--mode`,
/// `--include`) but not variables: a bad value names the variable of the
/// command that was run, even when another command's variable is set too.
#[test]
fn a_bad_variable_is_named_for_the_command_that_read_it() {
    let cases = [
        (
            &["inject"][..],
            "TRUST_INJECTOR_INJECT_MODE",
            "sidecar",
            "TRUST_INJECTOR_WEBHOOK_MODE",
        ),
        (
            &["webhook"][..],
            "TRUST_INJECTOR_WEBHOOK_LISTEN",
            "nope",
            "TRUST_INJECTOR_LISTEN",
        ),
    ];
    for (args, var, value, other) in cases {
        let mut cmd = trust_injector();
        cmd.args(args)
            .env(var, value)
            .env(other, "127.0.0.1:1")
            .stdin(std::process::Stdio::null());
        let out = tools::run(&mut cmd, T);
        assert_usage_error(&out, &[&format!("{var}={value}")]);
        assert!(!out.stderr.contains(other), "{args:?}:\n{}", out.text());
    }
}

/// `run`'s variables are `run`'s: a value another command does not use, even
/// a bad one a sidecar's environment holds, does not stop that command.
#[test]
fn other_commands_ignore_runs_variables() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.crt");
    pki::root("Other Commands CA").write_pem(&file);
    for args in [&["inspect", s(&file)][..], &["help", "inspect"]] {
        let mut cmd = trust_injector();
        cmd.args(args)
            .env("TRUST_INJECTOR_RESYNC", "soon")
            .env("TRUST_INJECTOR_BASE", "")
            .env("TRUST_INJECTOR_ON_CHANGE_SIGNAL", "KILL:app");
        let out = tools::run(&mut cmd, T);
        assert_eq!(out.code(), Some(0), "{args:?}:\n{}", out.text());
    }
}

/// Retention resumes only what the bundle on disk still holds; a bundle that
/// cannot be parsed resumes nothing, and the log now says so (the deadlines
/// used to vanish without a word).
#[test]
fn retention_over_an_unreadable_bundle_says_so() {
    let (tmp, ca, src) = setup();
    let removed = pki::root("Retained CA");
    removed.write_pem(&src.join("removed.crt"));
    let args = ["--retain-removed", "1h"];
    publish_once(&src, "none", &tmp.out, &args);
    std::fs::remove_file(src.join("removed.crt")).unwrap();
    publish_once(&src, "none", &tmp.out, &args);
    let mut both = vec![ca.sha256(), removed.sha256()];
    let mut published = bundle::read_bundle(&tmp.out).unwrap();
    both.sort();
    published.sort();
    assert_eq!(published, both, "the removed CA is retained");
    write_file(
        &tmp.out.join(BUNDLE),
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    );
    let out = publish_once(&src, "none", &tmp.out, &args);
    let warned = common::log_lines_about(&out.stderr, "not resumed", &["warn"]);
    assert_eq!(warned.len(), 1, "{}", out.text());
}

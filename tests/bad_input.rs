//! Bad input while the daemon runs with a good file already published: every bad
//! file gets its clear error (path and reason, in /status, the log and the error
//! metric), nothing already published is lost, the daemon stays up. Private keys
//! never show up anywhere. Expired CAs are dropped (kept with --keep-expired).
//! A source that does not exist yet is waited for.

mod common;

use common::atomic_writer::AtomicWriter;
use common::bundle;
use common::daemon::{Daemon, Fixture};
use common::leak::{self, Key};
use common::pki::{self, Cert};
use common::{error_about, log_lines_about, publish_once, s, write_file, PATIENCE};
use std::path::Path;

const ERRORS: &str = "trust_injector_source_errors_total";

struct Running {
    /// Holds the Secret and the out-dir: removed when the test ends.
    _fixture: Fixture,
    secret: AtomicWriter,
    good: Cert,
    good_pem: String,
    daemon: Daemon,
}

/// A daemon watching a kubelet-style Secret that holds one good CA.
fn fixture(extra_env: &[(&str, &str)]) -> Running {
    let good = pki::root("Good Test CA");
    let good_pem = good.pem();
    let fixture = Fixture::with_secret(&[("good.crt", good_pem.as_bytes())]);
    let mut b = fixture.daemon().no_debounce().resync(0);
    for (k, v) in extra_env {
        b = b.env(k, v);
    }
    let mut daemon = b.start();
    daemon.wait_bundle("good CA published", |b| b == [good.sha256()]);
    Running {
        secret: fixture.secret.clone(),
        _fixture: fixture,
        good,
        good_pem,
        daemon,
    }
}

fn errors(d: &Daemon) -> f64 {
    d.metric(ERRORS).unwrap_or(0.0)
}

/// Deterministic junk.
fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Wait until /status reports an error about `file` that also names the Secret
/// directory, and return it.
fn wait_file_error(d: &Daemon, file: &str, dir: &Path) -> serde_json::Value {
    let mut found = None;
    common::wait_for(PATIENCE, &format!("/status error about {file}"), || {
        found = error_about(&d.status(), file);
        found.clone()
    });
    let found = found.unwrap();
    assert!(
        found.to_string().contains(s(dir)),
        "the error about {file} names its path (under {dir:?}): {found}"
    );
    found
}

#[test]
fn every_bad_file_is_reported_and_nothing_published_is_lost() {
    let mut f = fixture(&[]);
    let dir = f.secret.dir().to_path_buf();

    let some_cert = pki::root("Cut Short CA").pem();
    let lines: Vec<&str> = some_cert.lines().collect();
    // BEGIN + half the base64 + END: the base64 is cut mid-certificate.
    let mut truncated_b64 = vec![lines[0]];
    truncated_b64.extend(&lines[1..lines.len() / 2]);
    truncated_b64.push(lines[lines.len() - 1]);
    let truncated_b64 = truncated_b64.join("\n") + "\n";
    // The file ends mid-block, no END line.
    let truncated_file = lines[..lines.len() / 2].join("\n");
    // A certificate buried in a file over the 1 MiB a Secret can hold.
    let oversize_ca = pki::root("Oversize CA");
    let mut oversize = oversize_ca.pem();
    while oversize.len() <= 1024 * 1024 + 4096 {
        oversize.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage.crt",
            b"-----BEGIN CERTIFICATE-----\nthis is !! not base64 @@\n-----END CERTIFICATE-----\n"
                .to_vec(),
        ),
        ("truncated-base64.crt", truncated_b64.into_bytes()),
        ("truncated-file.crt", truncated_file.into_bytes()),
        ("random.bin", random_bytes(3000, 0x9e37_79b9_7f4a_7c15)),
        ("oversize.crt", oversize.into_bytes()),
    ];

    let mut problems = Vec::new();
    for (name, bytes) in &cases {
        let before = errors(&f.daemon);
        f.secret.write(&[
            ("good.crt", f.good_pem.as_bytes()),
            (name, bytes.as_slice()),
        ]);
        let err = wait_file_error(&f.daemon, name, &dir);
        eprintln!("{name}: {err}");
        common::wait_until(PATIENCE, &format!("{ERRORS} increases for {name}"), || {
            errors(&f.daemon) > before
        });
        f.daemon.assert_running(&format!("after {name}"));
        let now = bundle::read_bundle(&f.daemon.out_dir).unwrap();
        if now != [f.good.sha256()] {
            problems.push(format!("{name}: bundle changed to {now:?}"));
        }
        let logs = f.daemon.logs();
        if log_lines_about(&logs, name, &["error", "warn"]).is_empty() {
            problems.push(format!("{name}: no error/warning log line naming the file"));
        }
        assert_eq!(f.daemon.get("/healthz").0, 200, "healthz after {name}");
        // Fix it: the error goes away.
        f.secret.write(&[("good.crt", f.good_pem.as_bytes())]);
        common::wait_until(PATIENCE, &format!("error about {name} cleared"), || {
            error_about(&f.daemon.status(), name).is_none()
        });
    }
    assert!(
        !bundle::read_bundle(&f.daemon.out_dir)
            .unwrap()
            .contains(&oversize_ca.sha256()),
        "a certificate from the oversize file was taken"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let st = f.daemon.stop();
    assert!(st.success(), "clean stop: {st}");
}

#[test]
fn a_file_that_breaks_keeps_its_last_good_certificates_until_fixed_or_removed() {
    let mut f = fixture(&[]);
    let dir = f.secret.dir().to_path_buf();
    let x = pki::root("Team X CA");
    let y = pki::root("Team X CA v2");
    let (gp, xp, yp) = (f.good_pem.clone(), x.pem(), y.pem());

    f.secret
        .write(&[("good.crt", gp.as_bytes()), ("team.crt", xp.as_bytes())]);
    f.daemon
        .wait_bundle("team CA added", |b| b == [f.good.sha256(), x.sha256()]);

    let before = errors(&f.daemon);
    let broken = format!("{}\n-----BEGIN CERTIFICATE-----\nMIIB!!broken\n", xp);
    f.secret
        .write(&[("good.crt", gp.as_bytes()), ("team.crt", broken.as_bytes())]);
    wait_file_error(&f.daemon, "team.crt", &dir);
    common::wait_until(PATIENCE, "error metric increases", || {
        errors(&f.daemon) > before
    });
    assert_eq!(
        bundle::read_bundle(&f.daemon.out_dir).unwrap(),
        [f.good.sha256(), x.sha256()],
        "the broken file's last good certificate stays"
    );

    // Fixed with other content: the new one replaces the old one.
    f.secret
        .write(&[("good.crt", gp.as_bytes()), ("team.crt", yp.as_bytes())]);
    f.daemon.wait_bundle("fixed file published", |b| {
        b == [f.good.sha256(), y.sha256()]
    });
    common::wait_until(PATIENCE, "error cleared", || {
        error_about(&f.daemon.status(), "team.crt").is_none()
    });

    // Broken again, then removed: a file that disappears takes its certificates.
    f.secret.write(&[
        ("good.crt", gp.as_bytes()),
        ("team.crt", b"garbage".as_slice()),
    ]);
    wait_file_error(&f.daemon, "team.crt", &dir);
    assert_eq!(
        bundle::read_bundle(&f.daemon.out_dir).unwrap(),
        [f.good.sha256(), y.sha256()]
    );
    f.secret.write(&[("good.crt", gp.as_bytes())]);
    f.daemon
        .wait_bundle("removed file's certificate gone", |b| {
            b == [f.good.sha256()]
        });
    let st = f.daemon.stop();
    assert!(st.success(), "clean stop: {st}");
}

#[test]
fn private_keys_are_skipped_and_never_written_or_logged() {
    // Most verbose logging, to catch a key in any debug output.
    let mut f = fixture(&[("TRUST_INJECTOR_LOG", "trace")]);
    let with_key = pki::root("Cert With Key CA");
    let key_only = pki::root("Key Only CA"); // only its key goes in
    let key_pem = key_only.key_pem();
    let mixed = format!("{}{}", with_key.pem(), with_key.key_pem());
    let rsa_label = key_pem.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    let ec_label = with_key.key_pem().replace("PRIVATE KEY", "EC PRIVATE KEY");

    f.secret.write(&[
        ("good.crt", f.good_pem.as_bytes()),
        ("tls.key", key_pem.as_bytes()),
        ("legacy.key", rsa_label.as_bytes()),
        ("ec.key", ec_label.as_bytes()),
        ("cert-and-key.pem", mixed.as_bytes()),
        ("empty.crt", b"".as_slice()),
    ]);
    f.daemon
        .wait_bundle("certificate next to its key taken", |b| {
            b == [with_key.sha256(), f.good.sha256()] || b == [f.good.sha256(), with_key.sha256()]
        });
    f.daemon.assert_running("after keys and an empty file");
    assert_eq!(f.daemon.get("/healthz").0, 200);

    // A key block is skipped *with a warning* that names the file.
    let logs = f.daemon.logs();
    assert!(
        !log_lines_about(&logs, "tls.key", &["warn", "error"]).is_empty(),
        "no warning naming tls.key; logs:\n{logs}"
    );

    // The secret material, in any encoding, in every output; and nothing
    // that even names a key block.
    let keys = [
        Key::from_rcgen("Key Only CA", &key_only.key),
        Key::from_rcgen("Cert With Key CA", &with_key.key),
    ];
    let places = leak::daemon_outputs(&f.daemon);
    for (place, bytes) in &places {
        assert!(
            !String::from_utf8_lossy(bytes).contains("PRIVATE KEY"),
            "{place} mentions a PRIVATE KEY block"
        );
    }
    leak::assert_no_key_material(&keys, &places);
    let st = f.daemon.stop();
    assert!(st.success(), "clean stop: {st}");
    // What it logged while stopping, too.
    leak::assert_no_key_material(&keys, &[("the log".into(), f.daemon.logs().into_bytes())]);
}

#[test]
fn expired_ca_is_dropped_with_a_warning_and_kept_with_keep_expired() {
    let mut f = fixture(&[]);
    let expired = pki::expired_root("Expired Test CA");
    let future = pki::not_yet_valid_root("Future Test CA");
    let (gp, ep, fp) = (f.good_pem.clone(), expired.pem(), future.pem());
    f.secret.write(&[
        ("good.crt", gp.as_bytes()),
        ("expired.crt", ep.as_bytes()),
        ("future.crt", fp.as_bytes()),
    ]);
    // Not-yet-valid: warned about, not dropped. Expired: dropped.
    let b = f.daemon.wait_bundle("not-yet-valid CA published", |b| {
        b.contains(&future.sha256())
    });
    assert!(!b.contains(&expired.sha256()), "expired CA dropped");
    assert!(b.contains(&f.good.sha256()), "good CA kept");
    let logs = f.daemon.logs();
    let warned = logs.lines().any(|l| {
        let low = l.to_ascii_lowercase();
        low.contains("expired") && (l.contains("Expired Test CA") || l.contains("expired.crt"))
    });
    assert!(warned, "a warning names the expired CA; logs:\n{logs}");
    f.daemon.assert_running("after an expired CA");
    let st = f.daemon.stop();
    assert!(st.success(), "clean stop: {st}");

    // --keep-expired keeps it.
    let once = Fixture::new();
    let tmp = once.path();
    let src = tmp.join("src");
    expired.write_pem(&src.join("expired.crt"));
    publish_once(&src, "none", &once.out, &["--keep-expired"]);
    assert_eq!(bundle::read_bundle(&once.out).unwrap(), [expired.sha256()]);
    // And without it, --once drops it too.
    let out2 = tmp.join("out2");
    std::fs::create_dir(&out2).unwrap();
    let write_good = tmp.join("src/good.crt");
    write_file(&write_good, f.good_pem.as_bytes());
    common::run_once(&["--source", s(&src), "--base", "none", "--out-dir", s(&out2)]);
    assert_eq!(bundle::read_bundle(&out2).unwrap(), [f.good.sha256()]);
}

#[test]
fn ca_that_expires_while_running_is_dropped_without_an_event() {
    let good = pki::root("Long Lived CA");
    let now = time::OffsetDateTime::now_utc();
    let short = pki::root_valid(
        "Short Lived CA",
        now - time::Duration::days(1),
        now + time::Duration::seconds(6),
    );
    let f = Fixture::with_secret(&[
        ("good.crt", good.pem().as_bytes()),
        ("short.crt", short.pem().as_bytes()),
    ]);
    let mut daemon = f.daemon().resync(0).start();
    daemon.wait_bundle("both CAs", |b| b.len() == 2);
    daemon.wait_bundle("short-lived CA dropped at its expiry", |b| {
        b == [good.sha256()]
    });
    let st = daemon.stop();
    assert!(st.success(), "clean stop: {st}");
}

/// Start a daemon on a source path that does not exist yet; check the base roots
/// are published meanwhile and the path is named in a warning.
fn daemon_on_missing(f: &Fixture, path: &Path) -> (Daemon, Vec<String>) {
    let daemon = f
        .daemon_on(path)
        .base("embedded")
        .resync(0)
        .no_debounce()
        .start();
    // Ready with the base roots alone.
    let base = bundle::read_bundle(&f.out).expect("base published");
    assert!(base.len() > 50, "embedded roots published: {}", base.len());
    let logs = daemon.logs();
    assert!(
        !log_lines_about(&logs, s(path), &["warn"]).is_empty(),
        "a warning names the missing path; logs:\n{logs}"
    );
    (daemon, base)
}

#[test]
fn missing_source_is_waited_for_and_picked_up_when_it_appears() {
    let f = Fixture::new();
    let path = f.path().join("not-yet").join("secret");
    let (mut daemon, base) = daemon_on_missing(&f, &path);
    // The path appears step by step (a pause between steps gives the watcher a
    // chance to follow; nothing is asserted about timing).
    let pause = || std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::create_dir(f.path().join("not-yet")).unwrap();
    pause();
    let secret = AtomicWriter::new(&path);
    pause();
    let ca = pki::root("Late Secret CA");
    secret.write(&[("ca.crt", ca.pem().as_bytes())]);
    let b = daemon.wait_bundle("late CA published", |b| b.contains(&ca.sha256()));
    assert_eq!(b.len(), base.len() + 1);
    assert_eq!(b.last(), Some(&ca.sha256()), "custom CAs follow the base");
    let st = daemon.stop();
    assert!(st.success(), "clean stop: {st}");
}

#[test]
fn missing_source_that_appears_all_at_once_is_picked_up() {
    // The whole path and its content appear in quick succession, faster than a
    // watcher can follow directory by directory: whatever events are lost while new
    // watches are being added, the content must still be read (with --resync 0,
    // nothing else would catch it).
    let f = Fixture::new();
    let path = f.path().join("not-yet").join("secret");
    let (mut daemon, _) = daemon_on_missing(&f, &path);
    let ca = pki::root("Sudden Secret CA");
    let secret = AtomicWriter::new(&path);
    secret.write(&[("ca.crt", ca.pem().as_bytes())]);
    daemon.wait_bundle("sudden CA published", |b| b.contains(&ca.sha256()));
    let st = daemon.stop();
    assert!(st.success(), "clean stop: {st}");
}

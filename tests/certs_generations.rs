//! Readers of `certs/` during rotations (issue 24.7): a real Go program scans
//! the hashed directory in a loop, as crypto/x509 does, while the Secret is
//! rotated through the kubelet's AtomicWriter; no scan may come up with
//! neither the old nor the new CA. The generation swapped out stays until a
//! later publish after its grace.

mod common;

use common::bundle::CERTS;
use common::daemon::Fixture;
use common::{pki, s, tools, wait_for_else, wait_until, PATIENCE};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Rotations while the scanner runs: enough that, with the old generation
/// deleted at once, scans fail in every run seen.
const ROTATIONS: usize = 30;

/// Builds tests/runtimes/certdirscan.go into `dir`.
fn build_scanner(dir: &Path) -> PathBuf {
    let go = tools::require("go");
    let binary = dir.join("certdirscan");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtimes/certdirscan.go");
    let mut build = tools::clean_command(s(&go));
    build
        .args(["build", "-o"])
        .arg(&binary)
        .arg(source)
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", "0");
    let out = tools::run(&mut build, Duration::from_secs(300));
    assert!(out.ok(), "go build:\n{}", out.text());
    binary
}

/// The versioned directories in `out` (`.certs-*`).
fn generations(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".certs-"))
        .collect()
}

/// `scans=N failed_path=N failed_resolved=N` from the scanner's first line.
fn counts(report: &str) -> [u64; 3] {
    let first = report.lines().next().unwrap_or_default();
    let mut values = first
        .split_whitespace()
        .map(|kv| kv.split_once('=').and_then(|(_, v)| v.parse().ok()));
    [(); 3].map(|()| {
        values
            .next()
            .flatten()
            .unwrap_or_else(|| panic!("scanner report: {report}"))
    })
}

#[test]
fn go_scans_of_certs_during_rotations_always_trust_the_old_or_the_new_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let scanner = build_scanner(tmp.path());
    // A re-key: the same subject, so both generations hold the CA under the
    // same hashed name, as OpenSSL and Go look it up.
    let (old, new) = (pki::root("Scan CA"), pki::root("Scan CA"));
    let leaves = [(&old, "old.pem"), (&new, "new.pem")].map(|(ca, name)| {
        let path = tmp.path().join(name);
        ca.leaf("scanned").write_pem(&path);
        path
    });
    let f = Fixture::with_ca(&old.pem());
    let out = &f.out;
    // The embedded base: a directory of about 150 files takes a while to scan.
    let mut d = f.daemon().base("embedded").no_debounce().resync(1).start();
    d.wait_bundle("old CA", |b| b.contains(&old.sha256()));

    let stop = tmp.path().join("stop");
    let mut scan = Command::new(&scanner);
    scan.arg(out.join(CERTS))
        .arg(&stop)
        .args(&leaves)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = scan.spawn().expect("start the Go scanner");
    for i in 0..ROTATIONS {
        let ca = if i % 2 == 0 { &new } else { &old };
        f.secret.write(&[("ca.crt", ca.pem().as_bytes())]);
        d.wait_bundle("rotated", |b| b.contains(&ca.sha256()));
    }
    std::fs::write(&stop, b"").unwrap();
    let done = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(
        done.status.success(),
        "scanner: {}\n{report}{}",
        done.status,
        String::from_utf8_lossy(&done.stderr)
    );
    let [scans, failed_path, failed_resolved] = counts(&report);
    eprintln!("{scans} scan rounds during {ROTATIONS} rotations");
    assert!(scans >= ROTATIONS as u64, "the scanner kept up: {report}");
    assert_eq!(
        (failed_path, failed_resolved),
        (0, 0),
        "scans that trusted neither CA:\n{report}"
    );

    // Retired generations go at a later publish (the resync) after the grace.
    wait_for_else(
        PATIENCE,
        || format!("generations left: {:?}", generations(out)),
        || (generations(out).len() == 1).then_some(()),
    );
    wait_until(PATIENCE, "still running", || d.status().is_object());
}

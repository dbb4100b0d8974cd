//! What the out-dir holds after publishing went wrong: a publish that failed
//! for want of file descriptors leaves nothing temporary behind, before and
//! after SIGTERM (issue 24.9), and a start after `kill -9` between the two
//! swaps makes `certs/` agree with the bundle before anything else (24.10).

mod common;

use common::bundle::{self, CERTS};
use common::daemon::Fixture;
use common::{pki, publish_once, tools, wait_until, PATIENCE};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `prlimit --pid PID --nofile=N:N` (util-linux), the `ulimit -n` of a
/// running process.
fn limit_descriptors(pid: i32, n: u64) {
    let mut cmd = Command::new(tools::require("prlimit"));
    cmd.arg(format!("--pid={pid}"))
        .arg(format!("--nofile={n}:{n}"));
    let out = tools::run(&mut cmd, Duration::from_secs(10));
    assert!(out.ok(), "prlimit:\n{}", out.text());
}

/// The entries of `out` left by an unfinished publish (`.tmp-*`), directories
/// included.
fn temporaries(out: &Path) -> Vec<String> {
    common::temp_files(out)
}

#[test]
fn a_publish_failing_for_want_of_descriptors_leaves_no_temporary_directory() {
    let ca = pki::root("Descriptor CA");
    let f = Fixture::with_ca(&ca.pem());
    let out = &f.out;
    let mut d = f.daemon().resync(1).start();
    d.wait_bundle("published", |b| b == [ca.sha256()]);

    // No new descriptor at all (0-2 are open): reading the source fails (its
    // last good certificates are kept), and so does the rebuild of the altered
    // certs/, right after it created its temporary directory.
    limit_descriptors(d.pid(), 3);
    for e in std::fs::read_dir(out.join(CERTS)).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    wait_until(PATIENCE, "two failed publishes", || {
        d.logs().matches("publishing failed").count() >= 2
    });
    let left = temporaries(out);
    assert!(
        left.is_empty(),
        "a failed publish left {left:?}; logs:\n{}",
        d.logs_tail()
    );
    let st = d.stop();
    assert!(st.success(), "{st}");
    let left = temporaries(out);
    assert!(left.is_empty(), "after SIGTERM: {left:?}");
    // The next start publishes in full.
    let mut d = f.daemon().start();
    d.wait_bundle("published again", |b| b == [ca.sha256()]);
    assert_eq!(bundle::hashed_dir_map(&out.join(CERTS), false).len(), 1);
}

/// `trust-injector run ... --out-dir OUT` under strace, which injects
/// `inject` (strace's `-e inject=` syntax) into the syscalls `trace`; the
/// process is expected to die of the injected SIGKILL.
fn run_killed_at(trace: &str, inject: &str, source: &Path, out: &Path) {
    let strace = tools::require("strace");
    let mut cmd = tools::clean_command(common::s(&strace));
    cmd.args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={trace}"))
        .arg("-e")
        .arg(format!("inject={trace}:{inject}"))
        .arg(common::bin())
        .args([
            "run",
            "--base",
            "none",
            "--resync",
            "0",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--source")
        .arg(source)
        .arg("--out-dir")
        .arg(out)
        .env("TRUST_INJECTOR_LOG", "info");
    let res = tools::run(&mut cmd, Duration::from_secs(60));
    assert!(!res.ok(), "the injected SIGKILL ended it:\n{}", res.text());
}

/// The fingerprints `certs/` holds.
fn certs_set(out: &Path) -> Vec<String> {
    bundle::hashed_dir_map(&out.join(CERTS), false)
        .into_values()
        .collect()
}

#[test]
fn a_start_after_kill_9_between_the_two_swaps_makes_certs_agree_with_the_bundle_first() {
    let (a, b) = (pki::root("Swap A"), pki::root("Swap B"));
    let f = Fixture::with_ca(&a.pem());
    let (out, secret) = (&f.out, f.secret.dir());
    publish_once(secret, "none", out, &[]);
    f.secret.write(&[("ca.crt", b.pem().as_bytes())]);

    // kill -9 between the swaps, at the same point every time: the third
    // rename of the publish is the bundle's (the new generation's directory
    // and the `certs` symlink are renamed before it).
    run_killed_at(
        "rename,renameat,renameat2",
        "signal=KILL:when=3",
        secret,
        out,
    );
    assert_eq!(bundle::read_bundle(out).unwrap(), [a.sha256()]);
    assert_eq!(certs_set(out), [b.sha256()], "the kill left them apart");

    // The next start dies at its first read of a source (openat2): what it
    // did before reading anything already made certs/ agree with the bundle.
    run_killed_at("openat2", "signal=KILL", secret, out);
    assert_eq!(bundle::read_bundle(out).unwrap(), [a.sha256()]);
    assert_eq!(certs_set(out), [a.sha256()], "certs/ back to the bundle's");

    // And a start that runs publishes B whole.
    publish_once(secret, "none", out, &[]);
    assert_eq!(bundle::read_bundle(out).unwrap(), [b.sha256()]);
    assert_eq!(certs_set(out), [b.sha256()]);
    common::assert_clean_out_dir(out);
}

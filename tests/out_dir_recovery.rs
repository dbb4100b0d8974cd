//! What the out-dir holds after publishing went wrong: a publish that failed
//! for want of file descriptors leaves nothing temporary behind, before and
//! after SIGTERM (issue 24.9), and a start after `kill -9` between the two
//! swaps makes `certs/` agree with the bundle before anything else (24.10).

mod common;

use common::bundle::{self, CERTS};
use common::daemon::Fixture;
use common::{pki, tools, wait_until, PATIENCE};
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

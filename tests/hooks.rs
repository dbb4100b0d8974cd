//! `--on-change-url` and `--on-change-signal`: the application hears about a
//! changed bundle, never about the first publish, and `/status`, the metric and
//! the log say how each notification went.

mod common;

use common::daemon::{metric_sum, Daemon, Fixture};
use common::endpoint::Endpoint;
use common::pki::root;
use common::{tools, wait_until, PATIENCE};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

fn notifications(daemon: &Daemon, kind: &str, outcome: &str) -> f64 {
    let text = daemon.metrics();
    let wanted = format!("kind=\"{kind}\"");
    let wanted_outcome = format!("outcome=\"{outcome}\"");
    let lines: String = text
        .lines()
        .filter(|l| l.contains(&wanted) && l.contains(&wanted_outcome))
        .map(|l| format!("{l}\n"))
        .collect();
    metric_sum(&lines, "trust_injector_notifications_total").unwrap_or(0.0)
}

/// Polls `f` for up to PATIENCE; whether it became true.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    common::poll_for(PATIENCE, || f().then_some(())).is_some() || f()
}

/// Waits until the reconcile under way, and the next one (a resync: these
/// daemons run with `--resync 1`), have ended: a notification they should not
/// have sent would have been sent by then (hooks start as a reconcile ends).
fn settle(daemon: &Daemon) {
    daemon.wait_reconciles_done(1);
}

#[test]
fn url_hook_posts_once_per_changed_publish_never_for_the_first() {
    let (a, b) = (root("Hook A Root CA"), root("Hook B Root CA"));
    let f = Fixture::with_ca(&a.pem());
    let secret = &f.secret;
    let endpoint = Endpoint::start(&[200]);

    let mut daemon = f
        .daemon()
        .no_debounce()
        .resync(1)
        .args(["--on-change-url", &endpoint.url()])
        .start();
    daemon.wait_bundle("root A", |f| f == [a.sha256()]);
    // First publish, then at least one resync and a SIGHUP that change nothing.
    settle(&daemon);
    daemon.signal(libc::SIGHUP);
    settle(&daemon);
    assert!(
        endpoint.received().is_empty(),
        "no POST for the first publish or for unchanged re-reads: {:?}",
        endpoint.received()
    );
    assert!(daemon.status()["notifications"]["last_url"].is_null());

    secret.write(&[("ca.crt", b.pem().as_bytes())]);
    daemon.wait_bundle("root B", |f| f == [b.sha256()]);
    wait_until(PATIENCE, "one POST", || endpoint.received().len() == 1);
    let sha = daemon.status()["bundle"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let first = &endpoint.received()[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/-/reload")
    );
    assert_eq!(
        first.sha256.as_deref(),
        Some(sha.as_str()),
        "names the bundle"
    );

    secret.write(&[
        ("ca.crt", b.pem().as_bytes()),
        ("old.crt", a.pem().as_bytes()),
    ]);
    daemon.wait_bundle("roots A and B", |f| f.len() == 2);
    // One POST per publish that changed the bundle: every publish but the
    // first (nothing here restores deleted output, the other kind of write).
    let changed_publishes = || {
        daemon
            .metric("trust_injector_publishes_total")
            .unwrap_or(0.0) as usize
            - 1
    };
    if !eventually(|| {
        let n = endpoint.received().len();
        n >= 2 && n == changed_publishes()
    }) {
        panic!(
            "expected a second POST, one per changed publish: {:?}\nlogs:\n{}",
            endpoint.received(),
            daemon.logs()
        );
    }
    settle(&daemon);
    assert_eq!(
        endpoint.received().len(),
        changed_publishes(),
        "exactly one POST per change"
    );
    let final_sha = daemon.status()["bundle"]["sha256"].clone();
    assert_eq!(
        endpoint.received().last().unwrap().sha256.as_deref(),
        final_sha.as_str()
    );

    daemon.wait_status("last_url ok in /status", |st| {
        st["notifications"]["last_url"]["outcome"] == "ok"
            && st["notifications"]["last_url"]["bundle_sha256"] == st["bundle"]["sha256"]
    });
    let last = daemon.status()["notifications"]["last_url"].clone();
    assert!(
        last["detail"].as_str().unwrap().contains("HTTP 200"),
        "{last}"
    );
    assert!(
        last["time"].as_str().is_some_and(|t| t.len() >= 20),
        "{last}"
    );
    assert_eq!(
        notifications(&daemon, "url", "ok"),
        endpoint.received().len() as f64
    );
    assert_eq!(notifications(&daemon, "url", "error"), 0.0);
    assert!(
        !common::log_lines_about(&daemon.logs(), "notified application", &["info"]).is_empty(),
        "the log says so:\n{}",
        daemon.logs()
    );
    assert!(daemon.stop().success());
}

#[test]
fn url_hook_retries_a_failing_endpoint_and_reports_giving_up() {
    let (a, b, c) = (root("Retry A"), root("Retry B"), root("Retry C"));
    let f = Fixture::with_ca(&a.pem());
    let secret = &f.secret;
    // Two failures, then success; from the 4th request on, failures only.
    let endpoint = Endpoint::start(&[503, 500, 200, 503]);

    let mut daemon = f
        .daemon()
        .no_debounce()
        .resync(0)
        .args(["--on-change-url", &endpoint.url()])
        .start();
    daemon.wait_bundle("root A", |f| f == [a.sha256()]);

    secret.write(&[("ca.crt", b.pem().as_bytes())]);
    daemon.wait_bundle("root B", |f| f == [b.sha256()]);
    wait_until(PATIENCE, "three attempts", || {
        endpoint.received().len() == 3
    });
    daemon.wait_status("last_url ok after retries", |st| {
        st["notifications"]["last_url"]["outcome"] == "ok"
    });
    let detail = daemon.status()["notifications"]["last_url"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("attempt 3"), "{detail}");
    assert_eq!(notifications(&daemon, "url", "ok"), 1.0);

    // An endpoint that keeps failing: a bounded number of attempts, then an
    // error in /status, the metric and the log; the daemon carries on.
    secret.write(&[("ca.crt", c.pem().as_bytes())]);
    daemon.wait_bundle("root C", |f| f == [c.sha256()]);
    daemon.wait_status("last_url error", |st| {
        st["notifications"]["last_url"]["outcome"] == "error"
    });
    let attempts = endpoint.received().len() - 3;
    assert_eq!(attempts, 4, "4 attempts before giving up");
    let detail = daemon.status()["notifications"]["last_url"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("HTTP 503"), "{detail}");
    assert_eq!(notifications(&daemon, "url", "error"), 1.0);
    assert!(
        !common::log_lines_about(&daemon.logs(), "could not notify application", &["warn"])
            .is_empty(),
        "{}",
        daemon.logs()
    );
    daemon.assert_running("after a failed notification");
    assert!(daemon.stop().success());
}

/// A Python process that renames itself (prctl PR_SET_NAME, what
/// `/proc/PID/comm` shows) and records every SIGHUP in a file.
const SIGNAL_TARGET: &str = r#"
import ctypes, signal, sys, time
name, log = sys.argv[1].encode(), sys.argv[2]
PR_SET_NAME = 15
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
    sys.exit("prctl failed")
def on_hup(signum, frame):
    with open(log, "a") as f:
        f.write("HUP\n")
signal.signal(signal.SIGHUP, on_hup)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"#;

struct Target(Child);

impl Target {
    fn start(name: &str, log: &Path) -> Target {
        let mut child = tools::clean_command("python3")
            .arg("-c")
            .arg(SIGNAL_TARGET)
            .arg(name)
            .arg(log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 signal target");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "signal target did not start");
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap();
        assert_eq!(comm.trim(), name, "the target renamed itself");
        Target(child)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hups(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn signal_hook_reaches_the_named_process_on_change_only() {
    let (a, b) = (root("Signal A"), root("Signal B"));
    let f = Fixture::with_ca(&a.pem());
    let secret = &f.secret;
    // Unique per test process, so parallel runs never signal each other's.
    let name = format!("ti-hup-{}", std::process::id() % 100_000);
    let log = f.path().join("hups");
    let target = Target::start(&name, &log);

    let mut daemon = f
        .daemon()
        .no_debounce()
        .resync(1)
        .args(["--on-change-signal", &format!("HUP:{name}")])
        .start();
    daemon.wait_bundle("root A", |f| f == [a.sha256()]);
    settle(&daemon);
    assert_eq!(hups(&log), 0, "no signal for the first publish or a resync");
    assert!(daemon.status()["notifications"]["last_signal"].is_null());

    secret.write(&[("ca.crt", b.pem().as_bytes())]);
    daemon.wait_bundle("root B", |f| f == [b.sha256()]);
    wait_until(PATIENCE, "SIGHUP received", || hups(&log) == 1);
    daemon.wait_status("last_signal ok", |st| {
        st["notifications"]["last_signal"]["outcome"] == "ok"
            && st["notifications"]["last_signal"]["bundle_sha256"] == st["bundle"]["sha256"]
    });
    let detail = daemon.status()["notifications"]["last_signal"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("1 process"), "{detail}");
    assert_eq!(notifications(&daemon, "signal", "ok"), 1.0);
    settle(&daemon);
    assert_eq!(hups(&log), 1, "one signal per change");

    // The application is gone: the next change is reported as an error.
    drop(target);
    secret.write(&[("ca.crt", a.pem().as_bytes())]);
    daemon.wait_bundle("root A again", |f| f == [a.sha256()]);
    daemon.wait_status("last_signal error", |st| {
        st["notifications"]["last_signal"]["outcome"] == "error"
    });
    let detail = daemon.status()["notifications"]["last_signal"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("no process"), "{detail}");
    assert_eq!(notifications(&daemon, "signal", "error"), 1.0);
    assert!(daemon.stop().success());
}

//! The HTTP endpoints: probes, Prometheus metrics with the contract's names, and
//! /status describing exactly what is on disk.

mod common;

use common::bundle::{self, sha256_hex, BUNDLE};
use common::daemon::{metric_sum, Daemon, Fixture};
use common::pki::{self, Chain};
use common::s;
use serde_json::Value;

const METRICS: &[&str] = &[
    "trust_injector_bundle_certificates",
    "trust_injector_custom_certificates",
    "trust_injector_publishes_total",
    "trust_injector_source_errors_total",
    "trust_injector_last_publish_timestamp_seconds",
    "trust_injector_certificate_expiry_timestamp_seconds",
    "trust_injector_build_info",
];

/// Fingerprints may be printed as lower/upper hex, with or without colons.
fn norm(fp: &str) -> String {
    fp.replace(':', "").to_ascii_lowercase()
}

/// Every string in a JSON document.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|i| strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| strings(i, out)),
        _ => {}
    }
}

fn has_string(v: &Value, pred: impl Fn(&str) -> bool) -> bool {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.iter().any(|s| pred(s))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn probes_metrics_and_status_describe_the_published_bundle() {
    let f = Fixture::new();
    let chain = Chain::new("Endpoints");
    // A subject built to break naive label escaping and line-oriented formats.
    let evil =
        pki::root("Evil \"Quote\" \\ back\nslash {label=\"x\"} 1\n-----END CERTIFICATE-----\n# x");
    let secret = &f.secret;
    secret.write(&[
        ("root.crt", chain.root.pem().as_bytes()),
        ("intermediate.crt", chain.intermediate.pem().as_bytes()),
        ("evil.crt", evil.pem().as_bytes()),
    ]);
    let out = &f.out;
    let started = unix_now();
    let mut d = f.daemon().base("embedded").start();
    let customs = [&evil, &chain.intermediate, &chain.root];
    let fps = d.wait_bundle("custom CAs", |b| {
        customs.iter().all(|c| b.contains(&c.sha256()))
    });

    assert_eq!(d.get("/healthz").0, 200);
    assert_eq!(d.get("/readyz").0, 200);
    assert_eq!(d.get("/no-such-endpoint").0, 404);

    // --- /metrics ---
    let m = d.metrics();
    for name in METRICS {
        assert!(
            metric_sum(&m, name).is_some(),
            "/metrics has a sample of {name}:\n{m}"
        );
    }
    assert_eq!(
        metric_sum(&m, "trust_injector_bundle_certificates"),
        Some(fps.len() as f64)
    );
    assert_eq!(
        metric_sum(&m, "trust_injector_custom_certificates"),
        Some(3.0)
    );
    assert!(metric_sum(&m, "trust_injector_publishes_total").unwrap() >= 1.0);
    let last = metric_sum(&m, "trust_injector_last_publish_timestamp_seconds").unwrap();
    assert!(
        last >= started - 5.0 && last <= unix_now() + 5.0,
        "last publish timestamp {last} is about now"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("trust_injector_build_info{")
                && l.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))),
        "build_info carries the version:\n{m}"
    );
    let expiry: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("trust_injector_certificate_expiry_timestamp_seconds{"))
        .collect();
    assert_eq!(expiry.len(), 3, "one expiry series per custom CA:\n{m}");
    for c in customs {
        let line = expiry
            .iter()
            .find(|l| norm(l).contains(&c.sha256()))
            .unwrap_or_else(|| panic!("expiry series for {}:\n{m}", c.sha256()));
        assert!(line.contains("subject="), "{line}");
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let want = c.cert.params().not_after.unix_timestamp() as f64;
        assert!(
            (v - want).abs() < 2.0,
            "expiry {v} vs not_after {want}: {line}"
        );
    }
    // Every line of the exposition is a comment or `name[{labels}] value`.
    for l in m.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        assert!(
            l.starts_with("trust_injector_")
                || l.starts_with("process_")
                || l.starts_with("go_")
                || l.split(['{', ' '])
                    .next()
                    .unwrap()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "malformed exposition line (label escaping?): {l:?}"
        );
        assert!(
            l.rsplit(' ').next().unwrap().parse::<f64>().is_ok(),
            "malformed exposition line (label escaping?): {l:?}"
        );
    }

    // --- /status ---
    let file_sha = sha256_hex(&std::fs::read(out.join(BUNDLE)).unwrap());
    let st = d.status();
    if let Some(b) = st.get("bundle") {
        assert_eq!(
            b.get("sha256").and_then(Value::as_str).map(norm),
            Some(file_sha.clone()),
            "bundle.sha256 is the SHA-256 of the file on disk: {b}"
        );
        let count = b
            .as_object()
            .unwrap()
            .values()
            .any(|v| v.as_u64() == Some(fps.len() as u64));
        assert!(count, "bundle certificate count {} in {b}", fps.len());
    } else {
        panic!("/status has no `bundle` object: {st}");
    }
    assert!(
        has_string(&st, |x| x.contains(s(&out.join(BUNDLE)))
            || x.contains(s(out))),
        "/status names the bundle path"
    );
    assert!(
        has_string(&st, |x| x.contains(s(secret.dir()))),
        "/status names the source"
    );
    for c in customs {
        assert!(
            has_string(&st, |x| norm(x) == c.sha256()),
            "/status lists custom certificate {}",
            c.sha256()
        );
    }
    assert!(
        has_string(&st, |x| x.contains("Endpoints Test Intermediate CA")),
        "/status lists subjects"
    );

    // After a change, /status follows the file on disk.
    secret.write(&[("root.crt", chain.root.pem().as_bytes())]);
    d.wait_bundle("intermediate and evil removed", |b| {
        !b.contains(&evil.sha256()) && b.contains(&chain.root.sha256())
    });
    common::wait_until(common::PATIENCE, "/status follows the new bundle", || {
        let file_sha = sha256_hex(&std::fs::read(out.join(BUNDLE)).unwrap());
        d.status()["bundle"]["sha256"].as_str().map(norm) == Some(file_sha)
    });
    assert_eq!(
        d.metric("trust_injector_custom_certificates"),
        Some(1.0),
        "custom count follows"
    );
    // The published bundle is well formed even with that subject around.
    bundle::fingerprints(&std::fs::read_to_string(out.join(BUNDLE)).unwrap()).unwrap();
    let st = d.stop();
    assert!(st.success(), "{st}");
}

/// What a real Prometheus server (2.42) sends when it scrapes.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `promtool check metrics` on a 0.0.4 body: the Prometheus project's own parser
/// and linter. Returns its output; panics if it rejects the body.
fn promtool_check(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, body).unwrap();
    let out = common::tools::clean_command("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics rejects the 0.0.4 body: {text}\nbody:\n{body}"
    );
    text
}

#[test]
fn metrics_answer_in_the_format_the_scraper_asks_for() {
    let f = Fixture::new();
    let secret = &f.secret;
    let chain = Chain::new("Formats");
    secret.write(&[("root.crt", chain.root.pem().as_bytes())]);
    let d = f.daemon().start();

    // No Accept header, or one that does not ask for OpenMetrics: the 0.0.4 text format.
    for accept in [None, Some("text/plain;version=0.0.4"), Some("*/*")] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("Accept", *a)).collect();
        let r = d.get_with("/metrics", &headers);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "Accept {accept:?}"
        );
        assert!(
            !r.body.contains("# EOF"),
            "no OpenMetrics EOF in 0.0.4:\n{}",
            r.body
        );
        assert!(
            !r.body
                .lines()
                .any(|l| l.starts_with("# TYPE") && l.ends_with(" info")),
            "no info type in 0.0.4:\n{}",
            r.body
        );
        // Every TYPE line names the samples that follow it, as 0.0.4 requires.
        assert!(r
            .body
            .contains("# TYPE trust_injector_publishes_total counter\n"));
        assert!(r.body.contains("# TYPE trust_injector_build_info gauge\n"));
        promtool_check(&r.body);
        assert_eq!(
            metric_sum(&r.body, "trust_injector_custom_certificates"),
            Some(1.0)
        );
    }

    // Prometheus's own Accept header: OpenMetrics, labelled as such.
    let r = d.get_with("/metrics", &[("Accept", PROMETHEUS_ACCEPT)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    assert!(r.body.contains("# TYPE trust_injector_build info\n"));
    assert!(r.body.contains("# TYPE trust_injector_publishes counter\n"));
    assert_eq!(
        metric_sum(&r.body, "trust_injector_publishes_total"),
        metric_sum(&d.metrics(), "trust_injector_publishes_total"),
        "the same samples in both formats"
    );
}

/// The `/readyz` answer now.
fn readyz(d: &Daemon) -> (u16, String) {
    d.get("/readyz")
}

#[test]
fn readyz_waits_for_every_existing_source_to_read_without_error_then_stays_ready() {
    let f = Fixture::new();
    let tmp = f.path();
    let good = pki::root("Ready Good CA");
    let secret = &f.secret;
    let broken = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
    secret.write(&[
        ("good.crt", good.pem().as_bytes()),
        ("broken.crt", broken.as_bytes()),
    ]);
    // A missing source (an `optional: true` Secret that does not exist) never blocks.
    let missing = tmp.join("optional-secret");
    let out = &f.out;
    // `run --once` publishes elsewhere: two writers must not share an out-dir.
    let out_once = tmp.join("out-once");
    std::fs::create_dir(&out_once).unwrap();
    let args = [
        "--source",
        s(secret.dir()),
        "--source",
        s(&missing),
        "--base",
        "none",
        "--resync",
        "0",
    ];
    let mut d = Daemon::builder(out).args(args).no_wait().start();
    d.wait_published();
    assert!(bundle::read_bundle(out).unwrap().contains(&good.sha256()));
    // Published, but not every source read cleanly: not ready, and it says why.
    for _ in 0..3 {
        let (code, body) = readyz(&d);
        assert_eq!(code, 503, "a source in error at start: not ready ({body})");
        assert!(body.contains("broken.crt"), "names the file: {body}");
        // Until the re-read it asks for has begun: the loop reads one at a
        // time, so by the last probe the first of them has ended.
        let before = d.reconciles();
        d.signal(libc::SIGHUP);
        d.wait_reconciles(before + 1.0);
    }
    // `run --once` holds an init container back in exactly the same case.
    let once = common::run_once(&[&args[..], &["--out-dir", s(&out_once)]].concat());
    assert_eq!(once.code(), Some(1), "{}", once.text());

    // Fixed: ready, and at the moment /readyz turns 200 the fix is published.
    secret.write(&[("good.crt", good.pem().as_bytes())]);
    common::wait_until(
        common::PATIENCE,
        "/readyz 200 once the source reads cleanly",
        || readyz(&d).0 == 200,
    );
    assert_eq!(
        bundle::read_bundle(out),
        Some(vec![good.sha256()]),
        "ready means the clean read is published"
    );
    assert_eq!(d.status()["ready"], true);
    common::run_once_ok(&[&args[..], &["--out-dir", s(&out_once)]].concat());

    // Broken again later: stays ready (the last good CA stays published).
    let errors = d.metric("trust_injector_source_errors_total").unwrap();
    secret.write(&[
        ("good.crt", good.pem().as_bytes()),
        ("broken.crt", broken.as_bytes()),
    ]);
    common::wait_until(common::PATIENCE, "the new error counted", || {
        d.metric("trust_injector_source_errors_total").unwrap() > errors
    });
    assert_eq!(readyz(&d).0, 200, "once ready, stays ready");
    assert!(common::error_about(&d.status(), "broken.crt").is_some());
}

/// The image's user.
const NONROOT: u32 = 65532;

#[test]
fn unreadable_secret_file_is_not_ready_and_the_error_says_how_to_fix_it() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test runs the sidecar as uid {NONROOT} next to a root-owned 0400 Secret file and needs root (CI runs as root)"
    );
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let tmp = f.path();
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca = pki::root("Private Gateway CA");
    let secret = &f.secret;
    secret.write(&[("ca.crt", ca.pem().as_bytes())]);
    // `defaultMode: 0400` on a root-owned Secret volume (chmod follows the key's
    // symlinks to the real file).
    let key = secret.dir().join("ca.crt");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    let out = &f.out;
    std::os::unix::fs::chown(out, Some(NONROOT), Some(NONROOT)).unwrap();
    let out_once = tmp.join("out-once");
    std::fs::create_dir(&out_once).unwrap();
    std::os::unix::fs::chown(&out_once, Some(NONROOT), Some(NONROOT)).unwrap();
    let args = [
        "--source",
        s(secret.dir()),
        "--base",
        "embedded",
        "--resync",
        "0",
    ];

    let mut d = Daemon::builder(out)
        .args(args)
        .uid(NONROOT)
        .no_wait()
        .start();
    d.wait_published();
    let (code, body) = readyz(&d);
    assert_eq!(
        code, 503,
        "the Secret's CA is not in the bundle: not ready ({body})"
    );
    let st = d.status();
    let err = common::error_about(&st, "ca.crt")
        .unwrap_or_else(|| panic!("/status shows the file's error: {st:#}"))
        .to_string();
    for want in [
        s(&key),
        &format!("uid {NONROOT}"),
        "defaultMode: 0444",
        "fsGroup",
    ] {
        assert!(err.contains(want), "the error names {want:?}: {err}");
        assert!(
            d.logs().contains(want),
            "the log names {want:?}:\n{}",
            d.logs()
        );
    }

    // The init-container variant agrees, with the same message.
    let once = |want: i32| {
        use std::os::unix::process::CommandExt;
        let mut cmd = common::trust_injector();
        cmd.args([
            "run",
            "--once",
            "--listen",
            "off",
            "--out-dir",
            s(&out_once),
        ])
        .args(args)
        .uid(NONROOT)
        .gid(NONROOT);
        let o = common::tools::run(&mut cmd, std::time::Duration::from_secs(60));
        assert_eq!(o.code(), Some(want), "{}", o.text());
        o.text()
    };
    let text = once(1);
    assert!(
        text.contains("defaultMode: 0444") && text.contains(&format!("uid {NONROOT}")),
        "{text}"
    );

    // The fix: readable by everyone, as `defaultMode: 0444` makes it.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o444)).unwrap();
    d.signal(libc::SIGHUP);
    common::wait_until(common::PATIENCE, "/readyz 200 after the fix", || {
        readyz(&d).0 == 200
    });
    assert!(bundle::read_bundle(out).unwrap().contains(&ca.sha256()));
    once(0);
}

/// One liveness probe the way the kubelet sends it (`timeoutSeconds: 1`).
fn probe(port: u16) -> Result<(u16, String), String> {
    common::daemon::http_request(port, "/healthz", &[], std::time::Duration::from_secs(1))
        .map(|r| (r.status, r.body))
}

#[test]
fn healthz_stays_200_while_the_loop_is_busy_with_a_storm_of_rewrites() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let f = Fixture::new();
    let secret = &f.secret;
    // About 1 MiB per version (the most a Secret holds), two versions that differ,
    // so every read parses a full Secret and every publish writes.
    let (a, b) = (pki::root("Storm A"), pki::root("Storm B"));
    let filler: Vec<pki::Cert> = (0..8).map(|i| pki::root(&format!("Storm {i}"))).collect();
    let bulk: String = filler
        .iter()
        .map(|c| c.pem())
        .collect::<String>()
        .repeat(200);
    assert!(bulk.len() > 700_000, "{}", bulk.len());
    let version = |c: &pki::Cert| format!("{bulk}{}", c.pem());
    let (va, vb) = (version(&a), version(&b));
    secret.write(&[("ca.crt", va.as_bytes())]);
    let d = f.daemon().resync(0).start();
    let before = d.metric("trust_injector_reconciles_total").unwrap();

    let stop = AtomicBool::new(false);
    let failures = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut flip = false;
            while !stop.load(Ordering::Relaxed) {
                flip = !flip;
                let v = if flip { &vb } else { &va };
                secret.write(&[("ca.crt", v.as_bytes())]);
            }
        });
        let mut failures = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            match probe(d.port) {
                Ok((200, _)) => {}
                other => failures.push(format!("{:?}: {other:?}", start.elapsed())),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
        failures
    });
    // Each re-read parses a full Secret; the loop spent the storm doing that.
    let reconciles = d.metric("trust_injector_reconciles_total").unwrap() - before;
    assert!(
        reconciles >= 2.0,
        "the storm kept the loop busy ({reconciles} reconciles)"
    );
    assert!(
        failures.is_empty(),
        "every /healthz probe answers 200 within 1 s while the loop publishes; failed: {failures:?}\n{}",
        d.logs_tail()
    );
}

#[test]
fn healthz_turns_503_when_a_reconcile_never_returns() {
    use std::time::Duration;
    // How the loop is made stuck, honestly and from outside: strace (ptrace)
    // holds every openat(2) of the sidecar at syscall entry for ten minutes, so
    // the next reconcile's first open of a source file never returns; the
    // kernel-side equivalent of a hung NFS or FUSE mount. Killing strace lets
    // the call go on.
    let f = Fixture::new();
    let tmp = f.path();
    let src = tmp.join("src");
    let ca = pki::root("Stuck CA");
    ca.write_pem(&src.join("ca.crt"));
    let mut d = f.daemon_on(&src).resync(0).start();
    assert_eq!(probe(d.port).map(|r| r.0), Ok(200));

    let trace_log = tmp.join("strace.log");
    let mut strace = common::tools::clean_command("strace")
        .args([
            "-f",
            "-e",
            "trace=openat",
            "-e",
            "inject=openat:delay_enter=600000000",
        ])
        .arg("-o")
        .arg(&trace_log)
        .arg("-p")
        .arg(d.pid().to_string())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn strace");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let strace_pid = strace.id() as i32;
    let mut stderr = strace.stderr.take().unwrap();
    let guard = Kill(&mut strace);
    // strace says "Process N attached" for each thread before it traces them.
    let attached = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut seen = String::new();
        while !seen.contains("attached") {
            match std::io::Read::read(&mut stderr, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        (seen, stderr)
    });
    let (seen, _stderr) = attached.join().unwrap();
    assert!(seen.contains("attached"), "strace attached: {seen}");
    std::thread::sleep(Duration::from_millis(500));

    // Wake the loop: its reconcile opens the source and hangs there.
    d.signal(libc::SIGHUP);
    let body = common::wait_for(
        Duration::from_secs(40),
        "/healthz 503 for the stuck loop",
        || match probe(d.port) {
            Ok((503, body)) => Some(body),
            _ => None,
        },
    );
    assert!(body.contains("stuck"), "{body}");
    // Only the loop is stuck: the server still answers everything else.
    assert_eq!(d.get("/status").0, 200);
    assert!(std::fs::read_to_string(&trace_log)
        .unwrap_or_default()
        .contains("openat"));

    // The read returns: alive again.
    // SAFETY: plain kill(2) of the strace child this test started.
    unsafe { libc::kill(strace_pid, libc::SIGTERM) };
    common::wait_until(common::PATIENCE, "strace detached and exited", || {
        guard.0.try_wait().ok().flatten().is_some()
    });
    drop(guard);
    common::wait_until(
        common::PATIENCE,
        "/healthz 200 once the read returned",
        || probe(d.port).is_ok_and(|r| r.0 == 200),
    );
    let st = d.stop();
    assert!(st.success(), "{st}");
}

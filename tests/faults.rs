//! Faults a production sidecar meets: a full output filesystem, an out-dir
//! tampered with, sources vanishing and coming back, an overflowed event queue,
//! SIGTERM in the middle of a publish, an unusable out-dir at start.
//!
//! Each test would fail if the behaviour broke; none asserts on timing beyond
//! generous "eventually" bounds.

mod common;

use common::bundle::{read_bundle, BUNDLE, CERTS};
use common::daemon::{Daemon, Fixture, RECONCILES};
use common::pki::{self, Cert};
use common::{assert_clean_out_dir, s, trust_injector, wait_until, PATIENCE};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted for one test, unmounted on drop. Needs root (CI runs as
/// root); without it the test fails saying so, it never skips.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, options: &str) -> Tmpfs {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test mounts a tmpfs to get an honest ENOSPC/EROFS and needs root (CI runs as root)"
        );
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs -o {options} failed");
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn certs_pem(certs: &[Cert]) -> String {
    certs.iter().map(|c| c.pem()).collect()
}

/// The fingerprints of `certs` in bundle order when they share one file:
/// by SHA-256.
fn fps(certs: &[Cert]) -> Vec<String> {
    let mut fps: Vec<String> = certs.iter().map(|c| c.sha256()).collect();
    fps.sort();
    fps
}

fn bundle_is(out: &Path, want: &[String]) -> bool {
    read_bundle(out).is_some_and(|b| b == want)
}

#[test]
fn full_output_filesystem_keeps_the_old_bundle_and_recovers() {
    let f = Fixture::new();
    let (out, secret) = (&f.out, &f.secret);
    let _mount = Tmpfs::mount(out, "size=4m");
    let small: Vec<Cert> = (0..2)
        .map(|i| pki::root(&format!("Small CA {i}")))
        .collect();
    secret.write(&[("ca.crt", certs_pem(&small).as_bytes())]);

    let d = f.daemon().resync(0).no_debounce().start();
    wait_until(PATIENCE, "small bundle", || bundle_is(out, &fps(&small)));
    let before = std::fs::read(out.join(BUNDLE)).unwrap();

    // Fill the filesystem, leaving far less than the big bundle needs (every
    // file of certs/ takes at least a page on tmpfs).
    let filler = out.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 4 * 1024 * 1024]);
    let big: Vec<Cert> = (0..300)
        .map(|i| pki::root(&format!("Big CA {i}")))
        .collect();
    secret.write(&[("ca.crt", certs_pem(&big).as_bytes())]);

    wait_until(PATIENCE, "a publish error to be counted", || {
        d.metric("trust_injector_publish_errors_total")
            .unwrap_or(0.0)
            >= 1.0
    });
    d.assert_running("after ENOSPC");
    assert_eq!(
        std::fs::read(out.join(BUNDLE)).unwrap(),
        before,
        "the old bundle stays intact and readable"
    );
    assert!(
        d.logs().contains("publishing failed"),
        "the error is logged:\n{}",
        d.logs()
    );
    let status = d.status();
    assert!(
        status["bundle"]["last_error"].is_string(),
        "/status shows the publish error: {status}"
    );
    assert!(
        status["bundle"]["next_retry"].is_string(),
        "/status shows when the publish is retried: {status}"
    );

    // Retried on its own: more failures follow without any event. Then, with
    // the Secret's events long handled, space frees. Nothing tells the daemon
    // (the out-dir is not watched, and --resync is off): its own retry
    // publishes the big bundle within seconds and leaves no temporary files.
    wait_until(PATIENCE, "the failed publish retried", || {
        d.metric("trust_injector_publish_errors_total")
            .unwrap_or(0.0)
            >= 2.0
    });
    // That retry has ended, and left the disk as it was.
    d.wait_reconciles_done(0);
    assert_eq!(
        std::fs::read(out.join(BUNDLE)).unwrap(),
        before,
        "still full: still the old bundle"
    );
    std::fs::remove_file(&filler).unwrap();
    wait_until(
        Duration::from_secs(15),
        "big bundle after space freed, with no event",
        || bundle_is(out, &fps(&big)),
    );
    assert_clean_out_dir(out);
    let status = d.status();
    assert!(status["bundle"]["last_error"].is_null(), "{status}");
    assert!(status["bundle"]["next_retry"].is_null(), "{status}");
    assert!(d.logs().contains("retry_in_seconds"), "{}", d.logs_tail());
}

#[test]
fn readyz_is_503_while_nothing_can_be_published_and_200_once_it_is() {
    let f = Fixture::new();
    let out = &f.out;
    let _mount = Tmpfs::mount(out, "size=1m");
    // Full from the start: the out-dir is writable (an empty file fits), but no
    // bundle does.
    let filler = out.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1024 * 1024]);
    let src = f.path().join("src");
    let ca = pki::root("Not Yet CA");
    ca.write_pem(&src.join("ca.crt"));
    let d = f.daemon_on(&src).resync(0).no_wait().start();
    wait_until(PATIENCE, "the failed first publish in /status", || {
        common::daemon::http_get(d.port, "/status").is_ok_and(|(_, body)| {
            serde_json::from_str::<serde_json::Value>(&body)
                .is_ok_and(|v| v["bundle"]["last_error"].is_string())
        })
    });
    for _ in 0..3 {
        let (code, body) = d.get("/readyz");
        assert_eq!(code, 503, "nothing published yet: {body}");
        assert!(body.contains("no bundle published yet"), "{body}");
        assert_eq!(d.get("/healthz").0, 200, "alive all the same");
        // The next retry has come and gone, failing as the disk is still full.
        d.wait_reconciles_done(0);
    }
    assert!(read_bundle(out).is_none(), "no bundle on disk");

    // Space frees: the retry publishes, and /readyz turns 200 with the bundle
    // already in place.
    std::fs::remove_file(&filler).unwrap();
    wait_until(
        Duration::from_secs(15),
        "/readyz 200 after space freed",
        || d.get("/readyz").0 == 200,
    );
    assert!(bundle_is(out, &[ca.sha256()]));
    d.assert_running("after the first publish");
}

#[test]
fn deleted_or_altered_output_is_restored() {
    let f = Fixture::new();
    let out = &f.out;
    let ca = pki::root("Restore CA");
    let _d = f
        .daemon_on(&f.plain_source("src", &ca.pem()))
        .resync(1)
        .start();
    let want = vec![ca.sha256()];
    wait_until(PATIENCE, "bundle", || bundle_is(out, &want));
    let good = std::fs::read(out.join(BUNDLE)).unwrap();

    std::fs::remove_file(out.join(BUNDLE)).unwrap();
    wait_until(PATIENCE, "deleted bundle restored", || {
        std::fs::read(out.join(BUNDLE)).is_ok_and(|b| b == good)
    });

    std::fs::write(out.join(BUNDLE), b"tampered").unwrap();
    wait_until(PATIENCE, "altered bundle restored", || {
        std::fs::read(out.join(BUNDLE)).is_ok_and(|b| b == good)
    });

    let certs = out.join(CERTS);
    let entry = std::fs::read_dir(&certs).unwrap().next().unwrap().unwrap();
    let entry_path = entry.path();
    let entry_bytes = std::fs::read(&entry_path).unwrap();
    std::fs::write(&entry_path, b"tampered").unwrap();
    wait_until(PATIENCE, "altered hashed entry restored", || {
        std::fs::read(certs.join(entry.file_name())).is_ok_and(|b| b == entry_bytes)
    });

    std::fs::remove_file(&certs).unwrap();
    wait_until(PATIENCE, "deleted certs link restored", || {
        std::fs::read(certs.join(entry.file_name())).is_ok_and(|b| b == entry_bytes)
    });
    wait_until(PATIENCE, "no leftovers", || {
        std::fs::read_dir(out).unwrap().count() == 3
    });
    assert_clean_out_dir(out);
}

#[test]
fn source_directory_deleted_and_recreated_is_followed_without_resync() {
    let (a, b) = (pki::root("Recreate A"), pki::root("Recreate B"));
    let f = Fixture::new();
    let src = f.plain_source("volumes/src", &a.pem());
    let out = &f.out;
    let _d = f.daemon_on(&src).resync(0).start();
    wait_until(PATIENCE, "A published", || bundle_is(out, &[a.sha256()]));

    std::fs::remove_dir_all(&src).unwrap();
    wait_until(PATIENCE, "A gone with its directory", || {
        bundle_is(out, &[])
    });

    b.write_pem(&src.join("ca.crt"));
    wait_until(PATIENCE, "B published from the recreated directory", || {
        bundle_is(out, &[b.sha256()])
    });
}

#[test]
fn secret_volume_that_starts_empty_gets_data_later() {
    // An `optional: true` Secret that does not exist: an empty directory.
    let f = Fixture::new();
    let (out, secret) = (&f.out, &f.secret);
    let d = f.daemon().resync(0).start();
    assert!(bundle_is(out, &[]), "ready with an empty bundle");
    assert_eq!(d.get("/readyz").0, 200);

    let ca = pki::root("Late CA");
    secret.write(&[("ca.crt", ca.pem().as_bytes())]);
    wait_until(PATIENCE, "late Secret data published", || {
        bundle_is(out, &[ca.sha256()])
    });
}

#[test]
fn overflowed_event_queue_leads_to_a_full_reread() {
    let a = pki::root("Overflow A");
    let b = pki::root("Overflow B");
    let f = Fixture::with_ca(&a.pem());
    let (out, secret) = (&f.out, &f.secret);
    let d = f.daemon().resync(0).start();
    wait_until(PATIENCE, "A published", || bundle_is(out, &[a.sha256()]));

    // Freeze the daemon (its watcher thread included) so the kernel queue,
    // 16384 events by default, overflows while nobody drains it.
    let max_queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .map(|v| v.trim().parse().unwrap_or(16384))
        .unwrap_or(16384);
    d.signal(libc::SIGSTOP);
    let noise = secret.dir().join(".noise");
    for _ in 0..(max_queued / 2 + 100) {
        std::fs::write(&noise, b"x").unwrap();
        std::fs::remove_file(&noise).unwrap();
    }
    secret.write(&[("ca.crt", b.pem().as_bytes())]);
    d.signal(libc::SIGCONT);

    wait_until(PATIENCE, "B published after the overflow", || {
        bundle_is(out, &[b.sha256()])
    });
    assert!(
        d.logs().contains("overflowed"),
        "the overflow is logged:\n{}",
        d.logs()
    );
}

#[test]
fn sigterm_during_publishing_leaves_no_partial_bundle_or_temp_files() {
    let f = Fixture::new();
    let (out, secret) = (&f.out, &f.secret);
    let set_a: Vec<Cert> = (0..150)
        .map(|i| pki::root(&format!("Term A {i}")))
        .collect();
    let set_b: Vec<Cert> = (0..150)
        .map(|i| pki::root(&format!("Term B {i}")))
        .collect();
    let (pem_a, pem_b) = (certs_pem(&set_a), certs_pem(&set_b));
    secret.write(&[("ca.crt", pem_a.as_bytes())]);

    for round in 0..8u64 {
        let mut d = f.daemon().base("embedded").resync(0).no_debounce().start();
        // Keep it publishing, then stop it at a point that moves every round.
        for i in 0..(3 + round) {
            let pem = if i % 2 == 0 { &pem_b } else { &pem_a };
            secret.write(&[("ca.crt", pem.as_bytes())]);
        }
        std::thread::sleep(Duration::from_millis(round * 3));
        d.signal(libc::SIGTERM);
        let st = d
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("round {round}: no exit within 5 s"));
        assert!(st.success(), "round {round}: exit {st}");
        assert_clean_out_dir(out);
        let bundle = read_bundle(out).expect("bundle present");
        let custom: Vec<String> = bundle[bundle.len() - 150..].to_vec();
        assert!(
            custom == fps(&set_a) || custom == fps(&set_b),
            "round {round}: bundle is exactly one whole set"
        );
    }
}

#[test]
fn read_only_out_dir_at_start_exits_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ro");
    let _mount = Tmpfs::mount(&out, "ro,size=64k");
    let src = tmp.path().join("ca.crt");
    pki::root("RO CA").write_pem(&src);
    for once in [true, false] {
        let mut cmd = trust_injector();
        cmd.args([
            "run",
            "--listen",
            "off",
            "--source",
            s(&src),
            "--out-dir",
            s(&out),
        ]);
        if once {
            cmd.arg("--once");
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "once={once}: {err}");
        assert!(err.contains(s(&out)), "names the out-dir: {err}");
    }
}

#[test]
fn idle_daemon_does_not_wake_itself_by_reading_its_sources() {
    // Reading a file emits an inotify open event in its directory; a daemon
    // that reacted to it would re-read forever (found the hard way).
    let ca = pki::root("Idle CA");
    let f = Fixture::with_ca(&ca.pem());
    let (out, secret) = (&f.out, &f.secret);
    let d = f.daemon().resync(0).no_debounce().start();
    wait_until(PATIENCE, "bundle", || bundle_is(out, &[ca.sha256()]));
    let settle = || d.metric(RECONCILES).unwrap_or(-1.0);
    let before = settle();
    // Someone else reading the Secret is not a change either.
    for _ in 0..20 {
        std::fs::read(secret.dir().join("ca.crt")).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = settle();
    assert_eq!(before, after, "no re-read without a change:\n{}", d.logs());
}

#[test]
fn certificate_expiring_while_running_is_dropped_at_that_moment() {
    // The expiry must come after the first publish, or the test would check
    // only that an already expired CA is dropped. The certificate's lifetime
    // is chosen from the measured start-up time of this very machine, and
    // doubled on the rare run where it still was not enough: every run
    // checks the real thing, an expiry while running.
    let tmp = tempfile::tempdir().unwrap();
    let lasting = pki::root("Lasting CA");
    let mut lifetime = {
        let out = tmp.path().join("probe-out");
        std::fs::create_dir(&out).unwrap();
        let src = tmp.path().join("probe-src");
        common::write_file(&src.join("ca.pem"), lasting.pem());
        let started = std::time::Instant::now();
        let d = Daemon::on_source(&out, &src).resync(0).start();
        wait_until(PATIENCE, "probe published", || {
            bundle_is(&out, &[lasting.sha256()])
        });
        drop(d);
        // Whole seconds: X.509 times have no fractions.
        Duration::from_secs(started.elapsed().as_secs() * 3 + 2)
    };
    for attempt in 0.. {
        assert!(
            attempt < 4,
            "the certificate expired before the first publish every time"
        );
        let out = tmp.path().join(format!("out-{attempt}"));
        std::fs::create_dir(&out).unwrap();
        let src = tmp.path().join(format!("src-{attempt}"));
        let now = time::OffsetDateTime::now_utc();
        let brief = pki::root_valid(
            "Brief CA",
            now - time::Duration::days(1),
            now + time::Duration::try_from(lifetime).unwrap(),
        );
        common::write_file(
            &src.join("cas.pem"),
            format!("{}{}", lasting.pem(), brief.pem()),
        );
        // No resync and no file events: only the expiry timer can act.
        let d = Daemon::on_source(&out, &src).resync(0).start();
        // One file: in bundle order by SHA-256.
        let mut both = vec![lasting.sha256(), brief.sha256()];
        both.sort();
        if !bundle_is(&out, &both) {
            // Published after it had expired: a slower start than measured.
            lifetime *= 2;
            continue;
        }
        wait_until(PATIENCE, "the expired CA dropped without an event", || {
            bundle_is(&out, &[lasting.sha256()])
        });
        assert!(
            d.logs().contains("certificate dropped"),
            "the drop is logged:\n{}",
            d.logs()
        );
        assert!(
            time::OffsetDateTime::now_utc()
                >= (now + time::Duration::try_from(lifetime).unwrap())
                    .replace_nanosecond(0)
                    .unwrap(),
            "dropped at expiry, not before"
        );
        return;
    }
}

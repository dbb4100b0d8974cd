//! SIGTERM and SIGINT stop the daemon cleanly (exit 0, nothing temporary left in
//! the out-dir); SIGHUP re-reads every source.

mod common;

use common::bundle;
use common::daemon::Fixture;
use common::pki;
use common::{assert_clean_out_dir, replace_file};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Generous bound; the contract says "within one second" but timing is not the point.
const STOP_BOUND: Duration = Duration::from_secs(5);

fn stops_cleanly_on(sig: i32) {
    let ca = pki::root("Signal CA");
    let f = Fixture::with_ca(&ca.pem());
    let out = &f.out;
    let mut d = f.daemon().start();
    d.wait_bundle("published", |b| b == [ca.sha256()]);
    d.signal(sig);
    let st = d
        .wait_exit(STOP_BOUND)
        .unwrap_or_else(|| panic!("still running {STOP_BOUND:?} after signal {sig}"));
    assert_eq!(st.code(), Some(0), "exit status after signal {sig}: {st}");
    assert_clean_out_dir(out);
    assert_eq!(bundle::read_bundle(out).unwrap(), [ca.sha256()]);
}

#[test]
fn sigterm_stops_with_exit_0_and_no_leftovers() {
    stops_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_stops_with_exit_0_and_no_leftovers() {
    stops_cleanly_on(libc::SIGINT);
}

#[test]
fn sigterm_while_publishing_leaves_no_temporary_files() {
    let cas: Vec<_> = (0..4)
        .map(|i| pki::root(&format!("Churn CA {i}")))
        .collect();
    let pems: Vec<String> = cas.iter().map(|c| c.pem()).collect();
    let f = Fixture::with_ca(&pems[0]);
    let out = &f.out;
    let mut d = f.daemon().base("embedded").no_debounce().start();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (secret, stop, pems) = (f.secret.clone(), stop.clone(), pems.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                secret.write(&[("ca.crt", pems[i % pems.len()].as_bytes())]);
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    // Let a few publishes happen (watched on disk, not over HTTP), then stop mid-churn.
    let mut seen = std::collections::BTreeSet::new();
    common::wait_until(common::PATIENCE, "publishes during churn", || {
        if let Ok(b) = std::fs::read(out.join(bundle::BUNDLE)) {
            seen.insert(bundle::sha256_hex(&b));
        }
        seen.len() >= 4
    });
    d.signal(libc::SIGTERM);
    let st = d.wait_exit(STOP_BOUND);
    stop.store(true, Ordering::SeqCst);
    churn.join().unwrap();
    let st = st.unwrap_or_else(|| {
        // Diagnose: does it stop once the events stop?
        let after = std::time::Instant::now();
        let late = d.wait_exit(Duration::from_secs(10));
        panic!(
            "still running {STOP_BOUND:?} after SIGTERM under churn; once the churn \
             stopped it {}; logs:\n{}",
            match late {
                Some(st) => format!("exited ({st}) {:?} later", after.elapsed()),
                None => "still did not exit within 10 s".to_string(),
            },
            d.logs_tail()
        )
    });
    assert_eq!(st.code(), Some(0), "{st}");
    assert_clean_out_dir(out);
    // What is left is a whole bundle.
    let b = bundle::read_bundle(out).unwrap();
    assert!(b.len() > 50);
}

#[test]
fn sighup_rereads_every_source() {
    // A file source that is a symlink to a file elsewhere: rewriting the target in
    // place produces no event in the watched directory, and resync is off, so only
    // SIGHUP can make the daemon notice.
    let f = Fixture::new();
    let v1 = pki::root("HUP CA v1");
    let v2 = pki::root("HUP CA v2");
    let real = f.path().join("elsewhere/real.crt");
    v1.write_pem(&real);
    let watched = f.path().join("watched");
    std::fs::create_dir(&watched).unwrap();
    std::os::unix::fs::symlink(&real, watched.join("ca.crt")).unwrap();
    let out = &f.out;
    let mut d = f
        .daemon_on(&watched.join("ca.crt"))
        .resync(0)
        .no_debounce()
        .start();
    d.wait_bundle("v1", |b| b == [v1.sha256()]);

    replace_file(&real, v2.pem());
    // Precondition for the test to mean anything: no re-read without the signal.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        bundle::read_bundle(out).unwrap(),
        [v1.sha256()],
        "test precondition: the change was noticed without SIGHUP (the daemon watches \
         symlink targets?), so this test cannot show SIGHUP works"
    );
    d.signal(libc::SIGHUP);
    d.wait_bundle("v2 after SIGHUP", |b| b == [v2.sha256()]);
    d.assert_running("after SIGHUP");
    let st = d.stop();
    assert!(st.success(), "{st}");
}

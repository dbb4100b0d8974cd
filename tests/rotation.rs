//! CA rotation with overlap while a client keeps connecting with a fresh TLS
//! context each time: add the new CA next to the old one, switch the server to a
//! chain from the new CA, remove the old CA. Zero failed requests, no restart.

mod common;

use common::bundle::{BUNDLE, CERTS};
use common::https::HttpsServer;
use common::rotation::Rotation;
use common::tools::{self, Trust};
use common::{wait_until, PATIENCE};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[test]
fn rotation_with_overlap_never_fails_a_request() {
    let mut r = Rotation::start(&["--resync", "0"]);
    let (old, new) = (&r.old, &r.new);
    let (secret, daemon, server) = (&r.secret, &mut r.daemon, &r.server);
    let pid = daemon.pid();
    let port = server.port;
    let out = daemon.out_dir.clone();

    // The client: alternately curl with the bundle and Python with certs/, each a
    // new process, so a new TLS context per request.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = {
        let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
        let bundle = out.join(BUNDLE);
        let certs = out.join(CERTS);
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let (what, res) = if i.is_multiple_of(2) {
                    (
                        "curl --cacert bundle",
                        tools::curl(port, Trust::File(&bundle)),
                    )
                } else {
                    (
                        "python capath=certs/",
                        tools::python(port, Trust::Dir(&certs)),
                    )
                };
                if !res.ok() {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("request {i} ({what}):\n{}", res.text()));
                }
                done.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        })
    };
    let requests_happen = |n: usize| {
        let start = done.load(Ordering::SeqCst);
        wait_until(PATIENCE, "client requests", || {
            done.load(Ordering::SeqCst) >= start + n
        });
    };
    requests_happen(4);

    // 1. Overlap: old and new CA side by side.
    secret.write(&[
        ("ca.crt", old.root.pem().as_bytes()),
        ("ca-next.crt", new.root.pem().as_bytes()),
    ]);
    daemon.wait_bundle("old and new roots", |b| {
        b.contains(&old.root.sha256()) && b.contains(&new.root.sha256()) && b.len() == 2
    });
    requests_happen(4);

    // 2. The backend switches to a certificate from the new CA.
    server.switch(&new.server_pem());
    requests_happen(6);

    // 3. The old CA goes.
    secret.write(&[("ca-next.crt", new.root.pem().as_bytes())]);
    daemon.wait_bundle("new root only", |b| b == [new.root.sha256()]);
    requests_happen(6);

    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();

    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during rotation:\n{}",
        failures.len(),
        done.load(Ordering::SeqCst),
        failures.join("\n")
    );
    daemon.assert_running("after rotation");
    assert_eq!(daemon.pid(), pid, "no restart");
    let publishes = daemon
        .metric("trust_injector_publishes_total")
        .expect("trust_injector_publishes_total in /metrics");
    assert!(publishes >= 3.0, "3 publishes at least, saw {publishes}");

    // The old CA really is distrusted now.
    let old_server = HttpsServer::start(&old.server_pem());
    let res = tools::curl(old_server.port, Trust::File(&out.join(BUNDLE)));
    assert!(
        !res.ok(),
        "old chain must no longer be trusted:\n{}",
        res.text()
    );
    let st = daemon.stop();
    assert!(st.success(), "clean stop: {st}");
}

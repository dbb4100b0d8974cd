//! Torn reads: while the Secret flips between two different sets of certificates
//! 500 times (kubelet AtomicWriter updates), two readers parse the published bundle
//! continuously. Every read must be exactly one of the two sets: never empty,
//! never partial, never a mix.

mod common;

use common::bundle::{self, BUNDLE};
use common::daemon::Fixture;
use common::pki;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const FLIPS: usize = 500;

#[test]
fn readers_only_ever_see_a_whole_set() {
    // Set A and set B share a key name with different content and each has a key
    // the other lacks, so the kubelet's symlink juggling is exercised too.
    let a1 = pki::root("Set A shared-key CA");
    let a2 = pki::root("Set A only CA");
    let b1 = pki::root("Set B shared-key CA");
    let b2 = pki::root("Set B only CA");
    let (a1p, a2p, b1p, b2p) = (a1.pem(), a2.pem(), b1.pem(), b2.pem());
    let set_a: Vec<(&str, &[u8])> = vec![("shared.crt", a1p.as_bytes()), ("a.crt", a2p.as_bytes())];
    let set_b: Vec<(&str, &[u8])> = vec![("shared.crt", b1p.as_bytes()), ("b.crt", b2p.as_bytes())];
    let fp_a: BTreeSet<String> = [a1.sha256(), a2.sha256()].into();
    let fp_b: BTreeSet<String> = [b1.sha256(), b2.sha256()].into();

    let f = Fixture::with_secret(&set_a);
    let (out, secret) = (&f.out, &f.secret);
    let mut daemon = f.daemon().no_debounce().start();
    daemon.wait_bundle("set A", |b| {
        b.iter().cloned().collect::<BTreeSet<_>>() == fp_a
    });

    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen_b_counters: Vec<Arc<AtomicU64>> =
        (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let readers: Vec<_> = seen_b_counters
        .iter()
        .map(|seen_b_shared| {
            let (stop, bad, fp_a, fp_b) = (stop.clone(), bad.clone(), fp_a.clone(), fp_b.clone());
            let seen_b_shared = seen_b_shared.clone();
            let path = out.join(BUNDLE);
            std::thread::spawn(move || {
                let (mut reads, mut seen_a, mut seen_b) = (0u64, 0u64, 0u64);
                while !stop.load(Ordering::SeqCst) {
                    let verdict = match std::fs::read_to_string(&path) {
                        Err(e) => Err(format!("read failed: {e}")),
                        Ok(text) => match bundle::fingerprints(&text) {
                            Err(e) => Err(format!("unparsable ({e}), {} bytes", text.len())),
                            Ok(fps) => {
                                let set: BTreeSet<String> = fps.iter().cloned().collect();
                                if fps.len() != set.len() {
                                    Err("duplicate certificates".into())
                                } else if set == fp_a {
                                    seen_a += 1;
                                    Ok(())
                                } else if set == fp_b {
                                    seen_b += 1;
                                    seen_b_shared.fetch_add(1, Ordering::SeqCst);
                                    Ok(())
                                } else {
                                    Err(format!(
                                        "{} certificates, neither set A nor set B",
                                        set.len()
                                    ))
                                }
                            }
                        },
                    };
                    reads += 1;
                    if let Err(e) = verdict {
                        let mut bad = bad.lock().unwrap();
                        if bad.len() < 20 {
                            bad.push(e);
                        }
                    }
                }
                (reads, seen_a, seen_b)
            })
        })
        .collect();

    for i in 1..=FLIPS {
        let set = if i % 2 == 1 { &set_b } else { &set_a };
        secret.write(set);
        if i == FLIPS / 2 + 1 {
            // Make sure the readers meet set B at least once, however the daemon
            // coalesces the flood of events.
            daemon.wait_bundle("set B mid-way", |b| {
                b.iter().cloned().collect::<BTreeSet<_>>() == fp_b
            });
        } else {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    // 500 flips end on set A.
    daemon.wait_bundle("set A at the end", |b| {
        b.iter().cloned().collect::<BTreeSet<_>>() == fp_a
    });
    stop.store(true, Ordering::SeqCst);
    let stats: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    eprintln!("reader stats (reads, set A, set B): {stats:?}");

    let bad = bad.lock().unwrap();
    assert!(bad.is_empty(), "torn or wrong reads (first 20): {bad:#?}");
    for (reads, a, b) in &stats {
        assert!(
            *reads > 0 && *a > 0 && *b > 0,
            "each reader saw both sets: {stats:?}"
        );
    }
    daemon.assert_running("after the flips");
    let st = daemon.stop();
    assert!(st.success(), "clean stop: {st}");
    // No temporary file or old certs/ version survived the churn.
    common::assert_clean_out_dir(out);
}

//! Soak: many kubelet-style swaps between Secrets of different sizes while two
//! readers parse the published bundle and read certs/ continuously. Every read
//! must be exactly one whole published set; the final bundle must equal the
//! final Secret.
//!
//! CI runs a bounded version. The full run is
//! `TRUST_INJECTOR_SOAK_SWAPS=10000 cargo test --release --test soak -- --nocapture`.

mod common;

use common::bundle::{fingerprints, read_bundle, BUNDLE, CERTS};
use common::daemon::Fixture;
use common::pki::{self, Cert};
use common::{wait_until, PATIENCE};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const DEFAULT_SWAPS: usize = 3000;

/// One Secret payload: keys and the certificates in bundle order.
struct Payload {
    files: Vec<(String, String)>,
    fingerprints: Vec<String>,
}

fn payload(certs: &[Cert], keys: usize) -> Payload {
    let keys = keys.max(1);
    let mut files: Vec<(String, String)> = (0..keys)
        .map(|k| (format!("ca-{k}.crt"), String::new()))
        .collect();
    for (i, c) in certs.iter().enumerate() {
        files[i * keys / certs.len().max(1)].1.push_str(&c.pem());
    }
    // Bundle order is files by name, a file's certificates by SHA-256.
    let fingerprints = files
        .iter()
        .flat_map(|(_, pem)| {
            let mut fps = fingerprints(pem).unwrap();
            fps.sort();
            fps
        })
        .collect();
    Payload {
        files,
        fingerprints,
    }
}

/// Reads certs/ once through its symlink: Some(set of fingerprints) when the
/// version read stayed in place throughout, None when it was swapped away
/// mid-read (not torn: a new lookup sees the new version).
fn read_certs_dir(out: &Path) -> Option<BTreeSet<String>> {
    let target = std::fs::read_link(out.join(CERTS)).ok()?;
    let dir = out.join(target);
    let mut set = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).ok()? {
        let text = std::fs::read_to_string(entry.ok()?.path()).ok()?;
        let fps = fingerprints(&text).unwrap_or_else(|e| panic!("torn hashed entry: {e}"));
        assert_eq!(fps.len(), 1, "a hashed entry holds one certificate");
        set.extend(fps);
    }
    // The old version is removed only after `certs` points elsewhere, so if
    // the link still names it now, nothing was removed while we listed.
    (std::fs::read_link(out.join(CERTS)).ok()? == dir.strip_prefix(out).ok()?).then_some(set)
}

#[test]
fn soak_swaps_never_show_a_torn_or_unexpected_read() {
    let swaps: usize = std::env::var("TRUST_INJECTOR_SOAK_SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SWAPS);
    let f = Fixture::new();
    let (out, secret) = (&f.out, &f.secret);

    let pool: Vec<Cert> = (0..150)
        .map(|i| pki::root(&format!("Soak CA {i}")))
        .collect();
    let payloads = Arc::new(vec![
        payload(&pool[..1], 1),
        payload(&pool[1..31], 3),
        payload(&pool[31..150], 5),
        payload(&pool[10..20], 2),
    ]);
    let allowed: HashSet<Vec<String>> = payloads.iter().map(|p| p.fingerprints.clone()).collect();
    let allowed_sets: HashSet<BTreeSet<String>> = allowed
        .iter()
        .map(|v| v.iter().cloned().collect())
        .collect();
    let write = |p: &Payload| {
        let files: Vec<(&str, &[u8])> = p
            .files
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        secret.write(&files);
    };
    write(&payloads[0]);
    let d = f.daemon().resync(0).no_debounce().start();
    wait_until(PATIENCE, "first payload", || {
        read_bundle(out).is_some_and(|b| b == payloads[0].fingerprints)
    });

    let stop = Arc::new(AtomicBool::new(false));
    let bundle_reads = Arc::new(AtomicU64::new(0));
    let dir_reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, out) = (Arc::clone(&stop), out.clone());
            let (allowed, allowed_sets) = (allowed.clone(), allowed_sets.clone());
            let (bundle_reads, dir_reads) = (Arc::clone(&bundle_reads), Arc::clone(&dir_reads));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let text = std::fs::read_to_string(out.join(BUNDLE)).expect("bundle readable");
                    let fps = fingerprints(&text).unwrap_or_else(|e| panic!("torn bundle: {e}"));
                    assert!(
                        allowed.contains(&fps),
                        "unexpected bundle of {} certificates",
                        fps.len()
                    );
                    bundle_reads.fetch_add(1, Ordering::Relaxed);
                    if let Some(set) = read_certs_dir(&out) {
                        assert!(
                            allowed_sets.contains(&set),
                            "unexpected certs/ of {}",
                            set.len()
                        );
                        dir_reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    for i in 0..swaps {
        write(&payloads[(i * 7 + 1) % payloads.len()]);
    }
    let last = &payloads[((swaps.max(1) - 1) * 7 + 1) % payloads.len()];
    wait_until(PATIENCE, "final bundle equals the final Secret", || {
        read_bundle(out).is_some_and(|b| b == last.fingerprints)
    });
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("a reader saw a torn or unexpected read");
    }
    d.assert_running("after the soak");
    let (b, c) = (
        bundle_reads.load(Ordering::Relaxed),
        dir_reads.load(Ordering::Relaxed),
    );
    let publishes = d.metric("trust_injector_publishes_total").unwrap_or(0.0);
    eprintln!(
        "soak: {swaps} swaps, {publishes} publishes, {b} bundle reads and {c} certs/ reads checked, 0 torn"
    );
    assert!(b > 0 && c > 0, "the readers read");
}

//! The reconciler against a real source directory and out-dir (what it
//! orchestrates is tested in its parts: inventory, ledger, status).

use super::*;
use crate::daemon::status::{BaseRequested, SourceState};
use crate::daemon::tests::run_config;

/// Two roots to play private CAs (valid for years, so the policy keeps them).
fn ca(n: usize) -> &'static [u8] {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS[n].as_ref()
}

/// A source directory with `ca.crt`, an empty out-dir, and their reconciler.
struct Fixture {
    _tmp: tempfile::TempDir,
    ca_file: PathBuf,
    out: PathBuf,
    reconciler: Reconciler,
}

fn fixture(first_ca: &[u8]) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (source, out) = (tmp.path().join("secret"), tmp.path().join("out"));
    std::fs::create_dir(&source).unwrap();
    std::fs::create_dir(&out).unwrap();
    let ca_file = source.join("ca.crt");
    std::fs::write(&ca_file, first_ca).unwrap();
    let reconciler = Reconciler::new(&run_config(&source, &out), Arc::new(Metrics::new())).unwrap();
    Fixture {
        _tmp: tmp,
        ca_file,
        out,
        reconciler,
    }
}

#[test]
fn the_first_complete_reconcile_publishes_and_makes_ready() {
    let mut f = fixture(ca(0));
    assert!(!f.reconciler.status().ready);
    let report = f.reconciler.reconcile();
    assert!(report.complete() && report.first && report.outcome.wrote());
    assert!(!report.changed, "a first publish is no change to notify");
    let status = f.reconciler.status();
    assert!(status.ready);
    assert_eq!(status.base.requested, BaseRequested::None);
    assert_eq!(status.bundle.certificates, 1);
    assert!(status.bundle.sha256.is_some() && status.bundle.last_publish.is_some());
    assert!(f.reconciler.next_expiry().is_some());
    assert_eq!(f.reconciler.retry_after(), None);
}

#[test]
fn an_unchanged_source_writes_nothing_and_a_new_ca_is_a_change() {
    let mut f = fixture(ca(0));
    f.reconciler.reconcile();
    let again = f.reconciler.reconcile();
    assert!(!again.first && !again.changed && !again.outcome.wrote());
    std::fs::write(&f.ca_file, ca(1)).unwrap();
    let rotated = f.reconciler.reconcile();
    assert!(rotated.changed && rotated.outcome.bundle_written);
}

#[test]
fn a_failed_publish_is_retried_and_cleared_by_the_next_success() {
    let mut f = fixture(ca(0));
    f.reconciler.reconcile();
    let published = f.reconciler.status().bundle.sha256;
    // A file where the out-dir was: every write fails, even as root.
    std::fs::remove_dir_all(&f.out).unwrap();
    std::fs::write(&f.out, b"").unwrap();
    std::fs::write(&f.ca_file, ca(1)).unwrap();

    let failed = f.reconciler.reconcile();
    assert!(failed.publish_error.is_some() && !failed.complete());
    assert_eq!(f.reconciler.retry_after(), Some(Duration::from_secs(1)));
    let status = f.reconciler.status();
    assert!(status.bundle.last_error.is_some() && status.bundle.next_retry.is_some());
    assert_eq!(status.bundle.sha256, published, "the last bundle stays");
    assert!(status.ready, "readiness is latched");
    f.reconciler.reconcile();
    assert_eq!(f.reconciler.retry_after(), Some(Duration::from_secs(2)));

    std::fs::remove_file(&f.out).unwrap();
    std::fs::create_dir(&f.out).unwrap();
    assert!(f.reconciler.reconcile().complete());
    assert_eq!(f.reconciler.retry_after(), None);
    let status = f.reconciler.status();
    assert_eq!(
        (status.bundle.last_error, status.bundle.next_retry),
        (None, None)
    );
}

#[test]
fn a_broken_source_holds_readiness_back_until_it_reads() {
    let mut f = fixture(b"not a certificate");
    let report = f.reconciler.reconcile();
    assert_eq!(report.errors, 1);
    assert!(report.publish_error.is_none() && !report.complete());
    let status = f.reconciler.status();
    assert!(!status.ready);
    assert_eq!(status.sources[0].state, SourceState::Error);

    std::fs::write(&f.ca_file, ca(0)).unwrap();
    assert!(f.reconciler.reconcile().complete());
    assert!(f.reconciler.status().ready);
}

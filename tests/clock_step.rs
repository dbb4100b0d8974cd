//! A step of the wall clock (issue 24.8): a CA that expires in an hour is
//! published; the daemon's clock is then stepped two hours forward with
//! libfaketime (Debian's `faketime`), never the machine's. The contract says an
//! expired certificate is dropped at that moment, not at the monotonic
//! deadline an hour away (`--resync 0`: nothing else would wake it).

mod common;

use common::daemon::Fixture;
use common::{pki, tools};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// libfaketime's thread-safe preload library, from the package that also
/// ships the `faketime` program (which is what tests/programs.tsv names).
fn libfaketime() -> PathBuf {
    let faketime = tools::require("faketime");
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ];
    dirs.iter()
        .map(|d| Path::new(d).join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{} is there but not libfaketimeMT.so.1: {}",
                faketime.display(),
                tools::missing_message("faketime")
            )
        })
}

/// Sets the daemon's clock offset: libfaketime re-reads this file at every
/// clock read (`FAKETIME_NO_CACHE`). Replaced by rename, so a read never
/// sees half a line.
fn set_offset(file: &Path, offset: &str) {
    common::replace_file(file, format!("{offset}\n"));
}

#[test]
fn a_wall_clock_step_past_an_expiry_drops_the_certificate_at_once() {
    let now = OffsetDateTime::now_utc();
    let short = pki::root_valid(
        "Short CA",
        now - Duration::days(1),
        now + Duration::hours(1),
    );
    let long = pki::root("Long CA");
    let f = Fixture::with_ca(&format!("{}{}", short.pem(), long.pem()));
    // Outside the fixture: no watched directory sees the offset change.
    let clock_dir = tempfile::tempdir().unwrap();
    let offset = clock_dir.path().join("faketime-offset");
    set_offset(&offset, "+0");
    let mut d = f
        .daemon()
        .resync(0)
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME_TIMESTAMP_FILE", &offset)
        .env("FAKETIME_NO_CACHE", "1")
        // tokio's timers keep the real monotonic clock: only the wall
        // clock is stepped, as settimeofday would.
        .env("DONT_FAKE_MONOTONIC", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env("TRUST_INJECTOR_LOG", "debug")
        .start();
    let both = {
        let mut v = vec![short.sha256(), long.sha256()];
        v.sort();
        v
    };
    d.wait_bundle("both CAs", |b| b == both);

    set_offset(&offset, "+7200");
    d.wait_bundle("the expired CA dropped", |b| b == [long.sha256()]);
    // Because of the step, and not only by a reconcile that happened to come.
    common::wait_until(common::PATIENCE, "a reconcile for the clock step", || {
        d.logs()
            .lines()
            .any(|l| l.contains("reconcile") && l.contains("reason=\"clock step\""))
    });
    assert!(d.logs().contains("the wall clock was stepped"));
}

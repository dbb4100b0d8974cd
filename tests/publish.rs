//! What lands in --out-dir: order and deduplication, file kinds, hidden entries,
//! no rewrite without change, crash leftovers cleaned, and the resync safety net
//! restoring output that was deleted or altered.

mod common;

use common::atomic_writer::AtomicWriter;
use common::bundle::{self, sha256_hex, BUNDLE, CERTS};
use common::daemon::Daemon;
use common::pki;
use common::{assert_clean_out_dir, run_once_ok, s, write_file};
use std::os::unix::fs::MetadataExt;

#[test]
fn order_is_base_then_sources_in_flag_order_files_by_name_certificates_by_sha256_deduplicated() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let [b1, b2, c1, c2, c3, c4, c5, hidden] = ["B1", "B2", "C1", "C2", "C3", "C4", "C5", "Hidden"]
        .map(|n| pki::root(&format!("Order {n}")));
    let base = p.join("base.pem");
    write_file(&base, format!("{}{}", b1.pem(), b2.pem()));

    // Source 1: a plain directory. "a.crt" holds C1, a CRL-ish block to be ignored,
    // C2 and a duplicate of a base root; "b.crt" holds C3; hidden files are skipped.
    let src1 = p.join("src1");
    let other_block =
        "-----BEGIN X509 CRL-----\nMIIBAjCB6wIBATANBgkqhkiG9w0BAQsFADAA\n-----END X509 CRL-----\n";
    write_file(
        &src1.join("a.crt"),
        format!("{}{other_block}{}{}", c1.pem(), c2.pem(), b2.pem()),
    );
    write_file(&src1.join("b.crt"), c3.pem());
    write_file(&src1.join(".hidden.crt"), hidden.pem());
    // Source 2: a DER file.
    let src2 = p.join("c4.der");
    write_file(&src2, c4.der());
    // Source 3: a kubelet-style volume with a duplicate and a new one.
    let src3 = AtomicWriter::new(&p.join("src3"));
    src3.write(&[("ca.crt", format!("{}{}", c1.pem(), c5.pem()).as_bytes())]);

    let out = p.join("out");
    std::fs::create_dir(&out).unwrap();
    run_once_ok(&[
        "--base",
        s(&base),
        "--source",
        s(&src1),
        "--source",
        s(&src2),
        "--source",
        s(src3.dir()),
        "--out-dir",
        s(&out),
    ]);
    // Within a.crt, certificates by SHA-256 (not block order).
    let mut a_crt = [c1.sha256(), c2.sha256()];
    a_crt.sort();
    let want: Vec<String> = [b1.sha256(), b2.sha256()]
        .into_iter()
        .chain(a_crt)
        .chain([&c3, &c4, &c5].iter().map(|c| c.sha256()))
        .collect();
    assert_eq!(bundle::read_bundle(&out).unwrap(), want);
    // certs/ holds the same set.
    let mut in_dir: Vec<String> = bundle::hashed_dir_map(&out.join(CERTS), false)
        .into_values()
        .collect();
    in_dir.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(in_dir, want_sorted);
}

#[test]
fn unchanged_content_is_not_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = pki::root("Stable CA");
    ca.write_pem(&tmp.path().join("src/ca.crt"));
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let src = tmp.path().join("src");
    let args = [
        "--source",
        s(&src),
        "--base",
        "embedded",
        "--out-dir",
        s(&out),
    ];
    run_once_ok(&args);
    let meta1 = std::fs::metadata(out.join(BUNDLE)).unwrap();
    let link1 = std::fs::read_link(out.join(CERTS)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    run_once_ok(&args);
    let meta2 = std::fs::metadata(out.join(BUNDLE)).unwrap();
    let link2 = std::fs::read_link(out.join(CERTS)).unwrap();
    assert_eq!(
        (meta1.ino(), meta1.mtime(), meta1.mtime_nsec()),
        (meta2.ino(), meta2.mtime(), meta2.mtime_nsec()),
        "bundle rewritten although nothing changed"
    );
    assert_eq!(link1, link2, "certs/ swapped although nothing changed");
    assert_clean_out_dir(&out);
}

#[test]
fn crash_leftovers_are_cleaned_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = pki::root("Leftover CA");
    ca.write_pem(&tmp.path().join("src/ca.crt"));
    let out = tmp.path().join("out");
    // What a crash mid-publish can leave: a temp bundle, a half-built and an old
    // versioned certs directory.
    write_file(&out.join(".tmp-ca-certificates.crt-12345"), "partial");
    write_file(&out.join(".certs-0123456789abcdef/0badc0de.0"), "old");
    write_file(&out.join(".tmp-certs-777/0badc0de.0"), "half");
    run_once_ok(&[
        "--source",
        s(&tmp.path().join("src")),
        "--base",
        "none",
        "--out-dir",
        s(&out),
    ]);
    assert_clean_out_dir(&out);
    assert_eq!(bundle::read_bundle(&out).unwrap(), [ca.sha256()]);
}

#[test]
fn resync_restores_output_that_was_deleted_or_altered() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = pki::root("Restored CA");
    let secret = AtomicWriter::new(&tmp.path().join("secret"));
    secret.write(&[("ca.crt", ca.pem().as_bytes())]);
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut d = Daemon::builder(&out)
        .args(["--source", s(secret.dir())])
        .args(["--base", "none", "--resync", "1"])
        .start();
    d.wait_bundle("published", |b| b == [ca.sha256()]);
    let good = std::fs::read(out.join(BUNDLE)).unwrap();
    let good_certs = bundle::hashed_dir_map(&out.join(CERTS), false);

    std::fs::remove_file(out.join(BUNDLE)).unwrap();
    d.wait_bundle("deleted bundle restored", |b| b == [ca.sha256()]);

    std::fs::write(out.join(BUNDLE), "tampered\n").unwrap();
    common::wait_until(common::PATIENCE, "altered bundle restored", || {
        std::fs::read(out.join(BUNDLE))
            .map(|b| b == good)
            .unwrap_or(false)
    });

    std::fs::remove_file(out.join(CERTS)).unwrap();
    common::wait_until(common::PATIENCE, "deleted certs/ restored", || {
        out.join(CERTS).is_dir() && bundle::hashed_dir_map(&out.join(CERTS), false) == good_certs
    });
    d.assert_running("after tampering");
    let st = d.stop();
    assert!(st.success(), "{st}");
    assert_eq!(
        sha256_hex(&std::fs::read(out.join(BUNDLE)).unwrap()),
        sha256_hex(&good)
    );
    assert_clean_out_dir(&out);
}

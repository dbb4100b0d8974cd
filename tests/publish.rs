//! What lands in --out-dir: order and deduplication, file kinds, hidden entries,
//! no rewrite without change, crash leftovers cleaned, and the resync safety net
//! restoring output that was deleted or altered.

mod common;

use common::atomic_writer::AtomicWriter;
use common::bundle::{self, sha256_hex, BUNDLE, CERTS};
use common::daemon::{Daemon, Fixture};
use common::pki;
use common::{assert_clean_out_dir, publish_once, run_once_ok, s, write_file};
use std::os::unix::fs::MetadataExt;

#[test]
fn order_is_base_then_sources_in_flag_order_files_by_name_certificates_by_sha256_deduplicated() {
    let f = Fixture::new();
    let p = f.path();
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

    let out = &f.out;
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
        s(out),
    ]);
    // Within a.crt, certificates by SHA-256 (not block order).
    let mut a_crt = [c1.sha256(), c2.sha256()];
    a_crt.sort();
    let want: Vec<String> = [b1.sha256(), b2.sha256()]
        .into_iter()
        .chain(a_crt)
        .chain([&c3, &c4, &c5].iter().map(|c| c.sha256()))
        .collect();
    assert_eq!(bundle::read_bundle(out).unwrap(), want);
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
    let f = Fixture::new();
    let ca = pki::root("Stable CA");
    let src = f.path().join("src");
    ca.write_pem(&src.join("ca.crt"));
    let out = &f.out;
    publish_once(&src, "embedded", out, &[]);
    let meta1 = std::fs::metadata(out.join(BUNDLE)).unwrap();
    let link1 = std::fs::read_link(out.join(CERTS)).unwrap();
    // Long enough for a rewrite to show in the mtime (the filesystem's clock
    // moves in kernel ticks, not nanoseconds).
    std::thread::sleep(std::time::Duration::from_millis(20));
    publish_once(&src, "embedded", out, &[]);
    let meta2 = std::fs::metadata(out.join(BUNDLE)).unwrap();
    let link2 = std::fs::read_link(out.join(CERTS)).unwrap();
    assert_eq!(
        (meta1.ino(), meta1.mtime(), meta1.mtime_nsec()),
        (meta2.ino(), meta2.mtime(), meta2.mtime_nsec()),
        "bundle rewritten although nothing changed"
    );
    assert_eq!(link1, link2, "certs/ swapped although nothing changed");
    assert_clean_out_dir(out);
}

#[test]
fn crash_leftovers_are_cleaned_at_start() {
    let f = Fixture::new();
    let ca = pki::root("Leftover CA");
    let src = f.path().join("src");
    ca.write_pem(&src.join("ca.crt"));
    let out = &f.out;
    // What a crash mid-publish can leave: a temp bundle, a half-built and an old
    // versioned certs directory.
    write_file(&out.join(".tmp-ca-certificates.crt-12345"), "partial");
    write_file(&out.join(".certs-0123456789abcdef/0badc0de.0"), "old");
    write_file(&out.join(".tmp-certs-777/0badc0de.0"), "half");
    let res = publish_once(&src, "none", out, &[]);
    assert_clean_out_dir(out);
    assert_eq!(bundle::read_bundle(out).unwrap(), [ca.sha256()]);
    // Said once, with the count: an operator sees that a crash happened.
    assert!(
        res.stderr.contains("removed leftovers") && res.stderr.contains("removed=3"),
        "the clean-up is logged with its count:\n{}",
        res.text()
    );
}

#[test]
fn resync_restores_output_that_was_deleted_or_altered() {
    let ca = pki::root("Restored CA");
    let f = Fixture::with_ca(&ca.pem());
    let out = &f.out;
    let mut d = f.daemon().resync(1).start();
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
    assert_clean_out_dir(out);
}

/// One traced syscall: its name and its arguments as strace printed them
/// (with `-y`, a file descriptor reads `3</path/it/refers/to>`).
struct Syscall {
    name: String,
    args: String,
}

/// `run --once ARGS` under `strace -f -y`, tracing only the calls a durable
/// publish is made of. Returns them in the order the kernel saw them.
fn traced_run_once(args: &[&str], trace: &std::path::Path) -> Vec<Syscall> {
    let mut cmd = common::tools::clean_command("strace");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("TRUST_INJECTOR_") || k == "RUST_LOG" {
            cmd.env_remove(&k);
        }
    }
    cmd.args(["-f", "-y", "-qq", "-e", "signal=none", "-o"])
        .arg(trace)
        .args([
            "-e",
            "trace=fsync,fdatasync,sync_file_range,rename,renameat,renameat2",
        ])
        .arg(common::bin())
        .args(["run", "--once"])
        .args(args);
    let out = common::tools::run(&mut cmd, std::time::Duration::from_secs(60));
    assert!(out.ok(), "strace run --once:\n{}", out.text());
    let text = std::fs::read_to_string(trace).unwrap();
    text.lines()
        .filter_map(|l| {
            // "PID name(args) = result"; unfinished/resumed halves are not
            // produced for these calls in practice, and are skipped if they are.
            let l = l.split_once(' ').map_or(l, |(_, rest)| rest).trim_start();
            let (name, rest) = l.split_once('(')?;
            // strace pads the result column: "fsync(3</out>)      = 0".
            let (args, result) = rest.rsplit_once(" = ")?;
            let args = args.trim_end().strip_suffix(')')?;
            (result.trim_start().starts_with('0')).then(|| Syscall {
                name: name.to_string(),
                args: args.to_string(),
            })
        })
        .collect()
}

fn is_sync(c: &Syscall) -> bool {
    matches!(c.name.as_str(), "fsync" | "fdatasync")
}

/// The fd argument of a sync names exactly `path` (strace -y prints `N<path>`).
fn syncs(c: &Syscall, path: &std::path::Path) -> bool {
    is_sync(c) && c.args.ends_with(&format!("<{}>", path.display()))
}

/// Index of the rename whose destination is `to` and whose source's file name
/// starts with `from_prefix`; panics listing the trace if there is none.
fn rename_index(calls: &[Syscall], from_prefix: &str, to: &std::path::Path) -> usize {
    calls
        .iter()
        .position(|c| {
            c.name.starts_with("rename")
                && c.args.contains(&format!("/{from_prefix}"))
                && c.args.contains(&format!("\"{}\"", to.display()))
        })
        .unwrap_or_else(|| {
            let all: Vec<String> = calls
                .iter()
                .map(|c| format!("{}({})", c.name, c.args))
                .collect();
            panic!(
                "no rename of {from_prefix}* to {}:\n{}",
                to.display(),
                all.join("\n")
            )
        })
}

/// The temporary file's path in a rename's first path argument.
fn rename_source(c: &Syscall) -> std::path::PathBuf {
    let first = c
        .args
        .split('"')
        .nth(1)
        .expect("rename has a path argument");
    std::path::PathBuf::from(first)
}

#[test]
fn every_published_file_is_synced_before_its_rename_and_the_directory_after() {
    // Observed from outside, the way only the kernel sees it: the bytes of a
    // new file reach the disk before the rename makes them visible, and the
    // directory entry the rename changed reaches it afterwards. Dropping any
    // of these syncs leaves a crash window in which a reader (or the next
    // boot) sees an empty bundle.
    let f = Fixture::new();
    let root = f.path().canonicalize().unwrap();
    let ca = pki::root("Durable CA");
    ca.write_pem(&root.join("src/ca.crt"));
    let out = f.out.canonicalize().unwrap();
    let calls = traced_run_once(
        &[
            "--source",
            s(&root.join("src")),
            "--base",
            "none",
            "--pkcs12",
            "--out-dir",
            s(&out),
        ],
        &root.join("strace.txt"),
    );
    let next_rename = |after: usize| {
        calls[after + 1..]
            .iter()
            .position(|c| c.name.starts_with("rename"))
            .map_or(calls.len(), |p| after + 1 + p)
    };
    let prev_rename = |before: usize| {
        calls[..before]
            .iter()
            .rposition(|c| c.name.starts_with("rename"))
            .map_or(0, |p| p + 1)
    };
    // The bundle and the truststore: file sync, rename, directory sync.
    for file in [BUNDLE, "truststore.p12"] {
        let r = rename_index(&calls, ".tmp-", &out.join(file));
        let tmp_file = rename_source(&calls[r]);
        assert!(
            calls[prev_rename(r)..r].iter().any(|c| syncs(c, &tmp_file)),
            "{file}: the temporary file {} is fsynced before the rename",
            tmp_file.display()
        );
        assert!(
            calls[r + 1..next_rename(r)].iter().any(|c| syncs(c, &out)),
            "{file}: the out-dir is fsynced after the rename, before anything else is renamed"
        );
    }
    // The hashed directory: the built directory is synced before it gets its
    // versioned name, and the out-dir after the symlink swap.
    let r = calls
        .iter()
        .position(|c| c.name.starts_with("rename") && c.args.contains("/.tmp-certs-"))
        .expect("the hashed directory is built under a temporary name");
    let building = rename_source(&calls[r]);
    assert!(
        calls[prev_rename(r)..r].iter().any(|c| syncs(c, &building)),
        "the built hashed directory is fsynced before its rename"
    );
    let link = rename_index(&calls, ".tmp-link-", &out.join(CERTS));
    assert!(
        calls[link + 1..next_rename(link)]
            .iter()
            .any(|c| syncs(c, &out)),
        "the out-dir is fsynced after certs is swapped"
    );
    assert_eq!(
        bundle::read_bundle(&out).unwrap(),
        [ca.sha256()],
        "and the publish itself worked"
    );
}

#[test]
fn a_failed_bundle_write_leaves_the_old_bundle_whole() {
    // On a full disk the certs/ rebuild used to fail first, so the bundle's
    // own write never failed in any test, and writing it in place went
    // unnoticed. RLIMIT_FSIZE makes the kernel refuse exactly the bundle: each
    // certs/ file is far below the limit, the new bundle far above it.
    let f = Fixture::new();
    let src = f.path().join("src");
    let out = &f.out;
    let old = pki::root("Old Whole CA");
    old.write_pem(&src.join("ca.crt"));
    let args = ["--source", s(&src), "--base", "none", "--out-dir", s(out)];
    run_once_ok(&args);
    let old_bundle = std::fs::read(out.join(BUNDLE)).unwrap();

    let many: Vec<pki::Cert> = (0..40).map(|i| pki::root(&format!("Big {i}"))).collect();
    let pem: String = many.iter().map(|c| c.pem()).collect();
    const LIMIT: u64 = 8 * 1024;
    assert!(pem.len() as u64 > 2 * LIMIT && many[0].pem().len() as u64 * 4 < LIMIT);
    common::replace_file(&src.join("ca.crt"), &pem);

    let mut cmd = common::trust_injector();
    cmd.args(["run", "--once"]).args(args);
    // SAFETY: setrlimit and signal are async-signal-safe; between fork and
    // exec nothing else runs. SIGXFSZ ignored: the write fails with EFBIG
    // instead of killing the process, as it would for a real size limit.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let res = common::tools::run(&mut cmd, std::time::Duration::from_secs(60));
    assert_eq!(
        res.code(),
        Some(1),
        "a failed publish exits 1:\n{}",
        res.text()
    );
    assert!(
        res.stderr.contains("publishing failed") && res.stderr.contains("File too large"),
        "the error says what failed and why:\n{}",
        res.text()
    );
    // The hashed directory was rebuilt (its files fit): the failure really
    // was the bundle's own write.
    assert_eq!(
        bundle::hashed_dir_map(&out.join(CERTS), false).len(),
        many.len(),
        "certs/ was published before the bundle failed"
    );
    let now = std::fs::read(out.join(BUNDLE)).unwrap();
    assert!(
        now == old_bundle,
        "the old bundle is still there, whole, byte for byte ({} bytes now, {} before)",
        now.len(),
        old_bundle.len()
    );
    let leftovers = common::temp_files(out);
    assert!(
        leftovers.is_empty(),
        "temporary file removed: {leftovers:?}"
    );

    // Without the limit the next run publishes the new bundle.
    run_once_ok(&args);
    // One file's certificates are published in SHA-256 order (docs/publishing.md).
    let mut want: Vec<String> = many.iter().map(|c| c.sha256()).collect();
    want.sort();
    assert_eq!(bundle::read_bundle(out).unwrap(), want);
    assert_clean_out_dir(out);
}

#[test]
fn a_real_certs_directory_from_an_older_tool_is_replaced_by_the_symlink() {
    // An out-dir that an older tool (or `openssl rehash` by hand) filled has
    // `certs` as a real directory, which rename cannot replace: it is removed
    // once, and from then on `certs` is our symlink. Found by the mutation
    // audit (docs/testing.md): nothing exercised this branch.
    let f = Fixture::new();
    let ca = pki::root("Upgrade CA");
    let src = f.path().join("src");
    ca.write_pem(&src.join("ca.crt"));
    let out = &f.out;
    write_file(&out.join("certs/0badc0de.0"), "stale, from an older tool");
    publish_once(&src, "none", out, &[]);
    assert_clean_out_dir(out);
    let in_dir: Vec<String> = bundle::hashed_dir_map(&out.join(CERTS), false)
        .into_values()
        .collect();
    assert_eq!(in_dir, [ca.sha256()], "only the published certificate");
}

#[test]
fn publishes_total_counts_exactly_the_publishes_that_wrote_something() {
    // The counter is how an operator sees rotations arrive: a resync that
    // finds nothing to do is not a publish, restoring one deleted file is.
    let ca = pki::root("Counted CA");
    let f = Fixture::with_ca(&ca.pem());
    let out = &f.out;
    let mut d = f.daemon().resync(1).start();
    d.wait_bundle("published", |b| b == [ca.sha256()]);
    let publishes = |d: &Daemon| d.metric("trust_injector_publishes_total").unwrap_or(-1.0);
    let reconciles = |d: &Daemon| d.metric("trust_injector_reconciles_total").unwrap_or(0.0);
    assert_eq!(publishes(&d), 1.0);
    let r0 = reconciles(&d);
    common::wait_until(common::PATIENCE, "two resyncs", || {
        reconciles(&d) >= r0 + 2.0
    });
    assert_eq!(
        publishes(&d),
        1.0,
        "resyncs that wrote nothing are not publishes"
    );

    std::fs::remove_file(out.join(BUNDLE)).unwrap();
    common::wait_until(common::PATIENCE, "bundle restored and counted", || {
        publishes(&d) == 2.0
    });
    assert!(out.join(BUNDLE).is_file());
    std::fs::remove_file(out.join(CERTS)).unwrap();
    common::wait_until(common::PATIENCE, "certs/ restored and counted", || {
        publishes(&d) == 3.0
    });
    assert_eq!(bundle::hashed_dir_map(&out.join(CERTS), false).len(), 1);
    d.assert_running("after the restores");
}

#[test]
fn a_base_file_with_one_odd_root_keeps_the_others_and_a_der_base_works() {
    // The base is someone else's curated list: one certificate block that
    // does not parse costs that one only, with a warning counting it; other
    // PEM blocks are not certificates. A base of DER bytes is one root.
    let f = Fixture::new();
    let tmp = f.path();
    let (b1, b2) = (pki::root("Base One"), pki::root("Base Two"));
    let odd = "-----BEGIN CERTIFICATE-----\nMIIBAjCB6wIBATANBgkqhkiG9w0BAQsFADAA\n-----END CERTIFICATE-----\n";
    let crl =
        "-----BEGIN X509 CRL-----\nMIIBAjCB6wIBATANBgkqhkiG9w0BAQsFADAA\n-----END X509 CRL-----\n";
    let base = tmp.join("base.pem");
    write_file(&base, format!("{}{odd}{crl}{}", b1.pem(), b2.pem()));
    let src = tmp.join("src");
    let custom = pki::root("Custom Next To Base");
    custom.write_pem(&src.join("ca.crt"));
    let out = &f.out;
    let res = publish_once(&src, s(&base), out, &[]);
    assert_eq!(
        bundle::read_bundle(out).unwrap(),
        [b1.sha256(), b2.sha256(), custom.sha256()]
    );
    assert!(
        res.stderr.contains("could not be parsed were skipped") && res.stderr.contains("skipped=1"),
        "the odd root is warned about, counted:\n{}",
        res.text()
    );

    let der_base = tmp.join("base.der");
    write_file(&der_base, b1.der());
    publish_once(&src, s(&der_base), out, &[]);
    assert_eq!(
        bundle::read_bundle(out).unwrap(),
        [b1.sha256(), custom.sha256()]
    );
}

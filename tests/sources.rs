//! Trust never comes from outside a source: `..data` leaving the volume,
//! symlink loops, FIFOs and sockets, and sources that overlap the out-dir
//! however they are spelled. And projected volumes: `--include` takes only
//! some keys, and a token refreshed again and again is one error, not one per
//! refresh. Every change to a volume goes through the kubelet's AtomicWriter
//! (tests/common/atomic_writer.rs), or through the exact `ln -s` + `mv -T` a
//! hostile writer would run.

mod common;

use common::atomic_writer::AtomicWriter;
use common::bundle::read_bundle;
use common::daemon::{Daemon, Fixture, RECONCILES};
use common::endpoint::Endpoint;
use common::{log_lines_about, pki, run_once, s, wait_until, write_file, PATIENCE};
use std::path::Path;
use std::time::Duration;

const ERRORS: &str = "trust_injector_source_errors_total";

/// The `/status` entry of the first source.
fn source0(d: &Daemon) -> serde_json::Value {
    d.status()["sources"][0].clone()
}

/// The skipped entries of the first source as (path, reason).
fn skipped(d: &Daemon) -> Vec<(String, String)> {
    source0(d)["skipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["path"].as_str().unwrap_or_default().to_string(),
                        e["reason"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `mv -T`: the rename(2) over `..data` that the kubelet, and an attacker,
/// use to swap the volume's content.
fn mv_t(from: &Path, to: &Path) {
    std::fs::rename(from, to).unwrap();
}

#[test]
fn data_link_leaving_the_volume_is_refused_and_the_last_good_cas_stay() {
    let good = pki::root("Secret CA");
    let f = Fixture::with_ca(&good.pem());
    let (out, vol) = (&f.out, &f.secret);
    // Somewhere else on the node: a directory of certificates that are not ours.
    let elsewhere = f.path().join("elsewhere");
    let snakeoil = pki::root("Snakeoil");
    snakeoil.write_pem(&elsewhere.join("ca.crt"));
    let mut d = f.daemon().resync(1).start();
    d.wait_bundle("the Secret's CA", |b| b == [good.sha256()]);

    // ln -s /somewhere/else vol/..data_tmp && mv -T vol/..data_tmp vol/..data
    let tmp_link = vol.dir().join("..data_tmp");
    std::os::unix::fs::symlink(&elsewhere, &tmp_link).unwrap();
    mv_t(&tmp_link, &vol.dir().join("..data"));

    let target = elsewhere.canonicalize().unwrap();
    d.wait_status(
        "the source in error, naming the link and its target",
        |st| {
            let err = st["sources"][0]["last_error"].as_str().unwrap_or_default();
            err.contains("..data") && err.contains(s(&target))
        },
    );
    assert_eq!(source0(&d)["state"], "error", "{}", source0(&d));
    let before = d.metric(RECONCILES).unwrap();
    d.wait_reconciles(before + 2.0);
    assert_eq!(
        read_bundle(out).unwrap(),
        [good.sha256()],
        "the Secret's CA stays, nothing from outside comes in"
    );
    let logs = d.logs();
    assert!(
        !log_lines_about(&logs, "..data", &["error"]).is_empty(),
        "{logs}"
    );
    // The kubelet writes the volume again: the source heals.
    let next = pki::root("Next CA");
    vol.write(&[("ca.crt", next.pem().as_bytes())]);
    d.wait_bundle("the new Secret content", |b| b == [next.sha256()]);
    // The bundle is on disk a moment before the loop shares its new snapshot.
    d.wait_status("the source ok again", |st| {
        st["sources"][0]["state"] == "ok"
    });
}

#[test]
fn directory_loops_are_read_once_and_said_in_log_and_status() {
    let f = Fixture::new();
    let src = f.path().join("src");
    let bulk = src.join("bulk");
    let ca = pki::root("Looped CA");
    ca.write_pem(&bulk.join("ca.crt"));
    std::os::unix::fs::symlink(".", bulk.join("again")).unwrap();
    // A file symlink loop, silently ignored before.
    std::os::unix::fs::symlink("b.crt", src.join("a.crt")).unwrap();
    std::os::unix::fs::symlink("a.crt", src.join("b.crt")).unwrap();
    let d = f.daemon_on(&src).resync(0).start();
    let files = source0(&d)["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 1, "one certificate, one path: {files:?}");
    assert_eq!(files[0]["path"], s(&bulk.join("ca.crt")));
    let skipped = skipped(&d);
    let about = |p: &Path| {
        skipped
            .iter()
            .find(|(path, _)| path == s(p))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{} not listed as skipped: {skipped:?}", p.display()))
    };
    assert!(about(&bulk.join("again")).contains("loop"));
    assert!(about(&src.join("a.crt")).contains("loop"));
    assert!(about(&src.join("b.crt")).contains("loop"));
    let logs = d.logs();
    for name in ["again", "a.crt", "b.crt"] {
        assert!(
            !log_lines_about(&logs, name, &["warn"]).is_empty(),
            "no warning about {name}:\n{logs}"
        );
    }
}

#[test]
fn a_large_volume_with_a_loop_is_not_more_than_4096_files() {
    let f = Fixture::new();
    let src = f.path().join("src");
    let bulk = src.join("bulk");
    let ca = pki::root("Bulk CA");
    // 600 files read through 7 looping levels would pass the 4096 limit.
    for i in 0..600 {
        write_file(&bulk.join(format!("ca-{i}.crt")), ca.pem());
    }
    std::os::unix::fs::symlink(".", bulk.join("again")).unwrap();
    let run = run_once(&[
        "--base",
        "none",
        "--source",
        s(&src),
        "--out-dir",
        s(&f.out),
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.text());
    assert!(!run.text().contains("more than 4096"), "{}", run.text());
    assert!(run.text().contains("loop"), "{}", run.text());
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(s(path)).unwrap();
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

#[test]
fn fifos_and_sockets_are_never_opened() {
    let f = Fixture::new();
    let (tmp, out) = (f.path(), &f.out);
    let src = tmp.join("src");
    let ca = pki::root("Beside A Fifo CA");
    ca.write_pem(&src.join("ca.crt"));
    mkfifo(&src.join("pipe.crt"));
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock.crt")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", src.join("zero.crt")).unwrap();
    let d = f.daemon_on(&src).resync(0).start();
    assert_eq!(read_bundle(out).unwrap(), [ca.sha256()]);
    let skipped = skipped(&d);
    let reason = |name: &str| {
        skipped
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(reason("pipe.crt").contains("FIFO"), "{skipped:?}");
    assert!(reason("sock.crt").contains("socket"), "{skipped:?}");
    // A link to a device outside the source is refused as outside.
    assert!(reason("zero.crt").contains("outside"), "{skipped:?}");

    // A FIFO named as a source is an error for that file, not a hang.
    let fifo = tmp.join("lone.pem");
    mkfifo(&fifo);
    let out2 = tmp.join("out2");
    std::fs::create_dir(&out2).unwrap();
    let mut cmd = common::trust_injector();
    cmd.args(["run", "--once", "--base", "none", "--source", s(&fifo)])
        .args(["--out-dir", s(&out2)]);
    let run = common::tools::run(&mut cmd, Duration::from_secs(20));
    assert_eq!(run.code(), Some(1), "{}", run.text());
    assert!(
        run.text().contains("lone.pem") && run.text().contains("FIFO"),
        "{}",
        run.text()
    );
}

/// `run --once ARGS` in `dir`; must exit 2 naming every word in `names`.
fn refused_in(dir: &Path, args: &[&str], names: &[&str]) {
    let mut cmd = common::trust_injector();
    cmd.current_dir(dir).args(["run", "--once"]).args(args);
    let run = common::tools::run(&mut cmd, Duration::from_secs(20));
    assert_eq!(
        run.code(),
        Some(2),
        "{args:?} must be refused:\n{}",
        run.text()
    );
    for n in names {
        assert!(
            run.stderr.contains(n),
            "{args:?}: message names {n}:\n{}",
            run.text()
        );
    }
}

#[test]
fn overlap_with_the_out_dir_is_refused_however_it_is_spelled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let root = pki::root("Removed Root");
    root.write_pem(&dir.join("root-ca.crt"));
    std::fs::create_dir(dir.join("out")).unwrap();
    std::fs::create_dir(dir.join("o1")).unwrap();
    std::fs::write(dir.join("ca-certificates.crt"), root.pem()).unwrap();
    std::os::unix::fs::symlink("out", dir.join("link-to-out")).unwrap();
    let none = ["--base", "none"];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        // The source contains the out-dir.
        (
            vec!["--source", ".", "--out-dir", "out"],
            vec!["--source .", "--out-dir out"],
        ),
        (
            vec!["--source", "./", "--out-dir", "./out/"],
            vec!["--source", "--out-dir"],
        ),
        // Same directory, two spellings.
        (
            vec!["--source", "o1", "--out-dir", "o1"],
            vec!["--source o1", "--out-dir o1"],
        ),
        (
            vec!["--source", "o1/../o1", "--out-dir", "./o1"],
            vec!["--source", "--out-dir"],
        ),
        // Through a symlink.
        (
            vec!["--source", "link-to-out", "--out-dir", "out"],
            vec!["link-to-out", "out"],
        ),
        // A source that does not exist yet, inside the out-dir.
        (
            vec!["--source", "out/later/ca.crt", "--out-dir", "out"],
            vec!["out/later"],
        ),
        (
            vec!["--source", "nothere/../out/x", "--out-dir", "out"],
            vec!["nothere"],
        ),
    ];
    for (args, names) in cases {
        let mut all = none.to_vec();
        all.extend(args);
        refused_in(dir, &all, &names);
    }
    // A base inside the out-dir, with and without `./`.
    let elsewhere = tempfile::tempdir().unwrap();
    let src = elsewhere.path().join("root-ca.crt");
    root.write_pem(&src);
    for base in ["ca-certificates.crt", "./ca-certificates.crt"] {
        refused_in(
            dir,
            &["--source", s(&src), "--base", base, "--out-dir", "."],
            &["--base", "--out-dir"],
        );
    }
    // Next to each other is fine.
    let mut cmd = common::trust_injector();
    cmd.current_dir(dir).args([
        "run",
        "--once",
        "--base",
        "none",
        "--source",
        "root-ca.crt",
        "--out-dir",
        "out",
    ]);
    let run = common::tools::run(&mut cmd, Duration::from_secs(20));
    assert_eq!(run.code(), Some(0), "{}", run.text());
}

/// A projected volume the way the kubelet writes one: a CA bundle from a
/// ConfigMap, a service-account token and downwardAPI files side by side.
fn projected(vol: &AtomicWriter, ca: &str, token: &str) {
    vol.write(&[
        ("ca.crt", ca.as_bytes()),
        ("token", token.as_bytes()),
        ("namespace", b"gateway"),
        ("labels", b"app=\"gateway\"\n"),
    ]);
}

/// A JWT-shaped token, different each refresh.
fn token(n: u32) -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ{n}.c2lnbmF0dXJl{n}")
}

#[test]
fn include_takes_only_the_ca_keys_of_a_projected_volume() {
    let f = Fixture::new();
    let vol = &f.secret;
    let ca = pki::root("Projected CA");
    projected(vol, &ca.pem(), &token(0));
    let mut d = f.daemon().resync(0).args(["--include", "*.crt"]).start();
    d.wait_bundle("the CA", |b| b == [ca.sha256()]);
    // Every file taken is valid: ready, so the gateway may start.
    d.wait_ready();
    for n in 1..=3 {
        let before = d.metric(RECONCILES).unwrap();
        projected(vol, &ca.pem(), &token(n));
        d.wait_reconciles(before + 1.0);
    }
    let src = source0(&d);
    assert_eq!(src["state"], "ok", "{src}");
    assert_eq!(src["files"].as_array().unwrap().len(), 1, "{src}");
    let skipped = skipped(&d);
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(
        skipped.iter().all(|(_, r)| r.contains("--include")),
        "{skipped:?}"
    );
    assert_eq!(d.metric(ERRORS), Some(0.0));
    let logs = d.logs();
    assert!(
        log_lines_about(&logs, "token", &["error", "warn"]).is_empty(),
        "{logs}"
    );

    // The same through the variable, comma-separated.
    let out2 = f.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    let mut cmd = common::trust_injector();
    cmd.env("TRUST_INJECTOR_INCLUDE", "*.pem,ca.*")
        .args(["run", "--once", "--base", "none", "--source", s(vol.dir())])
        .args(["--out-dir", s(&out2)]);
    let run = common::tools::run(&mut cmd, Duration::from_secs(20));
    assert_eq!(run.code(), Some(0), "{}", run.text());
    assert_eq!(read_bundle(&out2).unwrap(), [ca.sha256()]);
}

#[test]
fn a_token_refreshed_again_and_again_is_one_error() {
    let f = Fixture::new();
    let vol = &f.secret;
    let ca = pki::root("Projected CA");
    projected(vol, &ca.pem(), &token(0));
    let mut d = f.daemon().resync(0).start();
    d.wait_bundle("the CA", |b| b == [ca.sha256()]);
    let errors = d.metric(ERRORS).unwrap();
    for n in 1..=4 {
        let before = d.metric(RECONCILES).unwrap();
        projected(vol, &ca.pem(), &token(n));
        d.wait_reconciles(before + 1.0);
    }
    assert_eq!(
        d.metric(ERRORS).unwrap(),
        errors,
        "a refresh is not a new error"
    );
    let logs = d.logs();
    let lines = log_lines_about(&logs, "token", &["error"]);
    assert_eq!(lines.len(), 1, "one ERROR line for the token:\n{logs}");
    // Without --include the token is a file in error: never ready.
    assert_eq!(d.get("/readyz").0, 503);
    // A different failure of that file is new, and said.
    projected(vol, &ca.pem(), "");
    wait_until(PATIENCE, "a new kind of failure counted", || {
        d.metric(ERRORS) == Some(errors + 1.0)
    });
}

/// The kubelet projects a ClusterTrustBundle as one PEM file whose
/// certificates it deduplicates and orders arbitrarily, beside the other
/// sources of a projected volume. A new order of the same certificates is no
/// change: no new bundle, no notification.
#[test]
fn cluster_trust_bundle_in_a_new_order_republishes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new();
    let (out, vol) = (&f.out, &f.secret);
    let roots: Vec<pki::Cert> = (0..5)
        .map(|i| pki::root(&format!("Cluster Signer {i}")))
        .collect();
    let ctb = |order: &[usize]| -> String { order.iter().map(|&i| roots[i].pem()).collect() };
    let project = |order: &[usize], token_n: u32| {
        vol.write(&[
            ("ca-bundle.pem", ctb(order).as_bytes()),
            ("token", token(token_n).as_bytes()),
        ])
    };
    project(&[0, 1, 2, 3, 4], 0);
    let endpoint = Endpoint::start(&[204]);
    let url = endpoint.url();
    let mut d = f
        .daemon()
        .base("embedded")
        .resync(0)
        .args(["--include", "*.pem", "--on-change-url", &url])
        .start();
    let all: Vec<String> = roots.iter().map(|r| r.sha256()).collect();
    d.wait_bundle("every cluster signer", |b| {
        all.iter().all(|s| b.contains(s))
    });
    let bundle = std::fs::read(out.join(common::bundle::BUNDLE)).unwrap();
    let inode = std::fs::metadata(out.join(common::bundle::BUNDLE))
        .unwrap()
        .ino();
    let publishes = d.metric("trust_injector_publishes_total").unwrap();

    for (n, order) in [[4, 3, 2, 1, 0], [2, 0, 4, 1, 3], [1, 4, 0, 3, 2]]
        .iter()
        .enumerate()
    {
        let before = d.metric(RECONCILES).unwrap();
        project(order, n as u32 + 1);
        d.wait_reconciles(before + 1.0);
    }
    let st = d.status();
    assert_eq!(st["sources"][0]["state"], "ok", "{st}");
    assert_eq!(
        d.metric("trust_injector_publishes_total").unwrap(),
        publishes,
        "a new order is not a new bundle; logs:\n{}",
        d.logs_tail()
    );
    assert_eq!(
        std::fs::read(out.join(common::bundle::BUNDLE)).unwrap(),
        bundle
    );
    let now = std::fs::metadata(out.join(common::bundle::BUNDLE)).unwrap();
    assert_eq!(now.ino(), inode, "the bundle file was not replaced");
    assert_eq!(endpoint.received().len(), 0, "no notification");

    // A real change still publishes and notifies (the hook is wired).
    let extra = pki::root("Cluster Signer 5");
    let mut text = ctb(&[3, 1, 4, 0, 2]);
    text.push_str(&extra.pem());
    vol.write(&[("ca-bundle.pem", text.as_bytes()), ("token", b"t")]);
    d.wait_bundle("the new signer", |b| b.contains(&extra.sha256()));
    wait_until(PATIENCE, "one notification", || {
        endpoint.received().len() == 1
    });
}

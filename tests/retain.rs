//! `--retain-removed`: a CA replaced in the Secret stays trusted for the grace
//! period, then goes; the deadline survives a restart of the sidecar; a
//! damaged state file is ignored with a warning. Judged by openssl s_client
//! against a real HTTPS backend serving a chain from the removed CA.

mod common;

use common::bundle::BUNDLE;
use common::daemon::{Daemon, Fixture};
use common::https::HttpsServer;
use common::pki::Chain;
use common::tools::{self, Trust};
use common::{log_lines_about, run_once, s};
use std::time::{SystemTime, UNIX_EPOCH};

const STATE: &str = ".retained.json";

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `leaves_at` of the retained certificate `sha256` in /status, as Unix time.
fn leaves_at(d: &Daemon, sha256: &str) -> Option<i64> {
    let st = d.status();
    let entry = st["retained_certificates"]
        .as_array()?
        .iter()
        .find(|e| e["sha256"] == sha256)?
        .clone();
    let text = entry["leaves_at"].as_str()?;
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("leaves_at {text:?}: {e}"));
    Some(t.unix_timestamp())
}

/// A and B, the secret holding A, and a backend serving A's chain; the
/// sidecar started by [`Rotation::daemon`].
struct Rotation {
    fixture: Fixture,
    a: Chain,
    b: Chain,
    backend: HttpsServer,
}

fn rotation() -> Rotation {
    let (a, b) = (Chain::new("Retained A"), Chain::new("Retained B"));
    let fixture = Fixture::with_ca(&a.root.pem());
    let backend = HttpsServer::start(&a.server_pem());
    Rotation {
        fixture,
        a,
        b,
        backend,
    }
}

impl Rotation {
    /// The sidecar on the Secret with `--retain-removed GRACE`.
    fn daemon(&self, grace: &str) -> Daemon {
        self.fixture
            .daemon()
            .no_debounce()
            .resync(0)
            .args(["--retain-removed", grace])
            .start()
    }

    fn client_reaches_a(&self) -> tools::Out {
        tools::s_client(
            self.backend.port,
            Trust::File(&self.fixture.out.join(BUNDLE)),
        )
    }
}

#[test]
fn a_replaced_root_stays_trusted_for_the_grace_period_and_not_after() {
    let r = rotation();
    let mut d = r.daemon("3s");
    d.wait_bundle("root A", |b| b == [r.a.root.sha256()]);
    let ok = r.client_reaches_a();
    assert!(ok.ok(), "A trusted before the rotation:\n{}", ok.text());

    // The usual rotation: the Secret's content replaced, A gone at once.
    r.fixture
        .secret
        .write(&[("ca.crt", r.b.root.pem().as_bytes())]);
    d.wait_bundle("B published, A retained", |b| {
        b.contains(&r.b.root.sha256()) && b.contains(&r.a.root.sha256())
    });
    let during = r.client_reaches_a();
    let deadline = leaves_at(&d, &r.a.root.sha256()).expect("A listed as retained");
    assert!(
        during.ok(),
        "an A-signed backend is reachable during the grace (checked {} s before its end):\n{}",
        deadline - now_unix(),
        during.text()
    );
    assert_eq!(d.metric("trust_injector_retained_certificates"), Some(1.0));
    assert!(
        !log_lines_about(&d.logs(), "retained", &["info"]).is_empty(),
        "the retention is logged:\n{}",
        d.logs()
    );

    // Then A goes on its own: no event, no resync, only the deadline.
    d.wait_bundle("A removed after the grace", |b| b == [r.b.root.sha256()]);
    assert!(now_unix() >= deadline, "not before its deadline");
    let after = r.client_reaches_a();
    assert!(
        !after.ok(),
        "an A-signed backend is refused after the grace:\n{}",
        after.text()
    );
    assert_eq!(d.metric("trust_injector_retained_certificates"), Some(0.0));
    assert!(
        d.logs().contains("grace period over"),
        "the final removal is logged:\n{}",
        d.logs()
    );
    let st = d.stop();
    assert!(st.success(), "{st}");
}

#[test]
fn a_restart_in_the_middle_neither_shortens_nor_extends_the_grace() {
    let r = rotation();
    let mut d = r.daemon("8s");
    d.wait_bundle("root A", |b| b == [r.a.root.sha256()]);
    r.fixture
        .secret
        .write(&[("ca.crt", r.b.root.pem().as_bytes())]);
    d.wait_bundle("A retained", |b| b.len() == 2);
    let deadline = leaves_at(&d, &r.a.root.sha256()).expect("A retained");
    let st = d.stop();
    assert!(st.success(), "{st}");
    // The sidecar is down; the bundle it left keeps A meanwhile.

    let mut d = r.daemon("8s");
    assert!(
        now_unix() < deadline,
        "the restart took longer than the grace; the test needs a longer one"
    );
    assert_eq!(
        leaves_at(&d, &r.a.root.sha256()),
        Some(deadline),
        "the same deadline after the restart"
    );
    let b = common::bundle::read_bundle(&r.fixture.out).unwrap();
    assert!(b.contains(&r.a.root.sha256()), "A still published: {b:?}");
    let ok = r.client_reaches_a();
    assert!(ok.ok(), "A trusted after the restart:\n{}", ok.text());

    d.wait_bundle("A removed at the deadline", |b| b == [r.b.root.sha256()]);
    let gone = now_unix();
    assert!(gone >= deadline, "not cut short ({gone} < {deadline})");
    // The timer fires a second after the deadline; anything close to a
    // second grace period would mean the restart restarted it.
    assert!(
        gone <= deadline + 4,
        "not extended ({gone} > {deadline} + 4)"
    );
    assert!(!r.client_reaches_a().ok(), "A refused after the grace");
}

#[test]
fn a_damaged_state_file_is_ignored_with_a_warning() {
    let r = rotation();
    common::write_file(&r.fixture.out.join(STATE), "{ this is not the state");
    let mut d = r.daemon("3s");
    d.wait_bundle("root A", |b| b == [r.a.root.sha256()]);
    assert!(
        !log_lines_about(&d.logs(), STATE, &["warn"]).is_empty(),
        "a warning names the state file:\n{}",
        d.logs()
    );
    // Rewritten, valid, and retention works from it.
    let text = std::fs::read_to_string(r.fixture.out.join(STATE)).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("state rewritten as JSON ({e}): {text}"));
    assert_eq!(doc["certificates"].as_array().map(Vec::len), Some(1));
    r.fixture
        .secret
        .write(&[("ca.crt", r.b.root.pem().as_bytes())]);
    d.wait_bundle("A retained", |b| b.len() == 2);
    // The file holds certificates and times, never anything secret.
    let text = std::fs::read_to_string(r.fixture.out.join(STATE)).unwrap();
    assert!(!text.contains("PRIVATE"), "{text}");
    d.stop();
}

#[test]
fn a_bad_duration_exits_2_naming_the_option() {
    let f = Fixture::new();
    let src = f.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let out = &f.out;
    for bad in ["3w", "soon", "1.5h"] {
        let res = run_once(&[
            "--source",
            s(&src),
            "--out-dir",
            s(out),
            "--retain-removed",
            bad,
        ]);
        assert_eq!(res.code(), Some(2), "{bad}: {}", res.text());
        assert!(res.stderr.contains("--retain-removed"), "{}", res.text());
    }
}

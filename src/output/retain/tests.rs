use super::*;

fn cert(cn: &str, not_after: i64) -> Certificate {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    Certificate::from_der(params.self_signed(&key).unwrap().der()).unwrap()
}

/// What the previous run published: the bundle on disk.
fn published(dir: &Path, certs: &[&Certificate]) {
    let pem: String = certs.iter().map(|c| c.to_pem()).collect();
    std::fs::write(dir.join(crate::output::publish::BUNDLE_FILE), pem).unwrap();
}

const NOW: i64 = 1_800_000_000;
const YEAR: i64 = 365 * 86_400;

#[test]
fn durations() {
    assert_eq!(parse_duration("3s"), Ok(Some(3)));
    assert_eq!(parse_duration("90"), Ok(Some(90)));
    assert_eq!(parse_duration("30m"), Ok(Some(1800)));
    assert_eq!(parse_duration("24h"), Ok(Some(86_400)));
    assert_eq!(parse_duration("7d"), Ok(Some(604_800)));
    assert_eq!(parse_duration("0"), Ok(None));
    assert_eq!(parse_duration("off"), Ok(None));
    for bad in ["", "s", "3w", "-1s", "1.5h", "99999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn removed_is_kept_until_its_deadline_then_goes() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Retention::load(60, dir.path(), NOW);
    let (a, b) = (cert("A", NOW + YEAR), cert("B", NOW + YEAR));
    assert!(r.update([&a, &b], NOW).is_empty());
    let kept = r.update([&b], NOW + 10);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].sha256, a.sha256);
    assert_eq!(r.next_deadline(), Some(NOW + 70));
    assert_eq!(r.status()[0].leaves_at, rfc3339(NOW + 70));
    // Still gone later: the deadline is not pushed back.
    assert_eq!(r.update([&b], NOW + 69).len(), 1);
    assert!(r.update([&b], NOW + 70).is_empty());
    assert_eq!(r.count(), 0);
}

#[test]
fn readded_is_simply_present_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Retention::load(60, dir.path(), NOW);
    let a = cert("A", NOW + YEAR);
    r.update([&a], NOW);
    assert_eq!(r.update([], NOW + 1).len(), 1);
    assert!(r.update([&a], NOW + 2).is_empty());
    assert_eq!(r.next_deadline(), None);
    // Removed again: a fresh grace from the second removal.
    r.update([], NOW + 30);
    assert_eq!(r.next_deadline(), Some(NOW + 90));
}

#[test]
fn expired_is_never_retained() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Retention::load(600, dir.path(), NOW);
    let old = cert("Old", NOW - 1);
    let brief = cert("Brief", NOW + 5);
    r.update([&old, &brief], NOW);
    assert_eq!(r.update([], NOW + 1).len(), 1, "only the valid one");
    assert!(r.update([], NOW + 6).is_empty(), "and not past its expiry");
}

#[test]
fn state_survives_a_restart_without_shortening_or_extending() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (cert("A", NOW + YEAR), cert("B", NOW + YEAR));
    let mut r = Retention::load(60, dir.path(), NOW);
    r.update([&a, &b], NOW);
    r.update([&b], NOW + 10);
    let bytes = r.state_to_write().unwrap();
    std::fs::write(dir.path().join(STATE_FILE), &bytes).unwrap();
    published(dir.path(), &[&a, &b]);
    r.mark_written(bytes);
    assert!(
        r.state_to_write().is_none(),
        "unchanged state not rewritten"
    );

    let mut again = Retention::load(60, dir.path(), NOW + 30);
    assert_eq!(again.next_deadline(), Some(NOW + 70));
    assert_eq!(again.update([&b], NOW + 30).len(), 1);
    assert!(again.update([&b], NOW + 70).is_empty());

    // A shorter grace after the restart applies from the removal.
    let short = Retention::load(20, dir.path(), NOW + 15);
    assert_eq!(short.next_deadline(), Some(NOW + 30));
    // A certificate present at the last write and gone at the restart
    // is retained from the restart on.
    let mut gone = Retention::load(60, dir.path(), NOW + 40);
    let kept = gone.update([], NOW + 40);
    assert_eq!(kept.len(), 2);
    assert_eq!(gone.status().len(), 2);
    assert_eq!(gone.next_deadline(), Some(NOW + 70), "A's deadline holds");
}

#[test]
fn damaged_state_is_ignored_and_cannot_extend_a_deadline() {
    let dir = tempfile::tempdir().unwrap();
    for garbage in [
        &b"not json"[..],
        b"{\"version\": 9, \"certificates\": []}",
        b"\x00\xff",
    ] {
        std::fs::write(dir.path().join(STATE_FILE), garbage).unwrap();
        let r = Retention::load(60, dir.path(), NOW);
        assert_eq!(r.count(), 0);
        assert!(r.state_to_write().is_some(), "rewritten at the next change");
    }
    let a = cert("A", NOW + YEAR);
    let doc = serde_json::json!({"version": 1, "certificates": [
        {"sha256": a.sha256, "der": base64::engine::general_purpose::STANDARD.encode(&a.der),
         "removed_at": NOW + 1000, "leaves_at": NOW + YEAR},
        {"sha256": "00", "der": "AAAA", "removed_at": NOW, "leaves_at": NOW + 5},
    ]});
    std::fs::write(dir.path().join(STATE_FILE), doc.to_string()).unwrap();
    published(dir.path(), &[&a]);
    let r = Retention::load(60, dir.path(), NOW);
    assert_eq!(r.count(), 1, "the entry that is no certificate is skipped");
    assert_eq!(r.next_deadline(), Some(NOW + 60), "capped at now + grace");
}

#[test]
fn nothing_the_bundle_no_longer_holds_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (cert("A", NOW + YEAR), cert("B", NOW + YEAR));
    let mut r = Retention::load(60, dir.path(), NOW);
    r.update([&a, &b], NOW);
    r.update([&b], NOW + 10);
    std::fs::write(dir.path().join(STATE_FILE), r.state_to_write().unwrap()).unwrap();
    // A run without retention published only B meanwhile.
    published(dir.path(), &[&b]);
    let mut again = Retention::load(60, dir.path(), NOW + 20);
    assert!(again
        .update([], NOW + 20)
        .iter()
        .all(|c| c.sha256 != a.sha256));
    // And with retention off the state is removed.
    forget(dir.path());
    assert!(!dir.path().join(STATE_FILE).exists());
}

//! From the recorded chain and the bundle to causes in plain words: path
//! building under both anchor rules, then the most specific explanation.

use super::explain::explain_chain_error;
use super::{Cause, CertInfo, Diagnosis};
use crate::trust::cert::{display_line, rfc3339, Certificate};
use crate::trust::policy::{dotnet_anchor, CertFacts, Concern, Policy};
use crate::trust::summary::CertSummary;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use std::time::Duration;
use webpki::{EndEntityCert, KeyUsage};

/// What the report shows of one certificate of the chain.
pub(super) fn cert_info(c: &Certificate, bundle: &[Certificate], now: i64) -> CertInfo {
    CertInfo {
        cert: CertSummary::of(c),
        days_left: c.days_left(now),
        ca: c.is_ca,
        self_signed: c.self_signed,
        sha256: c.sha256.clone(),
        names: CertFacts::of(c).names,
        in_bundle: bundle.iter().any(|b| b.der == c.der),
    }
}

/// Whether `issuer` is named as `cert`'s issuer (canonical name hash when
/// available, the display form otherwise).
pub(super) fn names_issuer(issuer: &Certificate, cert: &Certificate) -> bool {
    match (issuer.subject_hash, cert.issuer_hash) {
        (Some(a), Some(b)) => a == b && issuer.subject == cert.issuer,
        _ => issuer.subject == cert.issuer,
    }
}

pub(super) fn q(name: &str) -> String {
    format!("\"{}\"", display_line(name))
}

/// Explains whether `chain` (leaf first, as the server sent it) is trusted
/// by `bundle` for `server_name` at `now`. Pure: no IO, unit-testable.
pub fn diagnose(
    chain: &[CertificateDer<'_>],
    bundle: &[Certificate],
    server_name: &ServerName<'_>,
    now: i64,
) -> Diagnosis {
    let mut d = Diagnosis::default();
    let (sent, ee) = match parse_chain(chain) {
        Ok(parsed) => parsed,
        Err(cause) => {
            d.causes.push(cause);
            return d;
        }
    };
    let (lenient, strict) = build_paths(&ee, &chain[1..], bundle, now);
    match (&lenient, &strict) {
        (_, Ok(anchor)) => d.anchor = *anchor,
        (Ok(anchor), Err(_)) => {
            d.anchor = *anchor;
            d.causes
                .push(partial_chain_cause(anchor.map(|i| &bundle[i])));
        }
        (Err(e), Err(_)) => d.causes.push(explain_chain_error(e, &sent, bundle, now)),
    }
    let anchor = d.anchor.map(|i| &bundle[i]);
    d.causes
        .extend(anchor.and_then(|a| anchor_validity(a, now)));
    d.causes.extend(name_check(&ee, &sent[0], server_name));
    d.warnings = warnings(&sent, anchor, now);
    d
}

/// The chain parsed, and its leaf as webpki's end-entity certificate; or
/// why there is nothing to build a path from.
fn parse_chain<'a>(
    chain: &'a [CertificateDer<'a>],
) -> Result<(Vec<Certificate>, EndEntityCert<'a>), Cause> {
    let Some(leaf_der) = chain.first() else {
        return Err(Cause::new(
            "no_certificate",
            "the server presented no certificate".into(),
            "configure a certificate on the backend",
        ));
    };
    let sent: Vec<Certificate> = chain
        .iter()
        .enumerate()
        .map(|(i, c)| Certificate::from_der(c.as_ref()).map_err(|e| (i, e)))
        .collect::<Result<_, _>>()
        .map_err(|(i, e)| {
            Cause::new(
                "bad_certificate",
                format!("certificate {i} sent by the server cannot be parsed: {e}"),
                "fix the certificate files configured on the backend",
            )
        })?;
    let ee = EndEntityCert::try_from(leaf_der).map_err(|e| {
        Cause::new(
            "bad_certificate",
            format!(
                "the server's certificate {} is not usable for TLS: {e:?}",
                q(&sent[0].subject)
            ),
            "re-issue it as an X.509 v3 certificate",
        )
    })?;
    Ok((sent, ee))
}

/// A path's outcome: the index in the bundle of its anchor, or webpki's
/// reason for finding none.
type PathResult = Result<Option<usize>, webpki::Error>;

/// Builds a path from `ee` (with the `intermediates` the server sent) under
/// both anchor rules: (partial-chain rule, .NET rule).
fn build_paths(
    ee: &EndEntityCert<'_>,
    intermediates: &[CertificateDer<'_>],
    bundle: &[Certificate],
    now: i64,
) -> (PathResult, PathResult) {
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    let bundle_ders: Vec<CertificateDer<'_>> = bundle
        .iter()
        .map(|c| CertificateDer::from(&c.der[..]))
        .collect();
    let verify = |anchors: &[TrustAnchor<'_>], idx: &[usize], intermediates| {
        ee.verify_for_usage(
            algs,
            anchors,
            intermediates,
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|p| anchor_index(p.anchor(), anchors, idx))
    };

    // Partial-chain rule: every bundle certificate is an anchor.
    let (lenient_idx, lenient_anchors) = anchors(&bundle_ders, |_| true, bundle);
    let lenient = verify(&lenient_anchors, &lenient_idx, intermediates);

    // .NET rule: only self-signed bundle certificates anchor; the others can
    // still serve as intermediates.
    let (strict_idx, strict_anchors) = anchors(&bundle_ders, dotnet_anchor, bundle);
    let mut strict_intermediates = intermediates.to_vec();
    strict_intermediates.extend(
        bundle
            .iter()
            .zip(&bundle_ders)
            .filter(|(c, _)| !dotnet_anchor(c))
            .map(|(_, der)| der.clone()),
    );
    let strict = verify(&strict_anchors, &strict_idx, &strict_intermediates);
    (lenient, strict)
}

/// webpki does not check an anchor's validity; OpenSSL and .NET do.
fn anchor_validity(a: &Certificate, now: i64) -> Option<Cause> {
    if a.is_expired(now) {
        Some(Cause::new(
            "expired",
            format!(
                "the bundle's anchor {} expired at {}",
                q(&a.subject),
                rfc3339(a.not_after)
            ),
            "put the CA's renewed certificate in the bundle",
        ))
    } else if a.not_before > now {
        Some(Cause::new(
            "not_yet_valid",
            format!(
                "the bundle's anchor {} is not valid before {}",
                q(&a.subject),
                rfc3339(a.not_before)
            ),
            "check the clocks, or wait until it is valid",
        ))
    } else {
        None
    }
}

/// Whether the leaf is valid for `server_name`, and if not what it holds.
fn name_check(
    ee: &EndEntityCert<'_>,
    leaf: &Certificate,
    server_name: &ServerName<'_>,
) -> Option<Cause> {
    let e = ee.verify_is_valid_for_subject_name(server_name).err()?;
    let names = CertFacts::of(leaf).names;
    let held = if names.is_empty() {
        "no subjectAltName at all (clients ignore the CN)".to_string()
    } else {
        format!("only {}", names.join(", "))
    };
    let message = match e {
        webpki::Error::UnsupportedNameType => format!(
            "the server name {} cannot be checked against a certificate",
            server_name.to_str()
        ),
        _ => format!(
            "the certificate {} is not valid for {}; it holds {held}",
            q(&leaf.subject),
            server_name.to_str()
        ),
    };
    Some(Cause::new(
        "hostname_mismatch",
        message,
        format!(
            "connect with a name the certificate holds (--servername to test one), or re-issue it with {} in its subjectAltName",
            server_name.to_str()
        ),
    ))
}

/// Not failures today, but things to fix: the same checks as the publish
/// loop and `inspect`, on every certificate sent and the anchor, once each.
fn warnings(sent: &[Certificate], anchor: Option<&Certificate>, now: i64) -> Vec<String> {
    let policy = Policy::default();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for c in sent.iter().chain(anchor) {
        if seen.contains(&&c.sha256) {
            continue;
        }
        seen.push(&c.sha256);
        for concern in policy.concerns(c, true, true, now) {
            if matches!(
                concern,
                Concern::ExpiresSoon | Concern::WeakKey { .. } | Concern::WeakSignature { .. }
            ) {
                out.push(format!(
                    "{}: {}",
                    display_line(&c.subject),
                    concern.explain(c)
                ));
            }
        }
    }
    out
}

/// Why a chain that only the partial-chain rule accepts fails on .NET:
/// `anchor` is the bundle certificate it ends on, which .NET does not take as a
/// root ([`dotnet_anchor`]).
fn partial_chain_cause(anchor: Option<&Certificate>) -> Cause {
    let (name, issuer) = anchor
        .map(|c| (q(&c.subject), q(&c.issuer)))
        .unwrap_or_else(|| ("a bundle certificate".into(), "its issuer".into()));
    if anchor.is_some_and(|c| c.self_signed) {
        // Self-signed to OpenSSL (names equal canonically), not to .NET.
        return Cause::new(
            "partial_chain_only",
            format!(
                "trusted only through {name}, whose issuer name {issuer} differs from its subject \
                 in spelling (case or spaces): OpenSSL (so curl and Python) takes it as self-signed \
                 and trusts this backend; .NET on Linux compares the names as text, does not take it \
                 as a root and fails with UntrustedRoot"
            ),
            format!(
                "re-issue the root {name} with its issuer written exactly as its subject, and put \
                 it in the bundle (with trust-injector: in the CA Secret)"
            ),
        );
    }
    Cause::new(
        "partial_chain_only",
        format!(
            "trusted only through {name}, a bundle certificate that is not self-signed \
             (its issuer {issuer} is not in the bundle): clients that accept a partial chain \
             (curl, Go, Python 3.13+) trust this backend; .NET on Linux and OpenSSL's default \
             rules do not"
        ),
        format!(
            "add the root {issuer} to the bundle (with trust-injector: to the CA Secret); \
             .NET anchors only self-signed certificates"
        ),
    )
}

/// Trust anchors for the bundle certificates that pass `keep`, with their
/// bundle indexes.
fn anchors<'a>(
    ders: &'a [CertificateDer<'a>],
    keep: impl Fn(&Certificate) -> bool,
    bundle: &[Certificate],
) -> (Vec<usize>, Vec<TrustAnchor<'a>>) {
    ders.iter()
        .enumerate()
        .filter(|(i, _)| keep(&bundle[*i]))
        .filter_map(|(i, der)| webpki::anchor_from_trusted_cert(der).ok().map(|a| (i, a)))
        .unzip()
}

fn anchor_index(
    found: &TrustAnchor<'_>,
    anchors: &[TrustAnchor<'_>],
    idx: &[usize],
) -> Option<usize> {
    anchors
        .iter()
        .position(|a| {
            a.subject == found.subject && a.subject_public_key_info == found.subject_public_key_info
        })
        .and_then(|p| idx.get(p).copied())
}
